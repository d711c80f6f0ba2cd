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
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
)

const (
	// tenantBEnv and tenantBToken are tenant B's simulator environment in
	// scenario 6; tenant A uses simEnv and simToken.
	tenantBEnv   = "bench-tenant-b"
	tenantBToken = "talq_bench_token_tenant_b_0123456789"
)

// never stands for a change that did not get there within the deadline.
const never = time.Duration(math.MaxInt64)

// tenantChange is one of tenant B's changes in scenario 6 and what came of
// it.
type tenantChange struct {
	name, agent, actionID string
	gen                   int64
	at                    time.Time
	// toReady is from the change to Ready=True at its generation, and
	// toPublish from the change to the first publish of its agent after
	// the simulator accepted the change's upsert; never when not seen.
	toReady, toPublish time.Duration
}

// tenantsRun is what scenario 6 sets up and measures.
type tenantsRun struct {
	sim              *apisim.Server
	agentsA, agentsB []string
	nsA, nsB         string
	// neededA is the number of calls tenant A's rollout needs, and bound
	// its lower bound: neededA at the rate of the budget.
	neededA int
	bound   time.Duration
	changes []tenantChange
	// changesFrom is when tenant B's changes may start; zero for at once.
	changesFrom time.Time
	// start is tenant A's first create, and created how long the creates
	// took.
	start   time.Time
	created time.Duration
	// firstChange and lastChange are when tenant B made its first and last
	// change, and waitingA how many of tenant A's AgentActions were not
	// Ready at the last.
	firstChange, lastChange time.Time
	waitingA                int
	// readyAt is when all of tenant A's AgentActions were Ready, and wallA
	// the time from the first create to all Ready and all agents
	// published.
	readyAt time.Time
	wallA   time.Duration
	reqs    []apisim.Request
	writes  kubeCounts
	st      procStats
}

// scenario6 is two tenants on one operator: tenant A's backlog at its
// budget must not slow tenant B.
func (b *bench) scenario6(ctx context.Context, t *table) error {
	r, err := b.setupTenants(ctx, t)
	if err != nil {
		return err
	}
	if err := b.prepareTenantB(ctx, t, r); err != nil {
		return err
	}
	watch, stopWatch, err := b.watchReady(ctx, r.nsB)
	if err != nil {
		return err
	}
	defer stopWatch()
	if err := b.measureTenants(ctx, r, watch); err != nil {
		return err
	}
	b.reportTenants(t, r)
	return nil
}

// setupTenants makes scenario 6's simulator, with an environment and agents
// for each tenant, and the namespace of each tenant.
func (b *bench) setupTenants(ctx context.Context, t *table) (*tenantsRun, error) {
	sz := b.sz
	nA, aAgents, rpm := sz.s6AActions, sz.s6AAgents, sz.s6RPM
	bAgents, every := sz.s6BAgents, sz.s6BEvery
	r := &tenantsRun{nsA: "bench-s6-a", nsB: "bench-s6-b"}
	r.sim, r.agentsA = b.newSim("s6a", aAgents, apisim.WithRateLimit(rpm))
	r.sim.AddEnvironment(tenantBEnv, tenantBToken)
	r.agentsB = addAgents(r.sim, tenantBEnv, "s6b", bAgents)
	if err := b.setupNamespace(ctx, r.nsA, r.sim, envOptions{rpm: int32(rpm), policy: agentsv1alpha1.PublishPolicyAuto}); err != nil {
		return nil, err
	}
	if err := b.setupNamespace(ctx, r.nsB, r.sim,
		envOptions{rpm: int32(rpm), policy: agentsv1alpha1.PublishPolicyAuto, token: tenantBToken}); err != nil {
		return nil, err
	}
	r.neededA = nA + 2*aAgents
	r.bound = time.Duration(float64(r.neededA) / float64(rpm) * float64(time.Minute))
	t.note("Tenants A (namespace %s) and B (namespace %s): each its own Environment, token Secret and simulator environment, "+
		"on one simulator that limits every token to %d/min with 429; both Environments: publishPolicy Auto, requestsPerMinute %d.",
		r.nsA, r.nsB, rpm, rpm)
	t.note("B's AgentAction i belongs to agent i mod %d; change j edits the description of AgentAction j (one change per AgentAction), "+
		"so each agent of B changes every %s, more than the default 5s --publish-quiet-period.", bAgents, time.Duration(bAgents)*every)
	return r, nil
}

// prepareTenantB makes tenant B's initial rollout, not measured, lists the
// changes B will make and decides when they may start. It then resets the
// simulator's request log.
func (b *bench) prepareTenantB(ctx context.Context, t *table, r *tenantsRun) error {
	nA, nB, bAgents, rpm := b.sz.s6AActions, b.sz.s6BChanges, b.sz.s6BAgents, b.sz.s6RPM
	if err := b.initialRollout(ctx, r.nsB, r.sim, r.agentsB, nB); err != nil {
		return fmt.Errorf("tenant B's initial rollout: %w", err)
	}
	changes, err := tenantChanges(r.sim, r.nsB, r.agentsB, nB)
	if err != nil {
		return err
	}
	r.changes = changes
	// B's changes may start at once unless the initial rollout and the
	// changes (an upsert, an agent read and a publish each) would not fit
	// one window of B's budget: then they wait until the initial rollout's
	// calls have left the simulator's window, so B is paced by A or not
	// at all, never by its own budget.
	initCalls := nB + 2*bAgents
	if initCalls+3*nB > rpm {
		last := lastRequest(r.sim.Requests(), tenantBEnv)
		r.changesFrom = last.Add(time.Minute + time.Second)
		t.note("B's initial rollout (%d calls) and its changes (%d calls) would exceed B's %d/min, "+
			"so the changes start 61 s after the initial rollout's last call.", initCalls, 3*nB, rpm)
	}
	b.logf("  tenant B's initial rollout of %d AgentActions done; creating tenant A's %d", nB, nA)
	r.sim.Reset()
	return nil
}

// tenantChanges returns the n changes of tenant B, one for each of its
// AgentActions in ns, with the IDs the simulator gave their actions.
func tenantChanges(sim *apisim.Server, ns string, agents []string, n int) ([]tenantChange, error) {
	changes := make([]tenantChange, n)
	for i := range changes {
		a := newAction(ns, i, agents)
		act, ok := sim.ActionByNodeID(a.Spec.AgentID, a.Spec.NodeID)
		if !ok {
			return nil, fmt.Errorf("tenant B's action %s is not in the simulator after the initial rollout", a.Spec.NodeID)
		}
		changes[i] = tenantChange{name: a.Name, agent: a.Spec.AgentID, actionID: act.ID}
	}
	return changes, nil
}

// measureTenants is the measured part of scenario 6: tenant A's rollout
// with tenant B's changes during it, until both are done and a little
// longer. It records the API calls, the Kubernetes writes and the
// manager's resources of that window.
func (b *bench) measureTenants(ctx context.Context, r *tenantsRun, watch *readyWatch) error {
	pubs0 := publishCounts(r.sim, r.agentsA)
	pw := b.beginProc()
	k0, err := b.kubeWrites(ctx)
	if err != nil {
		return err
	}
	if err := b.runTenants(ctx, r); err != nil {
		return err
	}
	if err := b.waitTenantA(ctx, r, pubs0); err != nil {
		return err
	}
	b.waitTenantB(ctx, r, watch)
	if _, err := b.waitActions(ctx, r.nsA, b.sz.s6AActions, "reporting AgentPublished=True", isPublished, time.Minute); err != nil {
		return fmt.Errorf("tenant A: %w", err)
	}
	// Watch a little longer: a late or repeated call would show here.
	if err := sleepCtx(ctx, 5*time.Second); err != nil {
		return err
	}
	r.reqs = r.sim.Requests()
	measureChanges(r.changes, watch, r.reqs)
	k1, err := b.kubeWrites(ctx)
	if err != nil {
		return err
	}
	r.st = pw.end()
	r.writes = k1.sub(k0)
	return nil
}

// runTenants creates tenant A's AgentActions, then makes tenant B's
// changes, one every s6BEvery from changesFrom on, and records when.
func (b *bench) runTenants(ctx context.Context, r *tenantsRun) error {
	nA, nB, every := b.sz.s6AActions, b.sz.s6BChanges, b.sz.s6BEvery
	r.start = time.Now()
	if err := b.createActions(ctx, r.nsA, nA, r.agentsA, nil); err != nil {
		return err
	}
	r.created = time.Since(r.start)
	if err := sleepCtx(ctx, time.Until(r.changesFrom)); err != nil {
		return err
	}
	b.logf("  tenant A's %d AgentActions created in %s; tenant B makes %d changes, one every %s", nA, secs(r.created), nB, every)
	r.firstChange = time.Now()
	for j := range r.changes {
		if err := sleepCtx(ctx, time.Until(r.firstChange.Add(time.Duration(j)*every))); err != nil {
			return err
		}
		if err := b.changeAction(ctx, r.nsB, j, &r.changes[j]); err != nil {
			return err
		}
	}
	r.lastChange = time.Now()
	r.waitingA = b.countNot(r.nsA, isReady)
	return nil
}

// waitTenantA waits, within scenario 6's deadline, until all of tenant A's
// AgentActions are Ready and all its agents published, and records when.
func (b *bench) waitTenantA(ctx context.Context, r *tenantsRun, pubs0 map[string]int) error {
	nA := b.sz.s6AActions
	deadline := 3*r.bound + 2*time.Minute
	readyAt, err := b.waitActions(ctx, r.nsA, nA, "Ready", isReady, deadline-time.Since(r.start))
	if err != nil {
		return fmt.Errorf("tenant A: %w", err)
	}
	b.logf("  tenant A: %d Ready after %s; waiting for the publishes", nA, secs(readyAt.Sub(r.start)))
	publishedAt, err := waitSim(ctx, "publishing tenant A's agents", deadline-time.Since(r.start), allPublished(r.sim, r.agentsA, pubs0))
	if err != nil {
		return fmt.Errorf("tenant A: %w", err)
	}
	doneA := publishedAt
	if readyAt.After(doneA) {
		doneA = readyAt
	}
	r.readyAt, r.wallA = readyAt, doneA.Sub(r.start)
	return nil
}

// waitTenantB waits a minute at most for tenant B's changes to be Ready
// and published, and logs those that are not.
func (b *bench) waitTenantB(ctx context.Context, r *tenantsRun, watch *readyWatch) {
	// B has had all of A's rollout; a minute more is for the last publish.
	_, errB := waitSim(ctx, "tenant B's changes Ready and published", time.Minute, changesDone(r.changes, watch, r.sim))
	if errB != nil {
		b.logf("  tenant B: %v", errB)
	}
}

// changesDone returns the condition, for waitSim, that all the changes are
// Ready and published; it measures them as it goes and names the first
// five that are not.
func changesDone(changes []tenantChange, watch *readyWatch, sim *apisim.Server) func() (bool, string) {
	return func() (bool, string) {
		measureChanges(changes, watch, sim.Requests())
		var waiting []string
		for _, c := range changes {
			if c.toReady == never || c.toPublish == never {
				waiting = append(waiting, c.name)
			}
		}
		if len(waiting) > 5 {
			waiting = append(waiting[:5], "...")
		}
		return len(waiting) == 0, "not yet Ready and published: " + strings.Join(waiting, ", ")
	}
}

// reportTenants adds scenario 6's rows to t.
func (b *bench) reportTenants(t *table, r *tenantsRun) {
	nA, aAgents, nB := b.sz.s6AActions, b.sz.s6AAgents, b.sz.s6BChanges
	t.info("tenant A: AgentActions created by the benchmark in", "%s", secs(r.created))
	t.info("tenant B: changes made, from / to (after A's first create)", "%d, %s / %s",
		nB, secs(r.firstChange.Sub(r.start)), secs(r.lastChange.Sub(r.start)))
	t.info("tenant A: AgentActions not yet Ready at B's last change", "%d of %d", r.waitingA, nA)
	if r.waitingA == 0 {
		t.note("A's backlog had drained before B's last change: this run does not measure B behind A's backlog.")
	}
	reportChanges(t, r.changes)
	t.info("tenant A: calls needed: POSTs + agent reads + publishes", "%d + %d + %d = %d", nA, aAgents, aAgents, r.neededA)
	t.info("tenant A: lower bound: calls needed / rate", "%s", secs(r.bound))
	t.checkBound("tenant A: wall time, first create to all Ready and all agents published", r.wallA, r.bound)
	t.info("  ratio to the lower bound", "%.3f", float64(r.wallA)/float64(r.bound))
	t.info("  all Ready at", "%s", secs(r.readyAt.Sub(r.start)))
	reportTenantCalls(t, r.reqs, b.sz.s6RPM)
	t.writes("", r.writes)
	t.writesPerAction("", "", nA+nB, "created or changed", r.writes)
	t.proc(r.st, 0)
}

// reportChanges adds the rows of tenant B's times to Ready and to publish
// per change to t.
func reportChanges(t *table, changes []tenantChange) {
	nB := len(changes)
	toReady, toPublish := make([]time.Duration, nB), make([]time.Duration, nB)
	for i, c := range changes {
		toReady[i], toPublish[i] = c.toReady, c.toPublish
	}
	slices.Sort(toReady)
	slices.Sort(toPublish)

	p99 := percentile(toReady, 0.99)
	t.info("tenant B: time to Ready per change, p50", "%s", durString(percentile(toReady, 0.50)))
	t.check("tenant B: time to Ready per change, p99", durString(p99), "< 2 s", p99 < 2*time.Second)
	t.info("tenant B: time to Ready per change, max", "%s", durString(toReady[nB-1]))
	if n := countNever(toReady); n > 0 {
		t.info("  tenant B: changes never Ready at their generation", "%d of %d", n, nB)
	}
	t.info("tenant B: agent publish latency per change, p50 / p99 / max", "%s / %s / %s",
		durString(percentile(toPublish, 0.50)), durString(percentile(toPublish, 0.99)), durString(toPublish[nB-1]))
	if n := countNever(toPublish); n > 0 {
		t.info("  tenant B: changes whose agent was not published after them", "%d of %d", n, nB)
	}
}

// reportTenantCalls adds the rows of each tenant's API calls, 429s and
// busiest 60 s window against its limit of rpm to t.
func reportTenantCalls(t *table, reqs []apisim.Request, rpm int) {
	apiA, apiB := countsFor(reqs, simEnv), countsFor(reqs, tenantBEnv)
	t.check("tenant A: 429 answers received", fmt.Sprint(apiA.tooMany), "= 0", apiA.tooMany == 0)
	t.check("tenant B: 429 answers received", fmt.Sprint(apiB.tooMany), "= 0", apiB.tooMany == 0)
	for _, tn := range []struct {
		name, env string
		api       apiCounts
		limit     int
	}{{"tenant A", simEnv, apiA, rpm}, {"tenant B", tenantBEnv, apiB, rpm}} {
		t.info(tn.name+": API calls, total", "%d", tn.api.total())
		t.callsWith("  "+tn.name+": ", tn.api)
		peak, first := windowPeak(onlyEnv(reqs, tn.env), time.Minute)
		t.info(tn.name+": most requests the simulator saw in any 60 s window", "%d (limit %d)", peak, tn.limit)
		for _, r := range tooManyRequests(onlyEnv(reqs, tn.env), first, time.Minute) {
			t.info("  a 429", "%s", r)
		}
	}
}

// addAgents adds n agents of env to sim, published and ready to publish,
// and returns their IDs.
func addAgents(s *apisim.Server, env, prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-agent-%02d", prefix, i)
		s.AddAgent(env, ids[i], apisim.AgentOptions{Name: "Benchmark agent " + ids[i], Published: true})
	}
	return ids
}

// changeAction edits the description of AgentAction j of ns (a spec
// change: a new generation) and records the change in c.
func (b *bench) changeAction(ctx context.Context, ns string, j int, c *tenantChange) error {
	a := &agentsv1alpha1.AgentAction{}
	if err := b.cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: c.name}, a); err != nil {
		return fmt.Errorf("reading AgentAction %s/%s: %w", ns, c.name, err)
	}
	before := a.DeepCopy()
	a.Spec.Description = fmt.Sprintf("%s (change %d)", newAction(ns, j, []string{c.agent}).Spec.Description, j)
	c.at = time.Now()
	b.own.add(keyActionMain)
	if err := b.k8s.Patch(ctx, a, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("changing AgentAction %s/%s: %w", ns, c.name, err)
	}
	c.gen = a.Generation
	return nil
}

// readyKey is an AgentAction at one generation.
type readyKey struct {
	name string
	gen  int64
}

// readyWatch records when the benchmark's cache first saw each
// AgentAction of a namespace Ready at a generation. An event handler on
// the watch-fed cache, not polling: the time is that of the watch event.
type readyWatch struct {
	mu sync.Mutex
	at map[readyKey]time.Time
}

func (w *readyWatch) get(name string, gen int64) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.at[readyKey{name: name, gen: gen}]
	return at, ok
}

// watchReady starts recording the Ready times of the AgentActions of ns;
// call the returned function to stop.
func (b *bench) watchReady(ctx context.Context, ns string) (*readyWatch, func(), error) {
	inf, err := b.cache.GetInformer(ctx, &agentsv1alpha1.AgentAction{})
	if err != nil {
		return nil, nil, err
	}
	w := &readyWatch{at: map[readyKey]time.Time{}}
	see := func(obj any) {
		a, ok := obj.(*agentsv1alpha1.AgentAction)
		if !ok || a.Namespace != ns || !isReady(a) {
			return
		}
		now := time.Now()
		k := readyKey{name: a.Name, gen: a.Generation}
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, seen := w.at[k]; !seen {
			w.at[k] = now
		}
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    see,
		UpdateFunc: func(_, obj any) { see(obj) },
	})
	if err != nil {
		return nil, nil, err
	}
	return w, func() { _ = inf.RemoveEventHandler(reg) }, nil
}

// measureChanges fills in the times to Ready and to publish of the changes
// from the watch and the simulator's request log.
func measureChanges(changes []tenantChange, w *readyWatch, reqs []apisim.Request) {
	for i := range changes {
		c := &changes[i]
		c.toReady, c.toPublish = never, never
		if c.at.IsZero() {
			continue
		}
		if at, ok := w.get(c.name, c.gen); ok {
			c.toReady = at.Sub(c.at)
		}
		push, ok := firstRequest(reqs, tenantBEnv, c.at, func(r apisim.Request) bool {
			return r.Route == apisim.RouteUpsert && r.ActionID == c.actionID
		})
		if !ok {
			continue
		}
		if pub, ok := firstRequest(reqs, tenantBEnv, push.Time, func(r apisim.Request) bool {
			return r.Route == apisim.RoutePublish && r.AgentID == c.agent && r.Time.After(push.Time)
		}); ok {
			c.toPublish = pub.Time.Sub(c.at)
		}
	}
}

// firstRequest returns the first request of env at or after from that was
// answered 2xx and matches.
func firstRequest(reqs []apisim.Request, env string, from time.Time, match func(apisim.Request) bool) (apisim.Request, bool) {
	var first apisim.Request
	found := false
	for _, r := range reqs {
		if r.Env != env || r.Time.Before(from) || r.Status < 200 || r.Status > 299 || !match(r) {
			continue
		}
		if !found || r.Time.Before(first.Time) {
			first, found = r, true
		}
	}
	return first, found
}

// lastRequest returns the arrival time of env's last request.
func lastRequest(reqs []apisim.Request, env string) time.Time {
	var last time.Time
	for _, r := range reqs {
		if r.Env == env && r.Time.After(last) {
			last = r.Time
		}
	}
	return last
}

// onlyEnv returns the requests of one simulator environment (one tenant).
func onlyEnv(reqs []apisim.Request, env string) []apisim.Request {
	var out []apisim.Request
	for _, r := range reqs {
		if r.Env == env {
			out = append(out, r)
		}
	}
	return out
}

// countsFor counts the requests of one simulator environment by route, as
// countsOf does for a whole simulator.
func countsFor(reqs []apisim.Request, env string) apiCounts {
	var c apiCounts
	for _, r := range onlyEnv(reqs, env) {
		switch r.Route {
		case apisim.RouteUpsert:
			c.upsert++
		case apisim.RouteList:
			c.list++
		case apisim.RouteDelete:
			c.del++
		case apisim.RouteGetAgent:
			c.getAgent++
		case apisim.RoutePublish:
			c.publish++
		case apisim.RouteUnpublish:
			c.unpublish++
		default:
			c.other++
		}
		if r.Status == http.StatusTooManyRequests {
			c.tooMany++
		}
	}
	return c
}

// countNot counts the AgentActions of ns in the cache that do not satisfy
// ok.
func (b *bench) countNot(ns string, ok func(*agentsv1alpha1.AgentAction) bool) int {
	var list agentsv1alpha1.AgentActionList
	if err := b.cache.List(context.Background(), &list, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return -1
	}
	n := 0
	for i := range list.Items {
		if !ok(&list.Items[i]) {
			n++
		}
	}
	return n
}

// percentile returns the nearest-rank percentile p (0 < p ≤ 1) of sorted
// durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return never
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// countNever counts the durations that are never.
func countNever(d []time.Duration) int {
	n := 0
	for _, v := range d {
		if v == never {
			n++
		}
	}
	return n
}

// durString formats a duration in seconds, or says it was never reached.
func durString(d time.Duration) string {
	if d == never {
		return "not reached"
	}
	return secs(d)
}
