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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
)

// An AgentAction whose requests never left for the API has no finalizer, so
// deleting it takes no call and does not wait for the API.
func TestDelete_neverSentIsReleasedWithoutACall(t *testing.T) {
	requireEnvtest(t)
	gone := func(f *fixture, name string) {
		f.t.Helper()
		f.g.Expect(k8sClient.Delete(f.ctx, f.get(name))).To(Succeed())
		f.g.Eventually(func() bool {
			err := k8sClient.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, &agentsv1alpha1.AgentAction{})
			return apierrors.IsNotFound(err)
		}, timeout, interval).Should(BeTrue(), "%s is released at once", name)
	}

	t.Run("stalled before any push", func(t *testing.T) {
		f := newFixture(t)
		a := f.webhook("lost", "node-1")
		a.Spec.EnvironmentRef.Name = "absent"
		f.create(a)
		f.waitReason("lost", agentsv1alpha1.ReasonEnvironmentNotFound)
		f.g.Expect(f.get("lost").Finalizers).To(BeEmpty())
		gone(f, "lost")
		f.g.Expect(f.sim.Requests()).To(BeEmpty())
	})

	t.Run("waiting for the rate limiter", func(t *testing.T) {
		f := newFixture(t)
		f.setEnv(func(s *agentsv1alpha1.EnvironmentSpec) { s.RequestsPerMinute = ptrTo(int32(1)) })
		f.create(f.webhook("first", "node-1"))
		f.waitReason("first", agentsv1alpha1.ReasonSynced)
		// The budget is spent: the push of the second waits, and no request
		// of it has left, so it has no finalizer yet.
		f.create(f.webhook("second", "node-2"))
		f.g.Eventually(func(g Gomega) {
			c := f.condition("second", agentsv1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionUnknown))
		}, timeout, interval).Should(Succeed())
		f.g.Expect(f.get("second").Finalizers).To(BeEmpty())
		gone(f, "second")
		f.consistently(func(g Gomega) {
			g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(1), "only the first was pushed")
			g.Expect(f.sim.Count(apisim.RouteDelete)).To(BeZero())
		}, 2*time.Second)
	})
}
