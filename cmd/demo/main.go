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

// Command demo runs the operator end to end on this machine, with nothing
// installed: a local control plane (kube-apiserver and etcd, through
// envtest), the Talkover API simulator, and the real manager binary
// (bin/manager) as a child process. It creates the samples of
// config/samples/ in the namespace "demo" and shows the AgentActions
// becoming Ready and what the simulator then holds.
//
//	make demo             # interactive: runs until Ctrl-C
//	DEMO_ONCE=1 make demo # exits 0 once every sample is Ready
//
// While it runs, the printed KUBECONFIG lets kubectl in another terminal
// see and edit the objects.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
	"github.com/talkover/talkover-operator/test/utils"
)

const (
	// kindEnvironment and kindSecret are the kinds of samples the demo
	// rewrites.
	kindEnvironment = "Environment"
	kindSecret      = "Secret"
	// demoNamespace holds the samples.
	demoNamespace = "demo"
	// demoToken is the environment token the simulator accepts; it is not a
	// secret and works nowhere else.
	demoToken = "talq_demo_token_not_a_secret"
	// defaultReadyTimeout bounds the wait for the samples in DEMO_ONCE mode.
	defaultReadyTimeout = 2 * time.Minute
	// publishWait bounds the wait, once every sample is Ready, for the
	// operator to publish the agent again (DEMO_ONCE mode).
	publishWait = 20 * time.Second
	// managerStopTimeout bounds the manager's graceful shutdown.
	managerStopTimeout = 15 * time.Second
)

// config says where everything is and how the demo behaves.
type config struct {
	root         string        // repository root (config/ is read from it)
	assets       string        // kube-apiserver, etcd and kubectl
	manager      string        // the manager binary
	workDir      string        // kubeconfig and manager.log
	once         bool          // exit when every sample is Ready
	readyTimeout time.Duration // DEMO_ONCE: fail when not Ready by then
	interval     time.Duration // refresh period of the table
	out          io.Writer
}

func main() {
	cfg, err := parseConfig(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(2)
	}
	// Ctrl-C and SIGTERM stop the demo cleanly; further signals while it
	// cleans up are ignored so the control plane is never left behind.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "demo: FAILED:", err)
		stop()
		os.Exit(1)
	}
}

// parseConfig reads the flags and DEMO_ONCE, defaulting every path from the
// repository root.
func parseConfig(args []string) (config, error) {
	root, err := utils.RepoRoot()
	if err != nil {
		return config{}, err
	}
	cfg := config{root: root, interval: time.Second, out: os.Stdout}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.StringVar(&cfg.manager, "manager", filepath.Join(root, "bin", "manager"), "the manager binary ('make build' builds it)")
	fs.StringVar(&cfg.workDir, "work-dir", filepath.Join(root, "bin", "demo"), "where the kubeconfig and the manager's log are written")
	fs.BoolVar(&cfg.once, "once", envTrue("DEMO_ONCE"), "exit 0 as soon as every sample is Ready (default from DEMO_ONCE=1)")
	fs.DurationVar(&cfg.readyTimeout, "ready-timeout", defaultReadyTimeout, "with --once, fail when the samples are not Ready by then")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg.assets = utils.AssetsDir(root)
	for _, p := range []*string{&cfg.manager, &cfg.workDir} {
		if *p, err = filepath.Abs(*p); err != nil {
			return config{}, err
		}
	}
	return cfg, nil
}

// envTrue reports whether the variable is set to 1, true or yes.
func envTrue(name string) bool {
	switch strings.ToLower(os.Getenv(name)) {
	case "1", "true", "yes":
		return true
	}
	return false
}

// demo is one run: the local control plane, the simulator and the manager.
type demo struct {
	cfg        config
	scheme     *runtime.Scheme
	env        *envtest.Environment
	k8s        client.Client
	sim        *apisim.Server
	manager    *utils.Process
	kubeconfig string
	managerLog string
	// actions and agents are the names of the sample AgentActions and the
	// agent IDs they use.
	actions []string
	agents  []string
}

// say prints a step of the demo.
func (d *demo) say(format string, args ...any) {
	d.printf("==> "+format+"\n", args...)
}

// printf prints to the demo's output; a failed write is not worth stopping
// the demo for.
func (d *demo) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(d.cfg.out, format, args...)
}

// run runs the demo until ctx ends or, with cfg.once, until every sample is
// Ready. It always stops what it started.
func run(ctx context.Context, cfg config) (err error) {
	if err := utils.CheckAssets(cfg.assets); err != nil {
		return err
	}
	if _, err := os.Stat(cfg.manager); err != nil {
		return fmt.Errorf("the manager binary %s is missing: run 'make build' (or 'make demo', which builds it)", cfg.manager)
	}
	if err := os.MkdirAll(cfg.workDir, 0o755); err != nil {
		return err
	}
	// envtest logs through controller-runtime; its errors are returned to us.
	logf.SetLogger(zap.New(zap.WriteTo(io.Discard)))

	d := &demo{
		cfg:        cfg,
		scheme:     runtime.NewScheme(),
		kubeconfig: filepath.Join(cfg.workDir, "kubeconfig"),
		managerLog: filepath.Join(cfg.workDir, "manager.log"),
	}
	utilruntime.Must(clientgoscheme.AddToScheme(d.scheme))
	utilruntime.Must(agentsv1alpha1.AddToScheme(d.scheme))
	defer func() {
		if stopErr := d.stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	if err := d.start(ctx); err != nil {
		if ctx.Err() != nil {
			d.say("Interrupted while starting")
			return nil
		}
		return err
	}
	return d.watch(ctx)
}

// start brings up the control plane, the simulator, the samples and the
// manager, in that order.
func (d *demo) start(ctx context.Context) error {
	samples, err := d.readSamples()
	if err != nil {
		return err
	}

	d.say("Starting a local control plane (kube-apiserver and etcd from %s)", d.rel(d.cfg.assets))
	d.env = &envtest.Environment{
		CRDDirectoryPaths:        []string{filepath.Join(d.cfg.root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    d.cfg.assets,
		ControlPlaneStartTimeout: time.Minute,
		Scheme:                   d.scheme,
	}
	restCfg, err := d.env.Start()
	if err != nil {
		return fmt.Errorf("starting the local control plane: %w", err)
	}
	if d.k8s, err = client.New(restCfg, client.Options{Scheme: d.scheme}); err != nil {
		return err
	}
	d.say("Control plane up at %s; CRDs installed from config/crd/bases", restCfg.Host)

	d.sim = apisim.New()
	simURL := d.sim.Start()
	d.sim.AddEnvironment("demo", demoToken)
	for _, agent := range d.agents {
		d.sim.AddAgent("demo", agent, apisim.AgentOptions{Name: "Demo agent", Published: true})
	}
	d.say("Talkover API simulator at %s (agent %s, published)", simURL, strings.Join(d.agents, ", "))

	if err := d.writeKubeconfig(); err != nil {
		return err
	}
	d.say("Kubeconfig written. In another terminal:\n\n    export KUBECONFIG=%s\n    %s get agentactions\n",
		d.kubeconfig, d.rel(filepath.Join(d.cfg.assets, "kubectl")))

	if err := d.createSamples(ctx, samples, simURL); err != nil {
		return err
	}
	return d.startManager(ctx)
}

// rel returns path relative to the repository root when it is inside it.
func (d *demo) rel(path string) string {
	if r, err := filepath.Rel(d.cfg.root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// readSamples decodes config/samples/*.yaml and records the AgentActions'
// names and agents.
func (d *demo) readSamples() ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(d.cfg.root, "config", "samples", "*.yaml"))
	if err != nil {
		return nil, err
	}
	var all []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		objs, err := utils.ReadObjects(f)
		if err != nil {
			return nil, err
		}
		all = append(all, objs...)
	}
	for _, o := range all {
		if o.GetKind() != "AgentAction" {
			continue
		}
		d.actions = append(d.actions, o.GetName())
		agent, _, _ := unstructured.NestedString(o.Object, "spec", "agentId")
		if agent != "" && !slices.Contains(d.agents, agent) {
			d.agents = append(d.agents, agent)
		}
	}
	if len(d.actions) == 0 {
		return nil, errors.New("config/samples/ holds no AgentAction")
	}
	// Secrets first, then Environments, then the rest, as a user would apply
	// them; the operator copes with any order.
	rank := map[string]int{kindSecret: 0, kindEnvironment: 1}
	slices.SortStableFunc(all, func(a, b *unstructured.Unstructured) int {
		ra, oka := rank[a.GetKind()]
		rb, okb := rank[b.GetKind()]
		if !oka {
			ra = 2
		}
		if !okb {
			rb = 2
		}
		return cmp.Compare(ra, rb)
	})
	return all, nil
}

// writeKubeconfig writes an administrator's kubeconfig whose default
// namespace is the demo's.
func (d *demo) writeKubeconfig() error {
	user, err := d.env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the demo user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kc, err := clientcmd.Load(data)
	if err != nil {
		return err
	}
	for _, c := range kc.Contexts {
		c.Namespace = demoNamespace
	}
	if data, err = clientcmd.Write(*kc); err != nil {
		return err
	}
	return utils.WriteFile(d.kubeconfig, data)
}

// createSamples creates the namespace and the samples, with the demo token
// in the token Secrets and the simulator as every Environment's API.
func (d *demo) createSamples(ctx context.Context, samples []*unstructured.Unstructured, simURL string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace}}
	if err := d.k8s.Create(ctx, ns); err != nil {
		return fmt.Errorf("creating namespace %s: %w", demoNamespace, err)
	}
	tokenKeys := map[string]string{} // Secret name -> key of the token
	for _, o := range samples {
		if o.GetKind() != kindEnvironment {
			continue
		}
		name, _, _ := unstructured.NestedString(o.Object, "spec", "tokenSecretRef", "name")
		key, _, _ := unstructured.NestedString(o.Object, "spec", "tokenSecretRef", "key")
		tokenKeys[name] = cmp.Or(key, agentsv1alpha1.DefaultTokenKey)
	}
	for _, o := range samples {
		o.SetNamespace(demoNamespace)
		switch o.GetKind() {
		case kindSecret:
			if key, ok := tokenKeys[o.GetName()]; ok {
				if err := unstructured.SetNestedField(o.Object, demoToken, "stringData", key); err != nil {
					return err
				}
			}
		case kindEnvironment:
			if err := unstructured.SetNestedField(o.Object, simURL, "spec", "apiURL"); err != nil {
				return err
			}
		}
		if err := d.k8s.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		d.say("Created %s %s/%s", o.GetKind(), demoNamespace, o.GetName())
	}
	return nil
}

// startManager runs bin/manager against the control plane and waits until
// its readiness probe answers.
func (d *demo) startManager(ctx context.Context) error {
	probe, err := utils.FreeLocalAddr()
	if err != nil {
		return err
	}
	args := []string{
		"--health-probe-bind-address=" + probe,
		"--metrics-bind-address=0",
		"--zap-encoder=console",
	}
	d.say("Starting the manager %s (log: %s)", d.rel(d.cfg.manager), d.managerLog)
	d.manager, err = utils.StartProcess(d.cfg.manager, args, []string{"KUBECONFIG=" + d.kubeconfig}, d.managerLog)
	if err != nil {
		return err
	}
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := utils.WaitHTTPOK(readyCtx, "http://"+probe+"/readyz", d.manager); err != nil {
		return fmt.Errorf("the manager did not become ready: %w\n--- last lines of %s ---\n%s", err, d.managerLog, d.manager.LogTail(30))
	}
	d.say("Manager ready (pid %d)", d.manager.Pid())
	return nil
}

// errInterrupted ends the watch when the demo is interrupted.
var errInterrupted = errors.New("interrupted")

// watchState is what the watch loop printed and saw so far.
type watchState struct {
	start     time.Time
	readyAt   time.Time // zero until every sample is Ready
	lastTable string
	lastSim   string
}

// watch prints the AgentActions whenever they change until ctx ends, or
// with cfg.once until every sample is Ready.
func (d *demo) watch(ctx context.Context) error {
	d.say("Waiting for the AgentActions to become Ready")
	st := &watchState{start: time.Now()}
	tick := time.NewTicker(d.cfg.interval)
	defer tick.Stop()
	for {
		done, err := d.step(ctx, st)
		if errors.Is(err, errInterrupted) {
			d.printf("\n")
			d.say("Interrupted")
			return nil
		}
		if done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-d.manager.Done():
			return fmt.Errorf("the manager exited: %w\n--- last lines of %s ---\n%s", d.manager.Err(), d.managerLog, d.manager.LogTail(30))
		case <-tick.C:
		}
	}
}

// step refreshes the table once, prints what changed, and reports whether
// the demo is done (DEMO_ONCE).
func (d *demo) step(ctx context.Context, st *watchState) (bool, error) {
	table, ready, err := d.actionTable(ctx)
	if ctx.Err() != nil {
		return false, errInterrupted
	}
	if err != nil {
		return false, err
	}
	if table != st.lastTable {
		d.printf("\n[%5.1fs]\n%s", time.Since(st.start).Seconds(), table)
		st.lastTable = table
	}
	if ready && st.readyAt.IsZero() {
		st.readyAt = time.Now()
		d.say("All %d AgentActions are Ready after %.1fs", len(d.actions), st.readyAt.Sub(st.start).Seconds())
	}
	if st.readyAt.IsZero() {
		if d.cfg.once && time.Since(st.start) > d.cfg.readyTimeout {
			return false, fmt.Errorf("the samples were not all Ready within %s\n%s\n--- last lines of %s ---\n%s",
				d.cfg.readyTimeout, table, d.managerLog, d.manager.LogTail(30))
		}
		return false, nil
	}
	sim := d.simState()
	if d.cfg.once {
		// Give the operator a moment to publish the agent again, so the
		// summary shows the settled state.
		if !d.agentsPublished() && time.Since(st.readyAt) < publishWait {
			return false, nil
		}
		d.printf("\n%s", sim)
		d.say("Done: every sample is Ready (DEMO_ONCE)")
		return true, nil
	}
	if sim != st.lastSim {
		d.printf("\n%s", sim)
		if st.lastSim == "" {
			d.say("Running: edit the samples with kubectl in another terminal; Ctrl-C stops the demo")
		}
		st.lastSim = sim
	}
	return false, nil
}

// actionTable renders the demo's AgentActions and reports whether every
// sample is Ready for its current generation.
func (d *demo) actionTable(ctx context.Context) (string, bool, error) {
	var list agentsv1alpha1.AgentActionList
	if err := d.k8s.List(ctx, &list, client.InNamespace(demoNamespace)); err != nil {
		return "", false, fmt.Errorf("listing AgentActions: %w", err)
	}
	slices.SortFunc(list.Items, func(a, b agentsv1alpha1.AgentAction) int { return cmp.Compare(a.Name, b.Name) })
	var rows strings.Builder
	rows.WriteString("NAME\tTYPE\tREMOTE-ID\tREADY\tREASON\n")
	ready := 0
	for _, a := range list.Items {
		status, reason := "-", "-"
		if c := apimeta.FindStatusCondition(a.Status.Conditions, agentsv1alpha1.ConditionReady); c != nil {
			status, reason = string(c.Status), c.Reason
			if c.Status == metav1.ConditionTrue && a.Status.ObservedGeneration == a.Generation && a.DeletionTimestamp == nil {
				ready++
			}
		}
		fmt.Fprintf(&rows, "%s\t%s\t%s\t%s\t%s\n", a.Name, a.Spec.Type, cmp.Or(a.Status.ID, "-"), status, reason)
	}
	var b strings.Builder
	b.WriteString(tabulate(rows.String()))
	for _, agent := range d.agents {
		if st, ok := d.sim.Agent(agent); ok {
			fmt.Fprintf(&b, "agent %s on the simulator: %s\n", agent, st.Status)
		}
	}
	return b.String(), len(list.Items) >= len(d.actions) && ready == len(list.Items), nil
}

// agentsPublished reports whether every sample agent is published.
func (d *demo) agentsPublished() bool {
	for _, agent := range d.agents {
		if st, ok := d.sim.Agent(agent); !ok || st.Status != apisim.AgentPublished {
			return false
		}
	}
	return true
}

// simRoutes are the simulator's routes, in the order they are printed.
var simRoutes = []string{
	apisim.RouteUpsert, apisim.RouteList, apisim.RouteDelete,
	apisim.RouteGetAgent, apisim.RoutePublish, apisim.RouteUnpublish,
}

// simState renders what the simulator holds and the requests it answered.
func (d *demo) simState() string {
	var b strings.Builder
	fmt.Fprintf(&b, "What the simulator holds (%s):\n", d.sim.URL())
	for _, agent := range d.agents {
		st, _ := d.sim.Agent(agent)
		fmt.Fprintf(&b, "  agent %s: %s, ready to publish: %t, publishes: %d\n", agent, st.Status, st.ReadyToPublish, st.Publishes)
		var rows strings.Builder
		rows.WriteString("    ID\tNAME\tTYPE\tTARGET\n")
		for _, a := range d.sim.Actions(agent) {
			fmt.Fprintf(&rows, "    %s\t%s\t%s\t%s\n", a.ID, a.Name, a.Type, target(a))
		}
		b.WriteString(tabulate(rows.String()))
	}
	b.WriteString("  Requests by route:\n")
	var rows strings.Builder
	total := 0
	for _, route := range simRoutes {
		n := d.sim.Count(route)
		total += n
		fmt.Fprintf(&rows, "    %s\t%d\n", route, n)
	}
	fmt.Fprintf(&rows, "    total\t%d\n", total)
	b.WriteString(tabulate(rows.String()))
	return b.String()
}

// tabulate aligns the tab-separated columns of text.
func tabulate(text string) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	_, _ = io.WriteString(w, text)
	_ = w.Flush()
	return b.String()
}

// target is the type-specific field of an action: url, transfer_to or
// hold_duration.
func target(a apisim.Action) string {
	var parts []string
	if a.URL != "" {
		parts = append(parts, "url="+a.URL)
	}
	if a.TransferTo != "" {
		parts = append(parts, "transfer_to="+a.TransferTo)
	}
	if a.HoldDuration != nil {
		parts = append(parts, fmt.Sprintf("hold_duration=%d", *a.HoldDuration))
	}
	return cmp.Or(strings.Join(parts, " "), "-")
}

// stop stops the manager, the simulator and the control plane, in that
// order, and removes the kubeconfig that pointed at the control plane.
func (d *demo) stop() error {
	var errs []error
	if d.manager != nil {
		d.say("Stopping the manager (SIGTERM)")
		if err := d.manager.Stop(managerStopTimeout); err != nil {
			errs = append(errs, fmt.Errorf("stopping the manager: %w", err))
		}
	}
	if d.sim != nil {
		d.say("Stopping the simulator")
		d.sim.Close()
	}
	if d.env != nil {
		d.say("Stopping the control plane")
		if err := d.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping the control plane: %w", err))
		}
	}
	if err := os.Remove(d.kubeconfig); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		d.say("Stopped; the manager's log stays in %s", d.managerLog)
	}
	return errors.Join(errs...)
}
