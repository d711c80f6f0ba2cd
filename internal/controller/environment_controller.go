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

// EnvironmentReconciler reports whether Environments and ClusterEnvironments
// are usable: the token Secret exists, and the API last accepted the token.
// It makes no API call of its own; the AgentAction controller reports what
// the API said through NotifyAuthChange.
type EnvironmentReconciler struct {
	client.Client
	APIReader client.Reader
	Clients   *Clients
	// ClusterEnvironmentNamespace is the operator's namespace, where the
	// token Secrets of ClusterEnvironments are.
	ClusterEnvironmentNamespace string

	authChanges        chan event.TypedGenericEvent[*agentsv1alpha1.Environment]
	clusterAuthChanges chan event.TypedGenericEvent[*agentsv1alpha1.ClusterEnvironment]
}

// NewEnvironmentReconciler returns an EnvironmentReconciler; its Clients are
// set afterwards, since the Clients notify it.
func NewEnvironmentReconciler(c client.Client, apiReader client.Reader, clusterNamespace string) *EnvironmentReconciler {
	return &EnvironmentReconciler{
		Client: c, APIReader: apiReader, ClusterEnvironmentNamespace: clusterNamespace,
		authChanges:        make(chan event.TypedGenericEvent[*agentsv1alpha1.Environment], 1024),
		clusterAuthChanges: make(chan event.TypedGenericEvent[*agentsv1alpha1.ClusterEnvironment], 1024),
	}
}

// +kubebuilder:rbac:groups=agents.talkover.ai,resources=environments,verbs=get;list;watch
// +kubebuilder:rbac:groups=agents.talkover.ai,resources=environments/status,verbs=patch
// +kubebuilder:rbac:groups=agents.talkover.ai,resources=clusterenvironments,verbs=get;list;watch
// +kubebuilder:rbac:groups=agents.talkover.ai,resources=clusterenvironments/status,verbs=patch

// Reconcile computes an Environment's conditions.
func (r *EnvironmentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	env := &agentsv1alpha1.Environment{}
	return r.reconcileEnvironment(ctx, req.NamespacedName, env, &env.Spec, &env.Status, req.Namespace)
}

// reconcileCluster computes a ClusterEnvironment's conditions; its token
// Secret is in the operator's namespace.
func (r *EnvironmentReconciler) reconcileCluster(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	env := &agentsv1alpha1.ClusterEnvironment{}
	return r.reconcileEnvironment(ctx, req.NamespacedName, env, &env.Spec.EnvironmentSpec, &env.Status, r.ClusterEnvironmentNamespace)
}

// reconcileEnvironment reads obj (an Environment or a ClusterEnvironment,
// whose spec and status are given) and patches its status if the computed
// conditions changed. A deleted environment's API client is dropped.
func (r *EnvironmentReconciler) reconcileEnvironment(ctx context.Context, key types.NamespacedName, obj client.Object,
	spec *agentsv1alpha1.EnvironmentSpec, status *agentsv1alpha1.EnvironmentStatus, secretNamespace string) (ctrl.Result, error) {
	if err := r.Get(ctx, key, obj); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.Clients.Forget(key)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.DeepCopyObject().(client.Object)
	statusBefore := status.DeepCopy()
	if err := r.computeStatus(ctx, obj, spec, status, secretNamespace); err != nil {
		return ctrl.Result{}, err
	}
	if equality.Semantic.DeepEqual(statusBefore, status) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, client.IgnoreNotFound(r.Status().Patch(ctx, obj, client.MergeFrom(before)))
}

// computeStatus sets Ready, and Stalled while Ready is False: an environment
// without a usable token needs a person.
func (r *EnvironmentReconciler) computeStatus(ctx context.Context, obj client.Object, spec *agentsv1alpha1.EnvironmentSpec,
	status *agentsv1alpha1.EnvironmentStatus, secretNamespace string) error {
	name := types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	cond, err := r.readiness(ctx, name, spec, secretNamespace)
	if err != nil {
		return err
	}
	cond.ObservedGeneration = obj.GetGeneration()
	cond.LastTransitionTime = metav1.Now()
	meta.SetStatusCondition(&status.Conditions, cond)
	if cond.Status == metav1.ConditionTrue {
		meta.RemoveStatusCondition(&status.Conditions, agentsv1alpha1.ConditionStalled)
	} else {
		stalled := cond
		stalled.Type = agentsv1alpha1.ConditionStalled
		stalled.Status = metav1.ConditionTrue
		meta.SetStatusCondition(&status.Conditions, stalled)
	}
	status.ObservedGeneration = obj.GetGeneration()
	return nil
}

// readiness is the Ready condition of an environment.
func (r *EnvironmentReconciler) readiness(ctx context.Context, name types.NamespacedName, spec *agentsv1alpha1.EnvironmentSpec,
	secretNamespace string) (metav1.Condition, error) {
	key := spec.TokenSecretRef.Key
	if key == "" {
		key = agentsv1alpha1.DefaultTokenKey
	}
	_, err := readSecretValue(ctx, r.APIReader, secretNamespace, spec.TokenSecretRef.Name, key)
	switch {
	case errors.Is(err, errSecretMissing):
		return metav1.Condition{Type: agentsv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: agentsv1alpha1.ReasonSecretNotFound, Message: fmt.Sprintf("Cannot read the token: %s.", err.Error())}, nil
	case err != nil:
		return metav1.Condition{}, err
	}
	if auth, ok := r.Clients.Auth(name); ok && !auth.ok {
		return metav1.Condition{Type: agentsv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: auth.reason, Message: truncate(auth.message, maxConditionMessage)}, nil
	}
	return metav1.Condition{Type: agentsv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: agentsv1alpha1.ReasonTokenValid, Message: "The token Secret is present and the API has not rejected it."}, nil
}

// NotifyAuthChange queues an environment whose token state changed (an empty
// namespace names a ClusterEnvironment). It never blocks the caller.
func (r *EnvironmentReconciler) NotifyAuthChange(name types.NamespacedName) {
	om := metav1.ObjectMeta{Namespace: name.Namespace, Name: name.Name}
	if name.Namespace == "" {
		select {
		case r.clusterAuthChanges <- event.TypedGenericEvent[*agentsv1alpha1.ClusterEnvironment]{
			Object: &agentsv1alpha1.ClusterEnvironment{ObjectMeta: om}}:
		default:
		}
		return
	}
	select {
	case r.authChanges <- event.TypedGenericEvent[*agentsv1alpha1.Environment]{Object: &agentsv1alpha1.Environment{ObjectMeta: om}}:
	default:
	}
}

// SetupWithManager registers two controllers, for Environments and
// ClusterEnvironments: they watch the objects, the metadata of their token
// Secrets, and the token reports of the AgentAction controller.
func (r *EnvironmentReconciler) SetupWithManager(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).
		For(&agentsv1alpha1.Environment{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.environmentsOfSecret)).
		WatchesRawSource(source.Channel(r.authChanges, &handler.TypedEnqueueRequestForObject[*agentsv1alpha1.Environment]{})).
		Named("environment").
		Complete(r)
	if err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&agentsv1alpha1.ClusterEnvironment{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.clusterEnvironmentsOfSecret)).
		WatchesRawSource(source.Channel(r.clusterAuthChanges, &handler.TypedEnqueueRequestForObject[*agentsv1alpha1.ClusterEnvironment]{})).
		Named("clusterenvironment").
		Complete(reconcile.Func(r.reconcileCluster))
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

func (r *EnvironmentReconciler) clusterEnvironmentsOfSecret(ctx context.Context, o client.Object) []reconcile.Request {
	if o.GetNamespace() != r.ClusterEnvironmentNamespace {
		return nil
	}
	var envs agentsv1alpha1.ClusterEnvironmentList
	if err := r.List(ctx, &envs, client.MatchingFields{indexTokenSecret: o.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(envs.Items))
	for _, e := range envs.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: e.Name}})
	}
	return reqs
}
