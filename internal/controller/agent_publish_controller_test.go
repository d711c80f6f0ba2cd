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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// settledAction is an AgentAction whose status describes its generation.
func settledAction(generation int64) AgentAction {
	a := AgentAction{}
	a.Generation = generation
	a.Status.Conditions = []metav1.Condition{{Type: agentsv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: agentsv1alpha1.ReasonSynced, ObservedGeneration: generation}}
	return a
}

func TestIsSettled(t *testing.T) {
	now := metav1.Now()
	pending := settledAction(2)
	pending.Generation = 3
	retrying := settledAction(1)
	retrying.Status.Conditions = append(retrying.Status.Conditions, metav1.Condition{
		Type: agentsv1alpha1.ConditionReconciling, Status: metav1.ConditionTrue, Reason: agentsv1alpha1.ReasonWaitingForBudget})
	deleting := settledAction(1)
	deleting.DeletionTimestamp = &now
	deleting.Finalizers = []string{agentsv1alpha1.AgentActionFinalizer}
	released := deleting
	released.Finalizers = nil
	for name, tc := range map[string]struct {
		action AgentAction
		want   bool
	}{
		"synced for its generation":       {settledAction(1), true},
		"never reconciled":                {AgentAction{}, false},
		"a new generation not yet seen":   {pending, false},
		"waiting for its budget slot":     {retrying, false},
		"being deleted, remote to delete": {deleting, false},
		"being deleted, released":         {released, true},
	} {
		if got := isSettled(&tc.action); got != tc.want {
			t.Errorf("%s: isSettled = %v, want %v", name, got, tc.want)
		}
	}
}

func TestDecidePublish(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	quiet := 5 * time.Second
	refused := &agentsv1alpha1.AgentPublishStatus{AgentID: "a", Reason: agentsv1alpha1.ReasonAgentNotReady,
		LastTransitionTime: metav1.NewTime(t0.Add(-time.Minute))}
	base := func(change func(*publishInputs)) publishInputs {
		in := publishInputs{policy: agentsv1alpha1.PublishPolicyAuto, owed: true, known: true,
			actions: []AgentAction{settledAction(1), settledAction(4)}, now: t0, quiet: quiet, slowRetry: 10 * time.Minute,
			activity: activity{lastArrival: t0.Add(-time.Hour)}}
		change(&in)
		return in
	}
	for name, tc := range map[string]struct {
		in       publishInputs
		want     publishStep
		wantWait time.Duration
	}{
		"settled and quiet: publish":     {base(func(*publishInputs) {}), stepPublish, 0},
		"a push is in flight: wait":      {base(func(in *publishInputs) { in.activity.inflight = 1 }), stepWait, 0},
		"an action is not settled":       {base(func(in *publishInputs) { in.actions = append(in.actions, AgentAction{}) }), stepWait, 0},
		"changes still arriving":         {base(func(in *publishInputs) { in.activity.lastArrival = t0.Add(-2 * time.Second) }), stepQuiet, 3 * time.Second},
		"after a restart (no arrival)":   {base(func(in *publishInputs) { in.activity.lastArrival = time.Time{} }), stepPublish, 0},
		"owed but now Manual: cancel":    {base(func(in *publishInputs) { in.policy = agentsv1alpha1.PublishPolicyManual }), stepCancel, 0},
		"nothing owed: the rollout ends": {base(func(in *publishInputs) { in.owed = false }), stepEnd, 0},
		"owed, no action left: publish":  {base(func(in *publishInputs) { in.actions = nil }), stepPublish, 0},
		"a change waits for the prior state": {base(func(in *publishInputs) {
			in.owed, in.known = false, false
			in.actions = append(in.actions, AgentAction{})
		}), stepPrepare, 0},
		"a settled agent whose change waits for the prior state": {base(func(in *publishInputs) {
			in.owed, in.known = false, false
			in.activity.priorWanted = true
		}), stepPrepare, 0},
		"Manual needs no prior state": {base(func(in *publishInputs) {
			in.owed, in.known, in.policy = false, false, agentsv1alpha1.PublishPolicyManual
			in.actions = append(in.actions, AgentAction{})
		}), stepWait, 0},
		"refused with 422, nothing changed: slow retry": {base(func(in *publishInputs) { in.record = refused }), stepQuiet, 9 * time.Minute},
		"refused with 422, then a change: publish": {base(func(in *publishInputs) {
			in.record = refused
			in.activity.lastArrival = t0.Add(-30 * time.Second)
		}), stepPublish, 0},
	} {
		step, wait := decidePublish(tc.in)
		if step != tc.want || wait != tc.wantWait {
			t.Errorf("%s: decidePublish = %v, %v; want %v, %v", name, step, wait, tc.want, tc.wantWait)
		}
	}
}

func TestAgentPublishState(t *testing.T) {
	rec := func(reason string) *agentsv1alpha1.AgentPublishStatus {
		return &agentsv1alpha1.AgentPublishStatus{AgentID: "a", Reason: reason, Message: "recorded " + reason}
	}
	for name, tc := range map[string]struct {
		policy      agentsv1alpha1.PublishPolicy
		owed        bool
		rec         *agentsv1alpha1.AgentPublishStatus
		draft       bool
		wantKnown   bool
		wantReason  string
		wantStatus  bool
		wantMessage string
	}{
		"Manual":                          {policy: agentsv1alpha1.PublishPolicyManual, owed: true, wantKnown: true, wantReason: agentsv1alpha1.ReasonManualPublish},
		"owed":                            {policy: agentsv1alpha1.PublishPolicyAuto, owed: true, rec: rec(agentsv1alpha1.ReasonAgentPublished), wantKnown: true, wantReason: agentsv1alpha1.ReasonPublishPending, wantMessage: pendingMessage},
		"owed and refused with 422":       {policy: agentsv1alpha1.PublishPolicyAlways, owed: true, rec: rec(agentsv1alpha1.ReasonAgentNotReady), wantKnown: true, wantReason: agentsv1alpha1.ReasonAgentNotReady, wantMessage: "recorded AgentNotReady"},
		"published":                       {policy: agentsv1alpha1.PublishPolicyAuto, rec: rec(agentsv1alpha1.ReasonAgentPublished), wantKnown: true, wantReason: agentsv1alpha1.ReasonAgentPublished, wantStatus: true},
		"left in draft, seen by this run": {policy: agentsv1alpha1.PublishPolicyAuto, rec: rec(agentsv1alpha1.ReasonAgentPublished), draft: true, wantKnown: true, wantReason: agentsv1alpha1.ReasonAgentLeftInDraft},
		"left in draft, recorded":         {policy: agentsv1alpha1.PublishPolicyAuto, rec: rec(agentsv1alpha1.ReasonAgentLeftInDraft), wantKnown: true, wantReason: agentsv1alpha1.ReasonAgentLeftInDraft},
		"agent gone":                      {policy: agentsv1alpha1.PublishPolicyAlways, rec: rec(agentsv1alpha1.ReasonAgentNotFound), wantKnown: true, wantReason: agentsv1alpha1.ReasonAgentNotFound},
		"nothing recorded":                {policy: agentsv1alpha1.PublishPolicyAuto},
		"a pending record, settled since": {policy: agentsv1alpha1.PublishPolicyAuto, rec: rec(agentsv1alpha1.ReasonPublishPending)},
	} {
		st, known := agentPublishState(tc.policy, tc.owed, tc.rec, tc.draft)
		if known != tc.wantKnown || st.reason != tc.wantReason || st.status != tc.wantStatus ||
			(tc.wantMessage != "" && st.message != tc.wantMessage) {
			t.Errorf("%s: agentPublishState = %+v, %v; want reason %q status %v known %v", name, st, known, tc.wantReason, tc.wantStatus, tc.wantKnown)
		}
	}
}

// An AgentAction keeps its AgentPublished through a rollout only if it was
// last pushed before the rollout was prepared; one pushed in it (even read
// from a cache that has not seen its push, whose status the memory of the
// push fills) is written PublishPending.
func TestNotChangedSince(t *testing.T) {
	prepared := metav1.NewTime(time.Date(2026, 12, 4, 10, 0, 5, 0, time.UTC))
	rec := &agentsv1alpha1.AgentPublishStatus{AgentID: "a", Reason: agentsv1alpha1.ReasonPublishPending, LastTransitionTime: prepared}
	at := func(sec int) *AgentAction {
		a := settledAction(1)
		a.Status.Conditions = append(a.Status.Conditions, metav1.Condition{Type: agentsv1alpha1.ConditionAgentPublished,
			Status: metav1.ConditionTrue, Reason: agentsv1alpha1.ReasonAgentPublished})
		ts := metav1.NewTime(time.Date(2026, 12, 4, 10, 0, sec, 0, time.UTC))
		a.Status.LastSyncTime = &ts
		return &a
	}
	if !notChangedSince(at(1), rec) {
		t.Error("pushed before the rollout: should keep its condition")
	}
	if notChangedSince(at(5), rec) || notChangedSince(at(9), rec) {
		t.Error("pushed in the rollout: should be written PublishPending")
	}
	published := *rec
	published.Reason = agentsv1alpha1.ReasonAgentPublished
	if notChangedSince(at(1), &published) || notChangedSince(at(1), nil) {
		t.Error("no rollout under way in the record: nothing to keep")
	}
}

// Once this process has written an agent's ledger entry, an informer copy
// older than the write (listing an entry it removed, or not yet the one it
// added) does not decide whether a publish is owed.
func TestActivityOwes(t *testing.T) {
	var fresh activity
	if fresh.owes(false) || !fresh.owes(true) {
		t.Error("with no write of its own, the process follows the status")
	}
	settled := activity{ledgerKnown: true}
	if settled.owes(true) {
		t.Error("an entry this process removed counts as owed again from an older copy")
	}
	added := activity{ledgerKnown: true, owed: true}
	if !added.owes(false) {
		t.Error("an entry this process added is not owed while the copy does not show it")
	}
}
