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
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/talkover/talkover-operator/internal/apisim"
)

// TestChaos interleaves creates, spec updates and deletes of AgentActions
// with API faults (20% 5xx, 5% connection resets, 429 bursts with
// Retry-After, a full outage), SIGKILLs of the manager and a restart of
// the kube-apiserver, then checks that everything converged and reports
// the calls made against the minimum needed.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos test runs the manager binary for a minute or more")
	}
	sz := smallSize
	if os.Getenv("CHAOS_FULL") == "1" {
		sz = fullSize
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("chaos run %q: %d AgentActions over %d agents, %d updates, %d deletes, %s of faults, seed %d (CHAOS_SEED=%d reproduces the plan)",
		sz.name, sz.actions, sz.agents, sz.updates, sz.deletes, sz.period, seed, seed)

	w := newWorld(t, "chaos", sz, seed)
	m := newModel(w.ns, sz, w.agents)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The chaos: the workload and the faults run side by side.
	chaosStart := time.Now()
	w.startSupervisor()
	workloadDone := make(chan error, 1)
	go func() { workloadDone <- w.runWorkload(ctx, m, chaosStart) }()
	w.runFaults(ctx, chaosStart)
	if err := <-workloadDone; err != nil {
		t.Fatalf("the workload failed: %v", err)
	}
	w.sim.ClearFaults()
	w.sup.stop()
	chaosEnd := time.Now()
	w.logf("chaos over after %s: faults cleared; %d creates, %d updates, %d deletes done",
		chaosEnd.Sub(chaosStart).Round(time.Second), m.creates, m.updates, m.deletes)
	if !w.mgr.Running() {
		if err := w.mgr.Start(time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	// Convergence. The report is logged either way.
	g := NewWithT(t)
	problems := w.waitConverged(ctx, m, sz.converge)
	converged := time.Now()
	if len(problems) > 0 {
		w.report(m, chaosEnd.Sub(chaosStart), 0)
		t.Fatalf("the cluster and the simulator did not converge within %s of the end of the faults:\n  %s",
			sz.converge, strings.Join(problems, "\n  "))
	}
	w.logf("converged %s after the faults were cleared", converged.Sub(chaosEnd).Round(100*time.Millisecond))

	// Steady state: no more writes once everything converged.
	writes := func() int { return w.sim.Count(apisim.RouteUpsert) + w.sim.Count(apisim.RouteDelete) }
	before := writes()
	g.Consistently(writes, 2*publishQuiet+time.Second, 250*time.Millisecond).Should(Equal(before),
		"the operator keeps writing after convergence")
	g.Expect(w.problems(ctx, m)).To(BeEmpty())

	w.report(m, chaosEnd.Sub(chaosStart), converged.Sub(chaosEnd))

	// The faults really happened.
	injected := map[string]int{}
	for _, r := range w.sim.Requests() {
		injected[r.Fault]++
	}
	for _, f := range []string{apisim.FaultError, apisim.FaultReset, apisim.FaultBurst429, apisim.FaultOutage} {
		g.Expect(injected[f]).To(BeNumerically(">", 0), "no %q fault was injected", f)
	}
	g.Expect(int(w.sup.kills.Load())).To(Equal(sz.kills), "SIGKILLs of the manager")
	g.Expect(w.apiserverDown).To(BeNumerically(">", 0), "the kube-apiserver was not restarted")
}

// waitConverged polls the problems until there are none or timeout passes,
// and returns the last ones.
func (w *world) waitConverged(ctx context.Context, m *model, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		problems := w.problems(ctx, m)
		if len(problems) == 0 || time.Now().After(deadline) {
			return problems
		}
		time.Sleep(2 * time.Second) // the poll interval: each poll lists every object
	}
}

// runFaults injects the faults of the run at their times, in order: 20%
// 5xx and 5% resets throughout, two 429 bursts, one outage, the manager's
// SIGKILLs at random times and one kube-apiserver restart.
func (w *world) runFaults(ctx context.Context, start time.Time) {
	p := w.sz.period
	type event struct {
		at   time.Duration
		name string
		do   func()
	}
	events := make([]event, 0, 6+w.sz.kills)
	events = append(events, []event{
		{0, "5xx and resets on", func() {
			w.sim.SetFaults("", apisim.Faults{ErrorRate: 0.20, ResetRate: 0.05})
			// Two certain resets: a small run may otherwise draw none.
			w.sim.ResetNext(2)
		}},
		{p * 12 / 100, "429 burst", w.burst429},
		{p * 30 / 100, "outage", func() { w.sim.OutageFor(w.sz.outage) }},
		{p * 60 / 100, "429 burst", w.burst429},
		{p * 72 / 100, "kube-apiserver restart", w.restartAPIServer},
		{p, "end", func() {}},
	}...)
	for range w.sz.kills {
		events = append(events, event{w.randDuration(p/20, p*95/100), "SIGKILL", w.sup.kill})
	}
	slices.SortStableFunc(events, func(a, b event) int { return int(a.at - b.at) })
	for _, e := range events {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(e.at))): // the schedule of the run, not a stand-in for a condition
		}
		if e.name != "end" {
			w.logf("chaos: %s", e.name)
		}
		e.do()
	}
}

// burst429 answers the next API requests 429 with Retry-After, for at
// most burstWindow: a quota window, not a count of requests, so a client
// that waits as told is not held up for long.
func (w *world) burst429() {
	w.sim.Burst429(w.sz.burst, w.sz.retryAfter)
	time.AfterFunc(w.sz.burstWindow, func() { w.sim.Burst429(0, 0) })
}

// restartAPIServer stops the kube-apiserver for two seconds and starts it
// again on the same address; the manager keeps running.
func (w *world) restartAPIServer() {
	begin := time.Now()
	w.apiserverStopped = begin
	if err := w.cp.RestartAPIServer(2 * time.Second); err != nil {
		w.t.Errorf("restarting the kube-apiserver: %v", err)
		return
	}
	w.apiserverDown = time.Since(begin)
	w.logf("chaos: kube-apiserver back at %s after %s", w.cp.APIServerURL(), w.apiserverDown.Round(100*time.Millisecond))
}
