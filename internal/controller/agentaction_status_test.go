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
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

func TestComputeConditions(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	earlier := metav1.NewTime(now.Add(-time.Hour))
	synced := []metav1.Condition{
		{Type: agentsv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: agentsv1alpha1.ReasonSynced, LastTransitionTime: earlier},
		{Type: agentsv1alpha1.ConditionSynced, Status: metav1.ConditionTrue, Reason: agentsv1alpha1.ReasonSynced, LastTransitionTime: earlier},
	}
	type want struct {
		status metav1.ConditionStatus
		reason string
	}
	tests := []struct {
		name     string
		existing []metav1.Condition
		outcome  outcome
		want     map[string]want // absent from the map: the condition must be absent
	}{
		{"first reconcile in progress", nil,
			outcome{kind: outcomeProgressing, reason: agentsv1alpha1.ReasonProgressing},
			map[string]want{
				agentsv1alpha1.ConditionReady:       {metav1.ConditionUnknown, agentsv1alpha1.ReasonProgressing},
				agentsv1alpha1.ConditionReconciling: {metav1.ConditionTrue, agentsv1alpha1.ReasonProgressing},
			}},
		{"a reconcile that learnt nothing (a kube-apiserver error) leaves the conditions", synced,
			outcome{},
			map[string]want{
				agentsv1alpha1.ConditionReady:  {metav1.ConditionTrue, agentsv1alpha1.ReasonSynced},
				agentsv1alpha1.ConditionSynced: {metav1.ConditionTrue, agentsv1alpha1.ReasonSynced},
			}},
		{"synced drops Reconciling and Stalled",
			[]metav1.Condition{
				{Type: agentsv1alpha1.ConditionReconciling, Status: metav1.ConditionTrue, Reason: "x"},
				{Type: agentsv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "y"},
			},
			outcome{kind: outcomeSynced, reason: agentsv1alpha1.ReasonSynced},
			map[string]want{
				agentsv1alpha1.ConditionReady:  {metav1.ConditionTrue, agentsv1alpha1.ReasonSynced},
				agentsv1alpha1.ConditionSynced: {metav1.ConditionTrue, agentsv1alpha1.ReasonSynced},
			}},
		{"a terminal answer stalls", synced,
			outcome{kind: outcomeStalled, reason: agentsv1alpha1.ReasonValidationFailed, message: "url: bad"},
			map[string]want{
				agentsv1alpha1.ConditionReady:   {metav1.ConditionFalse, agentsv1alpha1.ReasonValidationFailed},
				agentsv1alpha1.ConditionSynced:  {metav1.ConditionFalse, agentsv1alpha1.ReasonValidationFailed},
				agentsv1alpha1.ConditionStalled: {metav1.ConditionTrue, agentsv1alpha1.ReasonValidationFailed},
			}},
		{"a transient failure is reconciling, not stalled",
			[]metav1.Condition{{Type: agentsv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "y"}},
			outcome{kind: outcomeRetrying, reason: agentsv1alpha1.ReasonAPIUnavailable},
			map[string]want{
				agentsv1alpha1.ConditionReady:       {metav1.ConditionFalse, agentsv1alpha1.ReasonAPIUnavailable},
				agentsv1alpha1.ConditionSynced:      {metav1.ConditionFalse, agentsv1alpha1.ReasonAPIUnavailable},
				agentsv1alpha1.ConditionReconciling: {metav1.ConditionTrue, agentsv1alpha1.ReasonAPIUnavailable},
			}},
		{"paused keeps Synced as it was", synced,
			outcome{kind: outcomePaused, reason: agentsv1alpha1.ReasonPaused},
			map[string]want{
				agentsv1alpha1.ConditionReady:  {metav1.ConditionFalse, agentsv1alpha1.ReasonPaused},
				agentsv1alpha1.ConditionSynced: {metav1.ConditionTrue, agentsv1alpha1.ReasonSynced},
			}},
		{"deleting", synced,
			outcome{kind: outcomeDeleting, reason: agentsv1alpha1.ReasonDeleting},
			map[string]want{
				agentsv1alpha1.ConditionReady:       {metav1.ConditionFalse, agentsv1alpha1.ReasonDeleting},
				agentsv1alpha1.ConditionSynced:      {metav1.ConditionTrue, agentsv1alpha1.ReasonSynced},
				agentsv1alpha1.ConditionReconciling: {metav1.ConditionTrue, agentsv1alpha1.ReasonDeleting},
			}},
		{"publish state is reported", nil,
			outcome{kind: outcomeSynced, reason: agentsv1alpha1.ReasonSynced,
				publish: &publishState{status: true, reason: agentsv1alpha1.ReasonAgentPublished, agentStatus: talkover.AgentStatusPublished}},
			map[string]want{
				agentsv1alpha1.ConditionReady:          {metav1.ConditionTrue, agentsv1alpha1.ReasonSynced},
				agentsv1alpha1.ConditionSynced:         {metav1.ConditionTrue, agentsv1alpha1.ReasonSynced},
				agentsv1alpha1.ConditionAgentPublished: {metav1.ConditionTrue, agentsv1alpha1.ReasonAgentPublished},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := computeConditions(tt.existing, tt.outcome, 7, now)
			g.Expect(got).To(HaveLen(len(tt.want)))
			for _, c := range got {
				w, ok := tt.want[c.Type]
				g.Expect(ok).To(BeTrue(), "unexpected condition %s", c.Type)
				g.Expect(c.Status).To(Equal(w.status), c.Type)
				g.Expect(c.Reason).To(Equal(w.reason), c.Type)
			}
			for _, c := range got {
				if c.Reason == tt.outcome.reason {
					g.Expect(c.ObservedGeneration).To(Equal(int64(7)))
				}
			}
		})
	}

	t.Run("an unchanged status keeps its transition time", func(t *testing.T) {
		g := NewWithT(t)
		got := computeConditions(synced, outcome{kind: outcomeSynced, reason: agentsv1alpha1.ReasonSynced}, 1, now)
		g.Expect(findCondition(got, agentsv1alpha1.ConditionReady).LastTransitionTime).To(Equal(earlier))
	})
	t.Run("long messages are cut on a rune boundary", func(t *testing.T) {
		// Multi-byte runes, shifted by 0 to 3 ASCII bytes, so that a cut at
		// the byte limit lands inside a rune in some case, whatever the limit.
		for _, r := range []string{"é", "€", "𝄞"} {
			for shift := range utf8.UTFMax {
				long := strings.Repeat("a", shift) + strings.Repeat(r, 2*maxConditionMessage/len(r))
				got := computeConditions(nil, outcome{kind: outcomeStalled, reason: agentsv1alpha1.ReasonValidationFailed, message: long}, 1, now)
				msg := findCondition(got, agentsv1alpha1.ConditionReady).Message
				g := NewWithT(t)
				g.Expect(utf8.ValidString(msg)).To(BeTrue(), "%q shifted by %d: the message is not valid UTF-8", r, shift)
				g.Expect(len(msg)).To(BeNumerically("<=", maxConditionMessage))
				kept, cut := strings.CutSuffix(msg, "…")
				g.Expect(cut).To(BeTrue(), "the cut is marked")
				g.Expect(long).To(HavePrefix(kept), "what is kept is the start of the message")
				g.Expect(len(kept)).To(BeNumerically(">", maxConditionMessage-len("…")-utf8.UTFMax), "at most one rune is dropped at the cut")
			}
		}
	})
}

func TestCompareRemote(t *testing.T) {
	yes := true
	spec := agentsv1alpha1.AgentActionSpec{
		Name: "Schedule", Description: "d", Type: agentsv1alpha1.ActionTypeWebhook, URL: "https://x.example/a",
		Inputs: []agentsv1alpha1.ActionInput{{Name: "date", Type: "string", Required: &yes}},
	}
	remote := talkover.Action{ID: "1", Name: "Schedule", Description: "d", Type: "webhook", URL: "https://x.example/a",
		CurrentStatus: "active", InputSchema: []talkover.Input{{Name: "date", Type: "string", Required: &yes}}}
	tests := []struct {
		name   string
		mutate func(*talkover.Action)
		found  bool
		want   string
	}{
		{"identical (unset currentStatus is active)", func(*talkover.Action) {}, true, ""},
		{"missing", func(*talkover.Action) {}, false, driftMissing},
		{"name changed", func(a *talkover.Action) { a.Name = "Other" }, true, "name"},
		{"url changed", func(a *talkover.Action) { a.URL = "" }, true, "url"},
		{"deactivated", func(a *talkover.Action) { a.CurrentStatus = "inactive" }, true, "current_status"},
		{"input dropped", func(a *talkover.Action) { a.InputSchema = nil }, true, "input_schema"},
		{"input required flipped", func(a *talkover.Action) {
			no := false
			a.InputSchema = []talkover.Input{{Name: "date", Type: "string", Required: &no}}
		}, true, "input_schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := remote
			r.InputSchema = append([]talkover.Input(nil), remote.InputSchema...)
			tt.mutate(&r)
			got := compareRemote(&spec, r, tt.found)
			if tt.want == "" {
				NewWithT(t).Expect(got).To(BeEmpty())
			} else {
				NewWithT(t).Expect(got).To(ContainSubstring(tt.want))
			}
		})
	}
}
