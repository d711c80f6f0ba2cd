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

// Package talkover is a typed client of the Talkover REST API
// (https://docs.talkover.ai): actions of voice agents (create/update, list,
// delete) and agents (get, publish, unpublish).
//
// The package knows nothing of Kubernetes. The controller declares the small
// interface it needs and translates errors into conditions and requeues.
//
// # Errors
//
// Every failure is one of:
//
//   - *APIError: a non-2xx answer. The body is parsed leniently; every
//     documented envelope is understood ({success,message},
//     {message,errors:{field:[...]}}, {success,error:{code,message,details}},
//     {success,errors:["..."]}) and an unknown or non-JSON body falls back
//     to the HTTP status text. Classify it by status with IsNotFound,
//     IsUnauthorized, IsForbidden, IsValidation and IsRateLimited.
//   - *InvalidResponseError: a 2xx answer that cannot be used (wrong content
//     type, not JSON, "success": false, missing data or data.id, too large).
//   - *TransportError: no answer (connection failures, timeouts, cancelled
//     contexts, truncated bodies).
//   - errors wrapping ErrInvalidArgument: invalid input to the client.
//
// IsTerminal (3xx, 4xx except 408/429, invalid arguments) means retrying
// cannot help until something changes; IsRetryable (408, 429, 5xx, invalid
// 2xx answers, network errors) means back off and retry, honouring
// RetryAfter. A cancelled context is neither.
//
// # Secrets
//
// The token is sent only in the Authorization header. No error string
// contains the token, a request body or a response body; server messages
// are stripped of control characters, capped, and have the token and the
// request's custom header values redacted. Header values print as
// "<redacted>" with every fmt verb and with logr.Marshaler loggers.
//
// # Rate limiting
//
// A Limiter is the budget of one credential (one token, one server-side
// quota), shared by every client that uses it. No call ever waits for it: a
// call whose context carries a turn (WithTurn) and finds no free slot books
// the next one for that turn and fails at once with a *BudgetError saying
// when to come back, so the caller (a reconcile) requeues instead of
// holding a worker. Slots go by priority: spec changes and deletes before
// retries before drift checks. On 429, and on 503 with Retry-After, the
// client pauses the limiter: every call is refused with the pause left.
// An open circuit breaker refuses calls with a *CircuitOpenError before
// they touch the budget.
package talkover
