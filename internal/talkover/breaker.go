package talkover

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Circuit breaker defaults.
const (
	// DefaultBreakerThreshold is the number of consecutive failures that
	// opens the circuit.
	DefaultBreakerThreshold = 3
	// DefaultBreakerMinOpen is how long the circuit first stays open.
	DefaultBreakerMinOpen = 2 * time.Second
	// DefaultBreakerMaxOpen caps how long the circuit stays open, so work
	// resumes within seconds of the API coming back.
	DefaultBreakerMaxOpen = 15 * time.Second
)

// CircuitOpenError is returned, without calling the API, while an
// environment's API is failing and its circuit is open. It is retryable:
// RetryAfter says when the next call may go out.
type CircuitOpenError struct {
	Op         string
	RetryAfter time.Duration
}

// Error implements error.
func (e *CircuitOpenError) Error() string {
	return fmt.Sprintf("%s: the API has been failing; the next attempt is in %s", e.Op, e.RetryAfter.Round(time.Second))
}

// Breaker is a circuit breaker shared by every client of one environment.
// After Threshold consecutive failures (5xx, timeouts, network errors,
// unreadable answers) it opens: calls fail at once with *CircuitOpenError
// and make no request. When the open period ends, exactly one call goes out
// as a probe; its success closes the circuit, its failure reopens it for
// twice as long, up to MaxOpen. Any answer of the API that is not a failure
// (2xx, 4xx, 429) counts as success.
type Breaker struct {
	Threshold int
	MinOpen   time.Duration
	MaxOpen   time.Duration

	clock     Clock
	mu        sync.Mutex
	failures  int
	open      time.Duration
	openUntil time.Time
	probing   bool
}

// NewBreaker returns a closed Breaker with the default settings.
func NewBreaker(clock Clock) *Breaker {
	if clock == nil {
		clock = RealClock{}
	}
	return &Breaker{Threshold: DefaultBreakerThreshold, MinOpen: DefaultBreakerMinOpen, MaxOpen: DefaultBreakerMaxOpen, clock: clock}
}

// allow says whether a call may go out now; the returned token must be
// passed to record.
func (b *Breaker) allow(op string) (probe bool, err error) {
	if b == nil {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return false, nil
	}
	now := b.clock.Now()
	if wait := b.openUntil.Sub(now); wait > 0 {
		return false, &CircuitOpenError{Op: op, RetryAfter: wait}
	}
	if b.probing {
		return false, &CircuitOpenError{Op: op, RetryAfter: b.MinOpen}
	}
	b.probing = true
	return true, nil
}

// wait returns how long the circuit stays open (0: a call may go out, or
// be the probe). It changes nothing.
func (b *Breaker) wait() time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return 0
	}
	if wait := b.openUntil.Sub(b.clock.Now()); wait > 0 {
		return wait
	}
	if b.probing {
		// The probe is out; come back soon, since its success closes the
		// circuit and work should resume within seconds.
		return b.MinOpen
	}
	return 0
}

// record counts the outcome of a call allowed by allow.
func (b *Breaker) record(probe bool, err error) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	switch {
	case err != nil && errors.Is(err, context.Canceled):
		return
	case err == nil || !IsRetryable(err) || IsRateLimited(err):
		b.failures, b.open, b.openUntil = 0, 0, time.Time{}
		return
	}
	b.failures++
	if b.failures < b.Threshold && !probe {
		return
	}
	b.open = min(max(2*b.open, b.MinOpen), b.MaxOpen)
	b.openUntil = b.clock.Now().Add(b.open)
}

// Open reports whether the circuit is open (calls are being refused).
func (b *Breaker) Open() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.openUntil.IsZero()
}
