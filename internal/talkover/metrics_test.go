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
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

// find returns the metric of family name whose labels include want.
func find(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, want) {
				return m
			}
		}
	}
	return nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(t, reg, name, labels)
	if m == nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

func histogram(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (uint64, float64) {
	t.Helper()
	m := find(t, reg, name, labels)
	if m == nil {
		return 0, 0
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

func TestNewMetrics_RegisteringTwiceReusesCollectors(t *testing.T) {
	reg := newRegistry()
	m1 := NewMetrics(reg)
	m2 := NewMetrics(reg) // must not panic
	if m1.requests != m2.requests || m1.duration != m2.duration || m1.wait != m2.wait || m1.throttled != m2.throttled {
		t.Error("second NewMetrics did not reuse the registered collectors")
	}
	m1.observeThrottled()
	m2.observeThrottled()
	if got := counter(t, reg, "talkover_api_throttled_total", nil); got != 2 {
		t.Errorf("throttled_total = %v, want 2", got)
	}
	// Nil registerer and nil metrics are valid.
	NewMetrics(nil).observeWait(0)
	var nilMetrics *Metrics
	nilMetrics.observeRequest("Op", 200, 0)
	nilMetrics.observeWait(0)
	nilMetrics.observeThrottled()
}

func TestNewMetrics_ConflictingCollectorDoesNotPanic(t *testing.T) {
	reg := newRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "talkover_api_throttled_total", Help: "conflict"}))
	m := NewMetrics(reg)
	m.observeThrottled()
}

func TestClient_RecordsMetrics(t *testing.T) {
	reg := newRegistry()
	ts := newTestServer(t, reply(200, docSuccessResponse))
	c := newTestClient(t, ts, func(cfg *Config) { cfg.Metrics = NewMetrics(reg) })
	ctx := context.Background()
	if _, err := c.UpsertAction(ctx, "a", docActionRequest1()); err != nil {
		t.Fatal(err)
	}
	ts.handler = raw(http.StatusTooManyRequests, "", "")
	_ = upsert(c)
	_ = upsert(c)
	ts.handler = reply(404, `{"message":"Agent not found"}`)
	_, _ = c.GetAgent(ctx, "a")
	ts.Close()
	_ = c.DeleteAction(ctx, "a", "b")

	for _, tc := range []struct {
		op, code string
		want     float64
	}{
		{OpUpsertAction, "200", 1}, {OpUpsertAction, "429", 2}, {OpGetAgent, "404", 1}, {OpDeleteAction, "error", 1},
	} {
		if got := counter(t, reg, "talkover_api_requests_total", map[string]string{"operation": tc.op, "code": tc.code}); got != tc.want {
			t.Errorf("requests_total{%s,%s} = %v, want %v", tc.op, tc.code, got, tc.want)
		}
	}
	if got := counter(t, reg, "talkover_api_throttled_total", nil); got != 2 {
		t.Errorf("throttled_total = %v", got)
	}
	if n, _ := histogram(t, reg, "talkover_api_request_duration_seconds", map[string]string{"operation": OpUpsertAction}); n != 3 {
		t.Errorf("duration count = %d", n)
	}
	// Without a limiter no wait is recorded.
	if n, _ := histogram(t, reg, "talkover_api_ratelimit_wait_seconds", nil); n != 0 {
		t.Errorf("wait count = %d", n)
	}
}
