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
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/talkover/talkover-operator/internal/apisim"
)

// postLatency is the simulator's latency on POST /agents/{id}/actions.
const postLatency = 3 * time.Second

// inflight serves the simulator and counts the upsert POSTs it is
// answering.
type inflight struct {
	sim     *apisim.Server
	now     atomic.Int32
	started atomic.Int32
}

func (f *inflight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/actions") {
		f.started.Add(1)
		f.now.Add(1)
		defer f.now.Add(-1)
	}
	f.sim.Handler().ServeHTTP(w, r)
}

// testGracefulShutdown sends SIGTERM while POSTs are in flight: the
// manager must exit within the grace period, no status may claim a push
// the API does not hold, and a new manager must converge.
func (s *suite) testGracefulShutdown(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	const ns = "ha-graceful"
	sim := apisim.New()
	counter := &inflight{sim: sim}
	ts := httptest.NewServer(counter)
	t.Cleanup(ts.Close)
	w := s.newWorld(t, ns, sim, ts.URL+"/api/v1")
	sim.SetFaults(apisim.RouteUpsert, apisim.Faults{Latency: postLatency})

	m := s.manager("graceful", ns)
	g.Expect(m.Start(time.Minute)).To(Succeed())
	stopOnCleanup(t, m)
	for i := range 5 {
		g.Expect(s.cp.Client.Create(ctx, w.action(i))).To(Succeed())
	}
	g.Eventually(counter.started.Load, waitTimeout, 20*time.Millisecond).Should(BeNumerically(">=", 1), "no POST started")
	atTerm := counter.now.Load()
	took, err := m.Terminate(gracePeriod)
	g.Expect(err).NotTo(HaveOccurred(), "the manager must exit cleanly within its %s grace period", gracePeriod)
	t.Logf("SIGTERM with %d POSTs in flight: the manager exited in %s", atTerm, took.Round(10*time.Millisecond))
	g.Expect(took).To(BeNumerically("<", gracePeriod))

	// No status claims a push the API does not hold, now or once the
	// abandoned requests have been processed.
	checkClaims := func() {
		for _, a := range s.list(g, w) {
			if a.Status.ID == "" && a.Status.AppliedHash == "" {
				continue
			}
			g.Expect(a.Status.ID).NotTo(BeEmpty(), "%s has an appliedHash but no status.id", a.Name)
			remote, ok := w.sim.ActionByNodeID(w.agent, a.Spec.NodeID)
			g.Expect(ok).To(BeTrue(), "%s claims remote action %s, which the API does not hold", a.Name, a.Status.ID)
			g.Expect(remote.ID).To(Equal(a.Status.ID), "%s: status.id", a.Name)
		}
	}
	checkClaims()
	g.Eventually(counter.now.Load, postLatency+5*time.Second, poll).Should(BeZero())
	checkClaims()
	claimed := 0
	for _, a := range s.list(g, w) {
		if a.Status.ID != "" {
			claimed++
		}
	}
	t.Logf("after the shutdown: %d of 5 AgentActions record a remote action; the API holds %d actions after %d POSTs",
		claimed, len(w.sim.Actions(w.agent)), w.sim.Count(apisim.RouteUpsert))

	// A new manager converges, without twins.
	g.Expect(m.Start(time.Minute)).To(Succeed())
	g.Eventually(func(g Gomega) { s.expectConverged(g, w, 5) }, waitTimeout, poll).Should(Succeed())
	g.Expect(w.sim.Actions(w.agent)).To(HaveLen(5))
	t.Logf("converged after the restart: %d POSTs in all for 5 AgentActions", w.sim.Count(apisim.RouteUpsert))
}
