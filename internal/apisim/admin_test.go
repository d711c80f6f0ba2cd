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
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// admin sends an admin request and decodes the JSON answer into out.
func (f *fixture) admin(method, path, body string, out any) int {
	f.t.Helper()
	adminURL := strings.TrimSuffix(f.base, apiPrefix) + path
	req, _ := http.NewRequestWithContext(f.t.Context(), method, adminURL, strings.NewReader(body))
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("%s %s: content type %q", method, path, ct)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			f.t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

func TestAdminState(t *testing.T) {
	f := newFixture(t)
	f.upsert(validBody(t, map[string]any{
		"custom_headers": []any{map[string]any{"key": "X-Api-Key", "value": "super-secret-value"}},
	}))
	var raw json.RawMessage
	if st := f.admin(http.MethodGet, "/_admin/state", "", &raw); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	if !strings.Contains(string(raw), `"value": "<redacted>"`) {
		t.Errorf("state does not show the redaction plainly: %s", raw)
	}
	for _, secret := range []string{"super-secret-value", devToken, prodToken} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("state leaks %q", secret)
		}
	}
	var state adminStateJSON
	if err := json.Unmarshal(raw, &state); err != nil {
		t.Fatal(err)
	}
	if len(state.Environments) != 2 || state.UpsertMode != "node_id" || len(state.Agents) != 2 {
		t.Fatalf("state = %+v", state)
	}
	dev := state.Agents[0]
	if dev.ID != agentID || len(dev.Actions) != 1 {
		t.Fatalf("agent = %+v", dev)
	}
	act := dev.Actions[0]
	if act.NodeID != "action-node-456" || act.CustomHeaders[0].Key != "X-Api-Key" || act.CustomHeaders[0].Value != "<redacted>" {
		t.Errorf("action = %+v", act)
	}
	if f.s.Actions(agentID)[0].CustomHeaders[0].Value != "super-secret-value" {
		t.Error("redaction changed the store")
	}
}

func TestAdminLogAndCounts(t *testing.T) {
	f := newFixture(t)
	f.upsert(holdBody)

	var reqs []adminRequestJSON
	f.admin(http.MethodGet, "/_admin/requests", "", &reqs)
	if len(reqs) != 1 || reqs[0].Route != RouteUpsert || reqs[0].Status != 200 {
		t.Errorf("requests = %+v", reqs)
	}
	var counts struct {
		Total    int            `json:"total"`
		ByRoute  map[string]int `json:"by_route"`
		ByStatus map[string]int `json:"by_status"`
	}
	f.admin(http.MethodGet, "/_admin/counts", "", &counts)
	if counts.Total != 1 || counts.ByRoute[RouteUpsert] != 1 || counts.ByStatus["200"] != 1 {
		t.Errorf("counts = %+v", counts)
	}
	f.admin(http.MethodPost, "/_admin/reset", "", nil)
	if n := len(f.s.Requests()); n != 0 {
		t.Errorf("requests after reset = %d", n)
	}
}

func TestAdminMutations(t *testing.T) {
	clock := newFakeClock()
	f := newFixture(t, WithClock(clock.Now))

	steps := []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPost, "/_admin/agents", `{"env":"dev","agent_id":"new","ready":false}`, 200},
		{http.MethodPost, "/_admin/agents", `{"env":"dev"}`, 400},
		{http.MethodPost, "/_admin/agents", `{"env":"dev","agent_id":"x","typo":1}`, 400},
		{http.MethodPost, "/_admin/faults", `{"route":"GET /agents/{agent_id}","error_rate":1,"error_codes":[502]}`, 200},
		{http.MethodPost, "/_admin/faults", `{"route":"GET /nope","error_rate":1}`, 400},
		{http.MethodPost, "/_admin/faults", `{"route":"","reset_rate":2}`, 400},
		{http.MethodPost, "/_admin/upsert-mode", `{"mode":"always-create"}`, 200},
		{http.MethodPost, "/_admin/upsert-mode", `{"mode":"by-name"}`, 400},
		{http.MethodGet, "/_admin/reset", ``, 405},
		{http.MethodGet, "/_admin/nope", ``, 404},
	}
	for _, st := range steps {
		if got := f.admin(st.method, st.path, st.body, nil); got != st.want {
			t.Errorf("%s %s %s = %d, want %d", st.method, st.path, st.body, got, st.want)
		}
	}
	if a, ok := f.s.Agent("new"); !ok || a.ReadyToPublish || a.Env != devEnv {
		t.Errorf("admin agent = %+v", a)
	}
	expectStatus(t, f.do(http.MethodGet, "/agents/"+agentID, devToken, nil), http.StatusBadGateway)
	expectStatus(t, f.do(http.MethodGet, actionPath, devToken, nil), http.StatusOK)

	f.admin(http.MethodPost, "/_admin/outage", `{"seconds":30}`, nil)
	expectStatus(t, f.do(http.MethodGet, actionPath, devToken, nil), http.StatusServiceUnavailable)
	clock.Advance(30 * time.Second)
	f.admin(http.MethodPost, "/_admin/burst429", `{"count":1,"retry_after_seconds":3}`, nil)
	if r := f.do(http.MethodGet, actionPath, devToken, nil); r.status != 429 || r.header.Get("Retry-After") != "3" {
		t.Errorf("burst answer %d %q", r.status, r.header.Get("Retry-After"))
	}
	f.admin(http.MethodDelete, "/_admin/faults", "", nil)
	expectStatus(t, f.do(http.MethodGet, "/agents/"+agentID, devToken, nil), http.StatusOK)

	if n := len(f.s.Requests()); n != 5 {
		t.Errorf("API requests logged = %d, want 5 (admin requests are not logged)", n)
	}
}
