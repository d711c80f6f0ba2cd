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
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

// AgentActionReconciler keeps the remote action of each AgentAction in step
// with its spec.
type AgentActionReconciler struct {
	client.Client

	// APIReader reads Secrets straight from the API server: the manager
	// caches only their metadata.
	APIReader client.Reader
	// MetadataReader reads the cached metadata of Secrets (the manager's
	// cache); with it, a Secret's data is read again only when its
	// resourceVersion changed.
	MetadataReader client.Reader
	Recorder       events.EventRecorder
	Clients        *Clients

	// StalledRetryInterval is how long a Stalled resource waits before the
	// operator tries the API again on its own (a change of the spec, the
	// Environment or a referenced Secret retries at once).
	StalledRetryInterval time.Duration
	// ClusterEnvironmentNamespace is the operator's namespace, where the
	// token Secrets of ClusterEnvironments are.
	ClusterEnvironmentNamespace string
	// MaxConcurrentReconciles is the number of workers.
	MaxConcurrentReconciles int
	// PublishQuiet is how long after the last change of an agent arrived
	// its publish waits, while changes are still arriving (default 5s).
	PublishQuiet time.Duration
	// Now returns the current time; tests may fix it.
	Now func() time.Time

	secrets secretCache
	// applied remembers accepted pushes until their status is written.
	applied appliedPushes

	// activity is the process-local work on each agent, shared with the
	// publish controller.
	activity agentActivity
	// publisher is the publish controller.
	publisher *AgentPublishReconciler

	// requeues carries AgentActions queued by the publish controller.
	requeues chan event.TypedGenericEvent[*AgentAction]
}

// agentActionScope is what one reconcile of an AgentAction works on.
type agentActionScope struct {
	action *AgentAction
	// base is the object as last written, the base of the status patch.
	base *AgentAction

	env     *agentsv1alpha1.Environment
	token   string
	api     ActionAPI
	agent   agentKey
	request talkover.ActionRequest
	hash    string
	// upToDate: the remote action matches the spec; no push is needed.
	upToDate bool
	// drift says why a drift check found the remote action different.
	drift string
	// isNew: no request for this resource has left yet (it has no
	// finalizer), so no status was written by a push.
	isNew bool

	// outcome decides the conditions written at the end of the reconcile.
	outcome outcome
	// done stops the remaining phases.
	done bool
}

// AgentAction is a local alias that keeps signatures short.
type AgentAction = agentsv1alpha1.AgentAction

// +kubebuilder:rbac:groups=agents.talkover.ai,resources=agentactions,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=agents.talkover.ai,resources=agentactions/status,verbs=patch
// +kubebuilder:rbac:groups=agents.talkover.ai,resources=agentactions/finalizers,verbs=update
// +kubebuilder:rbac:groups=agents.talkover.ai,resources=environments,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile pushes an AgentAction's spec to the Talkover API, or removes the
// remote action when the resource is deleted, and records the outcome in
// status with a single patch.
func (r *AgentActionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	action := &AgentAction{}
	if err := r.Get(ctx, req.NamespacedName, action); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	s := &agentActionScope{action: action, base: action.DeepCopy()}
	defer func() {
		reterr = kerrors.NewAggregate([]error{reterr, r.patchStatus(ctx, s)})
	}()

	if !action.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s)
	}
	if isPaused(action) {
		s.outcome = outcome{kind: outcomePaused, reason: agentsv1alpha1.ReasonPaused,
			message: "The " + agentsv1alpha1.PausedAnnotation + " annotation is \"true\": no calls to the Talkover API are made."}
		return ctrl.Result{}, nil
	}
	return r.reconcileNormal(ctx, s)
}

// ensureFinalizer adds the finalizer right before the first request of a
// push leaves (once the request has its slot of the budget), so a finalizer
// on a resource without status.id means a push may have reached the API
// (see reconcileDelete).
func (r *AgentActionReconciler) ensureFinalizer(ctx context.Context, s *agentActionScope) error {
	if controllerutil.ContainsFinalizer(s.action, agentsv1alpha1.AgentActionFinalizer) {
		return nil
	}
	before := s.action.DeepCopy()
	controllerutil.AddFinalizer(s.action, agentsv1alpha1.AgentActionFinalizer)
	if err := r.Patch(ctx, s.action, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	s.base.ObjectMeta = *s.action.ObjectMeta.DeepCopy()
	return nil
}

// patchStatus writes the status computed from the scope's outcome, if it
// changed, and emits an Event when the Ready condition changed.
func (r *AgentActionReconciler) patchStatus(ctx context.Context, s *agentActionScope) error {
	a := s.action
	if s.outcome.kind != outcomeNone &&
		(a.DeletionTimestamp.IsZero() || controllerutil.ContainsFinalizer(a, agentsv1alpha1.AgentActionFinalizer)) {
		a.Status.Conditions = computeConditions(a.Status.Conditions, s.outcome, a.Generation, metav1.NewTime(r.now()))
		a.Status.ObservedGeneration = a.Generation
	}
	if equality.Semantic.DeepEqual(s.base.Status, a.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, a, client.MergeFrom(s.base)); err != nil {
		return client.IgnoreNotFound(err)
	}
	r.emitTransition(s.base, a)
	s.base = a.DeepCopy()
	return nil
}

// emitTransition records an Event when the Ready condition changed reason or
// status, and when the agent's publish was refused; retries that end where
// they started emit nothing.
func (r *AgentActionReconciler) emitTransition(before, after *AgentAction) {
	r.emitPublishRefusal(before, after)
	oldReady := findCondition(before.Status.Conditions, agentsv1alpha1.ConditionReady)
	newReady := findCondition(after.Status.Conditions, agentsv1alpha1.ConditionReady)
	if newReady == nil || newReady.Status == metav1.ConditionUnknown {
		return
	}
	if oldReady != nil && oldReady.Status == newReady.Status && oldReady.Reason == newReady.Reason {
		return
	}
	if newReady.Status == metav1.ConditionTrue && (oldReady == nil || oldReady.Status == metav1.ConditionUnknown) {
		// The first sync of a new resource: the Created Event says it.
		return
	}
	if oldReady != nil && oldReady.Reason == agentsv1alpha1.ReasonDrifted && newReady.Status == metav1.ConditionTrue {
		// The DriftCorrected Event says it.
		return
	}
	eventType := corev1.EventTypeWarning
	if newReady.Status == metav1.ConditionTrue || newReady.Reason == agentsv1alpha1.ReasonPaused {
		eventType = corev1.EventTypeNormal
	}
	r.Recorder.Eventf(after, nil, eventType, newReady.Reason, "Reconcile", "%s", newReady.Message)
}

// emitPublishRefusal records a Warning Event when the agent's publish was
// refused (AgentNotReady) or found no agent (AgentNotFound).
func (r *AgentActionReconciler) emitPublishRefusal(before, after *AgentAction) {
	c := findCondition(after.Status.Conditions, agentsv1alpha1.ConditionAgentPublished)
	if c == nil || (c.Reason != agentsv1alpha1.ReasonAgentNotReady && c.Reason != agentsv1alpha1.ReasonAgentNotFound) {
		return
	}
	if old := findCondition(before.Status.Conditions, agentsv1alpha1.ConditionAgentPublished); old != nil && old.Reason == c.Reason {
		return
	}
	r.Recorder.Eventf(after, nil, corev1.EventTypeWarning, c.Reason, "Publish", "%s", c.Message)
}

func (r *AgentActionReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func isPaused(o metav1.Object) bool {
	return o.GetAnnotations()[agentsv1alpha1.PausedAnnotation] == "true"
}

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// reconcileTimeout bounds one reconcile: no call waits for a budget, so a
// reconcile makes at most a few requests, each bounded by the HTTP client's
// timeout.
const reconcileTimeout = 2 * time.Minute

// setupAgentControllers registers the controllers keyed by agent: publish
// and drift.
func (r *AgentActionReconciler) setupAgentControllers(mgr ctrl.Manager) error {
	r.requeues = make(chan event.TypedGenericEvent[*AgentAction], 4096)
	quiet := r.PublishQuiet
	if quiet == 0 {
		quiet = 5 * time.Second
	}
	r.publisher = &AgentPublishReconciler{
		Client:         mgr.GetClient(),
		Resolve:        r.resolveAgentEnvironment,
		Ledger:         &statusLedger{Client: mgr.GetClient(), Reader: r.APIReader, Now: r.Now},
		Activity:       &r.activity,
		Quiet:          quiet,
		SlowRetry:      10 * time.Minute,
		RequeueActions: r.requeueAgent,
		Now:            r.Now,
	}
	if err := r.publisher.SetupWithManager(mgr); err != nil {
		return err
	}
	drift := &AgentDriftReconciler{Client: mgr.GetClient(), Resolve: r.resolveAgentEnvironment, Now: r.Now}
	return drift.SetupWithManager(mgr)
}

// SetupWithManager registers the controller, its field indexes and its
// watches: AgentActions (spec, annotation and deletion changes), the
// Environments they use, and the metadata of the Secrets they reference.
func (r *AgentActionReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := setupIndexes(ctx, mgr); err != nil {
		return err
	}
	r.Recorder = limitNotes(r.Recorder)
	if r.StalledRetryInterval == 0 {
		r.StalledRetryInterval = 15 * time.Minute
	}
	workers := r.MaxConcurrentReconciles
	if workers == 0 {
		workers = 8
	}
	if err := r.setupAgentControllers(mgr); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&AgentAction{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			predicate.AnnotationChangedPredicate{},
			deletionPredicate{},
			driftFoundPredicate{},
		))).
		Watches(&AgentAction{}, handler.EnqueueRequestsFromMapFunc(r.duplicatePeers),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionPredicate{}))).
		Watches(&agentsv1alpha1.Environment{}, handler.EnqueueRequestsFromMapFunc(r.actionsOfEnvironment),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&agentsv1alpha1.ClusterEnvironment{}, handler.EnqueueRequestsFromMapFunc(r.actionsOfClusterEnvironment),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&agentsv1alpha1.Environment{}, r.publishRecordChanged()).
		Watches(&agentsv1alpha1.ClusterEnvironment{}, r.publishRecordChanged()).
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.actionsOfNamespace),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.actionsOfSecret)).
		WatchesRawSource(source.Channel(r.requeues, &handler.TypedEnqueueRequestForObject[*AgentAction]{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers, RateLimiter: newRetryRateLimiter(),
			ReconciliationTimeout: reconcileTimeout}).
		Named("agentaction").
		Complete(r)
}
