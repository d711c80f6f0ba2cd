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
	"strconv"
	"time"
)

// rateWindow is the length of the sliding rate-limit window.
const rateWindow = time.Minute

// rateLimiter is a sliding-log limiter keyed by bearer token: a request is
// allowed when fewer than rpm requests of the same token were allowed in the
// last minute. Refused requests are not recorded, so Retry-After is exact.
type rateLimiter struct {
	rpm  int
	hits map[string][]time.Time
}

// take records a request of key at now if allowed. It returns how many
// requests remain in the window and, when refused, how long until a slot
// frees.
func (l *rateLimiter) take(key string, now time.Time) (int, time.Duration, bool) {
	hits := l.hits[key]
	expired := 0
	for expired < len(hits) && now.Sub(hits[expired]) >= rateWindow {
		expired++
	}
	hits = hits[expired:]
	if len(hits) >= l.rpm {
		l.hits[key] = hits
		return 0, hits[0].Add(rateWindow).Sub(now), false
	}
	hits = append(hits, now)
	l.hits[key] = hits
	return l.rpm - len(hits), 0, true
}

// ceilSeconds rounds d up to whole seconds, 0 for d ≤ 0.
func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// SetRateLimit limits every token to rpm API requests per sliding minute;
// 0 turns the limit off and forgets past requests.
func (s *Server) SetRateLimit(rpm int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limiter.rpm = rpm
	if rpm <= 0 {
		s.limiter.hits = map[string][]time.Time{}
	}
}

// rateGate counts the request against its token (a missing token shares
// the "" key) and answers 429 with Retry-After past the limit. When a limit
// is set, every answer carries X-RateLimit-Limit and X-RateLimit-Remaining.
func (s *Server) rateGate(c *call) (reply, bool) {
	s.mu.Lock()
	rpm := s.limiter.rpm
	if rpm <= 0 {
		s.mu.Unlock()
		return reply{}, false
	}
	remaining, wait, ok := s.limiter.take(c.token, s.now())
	s.mu.Unlock()
	c.header.Set("X-RateLimit-Limit", strconv.Itoa(rpm))
	c.header.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	if ok {
		return reply{}, false
	}
	c.header.Set("Retry-After", strconv.Itoa(max(1, ceilSeconds(wait))))
	c.rec.Fault = FaultRateLimit
	return tooManyAttempts(), true
}
