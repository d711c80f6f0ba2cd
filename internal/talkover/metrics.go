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
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The namespace and subsystem of the client's metrics: talkover_api_*.
const (
	metricsNamespace = "talkover"
	metricsSubsystem = "api"
)

// Metrics holds the Prometheus collectors of the client. A nil *Metrics is
// valid and records nothing.
type Metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	wait      prometheus.Histogram
	throttled prometheus.Counter
}

// NewMetrics creates the client collectors and registers them with reg
// (nil: not registered). Registering twice on the same registry reuses the
// collectors already registered instead of panicking. If registration fails
// for another reason (a conflicting collector with the same name), the
// collectors still work but are not exported.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Subsystem: metricsSubsystem,
			Name:      "requests_total",
			Help:      "Talkover API requests by operation and HTTP status code (\"error\" when no answer was received).",
		}, []string{"operation", "code"})),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Subsystem: metricsSubsystem,
			Name:      "request_duration_seconds",
			Help:      "Duration of Talkover API requests.",
			Buckets:   prometheus.DefBuckets,
		}, []string{"operation"})),
		wait: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Subsystem: metricsSubsystem,
			Name:      "ratelimit_wait_seconds",
			Help:      "Delay until the next slot of the client-side request budget, each time a call was refused for it and requeued.",
			Buckets:   []float64{0, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		})),
		throttled: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Subsystem: metricsSubsystem,
			Name:      "throttled_total",
			Help:      "HTTP 429 answers received from the Talkover API.",
		})),
	}
}

// register registers c with reg, returning the collector already registered
// under the same descriptor if there is one.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing
		}
	}
	return c
}

// observeRequest records one HTTP exchange; status 0 means no answer.
func (m *Metrics) observeRequest(op string, status int, d time.Duration) {
	if m == nil {
		return
	}
	code := "error"
	if status > 0 {
		code = strconv.Itoa(status)
	}
	m.requests.WithLabelValues(op, code).Inc()
	m.duration.WithLabelValues(op).Observe(d.Seconds())
}

// observeWait records time spent in the rate limiter.
func (m *Metrics) observeWait(d time.Duration) {
	if m == nil {
		return
	}
	m.wait.Observe(d.Seconds())
}

// observeThrottled counts one 429 answer.
func (m *Metrics) observeThrottled() {
	if m == nil {
		return
	}
	m.throttled.Inc()
}
