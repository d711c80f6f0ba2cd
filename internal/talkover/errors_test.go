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
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"
)

func TestNewAPIError_ParsesEveryEnvelope(t *testing.T) {
	tests := map[string]struct {
		status   int
		body     string
		wantMsg  string
		wantCode string
		wantFE   map[string][]string
	}{
		"flat success/message": {
			status: 404, body: `{"success":false,"message":"Agent not found"}`, wantMsg: "Agent not found",
		},
		"message only (Create Webhook 401)": {
			status: 401, body: `{"message":"Missing Bearer Token"}`, wantMsg: "Missing Bearer Token",
		},
		"422 with field errors": {
			status:  422,
			body:    `{"message":"The given data was invalid.","errors":{"name":["The name field is required."],"url":["a","b"]}}`,
			wantMsg: "The given data was invalid.",
			wantFE:  map[string][]string{"name": {"The name field is required."}, "url": {"a", "b"}},
		},
		"field errors given as plain strings": {
			status: 422, body: `{"errors":{"name":"required","odd":[1,"kept"],"skip":{"x":1}}}`,
			wantMsg: "Unprocessable Entity", wantFE: map[string][]string{"name": {"required"}, "odd": {"kept"}},
		},
		"nested error object (Introduction)": {
			status: 401, body: `{"success":false,"error":{"code":"INVALID_API_KEY","message":"Invalid key","details":{}}}`,
			wantMsg: "Invalid key", wantCode: "INVALID_API_KEY",
		},
		"nested error with field details": {
			status: 422, body: `{"success":false,"error":{"code":"VALIDATION_ERROR","message":"Request data validation failed","details":{"name":["too long"]}}}`,
			wantMsg: "Request data validation failed", wantCode: "VALIDATION_ERROR",
			wantFE: map[string][]string{"name": {"too long"}},
		},
		"top-level code": {
			status: 404, body: `{"success":false,"code":"ACTION_NOT_FOUND","message":"Action not found"}`,
			wantMsg: "Action not found", wantCode: "ACTION_NOT_FOUND",
		},
		"errors as string list (Validate Flow)": {
			status: 422, body: `{"success":false,"errors":["No start node","Dangling edge"]}`,
			wantMsg: "No start node; Dangling edge",
		},
		"errors as object list": {
			status: 400, body: `{"errors":[{"message":"first"},{"detail":"ignored"},"second"]}`,
			wantMsg: "first; second",
		},
		"error as plain string": {
			status: 403, body: `{"error":"forbidden token scope"}`, wantMsg: "forbidden token scope",
		},
		"message wins over error.message": {
			status: 400, body: `{"message":"outer","error":{"message":"inner","code":"C"}}`, wantMsg: "outer", wantCode: "C",
		},
		"non-string message falls back to status text": {
			status: 400, body: `{"message":42,"code":7,"error":[1],"errors":true}`, wantMsg: "Bad Request",
		},
		"unknown envelope": {status: 500, body: `{"foo":{"bar":[1,2]}}`, wantMsg: "Internal Server Error"},
		"JSON array body":  {status: 500, body: `["x"]`, wantMsg: "Internal Server Error"},
		"HTML body":        {status: 502, body: `<html><body>Bad Gateway</body></html>`, wantMsg: "Bad Gateway"},
		"empty body":       {status: 503, body: ``, wantMsg: "Service Unavailable"},
		"truncated JSON":   {status: 500, body: `{"message":"cut`, wantMsg: "Internal Server Error"},
		"unknown status":   {status: 599, body: ``, wantMsg: "unexpected status"},
		"redirect": {
			status: 302, body: ``, wantMsg: "Found (redirects are not followed; check the API base URL)",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newAPIError("Op", tc.status, http.Header{}, []byte(tc.body), time.Now(), nil)
			if e.StatusCode != tc.status || e.Op != "Op" {
				t.Errorf("status/op = %d/%s", e.StatusCode, e.Op)
			}
			if e.Message != tc.wantMsg {
				t.Errorf("Message = %q, want %q", e.Message, tc.wantMsg)
			}
			if e.Code != tc.wantCode {
				t.Errorf("Code = %q, want %q", e.Code, tc.wantCode)
			}
			if !reflect.DeepEqual(e.FieldErrors, tc.wantFE) {
				t.Errorf("FieldErrors = %v, want %v", e.FieldErrors, tc.wantFE)
			}
		})
	}
}

func TestAPIError_Error(t *testing.T) {
	body := `{"success":false,"message":"The given data was invalid.","errors":{
		"name":["The name field is required."],"type":["The selected type is invalid."],
		"url":["The url must be a valid URL."],"authorization_url":["The authorization url must be a valid URL."]}}`
	e := newAPIError("UpsertAction", 422, http.Header{}, []byte(body), time.Now(), nil)
	want := "UpsertAction: HTTP 422: The given data was invalid. (" +
		"authorization_url: The authorization url must be a valid URL.; name: The name field is required.; " +
		"type: The selected type is invalid.; url: The url must be a valid URL.)"
	if got := e.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	e = &APIError{Op: "GetAgent", StatusCode: 404, Code: "AGENT_NOT_FOUND", Message: "Agent not found"}
	if got := e.Error(); got != "GetAgent: HTTP 404 AGENT_NOT_FOUND: Agent not found" {
		t.Errorf("Error() = %q", got)
	}
}

func TestAPIError_ErrorIsSanitizedAndCapped(t *testing.T) {
	body := fmt.Sprintf(`{"message":"line1\nline2\r\u0007\u001b[31m%s","errors":{"f\nx":["%s"]}}`,
		strings.Repeat("é", 2000), strings.Repeat("z", 3000))
	e := newAPIError("Op", 400, http.Header{}, []byte(body), time.Now(), nil)
	for _, s := range []string{e.Error(), e.Message} {
		if len(s) > maxErrorLen {
			t.Errorf("len = %d > %d", len(s), maxErrorLen)
		}
		if strings.IndexFunc(s, unicode.IsControl) >= 0 {
			t.Errorf("control character in %q", s)
		}
		if !strings.HasSuffix(s, "...") {
			t.Errorf("truncation not marked: ...%q", s[len(s)-10:])
		}
		if !strings.HasPrefix(s, "Op: HTTP 400: line1 line2") && !strings.HasPrefix(s, "line1 line2") {
			t.Errorf("unexpected prefix in %q", s)
		}
	}
	for k := range e.FieldErrors {
		if strings.ContainsRune(k, '\n') {
			t.Errorf("control character in field key %q", k)
		}
	}
}

func TestNewAPIError_RedactsSecrets(t *testing.T) {
	const token = "talq_redact_me_123456"
	body := `{"code":"BAD_` + token + `","message":"token ` + token + ` is invalid; header hdrsecret",` +
		`"errors":{"custom_headers.0.value":["hdrsecret is not allowed"]}}`
	e := newAPIError("Op", 422, http.Header{}, []byte(body), time.Now(), []string{token, "hdrsecret", "ab", ""})
	s := e.Error() + e.Message + e.Code + fmt.Sprint(e.FieldErrors)
	for _, secret := range []string{token, "hdrsecret"} {
		if strings.Contains(s, secret) {
			t.Errorf("%q not redacted: %s", secret, s)
		}
	}
	if !strings.Contains(e.Message, "token <redacted> is invalid") {
		t.Errorf("Message = %q", e.Message)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := map[string]struct {
		in   string
		want time.Duration
	}{
		"absent":              {"", 0},
		"seconds":             {"17", 17 * time.Second},
		"seconds with spaces": {" 5 ", 5 * time.Second},
		"zero":                {"0", 0},
		"negative":            {"-3", 0},
		"huge seconds capped": {"99999999999", maxRetryAfter},
		"HTTP-date":           {now.Add(120 * time.Second).Format(http.TimeFormat), 120 * time.Second},
		"RFC 850 date":        {now.Add(time.Minute).Format(time.RFC850), time.Minute},
		"date in the past":    {now.Add(-time.Minute).Format(http.TimeFormat), 0},
		"date far ahead":      {now.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
		"garbage":             {"soon", 0},
		"fractional":          {"1.5", 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := parseRetryAfter(tc.in, now); got != tc.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// timeoutError is a net.Error that timed out.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestClassification(t *testing.T) {
	api := func(status int) error { return &APIError{Op: "Op", StatusCode: status} }
	transport := func(err error) error { return &TransportError{Op: "Op", Err: err} }
	type want struct{ terminal, retryable bool }
	tests := map[string]struct {
		err  error
		want want
	}{
		"nil":                       {nil, want{}},
		"301 redirect":              {api(301), want{terminal: true}},
		"302 redirect":              {api(302), want{terminal: true}},
		"307 redirect":              {api(307), want{terminal: true}},
		"400":                       {api(400), want{terminal: true}},
		"401":                       {api(401), want{terminal: true}},
		"403":                       {api(403), want{terminal: true}},
		"404":                       {api(404), want{terminal: true}},
		"408":                       {api(408), want{retryable: true}},
		"409":                       {api(409), want{terminal: true}},
		"410":                       {api(410), want{terminal: true}},
		"422":                       {api(422), want{terminal: true}},
		"429":                       {api(429), want{retryable: true}},
		"500":                       {api(500), want{retryable: true}},
		"502":                       {api(502), want{retryable: true}},
		"503":                       {api(503), want{retryable: true}},
		"504":                       {api(504), want{retryable: true}},
		"wrapped 422":               {fmt.Errorf("reconcile: %w", api(422)), want{terminal: true}},
		"wrapped 503":               {fmt.Errorf("reconcile: %w", api(503)), want{retryable: true}},
		"invalid response":          {&InvalidResponseError{Op: "Op", StatusCode: 200, Reason: "x"}, want{retryable: true}},
		"invalid argument":          {fmt.Errorf("x: %w", ErrInvalidArgument), want{terminal: true}},
		"transport: refused":        {transport(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), want{retryable: true}},
		"transport: reset":          {transport(syscall.ECONNRESET), want{retryable: true}},
		"transport: unexpected EOF": {transport(io.ErrUnexpectedEOF), want{retryable: true}},
		"transport: deadline":       {transport(context.DeadlineExceeded), want{retryable: true}},
		"transport: canceled":       {transport(&url.Error{Op: "Post", URL: "http://x", Err: context.Canceled}), want{}},
		"bare context.Canceled":     {context.Canceled, want{}},
		"limiter wait canceled":     {fmt.Errorf("Op: waiting for rate limiter: %w", context.Canceled), want{}},
		"limiter wait deadline":     {fmt.Errorf("Op: waiting for rate limiter: %w", context.DeadlineExceeded), want{retryable: true}},
		"bare net timeout":          {timeoutError{}, want{retryable: true}},
		"bare unexpected EOF":       {fmt.Errorf("read: %w", io.ErrUnexpectedEOF), want{retryable: true}},
		"bare connection reset":     {&net.OpError{Op: "read", Err: syscall.ECONNRESET}, want{retryable: true}},
		"unrelated error":           {errors.New("boom"), want{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := IsTerminal(tc.err); got != tc.want.terminal {
				t.Errorf("IsTerminal = %v, want %v", got, tc.want.terminal)
			}
			if got := IsRetryable(tc.err); got != tc.want.retryable {
				t.Errorf("IsRetryable = %v, want %v", got, tc.want.retryable)
			}
		})
	}
}

func TestStatusPredicates(t *testing.T) {
	preds := map[string]struct {
		fn     func(error) bool
		status int
	}{
		"IsNotFound":     {IsNotFound, 404},
		"IsUnauthorized": {IsUnauthorized, 401},
		"IsForbidden":    {IsForbidden, 403},
		"IsValidation":   {IsValidation, 422},
		"IsRateLimited":  {IsRateLimited, 429},
	}
	statuses := []int{302, 400, 401, 403, 404, 409, 422, 429, 500, 503}
	for name, p := range preds {
		for _, s := range statuses {
			err := fmt.Errorf("wrapped: %w", &APIError{StatusCode: s})
			if got := p.fn(err); got != (s == p.status) {
				t.Errorf("%s(HTTP %d) = %v", name, s, got)
			}
		}
		if p.fn(nil) || p.fn(errors.New("x")) || p.fn(&InvalidResponseError{StatusCode: p.status}) {
			t.Errorf("%s true for a non-APIError", name)
		}
	}
}

func TestRetryAfterOfError(t *testing.T) {
	if d, ok := RetryAfter(fmt.Errorf("w: %w", &APIError{StatusCode: 429, RetryAfter: 7 * time.Second})); !ok || d != 7*time.Second {
		t.Errorf("RetryAfter = %v, %v", d, ok)
	}
	if _, ok := RetryAfter(&APIError{StatusCode: 429}); ok {
		t.Error("RetryAfter without a header must report false")
	}
	if _, ok := RetryAfter(errors.New("x")); ok {
		t.Error("RetryAfter of a plain error must report false")
	}
}

func TestTransportError_HidesURLSecrets(t *testing.T) {
	err := &TransportError{Op: "GetAgent", Err: &url.Error{
		Op:  "Get",
		URL: "https://user:pa55word@api.example.com/api/v1/agents/a?token=qsecret#frag",
		Err: syscall.ECONNREFUSED,
	}}
	s := err.Error()
	for _, leak := range []string{"pa55word", "user", "qsecret", "frag"} {
		if strings.Contains(s, leak) {
			t.Errorf("%q leaks %q", s, leak)
		}
	}
	if !strings.Contains(s, `GetAgent: Get "https://api.example.com/api/v1/agents/a"`) {
		t.Errorf("Error() = %q", s)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Error("Unwrap lost the cause")
	}
}
