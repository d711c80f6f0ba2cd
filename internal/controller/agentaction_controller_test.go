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
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
)

func TestAgentActionReconciler_createUpdateDelete(t *testing.T) {
	f := newFixture(t)
	f.create(f.webhook("schedule", "action-node-456"))

	a := f.waitReason("schedule", agentsv1alpha1.ReasonSynced)
	f.g.Expect(a.Status.ID).NotTo(BeEmpty())
	f.g.Expect(a.Status.AppliedHash).To(HavePrefix("sha256:"))
	f.g.Expect(a.Finalizers).To(ContainElement(agentsv1alpha1.AgentActionFinalizer))
	f.g.Expect(f.condition("schedule", agentsv1alpha1.ConditionSynced).Status).To(Equal(metav1.ConditionTrue))
	f.g.Expect(f.condition("schedule", agentsv1alpha1.ConditionReconciling)).To(BeNil())
	remote, ok := f.sim.ActionByNodeID(f.agent, "action-node-456")
	f.g.Expect(ok).To(BeTrue())
	f.g.Expect(remote.ID).To(Equal(a.Status.ID))
	f.g.Expect(remote.URL).To(Equal("https://api.example.com/schedule"))
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(1))
	f.consistently(func(g Gomega) { g.Expect(f.events("schedule")).To(BeEmpty()) }, time.Second)

	// An update is one POST, to the same remote action.
	f.update("schedule", func(a *agentsv1alpha1.AgentAction) { a.Spec.Description = "Book a meeting" })
	f.g.Eventually(func() string {
		r, _ := f.sim.ActionByNodeID(f.agent, "action-node-456")
		return r.Description
	}, timeout, interval).Should(Equal("Book a meeting"))
	f.waitReason("schedule", agentsv1alpha1.ReasonSynced)
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(2))
	f.g.Eventually(func() []string { return f.events("schedule") }, timeout, interval).Should(Equal([]string{"Updated"}))
	f.g.Expect(f.sim.Actions(f.agent)).To(HaveLen(1))

	// A change that is not a spec change (a label, an annotation) and the
	// status writes of the operator itself make no call.
	f.update("schedule", func(a *agentsv1alpha1.AgentAction) {
		a.Annotations = map[string]string{"example.com/owner": "team-a"}
	})
	f.consistently(func(g Gomega) { g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(2)) }, 2*time.Second)

	// Delete removes the remote action, then the finalizer.
	f.g.Expect(k8sClient.Delete(f.ctx, f.get("schedule"))).To(Succeed())
	f.g.Eventually(func() bool {
		err := k8sClient.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "schedule"}, &agentsv1alpha1.AgentAction{})
		return apierrors.IsNotFound(err)
	}, timeout, interval).Should(BeTrue())
	f.g.Expect(f.sim.Actions(f.agent)).To(BeEmpty())
	f.g.Expect(f.sim.Count(apisim.RouteDelete)).To(Equal(1))
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(2))
}

func TestAgentActionReconciler_restartMakesNoCalls(t *testing.T) {
	f := newFixture(t)
	for _, n := range []string{"a", "b", "c"} {
		f.create(f.webhook(n, "node-"+n))
	}
	for _, n := range []string{"a", "b", "c"} {
		f.waitReason(n, agentsv1alpha1.ReasonSynced)
	}
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(3))
	before := f.get("a").ResourceVersion

	restartManager(t)
	f.consistently(func(g Gomega) {
		g.Expect(f.sim.Requests()).To(HaveLen(3))
	}, 3*time.Second)
	f.g.Expect(f.get("a").ResourceVersion).To(Equal(before), "a restart must not write the status again")
}

func TestAgentActionReconciler_orphan(t *testing.T) {
	f := newFixture(t)
	a := f.webhook("keep", "node-keep")
	a.Spec.DeletionPolicy = agentsv1alpha1.DeletionPolicyOrphan
	f.create(a)
	f.waitReason("keep", agentsv1alpha1.ReasonSynced)
	f.g.Expect(k8sClient.Delete(f.ctx, f.get("keep"))).To(Succeed())
	f.g.Eventually(func() bool {
		return apierrors.IsNotFound(k8sClient.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "keep"}, &agentsv1alpha1.AgentAction{}))
	}, timeout, interval).Should(BeTrue())
	f.g.Expect(f.sim.Actions(f.agent)).To(HaveLen(1))
	f.g.Expect(f.sim.Count(apisim.RouteDelete)).To(Equal(0))
	f.g.Expect(f.events("keep")).NotTo(ContainElement("Deleted"), "nothing was deleted")
}

func TestAgentActionReconciler_missingDependencies(t *testing.T) {
	f := newFixture(t)
	a := f.webhook("no-env", "node-1")
	a.Spec.EnvironmentRef.Name = "missing"
	f.create(a)
	f.waitReason("no-env", agentsv1alpha1.ReasonEnvironmentNotFound)
	f.g.Expect(f.condition("no-env", agentsv1alpha1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))

	b := f.webhook("no-secret", "node-2")
	b.Spec.CustomHeaders = []agentsv1alpha1.CustomHeader{{Key: "X-Api-Key", ValueFrom: &agentsv1alpha1.HeaderValueSource{
		SecretKeyRef: agentsv1alpha1.SecretKeySelector{Name: "webhook-key", Key: "key"},
	}}}
	f.create(b)
	f.waitReason("no-secret", agentsv1alpha1.ReasonSecretNotFound)
	f.g.Expect(f.sim.Requests()).To(BeEmpty(), "a missing dependency makes no API call")

	// Creating what was missing fixes both, with one POST each.
	f.createSecret("webhook-key", map[string]string{"key": secretHeaderValue})
	f.waitReason("no-secret", agentsv1alpha1.ReasonSynced)
	env := &agentsv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "missing"}, Spec: f.env.Spec}
	f.g.Expect(k8sClient.Create(f.ctx, env)).To(Succeed())
	f.waitReason("no-env", agentsv1alpha1.ReasonSynced)
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(2))
	remote, _ := f.sim.ActionByNodeID(f.agent, "node-2")
	f.g.Expect(remote.CustomHeaders).To(Equal([]apisim.Header{{Key: "X-Api-Key", Value: secretHeaderValue}}))
	for _, note := range f.eventNotes() {
		f.g.Expect(note).NotTo(ContainSubstring(secretHeaderValue))
		f.g.Expect(note).NotTo(ContainSubstring(testToken))
	}
}

func TestAgentActionReconciler_headerRotation(t *testing.T) {
	f := newFixture(t)
	secret := f.createSecret("webhook-key", map[string]string{"key": secretHeaderV1})
	a := f.webhook("rotate", "node-1")
	a.Spec.CustomHeaders = []agentsv1alpha1.CustomHeader{
		{Key: "X-Plain", Value: ptrTo("plain")},
		{Key: "X-Api-Key", ValueFrom: &agentsv1alpha1.HeaderValueSource{
			SecretKeyRef: agentsv1alpha1.SecretKeySelector{Name: "webhook-key", Key: "key"},
		}},
	}
	f.create(a)
	f.waitReason("rotate", agentsv1alpha1.ReasonSynced)
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(1))

	secret.StringData = map[string]string{"key": secretHeaderV2}
	f.g.Expect(k8sClient.Update(f.ctx, secret)).To(Succeed())
	f.g.Eventually(func() string {
		r, _ := f.sim.ActionByNodeID(f.agent, "node-1")
		for _, h := range r.CustomHeaders {
			if h.Key == "X-Api-Key" {
				return h.Value
			}
		}
		return ""
	}, timeout, interval).Should(Equal(secretHeaderV2))
	f.consistently(func(g Gomega) { g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(2)) }, 2*time.Second)
	f.g.Expect(f.events("rotate")).To(Equal([]string{"Updated"}), "the rotation is one update")
	st := f.get("rotate").Status
	f.g.Expect(st.AppliedHash).NotTo(ContainSubstring(secretHeaderV2))
}

func TestAgentActionReconciler_unauthorizedThenFixed(t *testing.T) {
	f := newFixture(t)
	var secret corev1.Secret
	f.g.Expect(k8sClient.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "talkover-token"}, &secret)).To(Succeed())
	secret.Data = map[string][]byte{"token": []byte(wrongToken)}
	f.g.Expect(k8sClient.Update(f.ctx, &secret)).To(Succeed())

	f.create(f.webhook("auth", "node-1"))
	a := f.waitReason("auth", agentsv1alpha1.ReasonUnauthorized)
	f.g.Expect(f.condition("auth", agentsv1alpha1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))
	f.g.Expect(a.Status.ID).To(BeEmpty())
	f.g.Eventually(func() string {
		e := &agentsv1alpha1.Environment{}
		_ = k8sClient.Get(f.ctx, client.ObjectKeyFromObject(f.env), e)
		if c := findCondition(e.Status.Conditions, agentsv1alpha1.ConditionReady); c != nil {
			return c.Reason
		}
		return ""
	}, timeout, interval).Should(Equal(agentsv1alpha1.ReasonUnauthorized))
	f.consistently(func(g Gomega) { g.Expect(f.sim.CountStatus(401)).To(Equal(1)) }, 2*time.Second)
	// The Environment's readiness comes from the AgentActions' status, so
	// a restart keeps it, and asks the API nothing.
	restartManager(t)
	f.g.Eventually(func(g Gomega) {
		e := &agentsv1alpha1.Environment{}
		g.Expect(k8sClient.Get(f.ctx, client.ObjectKeyFromObject(f.env), e)).To(Succeed())
		c := findCondition(e.Status.Conditions, agentsv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(agentsv1alpha1.ReasonUnauthorized))
		g.Expect(c.Message).To(ContainSubstring(f.ns + "/auth"))
	}, timeout, interval).Should(Succeed())
	f.g.Expect(f.sim.CountStatus(401)).To(Equal(1))

	// Fixing the token in the Secret recovers without touching the AgentAction.
	generation := a.Generation
	secret.Data = map[string][]byte{"token": []byte(testToken)}
	f.g.Expect(k8sClient.Update(f.ctx, &secret)).To(Succeed())
	a = f.waitReason("auth", agentsv1alpha1.ReasonSynced)
	f.g.Expect(a.Generation).To(Equal(generation))
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(2))
	f.g.Expect(f.events("auth")).To(ContainElements("Unauthorized", "Synced"))
}

func TestAgentActionReconciler_transientErrors(t *testing.T) {
	f := newFixture(t)
	f.sim.SetFaults(apisim.RouteUpsert, apisim.Faults{ErrorRate: 1, ErrorCodes: []int{503}})
	f.create(f.webhook("flaky", "node-1"))
	f.waitReason("flaky", agentsv1alpha1.ReasonAPIUnavailable)
	f.g.Expect(f.condition("flaky", agentsv1alpha1.ConditionReconciling).Status).To(Equal(metav1.ConditionTrue))
	f.g.Expect(f.condition("flaky", agentsv1alpha1.ConditionStalled)).To(BeNil())

	// Two failures, fewer than the circuit breaker needs to open: the
	// retries are spaced by the resource's own backoff (1 s, then 2 s, with
	// up to 20% jitter), not by the breaker.
	f.g.Eventually(func() int { return f.sim.CountStatus(503) }, timeout, 50*time.Millisecond).Should(Equal(2))
	f.sim.ClearFaults()
	f.waitReason("flaky", agentsv1alpha1.ReasonSynced)
	var at []time.Time
	for _, r := range f.sim.Requests() {
		if r.Route == apisim.RouteUpsert {
			at = append(at, r.Time)
		}
	}
	f.g.Expect(at).To(HaveLen(3), "two failures and the push that worked")
	// The first retry may come at once (the first reconcile can run again
	// for an event that arrived late, such as the token Secret's); after
	// the second failure the backoff is 2 s.
	f.g.Expect(at[2].Sub(at[1])).To(BeNumerically(">=", 1800*time.Millisecond), "second retry after about 2 s")
	f.g.Expect(f.sim.Actions(f.agent)).To(HaveLen(1))
	// One Warning on the way in, one Normal on the way out: no Event per retry.
	f.g.Expect(countOf(f.events("flaky"), agentsv1alpha1.ReasonAPIUnavailable)).To(Equal(1))
}

func TestAgentActionReconciler_rateLimitedRetryAfter(t *testing.T) {
	f := newFixture(t)
	f.sim.Burst429(1, 2*time.Second)
	f.create(f.webhook("limited", "node-1"))
	f.waitReason("limited", agentsv1alpha1.ReasonSynced)
	f.g.Expect(f.sim.CountStatus(429)).To(Equal(1))
	reqs := f.sim.Requests()
	f.g.Expect(reqs).To(HaveLen(2))
	f.g.Expect(reqs[1].Time.Sub(reqs[0].Time)).To(BeNumerically(">=", 1900*time.Millisecond), "Retry-After is honoured")
	// One Warning for the 429, and the remote action created after it.
	f.g.Eventually(func() []string { return f.events("limited") }, timeout, interval).Should(
		ContainElements(agentsv1alpha1.ReasonRateLimited, "Created"))
	f.g.Expect(countOf(f.events("limited"), agentsv1alpha1.ReasonRateLimited)).To(Equal(1))
}

func TestAgentActionReconciler_validationFailed(t *testing.T) {
	f := newFixture(t)
	f.sim.SetFaults(apisim.RouteUpsert, apisim.Faults{ErrorRate: 1, ErrorCodes: []int{422}})
	f.create(f.webhook("invalid", "node-1"))
	a := f.waitReason("invalid", agentsv1alpha1.ReasonValidationFailed)
	f.g.Expect(f.condition("invalid", agentsv1alpha1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))
	// The message carries the API's field errors, so the user knows what
	// to fix; a Warning Event says the same once.
	fieldError := apisim.InjectedFieldError + ": " + apisim.InjectedFieldMessage
	f.g.Expect(f.condition("invalid", agentsv1alpha1.ConditionReady).Message).To(And(ContainSubstring("422"), ContainSubstring(fieldError)))
	f.g.Expect(f.condition("invalid", agentsv1alpha1.ConditionSynced).Message).To(ContainSubstring(fieldError))
	f.g.Expect(a.Status.ID).To(BeEmpty())
	f.g.Eventually(func() []string { return f.eventNotes() }, timeout, interval).Should(
		ContainElement(And(HavePrefix(agentsv1alpha1.ReasonValidationFailed+": "), ContainSubstring(fieldError))))
	// Stalled: no retry loop. The suite's --stalled-retry-interval is an
	// hour, so the bound over any minute is this one call.
	f.consistently(func(g Gomega) { g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(1)) }, 3*time.Second)
	f.g.Expect(f.events("invalid")).To(HaveLen(1), "one Event, not one per retry")

	// A spec change retries at once.
	f.sim.ClearFaults()
	f.update("invalid", func(a *agentsv1alpha1.AgentAction) { a.Spec.Description = "fixed" })
	f.waitReason("invalid", agentsv1alpha1.ReasonSynced)
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(2))
}

func TestAgentActionReconciler_duplicateNodeID(t *testing.T) {
	f := newFixture(t)
	f.create(f.webhook("first", "shared-node"))
	f.waitReason("first", agentsv1alpha1.ReasonSynced)
	f.create(f.webhook("second", "shared-node"))
	f.waitReason("second", agentsv1alpha1.ReasonDuplicateNodeID)
	f.g.Expect(f.condition("second", agentsv1alpha1.ConditionReady).Message).To(ContainSubstring(`"first"`))
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(1))
	f.g.Eventually(func() []string { return f.events("second") }, timeout, interval).Should(
		Equal([]string{agentsv1alpha1.ReasonDuplicateNodeID}), "a Warning says which AgentAction owns the node")

	// Deleting the duplicate must not delete the owner's remote action.
	f.g.Expect(k8sClient.Delete(f.ctx, f.get("second"))).To(Succeed())
	f.g.Eventually(func() bool {
		return apierrors.IsNotFound(k8sClient.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "second"}, &agentsv1alpha1.AgentAction{}))
	}, timeout, interval).Should(BeTrue())
	f.g.Expect(f.sim.Actions(f.agent)).To(HaveLen(1))
	f.g.Expect(f.sim.Count(apisim.RouteDelete)).To(Equal(0))
	f.g.Expect(f.events("first")).To(BeEmpty(), "the owner saw no change")
}

func TestAgentActionReconciler_duplicateTakesOver(t *testing.T) {
	f := newFixture(t)
	f.create(f.webhook("first", "shared-node"))
	f.waitReason("first", agentsv1alpha1.ReasonSynced)
	f.create(f.webhook("second", "shared-node"))
	f.waitReason("second", agentsv1alpha1.ReasonDuplicateNodeID)
	f.g.Expect(k8sClient.Delete(f.ctx, f.get("first"))).To(Succeed())
	f.waitReason("second", agentsv1alpha1.ReasonSynced)
	f.g.Expect(f.sim.Actions(f.agent)).To(HaveLen(1))
}

func TestAgentActionReconciler_pause(t *testing.T) {
	f := newFixture(t)
	a := f.webhook("paused", "node-1")
	a.Annotations = map[string]string{agentsv1alpha1.PausedAnnotation: "true"}
	f.create(a)
	f.waitReason("paused", agentsv1alpha1.ReasonPaused)
	f.consistently(func(g Gomega) { g.Expect(f.sim.Requests()).To(BeEmpty()) }, 2*time.Second)

	f.update("paused", func(a *agentsv1alpha1.AgentAction) { delete(a.Annotations, agentsv1alpha1.PausedAnnotation) })
	f.waitReason("paused", agentsv1alpha1.ReasonSynced)
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(1))

	// Paused again: a spec change is not pushed.
	f.update("paused", func(a *agentsv1alpha1.AgentAction) {
		a.Annotations = map[string]string{agentsv1alpha1.PausedAnnotation: "true"}
		a.Spec.Description = "changed while paused"
	})
	f.waitReason("paused", agentsv1alpha1.ReasonPaused)
	f.consistently(func(g Gomega) { g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(1)) }, 2*time.Second)
	// Each pause is an Event.
	f.g.Expect(countOf(f.events("paused"), agentsv1alpha1.ReasonPaused)).To(Equal(2))
}

func TestAgentActionReconciler_twinReplaced(t *testing.T) {
	f := newFixture(t, apisim.WithUpsertMode(apisim.AlwaysCreate))
	f.create(f.webhook("twin", "node-1"))
	first := f.waitReason("twin", agentsv1alpha1.ReasonSynced).Status.ID
	f.update("twin", func(a *agentsv1alpha1.AgentAction) { a.Spec.Description = "second version" })
	f.g.Eventually(func() string { return f.get("twin").Status.ID }, timeout, interval).ShouldNot(Equal(first))
	f.waitReason("twin", agentsv1alpha1.ReasonSynced)
	// The old action is deleted with a slot of its own (the push took the
	// last free one), and status.replacedId keeps it until then.
	f.g.Eventually(func() []apisim.Action { return f.sim.Actions(f.agent) }, timeout, interval).Should(HaveLen(1), "the API's twin is deleted")
	f.g.Expect(f.sim.Actions(f.agent)[0].Description).To(Equal("second version"))
	f.g.Eventually(func() string { return f.get("twin").Status.ReplacedID }, timeout, interval).Should(BeEmpty())
	f.g.Eventually(func() []string { return f.events("twin") }, timeout, interval).Should(ContainElement("TwinReplaced"))
}

func countOf(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}
