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
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestImageBuilder builds an image for two platforms with hack/ociimage from
// a stand-in binary (this test's own executable, which has Go build
// information) and opens it: both platforms, the entrypoint, the non-root
// user, the CA bundle, the SBOMs, and the same digests on a second build.
func TestImageBuilder(t *testing.T) {
	root := repoRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	ca := filepath.Join(tmp, "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tool := filepath.Join(tmp, "ociimage")
	run(t, root, "go", "build", "-o", tool, "./hack/ociimage")
	build := func(out string) {
		run(t, root, tool, "-out", filepath.Join(tmp, out), "-sbom-dir", filepath.Join(tmp, out+"-sbom"),
			"-version", "v9.8.7", "-ca-bundle", ca, "-created", "1700000000",
			"-binary", "linux/amd64="+self, "-binary", "linux/arm64="+self)
	}
	build("a")
	build("b")

	images := openLayout(t, filepath.Join(tmp, "a"), "v9.8.7")
	if len(images) != 2 {
		t.Fatalf("got the platforms %v, want linux/amd64 and linux/arm64", keys(images))
	}
	binary, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		img, ok := images[p]
		if !ok {
			t.Fatalf("no image for %s", p)
		}
		checkImage(t, p, img, "v9.8.7")
		if !bytes.Equal(img.Files["manager"].Data, binary) {
			t.Errorf("%s: /manager is not the binary given", p)
		}
		if img.Ref != "ghcr.io/talkover/talkover-operator:v9.8.7" {
			t.Errorf("%s: image name %q", p, img.Ref)
		}
		checkSBOM(t, filepath.Join(tmp, "a-sbom", platformFile(p)), binary, "stdlib")
	}
	a, _ := os.ReadFile(filepath.Join(tmp, "a", "index.json"))
	b, _ := os.ReadFile(filepath.Join(tmp, "b", "index.json"))
	if !bytes.Equal(a, b) {
		t.Errorf("two builds of the same inputs differ:\n%s\n%s", a, b)
	}
}

// TestReleaseArtifacts checks the release that 'make release' wrote into
// RELEASE_DIR (it runs this test last; skipped otherwise): SHA256SUMS, the
// image of each platform (and, for this machine's platform, that /manager
// --version prints the release version), the SBOMs, and that the chart
// package's default image is the image built.
func TestReleaseArtifacts(t *testing.T) {
	dist := os.Getenv("RELEASE_DIR")
	if dist == "" {
		t.Skip("RELEASE_DIR is not set: make release runs this test")
	}
	tag := os.Getenv("RELEASE_TAG")
	if tag == "" {
		tag = "v" + readVersion(t, repoRoot(t))
	}
	version := strings.TrimPrefix(tag, "v")
	chartPkg := "talkover-operator-" + version + ".tgz"
	checkSums(t, dist, "install.yaml", chartPkg, "oci/index.json", "sbom-linux-amd64.spdx.json", "sbom-linux-arm64.spdx.json")

	images := openLayout(t, filepath.Join(dist, "oci"), tag)
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		img, ok := images[p]
		if !ok {
			t.Fatalf("the release has no image for %s (it has %v)", p, keys(images))
		}
		checkImage(t, p, img, tag)
		checkSBOM(t, filepath.Join(dist, platformFile(p)), img.Files["manager"].Data,
			"sigs.k8s.io/controller-runtime", "k8s.io/client-go", "stdlib")
	}
	if img, ok := images[runtime.GOOS+"/"+runtime.GOARCH]; ok {
		checkVersionFlag(t, img.Files["manager"].Data, tag)
	}
	checkChartImage(t, filepath.Join(dist, chartPkg), version, images["linux/amd64"].Ref)
}

// checkSums verifies SHA256SUMS of dist and that it lists the files want.
func checkSums(t *testing.T, dist string, want ...string) {
	t.Helper()
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", sc.Text())
		}
		data, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s does not match SHA256SUMS", name)
		}
		listed[name] = true
	}
	for _, name := range want {
		if !listed[name] {
			t.Errorf("SHA256SUMS does not list %s", name)
		}
	}
}

// checkVersionFlag runs a manager binary with --version.
func checkVersionFlag(t *testing.T, binary []byte, tag string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "manager")
	if err := os.WriteFile(bin, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), bin, "--version").Output()
	if err != nil {
		t.Fatalf("/manager --version: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != tag {
		t.Errorf("/manager --version printed %q, want %q", got, tag)
	}
}

// checkChartImage checks that the chart package is of the version and that
// its default image (repository:v+appVersion) is ref, the image built.
func checkChartImage(t *testing.T, pkg, version, ref string) {
	t.Helper()
	chart := readChartPackage(t, pkg)
	var meta struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(chart["Chart.yaml"], &meta); err != nil {
		t.Fatal(err)
	}
	var values struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
	}
	if err := yaml.Unmarshal(chart["values.yaml"], &values); err != nil {
		t.Fatal(err)
	}
	if meta.Version != version || meta.AppVersion != version {
		t.Errorf("the chart package is version %q, appVersion %q; want %q", meta.Version, meta.AppVersion, version)
	}
	if values.Image.Tag != "" {
		t.Errorf("the chart package sets image.tag %q; want it empty (derived from appVersion)", values.Image.Tag)
	}
	if def := values.Image.Repository + ":v" + meta.AppVersion; def != ref {
		t.Errorf("the chart's default image is %s, the image built is %s", def, ref)
	}
}

// readChartPackage returns the files of a chart package by their path below
// the chart directory.
func readChartPackage(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, rest, ok := strings.Cut(h.Name, "/"); ok {
			files[rest] = data
		}
	}
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
