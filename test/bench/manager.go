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
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/talkover/talkover-operator/test/utils"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// manager is one run of the manager binary.
type manager struct {
	proc    *utils.Process
	probe   string
	logPath string
	started time.Time
	// readyAfter is how long /readyz took to answer after the start, and
	// workersAfter how long until both controllers ran their workers.
	readyAfter, workersAfter time.Duration
}

// startManager starts bin/manager against the control plane and waits for
// its readiness probe.
func (b *bench) startManager(ctx context.Context) error {
	if _, err := os.Stat(b.cfg.manager); err != nil {
		return fmt.Errorf("the manager binary %s is missing: run 'make build' (or 'make bench', which builds it)", b.cfg.manager)
	}
	probe, err := utils.FreeLocalAddr()
	if err != nil {
		return err
	}
	b.mgrRuns++
	m := &manager{probe: probe, logPath: filepath.Join(b.cfg.logDir, fmt.Sprintf("manager-%d.log", b.mgrRuns))}
	args := []string{
		"--metrics-bind-address=0",
		"--health-probe-bind-address=" + probe,
		"--leader-elect=false",
		fmt.Sprintf("--max-concurrent-reconciles=%d", b.cfg.workers),
	}
	m.started = time.Now()
	if m.proc, err = utils.StartProcess(b.cfg.manager, args, []string{"KUBECONFIG=" + b.kubeconfig}, m.logPath); err != nil {
		return err
	}
	b.mgr = m
	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := utils.WaitHTTPOK(readyCtx, "http://"+probe+"/readyz", m.proc); err != nil {
		return fmt.Errorf("the manager did not become ready: %w\n--- last lines of %s ---\n%s", err, m.logPath, m.proc.LogTail(30))
	}
	m.readyAfter = time.Since(m.started)
	// /readyz answers before the caches have synced; the scenarios start
	// once both controllers run their workers.
	if err := m.waitWorkers(readyCtx); err != nil {
		return err
	}
	m.workersAfter = time.Since(m.started)
	b.logf("Manager %s started (pid %d, %s, log %s): readyz after %s, workers running after %s",
		filepath.Base(b.cfg.manager), m.proc.Pid(), strings.Join(args, " "), m.logPath,
		m.readyAfter.Round(time.Millisecond), m.workersAfter.Round(time.Millisecond))
	return nil
}

// workerControllers are the controllers whose workers must run before a
// scenario starts.
var workerControllers = []string{"agentaction", "agentpublish", "agentdrift", "environment", "clusterenvironment"}

// waitWorkers waits until the log says every controller started its
// workers.
func (m *manager) waitWorkers(ctx context.Context) error {
	for {
		data, _ := os.ReadFile(m.logPath)
		if workersStarted(data) {
			return nil
		}
		if err := m.alive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the manager's controllers did not start their workers: %w\n--- last lines of %s ---\n%s",
				ctx.Err(), m.logPath, m.proc.LogTail(30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for the manager to exit.
func (m *manager) stop(timeout time.Duration) error {
	return m.proc.Stop(timeout)
}

// alive returns an error if the manager exited.
func (m *manager) alive() error {
	select {
	case <-m.proc.Done():
		return fmt.Errorf("the manager exited: %w\n--- last lines of %s ---\n%s", exitErr(m.proc.Err()), m.logPath, m.proc.LogTail(30))
	default:
		return nil
	}
}

// exitErr makes a clean exit an error too: the manager must not exit.
func exitErr(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

// cpuSeconds returns the user and system CPU time of the manager so far.
func (m *manager) cpuSeconds() (float64, error) {
	return procCPUSeconds(m.proc.Pid())
}

// procCPUSeconds reads utime+stime of a process from /proc/<pid>/stat.
func procCPUSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count fields after ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return (utime + stime) / clockTicks, nil
}

// parentPID reads the parent of a process from /proc/<pid>/stat.
func parentPID(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 2 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return strconv.Atoi(fields[1])
}

// peakRSS returns the manager's peak resident set size (VmHWM) in MiB.
func (m *manager) peakRSS() (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", m.proc.Pid()))
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, err
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", m.proc.Pid())
}

// resetPeak resets VmHWM to the current RSS (Linux 4.0 and later), so the
// next peakRSS is the peak of one scenario.
func (m *manager) resetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", m.proc.Pid()), []byte("5"), 0)
}

// errorLines counts the log lines of level error.
func (m *manager) errorLines() int {
	data, err := os.ReadFile(m.logPath)
	if err != nil {
		return -1
	}
	return bytes.Count(data, []byte(`"level":"error"`))
}

// procWindow measures one scenario: the manager's peak RSS and CPU, and for
// context the CPU of the control plane and of the benchmark process, and how
// busy the machine was.
type procWindow struct {
	b    *bench
	m    *manager
	cpu0 float64
	// resetOK is false when VmHWM could not be reset: the peak is then the
	// process's peak since it started.
	resetOK bool
	sys0    sysCPU
}

func (b *bench) beginProc() *procWindow {
	w := &procWindow{b: b, m: b.mgr, sys0: b.sysCPU()}
	w.resetOK = b.mgr.resetPeak() == nil
	w.cpu0, _ = b.mgr.cpuSeconds()
	return w
}

// procStats are the numbers of a window.
type procStats struct {
	peakMiB  float64
	cpu      float64
	sincePID bool // the peak (and CPU) are since the process started
	sys      sysCPU
}

func (w *procWindow) end() procStats {
	st := procStats{sincePID: !w.resetOK}
	st.peakMiB, _ = w.m.peakRSS()
	cpu, _ := w.m.cpuSeconds()
	st.cpu = cpu - w.cpu0
	st.sys = w.b.sysCPU().sub(w.sys0)
	return st
}

// sysCPU is cumulative CPU time of the control plane and the benchmark
// process, and the machine's busy and total jiffies.
type sysCPU struct {
	controlPlane, self float64
	busy, total        float64
}

func (s sysCPU) sub(o sysCPU) sysCPU {
	return sysCPU{controlPlane: s.controlPlane - o.controlPlane, self: s.self - o.self, busy: s.busy - o.busy, total: s.total - o.total}
}

// others is the CPU time of every other process on the machine (other
// than the control plane, the benchmark and a manager that used
// managerCPU), in seconds.
func (s sysCPU) others(managerCPU float64) float64 {
	return max(0, s.busy/clockTicks-s.controlPlane-s.self-managerCPU)
}

// busyPercent is the share of the machine's CPU time that was not idle.
func (s sysCPU) busyPercent() float64 {
	if s.total <= 0 {
		return 0
	}
	return 100 * s.busy / s.total
}

func (b *bench) sysCPU() sysCPU {
	var s sysCPU
	for _, pid := range b.cpPIDs {
		// A failed read keeps the last value, so windows never go negative.
		if c, err := procCPUSeconds(pid); err == nil && c > b.cpLast[pid] {
			b.cpLast[pid] = c
		} else if err != nil {
			b.logf("Reading the CPU time of control plane process %d: %v", pid, err)
		}
		s.controlPlane += b.cpLast[pid]
	}
	s.self, _ = procCPUSeconds(os.Getpid())
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		fields := strings.Fields(line)
		for i, f := range fields[1:] {
			v, _ := strconv.ParseFloat(f, 64)
			if i >= 8 { // guest time is already in user
				break
			}
			s.total += v
			if i != 3 && i != 4 { // idle, iowait
				s.busy += v
			}
		}
	}
	return s
}

// controlPlanePIDs finds the kube-apiserver and etcd that this process
// started from the assets folder (other local control planes, such as
// those of tests running at the same time, are not counted).
func controlPlanePIDs(assets string) []int {
	want := map[string]bool{}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		p := filepath.Join(assets, name)
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		want[p] = true
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || !want[exe] {
			continue
		}
		if ppid, err := parentPID(pid); err == nil && ppid == os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// workersStarted says whether a manager log shows every controller of
// workerControllers starting its workers.
func workersStarted(log []byte) bool {
	lines := bytes.Split(log, []byte("\n"))
	for _, c := range workerControllers {
		name := []byte(`"controller":"` + c + `"`)
		if !slices.ContainsFunc(lines, func(l []byte) bool {
			return bytes.Contains(l, []byte(`"msg":"Starting workers"`)) && bytes.Contains(l, name)
		}) {
			return false
		}
	}
	return true
}
