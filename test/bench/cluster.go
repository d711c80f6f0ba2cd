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
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
	"github.com/talkover/talkover-operator/test/utils"
)

const (
	// simEnv and simToken are the simulator environment of every scenario.
	simEnv   = "bench"
	simToken = "talq_bench_token_0123456789abcdef"
	// envName is the Environment of every scenario namespace.
	envName     = "bench"
	tokenSecret = "talkover-token"
	// unlimitedRPM is the Environment's requestsPerMinute where the
	// simulator has no rate limit.
	unlimitedRPM = 100000
	// pollInterval is how often the waits look at the cache or the simulator.
	pollInterval = 100 * time.Millisecond
)

// bench is one benchmark run: the control plane, the manager and the
// simulators of the scenarios.
type bench struct {
	cfg   config
	sz    sizes
	out   io.Writer
	start time.Time

	scheme      *runtime.Scheme
	env         *envtest.Environment
	restCfg     *rest.Config
	k8s         client.Client
	cache       cache.Cache
	cacheCancel context.CancelFunc
	metricsHTTP *http.Client
	kubeconfig  string

	mgr     *manager
	mgrRuns int
	// cpPIDs are the kube-apiserver and etcd processes.
	cpPIDs []int
	cpLast map[int]float64
	own    ownWrites
	sims   []*apisim.Server

	baseline *baselineResult
	mimic    *baselineResult
	s2       *s2State
	tables   []*table
}

func newBench(cfg config, out io.Writer) *bench {
	b := &bench{cfg: cfg, sz: sizesFor(cfg.quick), out: out, start: time.Now(), scheme: runtime.NewScheme()}
	utilruntime.Must(clientgoscheme.AddToScheme(b.scheme))
	utilruntime.Must(agentsv1alpha1.AddToScheme(b.scheme))
	b.own.counts = map[string]float64{}
	b.cpLast = map[int]float64{}
	return b
}

// logf prints a progress line with the time since the start of the run.
func (b *bench) logf(format string, args ...any) {
	say(b.out, "[%7.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

// startControlPlane starts kube-apiserver and etcd with the CRDs, the
// clients and the cache of the benchmark, and writes the manager's
// kubeconfig (an administrator in system:masters).
func (b *bench) startControlPlane(ctx context.Context) error {
	if err := utils.CheckAssets(b.cfg.assets); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(b.cfg.logDir, "bench-controller-runtime.log"))
	if err != nil {
		return err
	}
	logf.SetLogger(zap.New(zap.WriteTo(logFile)))

	b.env = &envtest.Environment{
		CRDDirectoryPaths:        []string{filepath.Join(b.cfg.root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    b.cfg.assets,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		Scheme:                   b.scheme,
	}
	cfg, err := b.env.Start()
	if err != nil {
		return fmt.Errorf("starting the local control plane: %w", err)
	}
	user, err := b.env.AddUser(envtest.User{Name: "bench-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the manager's user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return err
	}
	b.kubeconfig = filepath.Join(b.cfg.logDir, "kubeconfig")
	if err := utils.WriteFile(b.kubeconfig, data); err != nil {
		return err
	}

	// The benchmark's own client is not rate limited client-side, so object
	// creation is limited by the kube-apiserver only.
	b.restCfg = rest.CopyConfig(cfg)
	b.restCfg.QPS, b.restCfg.Burst = -1, 0
	if b.k8s, err = client.New(b.restCfg, client.Options{Scheme: b.scheme}); err != nil {
		return err
	}
	if b.metricsHTTP, err = rest.HTTPClientFor(b.restCfg); err != nil {
		return err
	}
	// A watch-fed cache: polling it for Ready costs the kube-apiserver
	// nothing, where polling a List of 5,000 objects would compete with the
	// manager for the machine's two cores.
	if b.cache, err = cache.New(b.restCfg, cache.Options{Scheme: b.scheme}); err != nil {
		return err
	}
	cacheCtx, cancel := context.WithCancel(context.Background())
	b.cacheCancel = cancel
	if _, err := b.cache.GetInformer(ctx, &agentsv1alpha1.AgentAction{}); err != nil {
		return err
	}
	go func() { _ = b.cache.Start(cacheCtx) }()
	syncCtx, syncCancel := context.WithTimeout(ctx, time.Minute)
	defer syncCancel()
	if !b.cache.WaitForCacheSync(syncCtx) {
		return fmt.Errorf("the benchmark's cache did not sync within a minute")
	}
	b.cpPIDs = controlPlanePIDs(b.cfg.assets)
	b.logf("Control plane up at %s (kube-apiserver and etcd from %s, pids %v)", cfg.Host, b.cfg.assets, b.cpPIDs)
	return nil
}

// close stops everything the run started, in reverse order.
func (b *bench) close() {
	if b.mgr != nil {
		if err := b.mgr.stop(30 * time.Second); err != nil {
			b.logf("Stopping the manager: %v", err)
		}
	}
	for _, s := range b.sims {
		s.Close()
	}
	if b.cacheCancel != nil {
		b.cacheCancel()
	}
	if b.env != nil {
		if err := b.env.Stop(); err != nil {
			b.logf("Stopping the control plane: %v", err)
		}
	}
}

// ownWrites counts the writes the benchmark itself makes, by the same keys
// as kubeWrites, so they can be told apart from the manager's.
type ownWrites struct {
	mu     sync.Mutex
	counts map[string]float64
}

func (o *ownWrites) add(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counts[key]++
}

func (o *ownWrites) snapshot() map[string]float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]float64, len(o.counts))
	for k, v := range o.counts {
		out[k] = v
	}
	return out
}

// Keys of the write counts: the resources the operator touches. The
// kube-apiserver's own background writes (leases and the like) are not
// counted.
const (
	keyActionStatus = "agentactions/status"
	keyActionMain   = "agentactions"
	keyEnvStatus    = "environments/status"
	keyEnvMain      = "environments"
	keyEvents       = "events"
	keyConflicts    = "conflicts"
	// keySecretReads counts GETs of Secrets: the manager reads Secret data
	// straight from the kube-apiserver (it caches only their metadata).
	keySecretReads = "secrets/get"
)

// writeVerbs are the verbs of apiserver_request_total that change state.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

// kubeCounts are cumulative write counts by key.
type kubeCounts map[string]float64

func (k kubeCounts) sub(o kubeCounts) kubeCounts {
	out := kubeCounts{}
	for key, v := range k {
		out[key] = v - o[key]
	}
	for key, v := range o {
		if _, ok := k[key]; !ok {
			out[key] = -v
		}
	}
	return out
}

func (k kubeCounts) get(key string) int { return int(k[key] + 0.5) }

// actionWrites is the writes to AgentActions (status and the rest).
func (k kubeCounts) actionWrites() int { return k.get(keyActionStatus) + k.get(keyActionMain) }

// allWrites is every counted write (conflicts are already in their resource).
func (k kubeCounts) allWrites() int {
	return k.actionWrites() + k.get(keyEnvStatus) + k.get(keyEnvMain) + k.get(keyEvents)
}

// kubeWrites scrapes the kube-apiserver's /metrics and returns the
// cumulative writes to the operator's resources and Events, minus the
// benchmark's own writes: the difference of two calls is the manager's
// writes in between.
func (b *bench) kubeWrites(ctx context.Context) (kubeCounts, error) {
	own := b.own.snapshot()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(b.restCfg.Host, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.metricsHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping the kube-apiserver's metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping the kube-apiserver's metrics: %s", resp.Status)
	}
	counts, err := parseRequestTotals(resp.Body)
	if err != nil {
		return nil, err
	}
	for k, v := range own {
		counts[k] -= v
	}
	return counts, nil
}

// parseRequestTotals sums apiserver_request_total over the write verbs, by
// resource and subresource, and counts Secret GETs.
func parseRequestTotals(r io.Reader) (kubeCounts, error) {
	counts := kubeCounts{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		labels, v, ok, err := parseRequestTotal(sc.Bytes())
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		key := requestKey(labels)
		if key == "" {
			continue
		}
		counts[key] += v
		if labels["code"] == "409" && strings.HasPrefix(key, "agentactions") {
			counts[keyConflicts] += v
		}
	}
	return counts, sc.Err()
}

// parseRequestTotal parses one apiserver_request_total sample; ok is false
// for other lines.
func parseRequestTotal(line []byte) (map[string]string, float64, bool, error) {
	const metric = "apiserver_request_total{"
	if !bytes.HasPrefix(line, []byte(metric)) {
		return nil, 0, false, nil
	}
	end := bytes.LastIndexByte(line, '}')
	if end < 0 {
		return nil, 0, false, nil
	}
	fields := strings.Fields(string(line[end+1:]))
	if len(fields) == 0 {
		return nil, 0, false, nil
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return nil, 0, false, fmt.Errorf("parsing %q: %w", line, err)
	}
	return parseLabels(string(line[len(metric):end])), v, true, nil
}

// requestKey returns the count a request belongs to, or "" for requests
// that are not counted.
func requestKey(labels map[string]string) string {
	res, sub, verb := labels["resource"], labels["subresource"], labels["verb"]
	if verb == "GET" && res == "secrets" && sub == "" {
		return keySecretReads
	}
	if !writeVerbs[verb] {
		return ""
	}
	switch {
	case res == "agentactions" && sub == "status":
		return keyActionStatus
	case res == "agentactions":
		return keyActionMain
	case res == "environments" && sub == "status":
		return keyEnvStatus
	case res == "environments":
		return keyEnvMain
	case res == "events":
		return keyEvents
	}
	return ""
}

// parseLabels parses `a="x",b="y"` (Prometheus text format label values,
// with backslash escapes).
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return out
		}
		key := strings.TrimSpace(strings.TrimLeft(s[:eq], ","))
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			val.WriteByte(s[i])
		}
		out[key] = val.String()
		if i+1 >= len(s) {
			break
		}
		s = s[i+1:]
	}
	return out
}

// newSim starts a fresh simulator with the benchmark's environment token and
// the given agents, published and ready to publish.
func (b *bench) newSim(prefix string, agents int, opts ...apisim.Option) (*apisim.Server, []string) {
	s := apisim.New(opts...)
	s.Start()
	s.AddEnvironment(simEnv, simToken)
	b.sims = append(b.sims, s)
	return s, addAgents(s, simEnv, prefix, agents)
}

// envOptions are the Environment fields a scenario sets.
type envOptions struct {
	rpm    int32
	policy agentsv1alpha1.PublishPolicy
	drift  time.Duration // 0: the default (10m)
	token  string        // "": simToken
}

// setupNamespace creates a namespace with the token Secret and the
// Environment pointing at sim.
func (b *bench) setupNamespace(ctx context.Context, ns string, sim *apisim.Server, o envOptions) error {
	if err := b.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	token := o.token
	if token == "" {
		token = simToken
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tokenSecret}, StringData: map[string]string{"token": token}}
	if err := b.k8s.Create(ctx, secret); err != nil {
		return fmt.Errorf("creating the token Secret in %s: %w", ns, err)
	}
	rpm := o.rpm
	env := &agentsv1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: envName},
		Spec: agentsv1alpha1.EnvironmentSpec{
			APIURL:            sim.URL(),
			TokenSecretRef:    agentsv1alpha1.TokenSecretReference{Name: tokenSecret},
			RequestsPerMinute: &rpm,
			PublishPolicy:     o.policy,
		},
	}
	if o.drift > 0 {
		env.Spec.DriftCheckInterval = &metav1.Duration{Duration: o.drift}
	}
	b.own.add(keyEnvMain)
	if err := b.k8s.Create(ctx, env); err != nil {
		return fmt.Errorf("creating the Environment in %s: %w", ns, err)
	}
	return nil
}

// newAction returns AgentAction i of a scenario: a webhook on agent
// agents[i % len(agents)], so every agent changes until the end of the
// rollout.
func newAction(ns string, i int, agents []string) *agentsv1alpha1.AgentAction {
	node := fmt.Sprintf("node-%05d", i)
	return &agentsv1alpha1.AgentAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("action-%05d", i)},
		Spec: agentsv1alpha1.AgentActionSpec{
			EnvironmentRef: agentsv1alpha1.EnvironmentReference{Name: envName},
			AgentID:        agents[i%len(agents)],
			NodeID:         node,
			Name:           "Benchmark action " + node,
			Description:    "Look up the customer's order " + node + " and read back its status.",
			Type:           agentsv1alpha1.ActionTypeWebhook,
			URL:            "https://api.example.com/orders/" + node,
			CurrentStatus:  "active",
		},
	}
}

// createActions creates n AgentActions with createWorkers goroutines and
// calls created (if not nil) with each created object. It returns when all
// are created.
func (b *bench) createActions(ctx context.Context, ns string, n int, agents []string, created func(*agentsv1alpha1.AgentAction)) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, b.cfg.createWorkers)
	for range b.cfg.createWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				a := newAction(ns, i, agents)
				b.own.add(keyActionMain)
				if err := b.k8s.Create(ctx, a); err != nil {
					errs <- fmt.Errorf("creating AgentAction %s/%s: %w", ns, a.Name, err)
					next.Store(int64(n)) // stop the others
					return
				}
				if created != nil {
					created(a)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// isReady reports whether an AgentAction is Ready for its current
// generation.
func isReady(a *agentsv1alpha1.AgentAction) bool {
	c := findCondition(a.Status.Conditions, agentsv1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == a.Generation &&
		a.Status.ObservedGeneration == a.Generation
}

// isPublished reports whether an AgentAction reports its agent published.
func isPublished(a *agentsv1alpha1.AgentAction) bool {
	c := findCondition(a.Status.Conditions, agentsv1alpha1.ConditionAgentPublished)
	return c != nil && c.Status == metav1.ConditionTrue
}

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// waitActions polls the cache until n AgentActions of ns satisfy ok, and
// returns the time of the poll that saw it. On timeout the error says how
// many were missing and shows a few of them.
func (b *bench) waitActions(ctx context.Context, ns string, n int, what string,
	ok func(*agentsv1alpha1.AgentAction) bool, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		var list agentsv1alpha1.AgentActionList
		if err := b.cache.List(ctx, &list, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil && ctx.Err() == nil {
			return time.Time{}, err
		}
		now := time.Now()
		var missing []string
		for i := range list.Items {
			if !ok(&list.Items[i]) {
				missing = append(missing, describe(&list.Items[i]))
			}
		}
		done := len(list.Items) - len(missing)
		if len(list.Items) >= n && done >= n {
			return now, nil
		}
		select {
		case <-ctx.Done():
			if len(missing) > 5 {
				missing = missing[:5]
			}
			return time.Time{}, fmt.Errorf("%d of %d AgentActions in %s %s after %s (%d exist); for example: %s",
				done, n, ns, what, timeout, len(list.Items), strings.Join(missing, "; "))
		case <-tick.C:
		}
	}
}

// describe summarises an AgentAction's Ready condition for error messages.
func describe(a *agentsv1alpha1.AgentAction) string {
	c := findCondition(a.Status.Conditions, agentsv1alpha1.ConditionReady)
	if c == nil {
		return a.Name + ": no Ready condition"
	}
	return fmt.Sprintf("%s: Ready=%s %s (%s)", a.Name, c.Status, c.Reason, c.Message)
}

// waitCount polls the cache until ns holds exactly n AgentActions.
func (b *bench) waitCount(ctx context.Context, ns string, n int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var list agentsv1alpha1.AgentActionList
		if err := b.cache.List(ctx, &list, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil && ctx.Err() == nil {
			return err
		}
		if len(list.Items) == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s holds %d AgentActions after %s, want %d", ns, len(list.Items), timeout, n)
		case <-time.After(pollInterval):
		}
	}
}

// waitSim polls cond (which reads the simulator) until it holds.
func waitSim(ctx context.Context, what string, timeout time.Duration, cond func() (bool, string)) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, detail := cond()
		if ok {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s: not done after %s: %s", what, timeout, detail)
		case <-time.After(pollInterval):
		}
	}
}

// allPublished returns a simulator condition: every agent was published at
// least min[agent]+1 times in all and is published now.
func allPublished(sim *apisim.Server, agents []string, before map[string]int) func() (bool, string) {
	return func() (bool, string) {
		var waiting []string
		for _, id := range agents {
			st, ok := sim.Agent(id)
			if !ok || st.Publishes <= before[id] || st.Status != apisim.AgentPublished {
				waiting = append(waiting, fmt.Sprintf("%s (%s, %d publishes)", id, st.Status, st.Publishes))
			}
		}
		if len(waiting) == 0 {
			return true, ""
		}
		if len(waiting) > 5 {
			waiting = append(waiting[:5], "...")
		}
		return false, "agents not yet published: " + strings.Join(waiting, ", ")
	}
}

// publishCounts returns each agent's publish count.
func publishCounts(sim *apisim.Server, agents []string) map[string]int {
	out := map[string]int{}
	for _, id := range agents {
		st, _ := sim.Agent(id)
		out[id] = st.Publishes
	}
	return out
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// apiCounts are the simulator's request counts by endpoint.
type apiCounts struct {
	upsert, list, del, getAgent, publish, unpublish, other, tooMany int
}

func countsOf(sim *apisim.Server) apiCounts {
	c := apiCounts{
		upsert: sim.Count(apisim.RouteUpsert), list: sim.Count(apisim.RouteList),
		del: sim.Count(apisim.RouteDelete), getAgent: sim.Count(apisim.RouteGetAgent),
		publish: sim.Count(apisim.RoutePublish), unpublish: sim.Count(apisim.RouteUnpublish),
		other: sim.Count(""), tooMany: sim.CountStatus(http.StatusTooManyRequests),
	}
	return c
}

func (c apiCounts) sub(o apiCounts) apiCounts {
	return apiCounts{
		upsert: c.upsert - o.upsert, list: c.list - o.list, del: c.del - o.del, getAgent: c.getAgent - o.getAgent,
		publish: c.publish - o.publish, unpublish: c.unpublish - o.unpublish, other: c.other - o.other,
		tooMany: c.tooMany - o.tooMany,
	}
}

func (c apiCounts) total() int {
	return c.upsert + c.list + c.del + c.getAgent + c.publish + c.unpublish + c.other
}

// writes are the calls that change the remote state.
func (c apiCounts) writes() int { return c.upsert + c.del + c.publish + c.unpublish }
