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

package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

// defaultRateLimitWait is how long to wait after a 429 without Retry-After.
const defaultRateLimitWait = 10 * time.Second

// apiError turns an error of the Talkover client into an outcome, by class:
// terminal answers stall the resource (no retry loop), a 429 waits for
// Retry-After (with jitter), anything else is returned for exponential
// backoff.
func (r *AgentActionReconciler) apiError(ctx context.Context, s *agentActionScope, err error) (ctrl.Result, error) {
	if errors.Is(err, context.Canceled) {
		return ctrl.Result{}, err
	}
	if errors.Is(err, errPriorUnknown) || errors.Is(err, errPublishing) {
		return changeWait(s, err), nil
	}
	if reason, ok := terminalReason(err); ok {
		log.FromContext(ctx).Info("The Talkover API rejected the request", "reason", reason, "error", err.Error())
		return r.stall(s, reason, "%s", terminalMessage(reason, err))
	}
	s.done = true
	var budget *talkover.BudgetError
	if errors.As(err, &budget) {
		return budgetWait(s, budget), nil
	}
	if talkover.IsRateLimited(err) {
		wait, ok := talkover.RetryAfter(err)
		if !ok || wait <= 0 {
			wait = defaultRateLimitWait
		}
		s.outcome = outcome{kind: outcomeRetrying, reason: agentsv1alpha1.ReasonRateLimited,
			message: fmt.Sprintf("The Talkover API is rate limiting this environment; retrying in %s.", wait.Round(time.Second))}
		// The server said when to come back, and the environment's whole
		// budget pauses until then; jitter spreads the resources that were
		// refused together.
		return ctrl.Result{RequeueAfter: wait + time.Duration(rand.Float64()*0.2*float64(wait))}, nil //nolint:gosec // jitter
	}
	s.outcome = outcome{kind: outcomeRetrying, reason: agentsv1alpha1.ReasonAPIUnavailable,
		message: "The Talkover API call failed and will be retried with backoff: " + err.Error()}
	var open *talkover.CircuitOpenError
	if errors.As(err, &open) {
		// The environment's API is down: wait for the breaker's probe
		// rather than growing this resource's backoff.
		return ctrl.Result{RequeueAfter: open.RetryAfter + time.Duration(rand.Int64N(int64(time.Second)))}, nil //nolint:gosec // jitter
	}
	return ctrl.Result{}, err
}

// budgetWait requeues a push that found its environment's budget spent, or
// paused by the server, for the moment its slot is due: no worker waits.
// A booked slot is claimed on time (no jitter: a late claim loses the
// slot); the end of a pause is spread with jitter, since every resource of
// the environment was told the same time.
func budgetWait(s *agentActionScope, err *talkover.BudgetError) ctrl.Result {
	if err.Busy {
		// The environment's server is slow to answer the calls under way:
		// nothing is booked and nothing changed, so the status stays.
		return ctrl.Result{RequeueAfter: err.RetryAfter + time.Duration(rand.Float64()*0.5*float64(err.RetryAfter))} //nolint:gosec // jitter
	}
	if err.Paused {
		s.outcome = outcome{kind: outcomeRetrying, reason: agentsv1alpha1.ReasonRateLimited,
			message: "The Talkover API asked this environment to wait (429 or 503 with Retry-After); the push is retried when the pause ends."}
		return ctrl.Result{RequeueAfter: err.RetryAfter + time.Duration(rand.Float64()*0.2*float64(err.RetryAfter))} //nolint:gosec // jitter
	}
	s.outcome = outcome{kind: outcomeProgressing, reason: agentsv1alpha1.ReasonWaitingForBudget,
		message: fmt.Sprintf("Waiting for a free slot in the request budget of the environment's token (%s); the call has a booked slot.", budgetOf(s.env))}
	return ctrl.Result{RequeueAfter: err.RetryAfter}
}

// changeWait holds a change until the agent's rollout is prepared (the
// publish controller queues the AgentAction again then; the requeue is a
// safety net), or until the agent's publish under way is over.
func changeWait(s *agentActionScope, err error) ctrl.Result {
	s.done = true
	if errors.Is(err, errPublishing) {
		return ctrl.Result{RequeueAfter: time.Second}
	}
	// The read takes one call and the publish controller queues the
	// AgentAction again at once: a status write for it would only cost.
	// The requeue is a safety net (it makes no call).
	return ctrl.Result{RequeueAfter: 5 * time.Second}
}

// budgetOf describes an environment's request budget.
func budgetOf(env *agentsv1alpha1.Environment) string {
	if env == nil {
		return "requestsPerMinute"
	}
	return fmt.Sprintf("%d requests a minute", EffectiveRequestsPerMinute(env))
}

// terminalReason maps an answer that retrying cannot fix to its reason.
func terminalReason(err error) (string, bool) {
	var apiErr *talkover.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode >= 300 && apiErr.StatusCode < 400 {
		// A redirect: the apiURL is wrong. It is never followed.
		return agentsv1alpha1.ReasonAPIUnavailable, true
	}
	switch {
	case talkover.IsUnauthorized(err):
		return agentsv1alpha1.ReasonUnauthorized, true
	case talkover.IsForbidden(err):
		return agentsv1alpha1.ReasonForbidden, true
	case talkover.IsNotFound(err):
		return agentsv1alpha1.ReasonAgentNotFound, true
	case talkover.IsTerminal(err):
		return agentsv1alpha1.ReasonValidationFailed, true
	}
	return "", false
}

// terminalMessage tells the user what to do about a terminal answer.
func terminalMessage(reason string, err error) string {
	switch reason {
	case agentsv1alpha1.ReasonUnauthorized:
		return "The Talkover API rejected the environment token; fix the token in the Environment's Secret: " + err.Error()
	case agentsv1alpha1.ReasonForbidden:
		return "The environment token may not manage this agent: " + err.Error()
	case agentsv1alpha1.ReasonAgentNotFound:
		return "The agent does not exist in the token's environment; check agentId and the Environment: " + err.Error()
	case agentsv1alpha1.ReasonAPIUnavailable:
		return "The Talkover API answered with a redirect, which the operator never follows; check the Environment's apiURL: " + err.Error()
	}
	return "The Talkover API rejected the action; fix the spec: " + err.Error()
}

func envName(env *agentsv1alpha1.Environment) types.NamespacedName {
	return types.NamespacedName{Namespace: env.Namespace, Name: env.Name}
}

func metaNow(t time.Time) metav1.Time {
	return metav1.NewTime(t.UTC().Truncate(time.Second))
}
