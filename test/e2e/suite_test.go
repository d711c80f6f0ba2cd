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

// Package e2e tests the operator as a user runs it: the real manager binary,
// with the RBAC of the Helm chart, driven with the real kubectl against a
// local control plane (envtest's kube-apiserver and etcd) and the Talkover
// API simulator.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/talkover/talkover-operator/internal/apisim"
	"github.com/talkover/talkover-operator/test/utils"
)

const (
	// releaseName and releaseNamespace are the Helm release the chart is
	// rendered for.
	releaseName      = "e2e"
	releaseNamespace = "talkover-system"
	// samplesNamespace holds the samples.
	samplesNamespace = "e2e"
	// commandTimeout bounds every kubectl, helm or go command.
	commandTimeout = 90 * time.Second
)

// installKinds are the kinds of the rendered manifests the test installs:
// the CRDs and the RBAC. The Deployment cannot run without a kubelet; the
// test runs the manager binary out of cluster instead.
var installKinds = []string{
	"CustomResourceDefinition", "ServiceAccount",
	"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
}

// suite is the world of the test: a control plane, the simulator, the
// manager running as the chart's ServiceAccount, and kubectl.
type suite struct {
	t       *testing.T
	root    string
	assets  string
	tmp     string
	kubectl string
	// adminKubeconfig is the administrator's; kubectl uses it.
	adminKubeconfig string
	restCfg         *rest.Config
	env             *envtest.Environment
	sim             *apisim.Server
	manager         *utils.Process
	managerLog      string
	// source says where the CRDs and RBAC came from.
	source string
	// serviceAccount is the chart's ServiceAccount, namespace/name.
	saNamespace, saName string
	// deploymentArgs and deploymentEnv are the manager's arguments and
	// environment (NAME=value) in the chart's Deployment.
	deploymentArgs []string
	deploymentEnv  []string
	// metricsReader is the ClusterRole that may read the metrics.
	metricsReader string
	// metricsAddr is where the manager serves metrics, if the chart enables
	// them.
	metricsAddr string
	// agentID and token are the samples' agent and token.
	agentID, token string
	// samples is a copy of config/samples/ whose Environment points at the
	// simulator.
	samples string
}

// newSuite starts everything; t.Cleanup stops it.
func newSuite(t *testing.T) *suite {
	t.Helper()
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	root, err := utils.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{t: t, root: root, assets: utils.AssetsDir(root), tmp: t.TempDir()}
	skipWithoutAssets(t, s.assets)
	if err := utils.CheckAssets(s.assets); err != nil {
		t.Fatalf("the local control plane is not built: %v", err)
	}
	s.kubectl = filepath.Join(s.assets, "kubectl")

	// Build the manager first: it is the slowest step on a cold cache.
	manager := filepath.Join(s.tmp, "manager")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := utils.BuildManager(ctx, root, manager); err != nil {
		t.Fatal(err)
	}
	manifests := s.render()

	s.env = &envtest.Environment{BinaryAssetsDirectory: s.assets, ControlPlaneStartTimeout: time.Minute}
	s.restCfg, err = s.env.Start()
	if err != nil {
		t.Fatalf("starting the local control plane: %v", err)
	}
	t.Cleanup(s.stop)
	data, err := utils.Kubeconfig(s.restCfg, "")
	if err != nil {
		t.Fatal(err)
	}
	s.adminKubeconfig = filepath.Join(s.tmp, "admin.kubeconfig")
	if err := utils.WriteFile(s.adminKubeconfig, data); err != nil {
		t.Fatal(err)
	}

	s.install(manifests)
	s.startSimulator()
	s.copySamples()
	s.startManager(manager)
	s.mustKubectl(s.t, "create", "namespace", samplesNamespace)
	return s
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

// zapLevel is quiet by default; TEST_LOG=debug shows envtest's logs.
func zapLevel() zapcore.Level {
	if os.Getenv("TEST_LOG") == "debug" {
		return -1
	}
	return 2
}

// render renders the Helm chart of dist/chart, or, while there is none,
// the kustomize tree of config/default, and returns the manifests.
func (s *suite) render() []*unstructured.Unstructured {
	s.t.Helper()
	var out []byte
	if _, err := os.Stat(filepath.Join(s.root, "dist", "chart", "Chart.yaml")); err == nil {
		helm := filepath.Join(s.root, "bin", "helm")
		if _, err := os.Stat(helm); err != nil {
			s.t.Logf("bin/helm is missing: building it with 'make helm'")
			s.run(s.t, 5*time.Minute, "make", "-C", s.root, "helm")
		}
		s.source = "the Helm chart dist/chart"
		out = s.run(s.t, commandTimeout, helm, "template", releaseName, filepath.Join(s.root, "dist", "chart"),
			"--namespace", releaseNamespace, "--include-crds")
	} else {
		s.source = "kustomize config/default (dist/chart/Chart.yaml is missing)"
		out = s.run(s.t, commandTimeout, s.kubectl, "kustomize", filepath.Join(s.root, "config", "default"))
	}
	s.t.Logf("installing the CRDs and RBAC of %s", s.source)
	objs, err := utils.DecodeObjects(out)
	if err != nil {
		s.t.Fatalf("decoding the rendered manifests: %v", err)
	}
	return objs
}

// install applies the CRDs and RBAC of the rendered manifests with
// server-side apply, after creating the ServiceAccount's namespace, and
// records the ServiceAccount and the Deployment's arguments.
func (s *suite) install(objs []*unstructured.Unstructured) {
	s.t.Helper()
	var keep []any
	for _, o := range objs {
		switch {
		case o.GetKind() == "ServiceAccount":
			if s.saName != "" {
				s.t.Fatalf("the manifests hold more than one ServiceAccount: %s/%s and %s/%s",
					s.saNamespace, s.saName, o.GetNamespace(), o.GetName())
			}
			s.saNamespace, s.saName = o.GetNamespace(), o.GetName()
		case o.GetKind() == "Deployment":
			s.deploymentArgs, s.deploymentEnv = managerArgs(s.t, o)
		case o.GetKind() == "ClusterRole" && strings.HasSuffix(o.GetName(), "metrics-reader"):
			s.metricsReader = o.GetName()
		}
		if slices.Contains(installKinds, o.GetKind()) {
			keep = append(keep, o.Object)
		}
	}
	if s.saName == "" || s.saNamespace == "" {
		s.t.Fatalf("the manifests of %s hold no namespaced ServiceAccount", s.source)
	}
	if s.deploymentArgs == nil {
		s.t.Fatalf("the manifests of %s hold no Deployment with a manager container", s.source)
	}
	list, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": keep})
	if err != nil {
		s.t.Fatal(err)
	}
	path := filepath.Join(s.tmp, "install.json")
	if err := utils.WriteFile(path, list); err != nil {
		s.t.Fatal(err)
	}
	s.mustKubectl(s.t, "create", "namespace", s.saNamespace)
	s.mustKubectl(s.t, "apply", "--server-side", "--field-manager=e2e-install", "-f", path)
	s.mustKubectl(s.t, "wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
}

// managerArgs returns the arguments and the environment of the
// Deployment's manager container. Of the downward API it resolves the pod's
// namespace, the only field an out-of-cluster process can know.
func managerArgs(t *testing.T, deploy *unstructured.Unstructured) ([]string, []string) {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	for _, c := range containers {
		m, _ := c.(map[string]any)
		if m["name"] != "manager" && len(containers) > 1 {
			continue
		}
		args, _, err := unstructured.NestedStringSlice(m, "args")
		if err != nil {
			t.Fatalf("the manager container's args: %v", err)
		}
		envList, _, _ := unstructured.NestedSlice(m, "env")
		var env []string
		for _, e := range envList {
			em, _ := e.(map[string]any)
			name, _, _ := unstructured.NestedString(em, "name")
			if value, ok, _ := unstructured.NestedString(em, "value"); ok {
				env = append(env, name+"="+value)
				continue
			}
			if path, _, _ := unstructured.NestedString(em, "valueFrom", "fieldRef", "fieldPath"); path == "metadata.namespace" {
				env = append(env, name+"="+deploy.GetNamespace())
				continue
			}
			t.Logf("the manager's environment variable %s has a source the test cannot resolve; it is left unset", name)
		}
		return append([]string{}, args...), env
	}
	return nil, nil
}

// startSimulator starts the simulator with the samples' agent, published,
// in an environment whose token is the sample Secret's.
func (s *suite) startSimulator() {
	s.t.Helper()
	samples := filepath.Join(s.root, "config", "samples")
	secret := s.readOne(filepath.Join(samples, "talkover-token-secret.yaml"))
	s.token, _, _ = unstructured.NestedString(secret.Object, "stringData", "token")
	action := s.readOne(filepath.Join(samples, "agents_v1alpha1_agentaction_webhook.yaml"))
	s.agentID, _, _ = unstructured.NestedString(action.Object, "spec", "agentId")
	if s.token == "" || s.agentID == "" {
		s.t.Fatalf("the samples lack the token (%q) or the agent ID (%q)", s.token, s.agentID)
	}
	s.sim = apisim.New()
	s.sim.Start()
	s.sim.AddEnvironment("production", s.token)
	s.sim.AddAgent("production", s.agentID, apisim.AgentOptions{Name: "E2E agent", Published: true})
}

// readOne decodes a file holding one object.
func (s *suite) readOne(path string) *unstructured.Unstructured {
	s.t.Helper()
	objs, err := utils.ReadObjects(path)
	if err != nil {
		s.t.Fatal(err)
	}
	if len(objs) != 1 {
		s.t.Fatalf("%s holds %d objects, want 1", path, len(objs))
	}
	return objs[0]
}

// copySamples copies config/samples/ to a temporary folder, with the
// Environment's apiURL pointing at the simulator. The Environment is
// written as JSON, which kubectl reads like YAML.
func (s *suite) copySamples() {
	s.t.Helper()
	s.samples = filepath.Join(s.tmp, "samples")
	files, err := filepath.Glob(filepath.Join(s.root, "config", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		s.t.Fatalf("no samples in config/samples (%v)", err)
	}
	rewritten := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			s.t.Fatal(err)
		}
		name := filepath.Base(f)
		if objs, err := utils.DecodeObjects(data); err == nil && len(objs) == 1 && objs[0].GetKind() == "Environment" {
			if err := unstructured.SetNestedField(objs[0].Object, s.sim.URL(), "spec", "apiURL"); err != nil {
				s.t.Fatal(err)
			}
			if data, err = json.MarshalIndent(objs[0].Object, "", "  "); err != nil {
				s.t.Fatal(err)
			}
			name = strings.TrimSuffix(name, ".yaml") + ".json"
			rewritten++
		}
		if err := utils.WriteFile(filepath.Join(s.samples, name), data); err != nil {
			s.t.Fatal(err)
		}
	}
	if rewritten != 1 {
		s.t.Fatalf("config/samples holds %d Environments, want 1", rewritten)
	}
}

// startManager runs the manager binary out of cluster as the chart's
// ServiceAccount (through impersonation), with the chart's arguments except
// the listen addresses, and waits until it is ready.
func (s *suite) startManager(binary string) {
	s.t.Helper()
	user := fmt.Sprintf("system:serviceaccount:%s:%s", s.saNamespace, s.saName)
	data, err := utils.Kubeconfig(s.restCfg, user)
	if err != nil {
		s.t.Fatal(err)
	}
	kubeconfig := filepath.Join(s.tmp, "manager.kubeconfig")
	if err := utils.WriteFile(kubeconfig, data); err != nil {
		s.t.Fatal(err)
	}
	probe, err := utils.FreeLocalAddr()
	if err != nil {
		s.t.Fatal(err)
	}
	args := []string{}
	leaderElect := false
	for _, a := range s.deploymentArgs {
		name, _, _ := strings.Cut(a, "=")
		switch name {
		case "--health-probe-bind-address":
			continue
		case "--metrics-bind-address":
			if _, value, _ := strings.Cut(a, "="); value != "0" {
				if s.metricsAddr, err = utils.FreeLocalAddr(); err != nil {
					s.t.Fatal(err)
				}
				args = append(args, "--metrics-bind-address="+s.metricsAddr)
			}
			continue
		case "--leader-elect":
			leaderElect = a == "--leader-elect" || a == "--leader-elect=true"
		}
		args = append(args, a)
	}
	args = append(args, "--health-probe-bind-address="+probe)
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--metrics-bind-address") }) {
		args = append(args, "--metrics-bind-address=0")
	}
	if leaderElect {
		// In a pod the namespace comes from the service account mount.
		args = append(args, "--leader-election-namespace="+s.saNamespace)
	}
	s.managerLog = filepath.Join(s.tmp, "manager.log")
	env := append([]string{"KUBECONFIG=" + kubeconfig}, s.deploymentEnv...)
	s.t.Logf("running the manager as %s: %s %s", user, strings.Join(s.deploymentEnv, " "), strings.Join(args, " "))
	s.manager, err = utils.StartProcess(binary, args, env, s.managerLog)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := utils.WaitHTTPOK(ctx, "http://"+probe+"/readyz", s.manager); err != nil {
		s.t.Fatalf("the manager did not become ready: %v\n%s", err, s.manager.LogTail(40))
	}
}

// stop stops the manager, the simulator and the control plane. The manager
// must exit cleanly on SIGTERM.
func (s *suite) stop() {
	if s.manager != nil {
		if err := s.manager.Stop(15 * time.Second); err != nil {
			s.t.Errorf("the manager did not stop cleanly: %v", err)
		}
		if s.t.Failed() {
			s.t.Logf("--- last lines of the manager's log ---\n%s", s.manager.LogTail(60))
		}
	}
	if s.sim != nil {
		s.sim.Close()
	}
	if err := s.env.Stop(); err != nil {
		s.t.Errorf("stopping the control plane: %v", err)
	}
}

// run runs a command with a timeout and returns its stdout, failing the
// test when it fails.
func (s *suite) run(t testing.TB, timeout time.Duration, name string, args ...string) []byte {
	t.Helper()
	out, stderr, err := s.exec(timeout, nil, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr)
	}
	return []byte(out)
}

// exec runs a command with a timeout, the administrator's kubeconfig and
// stdin, and returns its stdout and stderr.
func (s *suite) exec(timeout time.Duration, stdin []byte, name string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.root
	cmd.Env = os.Environ()
	if s.adminKubeconfig != "" {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+s.adminKubeconfig)
	}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	return stdout.String(), stderr.String(), err
}

// kubectlIn runs kubectl with stdin and returns stdout, stderr and the error.
func (s *suite) kubectlIn(stdin []byte, args ...string) (string, string, error) {
	return s.exec(commandTimeout, stdin, s.kubectl, args...)
}

// mustKubectl runs kubectl and returns its stdout, failing t when it fails.
func (s *suite) mustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	return string(s.run(t, commandTimeout, s.kubectl, args...))
}
