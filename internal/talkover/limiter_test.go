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
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced Clock.
//
// A Limiter has a single dispatcher that always waits on the timer it armed
// last, earlier ones being abandoned. AdvanceToNext therefore moves to the
// deadline of the most recent timer, so that an abandoned timer can never
// make fake time jump past the next token.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	latest *fakeTimer
	added  chan struct{} // signalled whenever a timer is added
}

type fakeTimer struct {
	at    time.Time
	ch    chan time.Time
	fired bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), added: make(chan struct{}, 1)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.latest = &fakeTimer{at: c.now.Add(d), ch: ch}
	c.timers = append(c.timers, c.latest)
	select {
	case c.added <- struct{}{}:
	default:
	}
	return ch
}

// Advance moves the clock forward by d and fires due timers.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fireLocked()
}

// AdvanceToNext moves the clock to the most recently armed timer and fires
// every due timer. It reports false if that timer has already fired.
func (c *fakeClock) AdvanceToNext() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.latest == nil || c.latest.fired {
		return false
	}
	if c.latest.at.After(c.now) {
		c.now = c.latest.at
	}
	c.fireLocked()
	return true
}

func (c *fakeClock) fireLocked() {
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.fired = true
		t.ch <- c.now
	}
	c.timers = kept
}

// safetyTimeout bounds real-time waits so that a bug fails instead of hanging.
// It is never used to assert anything about timing.
const safetyTimeout = 10 * time.Second

// eventually polls cond until it holds or safetyTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(safetyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// drive advances the fake clock timer by timer until done is closed.
func drive(t *testing.T, clk *fakeClock, done <-chan struct{}) {
	t.Helper()
	deadline := time.After(safetyTimeout)
	for {
		select {
		case <-done:
			return
		default:
		}
		if clk.AdvanceToNext() {
			continue
		}
		select {
		case <-done:
			return
		case <-clk.added:
		case <-deadline:
			t.Fatal("limiter made no progress")
		}
	}
}

// drain takes every burst token so that the next Wait queues.
func drain(t *testing.T, l *Limiter) {
	t.Helper()
	for range l.burst {
		if d, err := l.Wait(context.Background()); err != nil || d != 0 {
			t.Fatalf("burst Wait = %v, %v", d, err)
		}
	}
}

// result of a Wait in a goroutine.
type waitResult struct {
	name string
	g    grant
	err  error
}

// startWaiters starts one goroutine per ctx and returns their results
// channel and a channel closed when all have returned.
func startWaiters(l *Limiter, ctxs map[string]context.Context) (<-chan waitResult, <-chan struct{}) {
	results := make(chan waitResult, len(ctxs))
	var wg sync.WaitGroup
	for name, ctx := range ctxs {
		wg.Go(func() {
			g, err := l.wait(ctx)
			results <- waitResult{name: name, g: g, err: err}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	return results, done
}

func collect(results <-chan waitResult) map[string]waitResult {
	out := map[string]waitResult{}
	for {
		select {
		case r := <-results:
			out[r.name] = r
		default:
			return out
		}
	}
}

func TestLimiter_BurstChoiceKeepsEveryWindowWithinRate(t *testing.T) {
	for _, rpm := range []int{1, 2, 19, 20, 60, 100, 1000, 100000} {
		l := NewLimiter(rpm, newFakeClock())
		if l.burst < 1 || l.burst > 10 {
			t.Errorf("rpm %d: burst %d", rpm, l.burst)
		}
		// n admissions span at least (n-burst)*interval, so a closed 60s
		// window holds at most burst + floor(60s/interval) of them.
		if got := l.burst + int(time.Minute/l.interval); got > rpm {
			t.Errorf("rpm %d: up to %d admissions per minute", rpm, got)
		}
		if got := l.burst + int(time.Minute/l.interval); got < rpm*9/10 {
			t.Errorf("rpm %d: only %d admissions per minute", rpm, got)
		}
	}
}

func TestLimiter_BurstOf300At100PerMinute(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(100, clk)
	t0 := clk.Now()
	const n = 300
	var mu sync.Mutex
	var times []time.Time
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			g, err := l.wait(context.Background())
			if err != nil {
				t.Errorf("Wait: %v", err)
				return
			}
			mu.Lock()
			times = append(times, g.at)
			mu.Unlock()
		})
	}
	eventually(t, "all waiters to queue", func() bool { return l.QueueLen() == n-l.burst })
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	drive(t, clk, done)

	if len(times) != n {
		t.Fatalf("%d of %d admitted", len(times), n)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	immediate := 0
	for _, at := range times {
		if at.Equal(t0) {
			immediate++
		}
	}
	if immediate != l.burst {
		t.Errorf("%d admitted at once, want the burst %d", immediate, l.burst)
	}
	worst := 0
	for i, start := range times {
		end := start.Add(time.Minute) // closed window [start, start+60s]
		j, _ := slices.BinarySearchFunc(times[i:], end, func(a, b time.Time) int {
			if a.After(b) {
				return 1
			}
			return -1
		})
		worst = max(worst, j)
	}
	if worst > 100 {
		t.Errorf("%d admissions in one 60s window, want at most 100", worst)
	}
	if worst < 90 {
		t.Errorf("only %d admissions in the busiest 60s window; limiter too slow", worst)
	}
	// Steady state: one token per interval after the initial burst.
	if last, want := times[n-1].Sub(t0), time.Duration(n-l.burst)*l.interval; last != want {
		t.Errorf("300 requests took %v of fake time, want %v", last, want)
	}
	t.Logf("burst %d, interval %v, busiest window %d, last admission at +%v", l.burst, l.interval, worst, times[n-1].Sub(t0))
	eventually(t, "dispatcher to exit", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return !l.running
	})
}

func TestLimiter_ServesByPriorityThenFIFO(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(60, clk)
	drain(t, l)

	bg := context.Background()
	// Queue in an order that differs from the expected service order. Each
	// waiter is queued before the next starts, so FIFO order is defined.
	order := []struct {
		name string
		p    Priority
	}{
		{"low1", PriorityLow}, {"normal1", PriorityNormal}, {"low2", PriorityLow},
		{"high1", PriorityHigh}, {"normal2", PriorityNormal}, {"high2", PriorityHigh},
	}
	results := make(chan waitResult, len(order))
	var wg sync.WaitGroup
	for i, w := range order {
		ctx := WithPriority(bg, w.p)
		wg.Go(func() {
			g, err := l.wait(ctx)
			results <- waitResult{name: w.name, g: g, err: err}
		})
		eventually(t, w.name+" to queue", func() bool { return l.QueueLen() == i+1 })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	drive(t, clk, done)

	got := collect(results)
	names := make([]string, 0, len(got))
	for name := range got {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int { return int(got[a].g.seq) - int(got[b].g.seq) })
	want := []string{"high1", "high2", "normal1", "normal2", "low1", "low2"}
	if !slices.Equal(names, want) {
		t.Errorf("service order %v, want %v", names, want)
	}
	for i := 1; i < len(names); i++ {
		if got[names[i]].g.at.Before(got[names[i-1]].g.at) {
			t.Errorf("%s admitted before %s", names[i], names[i-1])
		}
	}
}

func TestLimiter_HighPriorityOvertakesQueuedLow(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(60, clk)
	drain(t, l)
	lowCtx := WithPriority(context.Background(), PriorityLow)
	lows := map[string]context.Context{"low-a": lowCtx, "low-b": lowCtx, "low-c": lowCtx}
	lowResults, lowDone := startWaiters(l, lows)
	eventually(t, "lows to queue", func() bool { return l.QueueLen() == 3 })

	// One token later, a high-priority request arrives; it must get the
	// next token although three low ones were queued first.
	clk.Advance(l.interval / 2)
	highResults, highDone := startWaiters(l, map[string]context.Context{"high": WithPriority(context.Background(), PriorityHigh)})
	eventually(t, "high to queue", func() bool { return l.QueueLen() == 4 })
	drive(t, clk, highDone)
	high := collect(highResults)["high"]
	drive(t, clk, lowDone)
	for name, r := range collect(lowResults) {
		if r.g.seq < high.g.seq {
			t.Errorf("%s (seq %d) served before high (seq %d)", name, r.g.seq, high.g.seq)
		}
	}
}

func TestLimiter_PauseForBlocksEveryone(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(600, clk) // plenty of tokens: only the pause blocks
	t0 := clk.Now()
	l.PauseFor(30 * time.Second)
	l.PauseFor(5 * time.Second) // never shortens
	if d := l.nextLocked(t0); d != 30*time.Second {
		t.Fatalf("next token in %v, want 30s", d)
	}
	bg := context.Background()
	results, done := startWaiters(l, map[string]context.Context{
		"high": WithPriority(bg, PriorityHigh), "normal": bg, "low": WithPriority(bg, PriorityLow),
	})
	eventually(t, "waiters to queue", func() bool { return l.QueueLen() == 3 })
	clk.Advance(29 * time.Second)
	if got := l.QueueLen(); got != 3 {
		t.Fatalf("%d waiters left during the pause, want 3", got)
	}
	drive(t, clk, done)
	got := collect(results)
	for name, r := range got {
		if r.err != nil || r.g.at.Before(t0.Add(30*time.Second)) {
			t.Errorf("%s admitted at %v (err %v), before the pause ended", name, r.g.at.Sub(t0), r.err)
		}
	}
	if got["high"].g.seq >= got["normal"].g.seq || got["normal"].g.seq >= got["low"].g.seq {
		t.Errorf("priority not respected after the pause: %+v", got)
	}
	// After a pause the bucket restarts with one token, not a full burst.
	if got["normal"].g.at.Equal(got["high"].g.at) {
		t.Error("a burst was released at the end of the pause")
	}
	// A later, longer pause extends it.
	l.PauseFor(time.Hour)
	if d := l.nextLocked(clk.Now()); d != time.Hour {
		t.Errorf("next token in %v, want 1h", d)
	}
}

func TestLimiter_CancelRemovesWaiter(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(60, clk)
	drain(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	first, firstDone := startWaiters(l, map[string]context.Context{"cancelled": ctx})
	eventually(t, "first waiter to queue", func() bool { return l.QueueLen() == 1 })
	second, secondDone := startWaiters(l, map[string]context.Context{"second": context.Background()})
	eventually(t, "second waiter to queue", func() bool { return l.QueueLen() == 2 })

	cancel()
	<-firstDone
	if r := collect(first)["cancelled"]; !errors.Is(r.err, context.Canceled) {
		t.Errorf("cancelled Wait returned %v", r.err)
	}
	if got := l.QueueLen(); got != 1 {
		t.Errorf("QueueLen after cancel = %d, want 1", got)
	}
	drive(t, clk, secondDone)
	if r := collect(second)["second"]; r.err != nil || r.g.waited <= 0 || r.g.waited > l.interval {
		t.Errorf("second waiter: %+v", r)
	}
	if l.QueueLen() != 0 {
		t.Error("queue not empty")
	}
}

func TestLimiter_CancelWhilePausedLetsDispatcherExit(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(60, clk)
	l.PauseFor(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	_, done := startWaiters(l, map[string]context.Context{"w": ctx})
	eventually(t, "waiter to queue", func() bool { return l.QueueLen() == 1 })
	cancel()
	<-done
	eventually(t, "dispatcher to exit", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return !l.running
	})
}

func TestLimiter_WaitWithDoneContext(t *testing.T) {
	l := NewLimiter(60, newFakeClock())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v", err)
	}
	if l.QueueLen() != 0 {
		t.Error("a done context must not queue")
	}
	var nilLimiter *Limiter
	if d, err := nilLimiter.Wait(context.Background()); d != 0 || err != nil {
		t.Errorf("nil limiter Wait = %v, %v", d, err)
	}
	nilLimiter.PauseFor(time.Second)
	if nilLimiter.QueueLen() != 0 {
		t.Error("nil limiter QueueLen")
	}
}

func TestLimiter_SetRate(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(60, clk)
	drain(t, l)
	results, done := startWaiters(l, map[string]context.Context{"w": context.Background()})
	eventually(t, "waiter to queue", func() bool { return l.QueueLen() == 1 })
	// The tokens owed at 60/min are rescheduled at 6000/min, which frees
	// one at once: the waiter is served without the clock moving.
	l.SetRate(6000)
	select {
	case <-done:
	case <-time.After(safetyTimeout):
		t.Fatal("waiter not served after SetRate")
	}
	if r := collect(results)["w"]; r.err != nil || r.g.waited != 0 {
		t.Errorf("after SetRate(6000): %+v", r)
	}
	// Lowering the rate stretches the owed tokens (about 4 at 6000/min,
	// so about 4s at 60/min, minus the burst tolerance of 2 tokens).
	l.SetRate(60)
	if d := l.nextLocked(clk.Now()); d < time.Second {
		t.Errorf("after SetRate(60) the next token is in %v", d)
	}
	l.SetRate(0)
	if l.burst != 1 || l.interval <= time.Minute {
		t.Errorf("SetRate(0): burst %d interval %v, want the 1/min limit", l.burst, l.interval)
	}
}

func TestPriorityFromContext(t *testing.T) {
	bg := context.Background()
	tests := map[string]struct {
		ctx  context.Context
		want Priority
	}{
		"default":        {bg, PriorityNormal},
		"high":           {WithPriority(bg, PriorityHigh), PriorityHigh},
		"low":            {WithPriority(bg, PriorityLow), PriorityLow},
		"above range":    {WithPriority(bg, Priority(42)), PriorityLow},
		"below range":    {WithPriority(bg, Priority(-3)), PriorityHigh},
		"innermost wins": {WithPriority(WithPriority(bg, PriorityLow), PriorityHigh), PriorityHigh},
	}
	for name, tc := range tests {
		if got := PriorityFrom(tc.ctx); got != tc.want {
			t.Errorf("%s: PriorityFrom = %v, want %v", name, got, tc.want)
		}
	}
	if PriorityHigh.String() != "high" || PriorityNormal.String() != "normal" || PriorityLow.String() != "low" {
		t.Error("Priority.String")
	}
}
