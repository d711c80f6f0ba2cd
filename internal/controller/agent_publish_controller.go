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
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

// AgentPublishReconciler restores an agent's published state after the
// operator changed its actions (every change puts the agent in draft), with
// one publish per agent per rollout. It is keyed by agent, so the
// workqueue serialises the work on one agent, and different agents (and
// environments) never wait on each other.
//
// A rollout is prepared before its first change: under publishPolicy
// Always the agent is recorded as owing a publish; under Auto the agent is
// read once and recorded as owing a publish if it was published, or as
// left in draft. What owes a publish is in status.pendingPublishes of the
// environment, so a restart or a new leader still makes it. The publish
// goes once every AgentAction of the agent is settled (no push, delete or
// retry pending) and no change has arrived for the quiet period; its
// outcome is recorded in the environment's status.publishes, from which
// the AgentActions' AgentPublished condition is computed.
type AgentPublishReconciler struct {
	client.Client
	// Resolve returns an environment and its API client.
	Resolve func(ctx context.Context, env agentKey) (*agentsv1alpha1.Environment, ActionAPI, error)
	Ledger  *statusLedger
	// Activity is shared with the AgentAction reconciler.
	Activity *agentActivity
	// Quiet is how long after the last change arrived the agent waits
	// before its publish, while changes are still arriving.
	Quiet time.Duration
	// SlowRetry is how long a publish refused with 422 waits before it is
	// tried again without a change.
	SlowRetry time.Duration
	// RequeueActions queues the AgentActions of an agent, after its
	// rollout was prepared.
	RequeueActions func(agentKey)
	Now            func() time.Time

	// requests carries the agents whose AgentActions wait for a prepared
	// rollout.
	requests chan event.TypedGenericEvent[agentKey]
}

// resolveRetry is how soon an agent-keyed controller tries again when its
// environment cannot be used.
const resolveRetry = time.Minute

// publishInputs is what a publish decision is made from.
type publishInputs struct {
	policy   agentsv1alpha1.PublishPolicy
	owed     bool
	known    bool // owed, or known to be left in draft
	actions  []AgentAction
	activity activity
	record   *agentsv1alpha1.AgentPublishStatus
	now      time.Time
	quiet    time.Duration
	// slowRetry spaces the publishes refused with 422.
	slowRetry time.Duration
}

// publishStep is what the publish controller does next for an agent.
type publishStep int

const (
	// stepWait: changes are pending or in flight; their status writes
	// queue the agent again.
	stepWait publishStep = iota
	// stepPrepare: an AgentAction waits to change the agent, whose
	// publish state before the rollout is not known.
	stepPrepare
	// stepQuiet: settled, but a change arrived less than Quiet ago.
	stepQuiet
	// stepPublish: settled and quiet, and a publish is owed.
	stepPublish
	// stepCancel: a publish is owed but the policy is now Manual.
	stepCancel
	// stepEnd: settled and nothing owed: the rollout is over.
	stepEnd
)

// decidePublish is the pure decision of the publish controller.
func decidePublish(in publishInputs) (publishStep, time.Duration) {
	settled := in.activity.inflight == 0 && !in.activity.priorWanted &&
		!slices.ContainsFunc(in.actions, func(a AgentAction) bool { return !isSettled(&a) })
	switch {
	case !settled && !in.known && in.policy != agentsv1alpha1.PublishPolicyManual:
		return stepPrepare, 0
	case !settled:
		return stepWait, 0
	case in.owed && in.policy == agentsv1alpha1.PublishPolicyManual:
		return stepCancel, 0
	case !in.owed:
		return stepEnd, 0
	}
	if wait := in.activity.lastArrival.Add(in.quiet).Sub(in.now); wait > 0 {
		return stepQuiet, wait
	}
	// A record's time is whole seconds: a change within that second counts
	// as before the refusal.
	if r := in.record; r != nil && r.Reason == agentsv1alpha1.ReasonAgentNotReady &&
		!in.activity.lastArrival.After(r.LastTransitionTime.Add(time.Second)) {
		// Refused with 422 and nothing changed since: try again slowly.
		if wait := r.LastTransitionTime.Add(in.slowRetry).Sub(in.now); wait > 0 {
			return stepQuiet, wait
		}
	}
	return stepPublish, 0
}

// isSettled says whether an AgentAction has no change pending: its status
// describes its current generation and nothing is under way (no
// Reconciling condition), and it is not being deleted.
func isSettled(a *AgentAction) bool {
	if !a.DeletionTimestamp.IsZero() {
		return len(a.Finalizers) == 0
	}
	ready := findCondition(a.Status.Conditions, agentsv1alpha1.ConditionReady)
	if ready == nil || ready.ObservedGeneration != a.Generation {
		return false
	}
	c := findCondition(a.Status.Conditions, agentsv1alpha1.ConditionReconciling)
	return c == nil || c.Status != metav1.ConditionTrue
}

// Reconcile prepares, publishes or ends the rollout of one agent.
func (r *AgentPublishReconciler) Reconcile(ctx context.Context, key agentKey) (ctrl.Result, error) {
	env, api, err := r.Resolve(ctx, key)
	if apierrors.IsNotFound(err) {
		r.Activity.forgetEnvironment(key.env)
		return ctrl.Result{}, nil
	}
	if err != nil {
		// The AgentActions report why the environment cannot be used; a
		// change of it queues the agent again, and so does this requeue
		// (a Secret read or a client build can fail without a change).
		return ctrl.Result{RequeueAfter: resolveRetry}, nil //nolint:nilerr // reported by the AgentActions
	}
	actions, err := listAgentActions(ctx, r.Client, key)
	if err != nil {
		return ctrl.Result{}, err
	}
	inCache := slices.Contains(env.Status.PendingPublishes, key.agentID)
	act := r.Activity.snapshot(key)
	owed := act.owes(inCache)
	if act.priorWanted && (owed || act.draftRollout) {
		// A change waits for a rollout that is prepared already (its
		// AgentAction read an older copy of the ledger): let it go.
		r.Activity.update(key, func(a *activity) { a.priorWanted = false })
		act.priorWanted = false
		r.RequeueActions(key)
	}
	in := publishInputs{policy: EffectivePublishPolicy(env), owed: owed, known: owed || act.draftRollout,
		actions: actions, activity: act, record: findRecord(&env.Status, key.agentID), now: r.now(),
		quiet: r.Quiet, slowRetry: r.SlowRetry}
	step, wait := decidePublish(in)
	switch step {
	case stepPrepare:
		return r.prepare(ctx, key, api, in.policy)
	case stepQuiet:
		return ctrl.Result{RequeueAfter: wait}, nil
	case stepPublish:
		return r.publish(ctx, key, api)
	case stepCancel:
		return ctrl.Result{}, r.settle(ctx, key, agentsv1alpha1.ReasonManualPublish, manualMessage)
	case stepEnd:
		return ctrl.Result{}, r.endRollout(ctx, key, env, len(actions) == 0)
	case stepWait:
	}
	return ctrl.Result{}, nil
}

// endRollout ends a rollout that owes nothing; an agent with no AgentAction
// left is forgotten, and so is its record.
func (r *AgentPublishReconciler) endRollout(ctx context.Context, key agentKey, env *agentsv1alpha1.Environment, noActions bool) error {
	r.Activity.update(key, func(a *activity) { a.draftRollout = false })
	if !noActions {
		return nil
	}
	r.Activity.forget(key)
	if findRecord(&env.Status, key.agentID) != nil {
		return r.Ledger.forget(ctx, key.env, key.agentID)
	}
	return nil
}

// prepare learns, before the first change of a rollout, whether the agent
// will owe a publish, records it, and lets the waiting AgentActions go.
func (r *AgentPublishReconciler) prepare(ctx context.Context, key agentKey, api ActionAPI, policy agentsv1alpha1.PublishPolicy) (ctrl.Result, error) {
	owes := policy == agentsv1alpha1.PublishPolicyAlways
	if policy == agentsv1alpha1.PublishPolicyAuto {
		agent, err := api.GetAgent(talkover.WithTurn(ctx, key.turn("read"), key.env.Namespace, talkover.PriorityHigh), key.agentID)
		if wait, ok := notSent(err); ok {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		if err != nil && !talkover.IsNotFound(err) {
			log.FromContext(ctx).Info("Failed to read the agent before its rollout; will retry", "agent", key.agentID, "error", err.Error())
			return ctrl.Result{}, err
		}
		if talkover.IsNotFound(err) {
			// A missing agent owes nothing; its AgentActions' pushes say why.
			return r.prepared(ctx, key, agentsv1alpha1.ReasonAgentNotFound,
				"The agent was not found when the operator read it before its rollout: "+err.Error())
		}
		owes = agent.CurrentStatus == talkover.AgentStatusPublished
	}
	if owes {
		if err := r.Ledger.add(ctx, key.env, key.agentID); err != nil {
			return ctrl.Result{}, fmt.Errorf("recording that agent %s owes a publish: %w", key.agentID, err)
		}
		r.Activity.update(key, func(a *activity) { a.owed, a.ledgerKnown, a.priorWanted, a.published = true, true, false, false })
		r.RequeueActions(key)
		return ctrl.Result{}, nil
	}
	return r.prepared(ctx, key, agentsv1alpha1.ReasonAgentLeftInDraft, leftInDraftMessage)
}

// prepared records a rollout that owes no publish (the agent was in draft,
// or is gone) and lets the waiting AgentActions go.
func (r *AgentPublishReconciler) prepared(ctx context.Context, key agentKey, reason, message string) (ctrl.Result, error) {
	if err := r.Ledger.record(ctx, key.env, agentsv1alpha1.AgentPublishStatus{AgentID: key.agentID, Reason: reason, Message: message}); err != nil {
		return ctrl.Result{}, err
	}
	r.Activity.update(key, func(a *activity) { a.draftRollout, a.priorWanted = true, false })
	r.RequeueActions(key)
	return ctrl.Result{}, nil
}

// publish makes the owed publish of a settled agent and records the
// outcome. No change of the agent can start while it is under way.
func (r *AgentPublishReconciler) publish(ctx context.Context, key agentKey, api ActionAPI) (ctrl.Result, error) {
	if !r.Activity.startPublish(key) {
		return ctrl.Result{}, nil
	}
	defer r.Activity.update(key, func(a *activity) { a.publishing = false })
	logger := log.FromContext(ctx).WithValues("agent", key.agentID)
	if !r.Activity.snapshot(key).published {
		_, err := api.PublishAgent(talkover.WithTurn(ctx, key.turn("publish"), key.env.Namespace, talkover.PriorityHigh), key.agentID)
		if wait, ok := notSent(err); ok {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		switch {
		case talkover.IsNotFound(err):
			logger.Info("The agent to publish no longer exists", "error", err.Error())
			return ctrl.Result{}, r.settle(ctx, key, agentsv1alpha1.ReasonAgentNotFound,
				"The agent was not found when the operator published it: "+err.Error())
		case talkover.IsValidation(err):
			logger.Info("The API refused to publish the agent", "error", err.Error())
			return ctrl.Result{RequeueAfter: r.SlowRetry}, r.Ledger.record(ctx, key.env, agentsv1alpha1.AgentPublishStatus{
				AgentID: key.agentID, Reason: agentsv1alpha1.ReasonAgentNotReady,
				Message: "The Talkover API refused to publish the agent: " + err.Error()})
		case err != nil:
			if recErr := r.Ledger.record(ctx, key.env, agentsv1alpha1.AgentPublishStatus{AgentID: key.agentID,
				Reason: agentsv1alpha1.ReasonPublishPending, Message: "Publishing the agent failed and will be retried: " + err.Error()}); recErr != nil {
				return ctrl.Result{}, errors.Join(err, recErr)
			}
			return ctrl.Result{}, err
		}
		logger.Info("Published agent")
		r.Activity.update(key, func(a *activity) { a.published = true })
	}
	return ctrl.Result{}, r.settle(ctx, key, agentsv1alpha1.ReasonAgentPublished, publishedMessage)
}

// settle ends an owed publish with an outcome. The cached "owed" goes
// first, so that no AgentAction reads it after the ledger says otherwise;
// until the write succeeds the ledger still says owed.
func (r *AgentPublishReconciler) settle(ctx context.Context, key agentKey, reason, message string) error {
	r.Activity.update(key, func(a *activity) { a.owed, a.ledgerKnown = false, true })
	if err := r.Ledger.settle(ctx, key.env, agentsv1alpha1.AgentPublishStatus{AgentID: key.agentID, Reason: reason, Message: message}); err != nil {
		// The ledger still says owed: so does this process, and the
		// retry settles again.
		r.Activity.update(key, func(a *activity) { a.owed = true })
		return fmt.Errorf("recording the publish of agent %s: %w", key.agentID, err)
	}
	r.Activity.update(key, func(a *activity) { a.published = false })
	return nil
}

func (r *AgentPublishReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// request queues an agent whose AgentActions wait for its rollout to be
// prepared. It never blocks: when the channel is full, the AgentAction's
// own requeue asks again.
func (r *AgentPublishReconciler) request(key agentKey) {
	select {
	case r.requests <- event.TypedGenericEvent[agentKey]{Object: key}:
	default:
	}
}

// SetupWithManager registers the publish controller, keyed by agent: it is
// fed by the AgentActions (every change of their status may settle the
// agent), by the environments (their owed publishes, at start-up and after
// a policy change) and by the AgentActions that wait for a prepared
// rollout.
func (r *AgentPublishReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.requests = make(chan event.TypedGenericEvent[agentKey], 4096)
	return builder.TypedControllerManagedBy[agentKey](mgr).
		Named("agentpublish").
		WatchesRawSource(source.TypedKind(mgr.GetCache(), &AgentAction{}, r.actionEvents())).
		WatchesRawSource(source.TypedKind(mgr.GetCache(), &agentsv1alpha1.Environment{},
			handler.TypedEnqueueRequestsFromMapFunc(r.agentsOfEnvironment), owedOrPolicyChanged[*agentsv1alpha1.Environment]())).
		WatchesRawSource(source.TypedKind(mgr.GetCache(), &agentsv1alpha1.ClusterEnvironment{},
			handler.TypedEnqueueRequestsFromMapFunc(r.agentsOfClusterEnvironment), owedOrPolicyChanged[*agentsv1alpha1.ClusterEnvironment]())).
		WatchesRawSource(source.TypedChannel(r.requests, &handler.TypedFuncs[agentKey, agentKey]{
			GenericFunc: func(_ context.Context, e event.TypedGenericEvent[agentKey], q workqueue.TypedRateLimitingInterface[agentKey]) {
				q.Add(e.Object)
			},
		})).
		WithOptions(controller.TypedOptions[agentKey]{MaxConcurrentReconciles: 4, ReconciliationTimeout: reconcileTimeout,
			RateLimiter: newTypedRetryRateLimiter[agentKey]()}).
		Complete(r)
}

// actionEvents queues the agent of every AgentAction event, and notes when
// a change arrived (a create, a new generation, a deletion, a drift
// finding).
func (r *AgentPublishReconciler) actionEvents() handler.TypedEventHandler[*AgentAction, agentKey] {
	enqueue := func(a *AgentAction, arrived bool, q workqueue.TypedRateLimitingInterface[agentKey]) {
		key := agentOf(a)
		if arrived {
			r.Activity.arrived(key, r.now())
		}
		q.Add(key)
	}
	return handler.TypedFuncs[*AgentAction, agentKey]{
		CreateFunc: func(_ context.Context, e event.TypedCreateEvent[*AgentAction], q workqueue.TypedRateLimitingInterface[agentKey]) {
			enqueue(e.Object, !isSettled(e.Object), q)
		},
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[*AgentAction], q workqueue.TypedRateLimitingInterface[agentKey]) {
			o, n := e.ObjectOld, e.ObjectNew
			// A drift finding (the applied hash cleared) is a change too:
			// the findings of one check arrive one status write at a time.
			arrived := o.Generation != n.Generation || o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero() ||
				(o.Status.AppliedHash != "" && n.Status.AppliedHash == "")
			enqueue(n, arrived, q)
			if agentOf(o) != agentOf(n) {
				enqueue(o, false, q)
			}
		},
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[*AgentAction], q workqueue.TypedRateLimitingInterface[agentKey]) {
			enqueue(e.Object, false, q)
		},
	}
}

// owedOrPolicyChanged passes environment events that can start or cancel a
// publish: a new environment (at start-up), a new generation (a policy
// change), and a change of status.pendingPublishes. The publish records
// the controller writes itself do not queue it again.
func owedOrPolicyChanged[T client.Object]() predicate.TypedPredicate[T] {
	return predicate.TypedFuncs[T]{
		UpdateFunc: func(e event.TypedUpdateEvent[T]) bool {
			if e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() {
				return true
			}
			o, okOld := environmentStatus(e.ObjectOld)
			n, okNew := environmentStatus(e.ObjectNew)
			return okOld && okNew && !slices.Equal(o.PendingPublishes, n.PendingPublishes)
		},
	}
}

// agentsOfEnvironment queues the agents an Environment owes a publish, and
// those of its AgentActions.
func (r *AgentPublishReconciler) agentsOfEnvironment(ctx context.Context, e *agentsv1alpha1.Environment) []agentKey {
	return owedAndUsed(e.Namespace, e.Name, &e.Status, listAgents(ctx, r.Client, e.Namespace, e.Name))
}

// agentsOfClusterEnvironment is agentsOfEnvironment for a ClusterEnvironment.
func (r *AgentPublishReconciler) agentsOfClusterEnvironment(ctx context.Context, e *agentsv1alpha1.ClusterEnvironment) []agentKey {
	return owedAndUsed("", e.Name, &e.Status, listAgents(ctx, r.Client, "", clusterEnvKey(e.Name)))
}

// owedAndUsed adds the agents an environment owes a publish to the agents
// of its AgentActions: an owed publish is made even when no AgentAction of
// the agent is left.
func owedAndUsed(namespace, name string, st *agentsv1alpha1.EnvironmentStatus, used []agentKey) []agentKey {
	keys := slices.Clone(used)
	for _, id := range st.PendingPublishes {
		k := agentKey{env: envKeyOf(namespace, name), agentID: id}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// Messages of the AgentPublished condition.
const (
	pendingMessage     = "The agent will be published once its changes have settled."
	publishedMessage   = "The operator published the agent after its changes."
	manualMessage      = "publishPolicy is Manual: publish the agent yourself."
	leftInDraftMessage = "The agent was in draft before the operator changed it, so it was left in draft (publishPolicy Auto): " +
		"publish it when its other edits are ready."
)

var _ reconcile.TypedReconciler[agentKey] = &AgentPublishReconciler{}

// agentKey names one agent as seen through one environment (no namespace:
// a ClusterEnvironment).
type agentKey struct {
	env     types.NamespacedName
	agentID string
}

// envKeyOf is the key of an Environment, or of a ClusterEnvironment when
// namespace is empty.
func envKeyOf(namespace, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: name}
}

// turn is the budget turn of one kind of work on an agent.
func (k agentKey) turn(work string) string {
	return work + "/" + k.env.String() + "/" + k.agentID
}

// publishState is what the AgentActions of an agent report in their
// AgentPublished condition and status.agentStatus.
type publishState struct {
	status      bool
	reason      string
	message     string
	agentStatus string
}

// agentPublishState computes an agent's publish state from what is
// recorded: the policy, whether the environment's ledger says the agent
// owes a publish, the agent's publish record, and whether this process
// found the agent in draft before the rollout under way. It reports false
// when nothing is known (the condition then stays as it is).
func agentPublishState(policy agentsv1alpha1.PublishPolicy, owed bool, rec *agentsv1alpha1.AgentPublishStatus,
	draftRollout bool) (publishState, bool) {
	switch {
	case policy == agentsv1alpha1.PublishPolicyManual:
		return publishState{reason: agentsv1alpha1.ReasonManualPublish, agentStatus: talkover.AgentStatusDraft,
			message: manualMessage}, true
	case owed && rec != nil && (rec.Reason == agentsv1alpha1.ReasonAgentNotReady || rec.Reason == agentsv1alpha1.ReasonPublishPending):
		return publishState{reason: rec.Reason, agentStatus: talkover.AgentStatusDraft, message: rec.Message}, true
	case owed:
		return publishState{reason: agentsv1alpha1.ReasonPublishPending, agentStatus: talkover.AgentStatusDraft,
			message: pendingMessage}, true
	case draftRollout && (rec == nil || rec.Reason != agentsv1alpha1.ReasonAgentNotFound):
		return publishState{reason: agentsv1alpha1.ReasonAgentLeftInDraft, agentStatus: talkover.AgentStatusDraft,
			message: leftInDraftMessage}, true
	case rec == nil || rec.Reason == agentsv1alpha1.ReasonPublishPending || rec.Reason == agentsv1alpha1.ReasonAgentNotReady:
		// A pending record without a ledger entry is from before a
		// settle that this cache has not seen yet.
		return publishState{}, false
	case rec.Reason == agentsv1alpha1.ReasonAgentPublished:
		return publishState{status: true, reason: rec.Reason, agentStatus: talkover.AgentStatusPublished, message: rec.Message}, true
	case rec.Reason == agentsv1alpha1.ReasonAgentNotFound:
		return publishState{reason: rec.Reason, message: rec.Message}, true
	}
	return publishState{reason: rec.Reason, agentStatus: talkover.AgentStatusDraft, message: rec.Message}, true
}
