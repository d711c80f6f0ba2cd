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

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The user the image runs as: the nonroot user of the distroless base of the
// Dockerfile, so both builds run the manager as the same user.
const (
	userID   = 65532
	userSpec = "65532:65532"
)

// Media types of the OCI image specification.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"

	annotationVersion = "org.opencontainers.image.version"
)

// options say what to build.
type options struct {
	Out        string
	SBOMDir    string
	Version    string
	Repository string
	Revision   string
	CABundle   string
	Binaries   []platformBinary
	Created    time.Time
}

// result says what was written.
type result struct {
	IndexDigest string
	Manifests   []builtManifest
}

type builtManifest struct {
	OS, Arch, Digest, SBOM string
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type imageConfig struct {
	Created      string        `json:"created"`
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Config       runtimeConfig `json:"config"`
	RootFS       rootFS        `json:"rootfs"`
	History      []history     `json:"history"`
}

type runtimeConfig struct {
	User       string            `json:"User"`
	Entrypoint []string          `json:"Entrypoint"`
	WorkingDir string            `json:"WorkingDir"`
	Env        []string          `json:"Env"`
	Labels     map[string]string `json:"Labels"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type history struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
}

type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

type index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Manifests     []descriptor      `json:"manifests"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// build writes the image layout and the SBOMs.
func build(o options) (result, error) {
	ca, err := os.ReadFile(o.CABundle)
	if err != nil {
		return result{}, fmt.Errorf("reading the CA bundle: %w", err)
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return result{}, fmt.Errorf("%s holds no PEM certificate", o.CABundle)
	}
	if err := os.RemoveAll(o.Out); err != nil {
		return result{}, err
	}
	if err := os.MkdirAll(filepath.Join(o.Out, "blobs", "sha256"), 0o755); err != nil {
		return result{}, err
	}
	if err := os.MkdirAll(o.SBOMDir, 0o755); err != nil {
		return result{}, err
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "talkover-operator",
		"org.opencontainers.image.description": "Manages the actions of Talkover voice agents as Kubernetes resources",
		annotationVersion:                      o.Version,
		"org.opencontainers.image.source":      "https://github.com/talkover/talkover-operator",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
	}
	if o.Revision != "" {
		labels["org.opencontainers.image.revision"] = o.Revision
	}
	var res result
	var manifests []descriptor
	for _, b := range o.Binaries {
		mDesc, err := buildPlatform(o, b, ca, labels)
		if err != nil {
			return result{}, err
		}
		manifests = append(manifests, mDesc)
		sbomPath := filepath.Join(o.SBOMDir, fmt.Sprintf("sbom-%s-%s.spdx.json", b.OS, b.Arch))
		if err := writeSBOM(sbomPath, b, o, ca); err != nil {
			return result{}, err
		}
		res.Manifests = append(res.Manifests, builtManifest{OS: b.OS, Arch: b.Arch, Digest: mDesc.Digest, SBOM: sbomPath})
	}
	idx := index{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: manifests,
		Annotations: map[string]string{annotationVersion: o.Version}}
	idxDesc, err := writeJSONBlob(o.Out, mediaTypeIndex, idx)
	if err != nil {
		return result{}, err
	}
	idxDesc.Annotations = map[string]string{
		// The tag, as skopeo and crane look it up: oci:dist/oci:vX.Y.Z.
		"org.opencontainers.image.ref.name": o.Version,
		"io.containerd.image.name":          o.Repository + ":" + o.Version,
	}
	top := index{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: []descriptor{idxDesc}}
	if err := writeJSONFile(filepath.Join(o.Out, "index.json"), top); err != nil {
		return result{}, err
	}
	if err := writeJSONFile(filepath.Join(o.Out, "oci-layout"), map[string]string{"imageLayoutVersion": "1.0.0"}); err != nil {
		return result{}, err
	}
	res.IndexDigest = idxDesc.Digest
	return res, nil
}

// buildPlatform writes the layer, the config and the manifest of the image
// of one platform and returns the manifest's descriptor.
func buildPlatform(o options, b platformBinary, ca []byte, labels map[string]string) (descriptor, error) {
	bin, err := os.ReadFile(b.Path)
	if err != nil {
		return descriptor{}, err
	}
	layer, diffID, err := rootfsLayer(bin, ca, o.Created)
	if err != nil {
		return descriptor{}, err
	}
	layerDesc, err := writeBlob(o.Out, mediaTypeLayer, layer)
	if err != nil {
		return descriptor{}, err
	}
	created := o.Created.Format(time.RFC3339)
	cfg := imageConfig{
		Created:      created,
		Architecture: b.Arch,
		OS:           b.OS,
		Config: runtimeConfig{
			User:       userSpec,
			Entrypoint: []string{"/manager"},
			WorkingDir: "/",
			Env:        []string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
			Labels:     labels,
		},
		RootFS: rootFS{Type: "layers", DiffIDs: []string{diffID}},
		History: []history{{
			Created:   created,
			CreatedBy: "hack/ociimage: /manager, /etc/ssl/certs/ca-certificates.crt, /etc/passwd, /etc/group",
		}},
	}
	cfgDesc, err := writeJSONBlob(o.Out, mediaTypeConfig, cfg)
	if err != nil {
		return descriptor{}, err
	}
	m := manifest{
		SchemaVersion: 2,
		MediaType:     mediaTypeManifest,
		Config:        cfgDesc,
		Layers:        []descriptor{layerDesc},
		Annotations:   map[string]string{annotationVersion: o.Version},
	}
	mDesc, err := writeJSONBlob(o.Out, mediaTypeManifest, m)
	if err != nil {
		return descriptor{}, err
	}
	mDesc.Platform = &platform{Architecture: b.Arch, OS: b.OS}
	return mDesc, nil
}

// rootfsLayer returns the gzipped layer and the digest of its uncompressed
// tar (the config's diff ID).
func rootfsLayer(bin, ca []byte, created time.Time) ([]byte, string, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	type entry struct {
		name     string
		mode     int64
		uid      int
		dir      bool
		contents []byte
	}
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, contents: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "etc/passwd", mode: 0o644, contents: []byte("root:x:0:0:root:/root:/sbin/nologin\n" +
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, contents: ca},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, uid: userID, dir: true},
		{name: "manager", mode: 0o755, contents: bin},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.uid,
			ModTime: created,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.contents))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(e.contents); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	diffID := sha256.Sum256(raw.Bytes())
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, "", err
	}
	// No name and a zero ModTime in the gzip header keep the layer reproducible.
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), "sha256:" + hex.EncodeToString(diffID[:]), nil
}

func writeJSONBlob(layout, mediaType string, v any) (descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return descriptor{}, err
	}
	return writeBlob(layout, mediaType, data)
}

func writeBlob(layout, mediaType string, data []byte) (descriptor, error) {
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	path := filepath.Join(layout, "blobs", "sha256", hexSum)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: mediaType, Digest: "sha256:" + hexSum, Size: int64(len(data))}, nil
}

func writeJSONFile(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

var errNoBuildInfo = errors.New("the binary has no Go build information")
