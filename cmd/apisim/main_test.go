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
	"io"
	"log"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talkover/talkover-operator/internal/apisim"
)

func TestParseFlags(t *testing.T) {
	defaults := config{addr: "127.0.0.1:8089", upsertMode: apisim.UpsertByNodeID}
	tests := map[string]struct {
		args    []string
		want    *config
		wantErr string
	}{
		"defaults": {args: nil, want: &defaults},
		"full": {
			args: []string{"--env", "dev=talq_a", "--env", "prod=talq_b", "--agent", "dev/a1:published",
				"--agent", "prod/a2", "--rate-limit", "100", "--upsert-mode", "always-create", "--addr", "localhost:0"},
			want: &config{
				addr:       "localhost:0",
				envs:       []environment{{name: "dev", token: "talq_a"}, {name: "prod", token: "talq_b"}},
				agents:     []agentSpec{{env: "dev", id: "a1", published: true}, {env: "prod", id: "a2"}},
				rateLimit:  100,
				upsertMode: apisim.AlwaysCreate,
			},
		},
		"env without token":     {args: []string{"--env", "dev="}, wantErr: "NAME=TOKEN"},
		"agent without env":     {args: []string{"--env", "dev=t", "--agent", "a1"}, wantErr: "ENV/AGENT_ID"},
		"agent of unknown env":  {args: []string{"--env", "dev=t", "--agent", "qa/a1"}, wantErr: "has no --env"},
		"bad upsert mode":       {args: []string{"--upsert-mode", "name"}, wantErr: "unknown upsert mode"},
		"negative rate limit":   {args: []string{"--rate-limit", "-1"}, wantErr: "--rate-limit"},
		"all interfaces":        {args: []string{"--addr", ":8089"}, wantErr: "not a loopback"},
		"remote allowed":        {args: []string{"--addr", "0.0.0.0:8089", "--allow-remote"}},
		"IPv6 loopback":         {args: []string{"--addr", "[::1]:8089"}},
		"positional arguments":  {args: []string{"extra"}, wantErr: "unexpected arguments"},
		"unknown flag rejected": {args: []string{"--nope"}, wantErr: "flag provided but not defined"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.want != nil && !reflect.DeepEqual(got, *tt.want):
				t.Errorf("config = %+v, want %+v", got, *tt.want)
			}
		})
	}
}

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRun(t *testing.T) {
	cfg, err := parseFlags([]string{"--addr", "127.0.0.1:0", "--env", "dev=talq_secret_token", "--agent", "dev/a1:published"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, cfg, log.New(&logs, "", 0), func(a string) { addrc <- a }) }()
	addr := <-addrc

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/api/v1/agents/a1", nil)
	req.Header.Set("Authorization", "Bearer talq_secret_token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"current_status":"published"`) {
		t.Fatalf("get agent = %d %s", resp.StatusCode, body)
	}
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/_admin/state", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	out := logs.String()
	for _, want := range []string{"api GET /agents/{agent_id} 200", "admin GET /_admin/state 200", "shutting down"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "talq_secret_token") {
		t.Errorf("log leaks the token:\n%s", out)
	}
}
