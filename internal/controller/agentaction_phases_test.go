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
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

// fakeAPI is an ActionAPI of function fields, for unit tables: a field left
// nil fails the call with "not implemented" (cert-manager's FakeACME).
type fakeAPI struct {
	reserve      func(ctx context.Context) (context.Context, error)
	upsertAction func(ctx context.Context, agentID string, req talkover.ActionRequest) (*talkover.Action, error)
	listActions  func(ctx context.Context, agentID string) ([]talkover.Action, error)
	deleteAction func(ctx context.Context, agentID, actionID string) error
	getAgent     func(ctx context.Context, agentID string) (*talkover.Agent, error)
	publishAgent func(ctx context.Context, agentID string) (*talkover.Agent, error)
}

var _ ActionAPI = &fakeAPI{}

var errNotImplemented = errors.New("not implemented")

func (f *fakeAPI) Reserve(ctx context.Context) (context.Context, error) {
	if f.reserve == nil {
		return ctx, errNotImplemented
	}
	return f.reserve(ctx)
}

func (f *fakeAPI) UpsertAction(ctx context.Context, agentID string, req talkover.ActionRequest) (*talkover.Action, error) {
	if f.upsertAction == nil {
		return nil, errNotImplemented
	}
	return f.upsertAction(ctx, agentID, req)
}

func (f *fakeAPI) ListActions(ctx context.Context, agentID string) ([]talkover.Action, error) {
	if f.listActions == nil {
		return nil, errNotImplemented
	}
	return f.listActions(ctx, agentID)
}

func (f *fakeAPI) DeleteAction(ctx context.Context, agentID, actionID string) error {
	if f.deleteAction == nil {
		return errNotImplemented
	}
	return f.deleteAction(ctx, agentID, actionID)
}

func (f *fakeAPI) GetAgent(ctx context.Context, agentID string) (*talkover.Agent, error) {
	if f.getAgent == nil {
		return nil, errNotImplemented
	}
	return f.getAgent(ctx, agentID)
}

func (f *fakeAPI) PublishAgent(ctx context.Context, agentID string) (*talkover.Agent, error) {
	if f.publishAgent == nil {
		return nil, errNotImplemented
	}
	return f.publishAgent(ctx, agentID)
}

// TestAgentActionReconciler_pushAction drives the push phase alone, with a
// fake API and a fake kube client: what is reserved, when the finalizer
// goes on, what is sent, and how each answer is classified.
func TestAgentActionReconciler_pushAction(t *testing.T) {
	slotFree := func(ctx context.Context) (context.Context, error) { return ctx, nil }
	accepted := func(id string) func(context.Context, string, talkover.ActionRequest) (*talkover.Action, error) {
		return func(context.Context, string, talkover.ActionRequest) (*talkover.Action, error) {
			return &talkover.Action{ID: id, UpdatedAt: "2026-12-04T10:00:00Z"}, nil
		}
	}
	tests := map[string]pushCase{
		"the budget has a slot: finalizer, then the push": {
			api: &fakeAPI{reserve: slotFree, upsertAction: accepted("act-1")}, wantSent: 1,
			wantReason: agentsv1alpha1.ReasonSynced, wantKind: outcomeSynced, wantFinalizer: true, wantID: "act-1",
		},
		"the budget is spent: requeue for the booked slot, nothing sent, no finalizer": {
			api: &fakeAPI{reserve: func(ctx context.Context) (context.Context, error) {
				return ctx, &talkover.BudgetError{Op: "Reserve", RetryAfter: 3 * time.Second}
			}},
			wantReason: agentsv1alpha1.ReasonWaitingForBudget, wantKind: outcomeProgressing,
			wantRequeue: [2]time.Duration{3 * time.Second, 3 * time.Second},
		},
		"the server asked to wait: requeue after the pause, with jitter": {
			api: &fakeAPI{reserve: func(ctx context.Context) (context.Context, error) {
				return ctx, &talkover.BudgetError{Op: "Reserve", RetryAfter: time.Hour, Paused: true}
			}},
			wantReason: agentsv1alpha1.ReasonRateLimited, wantKind: outcomeRetrying,
			wantRequeue: [2]time.Duration{time.Hour, time.Hour * 12 / 10},
		},
		"the server is slow to answer the calls under way: requeue, status unchanged": {
			api: &fakeAPI{reserve: func(ctx context.Context) (context.Context, error) {
				return ctx, &talkover.BudgetError{Op: "Reserve", RetryAfter: time.Second, Busy: true}
			}},
			wantKind:    outcomeNone,
			wantRequeue: [2]time.Duration{time.Second, 1500 * time.Millisecond},
		},
		"the circuit is open: requeue for the probe": {
			api: &fakeAPI{reserve: func(ctx context.Context) (context.Context, error) {
				return ctx, &talkover.CircuitOpenError{Op: "Reserve", RetryAfter: 4 * time.Second}
			}},
			wantReason: agentsv1alpha1.ReasonAPIUnavailable, wantKind: outcomeRetrying,
			wantRequeue: [2]time.Duration{4 * time.Second, 5 * time.Second},
		},
		"a 422: stalled, retried only slowly": {
			api: &fakeAPI{reserve: slotFree, upsertAction: func(context.Context, string, talkover.ActionRequest) (*talkover.Action, error) {
				return nil, &talkover.APIError{Op: talkover.OpUpsertAction, StatusCode: http.StatusUnprocessableEntity, Message: "url is invalid"}
			}},
			wantSent: 1, wantReason: agentsv1alpha1.ReasonValidationFailed, wantKind: outcomeStalled, wantFinalizer: true,
			wantRequeue: [2]time.Duration{15 * time.Minute, 15 * time.Minute},
		},
		"the API created a twin: the old action is deleted at once when the budget allows": {
			api: &fakeAPI{reserve: slotFree, upsertAction: accepted("act-2"),
				deleteAction: func(_ context.Context, _, id string) error {
					if id != "act-1" {
						return errors.New("deleted the wrong action " + id)
					}
					return nil
				}},
			status:   agentsv1alpha1.AgentActionStatus{ID: "act-1", AppliedHash: "old"},
			wantSent: 1, wantReason: agentsv1alpha1.ReasonSynced, wantKind: outcomeSynced, wantFinalizer: true, wantID: "act-2",
		},
		"the API created a twin and the budget is spent: the delete waits for its slot, recorded": {
			api: &fakeAPI{reserve: slotFree, upsertAction: accepted("act-2"),
				deleteAction: func(context.Context, string, string) error {
					return &talkover.BudgetError{Op: talkover.OpDeleteAction, RetryAfter: 2 * time.Second}
				}},
			status:   agentsv1alpha1.AgentActionStatus{ID: "act-1", AppliedHash: "old"},
			wantSent: 1, wantReason: agentsv1alpha1.ReasonSynced, wantKind: outcomeSynced, wantFinalizer: true, wantID: "act-2",
			wantReplaced: "act-1", wantRequeue: [2]time.Duration{2 * time.Second, 2 * time.Second},
		},
	}
	for name, tc := range tests {
		t.Run(name, tc.run)
	}
}

// pushCase is one case of TestAgentActionReconciler_pushAction.
type pushCase struct {
	api *fakeAPI
	// status is the AgentAction's status before the push.
	status agentsv1alpha1.AgentActionStatus
	// wantSent is the number of upserts.
	wantSent      int
	wantReason    string
	wantKind      outcomeKind
	wantFinalizer bool
	wantID        string
	// wantReplaced is the status.replacedId left to delete.
	wantReplaced string
	// wantRequeue bounds the RequeueAfter.
	wantRequeue [2]time.Duration
}

// run drives pushAction once for the case and checks what it did.
func (tc pushCase) run(t *testing.T) {
	r, s, sent := tc.setUp(t)
	res, err := r.pushAction(context.Background(), s)
	if err != nil {
		t.Fatalf("pushAction: %v", err)
	}
	tc.check(t, r, s, res, *sent)
}

// setUp builds a reconciler on a fake kube client holding the case's
// AgentAction, and the scope of its push; the upserts are counted, and
// each checks that the finalizer was on before it left.
func (tc pushCase) setUp(t *testing.T) (*AgentActionReconciler, *agentActionScope, *int) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := agentsv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	action := &AgentAction{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "team", UID: "uid-1"},
		Spec: agentsv1alpha1.AgentActionSpec{AgentID: "agent-1", NodeID: "node-1"}, Status: tc.status}
	if tc.status.ID != "" {
		controllerutil.AddFinalizer(action, agentsv1alpha1.AgentActionFinalizer)
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(action).WithStatusSubresource(action).Build()
	if err := kube.Get(context.Background(), client.ObjectKeyFromObject(action), action); err != nil {
		t.Fatal(err)
	}
	r := &AgentActionReconciler{Client: kube, Recorder: &events.FakeRecorder{}, StalledRetryInterval: 15 * time.Minute}
	r.publisher = &AgentPublishReconciler{}
	env := &agentsv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "env", Namespace: "team"},
		Spec: agentsv1alpha1.EnvironmentSpec{PublishPolicy: agentsv1alpha1.PublishPolicyManual}}
	sent := 0
	api := *tc.api
	if up := api.upsertAction; up != nil {
		api.upsertAction = func(ctx context.Context, agentID string, req talkover.ActionRequest) (*talkover.Action, error) {
			sent++
			var live AgentAction
			if err := kube.Get(ctx, client.ObjectKeyFromObject(action), &live); err != nil || !controllerutil.ContainsFinalizer(&live, agentsv1alpha1.AgentActionFinalizer) {
				t.Error("a push left before the finalizer was on the AgentAction")
			}
			return up(ctx, agentID, req)
		}
	}
	s := &agentActionScope{action: action, base: action.DeepCopy(), env: env, api: &api,
		agent: agentOf(action), hash: "new"}
	return r, s, &sent
}

// check compares what the push did with what the case wants.
func (tc pushCase) check(t *testing.T, r *AgentActionReconciler, s *agentActionScope, res ctrl.Result, sent int) {
	t.Helper()
	action := s.action
	if sent != tc.wantSent {
		t.Errorf("%d upserts, want %d", sent, tc.wantSent)
	}
	if s.outcome.reason != tc.wantReason || s.outcome.kind != tc.wantKind {
		t.Errorf("outcome %v/%q, want %v/%q (%s)", s.outcome.kind, s.outcome.reason, tc.wantKind, tc.wantReason, s.outcome.message)
	}
	if got := controllerutil.ContainsFinalizer(action, agentsv1alpha1.AgentActionFinalizer); got != tc.wantFinalizer {
		t.Errorf("finalizer %v, want %v", got, tc.wantFinalizer)
	}
	if action.Status.ID != tc.wantID && tc.wantID != "" {
		t.Errorf("status.id %q, want %q", action.Status.ID, tc.wantID)
	}
	if action.Status.ReplacedID != tc.wantReplaced {
		t.Errorf("status.replacedId %q, want %q", action.Status.ReplacedID, tc.wantReplaced)
	}
	if res.RequeueAfter < tc.wantRequeue[0] || res.RequeueAfter > tc.wantRequeue[1] {
		t.Errorf("RequeueAfter %v, want within %v", res.RequeueAfter, tc.wantRequeue)
	}
	if a := r.activity.snapshot(s.agent); a.inflight != 0 {
		t.Errorf("%d changes left in flight", a.inflight)
	}
}
