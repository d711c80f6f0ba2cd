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
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
)

// maxProblems bounds the problems listed by one check.
const maxProblems = 15

// problems compares the cluster and the simulator with the model and lists
// what is wrong (empty when everything converged):
//   - every remaining AgentAction is Ready for its generation, holds the
//     finalizer, and its remote action (found by node_id) has its status.id
//     and matches its spec;
//   - every deleted AgentAction is gone (no stuck finalizer) and, unless its
//     policy is Orphan, so is its remote action;
//   - no (agent, node_id) has two remote actions, and no remote action is
//     unaccounted for;
//   - every agent is published (publishPolicy Auto; all were published).
func (w *world) problems(ctx context.Context, m *model) []string {
	var out []string
	add := func(format string, args ...any) {
		if len(out) < maxProblems {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	items := m.snapshot()
	var list agentsv1alpha1.AgentActionList
	if err := w.cp.Client.List(ctx, &list, client.InNamespace(w.ns)); err != nil {
		return []string{"listing AgentActions: " + err.Error()}
	}
	objs := map[string]*agentsv1alpha1.AgentAction{}
	for i := range list.Items {
		objs[list.Items[i].Name] = &list.Items[i]
	}
	// owners maps agent/node to the item that may own a remote action.
	owners := map[string]item{}
	for _, it := range items {
		if !it.created {
			continue
		}
		obj := objs[it.name]
		switch {
		case it.deleted:
			w.checkDeleted(it, obj, add)
			if it.policy == agentsv1alpha1.DeletionPolicyOrphan {
				owners[it.agent+"/"+it.node] = it
			}
		default:
			w.checkLive(it, obj, add)
			owners[it.agent+"/"+it.node] = it
		}
	}
	for _, agent := range w.agents {
		w.checkAgent(agent, owners, add)
	}
	return out
}

// checkLive checks one remaining AgentAction and its remote action.
func (w *world) checkLive(it item, obj *agentsv1alpha1.AgentAction, add func(string, ...any)) {
	if obj == nil {
		add("%s: missing from the cluster", it.name)
		return
	}
	want := it.spec()
	if !equality.Semantic.DeepEqual(obj.Spec, want) {
		add("%s: spec differs from the last one written (generation %d)", it.name, obj.Generation)
	}
	if !controllerutil.ContainsFinalizer(obj, agentsv1alpha1.AgentActionFinalizer) {
		add("%s: no finalizer", it.name)
	}
	ready := meta(obj, agentsv1alpha1.ConditionReady)
	switch {
	case ready == nil:
		add("%s: no Ready condition", it.name)
		return
	case ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != obj.Generation || obj.Status.ObservedGeneration != obj.Generation:
		add("%s: Ready=%s (%s) for generation %d/%d of %d: %s", it.name, ready.Status, ready.Reason,
			ready.ObservedGeneration, obj.Status.ObservedGeneration, obj.Generation, ready.Message)
		return
	}
	remote, ok := w.sim.ActionByNodeID(it.agent, it.node)
	if !ok {
		add("%s: Ready, but the simulator has no action for %s/%s", it.name, it.agent, it.node)
		return
	}
	if obj.Status.ID != remote.ID {
		add("%s: status.id %q, but the remote action of %s is %q", it.name, obj.Status.ID, it.node, remote.ID)
	}
	if diff := remoteDiff(want, remote); diff != "" {
		add("%s: the remote action differs from the spec: %s", it.name, diff)
	}
}

// checkDeleted checks that a deleted AgentAction is gone, and its remote
// action too unless the policy is Orphan.
func (w *world) checkDeleted(it item, obj *agentsv1alpha1.AgentAction, add func(string, ...any)) {
	if obj != nil {
		add("%s: deleted, but still in the cluster (finalizers %v, Ready reason %q)", it.name,
			obj.Finalizers, reason(obj))
	}
	if it.policy == agentsv1alpha1.DeletionPolicyOrphan {
		return
	}
	if remote, ok := w.sim.ActionByNodeID(it.agent, it.node); ok {
		add("%s: deleted with policy Delete, but its remote action %s (%s/%s) is still there", it.name, remote.ID, it.agent, it.node)
	}
}

// checkAgent checks the remote actions of one agent: no duplicate node_id,
// no action without an owner, and the agent published.
func (w *world) checkAgent(agent string, owners map[string]item, add func(string, ...any)) {
	seen := map[string]int{}
	for _, a := range w.sim.Actions(agent) {
		seen[a.NodeID]++
		if seen[a.NodeID] == 2 {
			add("agent %s: two remote actions with node_id %s", agent, a.NodeID)
		}
		if _, ok := owners[agent+"/"+a.NodeID]; !ok {
			add("agent %s: remote action %s (node_id %s) belongs to no remaining AgentAction", agent, a.ID, a.NodeID)
		}
	}
	st, ok := w.sim.Agent(agent)
	if !ok || st.Status != apisim.AgentPublished {
		add("agent %s: status %q, want %q (publishPolicy Auto, published before)", agent, st.Status, apisim.AgentPublished)
	}
}

// remoteDiff compares the fields the simulator stores with the spec.
func remoteDiff(want agentsv1alpha1.AgentActionSpec, got apisim.Action) string {
	var diffs []string
	cmp := func(field, w, g string) {
		if w != g {
			diffs = append(diffs, fmt.Sprintf("%s %q, want %q", field, g, w))
		}
	}
	cmp("name", want.Name, got.Name)
	cmp("description", want.Description, got.Description)
	cmp("type", string(want.Type), got.Type)
	cmp("url", want.URL, got.URL)
	cmp("transfer_to", want.TransferTo, got.TransferTo)
	cmp("current_status", string(want.CurrentStatus), got.CurrentStatus)
	cmp("execution_mode", "during_call", got.ExecutionMode)
	cmp("authorization_scheme", "none", got.AuthorizationScheme)
	var wantHold, gotHold string
	if want.HoldDuration != nil {
		wantHold = fmt.Sprint(*want.HoldDuration)
	}
	if got.HoldDuration != nil {
		gotHold = fmt.Sprint(*got.HoldDuration)
	}
	cmp("hold_duration", wantHold, gotHold)
	return strings.Join(diffs, "; ")
}

func meta(obj *agentsv1alpha1.AgentAction, condType string) *metav1.Condition {
	for i := range obj.Status.Conditions {
		if obj.Status.Conditions[i].Type == condType {
			return &obj.Status.Conditions[i]
		}
	}
	return nil
}

func reason(obj *agentsv1alpha1.AgentAction) string {
	if c := meta(obj, agentsv1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// routeStats are the calls of one route.
type routeStats struct {
	calls, ok, injected, other int
	// byFault counts injected failures by kind.
	byFault map[string]int
}

// callStats groups the simulator's request log by route.
func callStats(reqs []apisim.Request) map[string]*routeStats {
	stats := map[string]*routeStats{}
	for _, r := range reqs {
		s, ok := stats[r.Route]
		if !ok {
			s = &routeStats{byFault: map[string]int{}}
			stats[r.Route] = s
		}
		s.calls++
		switch {
		case r.Fault != "" && r.Fault != apisim.FaultLatency:
			s.injected++
			s.byFault[r.Fault]++
		case r.Status >= 200 && r.Status < 300:
			s.ok++
		default:
			s.other++
		}
	}
	return stats
}

// report logs the figures of the run: what was done, the calls made by
// route against the minimum needed, and the manager's restarts.
func (w *world) report(m *model, chaos, converge time.Duration) {
	stats := callStats(w.sim.Requests())
	get := func(route string) *routeStats {
		if s, ok := stats[route]; ok {
			return s
		}
		return &routeStats{byFault: map[string]int{}}
	}
	publishes := 0
	for _, a := range w.agents {
		st, _ := w.sim.Agent(a)
		publishes += st.Publishes
	}
	// The naive minimum counts every create and update; the operator may
	// skip a revision superseded (or deleted) before it could push it, so
	// the minimum given the timing counts: each AgentAction pushed at least
	// once (the remaining ones, and the deleted ones that recorded a remote
	// action), plus each update made while the previous revision was Ready.
	minPosts := m.creates + m.updates
	timedPosts := m.creates - m.deletes + m.deletesSynced + m.updatesAfterSync
	minimum := map[string]string{
		apisim.RouteUpsert: fmt.Sprintf("%d (creates + updates); %d given the timing", minPosts, timedPosts),
		apisim.RouteDelete: fmt.Sprintf("%d (deletes with policy Delete); %d given the timing (pushed before the delete)",
			m.deletesRemote, m.deletesNeeded),
		apisim.RoutePublish:  fmt.Sprintf("%d (one per agent)", len(w.agents)),
		apisim.RouteGetAgent: fmt.Sprintf("%d (one per rollout = per successful publish)", publishes),
		apisim.RouteList:     "0 (drift checks off)",
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n=== chaos report (%s run, seed %d) ===\n", w.sz.name, w.seed)
	fmt.Fprintf(&b, "workload: %d AgentActions over %d agents (%d with deletionPolicy Orphan); %d creates, %d spec updates, %d deletes (%d with policy Delete)\n",
		len(m.items), len(w.agents), countOrphans(m), m.creates, m.updates, m.deletes, m.deletesRemote)
	fmt.Fprintf(&b, "faults: %s of 20%% 5xx + 5%% resets on every route (the first 2 requests reset), 2 bursts of 429 (up to %d answers within %s, Retry-After %s), "+
		"a %s outage (503), %d SIGKILLs of the manager (%d runs in all, %d exits on its own), 1 kube-apiserver restart (down %s)\n",
		w.sz.period, w.sz.burst, w.sz.burstWindow, w.sz.retryAfter, w.sz.outage, w.sup.kills.Load(), w.mgr.Runs(), w.sup.unexpected.Load(),
		w.apiserverDown.Round(100*time.Millisecond))
	if converge > 0 {
		fmt.Fprintf(&b, "timing: chaos %s, converged %s after the faults were cleared\n", chaos.Round(time.Second), converge.Round(100*time.Millisecond))
	} else {
		fmt.Fprintf(&b, "timing: chaos %s, DID NOT CONVERGE within %s of the end of the faults\n", chaos.Round(time.Second), w.sz.converge)
	}
	fmt.Fprintf(&b, "%-46s %6s %6s %9s %6s  %s\n", "route", "calls", "2xx", "injected", "other", "minimum needed")
	routes := []string{apisim.RouteUpsert, apisim.RouteDelete, apisim.RoutePublish, apisim.RouteGetAgent, apisim.RouteList}
	for r := range stats {
		if !slices.Contains(routes, r) {
			routes = append(routes, r)
		}
	}
	total := routeStats{byFault: map[string]int{}}
	for _, r := range routes {
		s := get(r)
		fmt.Fprintf(&b, "%-46s %6d %6d %9d %6d  %s\n", r, s.calls, s.ok, s.injected, s.other, minimum[r])
		total.calls += s.calls
		total.ok += s.ok
		total.injected += s.injected
		total.other += s.other
		for f, n := range s.byFault {
			total.byFault[f] += n
		}
	}
	fmt.Fprintf(&b, "%-46s %6d %6d %9d %6d\n", "total", total.calls, total.ok, total.injected, total.other)
	faults := make([]string, 0, len(total.byFault))
	for f, n := range total.byFault {
		faults = append(faults, fmt.Sprintf("%s %d", f, n))
	}
	slices.Sort(faults)
	fmt.Fprintf(&b, "injected failures by kind: %s\n", strings.Join(faults, ", "))
	up := get(apisim.RouteUpsert)
	fmt.Fprintf(&b, "successful POSTs %d: %+d vs creates + updates (%d), %+d vs the minimum given the timing (%d)\n",
		up.ok, up.ok-minPosts, minPosts, up.ok-timedPosts, timedPosts)
	accepted, replays, stale := w.pushes.counts()
	afterKill, aroundRestart, otherReplays := w.replayCauses()
	fmt.Fprintf(&b, "of the %d accepted POSTs: %d replays of the body last accepted for that node (the operator had not recorded "+
		"the answer: %d within 15s of a SIGKILL, %d around the kube-apiserver restart, %d at other times), %d re-sends of an older revision\n",
		accepted, replays, afterKill, aroundRestart, otherReplays, stale)
	del := get(apisim.RouteDelete)
	fmt.Fprintf(&b, "successful DELETEs %d: %+d vs the minimum given the timing (%d)\n", del.ok, del.ok-m.deletesNeeded, m.deletesNeeded)
	fmt.Fprintf(&b, "successful publishes %d for %d agents\n", publishes, len(w.agents))
	w.t.Log(b.String())
}

func countOrphans(m *model) int {
	n := 0
	for _, it := range m.snapshot() {
		if it.policy == agentsv1alpha1.DeletionPolicyOrphan {
			n++
		}
	}
	return n
}

// dumpRequests writes the simulator's request log to requests.log in the
// log folder, when it is kept (CHAOS_LOG_DIR).
func (w *world) dumpRequests() {
	if os.Getenv("CHAOS_LOG_DIR") == "" {
		return
	}
	var b strings.Builder
	for _, r := range w.sim.Requests() {
		fmt.Fprintf(&b, "%s %-6s %-46s %-16s %-36s %3d %s\n", r.Time.UTC().Format("15:04:05.000"), r.Method, r.Route,
			r.AgentID, r.ActionID, r.Status, r.Fault)
	}
	path := filepath.Join(w.mgr.LogDir, "requests.log")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		w.t.Logf("writing %s: %v", path, err)
		return
	}
	w.t.Logf("the simulator's request log is in %s", path)
}
