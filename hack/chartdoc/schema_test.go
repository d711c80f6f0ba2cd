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
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

// schemaNode is the part of a JSON schema that values.schema.json uses to
// describe keys.
type schemaNode struct {
	Type                 any                    `json:"type"`
	Description          string                 `json:"description"`
	Properties           map[string]*schemaNode `json:"properties"`
	AdditionalProperties any                    `json:"additionalProperties"`
	AnyOf                []*schemaNode          `json:"anyOf"`
}

// TestSchemaMatchesValues keeps values.schema.json in step with values.yaml:
// every key of values.yaml is in the schema with the type of its default,
// every key the schema lists is in values.yaml (global aside), every object
// whose keys both list refuses other keys, and every key values.yaml
// documents with "# --" has a description in the schema.
func TestSchemaMatchesValues(t *testing.T) {
	valuesYAML, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(valuesYAML, &values); err != nil {
		t.Fatal(err)
	}
	schemaJSON, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema schemaNode
	if err := json.Unmarshal(schemaJSON, &schema); err != nil {
		t.Fatal(err)
	}
	entries, err := parseValues(valuesYAML)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, e := range entries {
		documented[e.Key] = true
	}

	checkSchema(t, "", values, &schema, documented)
}

// checkSchema compares the values v at path with their schema s.
func checkSchema(t *testing.T, path string, v map[string]any, s *schemaNode, documented map[string]bool) {
	t.Helper()
	if s.AdditionalProperties != false {
		t.Errorf("%s: the schema lists its keys but admits others (set additionalProperties: false)", orTop(path))
	}
	for key, val := range v {
		p := join(path, key)
		child, ok := s.Properties[key]
		if !ok {
			t.Errorf("%s is in values.yaml but not in values.schema.json", p)
			continue
		}
		if want := jsonType(val); !admits(child, want) {
			t.Errorf("%s: values.yaml's default is a %s, the schema says %v", p, want, child.Type)
		}
		if documented[p] && child.Description == "" {
			t.Errorf("%s: documented in values.yaml but has no description in values.schema.json", p)
		}
		// A map documented as a whole (resources, podSecurityContext) is
		// one value; the schema may describe its inside freely.
		if m, isMap := val.(map[string]any); isMap && child.Properties != nil && !documented[p] {
			checkSchema(t, p, m, child, documented)
		}
	}
	for key := range s.Properties {
		topLevelGlobal := path == "" && key == "global"
		if _, ok := v[key]; !ok && !topLevelGlobal {
			t.Errorf("%s is in values.schema.json but not in values.yaml", join(path, key))
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// jsonType is the JSON schema type of a value decoded from YAML.
func jsonType(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case nil:
		return "null"
	}
	return "unknown"
}

// admits says whether a schema node (or one of its anyOf) allows a type.
func admits(s *schemaNode, typ string) bool {
	if len(s.AnyOf) > 0 {
		return slices.ContainsFunc(s.AnyOf, func(a *schemaNode) bool { return admits(a, typ) })
	}
	switch t := s.Type.(type) {
	case nil:
		return true
	case string:
		return t == typ || (t == "number" && typ == "integer")
	case []any:
		return slices.ContainsFunc(t, func(x any) bool { return x == typ || (x == "number" && typ == "integer") })
	}
	return false
}
