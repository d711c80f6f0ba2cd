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
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	clock := newFakeClock()
	f := newFixture(t, WithClock(clock.Now), WithRateLimit(5))

	// A rejected (401) request counts against its token like any other.
	expectStatus(t, f.do(http.MethodGet, actionPath, "", nil), http.StatusUnauthorized)
	for i := range 5 {
		clock.Advance(time.Second)
		r := f.do(http.MethodGet, actionPath, devToken, nil)
		expectStatus(t, r, http.StatusOK)
		if got := r.header.Get("X-RateLimit-Remaining"); got != []string{"4", "3", "2", "1", "0"}[i] {
			t.Errorf("request %d: X-RateLimit-Remaining = %q", i+1, got)
		}
	}
	// Window: hits at t+1s..t+5s, so the first slot frees at t+61s.
	r := f.do(http.MethodGet, actionPath, devToken, nil)
	expectFailure(t, r, http.StatusTooManyRequests, "Too Many Attempts.")
	if got := r.header.Get("Retry-After"); got != "56" {
		t.Errorf("Retry-After = %q, want 56", got)
	}
	expectStatus(t, f.do(http.MethodGet, actionPath, prodToken, nil), http.StatusNotFound)

	clock.Advance(55*time.Second + 500*time.Millisecond)
	r = f.do(http.MethodPost, actionPath, devToken, holdBody)
	expectStatus(t, r, http.StatusTooManyRequests)
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if len(f.s.Actions(agentID)) != 0 {
		t.Error("a throttled upsert was processed")
	}
	clock.Advance(500 * time.Millisecond)
	expectStatus(t, f.do(http.MethodGet, actionPath, devToken, nil), http.StatusOK)
	expectStatus(t, f.do(http.MethodGet, actionPath, devToken, nil), http.StatusTooManyRequests)
	if n := f.s.CountStatus(http.StatusTooManyRequests); n != 3 {
		t.Errorf("429s counted = %d, want 3", n)
	}

	f.s.SetRateLimit(0)
	expectStatus(t, f.do(http.MethodGet, actionPath, devToken, nil), http.StatusOK)
}

func TestFaults_ErrorRate(t *testing.T) {
	tests := map[string]struct {
		codes []int
		want  []int
	}{
		"default codes": {nil, []int{500, 502, 503}},
		"chosen codes":  {[]int{502, 504}, []int{502, 504}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, WithSeed(42))
			f.s.SetFaults(RouteUpsert, Faults{ErrorRate: 1, ErrorCodes: tt.codes})
			for range 20 {
				r := f.upsert(holdBody)
				if !slices.Contains(tt.want, r.status) || r.body["success"] != false {
					t.Fatalf("status %d body %s, want one of %v", r.status, r.raw, tt.want)
				}
			}
			if n := len(f.s.Actions(agentID)); n != 0 {
				t.Errorf("faulted upserts stored %d actions", n)
			}
			expectStatus(t, f.do(http.MethodGet, actionPath, devToken, nil), http.StatusOK)
			for _, rec := range f.s.Requests() {
				if rec.Route == RouteUpsert && rec.Fault != FaultError {
					t.Errorf("request %+v not marked as an injected error", rec)
				}
			}
		})
	}
}

func TestFaults_ErrorRateIsAFraction(t *testing.T) {
	f := newFixture(t, WithSeed(7))
	f.s.SetFaults("", Faults{ErrorRate: 0.5})
	failures := 0
	for range 200 {
		if f.do(http.MethodGet, actionPath, devToken, nil).status != http.StatusOK {
			failures++
		}
	}
	if failures < 60 || failures > 140 {
		t.Errorf("failures = %d of 200 at rate 0.5", failures)
	}
}

func TestFaults_Reset(t *testing.T) {
	f := newFixture(t)
	f.s.SetFaults(RouteUpsert, Faults{ResetRate: 1})
	resp, err := f.send(http.MethodPost, actionPath, devToken, holdBody)
	if err == nil {
		_ = resp.Body.Close()
		t.Fatalf("got status %d, want a connection error", resp.StatusCode)
	}
	expectStatus(t, f.do(http.MethodGet, actionPath, devToken, nil), http.StatusOK)
	// The reset request may be logged after the GET that followed it: the
	// client sees the reset before the server has finished logging it.
	var reqs []Request
	resets := 0
	for deadline := time.Now().Add(2 * time.Second); resets == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		reqs = f.s.Requests()
		for _, r := range reqs {
			if r.Fault == FaultReset && r.Status == 0 && r.Route == RouteUpsert {
				resets++
			}
		}
	}
	if resets != 1 {
		t.Errorf("want one logged reset, requests = %+v", reqs)
	}
	if len(f.s.Actions(agentID)) != 0 {
		t.Error("a reset upsert was processed")
	}
	f.s.ClearFaults()
	expectStatus(t, f.upsert(holdBody), http.StatusOK)
}

func TestFaults_Latency(t *testing.T) {
	f := newFixture(t)
	f.s.SetFaults(RouteList, Faults{Latency: 50 * time.Millisecond})
	start := time.Now()
	expectStatus(t, f.do(http.MethodGet, actionPath, devToken, nil), http.StatusOK)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered after %v, want ≥ 50ms", d)
	}

	// The client gives up, but the request is still processed.
	f.s.SetFaults(RouteUpsert, Faults{Latency: 200 * time.Millisecond})
	f.client.Timeout = 20 * time.Millisecond
	if resp, err := f.send(http.MethodPost, actionPath, devToken, holdBody); err == nil {
		_ = resp.Body.Close()
		t.Fatal("want a client timeout")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(f.s.Actions(agentID)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(f.s.Actions(agentID)) != 1 {
		t.Error("the timed-out upsert was not processed")
	}
}

func TestOutage(t *testing.T) {
	clock := newFakeClock()
	f := newFixture(t, WithClock(clock.Now))
	f.s.OutageFor(time.Minute)
	for _, path := range []string{actionPath, "/agents/" + agentID} {
		r := f.do(http.MethodGet, path, devToken, nil)
		expectFailure(t, r, http.StatusServiceUnavailable, "Service Unavailable")
		if r.header.Get("Retry-After") != "" {
			t.Errorf("outage sent Retry-After %q", r.header.Get("Retry-After"))
		}
	}
	clock.Advance(time.Minute)
	expectStatus(t, f.do(http.MethodGet, actionPath, devToken, nil), http.StatusOK)
	if n := f.s.CountStatus(http.StatusServiceUnavailable); n != 2 {
		t.Errorf("503s = %d", n)
	}
}

func TestBurst429(t *testing.T) {
	tests := map[string]struct {
		retryAfter time.Duration
		wantHeader string
	}{
		"rounded up":     {1500 * time.Millisecond, "2"},
		"zero":           {0, "0"},
		"without header": {-1, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.s.Burst429(3, tt.retryAfter)
			got := 0
			for range 6 {
				r := f.do(http.MethodPost, actionPath, devToken, holdBody)
				if r.status != http.StatusTooManyRequests {
					continue
				}
				got++
				if r.header.Get("Retry-After") != tt.wantHeader || r.body["message"] != "Too Many Attempts." {
					t.Errorf("429 Retry-After %q body %s", r.header.Get("Retry-After"), r.raw)
				}
			}
			if got != 3 || f.s.CountStatus(http.StatusOK) != 3 {
				t.Errorf("429s = %d, 200s = %d; want 3 and 3", got, f.s.CountStatus(http.StatusOK))
			}
		})
	}
}

// Outages and 429 bursts can be set on one route; the others answer as
// usual, and a route's own burst is spent before a burst of every route.
func TestOutageAndBurst429OnOneRoute(t *testing.T) {
	clock := newFakeClock()
	f := newFixture(t, WithClock(clock.Now))
	f.s.OutageOn(RouteUpsert, time.Minute)
	expectFailure(t, f.do(http.MethodPost, actionPath, devToken, holdBody), http.StatusServiceUnavailable, "Service Unavailable")
	expectStatus(t, f.do(http.MethodGet, actionPath, devToken, nil), http.StatusOK)
	clock.Advance(time.Minute)
	expectStatus(t, f.do(http.MethodPost, actionPath, devToken, holdBody), http.StatusOK)

	f.s.Burst429On(RouteList, 2, time.Second)
	f.s.Burst429(1, 3*time.Second)
	got := make([]string, 0, 4)
	for range 4 {
		r := f.do(http.MethodGet, actionPath, devToken, nil)
		got = append(got, fmt.Sprintf("%d/%s", r.status, r.header.Get("Retry-After")))
	}
	want := []string{"429/1", "429/1", "429/3", "200/"}
	if !slices.Equal(got, want) {
		t.Errorf("list answers = %v, want %v (the route's own burst first, then the burst of every route)", got, want)
	}
	expectStatus(t, f.do(http.MethodPost, actionPath, devToken, holdBody), http.StatusOK)
}

// ResetNext resets exactly the next n requests, which are not processed.
func TestResetNext(t *testing.T) {
	f := newFixture(t)
	f.s.ResetNext(2)
	resets := 0
	for range 4 {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, f.s.URL()+actionPath, strings.NewReader(holdBody))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+devToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			resets++
			continue
		}
		_ = resp.Body.Close()
	}
	if resets != 2 || f.s.CountStatus(http.StatusOK) != 2 {
		t.Errorf("resets = %d, 200s = %d; want 2 and 2", resets, f.s.CountStatus(http.StatusOK))
	}
}

func TestHostile(t *testing.T) {
	tests := map[string]struct {
		mode  HostileMode
		check func(t *testing.T, resp *http.Response, body []byte)
	}{
		"malformed JSON": {HostileMalformedJSON, func(t *testing.T, _ *http.Response, body []byte) {
			if json.Valid(body) {
				t.Errorf("body is valid JSON: %s", body)
			}
		}},
		"wrong content type": {HostileWrongContentType, func(t *testing.T, resp *http.Response, _ []byte) {
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.StatusCode != 200 {
				t.Errorf("status %d content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}},
		"success false": {HostileSuccessFalse, func(t *testing.T, resp *http.Response, body []byte) {
			if resp.StatusCode != 200 || string(body) != `{"success":false}` {
				t.Errorf("got %d %s", resp.StatusCode, body)
			}
		}},
		"missing id": {HostileMissingID, func(t *testing.T, resp *http.Response, body []byte) {
			var m struct {
				Success bool           `json:"success"`
				Data    map[string]any `json:"data"`
			}
			if err := json.Unmarshal(body, &m); err != nil || resp.StatusCode != 200 || !m.Success {
				t.Fatalf("got %d %s", resp.StatusCode, body)
			}
			if _, ok := m.Data["id"]; ok || m.Data["name"] != "Put Call on Hold" {
				t.Errorf("data = %v", m.Data)
			}
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.s.SetHostile(RouteUpsert, tt.mode)
			resp, err := f.send(http.MethodPost, actionPath, devToken, holdBody)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body, _ := io.ReadAll(resp.Body)
			tt.check(t, resp, body)
			if len(f.s.Actions(agentID)) != 1 {
				t.Error("the request behind a hostile answer was not processed")
			}
			if reqs := f.s.Requests(); reqs[0].Fault != FaultHostile {
				t.Errorf("fault = %q", reqs[0].Fault)
			}
		})
	}
}

func TestHostile_HugeBody(t *testing.T) {
	f := newFixture(t)
	f.s.SetHostile(RouteList, HostileHugeBody)
	resp, err := f.send(http.MethodGet, actionPath, devToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 65<<20))
	if err != nil || n < 64<<20 {
		t.Errorf("read %d bytes, err %v; want ≥ 64 MiB", n, err)
	}
}

func TestHostile_HugeBodyClientGivesUp(t *testing.T) {
	f := newFixture(t)
	f.s.SetHostile("", HostileHugeBody)
	resp, err := f.send(http.MethodGet, actionPath, devToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 1<<10)
	_ = resp.Body.Close()
	f.s.SetHostile("", HostileNone)
	expectStatus(t, f.do(http.MethodGet, actionPath, devToken, nil), http.StatusOK)
}

func TestHostile_Redirect(t *testing.T) {
	f := newFixture(t)
	f.s.SetHostile("", HostileRedirect("https://login.example.com/"))
	r := f.upsert(holdBody)
	expectStatus(t, r, http.StatusFound)
	if r.header.Get("Location") != "https://login.example.com/" {
		t.Errorf("Location = %q", r.header.Get("Location"))
	}
	if len(f.s.Actions(agentID)) != 0 {
		t.Error("a redirected upsert was processed")
	}
}

func TestClose_CutsLatencyShort(t *testing.T) {
	// The server reads its clock when a request arrives: once armed, the
	// first reading says the request is being handled, so Close cannot pass
	// by shutting a server that never saw it.
	var armed atomic.Bool
	arrived := make(chan struct{})
	var once sync.Once
	s := New(WithClock(func() time.Time {
		if armed.Load() {
			once.Do(func() { close(arrived) })
		}
		return time.Now()
	}))
	base := s.Start()
	s.SetFaults("", Faults{Latency: time.Hour})
	armed.Store(true)
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/agents/x", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the request never reached the server")
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on injected latency")
	}
	select {
	case err := <-errc:
		t.Logf("client returned after Close: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the client never returned after Close")
	}
}
