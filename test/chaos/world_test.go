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

// Package chaos runs the manager binary against a local control plane and
// the Talkover API simulator while both misbehave: the API fails, resets
// connections, rate limits and goes down; the manager is killed with
// SIGKILL and started again; the kube-apiserver restarts. At the end every
// AgentAction must have converged, with no duplicate, leaked or missing
// remote action. CHAOS_FULL=1 (make test-chaos) runs the full size.
package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
	"github.com/talkover/talkover-operator/test/utils"
)

const (
	envName = "chaos"
	simEnv  = "chaos"
	token   = "talq_chaos_token_0123456789abcdef"
	// publishQuiet is the manager's --publish-quiet-period.
	publishQuiet = 2 * time.Second
	// unlimitedRPM lifts the operator's own rate limit: the simulator has
	// none, and the test measures calls, not throttling.
	unlimitedRPM = 100000
)

// size is the scale of a run.
type size struct {
	name            string
	actions, agents int
	updates         int
	deletes         int
	// kills is how many times the manager is killed with SIGKILL.
	kills int
	// period is how long faults are injected and the workload runs.
	period time.Duration
	// outage is how long the API is fully down.
	outage time.Duration
	// burst is the most 429 answers of each burst, burstWindow how long a
	// burst lasts at most (a quota window: a client that honours
	// Retry-After sees only a few of them), retryAfter their Retry-After.
	burst       int
	burstWindow time.Duration
	retryAfter  time.Duration
	// converge bounds the wait for convergence once faults are cleared.
	converge time.Duration
}

var (
	smallSize = size{name: "small", actions: 40, agents: 4, updates: 20, deletes: 8, kills: 2,
		period: 40 * time.Second, outage: 8 * time.Second, burst: 10, burstWindow: 4 * time.Second, retryAfter: 2 * time.Second,
		converge: 2 * time.Minute}
	fullSize = size{name: "full", actions: 300, agents: 10, updates: 150, deletes: 60, kills: 3,
		period: 150 * time.Second, outage: 30 * time.Second, burst: 25, burstWindow: 6 * time.Second, retryAfter: 3 * time.Second,
		converge: 5 * time.Minute}
)

// world is everything a run works with.
type world struct {
	t      *testing.T
	sz     size
	rng    *rand.Rand
	seed   uint64
	start  time.Time
	cp     *utils.ControlPlane
	sim    *apisim.Server
	ns     string
	agents []string
	// api serves the simulator; upsertsStarted and upsertsInFlight count
	// the POSTs of actions it received and is answering.
	api                             *httptest.Server
	upsertsStarted, upsertsInFlight atomic.Int32
	// publishHold, while not nil, holds the publishes (see holdPublishes);
	// publishesHeld counts the publishes it held.
	publishHold   atomic.Pointer[chan struct{}]
	publishesHeld atomic.Int32
	pushes        pushLog
	mgr           *utils.ManagerProcess
	sup           *supervisor
	// apiserverDown is how long the kube-apiserver restart took, from
	// apiserverStopped.
	apiserverDown    time.Duration
	apiserverStopped time.Time
	// events are the times of the SIGKILLs, to explain replays.
	eventsMu sync.Mutex
	events   []time.Time
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(agentsv1alpha1.AddToScheme(s))
	return s
}

// logDir is where the manager's logs go: $CHAOS_LOG_DIR/<test> when set
// (kept after the run), else a temporary folder.
func logDir(t *testing.T) string {
	if dir := os.Getenv("CHAOS_LOG_DIR"); dir != "" {
		abs, err := filepath.Abs(filepath.Join(dir, t.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			t.Fatal(err)
		}
		return abs
	}
	return t.TempDir()
}

// shared is the control plane and the manager binary of the package's
// tests, started by the first test and stopped by TestMain.
var shared struct {
	once   sync.Once
	err    error
	dir    string
	binary string
	cp     *utils.ControlPlane
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.cp != nil {
		if err := shared.cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// skipWithoutAssets skips the test when no local control plane is built and
// none was asked for: KUBEBUILDER_ASSETS is unset and the default folder
// (bin/k8s/...) lacks a binary. KUBEBUILDER_ASSETS pointing at a folder
// that lacks one is a mistake, and fails later in CheckAssets.
func skipWithoutAssets(t *testing.T, assets string) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") != "" {
		return
	}
	if err := utils.CheckAssets(assets); err != nil {
		t.Skipf("the local control plane is not built (%v); run `make test`", err)
	}
}

// setupShared builds the manager and starts the control plane, once.
func setupShared() error {
	shared.once.Do(func() {
		logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.Level(2))))
		root, err := utils.RepoRoot()
		if err != nil {
			shared.err = err
			return
		}
		assets := utils.AssetsDir(root)
		if err := utils.CheckAssets(assets); err != nil {
			shared.err = fmt.Errorf("the local control plane is not built: %w", err)
			return
		}
		if shared.dir, err = os.MkdirTemp("", "talkover-chaos-"); err != nil {
			shared.err = err
			return
		}
		shared.binary = filepath.Join(shared.dir, "manager")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := utils.BuildManager(ctx, root, shared.binary); err != nil {
			shared.err = err
			return
		}
		shared.cp, shared.err = utils.StartControlPlane(root, assets, shared.dir, newScheme())
	})
	return shared.err
}

// newWorld starts a simulator (agents published and ready), creates the
// namespace ns with an Environment for it (publishPolicy Auto, drift
// checks off) and starts a manager with the publish quiet period
// publishQuiet; the test's cleanup stops them.
func newWorld(t *testing.T, ns string, sz size, seed uint64) *world {
	t.Helper()
	return newWorldQuiet(t, ns, sz, seed, publishQuiet)
}

// newWorldQuiet is newWorld with another publish quiet period.
func newWorldQuiet(t *testing.T, ns string, sz size, seed uint64, quiet time.Duration) *world {
	t.Helper()
	if root, err := utils.RepoRoot(); err == nil {
		skipWithoutAssets(t, utils.AssetsDir(root))
	}
	w := &world{t: t, ns: ns, sz: sz, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), start: time.Now()} //nolint:gosec // test randomness
	if err := setupShared(); err != nil {
		t.Fatal(err)
	}
	w.cp = shared.cp
	w.logf("control plane at %s", w.cp.APIServerURL())

	// The simulator is served through a handler that counts the upserts
	// in flight.
	w.sim = apisim.New(apisim.WithSeed(int64(seed))) //nolint:gosec // a seed
	w.api = httptest.NewServer(http.HandlerFunc(w.serveAPI))
	t.Cleanup(func() {
		w.sim.Close()
		w.api.CloseClientConnections()
		w.api.Close()
	})
	w.sim.AddEnvironment(simEnv, token)
	for i := range sz.agents {
		id := fmt.Sprintf("%s-agent-%02d", ns, i)
		w.agents = append(w.agents, id)
		w.sim.AddAgent(simEnv, id, apisim.AgentOptions{Name: "Chaos agent " + id, Published: true})
	}

	noDrift := time.Duration(0)
	if err := utils.CreateEnvironment(context.Background(), w.cp.Client, utils.EnvironmentOptions{
		Namespace: ns, Name: envName, APIURL: w.api.URL + "/api/v1", Token: token,
		PublishPolicy: agentsv1alpha1.PublishPolicyAuto, RequestsPerMinute: unlimitedRPM, DriftCheckInterval: &noDrift,
	}); err != nil {
		t.Fatal(err)
	}

	w.mgr = &utils.ManagerProcess{
		Binary: shared.binary, Kubeconfig: w.cp.Kubeconfig, Name: "manager", LogDir: logDir(t),
		Args: []string{
			"--metrics-bind-address=0",
			"--leader-elect=false",
			"--publish-quiet-period=" + quiet.String(),
		},
	}
	if err := w.mgr.Start(time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.stopManager)
	w.logf("manager started (pid %d, logs in %s)", w.mgr.Pid(), w.mgr.LogDir)
	return w
}

// holdPublishes makes the API hold every publish (POST .../publish) that
// arrives until release is called: a held publish never reaches the
// simulator, and is answered 503 on release (or dropped, if its client has
// gone). A test can then kill the manager while it owes a publish, knowing
// that the publish was not made.
func (w *world) holdPublishes() (release func()) {
	hold := make(chan struct{})
	w.publishHold.Store(&hold)
	return func() {
		if w.publishHold.CompareAndSwap(&hold, nil) {
			close(hold)
		}
	}
}

// serveAPI passes a request to the simulator, counting the upserts and
// classifying the accepted ones (see pushLog); publishes may be held
// (holdPublishes).
func (w *world) serveAPI(rw http.ResponseWriter, r *http.Request) {
	if hold := w.publishHold.Load(); hold != nil && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/publish") {
		w.publishesHeld.Add(1)
		select {
		case <-*hold:
			http.Error(rw, "held by the test", http.StatusServiceUnavailable)
		case <-r.Context().Done():
		}
		return
	}
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/actions") {
		w.sim.Handler().ServeHTTP(rw, r)
		return
	}
	w.upsertsStarted.Add(1)
	w.upsertsInFlight.Add(1)
	defer w.upsertsInFlight.Add(-1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(rw, "reading the body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &statusWriter{ResponseWriter: rw}
	w.sim.Handler().ServeHTTP(sw, r)
	if sw.status >= 200 && sw.status < 300 {
		w.pushes.record(strings.TrimSuffix(r.URL.Path, "/actions"), body)
	}
}

// statusWriter records the status of an answer; Unwrap lets the simulator
// hijack the connection to reset it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// pushLog classifies the upserts the API accepted, per agent and node_id:
// a replay re-sends the body last accepted (the operator did not know it
// had been accepted: a crash, a lost status write, a stale cache); a stale
// push re-sends an older body (a revision already superseded).
type pushLog struct {
	mu                 sync.Mutex
	bodies             map[string][]string
	accepted           int
	replays, stalePush int
	// replayTimes are when the replays were accepted.
	replayTimes []time.Time
}

func (p *pushLog) record(agentPath string, body []byte) {
	var fields struct {
		NodeID string `json:"node_id"`
	}
	_ = json.Unmarshal(body, &fields)
	key := agentPath + "/" + fields.NodeID
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bodies == nil {
		p.bodies = map[string][]string{}
	}
	p.accepted++
	seen := p.bodies[key]
	switch {
	case len(seen) > 0 && seen[len(seen)-1] == string(body):
		p.replays++
		p.replayTimes = append(p.replayTimes, time.Now())
	case slices.Contains(seen, string(body)):
		p.stalePush++
	}
	p.bodies[key] = append(seen, string(body))
}

// replaysAt returns when the replays were accepted.
func (p *pushLog) replaysAt() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.replayTimes)
}

func (p *pushLog) counts() (accepted, replays, stale int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.replays, p.stalePush
}

// logf logs with the time since the start of the run.
func (w *world) logf(format string, args ...any) {
	w.t.Helper()
	w.t.Logf("[%6.1fs] %s", time.Since(w.start).Seconds(), fmt.Sprintf(format, args...))
}

// stopManager stops the supervisor and the manager, and shows the end of
// its log if the test failed.
func (w *world) stopManager() {
	if w.sup != nil {
		w.sup.stop()
	}
	w.dumpRequests()
	if _, err := w.mgr.Terminate(15 * time.Second); err != nil {
		w.t.Errorf("the manager did not stop cleanly: %v", err)
	}
	if w.t.Failed() {
		w.t.Logf("--- last lines of %s ---\n%s", w.mgr.LogPath(), w.mgr.LogTail(60))
	}
}

// supervisor restarts the manager whenever it exits, as a Deployment does:
// after a kill of the test's after a short random delay, after an exit of
// its own after a second (and the exit is recorded).
type supervisor struct {
	w          *world
	expected   atomic.Bool
	restarting atomic.Bool
	unexpected atomic.Int32
	kills      atomic.Int32
	quit       chan struct{}
	done       chan struct{}
	stopOnce   sync.Once
}

func (w *world) startSupervisor() {
	s := &supervisor{w: w, quit: make(chan struct{}), done: make(chan struct{})}
	w.sup = s
	go s.run()
}

func (s *supervisor) run() {
	defer close(s.done)
	for {
		select {
		case <-s.quit:
			return
		case <-s.w.mgr.Done():
		}
		delay := time.Second
		if s.expected.Swap(false) {
			delay = time.Duration(300+s.w.randN(1200)) * time.Millisecond
		} else {
			s.unexpected.Add(1)
			s.w.logf("the manager (pid %d) exited on its own; the supervisor restarts it. Last lines:\n%s",
				s.w.mgr.Pid(), s.w.mgr.LogTail(15))
		}
		if !s.restart(delay) {
			return
		}
	}
}

// restart starts the manager again after delay, retrying until it is ready
// or the supervisor stops. It reports whether the supervisor goes on.
func (s *supervisor) restart(delay time.Duration) bool {
	s.restarting.Store(true)
	defer s.restarting.Store(false)
	for {
		select {
		case <-s.quit:
			return false
		case <-time.After(delay):
		}
		err := s.w.mgr.Start(time.Minute)
		if err == nil {
			s.w.logf("manager restarted (run %d, pid %d)", s.w.mgr.Runs(), s.w.mgr.Pid())
			return true
		}
		s.w.logf("restarting the manager failed, retrying: %v", err)
		if s.w.mgr.Running() {
			_ = s.w.mgr.Kill()
		}
		delay = time.Second
	}
}

// kill sends SIGKILL to the manager; the supervisor starts it again.
func (s *supervisor) kill() {
	// A restart may be under way: kill the next run once it is up.
	for deadline := time.Now().Add(time.Minute); s.restarting.Load() || !s.w.mgr.Running(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.w.t.Errorf("chaos: the manager has not been running for a minute; no kill")
			return
		}
	}
	pid := s.w.mgr.Pid()
	s.expected.Store(true)
	if err := s.w.mgr.Kill(); err != nil {
		s.w.t.Errorf("killing the manager: %v", err)
		return
	}
	s.kills.Add(1)
	s.w.markEvent()
	s.w.logf("chaos: SIGKILL sent to the manager (pid %d)", pid)
}

// stop stops the supervisor, waiting for a restart under way; the manager
// keeps running.
func (s *supervisor) stop() {
	s.stopOnce.Do(func() { close(s.quit) })
	<-s.done
}

// randMu guards the world's random source, used by several goroutines.
var randMu sync.Mutex

// randN returns a random int in [0, n).
func (w *world) randN(n int) int {
	randMu.Lock()
	defer randMu.Unlock()
	return w.rng.IntN(n)
}

// randDuration returns a random duration in [lo, hi).
func (w *world) randDuration(lo, hi time.Duration) time.Duration {
	randMu.Lock()
	defer randMu.Unlock()
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)))
}

// markEvent records the time of a SIGKILL.
func (w *world) markEvent() {
	w.eventsMu.Lock()
	defer w.eventsMu.Unlock()
	w.events = append(w.events, time.Now())
}

// replayCauses sorts the replays by what they followed: a SIGKILL (within
// 15s: the next run's first reconciles), the kube-apiserver restart (from
// its stop to 15s after it is back), or neither.
func (w *world) replayCauses() (afterKill, aroundRestart, other int) {
	const window = 15 * time.Second
	w.eventsMu.Lock()
	kills := slices.Clone(w.events)
	w.eventsMu.Unlock()
	restartEnd := w.apiserverStopped.Add(w.apiserverDown + window)
	for _, t := range w.pushes.replaysAt() {
		switch {
		case !w.apiserverStopped.IsZero() && !t.Before(w.apiserverStopped) && t.Before(restartEnd):
			aroundRestart++
		case slices.ContainsFunc(kills, func(k time.Time) bool { return !t.Before(k) && t.Sub(k) < window }):
			afterKill++
		default:
			other++
		}
	}
	return afterKill, aroundRestart, other
}
