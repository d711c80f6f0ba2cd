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

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
)

// kstatusOf computes the kstatus of an object as Flux, Argo CD and
// cli-utils would.
func kstatusOf(g Gomega, obj runtime.Object) status.Status {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	g.Expect(err).NotTo(HaveOccurred())
	res, err := status.Compute(&unstructured.Unstructured{Object: content})
	g.Expect(err).NotTo(HaveOccurred())
	return res.Status
}

// TestKstatus computes kstatus on real objects of the envtest suite:
// InProgress before the first reconcile and while work is pending, Current
// when Ready, Failed when Stalled.
func TestKstatus(t *testing.T) {
	f := newFixture(t)
	f.sim.SetFaults(apisim.RouteUpsert, apisim.Faults{ErrorRate: 1, ErrorCodes: []int{503}})

	a := f.webhook("kstatus", "node-1")
	f.create(a)
	// The object as the API server returned it, before any reconcile: the
	// CRD defaults status.observedGeneration to -1, so it is not Current.
	f.g.Expect(a.Status.ObservedGeneration).To(Equal(int64(-1)))
	f.g.Expect(kstatusOf(f.g, a)).To(Equal(status.InProgressStatus))

	f.waitReason("kstatus", agentsv1alpha1.ReasonAPIUnavailable)
	f.g.Expect(kstatusOf(f.g, f.get("kstatus"))).To(Equal(status.InProgressStatus), "retrying is in progress")

	f.sim.ClearFaults()
	f.waitReason("kstatus", agentsv1alpha1.ReasonSynced)
	f.g.Expect(kstatusOf(f.g, f.get("kstatus"))).To(Equal(status.CurrentStatus))

	// A spec change is InProgress until the operator observed it. The
	// object the API server returns from the update is the state right
	// after the write: a new generation that no reconcile can have observed
	// yet, whatever the manager does next.
	var changed *agentsv1alpha1.AgentAction
	f.g.Eventually(func() error {
		changed = f.get("kstatus")
		changed.Spec.Description = "changed"
		return k8sClient.Update(f.ctx, changed)
	}, timeout, interval).Should(Succeed())
	f.g.Expect(changed.Status.ObservedGeneration).To(BeNumerically("<", changed.Generation))
	f.g.Expect(kstatusOf(f.g, changed)).To(Equal(status.InProgressStatus))
	f.waitReason("kstatus", agentsv1alpha1.ReasonSynced)
	f.g.Expect(kstatusOf(f.g, f.get("kstatus"))).To(Equal(status.CurrentStatus))

	// Stalled is Failed.
	missing := f.webhook("kstatus-failed", "node-2")
	missing.Spec.EnvironmentRef.Name = "absent"
	f.create(missing)
	f.waitReason("kstatus-failed", agentsv1alpha1.ReasonEnvironmentNotFound)
	f.g.Expect(kstatusOf(f.g, f.get("kstatus-failed"))).To(Equal(status.FailedStatus))

	// Environments too.
	f.g.Eventually(func(g Gomega) {
		env := &agentsv1alpha1.Environment{}
		g.Expect(k8sClient.Get(f.ctx, client.ObjectKeyFromObject(f.env), env)).To(Succeed())
		g.Expect(kstatusOf(g, env)).To(Equal(status.CurrentStatus))
	}, timeout, interval).Should(Succeed())
}
