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
	"slices"
	"strings"

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

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// EnvironmentReconciler reports whether Environments and ClusterEnvironments
// are usable: the token Secret exists, and the API has not refused the
// token. It makes no API call of its own: what the API said is read from
// the AgentActions that use the environment (their Ready reason is
// Unauthorized when their last call was refused with 401), so it survives
// a restart and a user sees where it comes from.
type EnvironmentReconciler struct {
	client.Client
	APIReader client.Reader
	// Clients drops the API client, and the credential's budget when no
	// environment uses it any more, of a deleted environment.
	Clients *Clients
	// ClusterEnvironmentNamespace is the operator's namespace, where the
	// token Secrets of ClusterEnvironments are.
	ClusterEnvironmentNamespace string
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
	_, secretErr := readSecretValue(ctx, r.APIReader, secretNamespace, spec.TokenSecretRef.Name, key)
	if secretErr != nil && !errors.Is(secretErr, errSecretMissing) {
		return metav1.Condition{}, secretErr
	}
	refused, err := r.refusedActions(ctx, name)
	if err != nil {
		return metav1.Condition{}, err
	}
	return environmentReadiness(secretErr, refused), nil
}

// environmentReadiness is the Ready condition of an environment, from what
// was read: the token Secret (secretErr wraps errSecretMissing when it or
// its key is missing) and the AgentActions refused with 401. It is a pure
// function.
func environmentReadiness(secretErr error, refused []AgentAction) metav1.Condition {
	if secretErr != nil {
		return metav1.Condition{Type: agentsv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: agentsv1alpha1.ReasonSecretNotFound, Message: fmt.Sprintf("Cannot read the token: %s.", secretErr.Error())}
	}
	if c, ok := refusalCondition(refused); ok {
		return c
	}
	return metav1.Condition{Type: agentsv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: agentsv1alpha1.ReasonTokenValid, Message: "The token Secret is present and the API has not rejected it."}
}

// refusedActions lists the AgentActions of an environment (no namespace: a
// ClusterEnvironment) whose last call the API refused with 401.
func (r *EnvironmentReconciler) refusedActions(ctx context.Context, env types.NamespacedName) ([]AgentAction, error) {
	ref := env.Name
	if env.Namespace == "" {
		ref = clusterEnvKey(env.Name)
	}
	var list agentsv1alpha1.AgentActionList
	if err := r.List(ctx, &list, client.InNamespace(env.Namespace), client.MatchingFields{indexEnvironment: ref}); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(list.Items, func(a AgentAction) bool { return !tokenRefused(&a) }), nil
}

// tokenRefused says whether an AgentAction's last call was refused with
// 401: the token itself is refused. A 403 says that the token may not
// manage one agent; it stays on that AgentAction and does not make the
// environment (shared, for a ClusterEnvironment, by other namespaces)
// unusable.
func tokenRefused(a *AgentAction) bool {
	c := findCondition(a.Status.Conditions, agentsv1alpha1.ConditionReady)
	return c != nil && c.Reason == agentsv1alpha1.ReasonUnauthorized
}

// refusalCondition is the Ready condition of an environment some of whose
// AgentActions had their calls refused with 401. It is a pure function.
func refusalCondition(refused []AgentAction) (metav1.Condition, bool) {
	if len(refused) == 0 {
		return metav1.Condition{}, false
	}
	slices.SortFunc(refused, func(a, b AgentAction) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	first := refused[0]
	ready := findCondition(first.Status.Conditions, agentsv1alpha1.ConditionReady)
	msg := fmt.Sprintf("The Talkover API refused the calls of %d AgentAction(s) (%s); the first, %s/%s: %s",
		len(refused), ready.Reason, first.Namespace, first.Name, ready.Message)
	return metav1.Condition{Type: agentsv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: ready.Reason, Message: truncate(msg, maxConditionMessage)}, true
}

// SetupWithManager registers two controllers, for Environments and
// ClusterEnvironments: they watch the objects, the metadata of their token
// Secrets, and the AgentActions whose calls the API refused or stopped
// refusing.
func (r *EnvironmentReconciler) SetupWithManager(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).
		For(&agentsv1alpha1.Environment{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.environmentsOfSecret)).
		Watches(&AgentAction{}, handler.EnqueueRequestsFromMapFunc(environmentOfAction(false)),
			builder.WithPredicates(refusalChanged{})).
		Named("environment").
		Complete(r)
	if err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&agentsv1alpha1.ClusterEnvironment{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.clusterEnvironmentsOfSecret)).
		Watches(&AgentAction{}, handler.EnqueueRequestsFromMapFunc(environmentOfAction(true)),
			builder.WithPredicates(refusalChanged{})).
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

// environmentOfAction maps an AgentAction to its Environment, or (cluster)
// to its ClusterEnvironment.
func environmentOfAction(cluster bool) handler.MapFunc {
	return func(_ context.Context, o client.Object) []reconcile.Request {
		a, ok := o.(*AgentAction)
		if !ok || (a.Spec.EnvironmentRef.Kind == agentsv1alpha1.EnvironmentKindCluster) != cluster {
			return nil
		}
		key := agentOf(a).env
		return []reconcile.Request{{NamespacedName: key}}
	}
}

// refusalChanged passes AgentAction events that change whether its last
// call was refused with 401.
type refusalChanged struct {
	predicate.Funcs
}

// Create passes a refused AgentAction (at start-up).
func (refusalChanged) Create(e event.CreateEvent) bool {
	a, ok := e.Object.(*AgentAction)
	return ok && tokenRefused(a)
}

// Update passes a change of refusal.
func (refusalChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*AgentAction)
	n, ok2 := e.ObjectNew.(*AgentAction)
	return ok1 && ok2 && (tokenRefused(o) != tokenRefused(n) || tokenRefused(n) && readyMessage(o) != readyMessage(n))
}

// Delete passes a refused AgentAction that is gone.
func (refusalChanged) Delete(e event.DeleteEvent) bool {
	a, ok := e.Object.(*AgentAction)
	return ok && tokenRefused(a)
}

func readyMessage(a *AgentAction) string {
	if c := findCondition(a.Status.Conditions, agentsv1alpha1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}
