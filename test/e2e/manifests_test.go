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

package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/talkover/talkover-operator/test/utils"
)

// testManifestsDryRun renders the Helm chart for its default values and each
// ci/*-values.yaml, and the kustomize installer, and applies each to the
// real kube-apiserver with a server-side dry-run. No Role may use a
// wildcard.
func (s *suite) testManifestsDryRun(t *testing.T) {
	g := NewWithT(t)
	chart := filepath.Join(s.root, "dist", "chart")
	helm := filepath.Join(s.root, "bin", "helm")
	valueFiles, err := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(valueFiles).NotTo(BeEmpty())

	renders := map[string][]byte{}
	renders["chart defaults"] = s.run(t, commandTimeout, helm, "template", "dry", chart, "--namespace", releaseNamespace)
	for _, f := range valueFiles {
		renders["chart "+filepath.Base(f)] = s.run(t, commandTimeout, helm, "template", "dry", chart,
			"--namespace", releaseNamespace, "-f", f)
	}
	s.run(t, commandTimeout, helm, "lint", "--strict", chart)
	renders["kustomize config/default"] = s.run(t, commandTimeout, s.kubectl, "kustomize", filepath.Join(s.root, "config", "default"))
	_, _, _ = s.kubectlIn(nil, "create", "namespace", "talkover-operator-system")

	for name, out := range renders {
		objs, err := utils.DecodeObjects(out)
		g.Expect(err).NotTo(HaveOccurred(), name)
		var kept []byte
		for _, o := range objs {
			if o.GetKind() == "ServiceMonitor" {
				continue // its CRD (Prometheus Operator) is not installed here
			}
			expectNoWildcards(g, name, o)
			y, err := yaml.Marshal(o.Object)
			g.Expect(err).NotTo(HaveOccurred())
			kept = append(append(kept, "---\n"...), y...)
		}
		stdout, stderr, err := s.kubectlIn(kept, "apply", "--server-side", "--force-conflicts", "--dry-run=server", "--field-manager=dry-run", "-f", "-")
		g.Expect(err).NotTo(HaveOccurred(), "%s: %s%s", name, stdout, stderr)
	}
}

// expectNoWildcards fails on a Role or ClusterRole rule with "*".
func expectNoWildcards(g Gomega, name string, o *unstructured.Unstructured) {
	if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
		return
	}
	rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		for _, field := range []string{"apiGroups", "resources", "verbs", "nonResourceURLs"} {
			values, _, _ := unstructured.NestedStringSlice(rule, field)
			for _, v := range values {
				g.Expect(strings.Contains(v, "*")).To(BeFalse(), "%s: %s %s has a wildcard in %s", name, o.GetKind(), o.GetName(), field)
			}
		}
	}
}
