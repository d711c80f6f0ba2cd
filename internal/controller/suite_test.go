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

package controller

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
)

// The suite runs one real kube-apiserver and etcd (envtest) for the package,
// and a manager with both controllers. Each test makes its own namespace and
// its own simulator, so API calls are counted per test.
var (
	testEnv    *envtest.Environment
	restCfg    *rest.Config
	k8sClient  client.Client
	testScheme = runtime.NewScheme()

	// managerLogs holds everything the manager logged.
	managerLogs lockedBuffer

	mgrCancel context.CancelFunc
	mgrDone   chan struct{}
	nsCounter atomic.Int64

	// noEnvtest, when set, says why no control plane was started; the
	// tests that need one skip with it (requireEnvtest).
	noEnvtest string
)

const (
	testToken = "talq_suite_token_0123456789abcdef"
	timeout   = 30 * time.Second
	interval  = 100 * time.Millisecond
	// publishQuiet is the Publisher's quiet period in tests.
	publishQuiet = 700 * time.Millisecond
	// operatorNamespace holds the token Secrets of ClusterEnvironments.
	operatorNamespace = "talkover-operator-system"
)

func TestMain(m *testing.M) {
	utilruntime.Must(clientgoscheme.AddToScheme(testScheme))
	utilruntime.Must(agentsv1alpha1.AddToScheme(testScheme))
	flag.Parse()
	if isFuzzing() {
		// Fuzz targets are pure functions: no control plane is started for
		// the fuzzing engine or its workers.
		noEnvtest = "envtest: not started under -fuzz"
		os.Exit(m.Run())
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		// The pure tests run; those that need the control plane skip. A
		// control plane that fails to start is still a failure (below).
		noEnvtest = "envtest: KUBEBUILDER_ASSETS is not set; run `make test` to build the control plane"
		os.Exit(m.Run())
	}
	// Every log line of the manager, at every level, is kept for the
	// secrets check; TEST_LOG=debug also prints them.
	var sink io.Writer = &managerLogs
	if os.Getenv("TEST_LOG") == "debug" {
		sink = io.MultiWriter(&managerLogs, os.Stderr)
	}
	logf.SetLogger(zap.New(zap.WriteTo(sink), zap.UseDevMode(true), zap.Level(zapcore.Level(-5))))
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	restCfg, err = testEnv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local control plane:", err)
		os.Exit(1)
	}
	k8sClient, err = client.New(restCfg, client.Options{Scheme: testScheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := startManager(); err != nil {
		fmt.Fprintln(os.Stderr, "starting the manager:", err)
		os.Exit(1)
	}
	// The secrets check watches the whole run and concludes after it,
	// whatever the order or the subset of the tests (zz_secrets_test.go).
	leaks, err := startLeakWatch()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the secrets scan:", err)
		stopManager()
		_ = testEnv.Stop()
		os.Exit(1)
	}
	code := m.Run()
	stopManager()
	passed, report := leaks.conclude()
	fmt.Print(report)
	if !passed && code == 0 {
		code = 1
	}
	_ = testEnv.Stop()
	os.Exit(code)
}

// isFuzzing says whether the test binary runs under 'go test -fuzz'.
func isFuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startManager runs a manager with both controllers, as cmd/main.go does.
func startManager() error {
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:     testScheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptrTo(true)},
		Client:     client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	clients := NewClients(NewTalkoverClient, nil, nil)
	envReconciler := &EnvironmentReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Clients: clients,
		ClusterEnvironmentNamespace: operatorNamespace}
	if err := envReconciler.SetupWithManager(mgr); err != nil {
		cancel()
		return err
	}
	if err := (&AgentActionReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), MetadataReader: mgr.GetCache(),
		Recorder: mgr.GetEventRecorder("talkover-operator"), Clients: clients,
		StalledRetryInterval:        time.Hour,
		PublishQuiet:                publishQuiet,
		ClusterEnvironmentNamespace: operatorNamespace,
	}).SetupWithManager(ctx, mgr); err != nil {
		cancel()
		return err
	}
	mgrCancel = cancel
	mgrDone = make(chan struct{})
	go func() {
		defer close(mgrDone)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	return nil
}

func stopManager() {
	mgrCancel()
	<-mgrDone
}

// restartManager stops the manager and starts a fresh one, as a restart of
// the operator's pod would.
func restartManager(t *testing.T) {
	t.Helper()
	requireEnvtest(t)
	stopManager()
	if err := startManager(); err != nil {
		t.Fatalf("restarting the manager: %v", err)
	}
}

func ptrTo[T any](v T) *T { return &v }

// requireEnvtest skips the test when TestMain started no control plane.
// Every test that uses k8sClient, the manager or a fixture calls it first
// (newFixture does).
func requireEnvtest(t testing.TB) {
	t.Helper()
	if noEnvtest != "" {
		t.Skip(noEnvtest)
	}
}

// fixture is one test's world: a namespace, a simulator with one
// environment and agent, and an Environment with its token Secret.
type fixture struct {
	t     *testing.T
	g     Gomega
	ctx   context.Context
	ns    string
	sim   *apisim.Server
	agent string
	env   *agentsv1alpha1.Environment
}

func newFixture(t *testing.T, simOpts ...apisim.Option) *fixture {
	t.Helper()
	requireEnvtest(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := fmt.Sprintf("t%d-%d", nsCounter.Add(1), time.Now().UnixNano()%100000)
	g.Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	sim := apisim.New(simOpts...)
	sim.Start()
	t.Cleanup(sim.Close)
	sim.AddEnvironment("test", testToken)
	agent := "agent-" + ns
	sim.AddAgent("test", agent, apisim.AgentOptions{Name: "Test agent", Published: true})
	f := &fixture{t: t, g: g, ctx: ctx, ns: ns, sim: sim, agent: agent}
	f.createSecret("talkover-token", map[string]string{"token": testToken})
	f.env = &agentsv1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "test"},
		Spec: agentsv1alpha1.EnvironmentSpec{
			APIURL:         sim.URL(),
			TokenSecretRef: agentsv1alpha1.TokenSecretReference{Name: "talkover-token"},
			PublishPolicy:  agentsv1alpha1.PublishPolicyManual,
		},
	}
	g.Expect(k8sClient.Create(ctx, f.env)).To(Succeed())
	return f
}

func (f *fixture) createSecret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}, StringData: data}
	f.g.Expect(k8sClient.Create(f.ctx, s)).To(Succeed())
	return s
}

// webhook returns a valid webhook AgentAction, like the first example of the
// API docs.
func (f *fixture) webhook(name, nodeID string) *agentsv1alpha1.AgentAction {
	return &agentsv1alpha1.AgentAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: agentsv1alpha1.AgentActionSpec{
			EnvironmentRef: agentsv1alpha1.EnvironmentReference{Name: "test"},
			AgentID:        f.agent,
			NodeID:         nodeID,
			Name:           "Schedule Meeting",
			Description:    "Schedule a meeting with the customer",
			Type:           agentsv1alpha1.ActionTypeWebhook,
			URL:            "https://api.example.com/schedule",
			CurrentStatus:  "active",
		},
	}
}

func (f *fixture) create(a *agentsv1alpha1.AgentAction) {
	f.t.Helper()
	f.g.Expect(k8sClient.Create(f.ctx, a)).To(Succeed())
}

func (f *fixture) get(name string) *agentsv1alpha1.AgentAction {
	a := &agentsv1alpha1.AgentAction{}
	f.g.Expect(k8sClient.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, a)).To(Succeed())
	return a
}

// update re-reads the AgentAction, applies mutate and writes it back.
func (f *fixture) update(name string, mutate func(*agentsv1alpha1.AgentAction)) {
	f.t.Helper()
	f.g.Eventually(func() error {
		a := f.get(name)
		mutate(a)
		return k8sClient.Update(f.ctx, a)
	}, timeout, interval).Should(Succeed())
}

// readyCondition returns the AgentAction's Ready condition, or nil.
func (f *fixture) condition(name, condType string) *metav1.Condition {
	return findCondition(f.get(name).Status.Conditions, condType)
}

// waitReason waits until the Ready condition has the reason, for the current
// generation.
func (f *fixture) waitReason(name, reason string) *agentsv1alpha1.AgentAction {
	f.t.Helper()
	var a *agentsv1alpha1.AgentAction
	f.g.Eventually(func(g Gomega) {
		a = f.get(name)
		c := findCondition(a.Status.Conditions, agentsv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(reason), "message: %s", c.Message)
		g.Expect(a.Status.ObservedGeneration).To(Equal(a.Generation))
	}, timeout, interval).Should(Succeed())
	return a
}

// events returns the reasons of the Events about an object, oldest first.
func (f *fixture) events(name string) []string {
	var list eventsv1.EventList
	f.g.Expect(k8sClient.List(f.ctx, &list, client.InNamespace(f.ns))).To(Succeed())
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

// eventNotes returns the notes of every Event in the namespace.
func (f *fixture) eventNotes() []string {
	var list eventsv1.EventList
	f.g.Expect(k8sClient.List(f.ctx, &list, client.InNamespace(f.ns))).To(Succeed())
	notes := make([]string, 0, len(list.Items))
	for _, e := range list.Items {
		notes = append(notes, e.Reason+": "+e.Note)
	}
	return notes
}

// consistently asserts that a condition holds for a while: used for "no
// further calls" claims, with a bounded window.
func (f *fixture) consistently(check func(g Gomega), window time.Duration) {
	f.t.Helper()
	f.g.Consistently(check, window, interval).Should(Succeed())
}
