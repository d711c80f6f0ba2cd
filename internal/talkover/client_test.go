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

package talkover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	// testToken is distinctive so that any leak into an error is found.
	testToken = "talq_TOPSECRET_4f9c2e7a1b"
	// testHeaderSecret is a custom header value, also a secret.
	testHeaderSecret = "hdr-SECRET-0b5e91"
	testAgentID      = "550e8400-e29b-41d4-a716-446655440000"
)

// recorded is what the test server saw of one request.
type recorded struct {
	Method, Path, RawPath, Query string
	Header                       http.Header
	Body                         []byte
}

// testServer is an httptest.Server with a replaceable handler that records
// every request.
type testServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
	handler  http.HandlerFunc
}

func newTestServer(t *testing.T, h http.HandlerFunc) *testServer {
	t.Helper()
	ts := &testServer{handler: h}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts.mu.Lock()
		ts.requests = append(ts.requests, recorded{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: body,
		})
		h := ts.handler
		ts.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) recorded() []recorded {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]recorded(nil), ts.requests...)
}

func newTestClient(t *testing.T, ts *testServer, mods ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: ts.URL + "/api/v1/", Token: testToken}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// reply writes a JSON answer.
func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestNew_Validates(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"valid":                  {Config{BaseURL: "https://app.talkover.ai/api/v1", Token: "t0ken"}, ""},
		"trailing slash":         {Config{BaseURL: "http://localhost:8080/api/v1/", Token: "t0ken"}, ""},
		"token with newline":     {Config{BaseURL: "https://x", Token: "t0ken\n"}, ""},
		"empty base URL":         {Config{Token: "t0ken"}, "scheme"},
		"no scheme":              {Config{BaseURL: "app.talkover.ai/api/v1", Token: "t0ken"}, "scheme"},
		"ftp scheme":             {Config{BaseURL: "ftp://app.talkover.ai", Token: "t0ken"}, "scheme"},
		"no host":                {Config{BaseURL: "https:///api/v1", Token: "t0ken"}, "host"},
		"unparsable":             {Config{BaseURL: "https://a b\x7f/", Token: "t0ken"}, "valid URL"},
		"credentials":            {Config{BaseURL: "https://user:pw-SECRET@x/api", Token: "t0ken"}, "credentials"},
		"query":                  {Config{BaseURL: "https://x/api?k=v", Token: "t0ken"}, "query"},
		"empty token":            {Config{BaseURL: "https://x"}, "Token is empty"},
		"blank token":            {Config{BaseURL: "https://x", Token: " \n"}, "Token is empty"},
		"token with inner space": {Config{BaseURL: "https://x", Token: "talq_a b-SECRET"}, "whitespace"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if tc.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("New = %v", err)
				}
				if strings.HasSuffix(c.baseURL, "/") || c.token != strings.TrimSpace(tc.cfg.Token) {
					t.Errorf("baseURL %q token %q", c.baseURL, c.token)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New error = %v, want %q", err, tc.wantErr)
			}
			if !errors.Is(err, ErrInvalidArgument) || !IsTerminal(err) {
				t.Errorf("config error must wrap ErrInvalidArgument: %v", err)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestNew_Defaults(t *testing.T) {
	c, err := New(Config{BaseURL: "https://x", Token: "t0ken"})
	if err != nil {
		t.Fatal(err)
	}
	if c.userAgent != DefaultUserAgent || c.maxBytes != DefaultMaxResponseBytes || c.httpClient.Timeout != DefaultTimeout {
		t.Errorf("defaults: %q %d %v", c.userAgent, c.maxBytes, c.httpClient.Timeout)
	}
	if c.httpClient == http.DefaultClient || c.httpClient.CheckRedirect == nil {
		t.Error("the default client must be private and refuse redirects")
	}
	custom := &http.Client{Timeout: time.Second}
	c, _ = New(Config{BaseURL: "https://x", Token: "t0ken", HTTPClient: custom})
	if c.httpClient == custom || custom.CheckRedirect != nil || c.httpClient.Timeout != time.Second {
		t.Error("a custom client must be copied, not modified")
	}
}

func TestClient_SendsHeadersAndPaths(t *testing.T) {
	ts := newTestServer(t, reply(200, docSuccessResponse))
	c := newTestClient(t, ts)
	ctx := context.Background()
	agentData := `{"success":true,"data":{"id":"a","name":"n","current_status":"draft","is_ready_to_publish":false}}`

	if _, err := c.UpsertAction(ctx, testAgentID, docActionRequest1()); err != nil {
		t.Fatalf("UpsertAction: %v", err)
	}
	ts.handler = reply(200, `{"success":true,"data":[]}`)
	if _, err := c.ListActions(ctx, "agent/with space?"); err != nil {
		t.Fatalf("ListActions: %v", err)
	}
	ts.handler = reply(200, `{"success":true,"message":"Agent action deleted successfully"}`)
	if err := c.DeleteAction(ctx, testAgentID, "action-uuid-1"); err != nil {
		t.Fatalf("DeleteAction: %v", err)
	}
	ts.handler = reply(200, agentData)
	for _, f := range []func(context.Context, string) (*Agent, error){c.GetAgent, c.PublishAgent, c.UnpublishAgent} {
		if _, err := f(ctx, testAgentID); err != nil {
			t.Fatalf("agent call: %v", err)
		}
	}

	want := []struct{ method, rawPath string }{
		{"POST", "/api/v1/agents/" + testAgentID + "/actions"},
		{"GET", "/api/v1/agents/agent%2Fwith%20space%3F/actions"},
		{"DELETE", "/api/v1/agents/" + testAgentID + "/actions/action-uuid-1"},
		{"GET", "/api/v1/agents/" + testAgentID},
		{"POST", "/api/v1/agents/" + testAgentID + "/publish"},
		{"POST", "/api/v1/agents/" + testAgentID + "/unpublish"},
	}
	got := ts.recorded()
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d", len(got), len(want))
	}
	for i, r := range got {
		checkRequest(t, r, want[i].method, want[i].rawPath, i == 0)
	}
	if !jsonEqual(t, got[0].Body, []byte(docRequest1)) {
		t.Errorf("UpsertAction body: %s", got[0].Body)
	}
}

// The issue requires that the three example requests of the API docs, sent
// through the client, produce exactly the documented JSON bodies: each is
// sent with UpsertAction and the body the server received is compared with
// the documented one.
func TestClient_UpsertActionSendsDocExamples(t *testing.T) {
	for _, ex := range docExamples() {
		t.Run(ex.name, func(t *testing.T) {
			ts := newTestServer(t, reply(200, docSuccessResponse))
			c := newTestClient(t, ts)
			if _, err := c.UpsertAction(context.Background(), testAgentID, ex.req); err != nil {
				t.Fatalf("UpsertAction: %v", err)
			}
			got := ts.recorded()
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			checkRequest(t, got[0], http.MethodPost, "/api/v1/agents/"+testAgentID+"/actions", true)
			if diff := jsonDiff(t, got[0].Body, []byte(ex.want)); diff != "" {
				t.Errorf("the body the server received differs from the documented example:\n%s\nreceived: %s", diff, got[0].Body)
			}
		})
	}
}

// checkRequest asserts method, path and headers of one recorded request,
// and that the token appears only in the Authorization header.
func checkRequest(t *testing.T, r recorded, method, rawPath string, hasBody bool) {
	t.Helper()
	if r.Method != method || r.RawPath != rawPath || r.Query != "" {
		t.Errorf("%s %s?%s, want %s %s", r.Method, r.RawPath, r.Query, method, rawPath)
	}
	if a := r.Header.Values("Authorization"); len(a) != 1 || a[0] != "Bearer "+testToken {
		t.Errorf("%s: Authorization = %q", rawPath, a)
	}
	if r.Header.Get("Accept") != "application/json" || r.Header.Get("User-Agent") != DefaultUserAgent {
		t.Errorf("%s: Accept %q, User-Agent %q", rawPath, r.Header.Get("Accept"), r.Header.Get("User-Agent"))
	}
	if ct := r.Header.Get("Content-Type"); (ct == "application/json") != hasBody {
		t.Errorf("%s: Content-Type %q", rawPath, ct)
	}
	if (len(r.Body) > 0) != hasBody {
		t.Errorf("%s: body %q", rawPath, r.Body)
	}
	for k, vs := range r.Header {
		if k != "Authorization" && strings.Contains(strings.Join(vs, ","), testToken) {
			t.Errorf("%s: token sent in header %s", rawPath, k)
		}
	}
	if strings.Contains(r.RawPath+r.Query+string(r.Body), testToken) {
		t.Errorf("%s: token sent outside the Authorization header", rawPath)
	}
}

func TestClient_CustomUserAgent(t *testing.T) {
	ts := newTestServer(t, reply(200, `{"success":true,"data":[]}`))
	c := newTestClient(t, ts, func(cfg *Config) { cfg.UserAgent = "talkover-operator/v1.2.3" })
	if _, err := c.ListActions(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if ua := ts.recorded()[0].Header.Get("User-Agent"); ua != "talkover-operator/v1.2.3" {
		t.Errorf("User-Agent = %q", ua)
	}
}

func TestClient_UpsertActionDecodesDocAnswer(t *testing.T) {
	ts := newTestServer(t, reply(200, docSuccessResponse))
	c := newTestClient(t, ts)
	a, err := c.UpsertAction(context.Background(), testAgentID, docActionRequest1())
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "action-uuid-1" || a.Label != "Schedule Meeting" || a.Config != nil || len(a.InputSchema) != 2 {
		t.Errorf("UpsertAction = %+v", a)
	}
}

func TestClient_ListActionsDecodes(t *testing.T) {
	ts := newTestServer(t, reply(200, `{"success":true,"data":[
		{"id":"1","name":"a","type":"webhook","url":null,"current_status":"active","input_schema":[]},
		{"id":"2","name":"b","type":"hold","url":null,"current_status":"inactive","input_schema":[{"name":"hold_duration","value":30}]}]}`))
	c := newTestClient(t, ts)
	ctx := context.Background()
	list, err := c.ListActions(ctx, testAgentID)
	if err != nil || len(list) != 2 || list[1].CurrentStatus != ActionStatusInactive || string(list[1].InputSchema[0].Value) != "30" {
		t.Errorf("ListActions = %+v, %v", list, err)
	}
	ts.handler = reply(200, `{"success":true,"data":[]}`)
	if list, err := c.ListActions(ctx, testAgentID); err != nil || list == nil || len(list) != 0 {
		t.Errorf("empty ListActions = %#v, %v", list, err)
	}
}

func TestClient_AgentCallsDecode(t *testing.T) {
	ts := newTestServer(t, reply(200, `{"success":true,"data":{"id":"ag","name":"Agent","label":"x","language":"en",
		"voice":{},"direction":"inbound","current_status":"published","is_ready_to_publish":true,
		"updated_at":"2024-01-15T12:30:00Z","actions":[{"id":"1","name":"a"}],"trainings":[],"phone_numbers":[]}}`))
	c := newTestClient(t, ts)
	ctx := context.Background()
	agent, err := c.GetAgent(ctx, "ag")
	want := &Agent{ID: "ag", Name: "Agent", CurrentStatus: AgentStatusPublished, IsReadyToPublish: true,
		UpdatedAt: "2024-01-15T12:30:00Z", Actions: []Action{{ID: "1", Name: "a"}}}
	if err != nil || !reflect.DeepEqual(agent, want) {
		t.Errorf("GetAgent = %+v, %v", agent, err)
	}
	ts.handler = reply(200, `{"success":true,"message":"Agent published successfully","data":{"id":"ag","name":"Agent","current_status":"published","is_ready_to_publish":true,"updated_at":"t"}}`)
	if agent, err := c.PublishAgent(ctx, "ag"); err != nil || agent.CurrentStatus != AgentStatusPublished {
		t.Errorf("PublishAgent = %+v, %v", agent, err)
	}
	ts.handler = reply(200, `{"success":true,"message":"Agent unpublished successfully","data":{"id":"ag","name":"Agent","current_status":"draft","is_ready_to_publish":false,"updated_at":"t"}}`)
	if agent, err := c.UnpublishAgent(ctx, "ag"); err != nil || agent.CurrentStatus != AgentStatusDraft {
		t.Errorf("UnpublishAgent = %+v, %v", agent, err)
	}
}

func TestClient_DeleteActionAcceptsAnswersWithoutData(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"documented 200": reply(200, `{"success":true,"message":"Agent action deleted successfully"}`),
		"204 no content": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) },
		"200 empty body": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) },
	} {
		ts := newTestServer(t, h)
		c := newTestClient(t, ts)
		if err := c.DeleteAction(context.Background(), testAgentID, "1"); err != nil {
			t.Errorf("DeleteAction with %s: %v", name, err)
		}
	}
}

func TestClient_ListActionsFollowsAnnouncedPages(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		if page == "" {
			page = "1"
		}
		reply(200, fmt.Sprintf(`{"success":true,"data":[{"id":"p%s"}],"meta":{"current_page":%s,"per_page":1,"total":3,"last_page":3}}`, page, page))(w, r)
	})
	c := newTestClient(t, ts)
	list, err := c.ListActions(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(list))
	for _, a := range list {
		ids = append(ids, a.ID)
	}
	if strings.Join(ids, ",") != "p1,p2,p3" {
		t.Errorf("ids = %v", ids)
	}
	if q := ts.recorded(); q[0].Query != "" || q[1].Query != "page=2" || q[2].Query != "page=3" {
		t.Errorf("queries: %q %q %q", q[0].Query, q[1].Query, q[2].Query)
	}

	// A server that ignores ?page must not make the client loop.
	ts.handler = reply(200, `{"success":true,"data":[{"id":"x"}],"meta":{"current_page":1,"last_page":2}}`)
	_, err = c.ListActions(context.Background(), "a")
	var invalid *InvalidResponseError
	if !errors.As(err, &invalid) || !strings.Contains(err.Error(), "asked for page 2, got page 1") {
		t.Errorf("ignored page parameter: %v", err)
	}
}

// errorCase is one answer of the server and the expected classification.
type errorCase struct {
	name    string
	handler http.HandlerFunc
	call    func(*Client) error // default: UpsertAction with a custom header
	maxBody int64

	kind       string // "api", "invalid" or "transport"
	status     int
	code       string
	message    string
	fields     map[string][]string
	retryAfter time.Duration
	errString  string // substring of err.Error()

	terminal, retryable                                        bool
	notFound, unauthorized, forbidden, validation, rateLimited bool
}

// testNow is the client clock in error tests, for HTTP-date Retry-After.
var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func upsert(c *Client) error {
	req := docActionRequest1()
	req.CustomHeaders = []Header{{Key: "X-Api-Key", Value: testHeaderSecret}}
	_, err := c.UpsertAction(context.Background(), testAgentID, req)
	return err
}

func withHeader(k, v string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(k, v)
		h(w, r)
	}
}

func raw(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func errorCases() []errorCase {
	del := func(c *Client) error { return c.DeleteAction(context.Background(), testAgentID, "action-1") }
	list := func(c *Client) error { _, err := c.ListActions(context.Background(), testAgentID); return err }
	get := func(c *Client) error { _, err := c.GetAgent(context.Background(), testAgentID); return err }
	publish := func(c *Client) error { _, err := c.PublishAgent(context.Background(), testAgentID); return err }
	huge := `{"message":"` + strings.Repeat("x", 4096) + `"}`
	return []errorCase{
		{name: "401 flat", handler: reply(401, `{"success":false,"message":"Unauthenticated."}`),
			kind: "api", status: 401, message: "Unauthenticated.", terminal: true, unauthorized: true,
			errString: "UpsertAction: HTTP 401: Unauthenticated."},
		{name: "401 without success field", handler: reply(401, `{"message":"Missing Bearer Token"}`), call: get,
			kind: "api", status: 401, message: "Missing Bearer Token", terminal: true, unauthorized: true},
		{name: "401 nested error envelope", handler: reply(401, `{"success":false,"error":{"code":"INVALID_API_KEY","message":"The API key is invalid","details":{}}}`),
			kind: "api", status: 401, code: "INVALID_API_KEY", message: "The API key is invalid", terminal: true, unauthorized: true,
			errString: "HTTP 401 INVALID_API_KEY: The API key is invalid"},
		{name: "401 echoing the token", handler: reply(401, `{"success":false,"code":"BAD_`+testToken+`","message":"Token `+testToken+` is not valid"}`),
			kind: "api", status: 401, code: "BAD_<redacted>", message: "Token <redacted> is not valid", terminal: true, unauthorized: true},
		{name: "403 flat", handler: reply(403, `{"success":false,"message":"You are not authorized to create actions for this agent."}`),
			kind: "api", status: 403, message: "You are not authorized to create actions for this agent.", terminal: true, forbidden: true},
		{name: "404 agent not found", handler: reply(404, `{"success":false,"message":"Agent not found"}`),
			kind: "api", status: 404, message: "Agent not found", terminal: true, notFound: true},
		{name: "404 on delete", handler: reply(404, `{"success":false,"message":"Action not found"}`), call: del,
			kind: "api", status: 404, message: "Action not found", terminal: true, notFound: true},
		{name: "409 conflict", handler: reply(409, `{"success":false,"error":{"code":"AGENT_IS_PUBLISHED","message":"Unpublish first"}}`),
			kind: "api", status: 409, code: "AGENT_IS_PUBLISHED", message: "Unpublish first", terminal: true},
		{name: "422 with field errors", handler: reply(422, `{"success":false,"message":"The given data was invalid.","errors":{
			"name":["The name field is required."],"type":["The selected type is invalid."],
			"url":["The url must be a valid URL."],"authorization_url":["The authorization url must be a valid URL."]}}`),
			kind: "api", status: 422, message: "The given data was invalid.", terminal: true, validation: true,
			fields: map[string][]string{
				"name": {"The name field is required."}, "type": {"The selected type is invalid."},
				"url": {"The url must be a valid URL."}, "authorization_url": {"The authorization url must be a valid URL."},
			},
			errString: "UpsertAction: HTTP 422: The given data was invalid. (authorization_url: The authorization url must be a valid URL.; name: The name field is required.; type: The selected type is invalid.; url: The url must be a valid URL.)"},
		{name: "422 echoing a custom header value", handler: reply(422, `{"message":"The given data was invalid.","errors":{"custom_headers.0.value":["`+testHeaderSecret+` is too short"]}}`),
			kind: "api", status: 422, message: "The given data was invalid.", terminal: true, validation: true,
			fields: map[string][]string{"custom_headers.0.value": {"<redacted> is too short"}}},
		{name: "422 string list on publish", handler: reply(422, `{"success":false,"errors":["Voice is not configured","Knowledge is empty"]}`), call: publish,
			kind: "api", status: 422, message: "Voice is not configured; Knowledge is empty", terminal: true, validation: true},
		{name: "400 garbage body", handler: raw(400, "application/json", `{{{not json`),
			kind: "api", status: 400, message: "Bad Request", terminal: true},
		{name: "408 request timeout", handler: raw(408, "", ``),
			kind: "api", status: 408, message: "Request Timeout", retryable: true},
		{name: "429 Retry-After seconds", handler: withHeader("Retry-After", "17", reply(429, `{"message":"Too Many Attempts."}`)),
			kind: "api", status: 429, message: "Too Many Attempts.", retryAfter: 17 * time.Second, retryable: true, rateLimited: true,
			errString: "UpsertAction: HTTP 429: Too Many Attempts. (retry after 17s)"},
		{name: "429 Retry-After HTTP-date", handler: withHeader("Retry-After", testNow.Add(2*time.Minute).Format(http.TimeFormat), raw(429, "", ``)),
			kind: "api", status: 429, message: "Too Many Requests", retryAfter: 2 * time.Minute, retryable: true, rateLimited: true},
		{name: "429 without Retry-After", handler: raw(429, "text/plain", `slow down`), call: list,
			kind: "api", status: 429, message: "Too Many Requests", retryable: true, rateLimited: true},
		{name: "500 flat", handler: reply(500, `{"success":false,"message":"Internal server error."}`),
			kind: "api", status: 500, message: "Internal server error.", retryable: true},
		{name: "500 empty body", handler: raw(500, "", ``), call: del,
			kind: "api", status: 500, message: "Internal Server Error", retryable: true},
		{name: "500 body beyond the cap", handler: reply(500, huge), maxBody: 1024,
			kind: "api", status: 500, message: "Internal Server Error", retryable: true},
		{name: "502 HTML from a proxy", handler: raw(502, "text/html", `<html><body><h1>502 Bad Gateway</h1></body></html>`),
			kind: "api", status: 502, message: "Bad Gateway", retryable: true},
		{name: "503 with Retry-After", handler: withHeader("Retry-After", "30", raw(503, "text/html", `<html>maintenance</html>`)),
			kind: "api", status: 503, message: "Service Unavailable", retryAfter: 30 * time.Second, retryable: true},
		{name: "599 unknown status", handler: raw(599, "", ``),
			kind: "api", status: 599, message: "unexpected status", retryable: true},
		{name: "302 redirect", handler: withHeader("Location", "https://elsewhere.example.com/login", raw(302, "", ``)),
			kind: "api", status: 302, terminal: true, errString: "HTTP 302: Found (redirects are not followed"},
		{name: "308 redirect", handler: withHeader("Location", "/api/v2/agents", raw(308, "", ``)), call: get,
			kind: "api", status: 308, terminal: true},
		{name: "control characters in message", handler: reply(400, `{"message":"bad\r\nX-Injected: 1\u0000\u001b[2J"}`),
			kind: "api", status: 400, message: "bad  X-Injected: 1  [2J", terminal: true},
		{name: "200 success false", handler: reply(200, `{"success":false,"message":"nope"}`),
			kind: "invalid", status: 200, retryable: true, errString: `UpsertAction: invalid response (HTTP 200): "success" is false`},
		{name: "200 success false on delete", handler: reply(200, `{"success":false}`), call: del,
			kind: "invalid", status: 200, retryable: true},
		{name: "200 without data", handler: reply(200, `{"success":true,"message":"Agent action updated successfully"}`),
			kind: "invalid", status: 200, retryable: true, errString: `missing "data"`},
		{name: "200 data null", handler: reply(200, `{"success":true,"data":null}`), call: get,
			kind: "invalid", status: 200, retryable: true, errString: `missing "data"`},
		{name: "200 without data.id", handler: reply(200, `{"success":true,"data":{"name":"Schedule Meeting"}}`),
			kind: "invalid", status: 200, retryable: true, errString: `missing "data.id"`},
		{name: "201 without data.id", handler: reply(201, `{"success":true,"data":{"id":""}}`),
			kind: "invalid", status: 201, retryable: true, errString: `missing "data.id"`},
		{name: "200 with an ID too long to store", handler: reply(200, `{"success":true,"data":{"id":"`+strings.Repeat("x", 256)+`"}}`),
			kind: "invalid", status: 200, retryable: true, errString: `"data.id" is longer than 255 bytes`},
		{name: "200 with a control character in the ID", handler: reply(200, `{"success":true,"data":{"id":"a\nb"}}`),
			kind: "invalid", status: 200, retryable: true, errString: `control characters`},
		{name: "200 data of the wrong type", handler: reply(200, `{"success":true,"data":{"id":"x","name":42}}`),
			kind: "invalid", status: 200, retryable: true, errString: `data field "name" is a JSON number, want string`},
		{name: "200 list data is an object", handler: reply(200, `{"success":true,"data":{"id":"x"}}`), call: list,
			kind: "invalid", status: 200, retryable: true, errString: "data is a JSON object, want []talkover.Action"},
		{name: "200 garbage JSON", handler: raw(200, "application/json", `<html>oops</html>`),
			kind: "invalid", status: 200, retryable: true, errString: "not a JSON success envelope"},
		{name: "200 empty body", handler: raw(200, "application/json", ``),
			kind: "invalid", status: 200, retryable: true, errString: "empty body"},
		{name: "200 JSON array", handler: raw(200, "application/json", `[]`), call: get,
			kind: "invalid", status: 200, retryable: true},
		{name: "204 on upsert", handler: raw(204, "", ``),
			kind: "invalid", status: 204, retryable: true},
		{name: "200 wrong content type", handler: raw(200, "text/html; charset=utf-8", docSuccessResponse),
			kind: "invalid", status: 200, retryable: true, errString: `unexpected content type "text/html"`},
		{name: "200 HTML on delete", handler: raw(200, "text/html", `<html>login</html>`), call: del,
			kind: "invalid", status: 200, retryable: true},
		{name: "200 body beyond the cap", handler: reply(200, docSuccessResponse), maxBody: 256,
			kind: "invalid", status: 200, retryable: true, errString: "body exceeds 256 bytes"},
		{name: "200 truncated body", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "500")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, `{"success":true,"data":`)
		},
			kind: "transport", retryable: true},
	}
}

func TestClient_ErrorAnswers(t *testing.T) {
	for _, tc := range errorCases() {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, tc.handler)
			c := newTestClient(t, ts, func(cfg *Config) { cfg.MaxResponseBytes = tc.maxBody })
			c.now = func() time.Time { return testNow }
			call := tc.call
			if call == nil {
				call = upsert
			}
			err := call(c)
			if err == nil {
				t.Fatal("no error")
			}
			checkKind(t, err, tc)
			checkClassification(t, err, tc)
			msg := err.Error()
			if tc.errString != "" && !strings.Contains(msg, tc.errString) {
				t.Errorf("Error() = %q, want it to contain %q", msg, tc.errString)
			}
			checkNoLeak(t, msg)
		})
	}
}

func checkKind(t *testing.T, err error, tc errorCase) {
	t.Helper()
	var invalid *InvalidResponseError
	var transport *TransportError
	switch tc.kind {
	case "api":
		checkAPIError(t, err, tc)
	case "invalid":
		if !errors.As(err, &invalid) {
			t.Fatalf("want *InvalidResponseError, got %T: %v", err, err)
		}
		if invalid.StatusCode != tc.status || invalid.Op == "" || invalid.Reason == "" {
			t.Errorf("InvalidResponseError = %+v", invalid)
		}
	case "transport":
		if !errors.As(err, &transport) {
			t.Fatalf("want *TransportError, got %T: %v", err, err)
		}
	}
}

func checkAPIError(t *testing.T, err error, tc errorCase) {
	t.Helper()
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("want *APIError, got %T: %v", err, err)
	}
	if apiErr.StatusCode != tc.status || apiErr.Code != tc.code || apiErr.RetryAfter != tc.retryAfter {
		t.Errorf("status %d code %q retryAfter %v, want %d %q %v",
			apiErr.StatusCode, apiErr.Code, apiErr.RetryAfter, tc.status, tc.code, tc.retryAfter)
	}
	if tc.message != "" && apiErr.Message != tc.message {
		t.Errorf("Message = %q, want %q", apiErr.Message, tc.message)
	}
	if !reflect.DeepEqual(apiErr.FieldErrors, tc.fields) {
		t.Errorf("FieldErrors = %v, want %v", apiErr.FieldErrors, tc.fields)
	}
}

func checkClassification(t *testing.T, err error, tc errorCase) {
	t.Helper()
	got := []bool{IsTerminal(err), IsRetryable(err), IsNotFound(err), IsUnauthorized(err), IsForbidden(err), IsValidation(err), IsRateLimited(err)}
	want := []bool{tc.terminal, tc.retryable, tc.notFound, tc.unauthorized, tc.forbidden, tc.validation, tc.rateLimited}
	names := []string{"IsTerminal", "IsRetryable", "IsNotFound", "IsUnauthorized", "IsForbidden", "IsValidation", "IsRateLimited"}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s = %v, want %v (%v)", names[i], got[i], want[i], err)
		}
	}
	d, ok := RetryAfter(err)
	if ok != (tc.retryAfter > 0) || d != tc.retryAfter {
		t.Errorf("RetryAfter = %v, %v; want %v", d, ok, tc.retryAfter)
	}
}

// checkNoLeak asserts that an error string holds no secret and no body.
func checkNoLeak(t *testing.T, msg string) {
	t.Helper()
	for _, leak := range []string{testToken, "TOPSECRET", testHeaderSecret, "Bearer talq", "action-node-456", "<html", strings.Repeat("x", 100)} {
		if strings.Contains(msg, leak) {
			t.Errorf("Error() leaks %q: %s", leak, msg)
		}
	}
	if len(msg) > maxErrorLen {
		t.Errorf("Error() is %d bytes", len(msg))
	}
}

func TestClient_RedirectIsNotFollowed(t *testing.T) {
	var otherHits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		otherHits.Add(1)
		reply(200, docSuccessResponse)(w, nil)
	}))
	t.Cleanup(other.Close)
	for _, status := range []int{301, 302, 303, 307, 308} {
		for name, hc := range map[string]*http.Client{"default client": nil, "caller's client": {}} {
			ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+r.URL.Path, status)
			})
			c := newTestClient(t, ts, func(cfg *Config) { cfg.HTTPClient = hc })
			err := upsert(c)
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != status || !IsTerminal(err) || IsRetryable(err) {
				t.Errorf("%d with %s: %v", status, name, err)
			}
			if len(ts.recorded()) != 1 {
				t.Errorf("%d with %s: %d requests", status, name, len(ts.recorded()))
			}
		}
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the redirect target received %d requests", n)
	}
}

func TestClient_TransportErrorConnectionRefused(t *testing.T) {
	ts := newTestServer(t, reply(200, "{}"))
	c := newTestClient(t, ts)
	ts.Close()
	err := upsert(c)
	var te *TransportError
	if !errors.As(err, &te) || te.Op != OpUpsertAction || !IsRetryable(err) || IsTerminal(err) {
		t.Errorf("err = %v", err)
	}
	checkNoLeak(t, err.Error())
}

func TestClient_TransportErrorTimeout(t *testing.T) {
	release := make(chan struct{})
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c := newTestClient(t, ts, func(cfg *Config) { cfg.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond} })
	_, err := c.GetAgent(context.Background(), "a")
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() || !IsRetryable(err) {
		t.Errorf("err = %v", err)
	}
	checkNoLeak(t, err.Error())
}

func TestClient_CancelledContextIsNotRetryable(t *testing.T) {
	ts := newTestServer(t, reply(200, docSuccessResponse))
	c := newTestClient(t, ts)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.UpsertAction(ctx, "a", ActionRequest{})
	if !errors.Is(err, context.Canceled) || IsRetryable(err) || IsTerminal(err) {
		t.Errorf("err = %v", err)
	}
	if len(ts.recorded()) != 0 {
		t.Error("request sent with a cancelled context")
	}
}

func TestClient_TransportErrorConnectionClosedMidAnswer(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"succ")
		_ = conn.Close()
	})
	c := newTestClient(t, ts)
	_, err := c.GetAgent(context.Background(), "a")
	if !errors.Is(err, io.ErrUnexpectedEOF) || !IsRetryable(err) {
		t.Errorf("err = %v", err)
	}
}

func TestClient_InvalidArguments(t *testing.T) {
	ts := newTestServer(t, reply(200, docSuccessResponse))
	c := newTestClient(t, ts)
	ctx := context.Background()
	calls := map[string]func() error{
		"upsert empty agent":    func() error { _, err := c.UpsertAction(ctx, "", ActionRequest{}); return err },
		"list dot agent":        func() error { _, err := c.ListActions(ctx, ".."); return err },
		"delete empty action":   func() error { return c.DeleteAction(ctx, "a", "") },
		"delete dot action":     func() error { return c.DeleteAction(ctx, "a", ".") },
		"get empty agent":       func() error { _, err := c.GetAgent(ctx, ""); return err },
		"publish empty agent":   func() error { _, err := c.PublishAgent(ctx, ""); return err },
		"unpublish empty agent": func() error { _, err := c.UnpublishAgent(ctx, ""); return err },
		"invalid input value": func() error {
			_, err := c.UpsertAction(ctx, "a", ActionRequest{Inputs: []Input{{Name: "x", Value: json.RawMessage("{bad")}}})
			return err
		},
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, ErrInvalidArgument) || !IsTerminal(err) || IsRetryable(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := len(ts.recorded()); n != 0 {
		t.Errorf("%d requests sent for invalid arguments", n)
	}
}

func TestClient_ThrottlingPausesTheSharedLimiter(t *testing.T) {
	tests := map[string]struct {
		handler   http.HandlerFunc
		wantPause time.Duration
	}{
		"429 with Retry-After":    {withHeader("Retry-After", "42", raw(429, "", "")), 42 * time.Second},
		"429 without Retry-After": {raw(429, "", ""), DefaultThrottlePause},
		"503 with Retry-After":    {withHeader("Retry-After", "7", raw(503, "", "")), 7 * time.Second},
		"503 without Retry-After": {raw(503, "", ""), 0},
		"500 with Retry-After":    {withHeader("Retry-After", "7", raw(500, "", "")), 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clk := newFakeClock()
			limiter := NewLimiter(6000, clk)
			ts := newTestServer(t, tc.handler)
			c := newTestClient(t, ts, func(cfg *Config) { cfg.Limiter = limiter })
			c.now = clk.Now
			if err := upsert(c); err == nil {
				t.Fatal("no error")
			}
			limiter.mu.Lock()
			paused := limiter.pausedUntil.Sub(clk.Now())
			limiter.mu.Unlock()
			if tc.wantPause == 0 && paused > 0 || tc.wantPause > 0 && paused != tc.wantPause {
				t.Errorf("limiter paused for %v, want %v", paused, tc.wantPause)
			}
		})
	}
}

// budgetWorld is a client whose budget (60 a minute) is spent, with a
// breaker and metrics, on a fake clock.
type budgetWorld struct {
	clk     *fakeClock
	limiter *Limiter
	breaker *Breaker
	ts      *testServer
	reg     *prometheus.Registry
	c       *Client
	ctx     context.Context
}

func newBudgetWorld(t *testing.T) *budgetWorld {
	t.Helper()
	w := &budgetWorld{clk: newFakeClock(), reg: newRegistry()}
	w.limiter = NewLimiter(60, w.clk)
	drain(t, w.limiter)
	w.breaker = NewBreaker(w.clk)
	w.ts = newTestServer(t, reply(200, `{"success":true,"data":[]}`))
	w.c = newTestClient(t, w.ts, func(cfg *Config) { cfg.Limiter = w.limiter; cfg.Breaker = w.breaker; cfg.Metrics = NewMetrics(w.reg) })
	w.ctx = WithTurn(context.Background(), "agentaction/a", "team", PriorityHigh)
	return w
}

// A call that finds the budget spent does not wait: it books a slot for
// its turn, fails at once with a *BudgetError saying when the slot is due,
// and leaves when the caller comes back then.
func TestClient_NeverWaitsForTheBudget(t *testing.T) {
	w := newBudgetWorld(t)
	_, err := w.c.ListActions(w.ctx, "a")
	var budget *BudgetError
	if !errors.As(err, &budget) || budget.Paused || budget.RetryAfter <= 0 || !IsRetryable(err) {
		t.Fatalf("ListActions on a spent budget = %v, want a retryable *BudgetError", err)
	}
	if d, ok := RetryAfter(err); !ok || d != budget.RetryAfter {
		t.Errorf("RetryAfter = %v %v, want %v", d, ok, budget.RetryAfter)
	}
	if n := len(w.ts.recorded()); n != 0 {
		t.Fatalf("%d requests sent without a slot", n)
	}
	if count, sum := histogram(t, w.reg, "talkover_api_ratelimit_wait_seconds", nil); count != 1 || sum < budget.RetryAfter.Seconds()-0.01 {
		t.Errorf("wait histogram: count %d sum %v, want the requeue delay %v", count, sum, budget.RetryAfter)
	}
	w.clk.Advance(budget.RetryAfter)
	if _, err := w.c.ListActions(w.ctx, "a"); err != nil {
		t.Fatalf("ListActions when the slot is due: %v", err)
	}
	if n := len(w.ts.recorded()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// Reserve takes the slot for the next call made with its context, and only
// that one.
func TestClient_ReserveIsForTheNextCall(t *testing.T) {
	w := newBudgetWorld(t)
	_, err := w.c.Reserve(w.ctx)
	var budget *BudgetError
	if !errors.As(err, &budget) {
		t.Fatalf("Reserve on a spent budget = %v, want a *BudgetError", err)
	}
	w.clk.Advance(budget.RetryAfter)
	reserved, err := w.c.Reserve(w.ctx)
	if err != nil {
		t.Fatalf("Reserve when the slot is due: %v", err)
	}
	if _, err := w.c.ListActions(reserved, "a"); err != nil {
		t.Fatalf("ListActions with the reserved slot: %v", err)
	}
	if _, err := w.c.ListActions(reserved, "a"); !errors.As(err, &budget) {
		t.Errorf("a second call on one reserved slot = %v, want a *BudgetError", err)
	}
	if n := len(w.ts.recorded()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// While the server asks to wait, calls are refused with the pause left and
// nothing is booked; an open breaker refuses before the budget; a cancelled
// context sends nothing.
func TestClient_PauseBreakerAndCancelSendNothing(t *testing.T) {
	w := newBudgetWorld(t)
	var budget *BudgetError
	w.limiter.PauseFor(time.Hour)
	if _, err := w.c.ListActions(w.ctx, "a"); !errors.As(err, &budget) || !budget.Paused || budget.RetryAfter != time.Hour {
		t.Errorf("ListActions while paused = %v, want a paused *BudgetError of an hour", err)
	}
	w.clk.Advance(time.Hour)
	w.breaker.mu.Lock()
	w.breaker.openUntil = w.clk.Now().Add(time.Minute)
	w.breaker.mu.Unlock()
	var open *CircuitOpenError
	if _, err := w.c.ListActions(w.ctx, "a"); !errors.As(err, &open) {
		t.Errorf("ListActions with the circuit open = %v, want a *CircuitOpenError", err)
	}
	if w.limiter.Booked() != 0 || w.limiter.Reserve("", "", PriorityHigh) != 0 {
		t.Error("a call refused by the breaker used the budget")
	}
	cancelled, cancel := context.WithCancel(w.ctx)
	cancel()
	if _, err := w.c.ListActions(cancelled, "a"); !errors.Is(err, context.Canceled) || IsRetryable(err) {
		t.Errorf("cancelled call: %v", err)
	}
	if n := len(w.ts.recorded()); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
}

// An answer's updated_at is kept in status: a long one is cut.
func TestClient_UpsertCutsALongUpdatedAt(t *testing.T) {
	ts := newTestServer(t, reply(200, `{"success":true,"data":{"id":"act-1","updated_at":"`+strings.Repeat("9", 5000)+`"}}`))
	c := newTestClient(t, ts)
	a, err := c.UpsertAction(context.Background(), testAgentID, docActionRequest1())
	if err != nil {
		t.Fatal(err)
	}
	if len(a.UpdatedAt) > maxTimestampLength {
		t.Errorf("updated_at of %d bytes kept, want at most %d", len(a.UpdatedAt), maxTimestampLength)
	}
}
