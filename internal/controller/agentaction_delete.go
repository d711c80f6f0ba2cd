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
	if a.Spec.DeletionPolicy != agentsv1alpha1.DeletionPolicyOrphan && a.Status.ID != "" && !r.isDuplicate(ctx, s) {
		if res, err := r.deleteRemote(ctx, s); err != nil || s.done {
			return res, err
		}
	}
	return ctrl.Result{}, r.removeFinalizer(ctx, s)
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
	if err := r.Publisher.BeginChange(ctx, s.agent, s.api, EffectivePublishPolicy(s.env)); err != nil {
		if talkover.IsNotFound(err) {
			// The agent is gone, and its actions with it.
			return ctrl.Result{}, nil
		}
		return r.apiError(ctx, s, err)
	}
	err := s.api.DeleteAction(talkover.WithPriority(ctx, talkover.PriorityHigh), a.Spec.AgentID, a.Status.ID)
	r.Publisher.EndChange(s.agent)
	if err != nil && !talkover.IsNotFound(err) {
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
	s.base = s.action.DeepCopy()
	return nil
}
