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
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// The ledger in the environments' status, against the real kube-apiserver:
// entries of Environments and ClusterEnvironments, concurrent writers, and
// an environment that is gone.
func TestStatusLedger(t *testing.T) {
	f := newFixture(t)
	g := f.g
	ledger := &statusLedger{Client: k8sClient, Reader: k8sClient}
	// Environments whose token Secret is absent: the publish controller
	// leaves their ledgers alone.
	le := &agentsv1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Name: "ledger", Namespace: f.ns},
		Spec:       agentsv1alpha1.EnvironmentSpec{TokenSecretRef: agentsv1alpha1.TokenSecretReference{Name: "absent"}},
	}
	g.Expect(k8sClient.Create(f.ctx, le)).To(Succeed())
	ce := &agentsv1alpha1.ClusterEnvironment{
		ObjectMeta: metav1.ObjectMeta{Name: "ledger-" + f.ns},
		Spec: agentsv1alpha1.ClusterEnvironmentSpec{EnvironmentSpec: agentsv1alpha1.EnvironmentSpec{
			TokenSecretRef: agentsv1alpha1.TokenSecretReference{Name: "absent"},
		}},
	}
	g.Expect(k8sClient.Create(f.ctx, ce)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(f.ctx, ce) })
	status := func(env types.NamespacedName) agentsv1alpha1.EnvironmentStatus {
		obj, st := ledgerObject(env)
		g.Expect(k8sClient.Get(f.ctx, env, obj)).To(Succeed())
		return *st
	}
	reasons := func(env types.NamespacedName) map[string]string {
		m := map[string]string{}
		for _, p := range status(env).Publishes {
			m[p.AgentID] = p.Reason
		}
		return m
	}

	for _, env := range []types.NamespacedName{client.ObjectKeyFromObject(le), {Name: ce.Name}} {
		// Writers in parallel, as the publishes of several agents are: the
		// optimistic lock keeps every entry.
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Go(func() { errs[i] = ledger.add(f.ctx, env, fmt.Sprintf("agent-%d", i)) })
		}
		wg.Wait()
		g.Expect(errs).To(HaveEach(Succeed()))
		g.Expect(ledger.add(f.ctx, env, "agent-0")).To(Succeed(), "adding twice is harmless")
		g.Expect(status(env).PendingPublishes).To(ConsistOf("agent-0", "agent-1", "agent-2", "agent-3", "agent-4", "agent-5"))
		g.Expect(reasons(env)).To(HaveKeyWithValue("agent-3", agentsv1alpha1.ReasonPublishPending))

		rec := agentsv1alpha1.AgentPublishStatus{AgentID: "agent-3", Reason: agentsv1alpha1.ReasonAgentPublished, Message: publishedMessage}
		g.Expect(ledger.settle(f.ctx, env, rec)).To(Succeed())
		g.Expect(ledger.settle(f.ctx, env, rec)).To(Succeed(), "settling twice is harmless")
		g.Expect(status(env).PendingPublishes).To(ConsistOf("agent-0", "agent-1", "agent-2", "agent-4", "agent-5"))
		g.Expect(reasons(env)).To(HaveKeyWithValue("agent-3", agentsv1alpha1.ReasonAgentPublished))

		g.Expect(ledger.record(f.ctx, env, agentsv1alpha1.AgentPublishStatus{AgentID: "agent-9",
			Reason: agentsv1alpha1.ReasonAgentLeftInDraft, Message: strings.Repeat("é", 600)})).To(Succeed())
		for _, p := range status(env).Publishes {
			g.Expect(len(p.Message)).To(BeNumerically("<=", maxRecordMessage), "the API's bound on a record's message")
		}
		for _, id := range []string{"agent-0", "agent-1", "agent-2", "agent-3", "agent-4", "agent-5", "agent-9"} {
			g.Expect(ledger.forget(f.ctx, env, id)).To(Succeed())
		}
		g.Expect(status(env).PendingPublishes).To(BeEmpty())
		g.Expect(status(env).Publishes).To(BeEmpty())
	}

	// The Environment controller's own status writes keep the entries.
	env := client.ObjectKeyFromObject(le)
	g.Expect(ledger.add(f.ctx, env, "agent-kept")).To(Succeed())
	var e agentsv1alpha1.Environment
	g.Expect(k8sClient.Get(f.ctx, env, &e)).To(Succeed())
	e.Spec.RequestsPerMinute = ptrTo(int32(50))
	g.Expect(k8sClient.Update(f.ctx, &e)).To(Succeed())
	g.Eventually(func(g Gomega) {
		var got agentsv1alpha1.Environment
		g.Expect(k8sClient.Get(f.ctx, env, &got)).To(Succeed())
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(got.Status.PendingPublishes).To(ConsistOf("agent-kept"))
	}, timeout, interval).Should(Succeed())

	// An environment that is gone owes nothing, and writing to it is harmless.
	gone := types.NamespacedName{Namespace: f.ns, Name: "gone"}
	g.Expect(ledger.add(f.ctx, gone, "agent-1")).To(Succeed())
	g.Expect(ledger.forget(f.ctx, gone, "agent-1")).To(Succeed())
}
