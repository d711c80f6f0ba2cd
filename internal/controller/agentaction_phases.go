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
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

// phaseFunc is one step of reconcileNormal. A phase that cannot go on sets
// the scope's outcome and done.
type phaseFunc func(ctx context.Context, s *agentActionScope) (ctrl.Result, error)

// reconcileNormal runs the phases that bring the remote action in step with
// the spec, stopping at the first that cannot go on.
func (r *AgentActionReconciler) reconcileNormal(ctx context.Context, s *agentActionScope) (ctrl.Result, error) {
	phases := []phaseFunc{
		r.resolveEnvironment,
		r.checkDuplicate,
		r.resolveSecrets,
		r.connect,
		r.deleteReplaced,
		r.buildPayload,
		r.pushAction,
		r.trackAgent,
	}
	var result ctrl.Result
	for _, phase := range phases {
		res, err := phase(ctx, s)
		if err != nil || s.done {
			return res, err
		}
		result = earliest(result, res)
	}
	return result, nil
}

// earliest combines the results of two phases that went on: the earlier
// requeue wins.
func earliest(a, b ctrl.Result) ctrl.Result {
	if a.RequeueAfter == 0 || (b.RequeueAfter > 0 && b.RequeueAfter < a.RequeueAfter) {
		return b
	}
	return a
}

// stall ends the reconcile with Stalled: nothing changes until a person acts,
// so the operator only looks again after StalledRetryInterval (or at once
// when the spec, the Environment or a referenced Secret changes).
func (r *AgentActionReconciler) stall(s *agentActionScope, reason, format string, args ...any) (ctrl.Result, error) {
	s.outcome = outcome{kind: outcomeStalled, reason: reason, message: fmt.Sprintf(format, args...)}
	s.done = true
	return ctrl.Result{RequeueAfter: r.StalledRetryInterval}, nil
}

// checkDuplicate stops an AgentAction that claims the same environment,
// agent and node as an older one: both would write the same remote action.
func (r *AgentActionReconciler) checkDuplicate(ctx context.Context, s *agentActionScope) (ctrl.Result, error) {
	owner, err := r.otherOwner(ctx, s.action)
	if err != nil || owner == nil {
		return ctrl.Result{}, err
	}
	return r.stall(s, agentsv1alpha1.ReasonDuplicateNodeID,
		"AgentAction %q already manages node %q of agent %q in Environment %q; delete one of the two.",
		owner.Name, s.action.Spec.NodeID, s.action.Spec.AgentID, s.action.Spec.EnvironmentRef.Name)
}

// otherOwner returns the older AgentAction that owns the identity of a, or
// nil when a owns it.
func (r *AgentActionReconciler) otherOwner(ctx context.Context, a *AgentAction) (*AgentAction, error) {
	var peers agentsv1alpha1.AgentActionList
	if err := r.List(ctx, &peers, client.MatchingFields{indexIdentity: identityKey(a)}); err != nil {
		return nil, err
	}
	owner := oldest(peers.Items)
	if owner == nil || owner.UID == a.UID {
		return nil, nil
	}
	return owner, nil
}

// oldest returns the AgentAction that owns an identity: the oldest live one,
// by creation time and then name.
func oldest(items []agentsv1alpha1.AgentAction) *agentsv1alpha1.AgentAction {
	live := slices.DeleteFunc(slices.Clone(items), func(a agentsv1alpha1.AgentAction) bool {
		return !a.DeletionTimestamp.IsZero() && a.Status.ID == ""
	})
	if len(live) == 0 {
		return nil
	}
	owner := slices.MinFunc(live, func(a, b agentsv1alpha1.AgentAction) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return &owner
}

// resolveSecrets reads the header values that come from Secrets.
func (r *AgentActionReconciler) resolveSecrets(ctx context.Context, s *agentActionScope) (ctrl.Result, error) {
	values := headerValues{}
	for _, h := range s.action.Spec.CustomHeaders {
		if h.ValueFrom == nil {
			continue
		}
		ref := h.ValueFrom.SecretKeyRef
		v, err := r.secretValue(ctx, s.action.Namespace, ref.Name, ref.Key)
		if err != nil {
			return r.secretError(s, err, fmt.Sprintf("header %q", h.Key))
		}
		values[h.Key] = v
	}
	req, err := buildRequest(&s.action.Spec, values)
	if err != nil {
		return r.stall(s, agentsv1alpha1.ReasonInvalidSpec, "%s", err.Error())
	}
	s.request = req
	return ctrl.Result{}, nil
}

// connect gets the API client of the Environment.
func (r *AgentActionReconciler) connect(_ context.Context, s *agentActionScope) (ctrl.Result, error) {
	api, err := r.Clients.For(s.env, s.token)
	if err != nil {
		return r.stall(s, agentsv1alpha1.ReasonInvalidSpec, "Environment %q: %s", s.env.Name, err.Error())
	}
	s.api = api
	s.agent = agentKey{env: envName(s.env), agentID: s.action.Spec.AgentID}
	return ctrl.Result{}, nil
}

// buildPayload hashes the request and decides whether a push is needed: the
// spec or a referenced Secret changed, or a drift check found the remote
// action changed or gone (and recorded it in status).
func (r *AgentActionReconciler) buildPayload(_ context.Context, s *agentActionScope) (ctrl.Result, error) {
	hash, err := payloadHash(string(s.action.UID), EffectiveAPIURL(s.env), s.action.Spec.AgentID, s.request)
	if err != nil {
		return r.stall(s, agentsv1alpha1.ReasonInvalidSpec, "%s", err.Error())
	}
	s.hash = hash
	st := &s.action.Status
	r.applied.catchUp(s.action)
	if c := findCondition(st.Conditions, agentsv1alpha1.ConditionSynced); c != nil && c.Reason == agentsv1alpha1.ReasonDrifted {
		// Recorded by a drift check, which cleared appliedHash (and the ID
		// of a remote action that is gone).
		s.drift = c.Message
	}
	if st.ID == "" || st.AppliedHash != hash {
		return ctrl.Result{}, nil
	}
	s.upToDate = true
	s.outcome = outcome{kind: outcomeSynced, reason: agentsv1alpha1.ReasonSynced, message: syncedMessage(st.ID)}
	return ctrl.Result{}, nil
}

func syncedMessage(id string) string {
	return fmt.Sprintf("The remote action %s matches the spec.", id)
}

// pushAction sends the spec to the API (create or update), and records the
// remote ID and the applied hash.
func (r *AgentActionReconciler) pushAction(ctx context.Context, s *agentActionScope) (ctrl.Result, error) {
	if s.upToDate {
		return ctrl.Result{}, nil
	}
	a := s.action
	s.isNew = !controllerutil.ContainsFinalizer(a, agentsv1alpha1.AgentActionFinalizer)
	if err := r.beginChange(ctx, s); err != nil {
		return r.apiError(ctx, s, err)
	}
	defer r.endChange(s)
	turn := talkover.WithTurn(ctx, actionTurn(a), a.Namespace, pushPriority(a))
	callCtx, err := s.api.Reserve(turn)
	if err != nil {
		return r.apiError(ctx, s, err)
	}
	// The finalizer goes on once the request has its slot, right before it
	// leaves: a resource whose requests never left has none, and its
	// deletion needs no call.
	readVersion := a.ResourceVersion
	patchStart := time.Now()
	if err := r.ensureFinalizer(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if time.Since(patchStart) > talkover.ClaimGrace {
		// The slot is too old to be used now (the budget's per-minute
		// guarantee allows a request to leave at most ClaimGrace after its
		// slot): take a new one.
		if callCtx, err = s.api.Reserve(turn); err != nil {
			return r.apiError(ctx, s, err)
		}
	}
	remote, err := s.api.UpsertAction(callCtx, a.Spec.AgentID, s.request)
	if err != nil {
		return r.apiError(ctx, s, err)
	}
	created := a.Status.ID == ""
	if !created && remote.ID != a.Status.ID {
		// The API created a new action instead of updating this one:
		// the old one is deleted, now if the budget allows, otherwise at
		// the next slot (recorded in status, so it is never forgotten).
		a.Status.ReplacedID = a.Status.ID
	}
	a.Status.ID = remote.ID
	a.Status.AppliedHash = s.hash
	a.Status.RemoteUpdatedAt = remote.UpdatedAt
	now := metaNow(r.now())
	a.Status.LastSyncTime = &now
	r.applied.remember(a.UID, appliedPush{hash: s.hash, id: remote.ID, remoteUpdatedAt: remote.UpdatedAt, at: now,
		baseVersions: []string{readVersion, a.ResourceVersion}})
	verb := "Updated"
	if created {
		verb = "Created"
	}
	log.FromContext(ctx).Info(verb+" remote action", "id", remote.ID, "agent", a.Spec.AgentID)
	switch {
	case s.drift != "":
		r.Recorder.Eventf(a, nil, corev1.EventTypeNormal, agentsv1alpha1.ReasonDriftCorrected, "Push",
			"Restored remote action %s: %s.", remote.ID, s.drift)
	case created && s.isNew:
		// The expected first sync of a new resource: its status (Ready,
		// status.id) says it, and an Event per object would double the
		// kube-apiserver writes of a large rollout.
	default:
		r.Recorder.Eventf(a, nil, corev1.EventTypeNormal, verb, "Push", "%s remote action %s on agent %s.", verb, remote.ID, a.Spec.AgentID)
	}
	s.outcome = outcome{kind: outcomeSynced, reason: agentsv1alpha1.ReasonSynced, message: syncedMessage(remote.ID)}
	return r.deleteReplaced(ctx, s)
}

// actionTurn is the budget turn of an AgentAction: its booked slot stays
// its own across requeues.
func actionTurn(a *AgentAction) string {
	return "agentaction/" + string(a.UID)
}

// pushPriority puts a user's change before retries of failed pushes.
func pushPriority(a *AgentAction) talkover.Priority {
	if c := findCondition(a.Status.Conditions, agentsv1alpha1.ConditionReconciling); c != nil &&
		(c.Reason == agentsv1alpha1.ReasonAPIUnavailable || c.Reason == agentsv1alpha1.ReasonRateLimited) {
		return talkover.PriorityNormal
	}
	return talkover.PriorityHigh
}

// deleteReplaced deletes the remote action the API replaced with a twin
// (status.replacedId), with its own slot of the budget: it runs before any
// push, and again right after the push that found the twin.
func (r *AgentActionReconciler) deleteReplaced(ctx context.Context, s *agentActionScope) (ctrl.Result, error) {
	a := s.action
	oldID := a.Status.ReplacedID
	if oldID == "" {
		return ctrl.Result{}, nil
	}
	// A delete is a change of the agent: the publish waits for it.
	if err := r.beginChange(ctx, s); err != nil {
		return changeWait(s, err), nil
	}
	defer r.endChange(s)
	err := s.api.DeleteAction(talkover.WithTurn(ctx, actionTurn(a), a.Namespace, talkover.PriorityHigh), a.Spec.AgentID, oldID)
	if wait, ok := notSent(err); ok {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if err != nil && !talkover.IsNotFound(err) {
		log.FromContext(ctx).Info("Failed to delete the replaced remote action; will retry", "id", oldID, "error", err.Error())
		r.Recorder.Eventf(a, nil, corev1.EventTypeWarning, "TwinNotDeleted", "Push",
			"The API created action %s instead of updating %s, and deleting %s failed: %s", a.Status.ID, oldID, oldID, err.Error())
		return ctrl.Result{}, err
	}
	a.Status.ReplacedID = ""
	r.Recorder.Eventf(a, nil, corev1.EventTypeNormal, "TwinReplaced", "Push",
		"The API created action %s instead of updating %s; deleted %s.", a.Status.ID, oldID, oldID)
	return ctrl.Result{}, nil
}

// trackAgent reports the agent's publish state, computed from what the
// environment records (status.pendingPublishes and status.publishes).
func (r *AgentActionReconciler) trackAgent(_ context.Context, s *agentActionScope) (ctrl.Result, error) {
	act := r.activity.snapshot(s.agent)
	owed := act.owes(slices.Contains(s.env.Status.PendingPublishes, s.agent.agentID))
	rec := findRecord(&s.env.Status, s.agent.agentID)
	st, known := agentPublishState(EffectivePublishPolicy(s.env), owed, rec, act.draftRollout)
	if !known || (rolloutUnderWay(st) && notChangedSince(s.action, rec)) {
		// An AgentAction this rollout did not change keeps what it says
		// until the rollout's outcome: one status write per rollout for
		// it, not two.
		return ctrl.Result{}, nil
	}
	s.outcome.publish = &st
	if st.agentStatus != "" || st.reason == agentsv1alpha1.ReasonAgentNotFound {
		s.action.Status.AgentStatus = st.agentStatus
	}
	return ctrl.Result{}, nil
}

// notChangedSince says whether an AgentAction was last pushed before the
// rollout its agent's record describes was prepared (and has an
// AgentPublished condition to keep). An AgentAction pushed in the same
// second counts as changed.
func notChangedSince(a *AgentAction, rec *agentsv1alpha1.AgentPublishStatus) bool {
	if rec == nil || rec.Reason != agentsv1alpha1.ReasonPublishPending && rec.Reason != agentsv1alpha1.ReasonAgentLeftInDraft {
		return false
	}
	if findCondition(a.Status.Conditions, agentsv1alpha1.ConditionAgentPublished) == nil || a.Status.LastSyncTime == nil {
		return false
	}
	return a.Status.LastSyncTime.Before(&rec.LastTransitionTime)
}

// rolloutUnderWay says whether a publish state is that of a rollout still
// under way (a publish owed, or the agent left in draft), rather than an
// outcome.
func rolloutUnderWay(st publishState) bool {
	return st.reason == agentsv1alpha1.ReasonPublishPending || st.reason == agentsv1alpha1.ReasonAgentLeftInDraft
}

// beginChange starts a change of the agent (a push or a delete); endChange
// must follow when it returns nil. Under publishPolicy Auto or Always the
// rollout must be prepared first (the publish controller learns whether the
// agent owes a publish, before any change): until it is, beginChange fails
// with errPriorUnknown and asks for it. It fails with errPublishing while
// the agent's publish is under way.
func (r *AgentActionReconciler) beginChange(_ context.Context, s *agentActionScope) error {
	policy := EffectivePublishPolicy(s.env)
	ledgered := slices.Contains(s.env.Status.PendingPublishes, s.agent.agentID)
	err := r.activity.begin(s.agent, policy != agentsv1alpha1.PublishPolicyManual, ledgered)
	if errors.Is(err, errPriorUnknown) {
		r.publisher.request(s.agent)
	}
	return err
}

// endChange ends a change begun with beginChange.
func (r *AgentActionReconciler) endChange(s *agentActionScope) {
	r.activity.end(s.agent)
}
