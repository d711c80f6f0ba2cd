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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
)

const (
	// DefaultUserAgent is the User-Agent sent when Config.UserAgent is empty.
	DefaultUserAgent = "talkover-operator/dev"
	// DefaultTimeout is the timeout of the default HTTP client.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxResponseBytes is the default cap on response bodies.
	DefaultMaxResponseBytes int64 = 8 << 20
	// DefaultThrottlePause is how long the limiter pauses after a 429 answer
	// without a Retry-After header.
	DefaultThrottlePause = 10 * time.Second
	// maxListPages bounds how many pages ListActions follows.
	maxListPages = 100
	// MaxIDLength bounds the remote IDs the client accepts: they are stored
	// in the status of Kubernetes objects.
	MaxIDLength = 255
	// maxTimestampLength bounds the updated_at kept from an answer.
	maxTimestampLength = 64
)

// Operation names, used in errors and as the "operation" metric label.
const (
	OpUpsertAction   = "UpsertAction"
	OpListActions    = "ListActions"
	OpDeleteAction   = "DeleteAction"
	OpGetAgent       = "GetAgent"
	OpPublishAgent   = "PublishAgent"
	OpUnpublishAgent = "UnpublishAgent"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the API root, for example https://app.talkover.ai/api/v1.
	// It must be http or https with a host, and carry no userinfo, query or
	// fragment. A trailing slash is ignored.
	BaseURL string
	// Token is the environment token, sent only as "Authorization: Bearer".
	// Surrounding whitespace (such as a trailing newline from a Secret) is
	// trimmed.
	Token string
	// UserAgent defaults to DefaultUserAgent.
	UserAgent string
	// HTTPClient is optional; the default has a DefaultTimeout timeout. The
	// client never follows redirects: a copy of HTTPClient is used whose
	// CheckRedirect returns http.ErrUseLastResponse, and a 3xx answer becomes
	// a terminal *APIError.
	HTTPClient *http.Client
	// Limiter is optional and shared by all clients of one environment;
	// nil means no client-side rate limiting.
	Limiter *Limiter
	// Metrics is optional; nil means no metrics.
	Metrics *Metrics
	// Breaker is optional and shared by all clients of one environment;
	// nil means no circuit breaking.
	Breaker *Breaker
	// MaxResponseBytes caps response bodies; 0 or less means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Client is a typed client of the Talkover REST API. It is safe for
// concurrent use. It does not retry: callers classify errors with
// IsTerminal, IsRetryable and RetryAfter.
type Client struct {
	baseURL    string
	token      string
	userAgent  string
	httpClient *http.Client
	limiter    *Limiter
	metrics    *Metrics
	breaker    *Breaker
	maxBytes   int64
	now        func() time.Time
}

// New validates cfg and returns a Client. Errors wrap ErrInvalidArgument
// and never contain the token.
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	token, err := validateToken(cfg.Token)
	if err != nil {
		return nil, err
	}
	c := &Client{
		baseURL:    base,
		token:      token,
		userAgent:  cfg.UserAgent,
		httpClient: noRedirectClient(cfg.HTTPClient),
		limiter:    cfg.Limiter,
		breaker:    cfg.Breaker,
		metrics:    cfg.Metrics,
		maxBytes:   cfg.MaxResponseBytes,
		now:        time.Now,
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxResponseBytes
	}
	return c, nil
}

// parseBaseURL checks raw and returns it without a trailing slash. The
// error does not quote raw, which could hold credentials.
func parseBaseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("talkover: %w: BaseURL is not a valid URL", ErrInvalidArgument)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("talkover: %w: BaseURL scheme must be http or https", ErrInvalidArgument)
	case u.Host == "":
		return "", fmt.Errorf("talkover: %w: BaseURL has no host", ErrInvalidArgument)
	case u.User != nil:
		return "", fmt.Errorf("talkover: %w: BaseURL must not contain credentials; use Token", ErrInvalidArgument)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("talkover: %w: BaseURL must not have a query or fragment", ErrInvalidArgument)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// validateToken trims the token and rejects empty tokens and tokens with
// inner whitespace or control characters.
func validateToken(raw string) (string, error) {
	token := strings.TrimSpace(raw)
	if token == "" {
		return "", fmt.Errorf("talkover: %w: Token is empty", ErrInvalidArgument)
	}
	if strings.IndexFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "", fmt.Errorf("talkover: %w: Token contains whitespace or control characters", ErrInvalidArgument)
	}
	return token, nil
}

// noRedirectClient returns a copy of hc (or a default client) that never
// follows redirects.
func noRedirectClient(hc *http.Client) *http.Client {
	c := &http.Client{Timeout: DefaultTimeout}
	if hc != nil {
		copied := *hc
		c = &copied
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// UpsertAction creates or updates an action of an agent
// (POST /agents/{agent_id}/actions). The answer must carry data.id.
func (c *Client) UpsertAction(ctx context.Context, agentID string, req ActionRequest) (*Action, error) {
	path, err := agentPath(OpUpsertAction, agentID, "actions")
	if err != nil {
		return nil, err
	}
	var a Action
	res, err := c.do(ctx, request{
		op: OpUpsertAction, method: http.MethodPost, path: path, body: req,
		secrets: headerValues(req.CustomHeaders),
	}, &a)
	if err != nil {
		return nil, err
	}
	if a.ID == "" {
		return nil, &InvalidResponseError{Op: OpUpsertAction, StatusCode: res.status, Reason: `missing "data.id"`}
	}
	if len(a.ID) > MaxIDLength || strings.IndexFunc(a.ID, unicode.IsControl) >= 0 {
		// The ID is stored in status (and its bound is the CRD's): a
		// longer or unprintable one is not an ID this client can use.
		return nil, &InvalidResponseError{Op: OpUpsertAction, StatusCode: res.status,
			Reason: fmt.Sprintf(`"data.id" is longer than %d bytes or has control characters`, MaxIDLength)}
	}
	a.UpdatedAt = sanitize(a.UpdatedAt, maxTimestampLength)
	return &a, nil
}

// ListActions returns every action of an agent (GET
// /agents/{agent_id}/actions). Pagination is not documented for this
// endpoint; if the answer has a meta block announcing further pages, they
// are fetched with ?page=N as on List Agents.
func (c *Client) ListActions(ctx context.Context, agentID string) ([]Action, error) {
	path, err := agentPath(OpListActions, agentID, "actions")
	if err != nil {
		return nil, err
	}
	all := []Action{}
	for page := 1; ; page++ {
		r := request{op: OpListActions, method: http.MethodGet, path: path}
		if page > 1 {
			r.query = "page=" + strconv.Itoa(page)
		}
		var actions []Action
		res, err := c.do(ctx, r, &actions)
		if err != nil {
			return nil, err
		}
		all = append(all, actions...)
		more, err := hasMorePages(res, page)
		if err != nil || !more {
			return all, err
		}
	}
}

// hasMorePages reads the optional meta block of a list answer.
func hasMorePages(res *result, page int) (bool, error) {
	var meta pageMeta
	if len(nullToNil(res.env.Meta)) == 0 || json.Unmarshal(res.env.Meta, &meta) != nil {
		return false, nil //nolint:nilerr // an unreadable meta block means no pagination
	}
	invalid := func(reason string) error {
		return &InvalidResponseError{Op: OpListActions, StatusCode: res.status, Reason: reason}
	}
	if meta.CurrentPage != 0 && meta.CurrentPage != page {
		return false, invalid(fmt.Sprintf("asked for page %d, got page %d", page, meta.CurrentPage))
	}
	if meta.LastPage <= page {
		return false, nil
	}
	if page >= maxListPages {
		return false, invalid(fmt.Sprintf("more than %d pages", maxListPages))
	}
	return true, nil
}

// DeleteAction deletes an action (DELETE /agents/{agent_id}/actions/{action_id}).
// A 404 answer is returned as an error; see IsNotFound.
func (c *Client) DeleteAction(ctx context.Context, agentID, actionID string) error {
	path, err := agentPath(OpDeleteAction, agentID, "actions", actionID)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, request{op: OpDeleteAction, method: http.MethodDelete, path: path}, nil)
	return err
}

// GetAgent returns an agent (GET /agents/{agent_id}).
func (c *Client) GetAgent(ctx context.Context, agentID string) (*Agent, error) {
	return c.agentCall(ctx, OpGetAgent, http.MethodGet, agentID)
}

// PublishAgent publishes an agent (POST /agents/{agent_id}/publish, no body).
func (c *Client) PublishAgent(ctx context.Context, agentID string) (*Agent, error) {
	return c.agentCall(ctx, OpPublishAgent, http.MethodPost, agentID, "publish")
}

// UnpublishAgent reverts an agent to draft (POST /agents/{agent_id}/unpublish).
func (c *Client) UnpublishAgent(ctx context.Context, agentID string) (*Agent, error) {
	return c.agentCall(ctx, OpUnpublishAgent, http.MethodPost, agentID, "unpublish")
}

// agentCall performs a body-less request whose data is an agent.
func (c *Client) agentCall(ctx context.Context, op, method, agentID string, rest ...string) (*Agent, error) {
	path, err := agentPath(op, agentID, rest...)
	if err != nil {
		return nil, err
	}
	var a Agent
	if _, err := c.do(ctx, request{op: op, method: method, path: path}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// agentPath builds "/agents/{agentID}/rest..." with escaped segments. The
// agent ID and any segment after "actions" are IDs and must be non-empty
// and not "." or "..".
func agentPath(op, agentID string, rest ...string) (string, error) {
	ids := []string{agentID}
	if len(rest) > 1 {
		ids = append(ids, rest[1:]...)
	}
	for _, id := range ids {
		if id == "" || id == "." || id == ".." {
			return "", fmt.Errorf("%s: %w: empty or dot path segment %q", op, ErrInvalidArgument, id)
		}
	}
	var b strings.Builder
	b.WriteString("/agents/" + url.PathEscape(agentID))
	for _, seg := range rest {
		b.WriteString("/" + url.PathEscape(seg))
	}
	return b.String(), nil
}

// headerValues returns the custom header values, to redact from errors.
func headerValues(hs []Header) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.Value)
	}
	return out
}

// request describes one API call.
type request struct {
	op      string
	method  string
	path    string // escaped, below the base URL
	query   string // raw query, may be empty
	body    any    // nil: no body
	secrets []string
}

// result is a decoded 2xx answer.
type result struct {
	status int
	env    *envelope
}

// do sends r and decodes the success envelope. If out is non-nil the answer
// must have data, which is decoded into out.
func (c *Client) do(ctx context.Context, r request, out any) (*result, error) {
	if err := ctx.Err(); err != nil {
		return nil, &TransportError{Op: r.op, Err: err}
	}
	if wait := c.breaker.wait(); wait > 0 {
		return nil, &CircuitOpenError{Op: r.op, RetryAfter: wait}
	}
	if err := c.reserve(ctx, r.op); err != nil {
		return nil, err
	}
	probe, err := c.breaker.allow(r.op)
	if err != nil {
		return nil, err
	}
	res, err := c.doOnce(ctx, r, out)
	c.breaker.record(probe, err)
	return res, err
}

// doOnce sends one request and decodes its answer.
func (c *Client) doOnce(ctx context.Context, r request, out any) (*result, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	env, err := c.decodeEnvelope(r.op, resp, out != nil)
	if err != nil {
		return nil, err
	}
	res := &result{status: resp.status, env: env}
	if out == nil {
		return res, nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return nil, &InvalidResponseError{Op: r.op, StatusCode: resp.status, Reason: describeDecodeError(err)}
	}
	return res, nil
}

// response is a received HTTP answer with its (capped) body.
type response struct {
	status   int
	header   http.Header
	body     []byte
	tooLarge bool
}

// send takes a slot of the budget, sends r and reads the answer. Non-2xx
// answers are returned as *APIError.
func (c *Client) send(ctx context.Context, r request) (*response, error) {
	payload, err := encodeBody(r)
	if err != nil {
		return nil, err
	}
	req, err := c.newRequest(ctx, r, payload)
	if err != nil {
		return nil, err
	}
	call := c.limiter.Start()
	defer c.limiter.Done(call)
	start := time.Now()
	httpResp, err := c.httpClient.Do(req)
	if err != nil {
		c.metrics.observeRequest(r.op, 0, time.Since(start))
		return nil, &TransportError{Op: r.op, Err: err}
	}
	defer func() { _ = httpResp.Body.Close() }()
	body, tooLarge, readErr := c.readBody(httpResp.Body)
	c.metrics.observeRequest(r.op, httpResp.StatusCode, time.Since(start))
	c.throttle(httpResp)
	if httpResp.StatusCode < 200 || httpResp.StatusCode > 299 {
		secrets := append([]string{c.token}, r.secrets...)
		return nil, newAPIError(r.op, httpResp.StatusCode, httpResp.Header, body, c.now(), secrets)
	}
	if readErr != nil {
		return nil, &TransportError{Op: r.op, Err: fmt.Errorf("reading response body: %w", readErr)}
	}
	return &response{status: httpResp.StatusCode, header: httpResp.Header, body: body, tooLarge: tooLarge}, nil
}

// encodeBody marshals the request body, if any.
func encodeBody(r request) ([]byte, error) {
	if r.body == nil {
		return nil, nil
	}
	payload, err := json.Marshal(r.body)
	if err != nil {
		return nil, fmt.Errorf("%s: encoding request body: %w: %w", r.op, ErrInvalidArgument, err)
	}
	return payload, nil
}

// grantKey is the context key of a slot taken by Reserve.
type grantKey struct{}

// grant is a slot of the budget taken by Reserve for the next call.
type grant struct{ used atomic.Bool }

// Reserve takes a slot of the budget now for the turn in ctx (see
// WithTurn), for the next call made with the returned context, so that a
// caller can record that a request is about to leave before it does. It
// fails at once, and takes nothing, with a *CircuitOpenError while the
// circuit is open and a *BudgetError when no slot is free now (a later slot
// is then booked for the turn).
func (c *Client) Reserve(ctx context.Context) (context.Context, error) {
	if wait := c.breaker.wait(); wait > 0 {
		return ctx, &CircuitOpenError{Op: "Reserve", RetryAfter: wait}
	}
	if err := c.reserve(ctx, "Reserve"); err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, grantKey{}, &grant{}), nil
}

// reserve takes a slot of the budget for the turn in ctx (or the one taken
// by Reserve), or returns a *BudgetError saying when to come back. It never
// blocks.
func (c *Client) reserve(ctx context.Context, op string) error {
	if c.limiter == nil {
		return nil
	}
	if g, ok := ctx.Value(grantKey{}).(*grant); ok && g.used.CompareAndSwap(false, true) {
		return nil
	}
	t, _ := turnFrom(ctx)
	if pause := c.limiter.Paused(); pause > 0 {
		c.metrics.observeWait(pause)
		return &BudgetError{Op: op, RetryAfter: pause, Paused: true}
	}
	if c.limiter.Busy() && !c.limiter.HasBooking(t.key) {
		// A caller with a booked slot keeps it: it would be lost if the
		// caller came back after the slot.
		return &BudgetError{Op: op, RetryAfter: BusyRetry, Busy: true}
	}
	if d := c.limiter.Reserve(t.key, t.group, t.priority); d > 0 {
		c.metrics.observeWait(d)
		return &BudgetError{Op: op, RetryAfter: d}
	}
	return nil
}

// newRequest builds the HTTP request with its headers.
func (c *Client) newRequest(ctx context.Context, r request, payload []byte) (*http.Request, error) {
	target := c.baseURL + r.path
	if r.query != "" {
		target += "?" + r.query
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("%s: building request: %w", r.op, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// readBody reads at most maxBytes; tooLarge reports a longer body.
func (c *Client) readBody(r io.Reader) (body []byte, tooLarge bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r, c.maxBytes+1))
	if int64(len(body)) > c.maxBytes {
		return body[:c.maxBytes], true, err
	}
	return body, false, err
}

// throttle counts 429 answers and pauses the limiter on 429, and on 503
// with Retry-After.
func (c *Client) throttle(resp *http.Response) {
	d := parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		c.metrics.observeThrottled()
		if d == 0 {
			d = DefaultThrottlePause
		}
		c.limiter.PauseFor(d)
	case http.StatusServiceUnavailable:
		c.limiter.PauseFor(d)
	}
}

// decodeEnvelope checks a 2xx answer and decodes its success envelope.
// needData requires a non-null "data".
func (c *Client) decodeEnvelope(op string, resp *response, needData bool) (*envelope, error) {
	invalid := func(reason string) error {
		return &InvalidResponseError{Op: op, StatusCode: resp.status, Reason: reason}
	}
	if resp.tooLarge {
		return nil, invalid(fmt.Sprintf("body exceeds %d bytes", c.maxBytes))
	}
	if len(bytes.TrimSpace(resp.body)) == 0 {
		if needData {
			return nil, invalid("empty body")
		}
		return &envelope{}, nil
	}
	if ct := resp.header.Get("Content-Type"); ct != "" && !isJSONContentType(ct) {
		return nil, invalid(fmt.Sprintf("unexpected content type %q", mediaType(ct)))
	}
	var env envelope
	if err := json.Unmarshal(resp.body, &env); err != nil {
		return nil, invalid("body is not a JSON success envelope")
	}
	if env.Success != nil && !*env.Success {
		return nil, invalid(`"success" is false`)
	}
	if needData && len(nullToNil(env.Data)) == 0 {
		return nil, invalid(`missing "data"`)
	}
	return &env, nil
}

// isJSONContentType reports whether ct is application/json or +json.
func isJSONContentType(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// mediaType returns the lower-cased media type of ct without parameters.
func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "invalid"
	}
	return sanitize(mt, 100)
}

// describeDecodeError says why data did not decode, without quoting it.
func describeDecodeError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field == "" {
		return fmt.Sprintf("data is a JSON %s, want %s", typeErr.Value, typeErr.Type)
	}
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("data field %q is a JSON %s, want %s", typeErr.Field, typeErr.Value, typeErr.Type)
	}
	return "data does not have the expected shape"
}
