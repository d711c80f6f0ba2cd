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

// Package utils holds the helpers shared by the demo (cmd/demo) and the
// end-to-end test (test/e2e): finding the repository and the local control
// plane's binaries, writing kubeconfigs, decoding manifests and running the
// manager binary as a child process.
package utils

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// K8sVersion is the version of the local control plane built by
// 'make envtest-assets'.
const K8sVersion = "1.37.2"

// RepoRoot returns the directory holding the module's go.mod, searching
// upwards from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/talkover/talkover-operator\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the talkover-operator repository (go.mod) above the working directory")
		}
		dir = parent
	}
}

// AssetsDir returns the folder of kube-apiserver, etcd and kubectl:
// KUBEBUILDER_ASSETS when set, else bin/k8s/<version>-linux-amd64 under root.
func AssetsDir(root string) string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		if abs, err := filepath.Abs(dir); err == nil {
			return abs
		}
		return dir
	}
	return filepath.Join(root, "bin", "k8s", K8sVersion+"-linux-amd64")
}

// CheckAssets reports a clear error when a binary of the local control plane
// is missing from dir.
func CheckAssets(dir string) error {
	for _, name := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%s is missing from %s: run 'make envtest-assets' (or set KUBEBUILDER_ASSETS)", name, dir)
		}
	}
	return nil
}

// Kubeconfig returns a kubeconfig for cfg (a client certificate or token
// configuration, as envtest makes). When impersonate is not empty, every
// request is made as that user ("as:" in the kubeconfig).
func Kubeconfig(cfg *rest.Config, impersonate string) ([]byte, error) {
	const name = "local"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
		Impersonate:           impersonate,
	}
	ctx := clientcmdapi.NewContext()
	ctx.Cluster, ctx.AuthInfo = name, name
	kc.Contexts[name] = ctx
	kc.CurrentContext = name
	return clientcmd.Write(*kc)
}

// WriteFile writes data to path with mode 0600, creating the folder.
func WriteFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// DecodeObjects decodes every non-empty YAML (or JSON) document of data.
func DecodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// ReadObjects decodes every YAML document of the file at path.
func ReadObjects(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	objs, err := DecodeObjects(data)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	return objs, nil
}

// FreeLocalAddr returns a 127.0.0.1 address with a port that was free a
// moment ago.
func FreeLocalAddr() (string, error) {
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// BuildManager builds the manager (./cmd) of the repository at root into
// out, with the flags of 'make build' so the build cache is shared.
func BuildManager(ctx context.Context, root, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd: %w\n%s", err, output)
	}
	return nil
}

// Process is a child process whose output goes to a log file.
type Process struct {
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{}
	err     error
}

// StartProcess starts path with args, adding env to this process's
// environment and writing stdout and stderr to logPath. The child gets its
// own process group, so a Ctrl-C in the terminal reaches only this process,
// which stops the child in order.
func StartProcess(path string, args, env []string, logPath string) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	// Not bound to a context: Stop ends the process, with SIGTERM first.
	cmd := exec.CommandContext(context.Background(), path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	p := &Process{cmd: cmd, logPath: logPath, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the exit error of an exited process (nil for exit code 0).
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Pid is the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM and waits up to timeout for the process to exit, then
// kills it. It returns the exit error of a process that did not stop
// cleanly after SIGTERM.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", filepath.Base(p.cmd.Path), timeout)
	}
}

// LogTail returns up to n last lines of the process's log file.
func (p *Process) LogTail(n int) string {
	return TailFile(p.logPath, n)
}

// TailFile returns up to n last lines of the file at path.
func TailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// WaitHTTPOK polls url until it answers 200, the process exits, or ctx ends.
func WaitHTTPOK(ctx context.Context, url string, p *Process) error {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200: %w", url, ctx.Err())
		case <-p.Done():
			return fmt.Errorf("the process exited before %s answered: %w", url, p.Err())
		case <-tick.C:
		}
	}
}
