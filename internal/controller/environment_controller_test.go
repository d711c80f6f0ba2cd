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
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

func refusedAction(name, reason string) AgentAction {
	a := AgentAction{}
	a.Namespace, a.Name = "team", name
	a.Status.Conditions = []metav1.Condition{{Type: agentsv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: reason, Message: "the API said " + reason}}
	return a
}

func TestRefusalCondition(t *testing.T) {
	if _, ok := refusalCondition(nil); ok {
		t.Error("no refused AgentAction, yet a refusal")
	}
	c, ok := refusalCondition([]AgentAction{
		refusedAction("c", agentsv1alpha1.ReasonUnauthorized),
		refusedAction("a", agentsv1alpha1.ReasonUnauthorized),
	})
	if !ok || c.Status != metav1.ConditionFalse || c.Reason != agentsv1alpha1.ReasonUnauthorized {
		t.Fatalf("refusalCondition = %+v, %v; want Ready=False Unauthorized", c, ok)
	}
	if !strings.Contains(c.Message, "2 AgentAction(s)") || !strings.Contains(c.Message, "team/a:") {
		t.Errorf("message %q should count the refused AgentActions and name the first", c.Message)
	}
	// A 403 concerns one agent, not the token: it stays on its AgentAction.
	forbidden := refusedAction("b", agentsv1alpha1.ReasonForbidden)
	unauthorized := refusedAction("a", agentsv1alpha1.ReasonUnauthorized)
	if tokenRefused(&forbidden) || !tokenRefused(&unauthorized) {
		t.Error("tokenRefused: only a 401 refuses the token")
	}
}

func TestEnvironmentReadiness(t *testing.T) {
	missing := fmt.Errorf("secret team/token: %w", errSecretMissing)
	for name, tc := range map[string]struct {
		secretErr  error
		refused    []AgentAction
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		"Secret present, nothing refused": {nil, nil, metav1.ConditionTrue, agentsv1alpha1.ReasonTokenValid},
		"Secret missing":                  {missing, nil, metav1.ConditionFalse, agentsv1alpha1.ReasonSecretNotFound},
		"Secret missing and a 401":        {missing, []AgentAction{refusedAction("a", agentsv1alpha1.ReasonUnauthorized)}, metav1.ConditionFalse, agentsv1alpha1.ReasonSecretNotFound},
		"a 401":                           {nil, []AgentAction{refusedAction("a", agentsv1alpha1.ReasonUnauthorized)}, metav1.ConditionFalse, agentsv1alpha1.ReasonUnauthorized},
	} {
		c := environmentReadiness(tc.secretErr, tc.refused)
		if c.Type != agentsv1alpha1.ConditionReady || c.Status != tc.wantStatus || c.Reason != tc.wantReason {
			t.Errorf("%s: %s=%s/%s, want Ready=%s/%s", name, c.Type, c.Status, c.Reason, tc.wantStatus, tc.wantReason)
		}
	}
}

// Two environments with one token share one budget at the lower rate; the
// budget goes when no environment uses the token.
func TestClients_shareACredentialAtTheLowerRate(t *testing.T) {
	clients := NewClients(func(cfg talkover.Config) (ActionAPI, error) { return talkover.New(cfg) }, nil, nil)
	env := func(name string, rpm int32, url string) *agentsv1alpha1.Environment {
		e := &agentsv1alpha1.Environment{}
		e.Namespace, e.Name = "team", name
		e.Spec.RequestsPerMinute = &rpm
		e.Spec.APIURL = url
		return e
	}
	a, b := types.NamespacedName{Namespace: "team", Name: "a"}, types.NamespacedName{Namespace: "team", Name: "b"}
	const url = "https://api.example.com/api/v1"
	if _, err := clients.For(env("a", 100, url), "talq_shared_token_0123456789"); err != nil {
		t.Fatal(err)
	}
	if _, err := clients.For(env("b", 30, url), "talq_shared_token_0123456789"); err != nil {
		t.Fatal(err)
	}
	if clients.Credentials() != 1 || clients.Rate(a) != 30 || clients.Rate(b) != 30 {
		t.Errorf("one token, rates 100 and 30: %d credentials, rates %d and %d; want one budget at 30",
			clients.Credentials(), clients.Rate(a), clients.Rate(b))
	}
	// b's own token: two budgets, each at its own rate.
	if _, err := clients.For(env("b", 30, url), "talq_other_token_0123456789"); err != nil {
		t.Fatal(err)
	}
	if clients.Credentials() != 2 || clients.Rate(a) != 100 || clients.Rate(b) != 30 {
		t.Errorf("two tokens: %d credentials, rates %d and %d", clients.Credentials(), clients.Rate(a), clients.Rate(b))
	}
	clients.Forget(b)
	clients.Forget(a)
	if clients.Credentials() != 0 {
		t.Errorf("%d budgets left after every environment was deleted", clients.Credentials())
	}
}

// A note over the kube-apiserver's 1 KiB limit would make the Event be
// rejected: it is cut, on a rune boundary.
func TestNoteLimitRecorder(t *testing.T) {
	fake := events.NewFakeRecorder(1)
	rec := limitNotes(fake)
	if limitNotes(rec) != rec {
		t.Error("limitNotes wrapped twice")
	}
	rec.Eventf(&AgentAction{}, nil, "Warning", agentsv1alpha1.ReasonValidationFailed, "Push", "The API said: %s", strings.Repeat("é", 2000))
	got := <-fake.Events
	note := got[strings.Index(got, "The API said"):]
	if len(note) > maxEventNote || !utf8.ValidString(note) || !strings.HasSuffix(note, "…") {
		t.Errorf("note of %d bytes (valid UTF-8: %v), want at most %d, cut with an ellipsis", len(note), utf8.ValidString(note), maxEventNote)
	}
}
