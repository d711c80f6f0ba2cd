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

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// sizes are the sizes and windows of the scenarios.
type sizes struct {
	s0Actions, s0Agents int
	// restWindow is how long scenario 0 watches after convergence.
	restWindow time.Duration

	s1Actions, s1Agents, s1RPM int

	s2Actions, s2Agents int
	s2Latency           time.Duration

	s3Interval, s3Window time.Duration
	s4Window             time.Duration

	s5Actions, s5Agents, s5Edits, s5Deletes int
	s5Interval                              time.Duration
}

// sizesFor returns the sizes of issue 5, or a tenth of them with -quick.
func sizesFor(quick bool) sizes {
	if quick {
		return sizes{
			s0Actions: 20, s0Agents: 2, restWindow: 15 * time.Second,
			s1Actions: 60, s1Agents: 2, s1RPM: 600,
			s2Actions: 500, s2Agents: 5, s2Latency: 20 * time.Millisecond,
			s3Interval: 10 * time.Second, s3Window: 20 * time.Second,
			s4Window:  10 * time.Second,
			s5Actions: 50, s5Agents: 2, s5Edits: 5, s5Deletes: 5, s5Interval: 10 * time.Second,
		}
	}
	return sizes{
		s0Actions: 200, s0Agents: 10, restWindow: 60 * time.Second,
		s1Actions: 600, s1Agents: 20, s1RPM: 600,
		s2Actions: 5000, s2Agents: 50, s2Latency: 20 * time.Millisecond,
		s3Interval: 10 * time.Second, s3Window: 60 * time.Second,
		s4Window:  30 * time.Second,
		s5Actions: 500, s5Agents: 10, s5Edits: 50, s5Deletes: 50, s5Interval: 10 * time.Second,
	}
}

// run runs the selected scenarios and prints their tables, the summary and
// the machine. It returns the number of targets missed; the error is for a
// run that could not start.
func run(ctx context.Context, cfg config, out io.Writer) (int, error) {
	if cfg.logDir == "" {
		dir, err := os.MkdirTemp("", "talkover-bench-")
		if err != nil {
			return 0, err
		}
		cfg.logDir = dir
	} else if err := os.MkdirAll(cfg.logDir, 0o755); err != nil {
		return 0, err
	}
	b := newBench(cfg, out)
	defer b.close()

	mode := "full"
	if cfg.quick {
		mode = "quick (about a tenth of the sizes; the targets are meant for the full run)"
	}
	b.logf("talkover-operator benchmark, %s, scenarios %s, manager workers %d, %d creating goroutines; logs in %s",
		mode, joinInts(cfg.scenarios), cfg.workers, cfg.createWorkers, cfg.logDir)

	b.logf("Load average at the start: %s", loadAvg())
	runSys := b.sysCPU()
	if err := b.startControlPlane(ctx); err != nil {
		return 0, err
	}
	// The baseline runs before the manager exists, so no controller touches
	// its objects.
	if slices.Contains(cfg.scenarios, 2) {
		if err := b.runBaselines(ctx); err != nil {
			b.logf("The baseline failed: %v", err)
			if ctx.Err() != nil {
				return 0, err
			}
		}
	}
	if err := b.startManager(ctx); err != nil {
		return 0, err
	}

	scenarios := map[int]func(context.Context, *table) error{
		0: b.scenario0, 1: b.scenario1, 2: b.scenario2, 3: b.scenario3, 4: b.scenario4, 5: b.scenario5,
	}
	titles := map[int]string{
		0: fmt.Sprintf("peer-sized burst: %d AgentActions over %d agents, no rate limit, no added latency", b.sz.s0Actions, b.sz.s0Agents),
		1: fmt.Sprintf("rollout under the budget: %d AgentActions over %d agents, simulator limit %d/min enforced with 429",
			b.sz.s1Actions, b.sz.s1Agents, b.sz.s1RPM),
		2: fmt.Sprintf("unthrottled scale: %d AgentActions over %d agents, simulator latency %s, no rate limit",
			b.sz.s2Actions, b.sz.s2Agents, b.sz.s2Latency),
		3: fmt.Sprintf("steady state: the objects of scenario 2 with a drift interval of %s, watched for %s", b.sz.s3Interval, b.sz.s3Window),
		4: fmt.Sprintf("restart: SIGTERM and restart the manager after scenario 2, watched for %s", b.sz.s4Window),
		5: fmt.Sprintf("drift: %d of %d actions edited and %d deleted in the simulator, drift interval %s",
			b.sz.s5Edits, b.sz.s5Actions, b.sz.s5Deletes, b.sz.s5Interval),
	}
	for _, id := range cfg.scenarios {
		if ctx.Err() != nil {
			break
		}
		t := newTable(id, titles[id])
		if (id == 3 || id == 4) && b.s2 == nil {
			t.err = fmt.Errorf("skipped: scenario 2 did not complete")
		} else {
			b.logf("Scenario %d: %s", id, t.title)
			start := time.Now()
			t.err = scenarios[id](ctx, t)
			if t.err == nil {
				if err := b.mgr.alive(); err != nil {
					t.err = err
				}
			}
			b.logf("Scenario %d done in %s", id, time.Since(start).Round(100*time.Millisecond))
			if t.err != nil && b.mgr != nil {
				t.note("manager log: %s", b.mgr.logPath)
			}
		}
		b.tables = append(b.tables, t)
		t.print(out)
		if b.mgr != nil && b.mgr.alive() != nil {
			b.logf("The manager is gone; restarting it for the next scenarios")
			if err := b.startManager(ctx); err != nil {
				return 0, err
			}
		}
	}
	if ctx.Err() != nil {
		b.logf("Interrupted: %v", ctx.Err())
	}

	fmt.Fprintln(out, "\n==================== results ====================")
	for _, t := range b.tables {
		t.print(out)
	}
	missed := printSummary(out, b.tables)
	if b.mgr != nil {
		fmt.Fprintf(out, "\nManager logs in %s (%d error lines in the last run's log).\n", cfg.logDir, b.mgr.errorLines())
	}
	fmt.Fprintln(out, "\nMachine")
	for _, line := range machine() {
		fmt.Fprintln(out, "  "+line)
	}
	fmt.Fprintf(out, "  during the run: machine CPU %.0f%% busy; load average at the end %s\n",
		b.sysCPU().sub(runSys).busyPercent(), loadAvg())
	fmt.Fprintf(out, "  command:       go run ./test/bench %s\n", strings.Join(os.Args[1:], " "))
	return missed, ctx.Err()
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}
