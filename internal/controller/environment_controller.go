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
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// EnvironmentReconciler reports whether an Environment is usable: its token
// Secret exists, and the API last accepted the token. It makes no API call
// of its own; the AgentAction controller reports what the API said.
type EnvironmentReconciler struct {
	client.Client
	APIReader client.Reader
	Clients   *Clients
	// AuthChanges receives the Environments whose token was just accepted or
	// rejected by the API.
	AuthChanges chan event.TypedGenericEvent[*agentsv1alpha1.Environment]
}

// +kubebuilder:rbac:groups=agents.talkover.ai,resources=environments,verbs=get;list;watch
// +kubebuilder:rbac:groups=agents.talkover.ai,resources=environments/status,verbs=get;update;patch

// Reconcile computes an Environment's Ready condition.
func (r *EnvironmentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	env := &agentsv1alpha1.Environment{}
	if err := r.Get(ctx, req.NamespacedName, env); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.Clients.Forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := env.DeepCopy()
	cond, err := r.readiness(ctx, env)
	if err != nil {
		return ctrl.Result{}, err
	}
	cond.ObservedGeneration = env.Generation
	meta.SetStatusCondition(&env.Status.Conditions, cond)
	env.Status.ObservedGeneration = env.Generation
	if equality.Semantic.DeepEqual(before.Status, env.Status) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, client.IgnoreNotFound(r.Status().Patch(ctx, env, client.MergeFrom(before)))
}

// readiness is the Ready condition of an Environment.
func (r *EnvironmentReconciler) readiness(ctx context.Context, env *agentsv1alpha1.Environment) (metav1.Condition, error) {
	_, err := readSecretValue(ctx, r.APIReader, env.Namespace, env.Spec.TokenSecretRef.Name, EffectiveTokenKey(env))
	switch {
	case errors.Is(err, errSecretMissing):
		return metav1.Condition{Type: agentsv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: agentsv1alpha1.ReasonSecretNotFound, Message: fmt.Sprintf("Cannot read the token: %s.", err.Error())}, nil
	case err != nil:
		return metav1.Condition{}, err
	}
	if auth, ok := r.Clients.Auth(types.NamespacedName{Namespace: env.Namespace, Name: env.Name}); ok && !auth.ok {
		return metav1.Condition{Type: agentsv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: auth.reason, Message: truncate(auth.message, maxConditionMessage)}, nil
	}
	return metav1.Condition{Type: agentsv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: agentsv1alpha1.ReasonTokenValid, Message: "The token Secret is present and the API has not rejected it."}, nil
}

// NotifyAuthChange queues an Environment whose token state changed. It never
// blocks the caller.
func (r *EnvironmentReconciler) NotifyAuthChange(name types.NamespacedName) {
	env := &agentsv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Namespace: name.Namespace, Name: name.Name}}
	select {
	case r.AuthChanges <- event.TypedGenericEvent[*agentsv1alpha1.Environment]{Object: env}:
	default:
	}
}

// SetupWithManager registers the controller: Environments, the metadata of
// their token Secrets, and the token reports of the AgentAction controller.
func (r *EnvironmentReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&agentsv1alpha1.Environment{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.environmentsOfSecret)).
		WatchesRawSource(source.Channel(r.AuthChanges, &handler.TypedEnqueueRequestForObject[*agentsv1alpha1.Environment]{})).
		Named("environment").
		Complete(r)
}

func (r *EnvironmentReconciler) environmentsOfSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var envs agentsv1alpha1.EnvironmentList
	if err := r.List(ctx, &envs, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexTokenSecret: o.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(envs.Items))
	for _, e := range envs.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: e.Namespace, Name: e.Name}})
	}
	return reqs
}
