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
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// table is the result of one scenario.
type table struct {
	id    int
	title string
	notes []string
	rows  []row
	err   error
	// perAction is the manager's kube-apiserver writes in the scenario's
	// window and the AgentActions they are divided by, for the summary's
	// writes-per-AgentAction table (nil: not reported).
	perAction *perActionWrites
}

// perActionWrites is one scenario's row of the writes-per-AgentAction
// table.
type perActionWrites struct {
	// n is the number of AgentActions the writes are divided by, and what
	// says which ("created", "repaired", ...).
	n      int
	what   string
	writes kubeCounts
}

// row is one line of a table; result is "", "PASS" or "MISS".
type row struct {
	metric, value, target, result string
}

func newTable(id int, title string) *table {
	return &table{id: id, title: title}
}

// info adds a row without a target.
func (t *table) info(metric, format string, args ...any) {
	t.rows = append(t.rows, row{metric: metric, value: fmt.Sprintf(format, args...)})
}

// check adds a row with a target.
func (t *table) check(metric, value, target string, ok bool) {
	result := "MISS"
	if ok {
		result = "PASS"
	}
	t.rows = append(t.rows, row{metric: metric, value: value, target: target, result: result})
}

func (t *table) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

// calls adds the rows of API calls by endpoint (the total and the 429s are
// added by each scenario, as information or against a target).
func (t *table) calls(c apiCounts) { t.callsWith("  ", c) }

// callsWith adds the rows of API calls by endpoint, each metric starting
// with prefix.
func (t *table) callsWith(prefix string, c apiCounts) {
	t.info(prefix+"upsert (POST actions)", "%d", c.upsert)
	t.info(prefix+"list (GET actions)", "%d", c.list)
	t.info(prefix+"delete (DELETE action)", "%d", c.del)
	t.info(prefix+"get agent (GET agent)", "%d", c.getAgent)
	t.info(prefix+"publish (POST publish)", "%d", c.publish)
	if c.unpublish != 0 || c.other != 0 {
		t.info(prefix+"unpublish / unmatched", "%d / %d", c.unpublish, c.other)
	}
}

// writes adds the rows of kube-apiserver writes by the manager.
func (t *table) writes(prefix string, k kubeCounts) {
	t.info(prefix+"kube-apiserver writes, AgentAction status", "%d", k.get(keyActionStatus))
	t.info(prefix+"kube-apiserver writes, AgentAction other", "%d", k.get(keyActionMain))
	t.info(prefix+"kube-apiserver writes, Environment status/other", "%d / %d", k.get(keyEnvStatus), k.get(keyEnvMain))
	t.info(prefix+"kube-apiserver writes, Events", "%d", k.get(keyEvents))
	if c := k.get(keyConflicts); c != 0 {
		t.info(prefix+"  of which 409 Conflict (AgentActions)", "%d", c)
	}
	t.info(prefix+"kube-apiserver reads, Secret GETs (not cached)", "%d", k.get(keySecretReads))
}

// writesPerAction adds the row of the manager's kube-apiserver writes per
// AgentAction (all counted writes: AgentActions and their status,
// Environments and their status, Events) and keeps them for the summary.
// what says which AgentActions n counts; note is added to the metric.
func (t *table) writesPerAction(prefix, note string, n int, what string, k kubeCounts) {
	t.perAction = &perActionWrites{n: n, what: what, writes: k}
	metric := prefix + "kube-apiserver writes per AgentAction"
	if note != "" {
		metric += " (" + note + ")"
	}
	t.info(metric, "%s (%d writes / %d AgentActions %s)", perActionString(k.allWrites(), n), k.allWrites(), n, what)
}

// perActionString formats writes / n, or "n/a" for n = 0.
func perActionString(writes, n int) string {
	if n <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(writes)/float64(n))
}

// printWritesPerAction prints the manager's kube-apiserver writes per
// AgentAction of every scenario that reports them, by resource.
func printWritesPerAction(w io.Writer, tables []*table) {
	say(w, "%s\n", "\nkube-apiserver writes per AgentAction (the manager's writes in each scenario's counted window)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	say(tw, "%s\n", "  scenario\tAgentActions\tAgentAction status\tAgentAction other\tEnvironment status/other\tEvents\twrites\tper AgentAction")
	say(tw, "%s\n", "  --------\t------------\t------------------\t-----------------\t------------------------\t------\t------\t---------------")
	for _, t := range tables {
		p := t.perAction
		if p == nil {
			say(tw, "  %d\t(not measured)\t\t\t\t\t\t\n", t.id)
			continue
		}
		k := p.writes
		say(tw, "  %d\t%d %s\t%d\t%d\t%d / %d\t%d\t%d\t%s\n", t.id, p.n, p.what,
			k.get(keyActionStatus), k.get(keyActionMain), k.get(keyEnvStatus), k.get(keyEnvMain), k.get(keyEvents),
			k.allWrites(), perActionString(k.allWrites(), p.n))
	}
	_ = tw.Flush()
}

// proc adds the rows of the manager's peak RSS and CPU.
func (t *table) proc(st procStats, peakTarget float64) {
	peak := fmt.Sprintf("%.1f MiB", st.peakMiB)
	if st.sincePID {
		peak += " (since start)"
	}
	if peakTarget > 0 {
		t.check("manager peak RSS (VmHWM)", peak, fmt.Sprintf("< %.0f MiB", peakTarget), st.peakMiB < peakTarget)
	} else {
		t.info("manager peak RSS (VmHWM)", "%s", peak)
	}
	cpu := fmt.Sprintf("%.1f s", st.cpu)
	if st.sincePID {
		cpu += " (since start)"
	}
	t.info("manager CPU seconds (user+system)", "%s", cpu)
	t.info("  for context: CPU seconds of kube-apiserver+etcd / benchmark / other processes",
		"%.1f s / %.1f s / %.1f s", st.sys.controlPlane, st.sys.self, st.sys.others(st.cpu))
	t.info("  for context: machine CPU busy", "%.0f%% of %d CPUs", st.sys.busyPercent(), runtime.NumCPU())
}

func (t *table) print(w io.Writer) {
	say(w, "\nScenario %d: %s\n", t.id, t.title)
	if t.err != nil {
		say(w, "  FAILED: %v\n", t.err)
	}
	if len(t.rows) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		say(tw, "%s\n", "  metric\tvalue\ttarget\tresult")
		say(tw, "%s\n", "  ------\t-----\t------\t------")
		for _, r := range t.rows {
			say(tw, "  %s\t%s\t%s\t%s\n", r.metric, r.value, r.target, r.result)
		}
		_ = tw.Flush()
	}
	for _, n := range t.notes {
		say(w, "  note: %s\n", n)
	}
}

// printSummary prints every target row of every table and returns the
// number of targets missed (a failed scenario counts as one).
func printSummary(w io.Writer, tables []*table) int {
	say(w, "%s\n", "\nSummary of the targets")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	say(tw, "%s\n", "  scenario\tmetric\tvalue\ttarget\tresult")
	say(tw, "%s\n", "  --------\t------\t-----\t------\t------")
	missed, total := 0, 0
	for _, t := range tables {
		if t.err != nil {
			say(tw, "  %d\t(scenario failed)\t\t\tMISS\n", t.id)
			missed++
			total++
		}
		for _, r := range t.rows {
			if r.result == "" {
				continue
			}
			total++
			if r.result != "PASS" {
				missed++
			}
			say(tw, "  %d\t%s\t%s\t%s\t%s\n", t.id, strings.TrimSpace(r.metric), r.value, r.target, r.result)
		}
	}
	_ = tw.Flush()
	say(w, "  %d of %d targets met.\n", total-missed, total)
	return missed
}

// machine describes the machine the run used.
func machine() []string {
	model := unknown
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	mem := unknown
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb float64
				if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%f kB", &kb); err == nil {
					mem = fmt.Sprintf("%.1f GiB", kb/1024/1024)
				}
			}
		}
	}
	kernel := unknown
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(data))
	}
	return []string{
		fmt.Sprintf("CPUs (nproc):  %d", runtime.NumCPU()),
		fmt.Sprintf("CPU model:     %s", model),
		fmt.Sprintf("memory:        %s", mem),
		fmt.Sprintf("Go:            %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("kernel:        Linux %s", kernel),
	}
}

// say prints to the output; a failed write to stdout is not worth stopping
// a benchmark for.
func say(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}

// unknown stands for a machine property that could not be read.
const unknown = "unknown"

// secs formats a duration in seconds.
func secs(d time.Duration) string {
	return fmt.Sprintf("%.2f s", d.Seconds())
}
