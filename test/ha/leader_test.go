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

package ha

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
	"github.com/talkover/talkover-operator/test/utils"
)

// The manager logs one of these per push.
const (
	createdLog = `"msg":"Created remote action"`
	updatedLog = `"msg":"Updated remote action"`
)

// testLeaderElection runs two replicas: only the leader calls the API;
// when it is killed the other takes over within the lease duration and
// pushes only what changed.
func (s *suite) testLeaderElection(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const ns = "ha-leader"
	w := s.newWorld(t, ns, apisim.New(), "")

	replicas := []*utils.ManagerProcess{s.manager("replica-a", ns), s.manager("replica-b", ns)}
	for _, m := range replicas {
		g.Expect(m.Start(time.Minute)).To(Succeed())
		stopOnCleanup(t, m)
	}

	// Exactly one replica leads.
	var leader, follower *utils.ManagerProcess
	g.Eventually(func(g Gomega) {
		a, b := replicas[0].LogContains(acquiredLease), replicas[1].LogContains(acquiredLease)
		g.Expect(a).NotTo(Equal(b), "exactly one leader: replica-a %t, replica-b %t", a, b)
		leader, follower = replicas[0], replicas[1]
		if b {
			leader, follower = replicas[1], replicas[0]
		}
	}, waitTimeout, poll).Should(Succeed())
	holder := s.leaseHolder(ns)
	g.Expect(holder).NotTo(BeEmpty())
	t.Logf("%s (pid %d) leads; lease %s/%s held by %s", leader.Name, leader.Pid(), ns, leaseID, holder)

	// Ten AgentActions: ten POSTs, all from the leader, and no other call
	// (publishPolicy Manual, drift checks off).
	for i := range 10 {
		g.Expect(s.cp.Client.Create(ctx, w.action(i))).To(Succeed())
	}
	g.Eventually(func(g Gomega) { s.expectConverged(g, w, 10) }, waitTimeout, poll).Should(Succeed())
	g.Consistently(func() int { return len(w.sim.Requests()) }, 3*time.Second, poll).Should(Equal(10),
		"one operator makes exactly 10 calls")
	g.Expect(w.sim.Count(apisim.RouteUpsert)).To(Equal(10))
	g.Expect(leader.CountInLogs(createdLog)).To(Equal(10), "the leader pushed all ten")
	g.Expect(follower.CountInLogs(createdLog)+follower.CountInLogs(updatedLog)).To(BeZero(), "the follower pushed nothing")
	g.Expect(follower.LogContains(acquiredLease)).To(BeFalse())

	// The leader dies; five specs change at once.
	g.Expect(leader.Kill()).To(Succeed())
	killed := time.Now()
	t.Logf("SIGKILL sent to the leader %s", leader.Name)
	for i := range 5 {
		g.Eventually(func() error {
			var a agentsv1alpha1.AgentAction
			if err := s.cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: w.action(i).Name}, &a); err != nil {
				return err
			}
			a.Spec.Description = "Look up order " + a.Spec.NodeID + ", then read back its status."
			return s.cp.Client.Update(ctx, &a)
		}, waitTimeout, poll).Should(Succeed())
	}

	// The follower takes over within the lease duration (plus slack).
	g.Eventually(func() bool { return follower.LogContains(acquiredLease) }, leaseDuration+takeoverSlack, 50*time.Millisecond).
		Should(BeTrue(), "%s did not take over within %s of the leader's death", follower.Name, leaseDuration+takeoverSlack)
	takeover := time.Since(killed)
	newHolder := s.leaseHolder(ns)
	g.Expect(newHolder).NotTo(Equal(holder), "the lease changed hands")
	t.Logf("%s took over %s after the SIGKILL (lease duration %s); lease now held by %s",
		follower.Name, takeover.Round(100*time.Millisecond), leaseDuration, newHolder)

	// It pushes exactly the five changes: fifteen POSTs in all.
	g.Eventually(func(g Gomega) { s.expectConverged(g, w, 10) }, waitTimeout, poll).Should(Succeed())
	g.Consistently(func() int { return len(w.sim.Requests()) }, 3*time.Second, poll).Should(Equal(15),
		"the new leader makes exactly 5 more calls")
	g.Expect(w.sim.Count(apisim.RouteUpsert)).To(Equal(15))
	g.Expect(follower.CountInLogs(updatedLog)).To(Equal(5), "the new leader pushed the five changes")
	g.Expect(follower.CountInLogs(createdLog)).To(BeZero(), "the new leader created nothing")
	g.Expect(w.sim.Actions(w.agent)).To(HaveLen(10))
	t.Logf("calls: %d POSTs in all (10 creates by %s, 5 updates by %s), no other call", w.sim.Count(apisim.RouteUpsert), leader.Name, follower.Name)
}
