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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
)

func TestClusterEnvironment_allowedNamespaces(t *testing.T) {
	f := newFixture(t)
	g := f.g
	// The platform team's token lives in the operator's namespace.
	secretName := "platform-token-" + f.ns
	g.Expect(k8sClient.Create(f.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: secretName},
		StringData: map[string]string{"token": testToken},
	})).To(Succeed())
	ce := &agentsv1alpha1.ClusterEnvironment{
		ObjectMeta: metav1.ObjectMeta{Name: "platform-" + f.ns},
		Spec: agentsv1alpha1.ClusterEnvironmentSpec{
			EnvironmentSpec: agentsv1alpha1.EnvironmentSpec{
				APIURL:         f.sim.URL(),
				TokenSecretRef: agentsv1alpha1.TokenSecretReference{Name: secretName},
				PublishPolicy:  agentsv1alpha1.PublishPolicyManual,
			},
			AllowedNamespaces: &metav1.LabelSelector{MatchLabels: map[string]string{"talkover-team": f.ns}},
		},
	}
	g.Expect(k8sClient.Create(f.ctx, ce)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(f.ctx, ce) })

	a := f.webhook("shared", "node-1")
	a.Spec.EnvironmentRef = agentsv1alpha1.EnvironmentReference{Kind: agentsv1alpha1.EnvironmentKindCluster, Name: ce.Name}
	f.create(a)
	f.waitReason("shared", agentsv1alpha1.ReasonEnvironmentNotAllowed)
	g.Expect(f.condition("shared", agentsv1alpha1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))
	f.consistently(func(g Gomega) { g.Expect(f.sim.Requests()).To(BeEmpty()) }, time.Second)

	// Labelling the namespace lets it use the ClusterEnvironment.
	ns := &corev1.Namespace{}
	g.Expect(k8sClient.Get(f.ctx, client.ObjectKey{Name: f.ns}, ns)).To(Succeed())
	ns.Labels = map[string]string{"talkover-team": f.ns}
	g.Expect(k8sClient.Update(f.ctx, ns)).To(Succeed())
	f.waitReason("shared", agentsv1alpha1.ReasonSynced)
	g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(1))

	g.Eventually(func() string {
		got := &agentsv1alpha1.ClusterEnvironment{}
		_ = k8sClient.Get(f.ctx, client.ObjectKeyFromObject(ce), got)
		if c := findCondition(got.Status.Conditions, agentsv1alpha1.ConditionReady); c != nil {
			return c.Reason
		}
		return ""
	}, timeout, interval).Should(Equal(agentsv1alpha1.ReasonTokenValid))
}

func TestEnvironment_missingTokenIsStalled(t *testing.T) {
	f := newFixture(t)
	env := &agentsv1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "no-token"},
		Spec:       agentsv1alpha1.EnvironmentSpec{TokenSecretRef: agentsv1alpha1.TokenSecretReference{Name: "absent"}},
	}
	f.g.Expect(k8sClient.Create(f.ctx, env)).To(Succeed())
	f.g.Eventually(func(g Gomega) {
		got := &agentsv1alpha1.Environment{}
		g.Expect(k8sClient.Get(f.ctx, client.ObjectKeyFromObject(env), got)).To(Succeed())
		ready := findCondition(got.Status.Conditions, agentsv1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Reason).To(Equal(agentsv1alpha1.ReasonSecretNotFound))
		g.Expect(findCondition(got.Status.Conditions, agentsv1alpha1.ConditionStalled)).NotTo(BeNil())
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
	}, timeout, interval).Should(Succeed())
}
