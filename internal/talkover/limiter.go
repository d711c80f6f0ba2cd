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
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Clock is the time source of a Limiter and a Breaker; tests inject a fake
// one.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
}

// RealClock is a Clock backed by the time package.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Priority orders the reservations of a Limiter: a lower value is served
// first.
type Priority int

const (
	// PriorityHigh is for spec changes, deletes and publishes.
	PriorityHigh Priority = iota
	// PriorityNormal is for retries; it is the default.
	PriorityNormal
	// PriorityLow is for periodic drift checks.
	PriorityLow
)

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

// turnKey is the context key of the caller's turn (see WithTurn).
type turnKey struct{}

// turn is who a request is for and how urgent it is.
type turn struct {
	key      string
	group    string
	priority Priority
}

// WithTurn returns a context whose requests reserve their place in the
// Limiter under key (one caller: an object, an agent) with priority p. A
// request that cannot leave now books the next free slot for key and fails
// at once with a *BudgetError saying when that slot is due; the caller comes
// back then (a requeue) and the request leaves. A request without a turn
// leaves only when a slot is free now. group names the tenant the caller
// belongs to (a namespace): within a priority, the slots of a shared budget
// go round the groups, so one group's backlog does not queue another
// group's requests behind all of it.
func WithTurn(ctx context.Context, key, group string, p Priority) context.Context {
	return context.WithValue(ctx, turnKey{}, turn{key: key, group: group, priority: clampPriority(p)})
}

// turnFrom returns the turn stored in ctx.
func turnFrom(ctx context.Context) (turn, bool) {
	t, ok := ctx.Value(turnKey{}).(turn)
	return t, ok
}

// Limiter is the request budget of one credential (one token, one
// server-side quota), shared by every client that uses it. It never blocks:
// Reserve either admits a request now or books a later slot and says when
// it is due.
//
// The budget is GCRA (generic cell rate algorithm) with a small burst
// b = clamp(rpm/50, 1, 10) and an emission interval
// I = (60s+windowSlack)/(rpm-b+1) + 1ns. Any n admissions satisfy
// last-first >= (n-b)*I, so a window of 60s+windowSlack admits at most
// rpm requests: the server's per-minute quota is never exceeded, even by
// requests that leave up to ClaimGrace after their slot (network jitter
// aside).
//
// A booked slot belongs to its key until it is claimed, or until it is
// ClaimGrace overdue; then it is dropped (the slot is lost, never reused,
// so the window guarantee holds). Booked slots are handed out by priority
// (spec changes and deletes before retries, retries before drift checks),
// then fairly between groups (start-time fair queueing: a group's n-th
// waiting booking comes after every other group's (n-1)-th), then in
// booking order; a new booking takes its place and the bookings behind it
// each move one slot later, never earlier. PauseFor (a 429 or a 503 with
// Retry-After) refuses every request until its end and drops the bookings;
// the bucket then restarts with a single token. While MaxSlowInFlight calls
// of the budget have been under way for more than SlowCall (Start and
// Done), no new call is admitted: a slow server cannot take more of the
// callers' workers than that, and a fast one is never held back.
type Limiter struct {
	clock Clock

	mu          sync.Mutex
	rpm         int
	interval    time.Duration
	burst       int
	tat         time.Time // GCRA theoretical arrival time
	pausedUntil time.Time
	bookings    map[string]booking
	seq         uint64
	// vnow is the virtual time of the last booking claimed, and
	// groupLast the virtual time of each group's last booking.
	vnow      uint64
	groupLast map[string]uint64
	// inflight holds the start time of each call under way.
	inflight map[uint64]time.Time
	callSeq  uint64
}

// booking is a slot reserved for one key.
type booking struct {
	at       time.Time
	priority Priority
	vtime    uint64 // virtual start time, for fairness between groups
	seq      uint64 // booking order, first come first served
}

const (
	// ClaimGrace is how late a booked slot may be claimed before it is
	// dropped. It is well inside windowSlack.
	ClaimGrace = 250 * time.Millisecond
	// claimEarly lets a booking be claimed a moment before it is due, for
	// timers that fire a little early.
	claimEarly = 5 * time.Millisecond
	// windowSlack widens the planned window beyond 60 s, so that requests
	// that leave a little after their slot (ClaimGrace, a new connection, a
	// busy machine) still fit the server's per-minute count.
	windowSlack = 500 * time.Millisecond
	// MaxSlowInFlight is how many slow calls of one budget may be under
	// way before no new call is admitted.
	MaxSlowInFlight = 3
	// SlowCall is how long a call must have been under way to count as
	// slow.
	SlowCall = time.Second
	// BusyRetry is how soon a caller refused because slow calls hold the
	// budget comes back.
	BusyRetry = time.Second
)

// NewLimiter returns a Limiter admitting at most requestsPerMinute requests
// in any 60-second window. Values below 1 are treated as 1. A nil clock
// means RealClock.
func NewLimiter(requestsPerMinute int, clock Clock) *Limiter {
	if clock == nil {
		clock = RealClock{}
	}
	l := &Limiter{clock: clock, bookings: map[string]booking{}, groupLast: map[string]uint64{}, inflight: map[uint64]time.Time{}}
	l.setRateLocked(requestsPerMinute)
	return l
}

// Rate returns the configured requests per minute.
func (l *Limiter) Rate() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rpm
}

// SetRate changes the limit to requestsPerMinute (values below 1 mean 1).
// The window guarantee holds for windows that do not span a rate change.
// Bookings are dropped: their holders reserve again at the new rate.
func (l *Limiter) SetRate(requestsPerMinute int) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if max(requestsPerMinute, 1) == l.rpm {
		return
	}
	l.setRateLocked(requestsPerMinute)
	clear(l.bookings)
}

// setRateLocked computes burst and interval from requestsPerMinute. Tokens
// already owed (a theoretical arrival time in the future) are kept as a
// number of tokens and rescheduled at the new interval; a pause is kept.
func (l *Limiter) setRateLocked(rpm int) {
	rpm = max(rpm, 1)
	oldInterval := l.interval
	l.rpm = rpm
	l.burst = min(max(rpm/50, 1), 10)
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

// tau is the GCRA burst tolerance.
func (l *Limiter) tau() time.Duration {
	return time.Duration(l.burst-1) * l.interval
}

// PauseFor refuses every request until now+d and drops the bookings. It
// extends an earlier pause and never shortens one. After the pause the
// bucket holds a single token.
func (l *Limiter) PauseFor(d time.Duration) {
	if l == nil || d <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	until := l.clock.Now().Add(d)
	if until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
	if restart := l.pausedUntil.Add(l.tau()); restart.After(l.tat) {
		l.tat = restart
	}
	clear(l.bookings)
}

// Paused returns how long the current pause lasts (0: not paused).
func (l *Limiter) Paused() time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.pausedUntil.Sub(l.clock.Now()), 0)
}

// Booked returns the number of slots booked and not yet claimed.
func (l *Limiter) Booked() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked(l.clock.Now())
	return len(l.bookings)
}

// Reserve asks for a request slot for key (of group) at priority p. It
// returns 0 when the request may leave now (the slot is taken), or how long
// until the slot booked for key is due; the caller then calls Reserve again
// with the same key. An empty key never books: it returns 0 only when a
// slot is free now. While paused, Reserve books nothing and returns the
// pause left. A nil Limiter always returns 0.
func (l *Limiter) Reserve(key, group string, p Priority) time.Duration {
	if l == nil {
		return 0
	}
	p = clampPriority(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	l.expireLocked(now)
	if pause := l.pausedUntil.Sub(now); pause > 0 {
		return pause
	}
	if b, ok := l.bookings[key]; ok && key != "" {
		if p < b.priority {
			b.priority = p
			l.placeLocked(key, b)
		}
		return l.claimLocked(key, now)
	}
	if l.nextLocked(now) == 0 {
		l.admitLocked(now)
		return 0
	}
	if key == "" {
		return l.nextLocked(now)
	}
	at := l.tat.Add(-l.tau())
	l.tat = l.tat.Add(l.interval)
	l.seq++
	vtime := max(l.groupLast[group], l.vnow) + 1
	l.groupLast[group] = vtime
	l.placeLocked(key, booking{at: at, priority: p, vtime: vtime, seq: l.seq})
	return l.claimLocked(key, now)
}

// Start counts a call of the budget as under way; Done(id) must follow.
func (l *Limiter) Start() uint64 {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.callSeq++
	l.inflight[l.callSeq] = l.clock.Now()
	return l.callSeq
}

// Done ends a call counted by Start.
func (l *Limiter) Done(id uint64) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.inflight, id)
}

// HasBooking reports whether key holds a booked slot.
func (l *Limiter) HasBooking(key string) bool {
	if l == nil || key == "" {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.bookings[key]
	return ok
}

// Busy reports whether MaxSlowInFlight calls of the budget have been under
// way for more than SlowCall: the server is slow, and a new call would only
// hold one more of the callers' workers.
func (l *Limiter) Busy() bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now, slow := l.clock.Now(), 0
	for _, at := range l.inflight {
		if now.Sub(at) > SlowCall {
			slow++
		}
	}
	return slow >= MaxSlowInFlight
}

// claimLocked takes the slot booked for key if it is due, and otherwise
// returns how long until it is.
func (l *Limiter) claimLocked(key string, now time.Time) time.Duration {
	b := l.bookings[key]
	if now.Before(b.at.Add(-claimEarly)) {
		return b.at.Sub(now)
	}
	delete(l.bookings, key)
	if b.vtime > l.vnow {
		l.vnow = b.vtime
		for g, last := range l.groupLast {
			if last <= l.vnow {
				delete(l.groupLast, g)
			}
		}
	}
	return 0
}

// placeLocked books b for key and hands the booked slots out again in
// order of priority, then of virtual time, then of booking: b takes its
// place and the bookings behind it each move one slot later. The order of
// the other bookings never changes, so none moves earlier than the time
// its holder was told, except b itself.
func (l *Limiter) placeLocked(key string, b booking) {
	l.bookings[key] = b
	keys := make([]string, 0, len(l.bookings))
	slots := make([]time.Time, 0, len(l.bookings))
	for k, o := range l.bookings {
		keys = append(keys, k)
		slots = append(slots, o.at)
	}
	slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
	slices.SortFunc(keys, func(x, y string) int {
		bx, by := l.bookings[x], l.bookings[y]
		if c := cmp.Compare(bx.priority, by.priority); c != 0 {
			return c
		}
		if c := cmp.Compare(bx.vtime, by.vtime); c != 0 {
			return c
		}
		return cmp.Compare(bx.seq, by.seq)
	})
	for i, k := range keys {
		o := l.bookings[k]
		o.at = slots[i]
		l.bookings[k] = o
	}
}

// expireLocked drops bookings more than ClaimGrace overdue.
func (l *Limiter) expireLocked(now time.Time) {
	for k, b := range l.bookings {
		if now.Sub(b.at) > ClaimGrace {
			delete(l.bookings, k)
		}
	}
}

// admitLocked takes the token that nextLocked said is free at now.
func (l *Limiter) admitLocked(now time.Time) {
	if l.tat.Before(now) {
		l.tat = now
	}
	l.tat = l.tat.Add(l.interval)
}

// nextLocked returns how long until a token is free (0: now).
func (l *Limiter) nextLocked(now time.Time) time.Duration {
	if now.Before(l.pausedUntil) {
		return l.pausedUntil.Sub(now)
	}
	if allowAt := l.tat.Add(-l.tau()); now.Before(allowAt) {
		return allowAt.Sub(now)
	}
	return 0
}
