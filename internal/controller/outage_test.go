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
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/apisim"
)

// TestOutage_breakerBoundsCallsAndOthersAreUnaffected: while one
// environment's API is down, the operator stops hammering it (its circuit
// breaker probes with one call at a time), the other environment carries
// on, and work resumes within seconds once the API is back.
func TestOutage_breakerBoundsCallsAndOthersAreUnaffected(t *testing.T) {
	down := newFixture(t)
	up := newFixture(t)
	const outage = 12 * time.Second
	down.sim.OutageFor(outage)
	start := time.Now()
	for i := range 5 {
		down.create(down.webhook(fmt.Sprintf("a%d", i), fmt.Sprintf("node-%d", i)))
		up.create(up.webhook(fmt.Sprintf("b%d", i), fmt.Sprintf("node-%d", i)))
	}
	for i := range 5 {
		up.waitReason(fmt.Sprintf("b%d", i), agentsv1alpha1.ReasonSynced)
	}
	down.waitReason("a0", agentsv1alpha1.ReasonAPIUnavailable)
	up.g.Expect(time.Since(start)).To(BeNumerically("<", outage), "the healthy environment was not held up")

	time.Sleep(time.Until(start.Add(outage)))
	during := down.sim.Count(apisim.RouteUpsert)
	down.g.Expect(during).To(BeNumerically("<=", 12), "calls during the outage stay bounded")

	recovered := time.Now()
	for i := range 5 {
		down.waitReason(fmt.Sprintf("a%d", i), agentsv1alpha1.ReasonSynced)
	}
	down.g.Expect(time.Since(recovered)).To(BeNumerically("<", 25*time.Second))
	down.g.Expect(down.sim.Actions(down.agent)).To(HaveLen(5))
	t.Logf("calls during a %s outage: %d; recovered in %s", outage, during, time.Since(recovered).Round(time.Second))
}
