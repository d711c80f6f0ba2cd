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
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
)

// The tenant tests run two tenants on one operator: each its own
// namespace, Environment, token and simulator. Tenant A is held back (a
// backlog on a small budget, or a server that says "come back in an hour");
// tenant B must be served as if A did not exist: its change is Ready, its
// agent published and its drift check made while A still waits. They
// assert the order of what the two simulators saw, not a wall-clock bound.

// tenantA creates n AgentActions of a tenant whose pushes cannot all go,
// and returns how many of them are Ready.
func tenantA(f *fixture, n int) func() int {
	for i := range n {
		f.create(f.webhook(fmt.Sprintf("a-%02d", i), fmt.Sprintf("node-%02d", i)))
	}
	return func() int {
		var list agentsv1alpha1.AgentActionList
		f.g.Expect(k8sClient.List(f.ctx, &list, client.InNamespace(f.ns))).To(Succeed())
		ready := 0
		for i := range list.Items {
			if c := findCondition(list.Items[i].Status.Conditions, agentsv1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
				ready++
			}
		}
		return ready
	}
}

// tenantB is a tenant with nothing queued: publishPolicy Auto and a drift
// check every second.
func tenantB(t *testing.T) *fixture {
	b := newFixture(t)
	b.setEnv(func(s *agentsv1alpha1.EnvironmentSpec) {
		s.PublishPolicy = agentsv1alpha1.PublishPolicyAuto
		s.DriftCheckInterval = &metav1.Duration{Duration: time.Second}
	})
	return b
}

// serveB makes one change of tenant B and checks, while A still waits
// (aWaits), that it is pushed, the agent published, and a drift check made.
func serveB(b *fixture, aWaits func() bool) {
	b.create(b.webhook("b", "node-b"))
	b.g.Eventually(func(g Gomega) {
		g.Expect(b.condition("b", agentsv1alpha1.ConditionReady)).NotTo(BeNil())
		g.Expect(b.condition("b", agentsv1alpha1.ConditionReady).Reason).To(Equal(agentsv1alpha1.ReasonSynced))
		g.Expect(b.publishReason("b")).To(Equal(agentsv1alpha1.ReasonAgentPublished))
	}, timeout, interval).Should(Succeed())
	b.g.Expect(aWaits()).To(BeTrue(), "tenant A was done before tenant B was served: the test proves nothing")
	agent, _ := b.sim.Agent(b.agent)
	b.g.Expect(agent.Publishes).To(Equal(1))
	b.g.Expect(b.sim.Count(apisim.RouteUpsert)).To(Equal(1))

	lists := b.sim.Count(apisim.RouteList)
	b.g.Eventually(func() int { return b.sim.Count(apisim.RouteList) }, timeout, interval).Should(BeNumerically(">", lists),
		"tenant B's drift check runs")
	b.g.Expect(aWaits()).To(BeTrue(), "tenant A was done before tenant B's drift check")
}

// Tenant A has a backlog on a budget of 6 requests a minute (12 pushes,
// about two minutes); tenant B, with its own token, is served at once.
func TestTenantIsolation_budgetBacklog(t *testing.T) {
	a := newFixture(t)
	a.setEnv(func(s *agentsv1alpha1.EnvironmentSpec) { s.RequestsPerMinute = ptrTo(int32(6)) })
	const n = 12
	aReady := tenantA(a, n)
	// The backlog is there: pushes of A wait for their slot.
	a.g.Eventually(func() bool {
		for i := range n {
			if c := a.condition(fmt.Sprintf("a-%02d", i), agentsv1alpha1.ConditionReady); c != nil && c.Reason == agentsv1alpha1.ReasonWaitingForBudget {
				return true
			}
		}
		return false
	}, timeout, interval).Should(BeTrue())

	b := tenantB(t)
	serveB(b, func() bool { return aReady() < n && a.sim.Count(apisim.RouteUpsert) < n })
	a.g.Expect(a.sim.CountStatus(429)).To(Equal(0), "A's budget keeps A within its limit")
}

// Tenant A's token is answered 429 with Retry-After: 3600 on every call;
// its AgentActions wait an hour, without holding a worker, and tenant B is
// served at once.
func TestTenantIsolation_oneHourRetryAfter(t *testing.T) {
	a := newFixture(t)
	a.sim.Burst429(1000, time.Hour)
	const n = 12
	aReady := tenantA(a, n)
	a.g.Eventually(func() int {
		waiting := 0
		for i := range n {
			if c := a.condition(fmt.Sprintf("a-%02d", i), agentsv1alpha1.ConditionReady); c != nil && c.Reason == agentsv1alpha1.ReasonRateLimited {
				waiting++
			}
		}
		return waiting
	}, timeout, interval).Should(Equal(n), "every AgentAction of A waits for the end of the pause")
	// Up to a burst of calls may be under way when the first 429 comes back;
	// after it, the pause stops A's calls rather than retrying them.
	a.g.Expect(a.sim.CountStatus(429)).To(BeNumerically("<=", 5))

	b := tenantB(t)
	serveB(b, func() bool { return aReady() == 0 })
	a.g.Expect(a.sim.CountStatus(429)).To(BeNumerically("<=", 5))
}
