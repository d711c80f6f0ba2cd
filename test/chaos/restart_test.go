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
// is killed (recorded in the Environment's status.pendingPublishes) must
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
	published := agentPublished(w, agent)
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

// TestPublishOwedAfterDeleteAcrossRestart is the same loss as
// TestPublishOwedAcrossRestart when the change that put the agent in draft
// was a delete, and the operator dies before publishing. The next run must
// still publish the agent, which was published before (publishPolicy Auto),
// also when the deleted AgentAction was the agent's last.
func TestPublishOwedAfterDeleteAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the manager binary")
	}
	for _, tc := range []struct {
		name    string
		actions int
	}{{"one of two", 2}, {"the agent's last", 1}} {
		t.Run(tc.name, func(t *testing.T) { publishOwedAfterDeleteAcrossRestart(t, tc.actions) })
	}
}

func publishOwedAfterDeleteAcrossRestart(t *testing.T, actions int) {
	g := NewWithT(t)
	ctx := context.Background()
	w := newWorld(t, fmt.Sprintf("restart-delete-publish-%d", actions), size{name: "delete-publish", agents: 1}, 1)
	m := newModel(w.ns, size{actions: actions}, w.agents)
	agent := m.items[0].agent
	published := agentPublished(w, agent)

	// The AgentActions of one agent, pushed and published.
	createSyncedAndPublished(ctx, g, w, m, published)
	publishes := func() int { st, _ := w.sim.Agent(agent); return st.Publishes }
	before := publishes()

	// One is deleted: its remote action goes and the agent is in draft,
	// owing a publish once the quiet period ends. The API holds that
	// publish, and the operator dies while it waits for the answer.
	release := w.holdPublishes()
	defer release()
	deleted := m.items[0]
	g.Expect(w.cp.Client.Delete(ctx, deleted.object())).To(Succeed())
	g.Eventually(func() bool {
		_, ok := w.sim.ActionByNodeID(agent, deleted.node)
		return ok
	}, time.Minute, 20*time.Millisecond).Should(BeFalse(), "the remote action of %s was not deleted", deleted.name)
	g.Eventually(w.publishesHeld.Load, publishQuiet+30*time.Second, 20*time.Millisecond).Should(BeNumerically(">=", 1),
		"the operator did not try to publish the agent after the quiet period")
	g.Expect(w.mgr.Kill()).To(Succeed())
	release()
	st, _ := w.sim.Agent(agent)
	g.Expect(st.Status).To(Equal(apisim.AgentDraft), "the held publish was not made")
	g.Expect(publishes()).To(Equal(before))
	w.logf("the manager was killed after the DELETE of %s's remote action, with its publish held", deleted.name)

	// The next run publishes the agent.
	g.Expect(w.mgr.Start(time.Minute)).To(Succeed())
	g.Eventually(published, publishQuiet+30*time.Second, 250*time.Millisecond).Should(Succeed(),
		"after a restart the operator must still publish the agent it put in draft by deleting an action")
}

// TestOwedPublishRestoredBeforeDelete covers the other way a delete loses
// an owed publish: after a restart, the first act of the new run on an
// agent is a delete, while another AgentAction records the publish owed by
// the previous run. The delete must not read the agent (in draft because of
// the previous run's own change) as left in draft by a user. The other
// AgentAction is paused so that its own reconcile cannot restore the
// publish first; a paused AgentAction makes no call, but the agent's
// publish is owed by the delete of an unpaused one.
func TestOwedPublishRestoredBeforeDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the manager binary")
	}
	g := NewWithT(t)
	ctx := context.Background()
	w := newWorld(t, "restart-owed-delete", size{name: "owed-delete", agents: 1}, 1)
	m := newModel(w.ns, size{actions: 2}, w.agents)
	kept, deleted := m.items[0], m.items[1]
	agent := kept.agent
	keptKey := client.ObjectKey{Namespace: kept.ns, Name: kept.name}
	published := agentPublished(w, agent)
	createSyncedAndPublished(ctx, g, w, m, published)

	// A change whose publish fails: the publish is owed, and recorded.
	w.sim.SetFaults(apisim.RoutePublish, apisim.Faults{ErrorRate: 1})
	g.Eventually(func() error {
		var a agentsv1alpha1.AgentAction
		if err := w.cp.Client.Get(ctx, keptKey, &a); err != nil {
			return err
		}
		a.Spec.Description += " Changed."
		return w.cp.Client.Update(ctx, &a)
	}, time.Minute, 250*time.Millisecond).Should(Succeed())
	g.Eventually(func(g Gomega) {
		var a agentsv1alpha1.AgentAction
		g.Expect(w.cp.Client.Get(ctx, keptKey, &a)).To(Succeed())
		g.Expect(isSynced(&a)).To(BeTrue())
		c := meta(&a, agentsv1alpha1.ConditionAgentPublished)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(agentsv1alpha1.ReasonPublishPending))
	}, time.Minute, 250*time.Millisecond).Should(Succeed())

	// The operator dies; meanwhile the AgentAction that records the owed
	// publish is paused, the other one is deleted, and the API recovers.
	g.Expect(w.mgr.Kill()).To(Succeed())
	g.Eventually(func() error {
		var a agentsv1alpha1.AgentAction
		if err := w.cp.Client.Get(ctx, keptKey, &a); err != nil {
			return err
		}
		if a.Annotations == nil {
			a.Annotations = map[string]string{}
		}
		a.Annotations[agentsv1alpha1.PausedAnnotation] = "true"
		return w.cp.Client.Update(ctx, &a)
	}, time.Minute, 250*time.Millisecond).Should(Succeed())
	g.Expect(w.cp.Client.Delete(ctx, deleted.object())).To(Succeed())
	w.sim.ClearFaults()
	g.Expect(w.mgr.Start(time.Minute)).To(Succeed())

	// The delete goes through, and the owed publish is made.
	g.Eventually(func() bool {
		_, ok := w.sim.ActionByNodeID(agent, deleted.node)
		return ok
	}, time.Minute, 250*time.Millisecond).Should(BeFalse(), "the remote action of %s was not deleted", deleted.name)
	g.Eventually(published, 30*time.Second, 250*time.Millisecond).Should(Succeed(),
		"the publish owed by the previous run must be made after the restart, even when the first act is a delete")
}

// agentPublished checks that an agent is published in the simulator.
func agentPublished(w *world, agent string) func(Gomega) {
	return func(g Gomega) {
		st, _ := w.sim.Agent(agent)
		g.Expect(st.Status).To(Equal(apisim.AgentPublished), "the agent's status")
	}
}

// createSyncedAndPublished creates every item of m and waits until all are
// Ready and their agent is published.
func createSyncedAndPublished(ctx context.Context, g *WithT, w *world, m *model, published func(Gomega)) {
	for _, it := range m.items {
		g.Expect(w.create(ctx, m, it)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		for _, it := range m.items {
			var a agentsv1alpha1.AgentAction
			g.Expect(w.cp.Client.Get(ctx, client.ObjectKey{Namespace: it.ns, Name: it.name}, &a)).To(Succeed())
			g.Expect(isSynced(&a)).To(BeTrue(), "%s is not Ready", a.Name)
		}
		published(g)
	}, time.Minute, 250*time.Millisecond).Should(Succeed())
}
