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

// Command chartdoc writes the chart's README.md from the "# --" comments of
// its values.yaml, in the style of helm-docs: a comment block whose last
// paragraph starts with "# --" documents the key right below it (a map
// documented so is one row; its children get rows only when they have their
// own "# --" comment). A leaf key that neither it nor any parent documents is
// an error, so every value is described.
//
//	go run ./hack/chartdoc [-chart dist/chart] [-check]
//
// With -check it writes nothing and exits 1 when README.md is stale.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// entry is one documented key of values.yaml.
type entry struct {
	Key         string
	Type        string
	Default     string
	Description string
}

// chartMeta is the part of Chart.yaml the README shows.
type chartMeta struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	KubeVersion string `yaml:"kubeVersion"`
}

func main() {
	chart := flag.String("chart", "dist/chart", "the chart directory")
	check := flag.Bool("check", false, "write nothing; exit 1 if README.md is stale")
	flag.Parse()
	if err := run(*chart, *check); err != nil {
		fmt.Fprintln(os.Stderr, "chartdoc:", err)
		os.Exit(1)
	}
}

func run(chart string, check bool) error {
	want, err := renderChart(chart)
	if err != nil {
		return err
	}
	path := filepath.Join(chart, "README.md")
	if check {
		got, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s is stale: run make chart-docs", path)
		}
		return nil
	}
	return os.WriteFile(path, want, 0o644)
}

// renderChart returns the README.md of the chart in dir.
func renderChart(dir string) ([]byte, error) {
	chartYAML, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	var meta chartMeta
	if err := yaml.Unmarshal(chartYAML, &meta); err != nil {
		return nil, fmt.Errorf("reading Chart.yaml: %w", err)
	}
	values, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		return nil, err
	}
	entries, err := parseValues(values)
	if err != nil {
		return nil, fmt.Errorf("values.yaml: %w", err)
	}
	return render(meta, entries), nil
}

// parseValues returns the documented keys of a values.yaml, in file order.
func parseValues(data []byte) ([]entry, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("want a mapping at the top")
	}
	var w walker
	if err := w.walk(doc.Content[0], "", false); err != nil {
		return nil, err
	}
	if len(w.undocumented) > 0 {
		return nil, fmt.Errorf("keys without a \"# --\" comment: %s", strings.Join(w.undocumented, ", "))
	}
	return w.entries, nil
}

// walker collects the documented and the undocumented keys of values.yaml.
type walker struct {
	entries      []entry
	undocumented []string
}

// walk visits the keys of mapping m; documented says that a parent of m
// has a "# --" comment.
func (w *walker) walk(m *yaml.Node, prefix string, documented bool) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := prefix + k.Value
		desc, ok := description(k.HeadComment)
		if ok {
			e, err := newEntry(key, v, desc)
			if err != nil {
				return err
			}
			w.entries = append(w.entries, e)
		}
		if v.Kind == yaml.MappingNode && len(v.Content) > 0 {
			if err := w.walk(v, key+".", documented || ok); err != nil {
				return err
			}
			continue
		}
		if !ok && !documented {
			w.undocumented = append(w.undocumented, key)
		}
	}
	return nil
}

// description returns the text of the last "# --" paragraph of a head
// comment: the "# --" line and the comment lines after it.
func description(comment string) (string, bool) {
	lines := strings.Split(comment, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "# --") {
			start = i
		}
	}
	if start < 0 {
		return "", false
	}
	var words []string
	for i, l := range lines[start:] {
		l = strings.TrimSpace(l)
		if i == 0 {
			l = strings.TrimPrefix(l, "# --")
		} else {
			if !strings.HasPrefix(l, "#") {
				break
			}
			l = strings.TrimPrefix(l, "#")
		}
		if l = strings.TrimSpace(l); l != "" {
			words = append(words, l)
		}
	}
	return strings.Join(words, " "), true
}

func newEntry(key string, v *yaml.Node, desc string) (entry, error) {
	var val any
	if err := v.Decode(&val); err != nil {
		return entry{}, fmt.Errorf("%s: %w", key, err)
	}
	def, err := json.Marshal(val)
	if err != nil {
		return entry{}, fmt.Errorf("%s: %w", key, err)
	}
	return entry{Key: key, Type: typeOf(v), Default: string(def), Description: desc}, nil
}

func typeOf(v *yaml.Node) string {
	switch v.Kind {
	case yaml.MappingNode:
		return "object"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		switch v.ShortTag() {
		case "!!str":
			return "string"
		case "!!int":
			return "int"
		case "!!bool":
			return "bool"
		case "!!float":
			return "float"
		case "!!null":
			return "null"
		}
	case yaml.DocumentNode, yaml.AliasNode:
	}
	return "any"
}

// render writes the README.
func render(meta chartMeta, entries []entry) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", meta.Name)
	b.WriteString("<!-- Generated by hack/chartdoc from values.yaml and Chart.yaml: do not edit; run make chart-docs. -->\n\n")
	fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(meta.Description))
	if meta.KubeVersion != "" {
		fmt.Fprintf(&b, "Kubernetes: `%s`\n\n", meta.KubeVersion)
	}
	b.WriteString("## Installing\n\n")
	fmt.Fprintf(&b, "```sh\nhelm install %s talkover-operator-X.Y.Z.tgz -n talkover-operator-system --create-namespace\n```\n\n", meta.Name)
	b.WriteString("The image tag defaults to `v` followed by the chart's `appVersion`. ")
	b.WriteString("`values.schema.json` rejects unknown or misspelt values. The user guide is the project's README: ")
	b.WriteString("https://github.com/talkover/talkover-operator#readme\n\n")
	b.WriteString("## Values\n\n")
	b.WriteString("| Key | Type | Default | Description |\n|---|---|---|---|\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", e.Key, e.Type, cell(e.Default), cell(e.Description))
	}
	return []byte(b.String())
}

// cell escapes the pipes of a table cell.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
