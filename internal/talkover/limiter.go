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
	"sync"
	"time"
)

// Clock is the time source of a Limiter; tests inject a fake one.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has elapsed.
	After(d time.Duration) <-chan time.Time
}

// RealClock is a Clock backed by the time package.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Priority orders the waiters of a Limiter: a lower value is served first.
type Priority int

const (
	// PriorityHigh is for spec changes and deletes.
	PriorityHigh Priority = iota
	// PriorityNormal is for retries; it is the default.
	PriorityNormal
	// PriorityLow is for periodic drift checks.
	PriorityLow
)

// numPriorities is the number of Priority levels.
const numPriorities = int(PriorityLow) + 1

// String returns "high", "normal" or "low".
func (p Priority) String() string {
	switch clampPriority(p) {
	case PriorityHigh:
		return "high"
	case PriorityLow:
		return "low"
	default:
		return "normal"
	}
}

// clampPriority maps out-of-range values to the nearest valid Priority.
func clampPriority(p Priority) Priority {
	return min(max(p, PriorityHigh), PriorityLow)
}

// priorityKey is the context key of the request priority.
type priorityKey struct{}

// WithPriority returns a context whose requests wait with priority p.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, clampPriority(p))
}

// PriorityFrom returns the priority stored in ctx, or PriorityNormal.
func PriorityFrom(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok {
		return clampPriority(p)
	}
	return PriorityNormal
}

// Limiter is a client-side rate limiter shared by every client of one
// Talkover environment (one token, one server-side quota).
//
// It is a token bucket implemented as GCRA (generic cell rate algorithm)
// with a small burst b = clamp(rpm/20, 1, 10) and an emission interval
// I = 60s/(rpm-b+1) + 1ns. Any n admissions satisfy
// last-first >= (n-b)*I, so a 60s window admits at most b + floor(60s/I)
// = rpm requests: the server's per-minute quota is never exceeded by this
// process (network jitter aside). The steady rate is therefore slightly
// below rpm, the price of the burst that lets a high-priority request go out
// at once after a quiet period.
//
// Waiters are served strictly by priority (see WithPriority), FIFO within a
// priority. PauseFor stops all admissions until a deadline, after which the
// bucket restarts with a single token. A goroutine dispatches waiters while
// the queue is non-empty and exits when it drains.
type Limiter struct {
	clock Clock
	wake  chan struct{}

	mu          sync.Mutex
	interval    time.Duration
	burst       int
	tat         time.Time // GCRA theoretical arrival time
	pausedUntil time.Time
	queues      [numPriorities][]*waiter
	running     bool
	seq         uint64
}

// waiter is one blocked Wait call.
type waiter struct {
	ready     chan struct{} // closed when granted
	granted   bool
	grantedAt time.Time
	seq       uint64 // grant order, for tests
}

// grant describes an admission.
type grant struct {
	at     time.Time
	waited time.Duration
	seq    uint64
}

// NewLimiter returns a Limiter admitting at most requestsPerMinute requests
// in any 60-second window. Values below 1 are treated as 1. A nil clock
// means RealClock.
func NewLimiter(requestsPerMinute int, clock Clock) *Limiter {
	if clock == nil {
		clock = RealClock{}
	}
	l := &Limiter{clock: clock, wake: make(chan struct{}, 1)}
	l.setRateLocked(requestsPerMinute)
	return l
}

// SetRate changes the limit to requestsPerMinute (values below 1 mean 1).
// The window guarantee holds for windows that do not span a rate change.
func (l *Limiter) SetRate(requestsPerMinute int) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.setRateLocked(requestsPerMinute)
	l.mu.Unlock()
	l.signal()
}

// setRateLocked computes burst and interval from requestsPerMinute. Tokens
// already owed (a theoretical arrival time in the future) are kept as a
// number of tokens and rescheduled at the new interval; a pause is kept.
func (l *Limiter) setRateLocked(rpm int) {
	rpm = max(rpm, 1)
	oldInterval := l.interval
	l.burst = min(max(rpm/20, 1), 10)
	l.interval = (time.Minute+windowSlack)/time.Duration(rpm-l.burst+1) + time.Nanosecond
	if oldInterval == 0 {
		return
	}
	now := l.clock.Now()
	if debt := l.tat.Sub(now); debt > 0 {
		l.tat = now.Add(time.Duration(float64(debt) * float64(l.interval) / float64(oldInterval)))
	}
	if restart := l.pausedUntil.Add(l.tau()); restart.After(l.tat) {
		l.tat = restart
	}
}

// windowSlack widens the planned window beyond 60 s, so that requests that
// leave on schedule but arrive a little late (a new connection, a busy
// machine) still fit the server's per-minute count.
const windowSlack = 500 * time.Millisecond

// tau is the GCRA burst tolerance.
func (l *Limiter) tau() time.Duration {
	return time.Duration(l.burst-1) * l.interval
}

// PauseFor stops admissions until now+d. It extends an earlier pause and
// never shortens one. After the pause the bucket holds a single token.
func (l *Limiter) PauseFor(d time.Duration) {
	if l == nil || d <= 0 {
		return
	}
	l.mu.Lock()
	until := l.clock.Now().Add(d)
	if until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
	if restart := l.pausedUntil.Add(l.tau()); restart.After(l.tat) {
		l.tat = restart
	}
	l.mu.Unlock()
	l.signal()
}

// Idle reports whether a Wait call now would be admitted at once: nobody is
// queued and a token is available.
func (l *Limiter) Idle() bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queuedLocked() == 0 && l.nextLocked(l.clock.Now()) == 0
}

// QueueLen returns the number of blocked Wait calls.
func (l *Limiter) QueueLen() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, q := range l.queues {
		n += len(q)
	}
	return n
}

// Wait blocks until a request may be sent, serving waiters by the priority
// in ctx (see WithPriority) and FIFO within a priority. It returns how long
// it waited. If ctx ends first the waiter leaves the queue and ctx.Err() is
// returned. A nil Limiter never blocks.
func (l *Limiter) Wait(ctx context.Context) (time.Duration, error) {
	if l == nil {
		return 0, ctx.Err()
	}
	g, err := l.wait(ctx)
	return g.waited, err
}

// wait implements Wait and also reports the admission time and order.
func (l *Limiter) wait(ctx context.Context) (grant, error) {
	if err := ctx.Err(); err != nil {
		return grant{}, err
	}
	p := PriorityFrom(ctx)
	l.mu.Lock()
	start := l.clock.Now()
	if l.queuedLocked() == 0 && l.admitLocked(start) {
		l.seq++
		g := grant{at: start, seq: l.seq}
		l.mu.Unlock()
		return g, nil
	}
	w := &waiter{ready: make(chan struct{})}
	l.queues[p] = append(l.queues[p], w)
	l.startLocked()
	l.mu.Unlock()

	select {
	case <-w.ready:
		return grant{at: w.grantedAt, waited: w.grantedAt.Sub(start), seq: w.seq}, nil
	case <-ctx.Done():
		l.remove(w, p)
		return grant{}, ctx.Err()
	}
}

// queuedLocked returns the number of waiters.
func (l *Limiter) queuedLocked() int {
	n := 0
	for _, q := range l.queues {
		n += len(q)
	}
	return n
}

// admitLocked takes a token at now if one is available.
func (l *Limiter) admitLocked(now time.Time) bool {
	if l.nextLocked(now) > 0 {
		return false
	}
	if l.tat.Before(now) {
		l.tat = now
	}
	l.tat = l.tat.Add(l.interval)
	return true
}

// nextLocked returns how long until a token is available (0: now).
func (l *Limiter) nextLocked(now time.Time) time.Duration {
	if now.Before(l.pausedUntil) {
		return l.pausedUntil.Sub(now)
	}
	if allowAt := l.tat.Add(-l.tau()); now.Before(allowAt) {
		return allowAt.Sub(now)
	}
	return 0
}

// startLocked makes sure a dispatcher goroutine is running.
func (l *Limiter) startLocked() {
	if l.running {
		l.signal()
		return
	}
	l.running = true
	go l.dispatch()
}

// signal wakes the dispatcher, if any, to re-evaluate the queue.
func (l *Limiter) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// dispatch grants tokens to queued waiters until the queue is empty.
func (l *Limiter) dispatch() {
	for {
		timer, more := l.step()
		if !more {
			return
		}
		select {
		case <-timer:
		case <-l.wake:
		}
	}
}

// armSlack is how far the clock may move while a timer is being armed
// before the timer is armed again.
const armSlack = time.Millisecond

// step grants what it can and arms a timer for the next token. If the clock
// moved while the timer was armed (a stalled goroutine, or a fake clock in
// tests), it re-evaluates so that the timer never fires after the next
// token is due. It reports false, and marks the dispatcher stopped, when no
// waiter remains.
func (l *Limiter) step() (<-chan time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		now := l.clock.Now()
		d, more := l.grantLocked(now)
		if !more {
			l.running = false
			return nil, false
		}
		timer := l.clock.After(d)
		if l.clock.Now().Sub(now) < armSlack {
			return timer, true
		}
	}
}

// grantLocked admits waiters in priority order while tokens are available
// at now. It returns the delay until the next token and whether waiters
// remain.
func (l *Limiter) grantLocked(now time.Time) (time.Duration, bool) {
	for p := range l.queues {
		for len(l.queues[p]) > 0 {
			if !l.admitLocked(now) {
				return l.nextLocked(now), true
			}
			w := l.queues[p][0]
			l.queues[p][0] = nil
			l.queues[p] = l.queues[p][1:]
			l.seq++
			w.granted, w.grantedAt, w.seq = true, now, l.seq
			close(w.ready)
		}
	}
	return 0, false
}

// remove takes a cancelled waiter out of its queue. A waiter that was
// granted concurrently has consumed its token; the token is not returned
// because the window guarantee must hold.
func (l *Limiter) remove(w *waiter, p Priority) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.granted {
		return
	}
	q := l.queues[p]
	for i := range q {
		if q[i] == w {
			l.queues[p] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	l.signal()
}
