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
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// This file reads an OCI image layout with nothing but the OCI image
// specification in hand (it shares no code with hack/ociimage, which writes
// them), verifying every digest on the way.

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *ociPlatform      `json:"platform"`
	Annotations map[string]string `json:"annotations"`
}

type ociPlatform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
}

type ociIndex struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Manifests     []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Config        ociDescriptor   `json:"config"`
	Layers        []ociDescriptor `json:"layers"`
}

type ociConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		User       string            `json:"User"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// imageFile is a file of an image's root filesystem.
type imageFile struct {
	Mode     int64
	UID, GID int
	Dir      bool
	Data     []byte
}

// ociImage is the image of one platform.
type ociImage struct {
	Ref    string // the io.containerd.image.name annotation of the tag
	Config ociConfig
	Files  map[string]imageFile
}

// readBlob reads a blob of the layout and checks its digest and size.
func readBlob(t *testing.T, layout string, d ociDescriptor, wantMediaType string) []byte {
	t.Helper()
	if d.MediaType != wantMediaType {
		t.Fatalf("blob %s has media type %q, want %q", d.Digest, d.MediaType, wantMediaType)
	}
	hexSum, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok {
		t.Fatalf("digest %q is not sha256", d.Digest)
	}
	data, err := os.ReadFile(filepath.Join(layout, "blobs", "sha256", hexSum))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hexSum {
		t.Fatalf("blob %s does not match its digest", d.Digest)
	}
	if int64(len(data)) != d.Size {
		t.Fatalf("blob %s has %d bytes, its descriptor says %d", d.Digest, len(data), d.Size)
	}
	return data
}

func decodeJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

// openLayout returns the images of the tag in an OCI layout, by "os/arch".
func openLayout(t *testing.T, layout, tag string) map[string]ociImage {
	t.Helper()
	var marker struct {
		ImageLayoutVersion string `json:"imageLayoutVersion"`
	}
	data, err := os.ReadFile(filepath.Join(layout, "oci-layout"))
	if err != nil {
		t.Fatal(err)
	}
	decodeJSON(t, data, &marker)
	if marker.ImageLayoutVersion != "1.0.0" {
		t.Fatalf("oci-layout says version %q", marker.ImageLayoutVersion)
	}
	data, err = os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var top ociIndex
	decodeJSON(t, data, &top)
	i := slices.IndexFunc(top.Manifests, func(d ociDescriptor) bool {
		return d.Annotations["org.opencontainers.image.ref.name"] == tag
	})
	if i < 0 {
		t.Fatalf("index.json has no image tagged %q: %s", tag, data)
	}
	tagged := top.Manifests[i]
	var idx ociIndex
	decodeJSON(t, readBlob(t, layout, tagged, "application/vnd.oci.image.index.v1+json"), &idx)
	images := map[string]ociImage{}
	for _, md := range idx.Manifests {
		if md.Platform == nil {
			t.Fatalf("manifest %s of the index has no platform", md.Digest)
		}
		var m ociManifest
		decodeJSON(t, readBlob(t, layout, md, "application/vnd.oci.image.manifest.v1+json"), &m)
		img := ociImage{Ref: tagged.Annotations["io.containerd.image.name"], Files: map[string]imageFile{}}
		decodeJSON(t, readBlob(t, layout, m.Config, "application/vnd.oci.image.config.v1+json"), &img.Config)
		if img.Config.OS != md.Platform.OS || img.Config.Architecture != md.Platform.Architecture {
			t.Fatalf("the config of %s/%s says %s/%s", md.Platform.OS, md.Platform.Architecture, img.Config.OS, img.Config.Architecture)
		}
		if len(m.Layers) != len(img.Config.RootFS.DiffIDs) {
			t.Fatalf("%d layers but %d diff IDs", len(m.Layers), len(img.Config.RootFS.DiffIDs))
		}
		for li, ld := range m.Layers {
			readLayer(t, readBlob(t, layout, ld, "application/vnd.oci.image.layer.v1.tar+gzip"), img.Config.RootFS.DiffIDs[li], img.Files)
		}
		images[md.Platform.OS+"/"+md.Platform.Architecture] = img
	}
	return images
}

// readLayer adds the files of a gzipped layer to files, checking the digest
// of the uncompressed tar against the config's diff ID.
func readLayer(t *testing.T, blob []byte, diffID string, files map[string]imageFile) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(sum[:]) != diffID {
		t.Fatalf("a layer's uncompressed digest is not its diff ID %s", diffID)
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		files[name] = imageFile{Mode: h.Mode, UID: h.Uid, GID: h.Gid, Dir: h.Typeflag == tar.TypeDir, Data: data}
	}
}

// checkImage checks what every platform's image must be: the entrypoint, the
// non-root user and its passwd entry, the CA bundle and the version label.
func checkImage(t *testing.T, platform string, img ociImage, version string) {
	t.Helper()
	c := img.Config.Config
	if !slices.Equal(c.Entrypoint, []string{"/manager"}) || len(c.Cmd) != 0 {
		t.Errorf("%s: entrypoint %q and cmd %q, want [/manager] and none", platform, c.Entrypoint, c.Cmd)
	}
	if c.User != "65532:65532" {
		t.Errorf("%s: user %q, want the non-root 65532:65532 of the Dockerfile", platform, c.User)
	}
	if !strings.Contains(string(img.Files["etc/passwd"].Data), "\nnonroot:x:65532:65532:") {
		t.Errorf("%s: /etc/passwd has no nonroot entry for 65532: %q", platform, img.Files["etc/passwd"].Data)
	}
	if m, ok := img.Files["manager"]; !ok || m.Mode&0o111 == 0 || m.Dir {
		t.Errorf("%s: /manager is missing or not executable", platform)
	}
	if !bytes.Contains(img.Files["etc/ssl/certs/ca-certificates.crt"].Data, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Errorf("%s: no CA bundle at /etc/ssl/certs/ca-certificates.crt", platform)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.source":   "https://github.com/talkover/talkover-operator",
	} {
		if got := c.Labels[k]; got != want {
			t.Errorf("%s: label %s is %q, want %q", platform, k, got, want)
		}
	}
}

// spdxSBOM is what the tests read of an SPDX SBOM.
type spdxSBOM struct {
	SPDXVersion string `json:"spdxVersion"`
	Packages    []struct {
		SPDXID    string `json:"SPDXID"`
		Name      string `json:"name"`
		Version   string `json:"versionInfo"`
		Checksums []struct {
			Algorithm string `json:"algorithm"`
			Value     string `json:"checksumValue"`
		} `json:"checksums"`
	} `json:"packages"`
}

// checkSBOM checks that an SBOM is SPDX 2.3, names the binary by its
// checksum and lists the modules wantModules.
func checkSBOM(t *testing.T, path string, binary []byte, wantModules ...string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s spdxSBOM
	decodeJSON(t, data, &s)
	if s.SPDXVersion != "SPDX-2.3" {
		t.Errorf("%s: spdxVersion %q", path, s.SPDXVersion)
	}
	sum := sha256.Sum256(binary)
	names := map[string]bool{}
	found := false
	for _, p := range s.Packages {
		names[p.Name] = true
		for _, c := range p.Checksums {
			if c.Algorithm == "SHA256" && c.Value == hex.EncodeToString(sum[:]) {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("%s: no package has the binary's SHA256", path)
	}
	for _, m := range wantModules {
		if !names[m] {
			t.Errorf("%s: module %s is not listed", path, m)
		}
	}
}

func platformFile(platform string) string {
	return fmt.Sprintf("sbom-%s.spdx.json", strings.ReplaceAll(platform, "/", "-"))
}
