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

// Package ha tests the manager binary as a highly available Deployment
// runs it: two replicas with leader election against one control plane and
// one Talkover API (only the leader calls the API; the other takes over
// when the leader dies, without pushing anything twice), and a graceful
// shutdown in the middle of slow API calls.
package ha

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
	"github.com/talkover/talkover-operator/test/utils"
)

const (
	token   = "talq_ha_token_0123456789abcdef"
	simEnv  = "ha"
	envName = "ha"
	// leaseID is the manager's default --leader-election-id; both replicas
	// use it.
	leaseID = "talkover-operator.agents.talkover.ai"
	// leaseDuration, renewDeadline and retryPeriod are short so a takeover
	// takes seconds.
	leaseDuration = 4 * time.Second
	renewDeadline = 3 * time.Second
	retryPeriod   = time.Second
	// takeoverSlack is added to the lease duration for a takeover on a busy
	// machine: a retry period, the start of the controllers, CPU contention.
	takeoverSlack = 8 * time.Second
	// gracePeriod is the chart's terminationGracePeriodSeconds.
	gracePeriod = 10 * time.Second
	// acquiredLease is logged by client-go's leader election (the case
	// varies between versions).
	acquiredLease = "successfully acquired lease"
	waitTimeout   = 90 * time.Second
	poll          = 200 * time.Millisecond
)

// suite is the control plane and the manager binary shared by the tests.
type suite struct {
	t      *testing.T
	root   string
	binary string
	logDir string
	cp     *utils.ControlPlane
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(agentsv1alpha1.AddToScheme(s))
	return s
}

// TestHighAvailability runs the leader election and the graceful shutdown
// tests on one control plane.
func TestHighAvailability(t *testing.T) {
	if testing.Short() {
		t.Skip("the HA tests run the manager binary")
	}
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.Level(2))))
	root, err := utils.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	assets := utils.AssetsDir(root)
	skipWithoutAssets(t, assets)
	if err := utils.CheckAssets(assets); err != nil {
		t.Fatalf("the local control plane is not built: %v", err)
	}
	tmp := t.TempDir()
	s := &suite{t: t, root: root, binary: filepath.Join(tmp, "manager"), logDir: tmp}
	if dir := os.Getenv("HA_LOG_DIR"); dir != "" {
		if s.logDir, err = filepath.Abs(dir); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := utils.BuildManager(ctx, root, s.binary); err != nil {
		t.Fatal(err)
	}
	if s.cp, err = utils.StartControlPlane(root, assets, tmp, newScheme()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.cp.Stop(); err != nil {
			t.Logf("stopping the control plane: %v", err)
		}
	})
	t.Run("leader election", s.testLeaderElection)
	t.Run("graceful shutdown", s.testGracefulShutdown)
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

// world is one test's namespace, Environment and simulator.
type world struct {
	ns    string
	agent string
	sim   *apisim.Server
}

// newWorld creates a namespace with a Manual Environment (drift checks off)
// pointing at apiURL, or at a new simulator when apiURL is empty.
func (s *suite) newWorld(t *testing.T, ns string, sim *apisim.Server, apiURL string) *world {
	t.Helper()
	w := &world{ns: ns, agent: ns + "-agent", sim: sim}
	if apiURL == "" {
		sim.Start()
		apiURL = sim.URL()
	}
	t.Cleanup(sim.Close)
	sim.AddEnvironment(simEnv, token)
	sim.AddAgent(simEnv, w.agent, apisim.AgentOptions{Name: "HA agent", Published: true})
	noDrift := time.Duration(0)
	if err := utils.CreateEnvironment(context.Background(), s.cp.Client, utils.EnvironmentOptions{
		Namespace: ns, Name: envName, APIURL: apiURL, Token: token,
		PublishPolicy: agentsv1alpha1.PublishPolicyManual, RequestsPerMinute: 100000, DriftCheckInterval: &noDrift,
	}); err != nil {
		t.Fatal(err)
	}
	return w
}

// manager returns a replica of the manager with leader election in
// leaseNS; Start runs it.
func (s *suite) manager(name, leaseNS string) *utils.ManagerProcess {
	return &utils.ManagerProcess{
		Binary: s.binary, Kubeconfig: s.cp.Kubeconfig, Name: name, LogDir: s.logDir,
		Args: []string{
			"--metrics-bind-address=0",
			"--leader-elect",
			"--leader-election-namespace=" + leaseNS,
			"--leader-election-id=" + leaseID,
			"--leader-election-lease-duration=" + leaseDuration.String(),
			"--leader-election-renew-deadline=" + renewDeadline.String(),
			"--leader-election-retry-period=" + retryPeriod.String(),
			"--publish-quiet-period=1s",
		},
	}
}

// stopOnCleanup stops the manager at the end of the test, and shows the
// end of its log if the test failed.
func stopOnCleanup(t *testing.T, m *utils.ManagerProcess) {
	t.Cleanup(func() {
		if _, err := m.Terminate(15 * time.Second); err != nil {
			t.Errorf("%s did not stop cleanly: %v", m.Name, err)
		}
		if t.Failed() {
			t.Logf("--- last lines of %s ---\n%s", m.LogPath(), m.LogTail(40))
		}
	})
}

// action returns webhook AgentAction i of the world.
func (w *world) action(i int) *agentsv1alpha1.AgentAction {
	node := fmt.Sprintf("node-%02d", i)
	return &agentsv1alpha1.AgentAction{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: fmt.Sprintf("action-%02d", i)},
		Spec: agentsv1alpha1.AgentActionSpec{
			EnvironmentRef: agentsv1alpha1.EnvironmentReference{Name: envName},
			AgentID:        w.agent,
			NodeID:         node,
			Name:           "HA action " + node,
			Description:    "Look up order " + node + ".",
			Type:           agentsv1alpha1.ActionTypeWebhook,
			URL:            "https://hooks.example.com/ha/" + node,
			CurrentStatus:  "active",
		},
	}
}

// list returns the AgentActions of the world.
func (s *suite) list(g Gomega, w *world) []agentsv1alpha1.AgentAction {
	var list agentsv1alpha1.AgentActionList
	g.Expect(s.cp.Client.List(context.Background(), &list, client.InNamespace(w.ns))).To(Succeed())
	return list.Items
}

// expectConverged checks that n AgentActions are Ready for their generation
// and that each remote action (by node_id, exactly one) has the status.id
// and the spec's description.
func (s *suite) expectConverged(g Gomega, w *world, n int) {
	items := s.list(g, w)
	g.Expect(items).To(HaveLen(n))
	for _, a := range items {
		ready := condition(&a, agentsv1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil(), "%s has no Ready condition", a.Name)
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "%s: %s %s", a.Name, ready.Reason, ready.Message)
		g.Expect(ready.ObservedGeneration).To(Equal(a.Generation), "%s: Ready is for an older generation", a.Name)
		remote, ok := w.sim.ActionByNodeID(w.agent, a.Spec.NodeID)
		g.Expect(ok).To(BeTrue(), "%s: no remote action", a.Name)
		g.Expect(remote.ID).To(Equal(a.Status.ID), "%s: status.id", a.Name)
		g.Expect(remote.Description).To(Equal(a.Spec.Description), "%s: remote description", a.Name)
	}
	expectNoDuplicates(g, w)
}

// expectNoDuplicates checks that no node_id has two remote actions.
func expectNoDuplicates(g Gomega, w *world) {
	seen := map[string]bool{}
	for _, r := range w.sim.Actions(w.agent) {
		g.Expect(seen[r.NodeID]).To(BeFalse(), "two remote actions with node_id %s", r.NodeID)
		seen[r.NodeID] = true
	}
}

func condition(a *agentsv1alpha1.AgentAction, t string) *metav1.Condition {
	for i := range a.Status.Conditions {
		if a.Status.Conditions[i].Type == t {
			return &a.Status.Conditions[i]
		}
	}
	return nil
}

// leaseHolder returns the holderIdentity of the lease in ns.
func (s *suite) leaseHolder(ns string) string {
	var lease coordinationv1.Lease
	if err := s.cp.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: leaseID}, &lease); err != nil {
		return ""
	}
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}
