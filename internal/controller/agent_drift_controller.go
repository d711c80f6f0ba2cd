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
	"math/rand/v2"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

// AgentDriftReconciler finds remote actions changed or deleted outside
// Kubernetes. It is keyed by agent: once per drift interval it makes one
// list call for the agent, shared by all the agent's AgentActions, at the
// lowest priority of the environment's budget. It records what differs in
// the status of each AgentAction concerned (Synced=False, reason Drifted,
// and a cleared status.appliedHash), where the AgentAction's own reconcile
// reads it and pushes once; a restart loses nothing.
//
// The interval is a RequeueAfter. The only state it keeps is when each
// agent is next due, a schedule: losing it (a restart) moves one check by
// at most an interval and changes no outcome.
type AgentDriftReconciler struct {
	client.Client
	// Resolve returns an environment and its API client.
	Resolve func(ctx context.Context, env agentKey) (*agentsv1alpha1.Environment, ActionAPI, error)
	Now     func() time.Time

	schedule sync.Map // agentKey -> driftSchedule
}

// driftSchedule is when an agent's next drift check is due.
type driftSchedule struct {
	interval time.Duration
	due      time.Time
}

// Reconcile checks one agent's remote actions if its check is due, and
// requeues for the next one.
func (r *AgentDriftReconciler) Reconcile(ctx context.Context, key agentKey) (ctrl.Result, error) {
	actions, err := listAgentActions(ctx, r.Client, key)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(actions) == 0 {
		r.schedule.Delete(key)
		return ctrl.Result{}, nil
	}
	env, api, err := r.Resolve(ctx, key)
	if apierrors.IsNotFound(err) {
		r.schedule.Delete(key)
		return ctrl.Result{}, nil
	}
	if err != nil {
		// The AgentActions report why the environment cannot be used; a
		// change of it queues the agent again, and so does this requeue.
		return ctrl.Result{RequeueAfter: resolveRetry}, nil //nolint:nilerr // reported by the AgentActions
	}
	interval := EffectiveDriftCheckInterval(env)
	if interval <= 0 {
		r.schedule.Delete(key)
		return ctrl.Result{}, nil
	}
	now := r.now()
	due := r.due(key, interval, now)
	if now.Before(due) {
		return ctrl.Result{RequeueAfter: due.Sub(now)}, nil
	}
	checked := driftCandidates(actions)
	if len(checked) > 0 {
		remote, err := api.ListActions(talkover.WithTurn(ctx, key.turn("drift"), key.env.Namespace, talkover.PriorityLow), key.agentID)
		if wait, ok := notSent(err); ok {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		if err != nil {
			log.FromContext(ctx).Info("Drift check failed; will retry", "agent", key.agentID, "error", err.Error())
			return ctrl.Result{}, err
		}
		if err := r.record(ctx, checked, remote); err != nil {
			return ctrl.Result{}, err
		}
	}
	r.schedule.Store(key, driftSchedule{interval: interval, due: now.Add(interval)})
	return ctrl.Result{RequeueAfter: interval}, nil
}

// due returns when the agent's next check is due. The first check of an
// agent, and the first after its interval changed, comes after a random
// part of the interval, so that agents do not all fire together.
func (r *AgentDriftReconciler) due(key agentKey, interval time.Duration, now time.Time) time.Time {
	if v, ok := r.schedule.Load(key); ok && v.(driftSchedule).interval == interval {
		return v.(driftSchedule).due
	}
	s := driftSchedule{interval: interval, due: now.Add(jitter(interval))}
	r.schedule.Store(key, s)
	return s.due
}

// jitter spreads the first check over the interval: between half and all of it.
func jitter(interval time.Duration) time.Duration {
	return interval/2 + time.Duration(rand.Int64N(int64(interval/2)+1)) //nolint:gosec // jitter needs no cryptographic randomness
}

// driftCandidates are the AgentActions whose remote action is known to
// match their spec: Ready for their current generation with nothing under
// way (a change waiting for its push, or a stalled one, is not compared
// with the remote action it has not replaced yet), not being deleted, not
// paused.
func driftCandidates(actions []AgentAction) []*AgentAction {
	var out []*AgentAction
	for i := range actions {
		a := &actions[i]
		if a.Status.ID == "" || a.Status.AppliedHash == "" || !a.DeletionTimestamp.IsZero() || isPaused(a) || !isSettled(a) {
			continue
		}
		if c := findCondition(a.Status.Conditions, agentsv1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
			continue
		}
		out = append(out, a)
	}
	return out
}

// record writes the finding of a drift check into the status of each
// AgentAction whose remote action differs. The write is made with an
// optimistic lock: an AgentAction changed meanwhile is pushed anyway, or
// checked again at the next interval.
func (r *AgentDriftReconciler) record(ctx context.Context, checked []*AgentAction, remote []talkover.Action) error {
	byID := make(map[string]talkover.Action, len(remote))
	for _, a := range remote {
		byID[a.ID] = a
	}
	var errs []error
	for _, a := range checked {
		found, ok := byID[a.Status.ID]
		why := compareRemote(&a.Spec, found, ok)
		if why == "" {
			continue
		}
		// The list shares the cache's objects: write a copy.
		before := a.DeepCopy()
		a = a.DeepCopy()
		markDrifted(a, why, !ok, metav1.NewTime(r.now()))
		err := r.Status().Patch(ctx, a, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
		switch {
		case err == nil:
			log.FromContext(ctx).Info("Found a remote action changed outside Kubernetes", "agentAction", client.ObjectKeyFromObject(a), "drift", why)
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		default:
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// markDrifted records a drift finding in an AgentAction's status: the
// applied hash is cleared, so its reconcile pushes again, and a remote
// action that is gone loses its ID, so the push recreates it.
func markDrifted(a *AgentAction, why string, missing bool, now metav1.Time) {
	a.Status.AppliedHash = ""
	if missing {
		a.Status.ID = ""
	}
	a.Status.Conditions = computeConditions(a.Status.Conditions,
		outcome{kind: outcomeDrifted, reason: agentsv1alpha1.ReasonDrifted, message: why}, a.Generation, now)
}

// notSent reports whether err says a call did not leave because the budget
// or the circuit breaker held it, and when to come back.
func notSent(err error) (time.Duration, bool) {
	var budget *talkover.BudgetError
	var open *talkover.CircuitOpenError
	switch {
	case errors.As(err, &budget):
		return budget.RetryAfter, true
	case errors.As(err, &open):
		return open.RetryAfter, true
	}
	return 0, false
}

func (r *AgentDriftReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// listAgentActions lists the cached AgentActions of an agent. The items
// are the cache's own objects, not copies (the agent-keyed controllers
// list an agent's AgentActions on every event of one of them): callers
// must not change them, and copy one before writing it.
func listAgentActions(ctx context.Context, c client.Reader, key agentKey) ([]AgentAction, error) {
	var list agentsv1alpha1.AgentActionList
	if err := c.List(ctx, &list, client.InNamespace(key.env.Namespace),
		client.MatchingFields{indexAgent: agentIndexKey(key)}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// SetupWithManager registers the drift controller, keyed by agent: it is
// fed by the AgentActions (created, deleted, changed or newly synced) and
// by the environments whose drift interval changed.
func (r *AgentDriftReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return builder.TypedControllerManagedBy[agentKey](mgr).
		Named("agentdrift").
		WatchesRawSource(source.TypedKind(mgr.GetCache(), &AgentAction{},
			handler.TypedEnqueueRequestsFromMapFunc(agentOfAction), agentSetChanged())).
		WatchesRawSource(source.TypedKind(mgr.GetCache(), &agentsv1alpha1.Environment{},
			handler.TypedEnqueueRequestsFromMapFunc(agentsOfEnvironment(r.Client)),
			predicate.TypedGenerationChangedPredicate[*agentsv1alpha1.Environment]{})).
		WatchesRawSource(source.TypedKind(mgr.GetCache(), &agentsv1alpha1.ClusterEnvironment{},
			handler.TypedEnqueueRequestsFromMapFunc(agentsOfClusterEnvironment(r.Client)),
			predicate.TypedGenerationChangedPredicate[*agentsv1alpha1.ClusterEnvironment]{})).
		WithOptions(controller.TypedOptions[agentKey]{MaxConcurrentReconciles: 2, ReconciliationTimeout: reconcileTimeout,
			RateLimiter: newTypedRetryRateLimiter[agentKey]()}).
		Complete(r)
}

// agentSetChanged passes the AgentAction events that change which of an
// agent's remote actions a drift check compares: a create, a delete, a new
// generation, a deletion that starts, and a push or drift finding (the
// applied hash changed).
func agentSetChanged() predicate.TypedPredicate[*AgentAction] {
	return predicate.TypedFuncs[*AgentAction]{
		UpdateFunc: func(e event.TypedUpdateEvent[*AgentAction]) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return o.Generation != n.Generation || o.Status.AppliedHash != n.Status.AppliedHash ||
				o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
		},
	}
}
