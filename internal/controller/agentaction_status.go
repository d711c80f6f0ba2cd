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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// outcomeKind is where a reconcile left an AgentAction.
type outcomeKind int

const (
	// outcomeNone: the reconcile ended before it learnt anything (an error
	// of the kube-apiserver, a conflict): the conditions stay as they were.
	outcomeNone outcomeKind = iota
	// outcomeProgressing: work is pending (first reconcile, push under way).
	outcomeProgressing
	// outcomeSynced: the remote action matches the spec.
	outcomeSynced
	// outcomeRetrying: a transient failure; the operator retries with backoff.
	outcomeRetrying
	// outcomeStalled: nothing happens until a person changes something.
	outcomeStalled
	// outcomePaused: the paused annotation stops all calls.
	outcomePaused
	// outcomeDeleting: the resource is being deleted.
	outcomeDeleting
	// outcomeDrifted: a drift check found the remote action different; a
	// push follows.
	outcomeDrifted
)

// outcome is the result of a reconcile that the conditions are computed from.
type outcome struct {
	kind    outcomeKind
	reason  string
	message string
	// publish, when known, is the agent's publish state.
	publish *publishState
}

// maxConditionMessage keeps condition messages readable and well below the
// API's limit.
const maxConditionMessage = 2048

// computeConditions returns the conditions that describe an outcome. It is a
// pure function of its inputs: Ready summarises; Synced says whether the
// remote action matches the spec; Reconciling and Stalled are present only
// while true, as kstatus expects.
func computeConditions(existing []metav1.Condition, o outcome, generation int64, now metav1.Time) []metav1.Condition {
	conds := append([]metav1.Condition(nil), existing...)
	msg := truncate(o.message, maxConditionMessage)
	set := func(t string, s metav1.ConditionStatus, reason, message string) {
		meta.SetStatusCondition(&conds, metav1.Condition{
			Type: t, Status: s, Reason: reason, Message: message,
			ObservedGeneration: generation, LastTransitionTime: now,
		})
	}
	if p := o.publish; p != nil {
		status := metav1.ConditionFalse
		if p.status {
			status = metav1.ConditionTrue
		}
		set(agentsv1alpha1.ConditionAgentPublished, status, p.reason, truncate(p.message, maxConditionMessage))
	}
	switch o.kind {
	case outcomeSynced:
		set(agentsv1alpha1.ConditionReady, metav1.ConditionTrue, o.reason, msg)
		set(agentsv1alpha1.ConditionSynced, metav1.ConditionTrue, o.reason, msg)
		meta.RemoveStatusCondition(&conds, agentsv1alpha1.ConditionReconciling)
		meta.RemoveStatusCondition(&conds, agentsv1alpha1.ConditionStalled)
	case outcomeStalled:
		set(agentsv1alpha1.ConditionReady, metav1.ConditionFalse, o.reason, msg)
		set(agentsv1alpha1.ConditionSynced, metav1.ConditionFalse, o.reason, msg)
		set(agentsv1alpha1.ConditionStalled, metav1.ConditionTrue, o.reason, msg)
		meta.RemoveStatusCondition(&conds, agentsv1alpha1.ConditionReconciling)
	case outcomeRetrying, outcomeDrifted:
		set(agentsv1alpha1.ConditionReady, metav1.ConditionFalse, o.reason, msg)
		set(agentsv1alpha1.ConditionSynced, metav1.ConditionFalse, o.reason, msg)
		set(agentsv1alpha1.ConditionReconciling, metav1.ConditionTrue, o.reason, msg)
		meta.RemoveStatusCondition(&conds, agentsv1alpha1.ConditionStalled)
	case outcomePaused:
		set(agentsv1alpha1.ConditionReady, metav1.ConditionFalse, o.reason, msg)
		meta.RemoveStatusCondition(&conds, agentsv1alpha1.ConditionReconciling)
		meta.RemoveStatusCondition(&conds, agentsv1alpha1.ConditionStalled)
	case outcomeDeleting:
		set(agentsv1alpha1.ConditionReady, metav1.ConditionFalse, o.reason, msg)
		set(agentsv1alpha1.ConditionReconciling, metav1.ConditionTrue, o.reason, msg)
	case outcomeNone:
	default: // outcomeProgressing
		set(agentsv1alpha1.ConditionReady, metav1.ConditionUnknown, o.reason, msg)
		set(agentsv1alpha1.ConditionReconciling, metav1.ConditionTrue, o.reason, msg)
		meta.RemoveStatusCondition(&conds, agentsv1alpha1.ConditionStalled)
	}
	return conds
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && (s[cut]&0xC0) == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
