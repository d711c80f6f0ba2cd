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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

// driftAgent is the drift-check schedule of one agent.
type driftAgent struct {
	api      ActionAPI
	interval time.Duration
	next     time.Time
	running  bool
}

// DriftChecker finds remote actions changed or deleted outside Kubernetes.
// Per agent and drift interval it makes one list call, shared by all the
// agent's AgentActions, at the lowest priority of the rate limiter. It marks
// the AgentActions whose remote action differs and re-queues them; their
// reconcile pushes once. It is a manager Runnable (leader only).
type DriftChecker struct {
	Client client.Reader
	// Notify re-queues one AgentAction.
	Notify func(types.NamespacedName)
	Now    func() time.Time
	// Workers bounds the concurrent list calls.
	Workers int

	mu      sync.Mutex
	agents  map[agentKey]*driftAgent
	drifted map[types.UID]string
}

// NewDriftChecker returns an empty DriftChecker.
func NewDriftChecker(c client.Reader) *DriftChecker {
	return &DriftChecker{Client: c, Now: time.Now, Workers: 4,
		agents: map[agentKey]*driftAgent{}, drifted: map[types.UID]string{}}
}

// Track schedules drift checks of an agent at an interval (0 stops them).
// The first check comes after a random part of the interval, so agents do
// not all fire together.
func (d *DriftChecker) Track(key agentKey, api ActionAPI, interval time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.agents[key]
	if interval <= 0 {
		delete(d.agents, key)
		return
	}
	if !ok {
		a = &driftAgent{}
		d.agents[key] = a
	}
	a.api = api
	if a.interval != interval || a.next.IsZero() {
		a.interval = interval
		a.next = d.Now().Add(jitter(interval))
	}
}

// jitter spreads the first check over the interval: between half and all of it.
func jitter(interval time.Duration) time.Duration {
	return interval/2 + time.Duration(rand.Int64N(int64(interval/2)+1)) //nolint:gosec // jitter needs no cryptographic randomness
}

// Drifted returns why an AgentAction's remote action differs, if a drift
// check found it.
func (d *DriftChecker) Drifted(uid types.UID) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	why, ok := d.drifted[uid]
	return why, ok
}

// Corrected clears the drift mark of an AgentAction after its push.
func (d *DriftChecker) Corrected(uid types.UID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.drifted, uid)
}

// Start runs the drift loop until ctx ends.
func (d *DriftChecker) Start(ctx context.Context) error {
	sem := make(chan struct{}, max(1, d.Workers))
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		for _, key := range d.due() {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				d.check(ctx, key)
			}()
		}
	}
}

// due returns the agents whose check is due and marks them running.
func (d *DriftChecker) due() []agentKey {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.Now()
	var keys []agentKey
	for key, a := range d.agents {
		if !a.running && !now.Before(a.next) {
			a.running = true
			keys = append(keys, key)
		}
	}
	return keys
}

// check lists one agent's actions and marks the AgentActions that differ.
func (d *DriftChecker) check(ctx context.Context, key agentKey) {
	d.mu.Lock()
	a := d.agents[key]
	api := a.api
	d.mu.Unlock()
	var retryIn time.Duration
	defer func() { d.reschedule(key, retryIn) }()

	var actions agentsv1alpha1.AgentActionList
	if err := d.Client.List(ctx, &actions, client.InNamespace(key.env.Namespace),
		client.MatchingFields{indexAgent: agentIndexKey(key)}); err != nil {
		return
	}
	if len(actions.Items) == 0 {
		d.mu.Lock()
		delete(d.agents, key)
		d.mu.Unlock()
		return
	}
	remote, err := api.ListActions(talkover.WithTurn(ctx, key.turn("drift"), talkover.PriorityLow), key.agentID)
	if budget := (*talkover.BudgetError)(nil); errors.As(err, &budget) {
		// Not sent: come back when the booked slot is due.
		retryIn = budget.RetryAfter
		return
	}
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			log.FromContext(ctx).Info("Drift check failed", "agent", key.agentID, "error", err.Error())
		}
		return
	}
	byID := make(map[string]talkover.Action, len(remote))
	for _, r := range remote {
		byID[r.ID] = r
	}
	for i := range actions.Items {
		item := &actions.Items[i]
		if item.Status.ID == "" || item.Status.AppliedHash == "" || !item.DeletionTimestamp.IsZero() || isPaused(item) {
			continue
		}
		why := compareRemote(&item.Spec, byID[item.Status.ID], byID[item.Status.ID].ID != "")
		if why == "" {
			continue
		}
		d.mu.Lock()
		d.drifted[item.UID] = why
		d.mu.Unlock()
		if d.Notify != nil {
			d.Notify(types.NamespacedName{Namespace: item.Namespace, Name: item.Name})
		}
	}
}

// reschedule plans the next check of an agent: after retryIn if the check
// could not be made yet, otherwise after the interval.
func (d *DriftChecker) reschedule(key agentKey, retryIn time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, ok := d.agents[key]; ok {
		a.running = false
		if retryIn <= 0 {
			retryIn = a.interval
		}
		a.next = d.Now().Add(retryIn)
	}
}

// driftMissing is the drift reason of a remote action that no longer exists.
const driftMissing = "the remote action was deleted outside Kubernetes"

// compareRemote compares the fields the API returns with the spec, and
// says what differs ("" when nothing does).
func compareRemote(spec *agentsv1alpha1.AgentActionSpec, remote talkover.Action, found bool) string {
	if !found {
		return driftMissing
	}
	wantStatus := string(spec.CurrentStatus)
	if wantStatus == "" {
		wantStatus = "active"
	}
	diffs := []struct {
		field string
		same  bool
	}{
		{"name", remote.Name == spec.Name},
		{"description", remote.Description == spec.Description},
		{"type", remote.Type == string(spec.Type)},
		{"url", remote.URL == spec.URL},
		{"authorization_url", remote.AuthorizationURL == spec.AuthorizationURL},
		{"current_status", remote.CurrentStatus == wantStatus},
		{"input_schema", sameInputs(spec.Inputs, remote.InputSchema)},
	}
	for _, diff := range diffs {
		if !diff.same {
			return "the remote action's " + diff.field + " was changed outside Kubernetes"
		}
	}
	return ""
}

// sameInputs compares the spec's inputs with the API's input_schema.
func sameInputs(want []agentsv1alpha1.ActionInput, got []talkover.Input) bool {
	if len(want) != len(got) {
		return false
	}
	for i, w := range want {
		g := got[i]
		if w.Name != g.Name || w.Type != g.Type || w.Description != g.Description || !sameBool(w.Required, g.Required) {
			return false
		}
		var raw []byte
		if w.Value != nil {
			raw = w.Value.Raw
		}
		if !sameJSON(raw, g.Value) {
			return false
		}
	}
	return true
}

func sameBool(a, b *bool) bool {
	return (a == nil && (b == nil || !*b)) || (b == nil && !*a) || (a != nil && b != nil && *a == *b)
}

// sameJSON compares two JSON values semantically; empty means absent.
func sameJSON(a, b []byte) bool {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	if len(a) == 0 || len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return (len(a) == 0 || bytes.Equal(a, []byte("null"))) && (len(b) == 0 || bytes.Equal(b, []byte("null")))
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}
