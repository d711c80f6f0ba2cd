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

package release

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallTargetsDoNotBuildKubernetes asks make what build-installer,
// release, install, uninstall, deploy and undeploy would run (make -n runs
// nothing) on a tree whose local control plane is missing, and fails if any
// of them would build kube-apiserver, etcd or kubectl from hack/localcp: they
// render YAML with kustomize and apply it with the kubectl on PATH.
func TestInstallTargetsDoNotBuildKubernetes(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	root := repoRoot(t)
	missing := filepath.Join(t.TempDir(), "no-k8s")
	for _, target := range []string{"build-installer", "release", "install", "uninstall", "deploy", "undeploy"} {
		t.Run(target, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), "make", "-n", "--no-print-directory", target, "ENVTEST_ASSETS="+missing)
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n %s: %v\n%s", target, err, out)
			}
			for _, bad := range []string{"hack/localcp", missing, "kube-apiserver"} {
				if strings.Contains(string(out), bad) {
					t.Errorf("make %s would build the local control plane (its plan names %q):\n%s", target, bad, out)
				}
			}
		})
	}
}
