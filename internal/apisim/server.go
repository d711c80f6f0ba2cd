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

// Package apisim is an in-memory simulator of the Talkover REST API, served
// over real HTTP, with fault injection, rate limiting and a request log.
//
// It is written from the public API documentation only and shares no code
// with the client in internal/talkover: a mistake in the client's wire types
// shows up as a failing test instead of being mirrored here. Where the
// documentation is silent, the simulator follows the reading recorded in
// docs/api-assumptions.md.
package apisim

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Route templates, as recorded in Request.Route and accepted by Count,
// SetFaults and SetHostile.
const (
	// RouteUpsert creates or updates an action.
	RouteUpsert = "POST /agents/{agent_id}/actions"
	// RouteList lists the actions of an agent.
	RouteList = "GET /agents/{agent_id}/actions"
	// RouteDelete deletes an action.
	RouteDelete = "DELETE /agents/{agent_id}/actions/{action_id}"
	// RouteGetAgent reads an agent with its actions.
	RouteGetAgent = "GET /agents/{agent_id}"
	// RoutePublish publishes an agent.
	RoutePublish = "POST /agents/{agent_id}/publish"
	// RouteUnpublish sets an agent back to draft.
	RouteUnpublish = "POST /agents/{agent_id}/unpublish"
)

// apiPrefix is the path prefix of every API route.
const apiPrefix = "/api/v1"

// jsonContentType is the media type of JSON bodies.
const jsonContentType = "application/json"

// maxLogEntries bounds the request log of a long-running server; counters
// keep counting past it.
const maxLogEntries = 100000

// UpsertMode selects how POST /agents/{agent_id}/actions picks its target.
type UpsertMode int

const (
	// UpsertByNodeID updates the action of the agent with the same node_id,
	// or creates one (the documented reading).
	UpsertByNodeID UpsertMode = iota
	// AlwaysCreate creates a new action on every POST.
	AlwaysCreate
)

// String returns the flag spelling of m.
func (m UpsertMode) String() string {
	if m == AlwaysCreate {
		return "always-create"
	}
	return "node_id"
}

// Request is one logged API request.
type Request struct {
	Time     time.Time
	Method   string
	Route    string // a Route* template, or "" when no route matched
	AgentID  string
	ActionID string
	Status   int // 0 when the connection was reset without an answer
	Env      string
	Fault    string // "", "latency", "error", "reset", "outage", "burst429", "ratelimit" or "hostile"
}

// Option configures a Server built by New.
type Option func(*Server)

// WithRateLimit limits every token to rpm API requests per sliding minute;
// 0 means unlimited.
func WithRateLimit(rpm int) Option {
	return func(s *Server) { s.limiter.rpm = rpm }
}

// WithClock replaces time.Now for timestamps, the rate limiter and outages.
// Injected latency always uses real time.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.clock = now }
}

// WithSeed seeds the random source of fault injection (default 1).
func WithSeed(seed int64) Option {
	return func(s *Server) { s.rng = newRand(seed) }
}

// WithUpsertMode sets the initial upsert mode (default UpsertByNodeID).
func WithUpsertMode(m UpsertMode) Option {
	return func(s *Server) { s.upsertMode = m }
}

// WithRequestHook calls hook after every logged API request, without the
// server's lock held. The standalone binary uses it to log requests.
func WithRequestHook(hook func(Request)) Option {
	return func(s *Server) { s.hook = hook }
}

// Server is an in-memory Talkover API. All methods are safe for concurrent use.
type Server struct {
	mu         sync.Mutex
	clock      func() time.Time
	rng        *rand.Rand
	upsertMode UpsertMode
	tokens     map[string]string
	envs       map[string]bool
	agents     map[string]*agent
	forbidden  map[forbidKey]bool
	limiter    rateLimiter
	faults     map[string]Faults
	hostile    map[string]HostileMode
	// outageUntil and bursts are keyed by route; "" is every route.
	outageUntil map[string]time.Time
	bursts      map[string]*burst
	// resetsLeft is how many of the next requests ResetNext resets.
	resetsLeft int
	log        []Request
	byRoute    map[string]int
	byStatus   map[int]int
	hook       func(Request)
	handler    http.Handler
	ts         *httptest.Server
	url        string
	done       chan struct{}
	closeOnce  sync.Once
}

// newRand returns a deterministic random source for seed.
func newRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
}

// New returns a stopped Server with no environments or agents.
func New(opts ...Option) *Server {
	s := &Server{
		clock:       time.Now,
		rng:         newRand(1),
		tokens:      map[string]string{},
		envs:        map[string]bool{},
		agents:      map[string]*agent{},
		forbidden:   map[forbidKey]bool{},
		limiter:     rateLimiter{hits: map[string][]time.Time{}},
		faults:      map[string]Faults{},
		outageUntil: map[string]time.Time{},
		bursts:      map[string]*burst{},
		hostile:     map[string]HostileMode{},
		byRoute:     map[string]int{},
		byStatus:    map[int]int{},
		done:        make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(apiPrefix+"/", s.serveAPI)
	mux.HandleFunc("/_admin/", s.serveAdmin)
	s.handler = mux
	return s
}

// Start serves the API on a random 127.0.0.1 port and returns the base URL
// including "/api/v1". Calling it again returns the same URL; a closed
// server cannot be started again.
func (s *Server) Start() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ts == nil {
		s.ts = httptest.NewServer(s.handler)
		s.url = s.ts.URL + apiPrefix
	}
	return s.url
}

// Close stops the server started by Start, cutting short injected latency
// and streamed bodies.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	s.mu.Lock()
	ts := s.ts
	s.mu.Unlock()
	if ts != nil {
		ts.CloseClientConnections()
		ts.Close()
	}
}

// Handler returns the handler serving /api/v1/... and /_admin/....
func (s *Server) Handler() http.Handler {
	return s.handler
}

// URL returns the base URL including "/api/v1", or "" before Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// now returns the current time of the server's clock.
func (s *Server) now() time.Time {
	return s.clock()
}

// reply is the answer to an API request before it is written.
type reply struct {
	status      int
	body        any
	contentType string
	stream      func(w io.Writer) // writes the body instead of body when set
	hijacked    bool              // the connection was reset; nothing to write
}

// call is one API request in flight.
type call struct {
	w        http.ResponseWriter
	r        *http.Request
	token    string
	agentID  string
	actionID string
	header   http.Header // extra response headers
	rec      Request
}

// handlerFunc answers a matched API route.
type handlerFunc func(s *Server, c *call) reply

// apiRoute is one entry of the routing table, parsed from its template;
// "{...}" segments capture IDs.
type apiRoute struct {
	method   string
	segments []string
	name     string
	handle   handlerFunc
}

// newRoute parses a "METHOD /a/{b}/c" template into a route.
func newRoute(template string, h handlerFunc) apiRoute {
	method, path, _ := strings.Cut(template, " ")
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "{") {
			segs[i] = "*"
		}
	}
	return apiRoute{method: method, segments: segs, name: template, handle: h}
}

// routes is the routing table of the API below /api/v1.
var routes = []apiRoute{
	newRoute(RouteUpsert, (*Server).handleUpsert),
	newRoute(RouteList, (*Server).handleList),
	newRoute(RouteDelete, (*Server).handleDelete),
	newRoute(RouteGetAgent, (*Server).handleGetAgent),
	newRoute(RoutePublish, (*Server).handlePublish),
	newRoute(RouteUnpublish, (*Server).handleUnpublish),
}

// matchSegments reports whether path segments fit pattern and returns the
// captured IDs.
func matchSegments(pattern, segs []string) ([]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var ids []string
	for i, p := range pattern {
		switch {
		case p == "*" && segs[i] != "":
			ids = append(ids, segs[i])
		case p != segs[i]:
			return nil, false
		}
	}
	return ids, true
}

// matchRoute finds the route of method and path (below /api/v1). It answers
// 404 when no route has that path and 405 when none has that method.
func matchRoute(method, path string) (apiRoute, []string, int) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	status := http.StatusNotFound
	for _, rt := range routes {
		ids, ok := matchSegments(rt.segments, segs)
		if !ok {
			continue
		}
		if rt.method == method {
			return rt, ids, 0
		}
		status = http.StatusMethodNotAllowed
	}
	return apiRoute{}, nil, status
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// serveAPI answers one request below /api/v1.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	c := &call{w: w, r: r, token: bearerToken(r), header: http.Header{}}
	s.mu.Lock()
	c.rec = Request{Time: s.now(), Method: r.Method, Env: s.tokens[c.token]}
	s.mu.Unlock()

	rt, ids, status := matchRoute(r.Method, strings.TrimPrefix(r.URL.Path, apiPrefix))
	var rep reply
	if status != 0 {
		rep = failure(status, http.StatusText(status)+".")
	} else {
		c.rec.Route = rt.name
		c.agentID = ids[0]
		c.rec.AgentID = c.agentID
		if len(ids) > 1 {
			c.actionID = ids[1]
			c.rec.ActionID = c.actionID
		}
		rep = s.dispatch(c, rt.handle)
	}
	s.finish(c, rep)
}

// dispatch runs the fault gates in order, then the route's handler.
func (s *Server) dispatch(c *call, h handlerFunc) reply {
	gates := []func(*call) (reply, bool){s.outageGate, s.burstGate, s.rateGate, s.faultGate}
	for _, gate := range gates {
		if rep, stop := gate(c); stop {
			return rep
		}
	}
	return s.runHostile(c, h)
}

// finish writes rep, logs the request and calls the hook.
func (s *Server) finish(c *call, rep reply) {
	if !rep.hijacked {
		writeReply(c.w, c.header, rep, s.done)
		c.rec.Status = rep.status
	}
	s.mu.Lock()
	s.record(c.rec)
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(c.rec)
	}
}

// record appends rec to the log and counters; s.mu must be held.
func (s *Server) record(rec Request) {
	if len(s.log) >= maxLogEntries {
		s.log = s.log[1:]
	}
	s.log = append(s.log, rec)
	s.byRoute[rec.Route]++
	s.byStatus[rec.Status]++
}

// writeReply writes rep with the extra headers.
func writeReply(w http.ResponseWriter, extra http.Header, rep reply, done <-chan struct{}) {
	for k, v := range extra {
		w.Header()[k] = v
	}
	ct := rep.contentType
	if ct == "" {
		ct = jsonContentType
	}
	w.Header().Set("Content-Type", ct)
	if rep.stream != nil {
		w.WriteHeader(rep.status)
		rep.stream(stopWriter{w: w, done: done})
		return
	}
	data, err := json.Marshal(rep.body)
	if err != nil {
		rep.status, data = http.StatusInternalServerError, []byte(`{"success":false,"message":"Internal server error."}`)
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(data)
}

// stopWriter fails writes once the server is closing.
type stopWriter struct {
	w    io.Writer
	done <-chan struct{}
}

// Write writes p unless the server is closing.
func (sw stopWriter) Write(p []byte) (int, error) {
	select {
	case <-sw.done:
		return 0, io.ErrClosedPipe
	default:
		return sw.w.Write(p)
	}
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// Count returns how many requests were logged for route.
func (s *Server) Count(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byRoute[route]
}

// CountStatus returns how many requests were answered with status (0 for
// reset connections).
func (s *Server) CountStatus(status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byStatus[status]
}

// Reset clears the request log and counters; state, faults and the rate
// limiter are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
	s.byRoute = map[string]int{}
	s.byStatus = map[int]int{}
}

// envelope is the JSON body of every API answer.
type envelope struct {
	Success bool                `json:"success"`
	Message string              `json:"message,omitempty"`
	Data    any                 `json:"data,omitempty"`
	Errors  map[string][]string `json:"errors,omitempty"`
}

// actionJSON is an action as the API returns it.
type actionJSON struct {
	ID               string      `json:"id"`
	Name             string      `json:"name"`
	Label            string      `json:"label"`
	Description      string      `json:"description"`
	Type             string      `json:"type"`
	InputSchema      []inputJSON `json:"input_schema"`
	Config           any         `json:"config"`
	ActionTrigger    any         `json:"action_trigger"`
	URL              *string     `json:"url"`
	AuthorizationURL *string     `json:"authorization_url"`
	CurrentStatus    string      `json:"current_status"`
	CreatedAt        string      `json:"created_at"`
	UpdatedAt        string      `json:"updated_at"`
}

// inputJSON is one item of input_schema: the request's input echoed.
type inputJSON struct {
	Name        string          `json:"name"`
	Type        string          `json:"type,omitempty"`
	Required    *bool           `json:"required,omitempty"`
	Description string          `json:"description,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
}

// agentJSON is an agent as Get Agent returns it.
type agentJSON struct {
	ID               string       `json:"id"`
	Name             string       `json:"name"`
	Label            string       `json:"label"`
	Description      string       `json:"description"`
	Language         string       `json:"language"`
	Direction        string       `json:"direction"`
	CurrentStatus    string       `json:"current_status"`
	IsSandbox        bool         `json:"is_sandbox"`
	IsReadyToPublish bool         `json:"is_ready_to_publish"`
	CreatedAt        string       `json:"created_at"`
	UpdatedAt        string       `json:"updated_at"`
	Trainings        []any        `json:"trainings"`
	Actions          []actionJSON `json:"actions"`
	PhoneNumbers     []any        `json:"phone_numbers"`
}

// agentStatusJSON is the data of the publish and unpublish answers.
type agentStatusJSON struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	CurrentStatus    string `json:"current_status"`
	IsReadyToPublish bool   `json:"is_ready_to_publish"`
	UpdatedAt        string `json:"updated_at"`
}

// timestamp formats t as the API does (ISO 8601, UTC, seconds).
func timestamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// optional returns nil for an empty string, else a pointer to it.
func optional(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// toActionJSON converts a stored action to its wire form.
func toActionJSON(a *Action) actionJSON {
	inputs := make([]inputJSON, 0, len(a.Inputs))
	for _, in := range cloneInputs(a.Inputs) {
		inputs = append(inputs, inputJSON(in))
	}
	return actionJSON{
		ID: a.ID, Name: a.Name, Label: a.Label, Description: a.Description, Type: a.Type,
		InputSchema: inputs, URL: optional(a.URL), AuthorizationURL: optional(a.AuthorizationURL),
		CurrentStatus: a.CurrentStatus, CreatedAt: timestamp(a.CreatedAt), UpdatedAt: timestamp(a.UpdatedAt),
	}
}

// actionsJSON converts the actions of a to their wire form.
func actionsJSON(a *agent) []actionJSON {
	out := make([]actionJSON, 0, len(a.actions))
	for _, act := range a.actions {
		out = append(out, toActionJSON(act))
	}
	return out
}

// statusJSON returns the publish/unpublish data of a.
func statusJSON(a *agent) agentStatusJSON {
	return agentStatusJSON{
		ID: a.ID, Name: a.Name, CurrentStatus: a.Status,
		IsReadyToPublish: a.ReadyToPublish, UpdatedAt: timestamp(a.updatedAt),
	}
}

// success returns a 200 answer.
func success(message string, data any) reply {
	return reply{status: http.StatusOK, body: envelope{Success: true, Message: message, Data: data}}
}

// failure returns an error answer with the flat documented body.
func failure(status int, message string) reply {
	return reply{status: status, body: envelope{Message: message}}
}

// forbiddenMessages holds the 403 message of each route.
var forbiddenMessages = map[string]string{
	RouteUpsert:    "You are not authorized to create actions for this agent.",
	RouteList:      "You are not authorized to view actions for this agent.",
	RouteDelete:    "You are not authorized to delete actions for this agent.",
	RouteGetAgent:  "You are not authorized to view this agent.",
	RoutePublish:   "You are not authorized to publish this agent.",
	RouteUnpublish: "You are not authorized to unpublish this agent.",
}

// authorize checks the token (401), the agent in the token's environment
// (404) and the permission (403); s.mu must be held.
func (s *Server) authorize(c *call) (*agent, reply, bool) {
	env, ok := s.tokens[c.token]
	if c.token == "" || !ok {
		return nil, failure(http.StatusUnauthorized, "Unauthenticated."), false
	}
	a := s.agents[c.agentID]
	if a == nil || a.Env != env {
		return nil, failure(http.StatusNotFound, "Agent not found"), false
	}
	if s.forbidden[forbidKey{token: c.token, agentID: c.agentID}] {
		return nil, failure(http.StatusForbidden, forbiddenMessages[c.rec.Route]), false
	}
	return a, reply{}, true
}

// handleUpsert answers POST /agents/{agent_id}/actions.
func (s *Server) handleUpsert(c *call) reply {
	body, readFail := readBody(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rep, ok := s.authorize(c)
	if !ok {
		return rep
	}
	if readFail != nil {
		return *readFail
	}
	in, rep, ok := parseAction(body, isJSONRequest(c.r))
	if !ok {
		return rep
	}
	act := s.upsertAction(a, in)
	c.rec.ActionID = act.ID
	return success("Agent action updated successfully", toActionJSON(act))
}

// handleList answers GET /agents/{agent_id}/actions.
func (s *Server) handleList(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rep, ok := s.authorize(c)
	if !ok {
		return rep
	}
	return success("", actionsJSON(a))
}

// handleDelete answers DELETE /agents/{agent_id}/actions/{action_id}.
func (s *Server) handleDelete(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rep, ok := s.authorize(c)
	if !ok {
		return rep
	}
	if !s.deleteAction(a.ID, c.actionID) {
		return failure(http.StatusNotFound, "Action not found")
	}
	s.markDraft(a)
	return reply{status: http.StatusOK, body: envelope{Success: true, Message: "Agent action deleted successfully"}}
}

// handleGetAgent answers GET /agents/{agent_id}.
func (s *Server) handleGetAgent(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rep, ok := s.authorize(c)
	if !ok {
		return rep
	}
	return success("", agentJSON{
		ID: a.ID, Name: a.Name, Label: a.Name, Language: "en", Direction: "inbound",
		CurrentStatus: a.Status, IsReadyToPublish: a.ReadyToPublish,
		CreatedAt: timestamp(a.createdAt), UpdatedAt: timestamp(a.updatedAt),
		Trainings: []any{}, Actions: actionsJSON(a), PhoneNumbers: []any{},
	})
}

// handlePublish answers POST /agents/{agent_id}/publish. Publishing a
// published agent is a 200 no-op that still counts as a publish.
func (s *Server) handlePublish(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rep, ok := s.authorize(c)
	if !ok {
		return rep
	}
	if !a.ReadyToPublish {
		return reply{status: http.StatusUnprocessableEntity, body: envelope{
			Message: "The agent is not ready to be published.",
			Errors:  map[string][]string{"agent": {"Knowledge, voice and calling must be configured before publishing."}},
		}}
	}
	a.Publishes++
	if a.Status != AgentPublished {
		a.Status = AgentPublished
		a.updatedAt = s.now()
	}
	return success("Agent published successfully", statusJSON(a))
}

// handleUnpublish answers POST /agents/{agent_id}/unpublish; unpublishing
// a draft agent is a 200 no-op.
func (s *Server) handleUnpublish(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, rep, ok := s.authorize(c)
	if !ok {
		return rep
	}
	if a.Status != AgentDraft {
		a.Status = AgentDraft
		a.updatedAt = s.now()
	}
	return success("Agent unpublished successfully", statusJSON(a))
}

// ParseUpsertMode parses "node_id" or "always-create".
func ParseUpsertMode(s string) (UpsertMode, error) {
	switch s {
	case "node_id":
		return UpsertByNodeID, nil
	case "always-create":
		return AlwaysCreate, nil
	}
	return UpsertByNodeID, fmt.Errorf("unknown upsert mode %q: want node_id or always-create", s)
}
