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

// Package release holds fast checks of what a release is made of: the one
// VERSION and the places that repeat it, and the Makefile targets that must
// not build a Kubernetes control plane. They need no cluster.
package release

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// repoRoot returns the directory of the module's go.mod, above the working
// directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/talkover/talkover-operator\n") {
			return dir
		}
		if !errors.Is(err, os.ErrNotExist) && err != nil {
			t.Fatal(err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("cannot find the talkover-operator go.mod above the working directory")
		}
		dir = parent
	}
}

// readVersion returns the release version of the VERSION file.
func readVersion(t *testing.T, root string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// chartMeta is the part of Chart.yaml that names the version.
type chartMeta struct {
	Version     string            `json:"version"`
	AppVersion  string            `json:"appVersion"`
	KubeVersion string            `json:"kubeVersion"`
	Annotations map[string]string `json:"annotations"`
}

func readChart(t *testing.T, root string) chartMeta {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "dist", "chart", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c chartMeta
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("Chart.yaml: %v", err)
	}
	return c
}

// TestChartVersionMatchesVERSION fails when Chart.yaml and the VERSION file
// drift apart; 'make set-version VERSION=X.Y.Z' changes them together.
func TestChartVersionMatchesVERSION(t *testing.T) {
	root := repoRoot(t)
	v := readVersion(t, root)
	if strings.HasPrefix(v, "v") || strings.Count(v, ".") < 2 {
		t.Fatalf("VERSION is %q; want X.Y.Z without a leading v", v)
	}
	c := readChart(t, root)
	if c.Version != v {
		t.Errorf("dist/chart/Chart.yaml version is %q, VERSION says %q: run make set-version VERSION=%s", c.Version, v, v)
	}
	if c.AppVersion != v {
		t.Errorf("dist/chart/Chart.yaml appVersion is %q, VERSION says %q: run make set-version VERSION=%s", c.AppVersion, v, v)
	}
	var images []struct {
		Name      string   `json:"name"`
		Image     string   `json:"image"`
		Platforms []string `json:"platforms"`
	}
	if err := yaml.Unmarshal([]byte(c.Annotations["artifacthub.io/images"]), &images); err != nil {
		t.Fatalf("artifacthub.io/images: %v", err)
	}
	if len(images) != 1 || images[0].Image != "ghcr.io/talkover/talkover-operator:v"+v {
		t.Errorf("artifacthub.io/images is %+v; want the one manager image ghcr.io/talkover/talkover-operator:v%s", images, v)
	}
	if c.KubeVersion == "" {
		t.Error("dist/chart/Chart.yaml sets no kubeVersion")
	}
	for _, a := range []string{"artifacthub.io/license", "artifacthub.io/links", "artifacthub.io/changes"} {
		if c.Annotations[a] == "" {
			t.Errorf("dist/chart/Chart.yaml has no %s annotation", a)
		}
	}
}
