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
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
	"github.com/talkover/talkover-operator/internal/talkover"
)

// These tests drive the Publisher alone against the simulator over HTTP,
// with an in-memory Ledger that can fail: the Ledger stands for the
// kube-apiserver, which the envtest suites cannot make fail on demand.

// memLedger is a Ledger in memory whose writes can be made to fail.
type memLedger struct {
	mu        sync.Mutex
	owed      map[types.NamespacedName][]string
	failAdd   int
	failRem   int
	adds      int
	removals  int
	failWrite error
}

func newMemLedger() *memLedger {
	return &memLedger{owed: map[types.NamespacedName][]string{}, failWrite: errors.New("the kube-apiserver is unreachable")}
}

func (l *memLedger) Environments(context.Context) ([]types.NamespacedName, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keys []types.NamespacedName
	for k, v := range l.owed {
		if len(v) > 0 {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func (l *memLedger) Owed(_ context.Context, env types.NamespacedName) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.owed[env]), nil
}

func (l *memLedger) Add(_ context.Context, env types.NamespacedName, agentID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failAdd > 0 {
		l.failAdd--
		return l.failWrite
	}
	l.adds++
	if !slices.Contains(l.owed[env], agentID) {
		l.owed[env] = append(l.owed[env], agentID)
	}
	return nil
}

func (l *memLedger) Remove(_ context.Context, env types.NamespacedName, agentID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failRem > 0 {
		l.failRem--
		return l.failWrite
	}
	l.removals++
	l.owed[env] = slices.DeleteFunc(l.owed[env], func(s string) bool { return s == agentID })
	return nil
}

func (l *memLedger) counts() struct{ adds, removals int } {
	l.mu.Lock()
	defer l.mu.Unlock()
	return struct{ adds, removals int }{l.adds, l.removals}
}

func (l *memLedger) list(env types.NamespacedName) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.owed[env])
}

// publisherWorld is a simulator with one published agent, a client for it,
// and a Publisher with a memLedger.
type publisherWorld struct {
	g      *WithT
	sim    *apisim.Server
	api    ActionAPI
	ledger *memLedger
	env    types.NamespacedName
	key    agentKey
	pub    *Publisher
	// policy is what Resolve answers; resolveErr, if set, fails it.
	policy     agentsv1alpha1.PublishPolicy
	resolveErr error
	resolves   atomic.Int32
}

func newPublisherWorld(t *testing.T) *publisherWorld {
	t.Helper()
	g := NewWithT(t)
	sim := apisim.New()
	sim.Start()
	t.Cleanup(sim.Close)
	sim.AddEnvironment("test", testToken)
	sim.AddAgent("test", "agent-1", apisim.AgentOptions{Published: true})
	api, err := talkover.New(talkover.Config{BaseURL: sim.URL(), Token: testToken})
	g.Expect(err).NotTo(HaveOccurred())
	w := &publisherWorld{g: g, sim: sim, api: api, ledger: newMemLedger(),
		env: types.NamespacedName{Namespace: "ns", Name: "test"}, policy: agentsv1alpha1.PublishPolicyAuto}
	w.key = agentKey{env: w.env, agentID: "agent-1"}
	w.pub = NewPublisher(200 * time.Millisecond)
	w.pub.Ledger = w.ledger
	w.pub.Resolve = func(context.Context, types.NamespacedName) (ActionAPI, agentsv1alpha1.PublishPolicy, error) {
		w.resolves.Add(1)
		if w.resolveErr != nil {
			return nil, "", w.resolveErr
		}
		return w.api, w.policy, nil
	}
	return w
}

// start runs the publish loop until the test ends.
func (w *publisherWorld) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.pub.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// change makes one change to the agent through the Publisher, as a
// reconcile does: BeginChange, the call, EndChange.
func (w *publisherWorld) change(ctx context.Context, node string) error {
	if err := w.pub.BeginChange(ctx, w.key, w.api, w.policy); err != nil {
		return err
	}
	defer w.pub.EndChange(w.key)
	_, err := w.api.UpsertAction(ctx, w.key.agentID, talkover.ActionRequest{
		NodeID: node, Name: "Lookup", Description: "Looks up the order.", Type: "webhook", URL: "https://example.com/hook",
	})
	return err
}

func (w *publisherWorld) agent() apisim.AgentState {
	a, _ := w.sim.Agent(w.key.agentID)
	return a
}

// A rollout whose record in the Ledger fails makes no change: otherwise a
// crash right after the change would leave the agent in draft with nothing
// recording the publish owed (the chaos run found this around a
// kube-apiserver restart). The next change of the same rollout records it.
func TestPublisher_noChangeBeforeTheOwedPublishIsRecorded(t *testing.T) {
	w := newPublisherWorld(t)
	ctx := context.Background()
	w.ledger.failAdd = 1
	err := w.change(ctx, "node-1")
	w.g.Expect(err).To(MatchError(ContainSubstring("owes a publish")))
	w.g.Expect(w.sim.Count(apisim.RouteUpsert)).To(BeZero(), "no change before the owed publish is recorded")
	w.g.Expect(w.ledger.list(w.env)).To(BeEmpty())

	// The retry (or another worker's change in the same rollout) records it
	// first, without reading the agent again.
	w.g.Expect(w.change(ctx, "node-1")).To(Succeed())
	w.g.Expect(w.change(ctx, "node-2")).To(Succeed())
	w.g.Expect(w.ledger.list(w.env)).To(ConsistOf("agent-1"))
	w.g.Expect(w.ledger.counts().adds).To(Equal(1), "one record per rollout")
	w.g.Expect(w.sim.Count(apisim.RouteGetAgent)).To(Equal(1))
	w.g.Expect(w.agent().Status).To(Equal(apisim.AgentDraft))

	// Once the changes settle: one publish, and the record is removed.
	w.start(t)
	w.g.Eventually(func() string { return w.agent().Status }, 10*time.Second, 20*time.Millisecond).Should(Equal(apisim.AgentPublished))
	w.g.Eventually(func() []string { return w.ledger.list(w.env) }, 5*time.Second, 20*time.Millisecond).Should(BeEmpty())
	w.g.Expect(w.agent().Publishes).To(Equal(1))
	st, ok := w.pub.State(w.key)
	w.g.Expect(ok).To(BeTrue())
	w.g.Expect(st.reason).To(Equal(agentsv1alpha1.ReasonAgentPublished))
}

// A publish found in the Ledger (owed by an earlier run, whose AgentActions
// may all be gone) is made once, without reading the agent, which is in
// draft only because of the earlier run's own changes.
func TestPublisher_publishesWhatTheLedgerRecords(t *testing.T) {
	w := newPublisherWorld(t)
	w.sim.SetAgentStatus(w.key.agentID, apisim.AgentDraft)
	w.ledger.owed[w.env] = []string{w.key.agentID}
	w.start(t)
	w.g.Eventually(func() string { return w.agent().Status }, 10*time.Second, 20*time.Millisecond).Should(Equal(apisim.AgentPublished))
	w.g.Eventually(func() []string { return w.ledger.list(w.env) }, 5*time.Second, 20*time.Millisecond).Should(BeEmpty())
	w.g.Consistently(func() int { return w.agent().Publishes }, time.Second, 50*time.Millisecond).Should(BeEquivalentTo(1))
	w.g.Expect(w.sim.Count(apisim.RouteGetAgent)).To(BeZero())

	// A change after that starts a new rollout, which reads the agent.
	w.g.Expect(w.change(context.Background(), "node-1")).To(Succeed())
	w.g.Expect(w.sim.Count(apisim.RouteGetAgent)).To(Equal(1))
	w.g.Eventually(func() int { return w.agent().Publishes }, 10*time.Second, 20*time.Millisecond).Should(Equal(2))
}

// A change through an environment whose Ledger records an owed publish
// does not read the agent: the rollout is the one the earlier run began.
func TestPublisher_changeAfterRestartContinuesTheRecordedRollout(t *testing.T) {
	w := newPublisherWorld(t)
	w.sim.SetAgentStatus(w.key.agentID, apisim.AgentDraft)
	w.ledger.owed[w.env] = []string{w.key.agentID}
	w.g.Expect(w.change(context.Background(), "node-1")).To(Succeed())
	w.g.Expect(w.sim.Count(apisim.RouteGetAgent)).To(BeZero())
	w.g.Expect(w.ledger.counts().adds).To(BeZero(), "already recorded")
	w.start(t)
	w.g.Eventually(func() string { return w.agent().Status }, 10*time.Second, 20*time.Millisecond).Should(Equal(apisim.AgentPublished))
	w.g.Expect(w.resolves.Load()).To(BeZero(), "the change brought its own client")
}

// A failed removal of the record is retried; the agent is published once.
func TestPublisher_removalOfTheRecordIsRetried(t *testing.T) {
	w := newPublisherWorld(t)
	w.ledger.failRem = 2
	w.g.Expect(w.change(context.Background(), "node-1")).To(Succeed())
	w.start(t)
	w.g.Eventually(func() []string { return w.ledger.list(w.env) }, 15*time.Second, 50*time.Millisecond).Should(BeEmpty())
	w.g.Expect(w.agent().Publishes).To(Equal(1))
	w.g.Expect(w.ledger.counts().removals).To(Equal(1))
}

// A recorded publish whose environment now says publishPolicy Manual is not
// made, and its record goes; one whose environment is gone is dropped
// without a call.
func TestPublisher_recordedPublishNotMadeUnderManualOrWithoutEnvironment(t *testing.T) {
	t.Run("Manual", func(t *testing.T) {
		w := newPublisherWorld(t)
		w.policy = agentsv1alpha1.PublishPolicyManual
		w.ledger.owed[w.env] = []string{w.key.agentID}
		w.start(t)
		w.g.Eventually(func() []string { return w.ledger.list(w.env) }, 10*time.Second, 20*time.Millisecond).Should(BeEmpty())
		st, _ := w.pub.State(w.key)
		w.g.Expect(st.reason).To(Equal(agentsv1alpha1.ReasonManualPublish))
		w.g.Expect(w.sim.Count(apisim.RoutePublish)).To(BeZero())
	})
	t.Run("environment gone", func(t *testing.T) {
		w := newPublisherWorld(t)
		w.resolveErr = apierrors.NewNotFound(schema.GroupResource{Group: "agents.talkover.ai", Resource: "environments"}, "test")
		w.ledger.owed[w.env] = []string{w.key.agentID}
		w.start(t)
		w.g.Eventually(func() int32 { return w.resolves.Load() }, 10*time.Second, 20*time.Millisecond).Should(BeEquivalentTo(1))
		w.g.Consistently(func() int32 { return w.resolves.Load() }, time.Second, 50*time.Millisecond).Should(BeEquivalentTo(1))
		w.g.Expect(w.sim.Count(apisim.RoutePublish)).To(BeZero())
	})
}

// A recorded publish of an agent that no longer exists (deleted in the
// dashboard) is tried once, not forever, and its record goes.
func TestPublisher_recordedPublishOfAMissingAgentEnds(t *testing.T) {
	w := newPublisherWorld(t)
	gone := agentKey{env: w.env, agentID: "agent-deleted-in-dashboard"}
	w.ledger.owed[w.env] = []string{gone.agentID}
	w.start(t)
	w.g.Eventually(func() []string { return w.ledger.list(w.env) }, 10*time.Second, 20*time.Millisecond).Should(BeEmpty())
	w.g.Consistently(func() int { return w.sim.Count(apisim.RoutePublish) }, 2*time.Second, 100*time.Millisecond).Should(Equal(1))
	st, _ := w.pub.State(gone)
	w.g.Expect(st.reason).To(Equal(agentsv1alpha1.ReasonAgentNotFound))
}
