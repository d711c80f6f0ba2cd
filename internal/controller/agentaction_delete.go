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

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

// reconcileDelete removes the remote action (deletionPolicy Delete) and then
// the finalizer. A resource that never reached the API, or whose policy is
// Orphan, is released without a call. A paused resource keeps its finalizer
// until the annotation is removed.
func (r *AgentActionReconciler) reconcileDelete(ctx context.Context, s *agentActionScope) (ctrl.Result, error) {
	a := s.action
	if !controllerutil.ContainsFinalizer(a, agentsv1alpha1.AgentActionFinalizer) {
		return ctrl.Result{}, nil
	}
	if isPaused(a) {
		s.outcome = outcome{kind: outcomePaused, reason: agentsv1alpha1.ReasonPaused,
			message: "Deletion waits: the " + agentsv1alpha1.PausedAnnotation + " annotation is \"true\"."}
		return ctrl.Result{}, nil
	}
	s.outcome = outcome{kind: outcomeDeleting, reason: agentsv1alpha1.ReasonDeleting, message: "Deleting the remote action."}
	if a.Spec.DeletionPolicy != agentsv1alpha1.DeletionPolicyOrphan && !r.isDuplicate(ctx, s) {
		r.applied.catchUp(a)
		if a.Status.ID == "" && pushMayHaveLanded(a) {
			if res, err := r.reclaimRemote(ctx, s); err != nil || s.done {
				return res, err
			}
		}
		if a.Status.ID != "" || a.Status.ReplacedID != "" {
			if res, err := r.deleteRemote(ctx, s); err != nil || s.done {
				return res, err
			}
		}
	}
	return ctrl.Result{}, r.removeFinalizer(ctx, s)
}

// pushMayHaveLanded says whether a resource with a finalizer but no
// status.id may still have a remote action: the finalizer is added right
// before the first push, and the operator may have stopped (a crash, a lost
// answer) before it recorded the ID. It has not when the API answered the
// last push with a refusal.
func pushMayHaveLanded(a *AgentAction) bool {
	c := findCondition(a.Status.Conditions, agentsv1alpha1.ConditionReady)
	if c == nil {
		return true
	}
	switch c.Reason {
	case agentsv1alpha1.ReasonProgressing, agentsv1alpha1.ReasonAPIUnavailable, agentsv1alpha1.ReasonRateLimited,
		agentsv1alpha1.ReasonWaitingForBudget, agentsv1alpha1.ReasonDrifted, agentsv1alpha1.ReasonDeleting:
		return true
	}
	return false
}

// reclaimRemote finds the remote action of a push whose answer was lost: it
// sends the spec again, which the API applies to the same (agent, node_id),
// and records the ID it answers, so deleteRemote can remove it. If the
// environment or a Secret is gone, or the API refuses, there is nothing to
// reclaim and the resource is released.
func (r *AgentActionReconciler) reclaimRemote(ctx context.Context, s *agentActionScope) (ctrl.Result, error) {
	for _, phase := range []phaseFunc{r.resolveEnvironment, r.resolveSecrets, r.connect} {
		if res, err := phase(ctx, s); err != nil {
			return res, err
		}
		if s.done {
			s.done = false
			s.outcome = outcome{kind: outcomeDeleting, reason: agentsv1alpha1.ReasonDeleting, message: "Deleting the remote action."}
			return ctrl.Result{}, nil
		}
	}
	if err := r.beginChange(ctx, s); err != nil {
		return r.reclaimError(ctx, s, err)
	}
	remote, err := s.api.UpsertAction(talkover.WithTurn(ctx, actionTurn(s.action), s.action.Namespace, talkover.PriorityHigh), s.action.Spec.AgentID, s.request)
	r.endChange(s)
	if err != nil {
		return r.reclaimError(ctx, s, err)
	}
	log.FromContext(ctx).Info("Found the remote action of an unrecorded push", "id", remote.ID)
	s.action.Status.ID = remote.ID
	return ctrl.Result{}, nil
}

// reclaimError releases the resource on a refusal (nothing to reclaim) and
// retries anything else.
func (r *AgentActionReconciler) reclaimError(ctx context.Context, s *agentActionScope, err error) (ctrl.Result, error) {
	if talkover.IsTerminal(err) {
		return ctrl.Result{}, nil
	}
	return r.apiError(ctx, s, err)
}

// isDuplicate says whether a newer twin claims the remote action of an
// older AgentAction; it must not delete it.
func (r *AgentActionReconciler) isDuplicate(ctx context.Context, s *agentActionScope) bool {
	owner, err := r.otherOwner(ctx, s.action)
	return err == nil && owner != nil
}

// deleteRemote calls DELETE for the remote action; 404 means it is gone.
func (r *AgentActionReconciler) deleteRemote(ctx context.Context, s *agentActionScope) (ctrl.Result, error) {
	a := s.action
	if res, err := r.resolveEnvironment(ctx, s); err != nil || s.done {
		return res, err
	}
	if res, err := r.connect(ctx, s); err != nil || s.done {
		return res, err
	}
	if err := r.beginChange(ctx, s); err != nil {
		return r.apiError(ctx, s, err)
	}
	defer r.endChange(s)
	turn := talkover.WithTurn(ctx, actionTurn(a), a.Namespace, talkover.PriorityHigh)
	if id := a.Status.ReplacedID; id != "" {
		// A twin the API left: deleted first, and forgotten once gone.
		if err := s.api.DeleteAction(turn, a.Spec.AgentID, id); err != nil && !talkover.IsNotFound(err) {
			return r.apiError(ctx, s, err)
		}
		a.Status.ReplacedID = ""
	}
	if a.Status.ID == "" {
		return ctrl.Result{}, nil
	}
	if err := s.api.DeleteAction(turn, a.Spec.AgentID, a.Status.ID); err != nil && !talkover.IsNotFound(err) {
		return r.apiError(ctx, s, err)
	}
	log.FromContext(ctx).Info("Deleted remote action", "id", a.Status.ID, "agent", a.Spec.AgentID)
	r.Recorder.Eventf(a, nil, corev1.EventTypeNormal, "Deleted", "Delete", "Deleted remote action %s from agent %s.", a.Status.ID, a.Spec.AgentID)
	return ctrl.Result{}, nil
}

// removeFinalizer releases the resource.
func (r *AgentActionReconciler) removeFinalizer(ctx context.Context, s *agentActionScope) error {
	before := s.action.DeepCopy()
	controllerutil.RemoveFinalizer(s.action, agentsv1alpha1.AgentActionFinalizer)
	if err := r.Patch(ctx, s.action, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(err)
	}
	r.applied.forget(s.action.UID)
	s.base = s.action.DeepCopy()
	return nil
}
