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
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
)

// baselineResult is a baseline program's run of the scenario-2 work.
type baselineResult struct {
	n, workers     int
	wall, created  time.Duration
	posts, patches int64
	// sys is the CPU time of the benchmark process (the baseline runs in
	// it) and of the control plane during the baseline.
	sys sysCPU
}

// baselineMode selects what a baseline does per object.
type baselineMode int

const (
	// minimal: one POST and one status patch (issue 5's baseline).
	minimal baselineMode = iota
	// mimic: the kube-apiserver writes the manager makes per object on a
	// create without rate limit (finalizer patch, POST, status patch; no
	// Event for a first sync; the token Secret is read once and cached), without a
	// controller: a diagnosis of where the manager's time goes, not a
	// target. Keep it in step with the manager (the scenario-2 table shows
	// the manager's real counts).
	mimic
)

// runBaselines runs the minimal baseline and, with -mimic, the mimic.
func (b *bench) runBaselines(ctx context.Context) error {
	res, err := b.runBaseline(ctx, minimal)
	if err != nil {
		return err
	}
	b.baseline = res
	if b.cfg.mimic {
		res, err := b.runBaseline(ctx, mimic)
		if err != nil {
			return err
		}
		b.mimic = res
	}
	return nil
}

// runBaseline does the work of scenario 2 without a controller, before the
// manager starts: the same creates (same goroutines), then per object one
// POST to a simulator with the same latency (plain net/http) and one merge
// patch of its status with a Ready condition, by as many workers as the
// manager has reconcilers. The objects are deleted afterwards so the
// manager never sees them.
func (b *bench) runBaseline(ctx context.Context, mode baselineMode) (*baselineResult, error) {
	n, workers := b.sz.s2Actions, b.cfg.workers
	name, ns := "baseline", "bench-s2-baseline"
	if mode == mimic {
		name, ns = "mimic baseline", "bench-s2-mimic"
		b.logf("Mimic baseline for scenario 2: %d creates, then per object the manager's writes "+
			"(metadata patch, POST with latency %s, status patch), %d workers, no controller", n, b.sz.s2Latency, workers)
	} else {
		b.logf("Baseline for scenario 2: %d creates, then one POST (latency %s) and one status patch per object, %d workers, no controller",
			n, b.sz.s2Latency, workers)
	}
	sim, agents := b.newSim("base", b.sz.s2Agents)
	sim.SetFaults("", apisim.Faults{Latency: b.sz.s2Latency})
	if err := b.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	httpc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 4 * workers, MaxIdleConnsPerHost: 4 * workers, IdleConnTimeout: time.Minute,
	}}
	defer httpc.CloseIdleConnections()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := &baselineResult{n: n, workers: workers}
	objs := make(chan *agentsv1alpha1.AgentAction, n)
	sys0 := b.sysCPU()
	start := time.Now()

	var createErr error
	go func() {
		createErr = b.createActions(ctx, ns, n, agents, func(a *agentsv1alpha1.AgentAction) { objs <- a })
		res.created = time.Since(start)
		close(objs)
	}()
	var posts, patches atomic.Int64
	var wg sync.WaitGroup
	var errOnce sync.Once
	var workErr error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range objs {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := b.baselineOne(ctx, mode, httpc, sim.URL(), a, &posts, &patches); err != nil {
					errOnce.Do(func() { workErr = err; cancel() })
				}
			}
		}()
	}
	wg.Wait()
	res.wall = time.Since(start)
	res.sys = b.sysCPU().sub(sys0)
	res.posts, res.patches = posts.Load(), patches.Load()
	if workErr != nil {
		return nil, workErr
	}
	if createErr != nil {
		return nil, createErr
	}
	b.logf("  %s: %d objects in %s (creates done at %s), %d POSTs, %d status patches; CPU seconds: benchmark %.1f, kube-apiserver+etcd %.1f; machine %.0f%% busy",
		name, n, secs(res.wall), secs(res.created), res.posts, res.patches, res.sys.self, res.sys.controlPlane, res.sys.busyPercent())

	b.own.add(keyActionMain)
	if err := b.k8s.DeleteAllOf(ctx, &agentsv1alpha1.AgentAction{}, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("deleting the %s's AgentActions: %w", name, err)
	}
	return res, b.waitCount(ctx, ns, 0, 3*time.Minute)
}

// baselineOne POSTs one action and patches its status; the mimic adds the
// manager's other requests around them.
func (b *bench) baselineOne(ctx context.Context, mode baselineMode, httpc *http.Client, base string, a *agentsv1alpha1.AgentAction,
	posts, patches *atomic.Int64) error {
	if mode == mimic {
		// A metadata patch standing in for the finalizer (an annotation,
		// so deleting the objects afterwards needs no further write).
		before := a.DeepCopy()
		a.Annotations = map[string]string{"bench.talkover.ai/finalizer-stand-in": "true"}
		b.own.add(keyActionMain)
		if err := b.k8s.Patch(ctx, a, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("mimic metadata patch of %s: %w", a.Name, err)
		}
	}
	id, err := b.baselinePost(ctx, httpc, base, a)
	posts.Add(1)
	if err != nil {
		return err
	}
	if err := b.patchReady(ctx, a, id, metav1.ConditionTrue, agentsv1alpha1.ReasonSynced); err != nil {
		return err
	}
	patches.Add(1)
	return nil
}

// baselinePost POSTs the action to the simulator and returns its ID.
func (b *bench) baselinePost(ctx context.Context, httpc *http.Client, base string, a *agentsv1alpha1.AgentAction) (string, error) {
	body, err := json.Marshal(map[string]string{
		"node_id": a.Spec.NodeID, "name": a.Spec.Name, "description": a.Spec.Description,
		"type": string(a.Spec.Type), "url": a.Spec.URL, "current_status": string(a.Spec.CurrentStatus),
	})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/agents/"+a.Spec.AgentID+"/actions", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+simToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		return "", fmt.Errorf("baseline POST: %w", err)
	}
	data, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return "", fmt.Errorf("baseline POST: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("baseline POST: %s: %s", resp.Status, data)
	}
	var out struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &out); err != nil || out.Data.ID == "" {
		return "", fmt.Errorf("baseline POST: no data.id in %s", data)
	}
	return out.Data.ID, nil
}

// patchReady merge-patches the status of a with a Ready condition (and the
// remote ID when known), and updates a to the result.
func (b *bench) patchReady(ctx context.Context, a *agentsv1alpha1.AgentAction, id string, status metav1.ConditionStatus, reason string) error {
	patched := a.DeepCopy()
	if id != "" {
		patched.Status.ID = id
	}
	patched.Status.ObservedGeneration = a.Generation
	msg := "Pushing the action to the Talkover API."
	if id != "" {
		msg = "The remote action " + id + " matches the spec."
	}
	meta.SetStatusCondition(&patched.Status.Conditions, metav1.Condition{
		Type: agentsv1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: a.Generation,
	})
	b.own.add(keyActionStatus)
	if err := b.k8s.Status().Patch(ctx, patched, client.MergeFrom(a)); err != nil {
		return fmt.Errorf("baseline status patch of %s: %w", a.Name, err)
	}
	*a = *patched
	return nil
}
