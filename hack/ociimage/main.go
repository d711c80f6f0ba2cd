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

// Command ociimage assembles the manager's container image without a
// container engine and without a base image: one layer holding the static
// binary at /manager, a CA bundle, and /etc/passwd and /etc/group entries for
// the non-root user 65532, the user the Dockerfile's distroless base has. It
// writes a multi-platform OCI image layout (an image index of one manifest
// per platform) and an SPDX 2.3 SBOM per platform listing the Go modules
// compiled into the binary (read from its build information).
//
//	go run ./hack/ociimage -out dist/oci -sbom-dir dist -version v0.1.0 \
//	    -binary linux/amd64=dist/manager-linux-amd64 -binary linux/arm64=dist/manager-linux-arm64
//
// The output is reproducible: every timestamp is -created (default: the
// SOURCE_DATE_EPOCH environment variable, else 0) and every file is written
// in a fixed order, so the same inputs give the same digests.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// platformBinaries is the repeatable -binary flag: os/arch=path.
type platformBinaries []platformBinary

type platformBinary struct {
	OS, Arch, Path string
}

func (p *platformBinaries) String() string {
	parts := make([]string, 0, len(*p))
	for _, b := range *p {
		parts = append(parts, b.OS+"/"+b.Arch+"="+b.Path)
	}
	return strings.Join(parts, ",")
}

func (p *platformBinaries) Set(v string) error {
	plat, path, ok := strings.Cut(v, "=")
	osName, arch, ok2 := strings.Cut(plat, "/")
	if !ok || !ok2 || osName == "" || arch == "" || path == "" {
		return fmt.Errorf("want os/arch=path, got %q", v)
	}
	*p = append(*p, platformBinary{OS: osName, Arch: arch, Path: path})
	return nil
}

func main() {
	var (
		o        options
		binaries platformBinaries
		created  int64
	)
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var err error
		if created, err = strconv.ParseInt(s, 10, 64); err != nil {
			fmt.Fprintln(os.Stderr, "ociimage: SOURCE_DATE_EPOCH:", err)
			os.Exit(2)
		}
	}
	flag.StringVar(&o.Out, "out", "dist/oci", "the OCI image layout directory to write (replaced)")
	flag.StringVar(&o.SBOMDir, "sbom-dir", "dist", "where to write sbom-<os>-<arch>.spdx.json")
	flag.StringVar(&o.Version, "version", "", "the release version (vX.Y.Z): the image's tag and version label")
	flag.StringVar(&o.Repository, "repository", "ghcr.io/talkover/talkover-operator", "the image repository, for the ref name and the SBOM")
	flag.StringVar(&o.Revision, "revision", "", "the source revision (git commit) for the revision label")
	flag.StringVar(&o.CABundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "the PEM CA bundle to install as /etc/ssl/certs/ca-certificates.crt")
	flag.Var(&binaries, "binary", "os/arch=path of a static manager binary (repeat per platform)")
	flag.Int64Var(&created, "created", created, "the creation time of every file and of the image, in seconds since the epoch")
	flag.Parse()
	o.Binaries = binaries
	o.Created = time.Unix(created, 0).UTC()
	if o.Version == "" || len(o.Binaries) == 0 {
		fmt.Fprintln(os.Stderr, "ociimage: -version and at least one -binary are required")
		os.Exit(2)
	}
	res, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
	fmt.Printf("Wrote the image %s:%s (index %s) to %s\n", o.Repository, o.Version, res.IndexDigest, o.Out)
	for _, m := range res.Manifests {
		fmt.Printf("  %s/%s: manifest %s, SBOM %s\n", m.OS, m.Arch, m.Digest, m.SBOM)
	}
}
