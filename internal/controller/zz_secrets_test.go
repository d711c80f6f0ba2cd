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
	"encoding/json"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// The distinctive secrets the suite uses: environment tokens and header
// values from Secrets.
const (
	wrongToken        = "talq_wrong_token_zq81VVx4kP"
	secretHeaderValue = "hdr-secret-Qm93Lk2xP0"
	secretHeaderV1    = "hdr-rotate-one-Zy7Ww3"
	secretHeaderV2    = "hdr-rotate-two-Kd5Pp9"
)

// TestZZSecretsNeverLeak runs after every other test of the package (files
// run in name order): it looks for the suite's tokens and secret header
// values in everything the manager logged, in every Event, and in the
// status of every AgentAction and Environment.
func TestZZSecretsNeverLeak(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	secrets := []string{testToken, wrongToken, secretHeaderValue, secretHeaderV1, secretHeaderV2}

	logs := managerLogs.String()
	g.Expect(logs).NotTo(BeEmpty(), "the manager's logs were captured")

	var events eventsv1.EventList
	g.Expect(k8sClient.List(ctx, &events)).To(Succeed())
	g.Expect(events.Items).NotTo(BeEmpty())
	var coreEvents corev1.EventList
	g.Expect(k8sClient.List(ctx, &coreEvents)).To(Succeed())

	var actions agentsv1alpha1.AgentActionList
	g.Expect(k8sClient.List(ctx, &actions)).To(Succeed())
	var envs agentsv1alpha1.EnvironmentList
	g.Expect(k8sClient.List(ctx, &envs)).To(Succeed())
	statuses := make([]any, 0, len(actions.Items)+len(envs.Items))
	for _, a := range actions.Items {
		statuses = append(statuses, a.Status)
	}
	for _, e := range envs.Items {
		statuses = append(statuses, e.Status)
	}

	places := map[string]any{"logs": logs, "events": events.Items, "core events": coreEvents.Items, "statuses": statuses}
	for where, v := range places {
		text, ok := v.(string)
		if !ok {
			b, err := json.Marshal(v)
			g.Expect(err).NotTo(HaveOccurred())
			text = string(b)
		}
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("a secret (%s…) appears in the %s", s[:6], where)
			}
		}
	}
}
