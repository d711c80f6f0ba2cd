package talkover

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
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

// outageCallBound is the most calls a breaker with these settings lets
// through during an outage of the given length, to one caller trying
// continuously: threshold failures open the circuit, then one probe goes
// out at the end of each open period, whose length doubles from minOpen up
// to maxOpen. Probe i cannot leave before the first i open periods have
// elapsed, so the probes are at most the open periods that end within the
// outage. Tries at discrete ticks only delay the probes.
func outageCallBound(threshold int, minOpen, maxOpen, outage time.Duration) int {
	calls, open := threshold, minOpen
	for elapsed := open; elapsed < outage; elapsed += open {
		calls++
		open = min(2*open, maxOpen)
	}
	return calls
}

func TestOutageCallBound(t *testing.T) {
	// Open periods 2s, 4s, 8s, then 15s: they end at 2s, 6s, 14s, 29s, 44s,
	// ... 299s, 314s; 22 of them end within 5 minutes.
	if got := outageCallBound(3, 2*time.Second, 15*time.Second, 5*time.Minute); got != 3+22 {
		t.Errorf("outageCallBound = %d, want 25", got)
	}
	if got := outageCallBound(3, 2*time.Second, 15*time.Second, 2*time.Second); got != 3 {
		t.Errorf("outageCallBound over one open period = %d, want 3", got)
	}
}

// The issue requires that the calls for an environment stay bounded during
// a 5-minute outage. Callers (one, or several sharing the breaker as
// concurrent reconciles do) try every 100ms of fake time while every call
// that reaches the API gets a 503; the calls let through stay within the
// bound derived from the breaker's settings, the breaker keeps probing at
// least every MaxOpen, and the first probe after the outage closes it.
func TestBreaker_boundsCallsDuringAFiveMinuteOutage(t *testing.T) {
	const (
		outage = 5 * time.Minute
		tick   = 100 * time.Millisecond
	)
	for _, callers := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d concurrent caller(s)", callers), func(t *testing.T) {
			var healthy atomic.Bool
			var sent atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				sent.Add(1)
				if !healthy.Load() {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(docSuccessResponse))
			}))
			defer srv.Close()
			clock := newFakeClock()
			b := NewBreaker(clock)
			c, err := New(Config{BaseURL: srv.URL, Token: "talq_breaker_test", Breaker: b})
			if err != nil {
				t.Fatal(err)
			}

			letThrough, attempts := runOutage(t, c, clock, callers, outage, tick)
			if n := sent.Load(); int(n) != len(letThrough) {
				t.Fatalf("the API received %d requests, but %d calls were let through", n, len(letThrough))
			}
			// Concurrent callers may all get through in the tick that opens
			// the circuit: up to callers-1 calls beyond the threshold.
			bound := outageCallBound(DefaultBreakerThreshold, DefaultBreakerMinOpen, DefaultBreakerMaxOpen, outage) + callers - 1
			t.Logf("%d caller(s), one try each every %v for %v: %d tries, %d let through to the API (bound %d), last at %v",
				callers, tick, outage, attempts, len(letThrough), bound, letThrough[len(letThrough)-1])
			if len(letThrough) > bound {
				t.Errorf("%d calls let through during the outage, want at most %d", len(letThrough), bound)
			}
			checkKeepsProbing(t, letThrough, outage, DefaultBreakerMaxOpen+tick)

			healthy.Store(true)
			recoverAfterOutage(t, c, b, clock, &sent, callers, tick)
		})
	}
}

// tryAll makes one UpsertAction call per caller, concurrently, and returns
// their errors.
func tryAll(c *Client, callers int) []error {
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { _, errs[i] = c.UpsertAction(context.Background(), testAgentID, docActionRequest1()) })
	}
	wg.Wait()
	return errs
}

// runOutage lets the callers try every tick until the outage ends and
// returns the fake times (since the start) of the calls that reached the
// API, and the number of tries.
func runOutage(t *testing.T, c *Client, clock *fakeClock, callers int, outage, tick time.Duration) (letThrough []time.Duration, attempts int) {
	t.Helper()
	for at := time.Duration(0); at < outage; at += tick {
		for _, err := range tryAll(c, callers) {
			attempts++
			var open *CircuitOpenError
			switch {
			case errors.As(err, &open):
				if open.RetryAfter <= 0 || open.RetryAfter > DefaultBreakerMaxOpen {
					t.Fatalf("at %v: RetryAfter %v, want within (0, %v]", at, open.RetryAfter, DefaultBreakerMaxOpen)
				}
			case err == nil:
				t.Fatalf("at %v: a call succeeded during the outage", at)
			case !IsRetryable(err):
				t.Fatalf("at %v: want a retryable error, got %v", at, err)
			default:
				letThrough = append(letThrough, at)
			}
		}
		clock.Advance(tick)
	}
	return letThrough, attempts
}

// checkKeepsProbing asserts that the breaker did not stop trying: no gap
// between calls let through, nor before the end of the outage, exceeds
// maxGap.
func checkKeepsProbing(t *testing.T, letThrough []time.Duration, outage, maxGap time.Duration) {
	t.Helper()
	if len(letThrough) <= DefaultBreakerThreshold {
		t.Fatalf("only %d calls let through: the breaker never probed", len(letThrough))
	}
	for i := 1; i < len(letThrough); i++ {
		if gap := letThrough[i] - letThrough[i-1]; gap > maxGap {
			t.Errorf("no call between %v and %v: want a probe at least every %v", letThrough[i-1], letThrough[i], maxGap)
		}
	}
	if last := letThrough[len(letThrough)-1]; outage-last > maxGap {
		t.Errorf("last call let through at %v of a %v outage: want a probe at least every %v", last, outage, maxGap)
	}
}

// recoverAfterOutage continues TestBreaker_boundsCallsDuringAFiveMinuteOutage
// once the API is healthy: within MaxOpen a probe goes out, succeeds and
// closes the circuit; then every caller gets through.
func recoverAfterOutage(t *testing.T, c *Client, b *Breaker, clock *fakeClock, sent *atomic.Int64, callers int, tick time.Duration) {
	t.Helper()
	for after := time.Duration(0); ; after += tick {
		if after > DefaultBreakerMaxOpen {
			t.Fatalf("no probe within %v of the end of the outage", after)
		}
		before := sent.Load()
		errs := tryAll(c, callers)
		if sent.Load() == before {
			clock.Advance(tick)
			continue
		}
		for _, err := range errs {
			if err != nil && !errors.As(err, new(*CircuitOpenError)) {
				t.Fatalf("%v after the outage: the first probe should succeed, got %v", after, err)
			}
		}
		if b.Open() {
			t.Fatalf("%v after the outage: the circuit is still open after a successful probe", after)
		}
		t.Logf("closed again by the first probe, %v after the outage ended", after)
		break
	}
	for i, err := range tryAll(c, callers) {
		if err != nil {
			t.Errorf("caller %d after recovery: %v", i, err)
		}
	}
}
