/*
Copyright 2026 The talkover-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controller

import (
	"errors"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// agentActivity is what this process knows about the work on each agent
// that is not in the API because it lives only as long as the process: the
// calls in flight, when changes last arrived, and two caches of facts the
// API holds or can give again. The AgentAction reconciles and the publish
// controller share it. Losing it (a restart) changes no outcome:
//
//   - inflight and publishing describe calls of this process, and a new
//     process has none;
//   - lastArrival keeps a publish back while changes are still arriving;
//     without it the publish goes as soon as the agent is settled, which at
//     worst costs a second publish in a rollout that was still arriving;
//   - owed and ledgerKnown: once this process has written the agent's entry
//     of status.pendingPublishes (added or removed it), it answers "owed?"
//     from its own memory rather than from an informer copy that may be
//     older than the write (the leader is the ledger's only writer); a new
//     process starts from the status its informer lists;
//   - draftRollout remembers that the agent was found in draft before this
//     rollout; without it the agent is read once more, and found in draft
//     again (the operator's own changes leave it there);
//   - priorWanted says a change waits for the rollout to be prepared; the
//     waiting AgentAction asks again after its requeue (5 s); it is
//     cleared when the change goes ahead, or when the publish controller
//     finds the rollout prepared already.
//
// It is safe for concurrent use.
type agentActivity struct {
	mu sync.Mutex
	m  map[agentKey]*activity
}

// activity is the process-local state of one agent.
type activity struct {
	inflight     int
	publishing   bool
	published    bool // the publish call succeeded; its ledger entry is still to remove
	lastArrival  time.Time
	owed         bool
	ledgerKnown  bool
	draftRollout bool
	// priorWanted: a change waits for the rollout to be prepared.
	priorWanted bool
}

// owes says whether the agent owes a publish: what this process last wrote
// to the ledger, or, if it has written nothing for the agent, what the
// informer's copy of status.pendingPublishes says (inCache).
func (a *activity) owes(inCache bool) bool {
	if a.ledgerKnown {
		return a.owed
	}
	return inCache
}

var (
	// errPriorUnknown: under publishPolicy Auto or Always, the publish
	// controller must first learn whether the agent owes a publish.
	errPriorUnknown = errors.New("the agent's publish state before the rollout is not known yet")
	// errPublishing: the agent is being published; a change waits for it.
	errPublishing = errors.New("the agent is being published")
)

func (t *agentActivity) get(key agentKey) *activity {
	if t.m == nil {
		t.m = map[agentKey]*activity{}
	}
	a, ok := t.m[key]
	if !ok {
		a = &activity{}
		t.m[key] = a
	}
	return a
}

// begin starts a change of the agent's actions. The agent must be known to
// owe a publish (in the ledger), or known to be left in draft, unless
// needPrior is false (publishPolicy Manual). It fails while the agent is
// being published.
func (t *agentActivity) begin(key agentKey, needPrior, ledgered bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.get(key)
	switch {
	case a.publishing:
		return errPublishing
	case needPrior && !a.owes(ledgered) && !a.draftRollout:
		a.priorWanted = true
		return errPriorUnknown
	}
	a.priorWanted = false
	a.inflight++
	return nil
}

// end ends a change begun with begin.
func (t *agentActivity) end(key agentKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a := t.get(key); a.inflight > 0 {
		a.inflight--
	}
}

// arrived notes that a change of the agent arrived (an AgentAction was
// created, changed or deleted).
func (t *agentActivity) arrived(key agentKey, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.get(key).lastArrival = now
}

// snapshot returns a copy of the agent's activity.
func (t *agentActivity) snapshot(key agentKey) activity {
	t.mu.Lock()
	defer t.mu.Unlock()
	return *t.get(key)
}

// update changes the agent's activity under the lock.
func (t *agentActivity) update(key agentKey, change func(*activity)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	change(t.get(key))
}

// startPublish marks the agent as being published if no change is in
// flight; it reports whether it did.
func (t *agentActivity) startPublish(key agentKey) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.get(key)
	if a.inflight > 0 || a.publishing {
		return false
	}
	a.publishing = true
	return true
}

// forget drops an agent with nothing left to do.
func (t *agentActivity) forget(key agentKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a, ok := t.m[key]; ok && a.inflight == 0 && !a.publishing {
		delete(t.m, key)
	}
}

// forgetEnvironment drops the agents of a deleted environment.
func (t *agentActivity) forgetEnvironment(env types.NamespacedName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for key, a := range t.m {
		if key.env == env && a.inflight == 0 && !a.publishing {
			delete(t.m, key)
		}
	}
}
