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
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const chartDir = "../../dist/chart"

// TestREADMEIsCurrent fails when dist/chart/README.md is not what chartdoc
// writes from values.yaml and Chart.yaml.
func TestREADMEIsCurrent(t *testing.T) {
	want, err := renderChart(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("dist/chart/README.md is stale: run make chart-docs")
	}
}

func TestParseValues(t *testing.T) {
	tests := map[string]struct {
		values  string
		want    []entry
		wantErr string
	}{
		"a documented leaf, a map documented as a whole, and a key documented below an undocumented map": {
			values: `# A file comment.

# -- The name.
name: x
# -- The security context,
# in two lines.
securityContext:
  runAsNonRoot: true
image:
  # -- The tag.
  tag: ""
`,
			want: []entry{
				{Key: "name", Type: "string", Default: `"x"`, Description: "The name."},
				{Key: "securityContext", Type: "object", Default: `{"runAsNonRoot":true}`, Description: "The security context, in two lines."},
				{Key: "image.tag", Type: "string", Default: `""`, Description: "The tag."},
			},
		},
		"a commented-out example above the next key's comment is not part of it": {
			values: `# -- Env.
extraEnv: []
#  - name: HTTPS_PROXY
# -- Volumes.
extraVolumes: []
`,
			want: []entry{
				{Key: "extraEnv", Type: "list", Default: `[]`, Description: "Env."},
				{Key: "extraVolumes", Type: "list", Default: `[]`, Description: "Volumes."},
			},
		},
		"an undocumented leaf is an error": {
			values:  "image:\n  # just a comment\n  pullPolicy: IfNotPresent\n",
			wantErr: "image.pullPolicy",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseValues([]byte(tt.values))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("entry %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
