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

package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
)

// TestPublishOwedAcrossRestart is the smallest form of a failure the chaos
// run found: under publishPolicy Auto, a publish the operator owes when it
// is killed (recorded as AgentPublished=PublishPending in status) must
// still be made by the next run, even when that run's first act on the
// agent is another push. The next run reads the agent in draft before that
// push, but the draft is the operator's own unpublished change, not a
// user's edit.
func TestPublishOwedAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the manager binary")
	}
	g := NewWithT(t)
	ctx := context.Background()
	w := newWorld(t, "restart-publish", size{name: "restart", agents: 1}, 1)
	m := newModel(w.ns, size{actions: 1}, w.agents)
	it := m.items[0]
	agent := it.agent
	key := client.ObjectKey{Namespace: it.ns, Name: it.name}
	get := func(g Gomega) *agentsv1alpha1.AgentAction {
		var a agentsv1alpha1.AgentAction
		g.Expect(w.cp.Client.Get(ctx, key, &a)).To(Succeed())
		return &a
	}
	published := func(g Gomega) {
		st, _ := w.sim.Agent(agent)
		g.Expect(st.Status).To(Equal(apisim.AgentPublished), "the agent's status")
	}
	synced := func(g Gomega) {
		a := get(g)
		g.Expect(isSynced(a)).To(BeTrue(), "%s is not Ready for generation %d: %v", a.Name, a.Generation, a.Status.Conditions)
		remote, ok := w.sim.ActionByNodeID(agent, it.node)
		g.Expect(ok).To(BeTrue())
		g.Expect(remoteDiff(it.spec(), remote)).To(BeEmpty())
	}

	// A first rollout: pushed and published.
	g.Expect(w.create(ctx, m, it)).To(Succeed())
	g.Eventually(func(g Gomega) { synced(g); published(g) }, time.Minute, 250*time.Millisecond).Should(Succeed())

	// A second change whose publish fails: the publish is owed, and status
	// says so.
	w.sim.SetFaults(apisim.RoutePublish, apisim.Faults{ErrorRate: 1})
	g.Expect(w.updateRandom(ctx, m)).To(Succeed())
	g.Eventually(func(g Gomega) {
		synced(g)
		c := meta(get(g), agentsv1alpha1.ConditionAgentPublished)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(agentsv1alpha1.ReasonPublishPending))
	}, time.Minute, 250*time.Millisecond).Should(Succeed())
	st, _ := w.sim.Agent(agent)
	g.Expect(st.Status).To(Equal(apisim.AgentDraft))

	// The operator dies owing the publish; meanwhile the spec changes again
	// and the API recovers.
	g.Expect(w.mgr.Kill()).To(Succeed())
	g.Expect(w.updateRandom(ctx, m)).To(Succeed())
	w.sim.ClearFaults()
	g.Expect(w.mgr.Start(time.Minute)).To(Succeed())

	// The next run pushes the change and publishes the agent.
	g.Eventually(func(g Gomega) { synced(g); published(g) }, 30*time.Second, 250*time.Millisecond).Should(Succeed(),
		func() string {
			var a agentsv1alpha1.AgentAction
			_ = w.cp.Client.Get(ctx, key, &a)
			c := meta(&a, agentsv1alpha1.ConditionAgentPublished)
			if c == nil {
				return "after a restart the operator must still make the publish it owed (no AgentPublished condition)"
			}
			return fmt.Sprintf("after a restart the operator must still make the publish it owed (AgentPublished=%s %s: %s)",
				c.Status, c.Reason, c.Message)
		})
}

// TestDeleteAfterInterruptedPush is a crash between a POST and the status
// write that records its result, followed by a delete: the API holds the
// action, but the AgentAction does not know its ID. With deletionPolicy
// Delete the remote action must still go (under the upsert-by-node_id
// reading, the operator can learn the ID again by re-sending the spec).
func TestDeleteAfterInterruptedPush(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the manager binary")
	}
	g := NewWithT(t)
	ctx := context.Background()
	w := newWorld(t, "restart-delete", size{name: "interrupted", agents: 1}, 1)
	m := newModel(w.ns, size{actions: 1}, w.agents)
	it := m.items[0]
	g.Expect(it.policy).To(Equal(agentsv1alpha1.DeletionPolicyDelete))

	// The POST is slow; the manager dies while it is in flight. The API
	// still processes it.
	w.sim.SetFaults(apisim.RouteUpsert, apisim.Faults{Latency: 3 * time.Second})
	g.Expect(w.create(ctx, m, it)).To(Succeed())
	g.Eventually(w.upsertsStarted.Load, time.Minute, 10*time.Millisecond).Should(BeNumerically(">=", 1))
	g.Expect(w.mgr.Kill()).To(Succeed())
	g.Eventually(w.upsertsInFlight.Load, 10*time.Second, 50*time.Millisecond).Should(BeZero())
	remote, ok := w.sim.ActionByNodeID(it.agent, it.node)
	g.Expect(ok).To(BeTrue(), "the API processed the interrupted POST")
	var a agentsv1alpha1.AgentAction
	g.Expect(w.cp.Client.Get(ctx, client.ObjectKey{Namespace: it.ns, Name: it.name}, &a)).To(Succeed())
	g.Expect(a.Status.ID).To(BeEmpty(), "the status write after the POST never happened")
	g.Expect(a.Finalizers).To(ContainElement(agentsv1alpha1.AgentActionFinalizer))
	w.logf("the API holds action %s for %s, the AgentAction records no ID", remote.ID, it.name)

	// The user deletes the AgentAction; the operator comes back.
	g.Expect(w.deleteRandom(ctx, m)).To(Succeed())
	w.sim.ClearFaults()
	g.Expect(w.mgr.Start(time.Minute)).To(Succeed())
	g.Eventually(func(g Gomega) {
		err := w.cp.Client.Get(ctx, client.ObjectKey{Namespace: it.ns, Name: it.name}, &a)
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the AgentAction is still there (finalizer stuck?)")
	}, time.Minute, 250*time.Millisecond).Should(Succeed())
	g.Eventually(func() bool {
		_, ok := w.sim.ActionByNodeID(it.agent, it.node)
		return ok
	}, 10*time.Second, 250*time.Millisecond).Should(BeFalse(),
		"the AgentAction (deletionPolicy Delete) is gone, but its remote action %s was left behind on the agent", remote.ID)
}
