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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// maxErrorLen caps the length of every error string in bytes.
	maxErrorLen = 1024
	// maxFieldLen caps each server-supplied string kept in an APIError.
	maxFieldLen = 512
	// maxRetryAfter caps a server-supplied Retry-After so that a bogus
	// header cannot stall the client for hours.
	maxRetryAfter = time.Hour
	// minSecretLen is the shortest secret that is redacted from server text;
	// shorter values would redact ordinary words.
	minSecretLen = 4
)

// ErrInvalidArgument is wrapped by errors caused by invalid input to the
// client (empty IDs, unencodable bodies). Such errors are terminal.
var ErrInvalidArgument = errors.New("invalid argument")

// APIError is a non-2xx answer of the Talkover API.
type APIError struct {
	// Op is the client operation, for example "UpsertAction".
	Op string
	// StatusCode is the HTTP status code.
	StatusCode int
	// Code is the symbolic code (error.code or code) if the body has one.
	Code string
	// Message is the server's message, or the HTTP status text.
	Message string
	// FieldErrors are the per-field validation messages of a 422 answer.
	FieldErrors map[string][]string
	// RetryAfter is the parsed Retry-After header, 0 if absent.
	RetryAfter time.Duration
}

// Error returns a one-line description with sorted field errors, stripped
// of control characters and capped at about 1 KiB.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: HTTP %d", e.Op, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	b.WriteString(": " + e.Message)
	if fe := formatFieldErrors(e.FieldErrors); fe != "" {
		b.WriteString(" (" + fe + ")")
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after " + e.RetryAfter.String() + ")")
	}
	return sanitize(b.String(), maxErrorLen)
}

// formatFieldErrors renders "field: msg; field: msg" with sorted keys.
func formatFieldErrors(m map[string][]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if len(m[k]) == 0 {
			parts = append(parts, k)
			continue
		}
		for _, msg := range m[k] {
			parts = append(parts, k+": "+msg)
		}
	}
	return strings.Join(parts, "; ")
}

// InvalidResponseError is a 2xx answer that cannot be used: wrong content
// type, not JSON, "success": false, missing data or missing data.id. It
// never contains the body. It is retryable.
type InvalidResponseError struct {
	// Op is the client operation.
	Op string
	// StatusCode is the HTTP status code of the answer.
	StatusCode int
	// Reason says what is wrong with the answer.
	Reason string
}

// Error returns a one-line description.
func (e *InvalidResponseError) Error() string {
	return sanitize(fmt.Sprintf("%s: invalid response (HTTP %d): %s", e.Op, e.StatusCode, e.Reason), maxErrorLen)
}

// TransportError is a failure to obtain an HTTP answer: connection errors,
// timeouts, cancelled contexts, truncated bodies.
type TransportError struct {
	// Op is the client operation.
	Op string
	// Err is the underlying error.
	Err error
}

// Error describes the failure without the URL's userinfo, query or fragment.
func (e *TransportError) Error() string {
	return sanitize(e.Op+": "+describeTransport(e.Err), maxErrorLen)
}

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }

// describeTransport formats err, rewriting *url.Error so that its URL keeps
// only scheme, host and path.
func describeTransport(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return fmt.Sprintf("%s %q: %s", ue.Op, stripURL(ue.URL), ue.Err.Error())
	}
	if err == nil {
		return "unknown transport error"
	}
	return err.Error()
}

// stripURL drops userinfo, query and fragment from raw.
func stripURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}

// IsNotFound reports whether err is an HTTP 404 answer.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsUnauthorized reports whether err is an HTTP 401 answer.
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

// IsForbidden reports whether err is an HTTP 403 answer.
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

// IsValidation reports whether err is an HTTP 422 answer.
func IsValidation(err error) bool { return hasStatus(err, http.StatusUnprocessableEntity) }

// IsRateLimited reports whether err is an HTTP 429 answer.
func IsRateLimited(err error) bool { return hasStatus(err, http.StatusTooManyRequests) }

// hasStatus reports whether err wraps an *APIError with the given status.
func hasStatus(err error, status int) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == status
}

// IsTerminal reports whether retrying err cannot help until something
// changes (credentials, spec or configuration): 3xx (a redirect means a
// misconfigured base URL), 4xx except 408 and 429, and ErrInvalidArgument.
func IsTerminal(err error) bool {
	if errors.Is(err, ErrInvalidArgument) {
		return true
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	s := apiErr.StatusCode
	return s >= 300 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests
}

// IsRetryable reports whether err is transient: 408, 429, 5xx, invalid 2xx
// answers, network errors and timeouts. A cancelled context is not.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		s := apiErr.StatusCode
		return s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500
	}
	var invalid *InvalidResponseError
	if errors.As(err, &invalid) {
		return true
	}
	var transport *TransportError
	if errors.As(err, &transport) {
		return true
	}
	var open *CircuitOpenError
	if errors.As(err, &open) {
		return true
	}
	if IsBudget(err) {
		return true
	}
	return isNetworkError(err)
}

// isNetworkError reports whether err is a network-level failure.
func isNetworkError(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE)
}

// RetryAfter returns the server's Retry-After delay carried by err, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
		return apiErr.RetryAfter, true
	}
	var open *CircuitOpenError
	if errors.As(err, &open) && open.RetryAfter > 0 {
		return open.RetryAfter, true
	}
	var budget *BudgetError
	if errors.As(err, &budget) && budget.RetryAfter > 0 {
		return budget.RetryAfter, true
	}
	return 0, false
}

// parseRetryAfter parses a Retry-After value given in seconds or as an
// HTTP-date, relative to now. Invalid or past values yield 0; values above
// maxRetryAfter are capped.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// newAPIError builds the APIError of a non-2xx answer. It never fails: an
// unknown or non-JSON body leaves the HTTP status text as message. Every
// secret is redacted from the server-supplied strings.
func newAPIError(op string, status int, h http.Header, body []byte, now time.Time, secrets []string) *APIError {
	e := &APIError{Op: op, StatusCode: status, RetryAfter: parseRetryAfter(h.Get("Retry-After"), now)}
	parseErrorBody(e, body)
	if e.Message == "" {
		e.Message = statusText(status)
	}
	if status >= 300 && status < 400 {
		e.Message += " (redirects are not followed; check the API base URL)"
	}
	e.clean(secrets)
	return e
}

// statusText returns http.StatusText or a generic text for unknown codes.
func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "unexpected status"
}

// errorBody holds every documented error envelope field as raw JSON, so
// that no shape makes decoding fail.
type errorBody struct {
	Message json.RawMessage `json:"message"`
	Code    json.RawMessage `json:"code"`
	Error   json.RawMessage `json:"error"`
	Errors  json.RawMessage `json:"errors"`
}

// parseErrorBody fills e from any of the documented envelopes:
// {success,message}, {message,errors:{field:[...]}},
// {success,error:{code,message,details}} and {success,errors:["..."]}.
func parseErrorBody(e *APIError, body []byte) {
	var raw errorBody
	if json.Unmarshal(body, &raw) != nil {
		return
	}
	e.Message = jsonString(raw.Message)
	e.Code = jsonString(raw.Code)
	parseNestedError(e, raw.Error)
	parseErrorsField(e, raw.Errors)
}

// parseNestedError reads "error": either {code, message, details} or a string.
func parseNestedError(e *APIError, raw json.RawMessage) {
	if s := jsonString(raw); s != "" {
		if e.Message == "" {
			e.Message = s
		}
		return
	}
	var nested struct {
		Code    json.RawMessage `json:"code"`
		Message json.RawMessage `json:"message"`
		Details json.RawMessage `json:"details"`
	}
	if json.Unmarshal(raw, &nested) != nil {
		return
	}
	if e.Code == "" {
		e.Code = jsonString(nested.Code)
	}
	if e.Message == "" {
		e.Message = jsonString(nested.Message)
	}
	if fe := fieldErrors(nested.Details); len(fe) > 0 {
		e.FieldErrors = fe
	}
}

// parseErrorsField reads "errors": a field map or a list of messages.
func parseErrorsField(e *APIError, raw json.RawMessage) {
	if fe := fieldErrors(raw); len(fe) > 0 {
		e.FieldErrors = fe
		return
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return
	}
	msgs := make([]string, 0, len(list))
	for _, item := range list {
		if s := messageOf(item); s != "" {
			msgs = append(msgs, s)
		}
	}
	if e.Message == "" {
		e.Message = strings.Join(msgs, "; ")
	}
}

// messageOf returns item if it is a string, or its "message" if it is an
// object with one.
func messageOf(item json.RawMessage) string {
	if s := jsonString(item); s != "" {
		return s
	}
	var obj struct {
		Message json.RawMessage `json:"message"`
	}
	if json.Unmarshal(item, &obj) != nil {
		return ""
	}
	return jsonString(obj.Message)
}

// fieldErrors decodes {field: ["msg", ...]} or {field: "msg"}; other value
// shapes are ignored.
func fieldErrors(raw json.RawMessage) map[string][]string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return nil
	}
	out := make(map[string][]string, len(m))
	for field, v := range m {
		if s := jsonString(v); s != "" {
			out[field] = []string{s}
			continue
		}
		var list []json.RawMessage
		if json.Unmarshal(v, &list) != nil {
			continue
		}
		for _, item := range list {
			if s := jsonString(item); s != "" {
				out[field] = append(out[field], s)
			}
		}
	}
	return out
}

// jsonString returns raw decoded as a JSON string, or "" for anything else.
func jsonString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// clean redacts secrets from, strips and caps every server-supplied string.
func (e *APIError) clean(secrets []string) {
	c := func(s string) string { return sanitize(redact(s, secrets), maxFieldLen) }
	e.Code = c(e.Code)
	e.Message = c(e.Message)
	if len(e.FieldErrors) == 0 {
		e.FieldErrors = nil
		return
	}
	cleaned := make(map[string][]string, len(e.FieldErrors))
	for k, msgs := range e.FieldErrors {
		key := c(k)
		for _, m := range msgs {
			cleaned[key] = append(cleaned[key], c(m))
		}
	}
	e.FieldErrors = cleaned
}

// redact replaces every occurrence of each secret (of at least minSecretLen
// bytes) with "<redacted>".
func redact(s string, secrets []string) string {
	for _, secret := range secrets {
		if len(secret) >= minSecretLen {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	return s
}

// sanitize makes s valid UTF-8, replaces control characters with spaces and
// truncates it to at most limit bytes on a rune boundary.
func sanitize(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) <= limit {
		return s
	}
	const ellipsis = "..."
	cut := limit - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// BudgetError is returned, without calling the API, when the request
// budget of the credential has no slot now: RetryAfter says when the slot
// booked for the caller's turn is due (see WithTurn), or when the pause
// asked for by the server (Paused) ends. It is retryable.
type BudgetError struct {
	Op         string
	RetryAfter time.Duration
	// Paused reports that the server asked to wait (a 429, or a 503 with
	// Retry-After); otherwise the budget is merely spent for now.
	Paused bool
	// Busy reports that the server is slow: calls of the budget have been
	// under way for long; nothing was booked.
	Busy bool
}

// Error implements error.
func (e *BudgetError) Error() string {
	if e.Paused {
		return fmt.Sprintf("%s: the API asked to wait; the next call may go in %s", e.Op, e.RetryAfter.Round(time.Second))
	}
	if e.Busy {
		return fmt.Sprintf("%s: the API is slow to answer the calls under way; the next call may go in %s", e.Op, e.RetryAfter.Round(time.Second))
	}
	return fmt.Sprintf("%s: the request budget is spent for now; the next call may go in %s", e.Op, e.RetryAfter.Round(time.Second))
}

// IsBudget reports whether err is a *BudgetError: the request did not leave.
func IsBudget(err error) bool {
	var b *BudgetError
	return errors.As(err, &b)
}
