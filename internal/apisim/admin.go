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
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// redacted replaces custom header values in the admin state.
const redacted = "<redacted>"

// adminHandler answers one admin endpoint and returns the status and body.
type adminHandler func(s *Server, r *http.Request) (int, any)

// adminRoutes maps "METHOD /_admin/path" to its handler.
var adminRoutes = map[string]adminHandler{
	"GET /_admin/state":        (*Server).adminState,
	"GET /_admin/requests":     (*Server).adminRequests,
	"GET /_admin/counts":       (*Server).adminCounts,
	"POST /_admin/reset":       (*Server).adminReset,
	"POST /_admin/faults":      (*Server).adminFaults,
	"DELETE /_admin/faults":    (*Server).adminClearFaults,
	"POST /_admin/outage":      (*Server).adminOutage,
	"POST /_admin/burst429":    (*Server).adminBurst,
	"POST /_admin/agents":      (*Server).adminAgents,
	"POST /_admin/upsert-mode": (*Server).adminUpsertMode,
}

// knownRoutes lists the route templates accepted by the admin endpoints.
var knownRoutes = []string{"", RouteUpsert, RouteList, RouteDelete, RouteGetAgent, RoutePublish, RouteUnpublish}

// serveAdmin answers the unauthenticated /_admin/ endpoints. They are not
// logged or counted, and do not pass through fault injection.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	status, body := http.StatusNotFound, any(adminError("unknown admin endpoint"))
	if h, ok := adminRoutes[r.Method+" "+r.URL.Path]; ok {
		status, body = h(s, r)
	} else if s.adminPathExists(r.URL.Path) {
		status, body = http.StatusMethodNotAllowed, adminError("method not allowed")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<redacted>" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(body); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"encoding failed"}` + "\n")
	}
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// adminPathExists reports whether some admin route has path.
func (s *Server) adminPathExists(path string) bool {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		if _, ok := adminRoutes[m+" "+path]; ok {
			return true
		}
	}
	return false
}

// adminError is the body of a failed admin request.
func adminError(msg string) map[string]string {
	return map[string]string{"error": msg}
}

// adminOK is the body of a successful admin mutation.
func adminOK() map[string]bool {
	return map[string]bool{"ok": true}
}

// decodeAdmin decodes a JSON admin body into v, rejecting unknown fields.
func decodeAdmin(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid body: %w", err)
	}
	return nil
}

// adminStateJSON is the body of GET /_admin/state. Tokens are never shown.
type adminStateJSON struct {
	Environments []string         `json:"environments"`
	UpsertMode   string           `json:"upsert_mode"`
	RateLimitRPM int              `json:"rate_limit_rpm"`
	Agents       []adminAgentJSON `json:"agents"`
}

// adminAgentJSON is one agent in the admin state.
type adminAgentJSON struct {
	ID             string            `json:"id"`
	Env            string            `json:"env"`
	Name           string            `json:"name"`
	Status         string            `json:"status"`
	ReadyToPublish bool              `json:"ready_to_publish"`
	Publishes      int               `json:"publishes"`
	Actions        []adminActionJSON `json:"actions"`
}

// adminActionJSON is one stored action in the admin state, with every field
// kept by the store and custom header values redacted.
type adminActionJSON struct {
	ID                  string            `json:"id"`
	NodeID              string            `json:"node_id"`
	Name                string            `json:"name"`
	Label               string            `json:"label"`
	Description         string            `json:"description"`
	Type                string            `json:"type"`
	Inputs              []inputJSON       `json:"inputs"`
	IntegrationID       string            `json:"integration_id,omitempty"`
	URL                 string            `json:"url,omitempty"`
	AuthorizationURL    string            `json:"authorization_url,omitempty"`
	AuthorizationScheme string            `json:"authorization_scheme"`
	CustomHeaders       []adminHeaderJSON `json:"custom_headers"`
	SpeakOnSend         string            `json:"speak_on_send,omitempty"`
	SpeakOnReceive      string            `json:"speak_on_receive,omitempty"`
	ExecutionMode       string            `json:"execution_mode"`
	HoldDuration        *int64            `json:"hold_duration,omitempty"`
	TransferTo          string            `json:"transfer_to,omitempty"`
	CurrentStatus       string            `json:"current_status"`
	CreatedAt           time.Time         `json:"created_at"`
	UpdatedAt           time.Time         `json:"updated_at"`
}

// adminHeaderJSON is a custom header with its value redacted.
type adminHeaderJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// toAdminAction converts a stored action for the admin state.
func toAdminAction(a *Action) adminActionJSON {
	inputs := make([]inputJSON, 0, len(a.Inputs))
	for _, in := range cloneInputs(a.Inputs) {
		inputs = append(inputs, inputJSON(in))
	}
	headers := make([]adminHeaderJSON, 0, len(a.CustomHeaders))
	for _, h := range a.CustomHeaders {
		headers = append(headers, adminHeaderJSON{Key: h.Key, Value: redacted})
	}
	c := a.clone()
	return adminActionJSON{
		ID: c.ID, NodeID: c.NodeID, Name: c.Name, Label: c.Label, Description: c.Description,
		Type: c.Type, Inputs: inputs, IntegrationID: c.IntegrationID, URL: c.URL,
		AuthorizationURL: c.AuthorizationURL, AuthorizationScheme: c.AuthorizationScheme,
		CustomHeaders: headers, SpeakOnSend: c.SpeakOnSend, SpeakOnReceive: c.SpeakOnReceive,
		ExecutionMode: c.ExecutionMode, HoldDuration: c.HoldDuration, TransferTo: c.TransferTo,
		CurrentStatus: c.CurrentStatus, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
}

// adminState answers GET /_admin/state.
func (s *Server) adminState(_ *http.Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := adminStateJSON{
		Environments: make([]string, 0, len(s.envs)), UpsertMode: s.upsertMode.String(),
		RateLimitRPM: s.limiter.rpm, Agents: make([]adminAgentJSON, 0, len(s.agents)),
	}
	for env := range s.envs {
		st.Environments = append(st.Environments, env)
	}
	slices.Sort(st.Environments)
	for _, a := range s.agents {
		aj := adminAgentJSON{
			ID: a.ID, Env: a.Env, Name: a.Name, Status: a.Status, ReadyToPublish: a.ReadyToPublish,
			Publishes: a.Publishes, Actions: make([]adminActionJSON, 0, len(a.actions)),
		}
		for _, act := range a.actions {
			aj.Actions = append(aj.Actions, toAdminAction(act))
		}
		st.Agents = append(st.Agents, aj)
	}
	slices.SortFunc(st.Agents, func(x, y adminAgentJSON) int { return cmp.Compare(x.ID, y.ID) })
	return http.StatusOK, st
}

// adminRequestJSON is one logged request in GET /_admin/requests.
type adminRequestJSON struct {
	Time     time.Time `json:"time"`
	Method   string    `json:"method"`
	Route    string    `json:"route"`
	AgentID  string    `json:"agent_id,omitempty"`
	ActionID string    `json:"action_id,omitempty"`
	Status   int       `json:"status"`
	Env      string    `json:"env,omitempty"`
	Fault    string    `json:"fault,omitempty"`
}

// adminRequests answers GET /_admin/requests.
func (s *Server) adminRequests(_ *http.Request) (int, any) {
	log := s.Requests()
	out := make([]adminRequestJSON, 0, len(log))
	for _, r := range log {
		out = append(out, adminRequestJSON(r))
	}
	return http.StatusOK, out
}

// adminCounts answers GET /_admin/counts.
func (s *Server) adminCounts(_ *http.Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byStatus := map[string]int{}
	total := 0
	for status, n := range s.byStatus {
		byStatus[strconv.Itoa(status)] = n
		total += n
	}
	byRoute := map[string]int{}
	for route, n := range s.byRoute {
		byRoute[route] = n
	}
	return http.StatusOK, map[string]any{"total": total, "by_route": byRoute, "by_status": byStatus}
}

// adminReset answers POST /_admin/reset.
func (s *Server) adminReset(_ *http.Request) (int, any) {
	s.Reset()
	return http.StatusOK, adminOK()
}

// adminFaultsBody is the body of POST /_admin/faults.
type adminFaultsBody struct {
	Route      string  `json:"route"`
	LatencyMS  int64   `json:"latency_ms"`
	ErrorRate  float64 `json:"error_rate"`
	ErrorCodes []int   `json:"error_codes"`
	ResetRate  float64 `json:"reset_rate"`
}

// adminFaults answers POST /_admin/faults; all zero clears the route.
func (s *Server) adminFaults(r *http.Request) (int, any) {
	var b adminFaultsBody
	if err := decodeAdmin(r, &b); err != nil {
		return http.StatusBadRequest, adminError(err.Error())
	}
	if !slices.Contains(knownRoutes, b.Route) {
		return http.StatusBadRequest, adminError("unknown route; use a route template or \"\"")
	}
	if b.ErrorRate < 0 || b.ErrorRate > 1 || b.ResetRate < 0 || b.ResetRate > 1 || b.LatencyMS < 0 {
		return http.StatusBadRequest, adminError("rates must be within [0,1] and latency_ms ≥ 0")
	}
	s.SetFaults(b.Route, Faults{
		Latency: time.Duration(b.LatencyMS) * time.Millisecond, ErrorRate: b.ErrorRate,
		ErrorCodes: b.ErrorCodes, ResetRate: b.ResetRate,
	})
	return http.StatusOK, adminOK()
}

// adminClearFaults answers DELETE /_admin/faults.
func (s *Server) adminClearFaults(_ *http.Request) (int, any) {
	s.ClearFaults()
	return http.StatusOK, adminOK()
}

// adminOutage answers POST /_admin/outage ({"seconds": n, "route": r};
// no route is every route).
func (s *Server) adminOutage(r *http.Request) (int, any) {
	var b struct {
		Seconds float64 `json:"seconds"`
		Route   string  `json:"route"`
	}
	if err := decodeAdmin(r, &b); err != nil {
		return http.StatusBadRequest, adminError(err.Error())
	}
	s.OutageOn(b.Route, time.Duration(b.Seconds*float64(time.Second)))
	return http.StatusOK, adminOK()
}

// adminBurst answers POST /_admin/burst429 ({"count": n,
// "retry_after_seconds": s, "route": r}; no route is every route).
func (s *Server) adminBurst(r *http.Request) (int, any) {
	var b struct {
		Count             int     `json:"count"`
		RetryAfterSeconds float64 `json:"retry_after_seconds"`
		Route             string  `json:"route"`
	}
	if err := decodeAdmin(r, &b); err != nil {
		return http.StatusBadRequest, adminError(err.Error())
	}
	s.Burst429On(b.Route, b.Count, time.Duration(b.RetryAfterSeconds*float64(time.Second)))
	return http.StatusOK, adminOK()
}

// adminAgentBody is the body of POST /_admin/agents; ready defaults to true.
type adminAgentBody struct {
	Env       string `json:"env"`
	AgentID   string `json:"agent_id"`
	Name      string `json:"name"`
	Published bool   `json:"published"`
	Ready     *bool  `json:"ready"`
}

// adminAgents answers POST /_admin/agents: add or replace an agent.
func (s *Server) adminAgents(r *http.Request) (int, any) {
	var b adminAgentBody
	if err := decodeAdmin(r, &b); err != nil {
		return http.StatusBadRequest, adminError(err.Error())
	}
	if b.Env == "" || b.AgentID == "" {
		return http.StatusBadRequest, adminError("env and agent_id are required")
	}
	notReady := b.Ready != nil && !*b.Ready
	s.AddAgent(b.Env, b.AgentID, AgentOptions{Name: b.Name, Published: b.Published, NotReadyToPublish: notReady})
	return http.StatusOK, adminOK()
}

// adminUpsertMode answers POST /_admin/upsert-mode ({"mode": "node_id" or
// "always-create"}).
func (s *Server) adminUpsertMode(r *http.Request) (int, any) {
	var b struct {
		Mode string `json:"mode"`
	}
	if err := decodeAdmin(r, &b); err != nil {
		return http.StatusBadRequest, adminError(err.Error())
	}
	m, err := ParseUpsertMode(b.Mode)
	if err != nil {
		return http.StatusBadRequest, adminError(err.Error())
	}
	s.SetUpsertMode(m)
	return http.StatusOK, adminOK()
}
