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

// setEnv changes the fixture's Environment.
func (f *fixture) setEnv(mutate func(*agentsv1alpha1.EnvironmentSpec)) {
	f.t.Helper()
	f.g.Eventually(func() error {
		env := &agentsv1alpha1.Environment{}
		if err := k8sClient.Get(f.ctx, client.ObjectKeyFromObject(f.env), env); err != nil {
			return err
		}
		mutate(&env.Spec)
		return k8sClient.Update(f.ctx, env)
	}, timeout, interval).Should(Succeed())
}

// publishReason returns the reason of an AgentAction's AgentPublished condition.
func (f *fixture) publishReason(name string) string {
	if c := f.condition(name, agentsv1alpha1.ConditionAgentPublished); c != nil {
		return c.Reason
	}
	return ""
}

func TestDrift_oneListPerAgentAndRepair(t *testing.T) {
	f := newFixture(t)
	f.setEnv(func(s *agentsv1alpha1.EnvironmentSpec) {
		s.DriftCheckInterval = &metav1.Duration{Duration: 2 * time.Second}
	})
	for _, n := range []string{"a", "b", "c"} {
		f.create(f.webhook(n, "node-"+n))
	}
	for _, n := range []string{"a", "b", "c"} {
		f.waitReason(n, agentsv1alpha1.ReasonSynced)
	}
	f.sim.Reset()

	// Nothing changed: only list calls, one per interval for the agent,
	// shared by its three AgentActions.
	f.g.Eventually(func() int { return f.sim.Count(apisim.RouteList) }, timeout, interval).Should(BeNumerically(">=", 2))
	reqs := f.sim.Requests()
	for i, r := range reqs {
		f.g.Expect(r.Route).To(Equal(apisim.RouteList), "a drift check with nothing changed makes no write")
		if i > 0 {
			f.g.Expect(r.Time.Sub(reqs[i-1].Time)).To(BeNumerically(">=", 1800*time.Millisecond), "one list per interval for the agent")
		}
	}

	// Edited in the dashboard: repaired with one POST.
	a := f.get("a")
	f.g.Expect(f.sim.EditAction(f.agent, a.Status.ID, func(r *apisim.Action) { r.Name = "Edited in the dashboard" })).To(BeTrue())
	f.g.Eventually(func() string {
		r, _ := f.sim.ActionByNodeID(f.agent, "node-a")
		return r.Name
	}, timeout, interval).Should(Equal("Schedule Meeting"))
	f.g.Eventually(func() []string { return f.events("a") }, timeout, interval).Should(ContainElement(agentsv1alpha1.ReasonDriftCorrected))
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(1))

	// Deleted in the dashboard: recreated, and the new ID recorded.
	b := f.get("b")
	f.g.Expect(f.sim.RemoveAction(f.agent, b.Status.ID)).To(BeTrue())
	f.g.Eventually(func(g Gomega) {
		r, ok := f.sim.ActionByNodeID(f.agent, "node-b")
		g.Expect(ok).To(BeTrue())
		g.Expect(f.get("b").Status.ID).To(Equal(r.ID))
	}, timeout, interval).Should(Succeed())
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(2))
	f.g.Expect(f.sim.Count(apisim.RouteDelete)).To(Equal(0), "a recreated action has no twin to delete")
	f.g.Expect(f.sim.Actions(f.agent)).To(HaveLen(3))
}

func TestPublish_autoPublishesOncePerRollout(t *testing.T) {
	f := newFixture(t)
	f.setEnv(func(s *agentsv1alpha1.EnvironmentSpec) { s.PublishPolicy = agentsv1alpha1.PublishPolicyAuto })
	names := []string{"a", "b", "c", "d", "e"}
	for _, n := range names {
		f.create(f.webhook(n, "node-"+n))
	}
	f.g.Eventually(func(g Gomega) {
		for _, n := range names {
			a := f.get(n)
			g.Expect(f.publishReason(n)).To(Equal(agentsv1alpha1.ReasonAgentPublished))
			g.Expect(a.Status.AgentStatus).To(Equal("published"))
		}
	}, timeout, interval).Should(Succeed())
	agent, _ := f.sim.Agent(f.agent)
	f.g.Expect(agent.Status).To(Equal("published"))
	f.g.Expect(f.sim.Count(apisim.RoutePublish)).To(Equal(1))
	f.g.Expect(f.sim.Count(apisim.RouteGetAgent)).To(Equal(1))
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(5))

	// A delete is a change too: the agent is published again, once.
	f.g.Expect(k8sClient.Delete(f.ctx, f.get("e"))).To(Succeed())
	f.g.Eventually(func() int { return f.sim.Count(apisim.RoutePublish) }, timeout, interval).Should(Equal(2))
	f.consistently(func(g Gomega) { g.Expect(f.sim.Count(apisim.RoutePublish)).To(Equal(2)) }, 2*time.Second)
	agent, _ = f.sim.Agent(f.agent)
	f.g.Expect(agent.Status).To(Equal("published"))
}

func TestPublish_draftAgentLeftInDraftUnderAuto(t *testing.T) {
	f := newFixture(t)
	f.sim.SetAgentStatus(f.agent, "draft")
	f.setEnv(func(s *agentsv1alpha1.EnvironmentSpec) { s.PublishPolicy = agentsv1alpha1.PublishPolicyAuto })
	f.create(f.webhook("a", "node-a"))
	f.create(f.webhook("b", "node-b"))
	f.g.Eventually(func() string { return f.publishReason("b") }, timeout, interval).Should(Equal(agentsv1alpha1.ReasonAgentLeftInDraft))
	f.consistently(func(g Gomega) { g.Expect(f.sim.Count(apisim.RoutePublish)).To(Equal(0)) }, 2*time.Second)
	f.g.Expect(f.sim.Count(apisim.RouteGetAgent)).To(Equal(1))
	f.g.Expect(f.get("a").Status.AgentStatus).To(Equal("draft"))
}

func TestPublish_alwaysPublishesDraftAgent(t *testing.T) {
	f := newFixture(t)
	f.sim.SetAgentStatus(f.agent, "draft")
	f.setEnv(func(s *agentsv1alpha1.EnvironmentSpec) { s.PublishPolicy = agentsv1alpha1.PublishPolicyAlways })
	f.create(f.webhook("a", "node-a"))
	f.create(f.webhook("b", "node-b"))
	f.g.Eventually(func() string { return f.publishReason("a") }, timeout, interval).Should(Equal(agentsv1alpha1.ReasonAgentPublished))
	f.consistently(func(g Gomega) { g.Expect(f.sim.Count(apisim.RoutePublish)).To(Equal(1)) }, time.Second)
	f.g.Expect(f.sim.Count(apisim.RouteGetAgent)).To(Equal(0), "Always needs no read of the agent")
}

func TestPublish_notReadySurfaced(t *testing.T) {
	f := newFixture(t)
	f.sim.SetAgentReady(f.agent, false)
	f.setEnv(func(s *agentsv1alpha1.EnvironmentSpec) { s.PublishPolicy = agentsv1alpha1.PublishPolicyAlways })
	f.create(f.webhook("a", "node-a"))
	f.g.Eventually(func() string { return f.publishReason("a") }, timeout, interval).Should(Equal(agentsv1alpha1.ReasonAgentNotReady))
	f.g.Expect(f.condition("a", agentsv1alpha1.ConditionAgentPublished).Message).To(ContainSubstring("422"))
	f.g.Expect(f.condition("a", agentsv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue), "the action itself is in step")
	f.g.Eventually(func() []string { return f.eventNotes() }, timeout, interval).Should(
		ContainElement(And(HavePrefix(agentsv1alpha1.ReasonAgentNotReady+": "), ContainSubstring("422"))), "a Warning Event says why")
	// Retried only when something changes, or slowly: not in a loop, and
	// the Event is not repeated.
	f.consistently(func(g Gomega) { g.Expect(f.sim.Count(apisim.RoutePublish)).To(Equal(1)) }, 3*time.Second)
	notReady := 0
	for _, r := range f.events("a") {
		if r == agentsv1alpha1.ReasonAgentNotReady {
			notReady++
		}
	}
	f.g.Expect(notReady).To(Equal(1), "one Event for the refusal")

	// Once the agent is ready, the next change publishes it.
	f.sim.SetAgentReady(f.agent, true)
	f.update("a", func(a *agentsv1alpha1.AgentAction) { a.Spec.Description = "retry" })
	f.g.Eventually(func() string { return f.publishReason("a") }, timeout, interval).Should(Equal(agentsv1alpha1.ReasonAgentPublished))
}

func TestPublish_manualNeverPublishes(t *testing.T) {
	f := newFixture(t)
	f.create(f.webhook("a", "node-a"))
	f.g.Eventually(func() string { return f.publishReason("a") }, timeout, interval).Should(Equal(agentsv1alpha1.ReasonManualPublish))
	f.consistently(func(g Gomega) {
		g.Expect(f.sim.Count(apisim.RoutePublish)).To(Equal(0))
		g.Expect(f.sim.Count(apisim.RouteGetAgent)).To(Equal(0))
	}, 2*time.Second)
	f.g.Expect(f.get("a").Status.AgentStatus).To(Equal("draft"))
}

func TestPriority_userChangeBeforeDriftChecks(t *testing.T) {
	f := newFixture(t)
	const agents = 8
	for i := range agents {
		f.sim.AddAgent("test", fmt.Sprintf("%s-%d", f.agent, i), apisim.AgentOptions{Published: true})
	}
	for i := range agents {
		a := f.webhook(fmt.Sprintf("a%d", i), "node")
		a.Spec.AgentID = fmt.Sprintf("%s-%d", f.agent, i)
		f.create(a)
	}
	for i := range agents {
		f.waitReason(fmt.Sprintf("a%d", i), agentsv1alpha1.ReasonSynced)
	}
	// Exhaust the budget with drift checks: 30 requests a minute, every
	// agent due every second.
	f.setEnv(func(s *agentsv1alpha1.EnvironmentSpec) {
		s.RequestsPerMinute = ptrTo(int32(30))
		s.DriftCheckInterval = &metav1.Duration{Duration: time.Second}
	})
	// The drift controller picks the new interval up from the
	// Environment's change; the drift checks book the budget's slots.
	f.g.Eventually(func() int { return f.sim.Count(apisim.RouteList) }, timeout, interval).Should(BeNumerically(">=", 2))

	changedAt := time.Now()
	f.update("a0", func(a *agentsv1alpha1.AgentAction) { a.Spec.Description = "urgent" })
	f.g.Eventually(func() int { return f.sim.Count(apisim.RouteUpsert) }, timeout, interval).Should(Equal(agents + 1))
	listsBefore := 0
	for _, r := range f.sim.Requests() {
		if r.Time.Before(changedAt) {
			continue
		}
		if r.Route == apisim.RouteUpsert {
			break
		}
		listsBefore++
	}
	// The change takes the earliest slot booked by a drift check: at most
	// the list already under way, or due, goes before it.
	f.g.Expect(listsBefore).To(BeNumerically("<=", 1), "the user's change waited behind at most the call already admitted")
}

func TestPublish_owedPublishSurvivesRestart(t *testing.T) {
	f := newFixture(t)
	f.setEnv(func(s *agentsv1alpha1.EnvironmentSpec) { s.PublishPolicy = agentsv1alpha1.PublishPolicyAuto })
	// The publish fails: it stays owed.
	f.sim.SetFaults(apisim.RoutePublish, apisim.Faults{ErrorRate: 1, ErrorCodes: []int{503}})
	f.create(f.webhook("a", "node-a"))
	f.create(f.webhook("b", "node-b"))
	f.g.Eventually(func() int { return f.sim.CountStatus(503) }, timeout, interval).Should(BeNumerically(">=", 1))
	f.g.Eventually(func() string { return f.publishReason("a") }, timeout, interval).Should(Equal(agentsv1alpha1.ReasonPublishPending))
	agent, _ := f.sim.Agent(f.agent)
	f.g.Expect(agent.Status).To(Equal("draft"))
	f.g.Expect(f.pendingPublishes()).To(ConsistOf(f.agent), "the Environment records the owed publish")

	// The operator restarts; the API recovers. The publish is still owed,
	// and made once, without reading the agent again (it is draft now only
	// because of the operator's own changes).
	restartManager(t)
	f.sim.ClearFaults()
	f.g.Eventually(func() string {
		a, _ := f.sim.Agent(f.agent)
		return a.Status
	}, timeout, interval).Should(Equal("published"))
	f.g.Eventually(func() string { return f.publishReason("b") }, timeout, interval).Should(Equal(agentsv1alpha1.ReasonAgentPublished))
	agent, _ = f.sim.Agent(f.agent)
	f.g.Expect(agent.Publishes).To(Equal(1))
	f.g.Expect(f.sim.Count(apisim.RouteGetAgent)).To(Equal(1))
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(2), "a restart pushes nothing again")
	f.g.Eventually(f.pendingPublishes, timeout, interval).Should(BeEmpty(), "the record goes with the publish")
}

// pendingPublishes is the fixture Environment's status.pendingPublishes.
func (f *fixture) pendingPublishes() []string {
	var env agentsv1alpha1.Environment
	f.g.Expect(k8sClient.Get(f.ctx, client.ObjectKeyFromObject(f.env), &env)).To(Succeed())
	return env.Status.PendingPublishes
}

// A push that finds the budget spent does not hold a worker: it books its
// slot, says so in status (no finalizer yet: nothing has left), and goes
// when the slot is due.
func TestWaitingForBudgetWrittenWhileTheSlotIsBooked(t *testing.T) {
	f := newFixture(t)
	f.setEnv(func(s *agentsv1alpha1.EnvironmentSpec) { s.RequestsPerMinute = ptrTo(int32(6)) })
	f.create(f.webhook("first", "node-1"))
	f.waitReason("first", agentsv1alpha1.ReasonSynced)
	// The budget is spent: the next push waits, and says so meanwhile.
	f.create(f.webhook("second", "node-2"))
	f.g.Eventually(func(g Gomega) {
		c := f.condition("second", agentsv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionUnknown))
		g.Expect(c.Reason).To(Equal(agentsv1alpha1.ReasonWaitingForBudget))
		g.Expect(f.condition("second", agentsv1alpha1.ConditionReconciling).Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(1))
	f.g.Expect(f.get("second").Finalizers).To(BeEmpty(), "no request of it has left")
	// At 6 a minute the booked slot is about 10 s away.
	f.waitReason("second", agentsv1alpha1.ReasonSynced)
	f.g.Expect(f.sim.Count(apisim.RouteUpsert)).To(Equal(2))
}
