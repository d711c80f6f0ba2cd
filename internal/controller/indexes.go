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
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// Field indexes on the cached AgentActions and Environments.
const (
	// indexEnvironment: AgentActions by the name of their Environment.
	indexEnvironment = ".spec.environmentRef.name"
	// indexSecret: AgentActions by the Secrets their headers read.
	indexSecret = ".spec.customHeaders.valueFrom.secretKeyRef.name"
	// indexIdentity: AgentActions by namespace/environment/agent/node.
	indexIdentity = "identity"
	// indexAgent: AgentActions by environment/agent.
	indexAgent = "agent"
	// indexTokenSecret: Environments by the name of their token Secret.
	indexTokenSecret = ".spec.tokenSecretRef.name"
)

func setupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &AgentAction{}, indexEnvironment, func(o client.Object) []string {
		return []string{envRefKey(o.(*AgentAction).Spec.EnvironmentRef)}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &AgentAction{}, indexSecret, func(o client.Object) []string {
		var names []string
		for _, h := range o.(*AgentAction).Spec.CustomHeaders {
			if h.ValueFrom != nil {
				names = append(names, h.ValueFrom.SecretKeyRef.Name)
			}
		}
		return names
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &AgentAction{}, indexIdentity, func(o client.Object) []string {
		return []string{identityKey(o.(*AgentAction))}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &AgentAction{}, indexAgent, func(o client.Object) []string {
		a := o.(*AgentAction)
		return []string{envRefKey(a.Spec.EnvironmentRef) + "/" + a.Spec.AgentID}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &agentsv1alpha1.ClusterEnvironment{}, indexTokenSecret, func(o client.Object) []string {
		return []string{o.(*agentsv1alpha1.ClusterEnvironment).Spec.TokenSecretRef.Name}
	}); err != nil {
		return err
	}
	return idx.IndexField(ctx, &agentsv1alpha1.Environment{}, indexTokenSecret, func(o client.Object) []string {
		return []string{o.(*agentsv1alpha1.Environment).Spec.TokenSecretRef.Name}
	})
}

// agentIndexKey is the indexAgent value of an agent (within its namespace).
func agentIndexKey(key agentKey) string {
	if key.env.Namespace == "" {
		return clusterEnvKey(key.env.Name) + "/" + key.agentID
	}
	return key.env.Name + "/" + key.agentID
}

// identityKey is what two AgentActions must not share: they would write the
// same remote action.
// A ClusterEnvironment's identities span namespaces.
func identityKey(a *AgentAction) string {
	scope := a.Namespace
	if a.Spec.EnvironmentRef.Kind == agentsv1alpha1.EnvironmentKindCluster {
		scope = ""
	}
	return scope + "/" + envRefKey(a.Spec.EnvironmentRef) + "/" + a.Spec.AgentID + "/" + a.Spec.NodeID
}

// duplicatePeers re-queues the other AgentActions with the same identity, so
// a duplicate takes over when the owner goes.
func (r *AgentActionReconciler) duplicatePeers(ctx context.Context, o client.Object) []reconcile.Request {
	a, ok := o.(*AgentAction)
	if !ok {
		return nil
	}
	reqs := r.listRequests(ctx, "", client.MatchingFields{indexIdentity: identityKey(a)})
	return slices.DeleteFunc(reqs, func(req reconcile.Request) bool {
		return req.Namespace == a.Namespace && req.Name == a.Name
	})
}

// actionsOfClusterEnvironment re-queues the AgentActions, in every
// namespace, that use a ClusterEnvironment.
func (r *AgentActionReconciler) actionsOfClusterEnvironment(ctx context.Context, o client.Object) []reconcile.Request {
	return r.listRequests(ctx, "", client.MatchingFields{indexEnvironment: clusterEnvKey(o.GetName())})
}

// actionsOfNamespace re-queues the AgentActions of a namespace that use a
// ClusterEnvironment, whose allowedNamespaces may select it differently
// after a label change.
func (r *AgentActionReconciler) actionsOfNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	var list agentsv1alpha1.AgentActionList
	if err := r.List(ctx, &list, client.InNamespace(o.GetName())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, item := range list.Items {
		if item.Spec.EnvironmentRef.Kind == agentsv1alpha1.EnvironmentKindCluster {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: item.Namespace, Name: item.Name}})
		}
	}
	return reqs
}

// requeueAgent re-queues every AgentAction of an agent.
func (r *AgentActionReconciler) requeueAgent(key agentKey) {
	reqs := r.listRequests(context.Background(), key.env.Namespace, client.MatchingFields{indexAgent: agentIndexKey(key)})
	for _, req := range reqs {
		r.requeue(req.NamespacedName)
	}
}

// requeue queues one AgentAction from outside the watches. It never
// blocks: when the channel is full the AgentAction's own safety requeue
// brings it back.
func (r *AgentActionReconciler) requeue(name types.NamespacedName) {
	a := &AgentAction{}
	a.Namespace, a.Name = name.Namespace, name.Name
	select {
	case r.requeues <- event.TypedGenericEvent[*AgentAction]{Object: a}:
	default:
	}
}

// actionsOfEnvironment re-queues the AgentActions that use an Environment.
func (r *AgentActionReconciler) actionsOfEnvironment(ctx context.Context, o client.Object) []reconcile.Request {
	return r.listRequests(ctx, o.GetNamespace(), client.MatchingFields{indexEnvironment: o.GetName()})
}

// actionsOfSecret re-queues the AgentActions that read a Secret: through a
// header, or as the token of their Environment.
func (r *AgentActionReconciler) actionsOfSecret(ctx context.Context, o client.Object) []reconcile.Request {
	reqs := r.listRequests(ctx, o.GetNamespace(), client.MatchingFields{indexSecret: o.GetName()})
	var envs agentsv1alpha1.EnvironmentList
	if err := r.List(ctx, &envs, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexTokenSecret: o.GetName()}); err != nil {
		return reqs
	}
	for i := range envs.Items {
		reqs = append(reqs, r.actionsOfEnvironment(ctx, &envs.Items[i])...)
	}
	if o.GetNamespace() != r.ClusterEnvironmentNamespace {
		return reqs
	}
	var cenvs agentsv1alpha1.ClusterEnvironmentList
	if err := r.List(ctx, &cenvs, client.MatchingFields{indexTokenSecret: o.GetName()}); err != nil {
		return reqs
	}
	for i := range cenvs.Items {
		reqs = append(reqs, r.actionsOfClusterEnvironment(ctx, &cenvs.Items[i])...)
	}
	return reqs
}

func (r *AgentActionReconciler) listRequests(ctx context.Context, namespace string, fields client.MatchingFields) []reconcile.Request {
	var list agentsv1alpha1.AgentActionList
	if err := r.List(ctx, &list, client.InNamespace(namespace), fields); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, item := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: item.Namespace, Name: item.Name}})
	}
	return reqs
}

// deletionPredicate passes updates that start a deletion.
type deletionPredicate struct {
	predicate.Funcs
}

// Update passes an update that set the deletion timestamp.
func (deletionPredicate) Update(e event.UpdateEvent) bool {
	if e.ObjectOld == nil || e.ObjectNew == nil {
		return false
	}
	return e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
}

// driftFoundPredicate passes the status write of a drift check: it cleared
// the applied hash, so the AgentAction must be pushed again.
type driftFoundPredicate struct {
	predicate.Funcs
}

// Update passes an update that cleared status.appliedHash.
func (driftFoundPredicate) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*AgentAction)
	n, ok2 := e.ObjectNew.(*AgentAction)
	return ok1 && ok2 && o.Status.AppliedHash != "" && n.Status.AppliedHash == ""
}

// namespaceGVK is the kind of the Namespaces read as metadata.
var namespaceGVK = corev1.SchemeGroupVersion.WithKind("Namespace")

// agentOf returns the agent an AgentAction belongs to.
func agentOf(a *AgentAction) agentKey {
	env := types.NamespacedName{Namespace: a.Namespace, Name: a.Spec.EnvironmentRef.Name}
	if a.Spec.EnvironmentRef.Kind == agentsv1alpha1.EnvironmentKindCluster {
		env.Namespace = ""
	}
	return agentKey{env: env, agentID: a.Spec.AgentID}
}

// agentOfAction maps an AgentAction to its agent.
func agentOfAction(_ context.Context, a *AgentAction) []agentKey {
	return []agentKey{agentOf(a)}
}

// agentsOfEnvironment maps an Environment to the agents of its AgentActions.
func agentsOfEnvironment(c client.Reader) handler.TypedMapFunc[*agentsv1alpha1.Environment, agentKey] {
	return func(ctx context.Context, e *agentsv1alpha1.Environment) []agentKey {
		return listAgents(ctx, c, e.Namespace, e.Name)
	}
}

// agentsOfClusterEnvironment maps a ClusterEnvironment to the agents of its
// AgentActions, in every namespace.
func agentsOfClusterEnvironment(c client.Reader) handler.TypedMapFunc[*agentsv1alpha1.ClusterEnvironment, agentKey] {
	return func(ctx context.Context, e *agentsv1alpha1.ClusterEnvironment) []agentKey {
		return listAgents(ctx, c, "", clusterEnvKey(e.Name))
	}
}

// listAgents returns the distinct agents of the AgentActions that use an
// environment (indexEnvironment value envRef, in namespace; "" for all).
func listAgents(ctx context.Context, c client.Reader, namespace, envRef string) []agentKey {
	var list agentsv1alpha1.AgentActionList
	if err := c.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{indexEnvironment: envRef}); err != nil {
		return nil
	}
	seen := map[agentKey]bool{}
	var keys []agentKey
	for i := range list.Items {
		if k := agentOf(&list.Items[i]); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// publishRecordChanged queues the AgentActions of each agent whose entry in
// an environment's status.pendingPublishes or status.publishes changed:
// their AgentPublished condition repeats it.
func (r *AgentActionReconciler) publishRecordChanged() handler.EventHandler {
	return handler.Funcs{
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			oldSt, okOld := environmentStatus(e.ObjectOld)
			newSt, okNew := environmentStatus(e.ObjectNew)
			if !okOld || !okNew {
				return
			}
			for _, id := range changedAgents(oldSt, newSt) {
				key := agentKey{env: envKeyOf(e.ObjectNew.GetNamespace(), e.ObjectNew.GetName()), agentID: id}
				for _, req := range r.listRequests(ctx, key.env.Namespace, client.MatchingFields{indexAgent: agentIndexKey(key)}) {
					q.Add(req)
				}
			}
		},
	}
}

// environmentStatus returns the status of an Environment or a
// ClusterEnvironment.
func environmentStatus(o client.Object) (*agentsv1alpha1.EnvironmentStatus, bool) {
	switch e := o.(type) {
	case *agentsv1alpha1.Environment:
		return &e.Status, true
	case *agentsv1alpha1.ClusterEnvironment:
		return &e.Status, true
	}
	return nil, false
}

// changedAgents lists the agents whose publish entries differ.
func changedAgents(a, b *agentsv1alpha1.EnvironmentStatus) []string {
	var ids []string
	add := func(id string) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for _, id := range a.PendingPublishes {
		if !slices.Contains(b.PendingPublishes, id) {
			add(id)
		}
	}
	for _, id := range b.PendingPublishes {
		if !slices.Contains(a.PendingPublishes, id) {
			add(id)
		}
	}
	for _, p := range a.Publishes {
		if q := findRecord(b, p.AgentID); q == nil || *q != p {
			add(p.AgentID)
		}
	}
	for _, p := range b.Publishes {
		if findRecord(a, p.AgentID) == nil {
			add(p.AgentID)
		}
	}
	return ids
}
