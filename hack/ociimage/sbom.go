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
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// An SPDX 2.3 document, as much of it as the SBOM uses.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID                string            `json:"SPDXID"`
	Name                  string            `json:"name"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	Checksums             []spdxChecksum    `json:"checksums,omitempty"`
	ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
	Comment               string            `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

// SPDX identifiers and values used more than once.
const (
	noAssertion = "NOASSERTION"
	idImage     = "SPDXRef-Image"
	idManager   = "SPDXRef-Manager"
	idCABundle  = "SPDXRef-CABundle"
	idStdlib    = "SPDXRef-GoStdlib"
)

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func purl(name, version string) spdxExternalRef {
	return spdxExternalRef{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: "pkg:golang/" + name + "@" + version}
}

// writeSBOM writes the SPDX SBOM of the image of one platform: the image
// contains the manager binary and the CA bundle; the binary depends on the
// Go standard library and on every module its build information lists.
func writeSBOM(path string, b platformBinary, o options, ca []byte) error {
	bin, err := os.ReadFile(b.Path)
	if err != nil {
		return err
	}
	info, err := buildinfo.ReadFile(b.Path)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", b.Path, errNoBuildInfo, err)
	}
	binSum := sha256Hex(bin)
	doc := spdxDocument{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              fmt.Sprintf("talkover-operator-%s-%s-%s", o.Version, b.OS, b.Arch),
		DocumentNamespace: fmt.Sprintf("https://github.com/talkover/talkover-operator/spdx/%s/%s-%s/%s", o.Version, b.OS, b.Arch, binSum),
		CreationInfo: spdxCreationInfo{
			Created:  o.Created.Format(time.RFC3339),
			Creators: []string{"Tool: talkover-operator hack/ociimage"},
		},
	}
	image := spdxPackage{
		SPDXID: idImage, Name: o.Repository, VersionInfo: o.Version,
		DownloadLocation: noAssertion, PrimaryPackagePurpose: "CONTAINER",
		ExternalRefs: []spdxExternalRef{{
			ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl",
			ReferenceLocator: fmt.Sprintf("pkg:oci/talkover-operator?repository_url=%s&tag=%s&arch=%s", o.Repository, o.Version, b.Arch),
		}},
	}
	manager := spdxPackage{
		SPDXID: idManager, Name: info.Main.Path, VersionInfo: o.Version,
		DownloadLocation: "https://github.com/talkover/talkover-operator", PrimaryPackagePurpose: "APPLICATION",
		Checksums:    []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: binSum}},
		ExternalRefs: []spdxExternalRef{purl(info.Main.Path, o.Version)},
		Comment:      "/manager, built by " + info.GoVersion + " from " + info.Path + buildSettings(info),
	}
	caPkg := spdxPackage{
		SPDXID: idCABundle, Name: "ca-certificates.crt", DownloadLocation: noAssertion,
		PrimaryPackagePurpose: "FILE",
		Checksums:             []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: sha256Hex(ca)}},
		Comment:               "/etc/ssl/certs/ca-certificates.crt, copied from " + o.CABundle + " of the build machine",
	}
	stdlib := spdxPackage{
		SPDXID: idStdlib, Name: "stdlib", VersionInfo: info.GoVersion, DownloadLocation: noAssertion,
		PrimaryPackagePurpose: "LIBRARY", ExternalRefs: []spdxExternalRef{purl("stdlib", info.GoVersion)},
	}
	doc.Packages = append(doc.Packages, image, manager, caPkg, stdlib)
	doc.Relationships = append(doc.Relationships,
		spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", idImage},
		spdxRelationship{idImage, "CONTAINS", idManager},
		spdxRelationship{idImage, "CONTAINS", idCABundle},
		spdxRelationship{idManager, "DEPENDS_ON", idStdlib},
	)
	for i, dep := range info.Deps {
		if dep.Replace != nil {
			dep = dep.Replace
		}
		id := fmt.Sprintf("SPDXRef-Module-%d", i+1)
		p := spdxPackage{
			SPDXID: id, Name: dep.Path, VersionInfo: dep.Version, DownloadLocation: noAssertion,
			PrimaryPackagePurpose: "LIBRARY", ExternalRefs: []spdxExternalRef{purl(dep.Path, dep.Version)},
		}
		if dep.Sum != "" {
			p.Comment = "go.sum hash " + dep.Sum
		}
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, spdxRelationship{idManager, "DEPENDS_ON", id})
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// buildSettings lists the build settings that say how the binary was built.
func buildSettings(info *buildinfo.BuildInfo) string {
	var parts []string
	for _, s := range info.Settings {
		switch s.Key {
		case "-trimpath", "-ldflags", "CGO_ENABLED", "GOOS", "GOARCH", "GOAMD64", "GOARM64", "vcs.revision":
			parts = append(parts, s.Key+"="+s.Value)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, " ") + ")"
}
