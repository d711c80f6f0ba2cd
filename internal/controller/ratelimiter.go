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
	"math/rand/v2"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Retry backoff of failed reconciles: calls to the API are precious, so the
// first retry waits a second (not the 5ms of the default), doubling up to
// five minutes, with up to 20% jitter so retries of many resources spread.
const (
	retryBaseDelay = time.Second
	retryMaxDelay  = 5 * time.Minute
)

func newRetryRateLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return newTypedRetryRateLimiter[reconcile.Request]()
}

// newTypedRetryRateLimiter is the retry backoff of a controller keyed by K
// (the agent-keyed controllers): per key, with no bucket shared between
// keys, so one agent's failures never slow another's retries.
func newTypedRetryRateLimiter[K comparable]() workqueue.TypedRateLimiter[K] {
	return jitterLimiter[K]{workqueue.NewTypedItemExponentialFailureRateLimiter[K](retryBaseDelay, retryMaxDelay)}
}

// jitterLimiter adds random jitter to another rate limiter's delays.
type jitterLimiter[K comparable] struct {
	workqueue.TypedRateLimiter[K]
}

// When returns the delay before the item is retried, with jitter.
func (j jitterLimiter[K]) When(item K) time.Duration {
	d := j.TypedRateLimiter.When(item)
	return d + time.Duration(rand.Float64()*0.2*float64(d)) //nolint:gosec // jitter needs no cryptographic randomness
}
