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
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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

	// Scenario 6: tenant A's AgentActions and agents, tenant B's changes
	// (one AgentAction each) and agents, the time between B's changes,
	// and the budget of both (Environment and simulator, per token).
	s6AActions, s6AAgents, s6BChanges, s6BAgents, s6RPM int
	s6BEvery                                            time.Duration
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
			// A's bound is 64 calls / 100 per minute = 38.4 s, and B's 15
			// changes take 28 s, so they all land during A's backlog.
			s6AActions: 60, s6AAgents: 2, s6BChanges: 15, s6BAgents: 3, s6RPM: 100, s6BEvery: 2 * time.Second,
		}
	}
	return sizes{
		s0Actions: 200, s0Agents: 10, restWindow: 60 * time.Second,
		s1Actions: 600, s1Agents: 20, s1RPM: 600,
		s2Actions: 5000, s2Agents: 50, s2Latency: 20 * time.Millisecond,
		s3Interval: 10 * time.Second, s3Window: 60 * time.Second,
		s4Window:  30 * time.Second,
		s5Actions: 500, s5Agents: 10, s5Edits: 50, s5Deletes: 50, s5Interval: 10 * time.Second,
		s6AActions: 600, s6AAgents: 10, s6BChanges: 30, s6BAgents: 3, s6RPM: 100, s6BEvery: 2 * time.Second,
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

	source := gitState(ctx, cfg.root)
	b.logf("Load average at the start: %s; source: %s", loadAvg(), source)
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

	if err := b.runScenarios(ctx); err != nil {
		return 0, err
	}
	if ctx.Err() != nil {
		b.logf("Interrupted: %v", ctx.Err())
	}
	return b.printResults(runSys, source), ctx.Err()
}

// titles returns the title of each scenario.
func (b *bench) titles() map[int]string {
	sz := b.sz
	return map[int]string{
		0: fmt.Sprintf("peer-sized burst: %d AgentActions over %d agents, no rate limit, no added latency", sz.s0Actions, sz.s0Agents),
		1: fmt.Sprintf("rollout under the budget: %d AgentActions over %d agents, simulator limit %d/min enforced with 429",
			sz.s1Actions, sz.s1Agents, sz.s1RPM),
		2: fmt.Sprintf("unthrottled scale: %d AgentActions over %d agents, simulator latency %s, no rate limit",
			sz.s2Actions, sz.s2Agents, sz.s2Latency),
		3: fmt.Sprintf("steady state: the objects of scenario 2 with a drift interval of %s, watched for %s", sz.s3Interval, sz.s3Window),
		4: fmt.Sprintf("restart: SIGTERM and restart the manager after scenario 2, watched for %s", sz.s4Window),
		5: fmt.Sprintf("drift: %d of %d actions edited and %d deleted in the simulator, drift interval %s",
			sz.s5Edits, sz.s5Actions, sz.s5Deletes, sz.s5Interval),
		6: fmt.Sprintf("two tenants: A rolls out %d AgentActions over %d agents at %d/min while B makes %d changes over %d agents, one every %s (budget %d/min)",
			sz.s6AActions, sz.s6AAgents, sz.s6RPM, sz.s6BChanges, sz.s6BAgents, sz.s6BEvery, sz.s6RPM),
	}
}

// runScenarios runs the selected scenarios in order and prints each table
// as it completes. A failed scenario is recorded in its table; the error is
// for a manager that cannot be started again.
func (b *bench) runScenarios(ctx context.Context) error {
	scenarios := map[int]func(context.Context, *table) error{
		0: b.scenario0, 1: b.scenario1, 2: b.scenario2, 3: b.scenario3, 4: b.scenario4, 5: b.scenario5, 6: b.scenario6,
	}
	titles := b.titles()
	for _, id := range b.cfg.scenarios {
		if interrupted(ctx) {
			break // report what ran
		}
		t := newTable(id, titles[id])
		if (id == 3 || id == 4) && b.s2 == nil {
			t.err = errors.New("skipped: scenario 2 did not complete")
		} else {
			b.runScenario(ctx, t, scenarios[id])
		}
		b.tables = append(b.tables, t)
		t.print(b.out)
		if b.mgr != nil && b.mgr.alive() != nil {
			b.logf("The manager is gone; restarting it for the next scenarios")
			if err := b.startManager(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// interrupted reports whether the run was interrupted or timed out.
func interrupted(ctx context.Context) bool {
	return ctx.Err() != nil
}

// runScenario runs one scenario into its table.
func (b *bench) runScenario(ctx context.Context, t *table, scenario func(context.Context, *table) error) {
	b.logf("Scenario %d: %s", t.id, t.title)
	start := time.Now()
	t.err = scenario(ctx, t)
	if t.err == nil {
		t.err = b.mgr.alive()
	}
	b.logf("Scenario %d done in %s", t.id, time.Since(start).Round(100*time.Millisecond))
	if t.err != nil && b.mgr != nil {
		t.note("manager log: %s", b.mgr.logPath)
	}
}

// printResults prints every table again, the summary and the machine, and
// returns the number of targets missed.
func (b *bench) printResults(runSys sysCPU, source string) int {
	out := b.out
	say(out, "\n==================== results ====================\n")
	for _, t := range b.tables {
		t.print(out)
	}
	missed := printSummary(out, b.tables)
	printWritesPerAction(out, b.tables)
	if b.mgr != nil {
		say(out, "\nManager logs in %s (%d error lines in the last run's log).\n", b.cfg.logDir, b.mgr.errorLines())
	}
	say(out, "\nMachine\n")
	for _, line := range machine() {
		say(out, "  %s\n", line)
	}
	say(out, "  during the run: machine CPU %.0f%% busy; load average at the end %s\n",
		b.sysCPU().sub(runSys).busyPercent(), loadAvg())
	say(out, "  command:       go run ./test/bench %s\n", strings.Join(os.Args[1:], " "))
	say(out, "  source:        %s (at the start of the run)\n", source)
	return missed
}

// gitState describes the checked-out commit and the tracked files with
// local changes (the manager binary is built from the tree as it was; the
// benchmark's own files are not listed).
func gitState(ctx context.Context, root string) string {
	head, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return unknown + " (not a git checkout)"
	}
	state := "commit " + strings.TrimSpace(string(head))
	st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	if err != nil {
		return state
	}
	var changed []string
	for _, line := range strings.Split(string(st), "\n") {
		if len(line) < 4 {
			continue
		}
		f := strings.TrimSpace(line[3:])
		if !strings.HasPrefix(f, "test/bench/") && !strings.HasPrefix(f, "docs/") {
			changed = append(changed, f)
		}
	}
	if len(changed) > 0 {
		state += " with local changes to " + strings.Join(changed, ", ")
	}
	return state
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return unknown
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return unknown
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
