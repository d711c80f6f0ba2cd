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

package chaos

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// item is the test's model of one AgentAction: what the user last asked for.
type item struct {
	ns     string
	idx    int
	name   string
	agent  string
	node   string
	typ    agentsv1alpha1.ActionType
	policy agentsv1alpha1.DeletionPolicy
	// rev is the number of spec updates made.
	rev int
	// owed: an update was made while the previous revision was Ready, so
	// it needs a push of its own (until the item is deleted first).
	owed    bool
	created bool
	deleted bool
}

// spec is the desired spec of the item at its current revision.
func (it *item) spec() agentsv1alpha1.AgentActionSpec {
	s := agentsv1alpha1.AgentActionSpec{
		EnvironmentRef: agentsv1alpha1.EnvironmentReference{Name: envName},
		AgentID:        it.agent,
		NodeID:         it.node,
		Name:           fmt.Sprintf("Chaos action %03d", it.idx),
		Description:    fmt.Sprintf("Chaos test action %d of agent %s, revision %d.", it.idx, it.agent, it.rev),
		Type:           it.typ,
		CurrentStatus:  "active",
		DeletionPolicy: it.policy,
	}
	if it.rev > 0 {
		s.Name += fmt.Sprintf(" (rev %d)", it.rev)
	}
	switch it.typ {
	case agentsv1alpha1.ActionTypeWebhook:
		s.URL = fmt.Sprintf("https://hooks.example.com/chaos/%03d/r%d", it.idx, it.rev)
	case agentsv1alpha1.ActionTypeTransfer:
		s.TransferTo = fmt.Sprintf("+1415555%02d%02d", it.idx%100, it.rev%100)
	case agentsv1alpha1.ActionTypeHold:
		d := int32(10 + it.rev)
		s.HoldDuration = &d
	case agentsv1alpha1.ActionTypeExternal:
		// No type-specific field.
	}
	return s
}

func (it *item) object() *agentsv1alpha1.AgentAction {
	return &agentsv1alpha1.AgentAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: it.ns, Name: it.name},
		Spec:       it.spec(),
	}
}

// model is the set of items and what the workload did to them.
type model struct {
	mu      sync.Mutex
	items   []*item
	creates int
	updates int
	deletes int
	// deletesRemote counts deletes of items with policy Delete.
	deletesRemote int
	// updatesAfterSync counts updates made while the previous revision was
	// Ready (so it needs a POST of its own); deletesSynced counts deletes of
	// items that recorded a remote action (so they were pushed), and
	// deletesNeeded those of them with policy Delete (a DELETE is needed).
	updatesAfterSync, deletesSynced, deletesNeeded int
}

func newModel(ns string, sz size, agents []string) *model {
	m := &model{}
	types := []agentsv1alpha1.ActionType{agentsv1alpha1.ActionTypeWebhook, agentsv1alpha1.ActionTypeTransfer, agentsv1alpha1.ActionTypeHold}
	for i := range sz.actions {
		policy := agentsv1alpha1.DeletionPolicyDelete
		if i%5 == 4 {
			policy = agentsv1alpha1.DeletionPolicyOrphan
		}
		m.items = append(m.items, &item{
			ns: ns, idx: i, name: fmt.Sprintf("action-%03d", i), agent: agents[i%len(agents)],
			node: fmt.Sprintf("node-%03d", i), typ: types[i%len(types)], policy: policy,
		})
	}
	return m
}

// live returns the indexes of the items created and not deleted.
func (m *model) live() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int
	for _, it := range m.items {
		if it.created && !it.deleted {
			out = append(out, it.idx)
		}
	}
	return out
}

// snapshot returns copies of the items.
func (m *model) snapshot() []item {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]item, 0, len(m.items))
	for _, it := range m.items {
		out = append(out, *it)
	}
	return out
}

// opKind is one kind of user action.
type opKind int

const (
	opCreate opKind = iota
	opUpdate
	opDelete
)

// op is one planned user action, at an offset from the start of the chaos.
type op struct {
	at   time.Duration
	kind opKind
	// idx is the item created; updates and deletes pick a live item when
	// they run.
	idx int
}

// plan spreads the creates over the first 60% of the period and the
// updates and deletes over the rest of it, interleaved.
func (w *world) plan() []op {
	p := w.sz.period
	ops := make([]op, 0, w.sz.actions+w.sz.updates+w.sz.deletes)
	for i := range w.sz.actions {
		ops = append(ops, op{at: time.Duration(float64(p) * 0.6 * float64(i) / float64(w.sz.actions)), kind: opCreate, idx: i})
	}
	for range w.sz.updates {
		ops = append(ops, op{at: w.randDuration(p/20, p*9/10), kind: opUpdate})
	}
	for range w.sz.deletes {
		ops = append(ops, op{at: w.randDuration(p/5, p*9/10), kind: opDelete})
	}
	slices.SortStableFunc(ops, func(a, b op) int { return int(a.at - b.at) })
	return ops
}

// runWorkload runs the planned user actions in order, each at its time or
// as soon as the previous one is done. Every action is retried until it
// succeeds (the kube-apiserver may be down).
func (w *world) runWorkload(ctx context.Context, m *model, start time.Time) error {
	for _, o := range w.plan() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(start.Add(o.at))): // the user's schedule, not a stand-in for a condition
		}
		var err error
		switch o.kind {
		case opCreate:
			err = w.create(ctx, m, m.items[o.idx])
		case opUpdate:
			err = w.updateRandom(ctx, m)
		case opDelete:
			err = w.deleteRandom(ctx, m)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// retry calls f until it succeeds, for up to two minutes.
func retry(ctx context.Context, what string, f func(ctx context.Context) error) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(callCtx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		time.Sleep(250 * time.Millisecond) // between attempts: f's success is the condition
	}
}

func (w *world) create(ctx context.Context, m *model, it *item) error {
	err := retry(ctx, "creating "+it.name, func(ctx context.Context) error {
		err := w.cp.Client.Create(ctx, it.object())
		if apierrors.IsAlreadyExists(err) {
			// An earlier attempt went through before the connection broke.
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	it.created = true
	m.creates++
	m.mu.Unlock()
	return nil
}

// updateRandom moves a random live item to its next revision.
func (w *world) updateRandom(ctx context.Context, m *model) error {
	live := m.live()
	if len(live) == 0 {
		return nil
	}
	m.mu.Lock()
	it := m.items[live[w.randN(len(live))]]
	it.rev++
	want := it.spec()
	m.mu.Unlock()
	synced := false
	err := retry(ctx, "updating "+it.name, func(ctx context.Context) error {
		var a agentsv1alpha1.AgentAction
		if err := w.cp.Client.Get(ctx, client.ObjectKey{Namespace: it.ns, Name: it.name}, &a); err != nil {
			return err
		}
		if equality.Semantic.DeepEqual(a.Spec, want) {
			// An earlier attempt went through before the connection broke.
			return nil
		}
		synced = isSynced(&a)
		a.Spec = want
		return w.cp.Client.Update(ctx, &a)
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.updates++
	if synced {
		m.updatesAfterSync++
		it.owed = true
	}
	m.mu.Unlock()
	return nil
}

// deleteRandom deletes a random live item.
func (w *world) deleteRandom(ctx context.Context, m *model) error {
	live := m.live()
	if len(live) == 0 {
		return nil
	}
	m.mu.Lock()
	it := m.items[live[w.randN(len(live))]]
	it.deleted = true
	m.mu.Unlock()
	pushed, current := false, false
	err := retry(ctx, "deleting "+it.name, func(ctx context.Context) error {
		var a agentsv1alpha1.AgentAction
		err := w.cp.Client.Get(ctx, client.ObjectKey{Namespace: it.ns, Name: it.name}, &a)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		case !a.DeletionTimestamp.IsZero():
			// An earlier attempt went through before the connection broke.
			return nil
		}
		pushed, current = a.Status.ID != "", isSynced(&a)
		return client.IgnoreNotFound(w.cp.Client.Delete(ctx, &a, client.Preconditions{UID: &a.UID, ResourceVersion: &a.ResourceVersion}))
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.deletes++
	if it.policy != agentsv1alpha1.DeletionPolicyOrphan {
		m.deletesRemote++
	}
	if it.owed && !current {
		// Its last update was never pushed, and now need not be.
		m.updatesAfterSync--
	}
	if pushed {
		m.deletesSynced++
		if it.policy != agentsv1alpha1.DeletionPolicyOrphan {
			m.deletesNeeded++
		}
	}
	m.mu.Unlock()
	return nil
}

// isSynced reports whether an AgentAction is Ready for its generation.
func isSynced(a *agentsv1alpha1.AgentAction) bool {
	c := meta(a, agentsv1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == a.Generation && a.Status.ID != ""
}
