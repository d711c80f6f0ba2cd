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
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced Clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// drain takes every token of the burst, so that the next request must book.
func drain(t *testing.T, l *Limiter) {
	t.Helper()
	for i := 0; l.Reserve("", "", PriorityNormal) == 0; i++ {
		if i > 100 {
			t.Fatal("the limiter never ran out of tokens")
		}
	}
}

// busiestWindow returns the largest number of times in one closed window
// of length w.
func busiestWindow(times []time.Time, w time.Duration) int {
	times = slices.Clone(times)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	worst := 0
	for i, start := range times {
		n := 0
		for _, at := range times[i:] {
			if at.After(start.Add(w)) {
				break
			}
			n++
		}
		worst = max(worst, n)
	}
	return worst
}

func TestLimiter_BurstChoiceKeepsEveryWindowWithinRate(t *testing.T) {
	for _, rpm := range []int{1, 2, 19, 20, 60, 100, 1000, 100000} {
		l := NewLimiter(rpm, newFakeClock())
		if l.burst < 1 || l.burst > 10 {
			t.Errorf("rpm %d: burst %d", rpm, l.burst)
		}
		// n admissions span at least (n-burst)*interval, so a closed window
		// of 60s+windowSlack holds at most burst + floor(60.5s/interval).
		if got := l.burst + int((time.Minute+windowSlack)/l.interval); got > rpm {
			t.Errorf("rpm %d: up to %d admissions per minute", rpm, got)
		}
		if got := l.burst + int(time.Minute/l.interval); got < rpm*9/10 {
			t.Errorf("rpm %d: only %d admissions per minute", rpm, got)
		}
	}
}

// A backlog of 300 callers at 100 a minute: each books a slot and comes
// back when it is due, some of them late (up to ClaimGrace, as a busy
// workqueue would). No 60 s window holds more than 100 requests, the
// rollout keeps the rate, and no caller is ever made to wait in a call.
func TestLimiter_BacklogKeepsTheWindowAndTheRate(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(100, clk)
	t0 := clk.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	due := map[string]time.Time{}
	var sent []time.Time
	for i := range 300 {
		key := fmt.Sprintf("action-%d", i)
		if d := l.Reserve(key, "", PriorityHigh); d == 0 {
			sent = append(sent, clk.Now())
		} else {
			due[key] = clk.Now().Add(d)
		}
	}
	if len(sent) != l.burst {
		t.Fatalf("%d requests left at once, want the burst %d", len(sent), l.burst)
	}
	for len(due) > 0 {
		// The next caller whose slot is due comes back, up to ClaimGrace late.
		next := ""
		for k, at := range due {
			if next == "" || at.Before(due[next]) {
				next = k
			}
		}
		late := time.Duration(rng.Int64N(int64(ClaimGrace)))
		if at := due[next].Add(late); at.After(clk.Now()) {
			clk.Advance(at.Sub(clk.Now()))
		}
		if d := l.Reserve(next, "", PriorityHigh); d == 0 {
			sent = append(sent, clk.Now())
			delete(due, next)
		} else {
			due[next] = clk.Now().Add(d)
		}
	}
	if worst := busiestWindow(sent, time.Minute); worst > 100 {
		t.Errorf("%d requests in one 60s window, want at most 100", worst)
	}
	bound := 300 * time.Minute / 100 // the steady rate
	took := sent[len(sent)-1].Sub(t0)
	if took > bound*102/100 {
		t.Errorf("300 requests took %v, want within 1.02x of %v", took, bound)
	}
	t.Logf("burst %d, interval %v, 300 requests in %v (bound %v)", l.burst, l.interval, took, bound)
}

// Requests of higher priority take the earliest slots booked at a lower
// priority; the displaced bookings keep their own order.
func TestLimiter_PriorityTakesEarlierSlots(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(60, clk)
	drain(t, l)
	low1 := l.Reserve("drift-1", "", PriorityLow)
	low2 := l.Reserve("drift-2", "", PriorityLow)
	retry := l.Reserve("retry", "", PriorityNormal)
	change := l.Reserve("change", "", PriorityHigh)
	if low1 <= 0 || low2 <= low1 || retry != low1 || change != low1 {
		t.Fatalf("told: drift-1 %v, drift-2 %v, retry %v, change %v; want each newcomer of higher priority the first slot", low1, low2, retry, change)
	}
	got := map[string]time.Duration{}
	for _, k := range []string{"drift-1", "drift-2", "retry", "change"} {
		l.mu.Lock()
		got[k] = l.bookings[k].at.Sub(clk.Now())
		l.mu.Unlock()
	}
	// Slots, earliest first, were booked drift-1, drift-2, retry, change;
	// they are now served change, retry, drift-1, drift-2.
	order := []string{"change", "retry", "drift-1", "drift-2"}
	for i := 1; i < len(order); i++ {
		if got[order[i-1]] >= got[order[i]] {
			t.Errorf("%s is due at %v, not before %s at %v", order[i-1], got[order[i-1]], order[i], got[order[i]])
		}
	}
	// A caller that comes back early is told how long is left, and keeps
	// its slot.
	clk.Advance(got["retry"] / 2)
	if d := l.Reserve("retry", "", PriorityNormal); d != got["retry"]-got["retry"]/2 {
		t.Errorf("early return: %v left, want %v", d, got["retry"]-got["retry"]/2)
	}
	// A booking raised to a higher priority moves up.
	if d := l.Reserve("drift-2", "", PriorityHigh); d >= got["drift-1"]-got["retry"]/2 {
		t.Errorf("drift-2 raised to high is due in %v, not before drift-1", d)
	}
}

// A slot not claimed within ClaimGrace is dropped and never reused, so a
// caller that comes back late books again behind the others.
func TestLimiter_OverdueBookingIsDropped(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(60, clk)
	drain(t, l)
	d1 := l.Reserve("a", "", PriorityHigh)
	d2 := l.Reserve("b", "", PriorityHigh)
	clk.Advance(d1 + ClaimGrace + time.Millisecond)
	if l.Booked() != 1 {
		t.Fatalf("%d bookings left, want only b's", l.Booked())
	}
	d := l.Reserve("a", "", PriorityHigh)
	if d <= d2-d1 {
		t.Errorf("a came back late and is due in %v, before b's slot (in %v)", d, d2-d1-ClaimGrace)
	}
	if l.Reserve("", "", PriorityHigh) == 0 {
		t.Error("a request without a turn took a slot that belongs to a booking")
	}
}

func TestLimiter_PauseRefusesEveryoneAndDropsBookings(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(6000, clk)
	drain(t, l)
	if l.Reserve("a", "", PriorityHigh) == 0 {
		t.Fatal("no booking after drain")
	}
	l.PauseFor(time.Hour)
	l.PauseFor(time.Minute) // never shortens
	if l.Booked() != 0 {
		t.Errorf("%d bookings survive the pause", l.Booked())
	}
	for _, key := range []string{"a", "b", ""} {
		if d := l.Reserve(key, "", PriorityHigh); d != time.Hour {
			t.Errorf("Reserve(%q) while paused = %v, want the hour left", key, d)
		}
	}
	if l.Booked() != 0 {
		t.Error("a booking was made during the pause")
	}
	clk.Advance(time.Hour)
	if l.Paused() != 0 || l.Reserve("a", "", PriorityHigh) != 0 {
		t.Fatal("the first request after the pause did not leave at once")
	}
	if l.Reserve("b", "", PriorityHigh) == 0 {
		t.Error("the bucket restarted with more than one token")
	}
}

func TestLimiter_SetRate(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(60, clk)
	drain(t, l)
	if l.Reserve("a", "", PriorityNormal) == 0 {
		t.Fatal("no booking after drain")
	}
	// The tokens owed at 60/min are rescheduled at 6000/min, which frees
	// one at once; the booking is dropped and the caller reserves again.
	l.SetRate(6000)
	if l.Rate() != 6000 || l.Booked() != 0 {
		t.Fatalf("after SetRate(6000): rate %d, %d bookings", l.Rate(), l.Booked())
	}
	if d := l.Reserve("a", "", PriorityNormal); d != 0 {
		t.Errorf("after SetRate(6000) the request waits %v", d)
	}
	// Lowering the rate stretches the owed tokens.
	l.SetRate(60)
	if d := l.Reserve("b", "", PriorityNormal); d < time.Second {
		t.Errorf("after SetRate(60) the next slot is in %v", d)
	}
	l.SetRate(0)
	if l.burst != 1 || l.interval <= time.Minute {
		t.Errorf("SetRate(0): burst %d interval %v, want the 1/min limit", l.burst, l.interval)
	}
}

func TestLimiter_NilAndPriorityNames(t *testing.T) {
	var l *Limiter
	if l.Reserve("a", "", PriorityLow) != 0 || l.Paused() != 0 || l.Booked() != 0 || l.Rate() != 0 {
		t.Error("a nil Limiter limits")
	}
	l.PauseFor(time.Second)
	l.SetRate(1)
	if PriorityHigh.String() != "high" || PriorityNormal.String() != "normal" || PriorityLow.String() != "low" || Priority(9).String() != "low" {
		t.Error("Priority.String")
	}
}

// Two groups (tenants of one shared token): a group that books one slot
// behind another group's backlog gets the next slot but one, not the slot
// after the whole backlog; and no booking of the backlog moves earlier.
func TestLimiter_GroupsGoRoundTheSharedBudget(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(60, clk)
	drain(t, l)
	told := map[string]time.Duration{}
	for i := range 10 {
		key := fmt.Sprintf("a-%d", i)
		told[key] = l.Reserve(key, "team-a", PriorityHigh)
	}
	b := l.Reserve("b", "team-b", PriorityHigh)
	if b > told["a-1"] {
		t.Errorf("team-b's one booking is due in %v, after team-a's second (%v): it queues behind the backlog", b, told["a-1"])
	}
	for key, d := range told {
		l.mu.Lock()
		now := l.bookings[key].at.Sub(clk.Now())
		l.mu.Unlock()
		if now < d {
			t.Errorf("%s was told %v and is now due in %v: a booking moved earlier", key, d, now)
		}
	}
	// Within one group, first come first served.
	if told["a-0"] >= told["a-1"] {
		t.Errorf("a-0 due in %v, not before a-1 in %v", told["a-0"], told["a-1"])
	}
}

// A slow server cannot hold more than MaxSlowInFlight of the callers'
// workers, and a fast one is never held back.
func TestLimiter_SlowCallsHoldNewOnes(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(6000, clk)
	calls := make([]uint64, 0, MaxSlowInFlight+5)
	for range MaxSlowInFlight + 5 {
		calls = append(calls, l.Start())
	}
	if l.Busy() {
		t.Fatal("fast calls under way make the budget busy")
	}
	clk.Advance(SlowCall + time.Millisecond)
	if !l.Busy() {
		t.Fatalf("%d calls under way for over %v, and the budget is not busy", len(calls), SlowCall)
	}
	for _, c := range calls[:len(calls)-MaxSlowInFlight+1] {
		l.Done(c)
	}
	if l.Busy() {
		t.Errorf("%d slow calls left (under %d), and the budget is still busy", MaxSlowInFlight-1, MaxSlowInFlight)
	}
}
