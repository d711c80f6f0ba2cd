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

package utils

// Helpers of the reliability tests (test/chaos and test/ha): a local
// control plane whose kube-apiserver can be restarted in place, and the
// manager binary as a child process that can be killed and started again.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// ControlPlane is a local kube-apiserver and etcd (envtest) with the CRDs of
// the repository installed. Its kube-apiserver keeps its certificates in a
// folder of the caller's, so RestartAPIServer brings it back on the same
// address with the same serving certificate: the clients' kubeconfigs stay
// valid across a restart.
type ControlPlane struct {
	Env    *envtest.Environment
	Config *rest.Config
	Client client.Client
	// Kubeconfig is the path of an administrator's kubeconfig.
	Kubeconfig string
}

// StartControlPlane starts a control plane with the binaries of assets and
// the CRDs of root/config/crd/bases, keeping its files under dir.
func StartControlPlane(root, assets, dir string, scheme *runtime.Scheme) (*ControlPlane, error) {
	certDir := filepath.Join(dir, "kube-apiserver")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:        []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		Scheme:                   scheme,
	}
	// A CertDir of our own is not removed when the kube-apiserver stops, so
	// its serving certificate and its port survive a restart.
	env.ControlPlane.APIServer = &envtest.APIServer{CertDir: certDir}
	// Without a grace period for watches, a kube-apiserver with open
	// watches takes a minute to stop on SIGTERM.
	env.ControlPlane.APIServer.Configure().Set("shutdown-watch-termination-grace-period", "2s")
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the local control plane: %w", err)
	}
	cp := &ControlPlane{Env: env, Config: cfg}
	data, err := Kubeconfig(cfg, "")
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	cp.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := WriteFile(cp.Kubeconfig, data); err != nil {
		_ = env.Stop()
		return nil, err
	}
	if cp.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return cp, nil
}

// APIServerURL is the address the kube-apiserver serves on.
func (c *ControlPlane) APIServerURL() string {
	u := c.Env.ControlPlane.APIServer.SecureServing.URL("https", "/")
	return u.String()
}

// RestartAPIServer stops the kube-apiserver (SIGTERM), leaves it down for
// down, and starts it again. It returns an error if the kube-apiserver did
// not come back on the same address. etcd keeps running, so no data is lost.
func (c *ControlPlane) RestartAPIServer(down time.Duration) error {
	api := c.Env.ControlPlane.APIServer
	before := c.APIServerURL()
	if err := api.Stop(); err != nil {
		return fmt.Errorf("stopping the kube-apiserver: %w", err)
	}
	time.Sleep(down) // the outage itself: nothing to wait for but time
	if err := api.Start(); err != nil {
		return fmt.Errorf("starting the kube-apiserver again: %w", err)
	}
	if after := c.APIServerURL(); after != before {
		return fmt.Errorf("the kube-apiserver came back on %s instead of %s", after, before)
	}
	return nil
}

// Stop stops the kube-apiserver and etcd.
func (c *ControlPlane) Stop() error {
	return c.Env.Stop()
}

// ManagerProcess runs the manager binary out of cluster, and can start it
// again after it was killed or stopped, as a Deployment would. Each run
// writes its own log file, <LogDir>/<Name>-<run>.log. It is safe for
// concurrent use.
type ManagerProcess struct {
	// Binary is the manager binary, Kubeconfig the kubeconfig it uses.
	Binary, Kubeconfig string
	// Name prefixes the log files in LogDir.
	Name, LogDir string
	// Args are the manager's flags, except --health-probe-bind-address,
	// which each run gets on a free port.
	Args []string

	mu      sync.Mutex
	runs    int
	proc    *Process
	logPath string
	probe   string
	started time.Time
}

// Start starts a new run of the manager and waits (up to timeout) until
// its readiness probe answers. A run still alive is an error.
func (m *ManagerProcess) Start(timeout time.Duration) error {
	m.mu.Lock()
	if m.proc != nil && !exited(m.proc) {
		m.mu.Unlock()
		return errors.New("the manager is still running")
	}
	probe, err := FreeLocalAddr()
	if err != nil {
		m.mu.Unlock()
		return err
	}
	m.runs++
	logPath := filepath.Join(m.LogDir, fmt.Sprintf("%s-%d.log", m.Name, m.runs))
	args := append(append([]string{}, m.Args...), "--health-probe-bind-address="+probe)
	proc, err := StartProcess(m.Binary, args, []string{"KUBECONFIG=" + m.Kubeconfig}, logPath)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	m.proc, m.logPath, m.probe, m.started = proc, logPath, probe, time.Now()
	m.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := WaitHTTPOK(ctx, "http://"+probe+"/readyz", proc); err != nil {
		return fmt.Errorf("the manager (%s) did not become ready: %w\n--- last lines of %s ---\n%s",
			m.Name, err, logPath, proc.LogTail(30))
	}
	return nil
}

func exited(p *Process) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

// current returns the process of the current run, or nil.
func (m *ManagerProcess) current() *Process {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// Running reports whether the current run is alive.
func (m *ManagerProcess) Running() bool {
	p := m.current()
	return p != nil && !exited(p)
}

// Done is closed when the current run exits (nil before the first run).
func (m *ManagerProcess) Done() <-chan struct{} {
	if p := m.current(); p != nil {
		return p.Done()
	}
	return nil
}

// Pid is the process ID of the current run (0 before the first run).
func (m *ManagerProcess) Pid() int {
	if p := m.current(); p != nil {
		return p.Pid()
	}
	return 0
}

// Runs is the number of runs started so far.
func (m *ManagerProcess) Runs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runs
}

// Kill sends SIGKILL to the current run, as the kubelet does to a pod past
// its grace period or the kernel's OOM killer, and waits until it is gone.
func (m *ManagerProcess) Kill() error {
	p := m.current()
	if p == nil || exited(p) {
		return nil
	}
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case <-p.Done():
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the manager (pid %d) did not exit within 30s of SIGKILL", p.Pid())
	}
}

// Terminate sends SIGTERM to the current run and waits up to timeout for it
// to exit. It returns how long the exit took and the exit error (nil for a
// clean exit); past timeout the process is killed and an error returned.
func (m *ManagerProcess) Terminate(timeout time.Duration) (time.Duration, error) {
	p := m.current()
	if p == nil || exited(p) {
		return 0, nil
	}
	start := time.Now()
	err := p.Stop(timeout)
	return time.Since(start), err
}

// LogPath is the log file of the current run.
func (m *ManagerProcess) LogPath() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.logPath
}

// LogPaths are the log files of every run so far, oldest first.
func (m *ManagerProcess) LogPaths() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	paths := make([]string, 0, m.runs)
	for i := 1; i <= m.runs; i++ {
		paths = append(paths, filepath.Join(m.LogDir, fmt.Sprintf("%s-%d.log", m.Name, i)))
	}
	return paths
}

// LogContains reports whether the log of the current run contains s,
// ignoring case.
func (m *ManagerProcess) LogContains(s string) bool {
	data, err := os.ReadFile(m.LogPath())
	if err != nil {
		return false
	}
	return bytes.Contains(bytes.ToLower(data), []byte(strings.ToLower(s)))
}

// CountInLogs counts the lines of every run's log that contain s.
func (m *ManagerProcess) CountInLogs(s string) int {
	n := 0
	for _, path := range m.LogPaths() {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		n += bytes.Count(data, []byte(s))
	}
	return n
}

// LogTail returns up to n last lines of the current run's log.
func (m *ManagerProcess) LogTail(n int) string {
	return TailFile(m.LogPath(), n)
}

// EnvironmentOptions are the fields of the Environment made by
// CreateEnvironment.
type EnvironmentOptions struct {
	// Namespace and Name of the Environment; its token Secret is
	// <Name>-token in the same namespace.
	Namespace, Name string
	APIURL, Token   string
	PublishPolicy   agentsv1alpha1.PublishPolicy
	// RequestsPerMinute, when not 0, caps the operator's calls.
	RequestsPerMinute int32
	// DriftCheckInterval is passed as is ("0s" disables drift checks).
	DriftCheckInterval *time.Duration
}

// CreateEnvironment creates the namespace (if missing), the token Secret
// and the Environment.
func CreateEnvironment(ctx context.Context, c client.Client, o EnvironmentOptions) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.Namespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", o.Namespace, err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name + "-token"},
		StringData: map[string]string{agentsv1alpha1.DefaultTokenKey: o.Token},
	}
	if err := c.Create(ctx, secret); err != nil {
		return fmt.Errorf("creating the token Secret: %w", err)
	}
	env := &agentsv1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name},
		Spec: agentsv1alpha1.EnvironmentSpec{
			APIURL:         o.APIURL,
			TokenSecretRef: agentsv1alpha1.TokenSecretReference{Name: secret.Name},
			PublishPolicy:  o.PublishPolicy,
		},
	}
	if o.RequestsPerMinute != 0 {
		rpm := o.RequestsPerMinute
		env.Spec.RequestsPerMinute = &rpm
	}
	if o.DriftCheckInterval != nil {
		env.Spec.DriftCheckInterval = &metav1.Duration{Duration: *o.DriftCheckInterval}
	}
	if err := c.Create(ctx, env); err != nil {
		return fmt.Errorf("creating the Environment: %w", err)
	}
	return nil
}
