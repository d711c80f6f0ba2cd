package talkover

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// fuzzToken is the token the fuzzed client sends; no error may show it.
const fuzzToken = "talq_fuzz_token_must_not_leak"

// FuzzResponse feeds arbitrary answers (status, content type, body) to the
// client's response parsing: it must never panic, and no error may contain
// the token or a header value.
func FuzzResponse(f *testing.F) {
	f.Add(200, "application/json", []byte(`{"success":true,"data":{"id":"a1","name":"n"}}`))
	f.Add(200, "application/json", []byte(`{"success":true,"data":[{"id":"a1"}],"meta":{"current_page":1,"last_page":2}}`))
	f.Add(422, "application/json", []byte(`{"success":false,"message":"The given data was invalid.","errors":{"url":["bad"]}}`))
	f.Add(401, "application/json", []byte(`{"message":"Missing Bearer Token"}`))
	f.Add(500, "application/json", []byte(`{"success":false,"error":{"code":"SERVER_ERROR","message":"x","details":{}}}`))
	f.Add(400, "application/json", []byte(`{"success":false,"errors":["a","b"]}`))
	f.Add(200, "text/html", []byte(`<html>`))
	f.Add(200, "application/json", []byte(`{"success":false}`))
	f.Add(302, "", []byte(nil))
	f.Add(429, "application/json", []byte(`{"errors":{"x":"not a list"}}`))
	f.Add(200, "application/json", []byte(`{"success":true,"data":{"id":12}}`))

	var status atomic.Int64
	var ctype atomic.Value
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if ct, _ := ctype.Load().(string); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(int(status.Load()))
		b, _ := body.Load().([]byte)
		_, _ = w.Write(b)
	}))
	f.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, Token: fuzzToken, MaxResponseBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	req := ActionRequest{NodeID: "n", Name: "n", Description: "d", Type: ActionTypeWebhook,
		CustomHeaders: []Header{{Key: "X-Key", Value: "fuzz-header-secret"}}}

	f.Fuzz(func(t *testing.T, code int, contentType string, payload []byte) {
		if code < 200 || code > 599 {
			return
		}
		status.Store(int64(code))
		ctype.Store(contentType)
		body.Store(append([]byte(nil), payload...))
		_, err1 := c.UpsertAction(context.Background(), "agent", req)
		_, err2 := c.ListActions(context.Background(), "agent")
		for _, err := range []error{err1, err2} {
			if err == nil {
				continue
			}
			msg := err.Error()
			if strings.Contains(msg, fuzzToken) || strings.Contains(msg, "fuzz-header-secret") {
				t.Fatalf("an error leaks a secret: %q", msg)
			}
			_ = IsTerminal(err) || IsRetryable(err)
		}
	})
}
