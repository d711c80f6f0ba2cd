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
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Fault names recorded in Request.Fault.
const (
	FaultLatency   = "latency"
	FaultError     = "error"
	FaultReset     = "reset"
	FaultOutage    = "outage"
	FaultBurst429  = "burst429"
	FaultRateLimit = "ratelimit"
	FaultHostile   = "hostile"
)

// hugeBodySize is the size of the body streamed by HostileHugeBody.
const hugeBodySize = 64 << 20

// defaultErrorCodes are the statuses of injected errors when
// Faults.ErrorCodes is empty.
var defaultErrorCodes = []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}

// Faults describes the failures injected on a route. Latency applies first
// and the request is then still answered (or faulted); a client that gives
// up during the latency does not stop the request from being processed.
type Faults struct {
	// Latency delays the answer, in real time.
	Latency time.Duration
	// ErrorRate is the fraction of requests answered with a random one of
	// ErrorCodes, without being processed.
	ErrorRate float64
	// ErrorCodes are the injected statuses; 500, 502 and 503 when empty.
	ErrorCodes []int
	// ResetRate is the fraction of requests whose connection is closed
	// without an answer, without being processed.
	ResetRate float64
}

// isZero reports whether f injects nothing.
func (f Faults) isZero() bool {
	return f.Latency == 0 && f.ErrorRate == 0 && f.ResetRate == 0
}

// SetFaults sets the faults of route ("" = every route without its own
// faults). A zero Faults removes them.
func (s *Server) SetFaults(route string, f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.isZero() {
		delete(s.faults, route)
		return
	}
	f.ErrorCodes = slices.Clone(f.ErrorCodes)
	s.faults[route] = f
}

// ClearFaults removes every injected failure: per-route faults, hostile
// modes, an outage in progress and pending Burst429 answers.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string]Faults{}
	s.hostile = map[string]HostileMode{}
	s.outageUntil = map[string]time.Time{}
	s.bursts = map[string]*burst{}
	s.resetsLeft = 0
}

// OutageFor makes every API request answer 503, without Retry-After, until
// the server's clock reaches now+d.
func (s *Server) OutageFor(d time.Duration) { s.OutageOn("", d) }

// OutageOn makes the requests of one route ("" = every route) answer 503,
// without Retry-After, until the server's clock reaches now+d.
func (s *Server) OutageOn(route string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outageUntil[route] = s.now().Add(d)
}

// ResetNext closes the connection of the next n API requests without an
// answer and without processing them, whatever the fault rates say: a reset
// that a test can count on.
func (s *Server) ResetNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetsLeft = n
}

// burst is a pending run of 429 answers.
type burst struct {
	left       int
	retryAfter time.Duration
}

// Burst429 makes the next n API requests answer 429 with a Retry-After of
// retryAfter rounded up to whole seconds (0 is sent as "0"). A negative
// retryAfter sends no Retry-After header at all.
func (s *Server) Burst429(n int, retryAfter time.Duration) { s.Burst429On("", n, retryAfter) }

// Burst429On is Burst429 for the requests of one route ("" = every route).
// A route's own burst is used before the burst of every route.
func (s *Server) Burst429On(route string, n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bursts[route] = &burst{left: n, retryAfter: retryAfter}
}

// outageGate answers 503 during an outage of the request's route or of
// every route.
func (s *Server) outageGate(c *call) (reply, bool) {
	s.mu.Lock()
	now := s.now()
	down := now.Before(s.outageUntil[c.rec.Route]) || now.Before(s.outageUntil[""])
	s.mu.Unlock()
	if !down {
		return reply{}, false
	}
	c.rec.Fault = FaultOutage
	return failure(http.StatusServiceUnavailable, "Service Unavailable"), true
}

// burstGate answers 429 while Burst429 answers are pending for the
// request's route or for every route.
func (s *Server) burstGate(c *call) (reply, bool) {
	s.mu.Lock()
	b := s.bursts[c.rec.Route]
	if b == nil || b.left <= 0 {
		b = s.bursts[""]
	}
	if b == nil || b.left <= 0 {
		s.mu.Unlock()
		return reply{}, false
	}
	b.left--
	retry := b.retryAfter
	s.mu.Unlock()
	if retry >= 0 {
		c.header.Set("Retry-After", strconv.Itoa(ceilSeconds(retry)))
	}
	c.rec.Fault = FaultBurst429
	return tooManyAttempts(), true
}

// faultsFor returns the faults of route, else those of every route; s.mu
// must be held.
func (s *Server) faultsFor(route string) Faults {
	if f, ok := s.faults[route]; ok {
		return f
	}
	return s.faults[""]
}

// faultGate applies latency, then maybe resets the connection or answers
// an injected error.
func (s *Server) faultGate(c *call) (reply, bool) {
	s.mu.Lock()
	f := s.faultsFor(c.rec.Route)
	s.mu.Unlock()
	if f.Latency > 0 {
		c.rec.Fault = FaultLatency
		s.sleep(f.Latency)
	}
	s.mu.Lock()
	reset := s.resetsLeft > 0 || (f.ResetRate > 0 && s.rng.Float64() < f.ResetRate)
	if s.resetsLeft > 0 {
		s.resetsLeft--
	}
	code := 0
	if !reset && f.ErrorRate > 0 && s.rng.Float64() < f.ErrorRate {
		codes := f.ErrorCodes
		if len(codes) == 0 {
			codes = defaultErrorCodes
		}
		code = codes[s.rng.IntN(len(codes))]
	}
	s.mu.Unlock()
	switch {
	case reset:
		c.rec.Fault = FaultReset
		return resetConn(c.w), true
	case code != 0:
		c.rec.Fault = FaultError
		return injectedError(code), true
	}
	return reply{}, false
}

// sleep waits d in real time, or until the server closes.
func (s *Server) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.done:
	}
}

// injectedError returns the answer of an injected error status. An
// injected 422 stands for a check only the API can make (an integration ID
// that does not exist in the environment), with Laravel's field errors.
func injectedError(code int) reply {
	switch code {
	case http.StatusInternalServerError:
		return failure(code, "Internal server error.")
	case http.StatusUnprocessableEntity:
		return reply{status: code, body: envelope{Message: "The given data was invalid.",
			Errors: map[string][]string{InjectedFieldError: {InjectedFieldMessage}}}}
	}
	return failure(code, http.StatusText(code))
}

// The field error of an injected 422.
const (
	InjectedFieldError   = "integration.id"
	InjectedFieldMessage = "The selected integration.id is invalid."
)

// resetConn closes the connection without an answer, with SO_LINGER 0 so
// the client sees a reset. Where the connection cannot be hijacked (HTTP/2)
// it answers 500 instead.
func resetConn(w http.ResponseWriter) reply {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return injectedError(http.StatusInternalServerError)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
	return reply{hijacked: true}
}

// hostileKind enumerates the hostile answers.
type hostileKind int

const (
	hostileNone hostileKind = iota
	hostileMalformedJSON
	hostileHugeBody
	hostileWrongContentType
	hostileSuccessFalse
	hostileMissingID
	hostileRedirect
)

// HostileMode is a deliberately broken answer. Except for redirects, the
// request is processed first (state changes happen) and only the answer is
// replaced, the worst case for a client that must not assume failure.
type HostileMode struct {
	kind     hostileKind
	location string
}

// Hostile modes; see HostileRedirect for redirects.
var (
	// HostileNone answers normally.
	HostileNone = HostileMode{}
	// HostileMalformedJSON answers 200 with truncated JSON.
	HostileMalformedJSON = HostileMode{kind: hostileMalformedJSON}
	// HostileHugeBody answers 200 with a 64 MiB JSON body, streamed.
	HostileHugeBody = HostileMode{kind: hostileHugeBody}
	// HostileWrongContentType answers 200 with a text/html page.
	HostileWrongContentType = HostileMode{kind: hostileWrongContentType}
	// HostileSuccessFalse answers 200 {"success":false}.
	HostileSuccessFalse = HostileMode{kind: hostileSuccessFalse}
	// HostileMissingID answers normally but without data.id (in lists,
	// without the id of each item).
	HostileMissingID = HostileMode{kind: hostileMissingID}
)

// HostileRedirect answers 302 to location without processing the request.
func HostileRedirect(location string) HostileMode {
	return HostileMode{kind: hostileRedirect, location: location}
}

// String names the mode.
func (m HostileMode) String() string {
	names := []string{"none", "malformed_json", "huge_body", "wrong_content_type", "success_false", "missing_id", "redirect"}
	return names[m.kind]
}

// SetHostile sets the hostile mode of route ("" = every route without its
// own mode). HostileNone removes it.
func (s *Server) SetHostile(route string, mode HostileMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mode.kind == hostileNone {
		delete(s.hostile, route)
		return
	}
	s.hostile[route] = mode
}

// runHostile runs the handler and applies the route's hostile mode.
func (s *Server) runHostile(c *call, h handlerFunc) reply {
	s.mu.Lock()
	m, ok := s.hostile[c.rec.Route]
	if !ok {
		m = s.hostile[""]
	}
	s.mu.Unlock()
	if m.kind == hostileRedirect {
		c.rec.Fault = FaultHostile
		c.header.Set("Location", m.location)
		return rawReply(http.StatusFound, "text/html; charset=utf-8", "<html><body>Found</body></html>")
	}
	rep := h(s, c)
	if m.kind == hostileNone {
		return rep
	}
	c.rec.Fault = FaultHostile
	return m.transform(rep)
}

// transform replaces rep following m.
func (m HostileMode) transform(rep reply) reply {
	switch m.kind {
	case hostileMalformedJSON:
		return rawReply(http.StatusOK, jsonContentType, `{"success":true,"data":{"id":"`)
	case hostileHugeBody:
		return reply{status: http.StatusOK, contentType: jsonContentType, stream: writeHugeBody}
	case hostileWrongContentType:
		return rawReply(http.StatusOK, "text/html; charset=utf-8", "<!DOCTYPE html><html><body>Sign in</body></html>")
	case hostileSuccessFalse:
		return rawReply(http.StatusOK, jsonContentType, `{"success":false}`)
	case hostileMissingID:
		return withoutIDs(rep)
	case hostileNone, hostileRedirect:
		// Nothing to change: a redirect is answered before the handler runs.
	}
	return rep
}

// rawReply returns an answer with a fixed body.
func rawReply(status int, contentType, body string) reply {
	return reply{status: status, contentType: contentType, stream: func(w io.Writer) {
		_, _ = io.WriteString(w, body)
	}}
}

// writeHugeBody streams a valid JSON body of about hugeBodySize bytes,
// stopping at the first write error.
func writeHugeBody(w io.Writer) {
	if _, err := io.WriteString(w, `{"success":true,"message":"Agent action updated successfully","data":{"id":"`+newUUID()+`","name":"`); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for written := 0; written < hugeBodySize; written += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
	_, _ = io.WriteString(w, `"}}`)
}

// withoutIDs removes "id" from a 200 answer's data object or items.
func withoutIDs(rep reply) reply {
	if rep.status != http.StatusOK || rep.stream != nil {
		return rep
	}
	raw, err := json.Marshal(rep.body)
	if err != nil {
		return rep
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return rep
	}
	switch data := body["data"].(type) {
	case map[string]any:
		delete(data, "id")
	case []any:
		for _, item := range data {
			if obj, ok := item.(map[string]any); ok {
				delete(obj, "id")
			}
		}
	}
	rep.body = body
	return rep
}

// tooManyAttempts returns the 429 answer, Laravel's throttle message.
func tooManyAttempts() reply {
	return failure(http.StatusTooManyRequests, "Too Many Attempts.")
}
