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

package argocdhealth

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite config/argocd/argocd-cm-snippet.yaml from the health.lua files")

const (
	// argocdDir holds the health checks in Argo CD's resource_customizations
	// layout: <group>/<Kind>/health.lua, health_test.yaml and testdata/.
	argocdDir = "../../config/argocd"
	// snippetPath is the argocd-cm ConfigMap that carries the scripts inline.
	snippetPath = argocdDir + "/argocd-cm-snippet.yaml"
	// healthKeyPrefix starts the argocd-cm key of a kind's health script:
	// resource.customizations.health.<group>_<Kind>.
	healthKeyPrefix = "resource.customizations.health."
	scriptTimeout   = 5 * time.Second
)

// healthCheck is one kind's health.lua and its health_test.yaml.
type healthCheck struct {
	group, kind string
	dir         string
	script      string
}

// configMapKey is the argocd-cm key of the check.
func (c healthCheck) configMapKey() string {
	return healthKeyPrefix + c.group + "_" + c.kind
}

// healthTests is the format of Argo CD's health_test.yaml.
type healthTests struct {
	Tests []struct {
		HealthStatus struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"healthStatus"`
		InputPath string `json:"inputPath"`
	} `json:"tests"`
}

// argocdStatuses are the health statuses Argo CD knows.
var argocdStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

// findHealthChecks returns every <group>/<Kind>/health.lua under config/argocd.
func findHealthChecks(t *testing.T) []healthCheck {
	t.Helper()
	var checks []healthCheck
	err := filepath.WalkDir(argocdDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || (d.Name() != "health.lua" && d.Name() != "health_test.yaml") {
			return nil
		}
		dir := filepath.Dir(path)
		rel, err := filepath.Rel(argocdDir, dir)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 2 {
			return fmt.Errorf("%s: want config/argocd/<group>/<Kind>/%s", path, d.Name())
		}
		if d.Name() == "health_test.yaml" {
			if _, err := os.Stat(filepath.Join(dir, "health.lua")); err != nil {
				return fmt.Errorf("%s has no health.lua beside it: %w", path, err)
			}
			return nil
		}
		if _, err := os.Stat(filepath.Join(dir, "health_test.yaml")); err != nil {
			return fmt.Errorf("%s has no health_test.yaml beside it: %w", path, err)
		}
		script, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checks = append(checks, healthCheck{group: parts[0], kind: parts[1], dir: dir, script: string(script)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) == 0 {
		t.Fatalf("found no health.lua under %s", argocdDir)
	}
	slices.SortFunc(checks, func(a, b healthCheck) int { return strings.Compare(a.configMapKey(), b.configMapKey()) })
	return checks
}

// newSandbox returns a Lua state set up the way Argo CD runs health scripts
// when resource.customizations.useOpenLibs is off (the default): only the
// package, base and table libraries are opened. There is no string, math, os
// or io library, and strings have no methods.
func newSandbox(t *testing.T) *lua.LState {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	t.Cleanup(L.Close)
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	t.Cleanup(cancel)
	L.SetContext(ctx)
	return L
}

// toLua converts a value decoded from JSON or YAML into a Lua value: maps and
// slices become tables (slices 1-based), numbers, strings and booleans their
// Lua counterparts, nil becomes nil.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case float32:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return lua.LString(v.String())
		}
		return lua.LNumber(f)
	case map[string]any:
		tbl := L.NewTable()
		for k, e := range v {
			tbl.RawSetString(k, toLua(L, e))
		}
		return tbl
	case []any:
		tbl := L.NewTable()
		for _, e := range v {
			tbl.Append(toLua(L, e))
		}
		return tbl
	default:
		panic(fmt.Sprintf("toLua: unsupported type %T", v))
	}
}

// runHealth runs a health script against obj in a fresh sandbox and returns
// the status and message of the table it returns.
func runHealth(t *testing.T, script string, obj map[string]any) (status, message string, err error) {
	t.Helper()
	L := newSandbox(t)
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		return "", "", err
	}
	ret := L.Get(-1)
	tbl, ok := ret.(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("the script returned %s, not a table", ret.Type())
	}
	st, ok := tbl.RawGetString("status").(lua.LString)
	if !ok {
		return "", "", fmt.Errorf("the returned table's status is %s, not a string", tbl.RawGetString("status").Type())
	}
	if m := tbl.RawGetString("message"); m != lua.LNil {
		msg, ok := m.(lua.LString)
		if !ok {
			return "", "", fmt.Errorf("the returned table's message is %s, not a string", m.Type())
		}
		message = string(msg)
	}
	return string(st), message, nil
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestHealthChecks runs every case of every health_test.yaml, as Argo CD's
// own resource_customizations tests do.
func TestHealthChecks(t *testing.T) {
	for _, check := range findHealthChecks(t) {
		t.Run(check.group+"/"+check.kind, func(t *testing.T) {
			var tests healthTests
			readYAML(t, filepath.Join(check.dir, "health_test.yaml"), &tests)
			if len(tests.Tests) == 0 {
				t.Fatal("health_test.yaml has no tests")
			}
			seen := map[string]bool{}
			for _, tc := range tests.Tests {
				t.Run(strings.TrimSuffix(filepath.Base(tc.InputPath), ".yaml"), func(t *testing.T) {
					want := tc.HealthStatus
					if !argocdStatuses[want.Status] {
						t.Fatalf("expected status %q is not an Argo CD health status", want.Status)
					}
					var obj map[string]any
					readYAML(t, filepath.Join(check.dir, filepath.FromSlash(tc.InputPath)), &obj)
					if obj["kind"] != check.kind {
						t.Fatalf("%s is a %v, want a %s", tc.InputPath, obj["kind"], check.kind)
					}
					status, message, err := runHealth(t, check.script, obj)
					if err != nil {
						t.Fatalf("health.lua failed on %s: %v", tc.InputPath, err)
					}
					if status != want.Status || message != want.Message {
						t.Errorf("health of %s = {%s, %q}, want {%s, %q}", tc.InputPath, status, message, want.Status, want.Message)
					}
					seen[status] = true
				})
			}
			for _, s := range []string{"Healthy", "Progressing", "Degraded"} {
				if !seen[s] {
					t.Errorf("health_test.yaml has no case whose health is %s", s)
				}
			}
		})
	}
}

// TestEveryTestdataFileIsUsed keeps testdata/ and health_test.yaml in step.
func TestEveryTestdataFileIsUsed(t *testing.T) {
	for _, check := range findHealthChecks(t) {
		var tests healthTests
		readYAML(t, filepath.Join(check.dir, "health_test.yaml"), &tests)
		used := map[string]bool{}
		for _, tc := range tests.Tests {
			used[filepath.Clean(filepath.FromSlash(tc.InputPath))] = true
		}
		files, err := filepath.Glob(filepath.Join(check.dir, "testdata", "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			rel, err := filepath.Rel(check.dir, f)
			if err != nil {
				t.Fatal(err)
			}
			if !used[rel] {
				t.Errorf("%s is used by no case of %s/health_test.yaml", f, check.dir)
			}
		}
	}
}

// TestSandboxOpensOnlyArgoCDLibraries makes sure the sandbox is as strict as
// Argo CD's, so that TestHealthChecks fails for a script that needs more.
func TestSandboxOpensOnlyArgoCDLibraries(t *testing.T) {
	obj := map[string]any{"metadata": map[string]any{"name": "x"}}
	for name, script := range map[string]string{
		"string library": `return {status = "Healthy", message = string.upper(obj.metadata.name)}`,
		"string methods": `return {status = "Healthy", message = obj.metadata.name:upper()}`,
		"string.format":  `return {status = "Healthy", message = string.format("%s", obj.metadata.name)}`,
		"math library":   `return {status = "Healthy", message = "" .. math.floor(1.5)}`,
		"os library":     `return {status = "Healthy", message = os.getenv("HOME")}`,
		"io library":     `io.write("x") return {status = "Healthy"}`,
		"require string": `local s = require("string") return {status = "Healthy", message = s.upper("x")}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := runHealth(t, script, obj)
			if err == nil {
				t.Fatalf("the sandbox ran a script that uses the %s", name)
			}
			t.Logf("rejected as expected: %v", err)
		})
	}
	t.Run("base and table libraries", func(t *testing.T) {
		script := `local t = {}
table.insert(t, "a")
for _, v in ipairs({"b"}) do table.insert(t, v) end
return {status = "Healthy", message = table.concat(t, ",") .. " " .. tostring(#t) .. " " .. obj.metadata.name .. 2}`
		status, message, err := runHealth(t, script, obj)
		if err != nil || status != "Healthy" || message != "a,b 2 x2" {
			t.Errorf("got {%s, %q, %v}, want {Healthy, \"a,b 2 x2\", nil}", status, message, err)
		}
	})
}

// forbiddenInScripts are uses of libraries that Argo CD does not open for
// health scripts. A script could reach them on a path no test case takes, so
// they are also rejected in the source (comments aside).
var forbiddenInScripts = regexp.MustCompile(`\b(string|math|os|io|debug|coroutine|channel)\s*\.|\brequire\b|\bloadstring\b|\bdofile\b|\bloadfile\b|:\s*(upper|lower|sub|find|match|gmatch|gsub|format|len|rep|byte|reverse)\s*\(`)

func TestScriptsUseOnlyArgoCDLibraries(t *testing.T) {
	comment := regexp.MustCompile(`--.*`)
	for _, check := range findHealthChecks(t) {
		for i, line := range strings.Split(check.script, "\n") {
			code := comment.ReplaceAllString(line, "")
			if m := forbiddenInScripts.FindString(code); m != "" {
				t.Errorf("%s/health.lua:%d uses %q, which Argo CD's health sandbox does not provide", check.dir, i+1, m)
			}
		}
	}
}

// renderSnippet returns the argocd-cm ConfigMap that carries the scripts.
func renderSnippet(t *testing.T, checks []healthCheck) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(`# Generated from config/argocd/<group>/<Kind>/health.lua by
#   go test ./internal/argocdhealth -run TestArgoCDConfigMapSnippet -update
# DO NOT EDIT: change the health.lua files and regenerate.
#
# The Argo CD health checks of the talkover-operator kinds, as argocd-cm keys.
# Merge them into the argocd-cm ConfigMap of your Argo CD installation, e.g.
#   kubectl -n argocd patch configmap argocd-cm --type merge \
#     --patch-file config/argocd/argocd-cm-snippet.yaml
# or add the data keys to the configs.cm values of the argo-cd Helm chart.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
`)
	for _, c := range checks {
		if !strings.HasSuffix(c.script, "\n") || strings.HasSuffix(c.script, "\n\n") {
			t.Fatalf("%s/health.lua must end with exactly one newline", c.dir)
		}
		if strings.TrimLeft(c.script, " \t") != c.script {
			t.Fatalf("%s/health.lua must not start with blanks", c.dir)
		}
		fmt.Fprintf(&b, "  %s: |\n", c.configMapKey())
		for _, line := range strings.Split(strings.TrimSuffix(c.script, "\n"), "\n") {
			if line == "" {
				b.WriteString("\n")
				continue
			}
			b.WriteString("    " + line + "\n")
		}
	}
	return b.String()
}

// TestArgoCDConfigMapSnippet checks that argocd-cm-snippet.yaml embeds exactly
// the health.lua files, both as text and once parsed as YAML.
func TestArgoCDConfigMapSnippet(t *testing.T) {
	checks := findHealthChecks(t)
	want := renderSnippet(t, checks)
	if *update {
		if err := os.WriteFile(snippetPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(snippetPath)
	if err != nil {
		t.Fatalf("%v (run: go test ./internal/argocdhealth -run TestArgoCDConfigMapSnippet -update)", err)
	}
	var cm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.UnmarshalStrict(got, &cm); err != nil {
		t.Fatalf("%s: %v", snippetPath, err)
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" || cm.Metadata.Name != "argocd-cm" {
		t.Errorf("%s is a %s %s named %q, want the v1 ConfigMap argocd-cm", snippetPath, cm.APIVersion, cm.Kind, cm.Metadata.Name)
	}
	keys := map[string]bool{}
	for _, c := range checks {
		keys[c.configMapKey()] = true
		embedded, ok := cm.Data[c.configMapKey()]
		if !ok {
			t.Errorf("%s has no key %s", snippetPath, c.configMapKey())
			continue
		}
		if embedded != c.script {
			t.Errorf("%s: %s differs from %s/health.lua; run: go test ./internal/argocdhealth -run TestArgoCDConfigMapSnippet -update",
				snippetPath, c.configMapKey(), c.dir)
		}
	}
	for k := range cm.Data {
		if !keys[k] {
			t.Errorf("%s has key %s, which matches no config/argocd/<group>/<Kind>/health.lua", snippetPath, k)
		}
	}
	if string(got) != want {
		t.Errorf("%s is not what the generator writes; run: go test ./internal/argocdhealth -run TestArgoCDConfigMapSnippet -update", snippetPath)
	}
}
