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
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// uuidV4 matches the IDs the simulator generates.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// actionKeys are the documented keys of an action object.
var actionKeys = []string{
	"id", "name", "label", "description", "type", "input_schema", "config", "action_trigger",
	"url", "authorization_url", "current_status", "created_at", "updated_at",
}

// Checks of the stored fields that the documented examples send but the
// API does not return.
var (
	checkWebhookKept = func(t *testing.T, a Action) {
		if a.IntegrationID != "integration-uuid" || a.AuthorizationScheme != "none" || a.ExecutionMode != "during_call" {
			t.Errorf("stored webhook = %+v", a)
		}
	}
	checkTransferKept = func(t *testing.T, a Action) {
		if a.TransferTo != "+1234567890" || string(a.Inputs[0].Value) != `"+1234567890"` {
			t.Errorf("stored transfer = %+v", a)
		}
	}
	checkHoldKept = func(t *testing.T, a Action) {
		if a.HoldDuration == nil || *a.HoldDuration != 30 || string(a.Inputs[0].Value) != "30" {
			t.Errorf("stored hold = %+v", a)
		}
	}
)

func TestUpsert_DocumentedExamples(t *testing.T) {
	tests := map[string]struct {
		body      string
		wantURL   any
		wantAuth  any
		checkKept func(t *testing.T, a Action)
	}{
		"webhook example": {
			body: webhookBody, wantURL: "https://api.example.com/schedule",
			wantAuth: "https://api.example.com/auth", checkKept: checkWebhookKept,
		},
		"transfer example": {body: transferBody, checkKept: checkTransferKept},
		"hold example":     {body: holdBody, checkKept: checkHoldKept},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			f := newFixture(t, WithClock(clock.Now))
			r := f.upsert(tt.body)
			expectStatus(t, r, http.StatusOK)
			expectKeys(t, r.body, "success", "message", "data")
			if r.body["success"] != true || r.body["message"] != "Agent action updated successfully" {
				t.Fatalf("envelope = %s", r.raw)
			}
			d := data(t, r)
			expectKeys(t, d, actionKeys...)
			req := mustJSON(t, tt.body)
			checkEcho(t, d, req)
			if d["url"] != tt.wantURL || d["authorization_url"] != tt.wantAuth {
				t.Errorf("url = %v, authorization_url = %v", d["url"], d["authorization_url"])
			}
			stored, ok := f.s.ActionByNodeID(agentID, req["node_id"].(string))
			if !ok || stored.ID != d["id"] {
				t.Fatalf("stored action by node_id = %+v, %v", stored, ok)
			}
			tt.checkKept(t, stored)
			if a, _ := f.s.Agent(agentID); a.Status != AgentDraft {
				t.Errorf("agent status = %q, want draft", a.Status)
			}
		})
	}
}

// checkEcho compares an action's returned fields with the request.
func checkEcho(t *testing.T, d, req map[string]any) {
	t.Helper()
	id, _ := d["id"].(string)
	if !uuidV4.MatchString(id) {
		t.Errorf("id %q is not a UUIDv4", id)
	}
	for _, k := range []string{"name", "description", "type", "current_status"} {
		if d[k] != req[k] {
			t.Errorf("%s = %v, want %v", k, d[k], req[k])
		}
	}
	if d["label"] != req["name"] || d["config"] != nil || d["action_trigger"] != nil {
		t.Errorf("label/config/action_trigger = %v/%v/%v", d["label"], d["config"], d["action_trigger"])
	}
	if !reflect.DeepEqual(d["input_schema"], req["inputs"]) {
		t.Errorf("input_schema = %v, want %v", d["input_schema"], req["inputs"])
	}
	if d["created_at"] != "2024-01-15T10:30:00Z" || d["updated_at"] != "2024-01-15T10:30:00Z" {
		t.Errorf("timestamps = %v, %v", d["created_at"], d["updated_at"])
	}
}

func TestUpsert_SecondPostByMode(t *testing.T) {
	tests := map[string]struct {
		mode        UpsertMode
		wantSameID  bool
		wantActions int
	}{
		"node_id mode updates in place":   {mode: UpsertByNodeID, wantSameID: true, wantActions: 1},
		"always-create mode makes a twin": {mode: AlwaysCreate, wantSameID: false, wantActions: 2},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			f := newFixture(t, WithClock(clock.Now), WithUpsertMode(tt.mode))
			first := data(t, f.upsert(webhookBody))
			f.s.SetAgentStatus(agentID, AgentPublished)
			clock.Advance(time.Minute)

			changed := mustJSON(t, webhookBody)
			changed["name"] = "Schedule Meeting v2"
			second := data(t, f.upsert(changed))

			if got := first["id"] == second["id"]; got != tt.wantSameID {
				t.Errorf("same id = %v, want %v (%v, %v)", got, tt.wantSameID, first["id"], second["id"])
			}
			if n := len(f.s.Actions(agentID)); n != tt.wantActions {
				t.Errorf("actions = %d, want %d", n, tt.wantActions)
			}
			if second["name"] != "Schedule Meeting v2" || second["updated_at"] != "2024-01-15T10:31:00Z" {
				t.Errorf("second answer = %v", second)
			}
			if a, _ := f.s.Agent(agentID); a.Status != AgentDraft {
				t.Errorf("agent status = %q, want draft", a.Status)
			}
		})
	}
}

func TestUpsert_IdenticalRepostIsAnUpdate(t *testing.T) {
	clock := newFakeClock()
	f := newFixture(t, WithClock(clock.Now))
	first := data(t, f.upsert(holdBody))
	f.s.SetAgentStatus(agentID, AgentPublished)
	clock.Advance(5 * time.Second)
	second := data(t, f.upsert(holdBody))
	if first["id"] != second["id"] || first["created_at"] != second["created_at"] {
		t.Fatalf("identity changed: %v vs %v", first, second)
	}
	if first["updated_at"] == second["updated_at"] {
		t.Errorf("updated_at unchanged: %v", second["updated_at"])
	}
	if a, _ := f.s.Agent(agentID); a.Status != AgentDraft {
		t.Errorf("agent status = %q, want draft", a.Status)
	}
}

func TestUpsert_UpdateReplacesUnsentFields(t *testing.T) {
	f := newFixture(t)
	f.upsert(webhookBody)
	body := mustJSON(t, webhookBody)
	delete(body, "url")
	delete(body, "integration")
	d := data(t, f.upsert(body))
	if d["url"] != nil {
		t.Errorf("url = %v, want null after update without url", d["url"])
	}
	a, _ := f.s.ActionByNodeID(agentID, "action-node-456")
	if a.URL != "" || a.IntegrationID != "" {
		t.Errorf("stored = %+v", a)
	}
}

func TestUpsert_StoresUnreturnedFields(t *testing.T) {
	f := newFixture(t)
	body := map[string]any{
		"node_id": "n-1", "name": "Lookup", "description": "d", "type": "external",
		"url": "https://h.example.com/x", "authorization_scheme": "bearer",
		"custom_headers": []any{map[string]any{"key": "X-Api-Key", "value": "s3cret"}},
		"speak_on_send":  "One moment", "speak_on_receive": "Done {{result}}",
		"execution_mode": "post_call", "current_status": "inactive",
		"undocumented_id": "ignored",
	}
	r := f.upsert(body)
	expectStatus(t, r, http.StatusOK)
	d := data(t, r)
	expectKeys(t, d, actionKeys...)
	if strings.Contains(string(r.raw), "s3cret") || strings.Contains(string(r.raw), "n-1") {
		t.Errorf("answer echoes unreturned fields: %s", r.raw)
	}
	a, _ := f.s.ActionByNodeID(agentID, "n-1")
	want := []Header{{Key: "X-Api-Key", Value: "s3cret"}}
	if !reflect.DeepEqual(a.CustomHeaders, want) || a.SpeakOnSend != "One moment" ||
		a.SpeakOnReceive != "Done {{result}}" || a.ExecutionMode != "post_call" ||
		a.AuthorizationScheme != "bearer" || a.CurrentStatus != "inactive" {
		t.Errorf("stored = %+v", a)
	}
	if len(d["input_schema"].([]any)) != 0 {
		t.Errorf("input_schema = %v, want []", d["input_schema"])
	}
}

func TestUpsert_BodyProblems(t *testing.T) {
	f := newFixture(t)
	tests := map[string]struct {
		contentType string
		body        string
		wantStatus  int
		wantMessage string
	}{
		"malformed JSON":     {"application/json", `{"node_id": "x",`, http.StatusBadRequest, "The request body is not valid JSON."},
		"JSON array":         {"application/json", `[1,2]`, http.StatusBadRequest, "The request body must be a JSON object."},
		"not declared JSON":  {"text/plain", holdBody, http.StatusUnprocessableEntity, "The given data was invalid."},
		"empty JSON body":    {"application/json", ``, http.StatusUnprocessableEntity, "The given data was invalid."},
		"body over 1 MiB":    {"application/json", `{"name":"` + strings.Repeat("a", 2<<20) + `"}`, http.StatusRequestEntityTooLarge, "The request body is too large."},
		"charset parameter":  {"application/json; charset=utf-8", holdBody, http.StatusOK, "Agent action updated successfully"},
		"vendor JSON suffix": {"application/vnd.api+json", holdBody, http.StatusOK, "Agent action updated successfully"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.base+actionPath, strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+devToken)
			req.Header.Set("Content-Type", tt.contentType)
			resp, err := f.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.wantStatus || body["message"] != tt.wantMessage {
				t.Errorf("got %d %v, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantMessage)
			}
		})
	}
}

func TestAuthErrors(t *testing.T) {
	f := newFixture(t)
	f.s.Forbid(devToken, agentID)
	f.s.AddAgent(devEnv, "other-agent", AgentOptions{})
	otherPath := "/agents/other-agent/actions"
	tests := map[string]struct {
		method, path, token string
		header              string
		wantStatus          int
		wantMessage         string
	}{
		"missing token":          {http.MethodGet, otherPath, "", "", 401, "Unauthenticated."},
		"unknown token":          {http.MethodGet, otherPath, "talq_nope", "", 401, "Unauthenticated."},
		"basic scheme":           {http.MethodGet, otherPath, "", "Basic " + devToken, 401, "Unauthenticated."},
		"agent of another env":   {http.MethodGet, "/agents/" + prodAgent + "/actions", devToken, "", 404, "Agent not found"},
		"unknown agent":          {http.MethodGet, "/agents/nope", devToken, "", 404, "Agent not found"},
		"forbidden upsert":       {http.MethodPost, actionPath, devToken, "", 403, "You are not authorized to create actions for this agent."},
		"forbidden delete":       {http.MethodDelete, actionPath + "/x", devToken, "", 403, "You are not authorized to delete actions for this agent."},
		"forbidden publish":      {http.MethodPost, "/agents/" + agentID + "/publish", devToken, "", 403, "You are not authorized to publish this agent."},
		"other token not barred": {http.MethodGet, "/agents/" + prodAgent, prodToken, "", 200, ""},
		"unknown route":          {http.MethodGet, "/nope", devToken, "", 404, "Not Found."},
		"wrong method":           {http.MethodPut, actionPath, devToken, "", 405, "Method Not Allowed."},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, f.base+tt.path, strings.NewReader(holdBody))
			req.Header.Set("Content-Type", "application/json")
			switch {
			case tt.header != "":
				req.Header.Set("Authorization", tt.header)
			case tt.token != "":
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := f.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%v)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantMessage != "" && (body["success"] != false || body["message"] != tt.wantMessage) {
				t.Errorf("body = %v, want message %q", body, tt.wantMessage)
			}
		})
	}
	if n := len(f.s.Actions(agentID)); n != 0 {
		t.Errorf("forbidden upsert stored %d actions", n)
	}
}

func TestDelete(t *testing.T) {
	f := newFixture(t)
	id := data(t, f.upsert(webhookBody))["id"].(string)
	keep := data(t, f.upsert(holdBody))["id"].(string)
	f.s.SetAgentStatus(agentID, AgentPublished)

	r := f.do(http.MethodDelete, actionPath+"/"+id, devToken, nil)
	expectStatus(t, r, http.StatusOK)
	expectKeys(t, r.body, "success", "message")
	if r.body["success"] != true || r.body["message"] != "Agent action deleted successfully" {
		t.Errorf("body = %s", r.raw)
	}
	if a, _ := f.s.Agent(agentID); a.Status != AgentDraft {
		t.Errorf("agent status = %q, want draft", a.Status)
	}
	list := f.do(http.MethodGet, actionPath, devToken, nil).body["data"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != keep {
		t.Errorf("list after delete = %v", list)
	}

	expectFailure(t, f.do(http.MethodDelete, actionPath+"/"+id, devToken, nil), http.StatusNotFound, "Action not found")
	f.s.AddAgent(devEnv, "other", AgentOptions{})
	expectFailure(t, f.do(http.MethodDelete, "/agents/other/actions/"+keep, devToken, nil), http.StatusNotFound, "Action not found")
}

func TestListAndGetAgent(t *testing.T) {
	clock := newFakeClock()
	f := newFixture(t, WithClock(clock.Now))
	r := f.do(http.MethodGet, actionPath, devToken, nil)
	expectStatus(t, r, http.StatusOK)
	expectKeys(t, r.body, "success", "data")
	if list, ok := r.body["data"].([]any); !ok || len(list) != 0 {
		t.Fatalf("empty list = %s", r.raw)
	}

	f.upsert(webhookBody)
	clock.Advance(time.Second)
	f.upsert(transferBody)
	list := f.do(http.MethodGet, actionPath, devToken, nil).body["data"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["name"] != "Schedule Meeting" {
		t.Fatalf("list = %v", list)
	}
	expectKeys(t, list[1].(map[string]any), actionKeys...)

	g := f.do(http.MethodGet, "/agents/"+agentID, devToken, nil)
	expectStatus(t, g, http.StatusOK)
	d := data(t, g)
	expectKeys(t, d, "id", "name", "label", "description", "language", "direction", "current_status",
		"is_sandbox", "is_ready_to_publish", "created_at", "updated_at", "trainings", "actions", "phone_numbers")
	if d["id"] != agentID || d["current_status"] != "draft" || d["is_ready_to_publish"] != true ||
		d["language"] != "en" || d["direction"] != "inbound" || d["is_sandbox"] != false {
		t.Errorf("agent = %v", d)
	}
	if !reflect.DeepEqual(d["actions"], list) {
		t.Errorf("agent actions = %v, want %v", d["actions"], list)
	}
}

func TestPublishAndUnpublish(t *testing.T) {
	f := newFixture(t)
	f.s.AddAgent(devEnv, "a2", AgentOptions{NotReadyToPublish: true})
	r := f.do(http.MethodPost, "/agents/a2/publish", devToken, nil)
	expectFailure(t, r, http.StatusUnprocessableEntity, "The agent is not ready to be published.")
	want := map[string]any{"agent": []any{"Knowledge, voice and calling must be configured before publishing."}}
	if !reflect.DeepEqual(r.body["errors"], want) {
		t.Errorf("errors = %v", r.body["errors"])
	}

	f.s.SetAgentReady("a2", true)
	for i := 1; i <= 2; i++ {
		r = f.do(http.MethodPost, "/agents/a2/publish", devToken, nil)
		expectStatus(t, r, http.StatusOK)
		d := data(t, r)
		expectKeys(t, d, "id", "name", "current_status", "is_ready_to_publish", "updated_at")
		if r.body["message"] != "Agent published successfully" || d["current_status"] != "published" {
			t.Errorf("publish %d = %s", i, r.raw)
		}
		if a, _ := f.s.Agent("a2"); a.Publishes != i || a.Status != AgentPublished {
			t.Errorf("after publish %d: %+v", i, a)
		}
	}

	for range 2 {
		r = f.do(http.MethodPost, "/agents/a2/unpublish", devToken, nil)
		expectStatus(t, r, http.StatusOK)
		if r.body["message"] != "Agent unpublished successfully" || data(t, r)["current_status"] != "draft" {
			t.Errorf("unpublish = %s", r.raw)
		}
	}
	if a, _ := f.s.Agent("a2"); a.Status != AgentDraft {
		t.Errorf("status = %q", a.Status)
	}
}

func TestConcurrentUpserts(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			body := mustJSON(t, holdBody)
			if i%2 == 0 {
				body["node_id"] = "shared"
			}
			resp, err := f.send(http.MethodPost, actionPath, devToken, body)
			if err == nil {
				_ = resp.Body.Close()
			}
			f.s.Actions(agentID)
			f.s.Requests()
		})
	}
	wg.Wait()
	if n := len(f.s.Actions(agentID)); n != 2 {
		t.Errorf("actions = %d, want 2 (one per node_id)", n)
	}
	if n := f.s.Count(RouteUpsert); n != 20 {
		t.Errorf("upserts counted = %d", n)
	}
}
