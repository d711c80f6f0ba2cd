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
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
)

// TestHostileAnswers: broken or hostile answers of the API give a clear
// condition, no panic, no corrupted status, and never send the token to
// another host.
func TestHostileAnswers(t *testing.T) {
	requireEnvtest(t)
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer other.Close()

	tests := []struct {
		name    string
		mode    apisim.HostileMode
		stalled bool
		message string
	}{
		{"malformed JSON", apisim.HostileMalformedJSON, false, "UpsertAction"},
		{"huge body", apisim.HostileHugeBody, false, "exceeds"},
		{"wrong content type", apisim.HostileWrongContentType, false, "UpsertAction"},
		{"200 with success false", apisim.HostileSuccessFalse, false, "UpsertAction"},
		{"missing data.id", apisim.HostileMissingID, false, "UpsertAction"},
		{"redirect to another host", apisim.HostileRedirect(other.URL + "/api/v1/agents/x/actions"), true, "redirect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.sim.SetHostile(apisim.RouteUpsert, tt.mode)
			f.create(f.webhook("hostile", "node-1"))
			a := f.waitReason("hostile", agentsv1alpha1.ReasonAPIUnavailable)
			ready := f.condition("hostile", agentsv1alpha1.ConditionReady)
			f.g.Expect(ready.Message).To(ContainSubstring(tt.message))
			f.g.Expect(ready.Message).NotTo(ContainSubstring(testToken))
			f.g.Expect(a.Status.ID).To(BeEmpty(), "no ID is recorded from a broken answer")
			f.g.Expect(a.Status.AppliedHash).To(BeEmpty())
			stalled := f.condition("hostile", agentsv1alpha1.ConditionStalled)
			if tt.stalled {
				f.g.Expect(stalled).NotTo(BeNil())
				f.g.Expect(stalled.Status).To(Equal(metav1.ConditionTrue))
			} else {
				f.g.Expect(stalled).To(BeNil(), "a broken answer is retried, not stalled")
			}

			// Once the API answers properly again, the action converges.
			f.sim.ClearFaults()
			if tt.stalled {
				f.update("hostile", func(a *agentsv1alpha1.AgentAction) { a.Spec.Description = "after redirect" })
			}
			f.waitReason("hostile", agentsv1alpha1.ReasonSynced)
			f.g.Expect(f.sim.Actions(f.agent)).NotTo(BeEmpty())
		})
	}
	NewWithT(t).Expect(elsewhere.Load()).To(BeZero(), "a redirect is never followed, so the token never goes to another host")
}
