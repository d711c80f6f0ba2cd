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

package apisim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fixture names used across the tests.
const (
	devEnv     = "dev"
	devToken   = "talq_dev_token"
	prodEnv    = "prod"
	prodToken  = "talq_prod_token"
	agentID    = "550e8400-e29b-41d4-a716-446655440000"
	prodAgent  = "prod-agent-1"
	actionPath = "/agents/" + agentID + "/actions"
)

// The three documented example request bodies of create-update-action.md.
const (
	webhookBody = `{
      "node_id": "action-node-456",
      "name": "Schedule Meeting",
      "description": "Schedule a meeting with the customer",
      "type": "webhook",
      "inputs": [
        {"name": "date", "type": "string", "required": true, "description": "Meeting date"},
        {"name": "time", "type": "string", "required": true, "description": "Meeting time"}
      ],
      "integration": {"id": "integration-uuid"},
      "url": "https://api.example.com/schedule",
      "authorization_url": "https://api.example.com/auth",
      "current_status": "active"
    }`
	transferBody = `{
      "node_id": "action-node-789",
      "name": "Transfer Call",
      "description": "Transfer the call to a human agent",
      "type": "transfer",
      "inputs": [
        {"name": "transfer_to", "type": "string", "required": true, "description": "Transfer to", "value": "+1234567890"}
      ],
      "transfer_to": "+1234567890",
      "current_status": "active"
    }`
	holdBody = `{
      "node_id": "action-node-101",
      "name": "Put Call on Hold",
      "description": "Put the current call on hold for a specified duration",
      "type": "hold",
      "inputs": [
        {"name": "hold_duration", "type": "integer", "required": true, "description": "Hold duration in seconds", "value": 30}
      ],
      "hold_duration": 30,
      "current_status": "active"
    }`
)

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// newFakeClock returns a clock stopped at a fixed instant.
func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixture is a started simulator with a dev and a prod environment, one
// published agent in each.
type fixture struct {
	t      *testing.T
	s      *Server
	base   string
	client *http.Client
}

// newFixture starts a simulator for one test.
func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	s := New(opts...)
	base := s.Start()
	t.Cleanup(s.Close)
	s.AddEnvironment(devEnv, devToken)
	s.AddEnvironment(prodEnv, prodToken)
	s.AddAgent(devEnv, agentID, AgentOptions{Name: "Support", Published: true})
	s.AddAgent(prodEnv, prodAgent, AgentOptions{Published: true})
	client := &http.Client{
		Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return &fixture{t: t, s: s, base: base, client: client}
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends a request; body is a string (sent as is) or a value (sent as
// JSON), and nil sends no body.
func (f *fixture) do(method, path, token string, body any) response {
	f.t.Helper()
	resp, err := f.send(method, path, token, body)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("reading %s %s: %v", method, path, err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(raw, &r.body)
	}
	return r
}

// send builds and sends a request, returning the transport error if any.
func (f *fixture) send(method, path, token string, body any) (*http.Response, error) {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			f.t.Fatalf("encoding body: %v", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.base+path, rd)
	if err != nil {
		f.t.Fatalf("building request: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return f.client.Do(req)
}

// upsert posts body to the dev agent with the dev token.
func (f *fixture) upsert(body any) response {
	f.t.Helper()
	return f.do(http.MethodPost, actionPath, devToken, body)
}

// expectStatus fails the test unless r has status.
func expectStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.raw)
	}
}

// expectFailure checks a flat {"success":false,"message":...} answer.
func expectFailure(t *testing.T, r response, status int, message string) {
	t.Helper()
	expectStatus(t, r, status)
	if r.body["success"] != false || r.body["message"] != message {
		t.Fatalf("body = %s, want success false and message %q", r.raw, message)
	}
}

// data returns the "data" object of a successful answer.
func data(t *testing.T, r response) map[string]any {
	t.Helper()
	d, ok := r.body["data"].(map[string]any)
	if !ok {
		t.Fatalf("no data object in %s", r.raw)
	}
	return d
}

// keys returns the sorted keys of m.
func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// expectKeys fails unless m has exactly want keys.
func expectKeys(t *testing.T, m map[string]any, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := keys(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys = %v, want %v", got, want)
	}
}

// mustJSON decodes a JSON document, failing the test on error.
func mustJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decoding %s: %v", s, err)
	}
	return m
}
