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

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=agents.talkover.ai,resources=clusterenvironments,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// resolveEnvironment reads the referenced Environment (or ClusterEnvironment)
// and its token. A ClusterEnvironment is seen as an Environment with no
// namespace, whose token Secret is in the operator's namespace.
func (r *AgentActionReconciler) resolveEnvironment(ctx context.Context, s *agentActionScope) (ctrl.Result, error) {
	a := s.action
	if a.Spec.EnvironmentRef.Kind == agentsv1alpha1.EnvironmentKindCluster {
		return r.resolveClusterEnvironment(ctx, s)
	}
	env := &agentsv1alpha1.Environment{}
	key := types.NamespacedName{Namespace: a.Namespace, Name: a.Spec.EnvironmentRef.Name}
	if err := r.Get(ctx, key, env); err != nil {
		if apierrors.IsNotFound(err) {
			return r.stall(s, agentsv1alpha1.ReasonEnvironmentNotFound,
				"Environment %q not found in namespace %q.", key.Name, key.Namespace)
		}
		return ctrl.Result{}, err
	}
	return r.resolveToken(ctx, s, env)
}

func (r *AgentActionReconciler) resolveClusterEnvironment(ctx context.Context, s *agentActionScope) (ctrl.Result, error) {
	a := s.action
	ce := &agentsv1alpha1.ClusterEnvironment{}
	if err := r.Get(ctx, types.NamespacedName{Name: a.Spec.EnvironmentRef.Name}, ce); err != nil {
		if apierrors.IsNotFound(err) {
			return r.stall(s, agentsv1alpha1.ReasonEnvironmentNotFound, "ClusterEnvironment %q not found.", a.Spec.EnvironmentRef.Name)
		}
		return ctrl.Result{}, err
	}
	allowed, err := r.namespaceAllowed(ctx, ce.Spec.AllowedNamespaces, a.Namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !allowed {
		return r.stall(s, agentsv1alpha1.ReasonEnvironmentNotAllowed,
			"ClusterEnvironment %q does not allow namespace %q: see its spec.allowedNamespaces.", ce.Name, a.Namespace)
	}
	return r.resolveToken(ctx, s, clusterAsEnvironment(ce))
}

// clusterAsEnvironment is a ClusterEnvironment seen as an Environment with
// no namespace.
func clusterAsEnvironment(ce *agentsv1alpha1.ClusterEnvironment) *agentsv1alpha1.Environment {
	return &agentsv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: ce.Name}, Spec: ce.Spec.EnvironmentSpec}
}

// tokenNamespace is where an environment's token Secret is: its own
// namespace, or the operator's for a ClusterEnvironment.
func (r *AgentActionReconciler) tokenNamespace(env *agentsv1alpha1.Environment) string {
	if env.Namespace == "" {
		return r.ClusterEnvironmentNamespace
	}
	return env.Namespace
}

// namespaceAllowed says whether a selector selects a namespace; a nil
// selector selects none.
func (r *AgentActionReconciler) namespaceAllowed(ctx context.Context, selector *metav1.LabelSelector, namespace string) (bool, error) {
	if selector == nil {
		return false, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return false, nil //nolint:nilerr // an invalid selector allows nothing
	}
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(namespaceGVK)
	if err := r.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		return false, err
	}
	return sel.Matches(labels.Set(ns.GetLabels())), nil
}

// resolveToken reads the environment token.
func (r *AgentActionReconciler) resolveToken(ctx context.Context, s *agentActionScope, env *agentsv1alpha1.Environment) (ctrl.Result, error) {
	s.env = env
	token, err := r.secretValue(ctx, r.tokenNamespace(env), env.Spec.TokenSecretRef.Name, EffectiveTokenKey(env))
	if err != nil {
		return r.secretError(s, err, "the token of "+envDescription(env))
	}
	s.token = token
	return ctrl.Result{}, nil
}

// resolveAgentEnvironment returns the environment of an agent (no
// namespace: a ClusterEnvironment) and its API client, for the controllers
// keyed by agent.
func (r *AgentActionReconciler) resolveAgentEnvironment(ctx context.Context, key agentKey) (*agentsv1alpha1.Environment, ActionAPI, error) {
	env := &agentsv1alpha1.Environment{}
	if key.env.Namespace == "" {
		ce := &agentsv1alpha1.ClusterEnvironment{}
		if err := r.Get(ctx, key.env, ce); err != nil {
			return nil, nil, err
		}
		env = clusterAsEnvironment(ce)
	} else if err := r.Get(ctx, key.env, env); err != nil {
		return nil, nil, err
	}
	token, err := r.secretValue(ctx, r.tokenNamespace(env), env.Spec.TokenSecretRef.Name, EffectiveTokenKey(env))
	if err != nil {
		return nil, nil, err
	}
	api, err := r.Clients.For(env, token)
	if err != nil {
		return nil, nil, err
	}
	return env, api, nil
}

// envDescription names an environment for messages.
func envDescription(env *agentsv1alpha1.Environment) string {
	if env.Namespace == "" {
		return "ClusterEnvironment " + env.Name
	}
	return "Environment " + env.Name
}

// envRefKey is the value of indexEnvironment for an AgentAction.
func envRefKey(ref agentsv1alpha1.EnvironmentReference) string {
	if ref.Kind == agentsv1alpha1.EnvironmentKindCluster {
		return clusterEnvKey(ref.Name)
	}
	return ref.Name
}

func clusterEnvKey(name string) string {
	return string(agentsv1alpha1.EnvironmentKindCluster) + "/" + name
}
