package talkover

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// breakerClock is a settable clock for breaker tests.
type breakerClock struct{ now time.Time }

func (c *breakerClock) Now() time.Time                         { return c.now }
func (c *breakerClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func TestBreaker_opensProbesAndCloses(t *testing.T) {
	var calls atomic.Int64
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"success":true,"data":[]}`))
	}))
	defer srv.Close()
	clock := &breakerClock{now: time.Unix(1000, 0)}
	b := NewBreaker(clock)
	c, err := New(Config{BaseURL: srv.URL, Token: "talq_breaker_test", Breaker: b})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Three failures open the circuit; further calls make no request.
	for range 3 {
		if _, err := c.ListActions(ctx, "a"); !IsRetryable(err) {
			t.Fatalf("want a retryable error, got %v", err)
		}
	}
	for range 10 {
		_, err := c.ListActions(ctx, "a")
		var open *CircuitOpenError
		if !errors.As(err, &open) {
			t.Fatalf("want CircuitOpenError, got %v", err)
		}
		if d, ok := RetryAfter(err); !ok || d <= 0 {
			t.Fatalf("an open circuit says when to retry, got %v %v", d, ok)
		}
	}
	if got := calls.Load(); got != 3 {
		t.Fatalf("calls while open: want 3 in all, got %d", got)
	}

	probeAndRecover(t, c, b, clock, &calls, &healthy)
}

// probeAndRecover continues TestBreaker_opensProbesAndCloses from an open
// circuit.
func probeAndRecover(t *testing.T, c *Client, b *Breaker, clock *breakerClock, calls *atomic.Int64, healthy *atomic.Bool) {
	t.Helper()
	ctx := context.Background()
	// After the open period one probe goes out; it fails and the circuit
	// stays open twice as long.
	clock.now = clock.now.Add(DefaultBreakerMinOpen)
	if _, err := c.ListActions(ctx, "a"); err == nil {
		t.Fatal("the probe should fail")
	}
	if got := calls.Load(); got != 4 {
		t.Fatalf("one probe: want 4 calls, got %d", got)
	}
	clock.now = clock.now.Add(DefaultBreakerMinOpen)
	if _, err := c.ListActions(ctx, "a"); !errors.As(err, new(*CircuitOpenError)) {
		t.Fatalf("the circuit stays open for twice as long, got %v", err)
	}

	// The API is back: the next probe closes the circuit.
	healthy.Store(true)
	clock.now = clock.now.Add(2 * DefaultBreakerMinOpen)
	if _, err := c.ListActions(ctx, "a"); err != nil {
		t.Fatalf("probe after recovery: %v", err)
	}
	if b.Open() {
		t.Fatal("the circuit should be closed")
	}
	if _, err := c.ListActions(ctx, "a"); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestBreaker_clientErrorsKeepItClosed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"success":false,"message":"The given data was invalid."}`))
	}))
	defer srv.Close()
	b := NewBreaker(nil)
	c, err := New(Config{BaseURL: srv.URL, Token: "talq_breaker_test", Breaker: b})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := c.ListActions(context.Background(), "a"); !IsValidation(err) {
			t.Fatalf("want a 422, got %v", err)
		}
	}
	if b.Open() {
		t.Fatal("answers of a live API must not open the circuit")
	}
}
