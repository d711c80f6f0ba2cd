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
	"net/http"
	"testing"
	"time"
)

func TestEditAndRemoveAction(t *testing.T) {
	clock := newFakeClock()
	f := newFixture(t, WithClock(clock.Now))
	id := data(t, f.upsert(webhookBody))["id"].(string)
	other := data(t, f.upsert(holdBody))["id"].(string)
	f.s.SetAgentStatus(agentID, AgentPublished)
	f.s.Reset()
	clock.Advance(time.Hour)

	ok := f.s.EditAction(agentID, id, func(a *Action) {
		a.Name = "Edited in dashboard"
		a.URL = ""
		a.ID = "hijacked"
	})
	if !ok {
		t.Fatal("EditAction did not find the action")
	}
	list := f.do(http.MethodGet, actionPath, devToken, nil).body["data"].([]any)
	first := list[0].(map[string]any)
	if first["id"] != id || first["name"] != "Edited in dashboard" || first["url"] != nil ||
		first["updated_at"] != "2024-01-15T11:30:00Z" {
		t.Errorf("edited action in list = %v", first)
	}

	if !f.s.RemoveAction(agentID, other) || f.s.RemoveAction(agentID, other) {
		t.Error("RemoveAction should succeed once")
	}
	list = f.do(http.MethodGet, actionPath, devToken, nil).body["data"].([]any)
	if len(list) != 1 {
		t.Errorf("list after RemoveAction = %v", list)
	}
	if f.s.EditAction(agentID, "nope", func(*Action) {}) || f.s.EditAction("nope", id, func(*Action) {}) {
		t.Error("EditAction found a missing action")
	}
	if n := len(f.s.Requests()); n != 2 {
		t.Errorf("requests logged = %d, want only the 2 lists", n)
	}
	if a, _ := f.s.Agent(agentID); a.Status != AgentPublished {
		t.Errorf("dashboard edits changed agent status to %q", a.Status)
	}
}

func TestInspectionReturnsCopies(t *testing.T) {
	f := newFixture(t)
	f.upsert(validBody(t, map[string]any{
		"type": "hold", "hold_duration": 30,
		"custom_headers": []any{map[string]any{"key": "K", "value": "V"}},
	}))
	a := f.s.Actions(agentID)[0]
	*a.HoldDuration = 99
	a.CustomHeaders[0].Value = "changed"
	*a.Inputs[0].Required = false
	a.Inputs[0].Name = "changed"
	b, ok := f.s.ActionByNodeID(agentID, "action-node-456")
	if !ok || *b.HoldDuration != 30 || b.CustomHeaders[0].Value != "V" || !*b.Inputs[0].Required || b.Inputs[0].Name != "date" {
		t.Errorf("store changed through a copy: %+v", b)
	}
	if _, ok := f.s.ActionByNodeID(agentID, "nope"); ok {
		t.Error("found a missing node_id")
	}
	if _, ok := f.s.Agent("nope"); ok {
		t.Error("found a missing agent")
	}
	if f.s.Actions("nope") != nil {
		t.Error("actions of a missing agent")
	}
}

func TestRequestLogAndCounters(t *testing.T) {
	clock := newFakeClock()
	f := newFixture(t, WithClock(clock.Now))
	id := data(t, f.upsert(holdBody))["id"].(string)
	f.upsert(map[string]any{})
	f.do(http.MethodGet, actionPath, devToken, nil)
	f.do(http.MethodGet, "/agents/"+agentID, devToken, nil)
	f.do(http.MethodPost, "/agents/"+agentID+"/publish", devToken, nil)
	f.do(http.MethodPost, "/agents/"+agentID+"/unpublish", devToken, nil)
	f.do(http.MethodDelete, actionPath+"/"+id, devToken, nil)
	f.do(http.MethodDelete, actionPath+"/"+id, prodToken, nil)

	counts := map[string]int{RouteUpsert: 2, RouteList: 1, RouteGetAgent: 1, RoutePublish: 1, RouteUnpublish: 1, RouteDelete: 2}
	for route, want := range counts {
		if got := f.s.Count(route); got != want {
			t.Errorf("Count(%q) = %d, want %d", route, got, want)
		}
	}
	statuses := map[int]int{200: 6, 422: 1, 404: 1}
	for status, want := range statuses {
		if got := f.s.CountStatus(status); got != want {
			t.Errorf("CountStatus(%d) = %d, want %d", status, got, want)
		}
	}
	reqs := f.s.Requests()
	want := Request{
		Time: clock.Now(), Method: http.MethodPost, Route: RouteUpsert,
		AgentID: agentID, ActionID: id, Status: 200, Env: devEnv,
	}
	if reqs[0] != want {
		t.Errorf("first request = %+v, want %+v", reqs[0], want)
	}
	if last := reqs[len(reqs)-1]; last.Env != prodEnv || last.ActionID != id || last.Status != 404 {
		t.Errorf("last request = %+v", last)
	}

	f.s.Reset()
	if len(f.s.Requests()) != 0 || f.s.Count(RouteUpsert) != 0 || f.s.CountStatus(200) != 0 {
		t.Error("Reset left log or counters")
	}
	if len(f.s.Actions(agentID)) != 0 {
		t.Error("state changed")
	}
}

func TestRequestHook(t *testing.T) {
	got := make(chan Request, 10)
	s := New(WithRequestHook(func(r Request) { got <- r }))
	base := s.Start()
	t.Cleanup(s.Close)
	if s.URL() != base {
		t.Errorf("URL() = %q, Start() = %q", s.URL(), base)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/agents/a", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if r := <-got; r.Route != RouteGetAgent || r.Status != http.StatusUnauthorized {
		t.Errorf("hook got %+v", r)
	}
}
