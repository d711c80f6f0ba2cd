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
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talkover/talkover-operator/test/utils"
)

// lockedBuffer is a bytes.Buffer safe for the demo's writes and the test's
// reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDemoOnce runs the demo as 'DEMO_ONCE=1 make demo' does, with a
// manager built from this tree, and checks that it reports every sample
// Ready, shows what the simulator holds, and cleans up after itself.
func TestDemoOnce(t *testing.T) {
	root, err := utils.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	assets := utils.AssetsDir(root)
	if err := utils.CheckAssets(assets); err != nil {
		t.Fatalf("the local control plane is not built: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	tmp := t.TempDir()
	manager := filepath.Join(tmp, "manager")
	buildStart := time.Now()
	if err := utils.BuildManager(ctx, root, manager); err != nil {
		t.Fatal(err)
	}
	t.Logf("built the manager in %s", time.Since(buildStart).Round(time.Millisecond))

	out := &lockedBuffer{}
	cfg := config{
		root:         root,
		assets:       assets,
		manager:      manager,
		workDir:      filepath.Join(tmp, "demo"),
		once:         true,
		readyTimeout: 90 * time.Second,
		interval:     250 * time.Millisecond,
		out:          out,
	}
	runStart := time.Now()
	err = run(ctx, cfg)
	t.Logf("demo output (%s):\n%s", time.Since(runStart).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("the demo failed: %v\n--- manager log ---\n%s", err, utils.TailFile(filepath.Join(cfg.workDir, "manager.log"), 40))
	}

	text := out.String()
	for _, want := range []string{
		"export KUBECONFIG=" + filepath.Join(cfg.workDir, "kubeconfig"),
		"All 3 AgentActions are Ready",
		"url=https://api.example.com/schedule",
		"transfer_to=+1234567890",
		"hold_duration=30",
		"Done: every sample is Ready",
		"Stopping the manager (SIGTERM)",
		"Stopping the control plane",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	for _, name := range []string{"schedule-meeting", "transfer-call", "put-call-on-hold"} {
		row := regexp.MustCompile(`(?m)^` + name + `\s+\S+\s+[0-9a-f-]{36}\s+True\s+Synced\s*$`)
		if !row.MatchString(text) {
			t.Errorf("no table row shows %s Ready with a remote ID", name)
		}
	}
	// Exactly one create per sample: the operator must not re-POST.
	if !regexp.MustCompile(`POST /agents/\{agent_id\}/actions\s+3\n`).MatchString(text) {
		t.Errorf("the request counts do not show exactly 3 upserts")
	}
	if _, err := os.Stat(filepath.Join(cfg.workDir, "kubeconfig")); !os.IsNotExist(err) {
		t.Errorf("the kubeconfig of the stopped control plane was not removed (stat: %v)", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.workDir, "manager.log")); err != nil {
		t.Errorf("the manager's log is missing: %v", err)
	}
}
