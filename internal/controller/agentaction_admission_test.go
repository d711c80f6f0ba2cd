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
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// TestAdmission checks that the CRD's OpenAPI and CEL rules, served by the
// real kube-apiserver, reject each bad manifest with a message a person
// understands.
func TestAdmission(t *testing.T) {
	requireEnvtest(t)
	ctx := context.Background()
	g := NewWithT(t)
	ns := "admission"
	g.Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())

	valid := func() *agentsv1alpha1.AgentAction {
		return &agentsv1alpha1.AgentAction{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "bad-"},
			Spec: agentsv1alpha1.AgentActionSpec{
				EnvironmentRef: agentsv1alpha1.EnvironmentReference{Name: "env"},
				AgentID:        "agent-1", NodeID: "node-1",
				Name: "Schedule Meeting", Description: "Schedule a meeting",
				Type: agentsv1alpha1.ActionTypeWebhook, URL: "https://api.example.com/schedule",
			},
		}
	}
	hold := int32(0)
	tests := []struct {
		name    string
		mutate  func(*agentsv1alpha1.AgentAction)
		message string
	}{
		{"webhook without url", func(a *agentsv1alpha1.AgentAction) { a.Spec.URL = "" }, "url is required when type is webhook"},
		{"transfer without transferTo", func(a *agentsv1alpha1.AgentAction) { a.Spec.Type = agentsv1alpha1.ActionTypeTransfer },
			"transferTo is required when type is transfer"},
		{"hold without holdDuration", func(a *agentsv1alpha1.AgentAction) { a.Spec.Type = agentsv1alpha1.ActionTypeHold },
			"holdDuration is required when type is hold"},
		{"hold of zero seconds", func(a *agentsv1alpha1.AgentAction) {
			a.Spec.Type = agentsv1alpha1.ActionTypeHold
			a.Spec.HoldDuration = &hold
		}, "should be greater than or equal to 1"},
		{"post_call on a webhook", func(a *agentsv1alpha1.AgentAction) { a.Spec.ExecutionMode = agentsv1alpha1.ExecutionModePostCall },
			"executionMode post_call is only valid when type is external"},
		{"url not http", func(a *agentsv1alpha1.AgentAction) { a.Spec.URL = "ftp://example.com/x" }, "url must be an absolute http or https URL"},
		{"url relative", func(a *agentsv1alpha1.AgentAction) { a.Spec.URL = "/schedule" }, "url must be an absolute http or https URL"},
		{"authorizationUrl invalid", func(a *agentsv1alpha1.AgentAction) { a.Spec.AuthorizationURL = "not a url" },
			"authorizationUrl must be an absolute http or https URL"},
		{"transferTo not E.164", func(a *agentsv1alpha1.AgentAction) {
			a.Spec.Type = agentsv1alpha1.ActionTypeTransfer
			a.Spec.TransferTo = "555-1234"
		}, "transferTo must be an E.164 phone number such as +14155550100"},
		{"transferTo without country code", func(a *agentsv1alpha1.AgentAction) {
			a.Spec.Type = agentsv1alpha1.ActionTypeTransfer
			a.Spec.TransferTo = "+04155550100"
		}, "transferTo must be an E.164 phone number such as +14155550100"},
		{"transferTo too long", func(a *agentsv1alpha1.AgentAction) {
			a.Spec.Type = agentsv1alpha1.ActionTypeTransfer
			a.Spec.TransferTo = "+1415555010012345"
		}, "transferTo must be an E.164 phone number such as +14155550100"},
		{"header name not a token", func(a *agentsv1alpha1.AgentAction) {
			a.Spec.CustomHeaders = []agentsv1alpha1.CustomHeader{{Key: "Bad Header:", Value: ptrTo("v")}}
		}, "customHeaders key must be a valid HTTP header name"},
		{"header name with a colon", func(a *agentsv1alpha1.AgentAction) {
			a.Spec.CustomHeaders = []agentsv1alpha1.CustomHeader{{Key: "X-Key", Value: ptrTo("v")}, {Key: "X:Key", Value: ptrTo("v")}}
		}, `spec.customHeaders[1].key: Invalid value: "X:Key": customHeaders key must be a valid HTTP header name`},
		{"header with value and valueFrom", func(a *agentsv1alpha1.AgentAction) {
			a.Spec.CustomHeaders = []agentsv1alpha1.CustomHeader{{Key: "X-Key", Value: ptrTo("v"),
				ValueFrom: &agentsv1alpha1.HeaderValueSource{SecretKeyRef: agentsv1alpha1.SecretKeySelector{Name: "s", Key: "k"}}}}
		}, "set exactly one of value or valueFrom"},
		{"header with neither", func(a *agentsv1alpha1.AgentAction) {
			a.Spec.CustomHeaders = []agentsv1alpha1.CustomHeader{{Key: "X-Key"}}
		}, "set exactly one of value or valueFrom"},
		{"unknown type", func(a *agentsv1alpha1.AgentAction) { a.Spec.Type = "sms" }, `supported values: "webhook", "transfer", "hold", "external"`},
		{"name too long", func(a *agentsv1alpha1.AgentAction) { a.Spec.Name = string(make([]byte, 256)) }, "spec.name"},
		{"empty agentId", func(a *agentsv1alpha1.AgentAction) { a.Spec.AgentID = "" }, "spec.agentId"},
		{"blank agentId", func(a *agentsv1alpha1.AgentAction) { a.Spec.AgentID = "  " }, "agentId must not be blank"},
		{"blank nodeId", func(a *agentsv1alpha1.AgentAction) { a.Spec.NodeID = " " }, "nodeId must not be blank"},
		{"blank name", func(a *agentsv1alpha1.AgentAction) { a.Spec.Name = " \t" }, "name must not be blank: the API treats a value of only spaces as missing"},
		{"blank description", func(a *agentsv1alpha1.AgentAction) { a.Spec.Description = "\n " }, "description must not be blank"},
		{"blank input name", func(a *agentsv1alpha1.AgentAction) {
			a.Spec.Inputs = []agentsv1alpha1.ActionInput{{Name: "  ", Type: "string"}}
		}, "inputs name must not be blank"},
		{"unknown deletionPolicy", func(a *agentsv1alpha1.AgentAction) { a.Spec.DeletionPolicy = "Keep" }, `supported values: "Delete", "Orphan"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			a := valid()
			tt.mutate(a)
			err := k8sClient.Create(ctx, a)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(tt.message))
		})
	}

	t.Run("valid manifest is accepted and ids are immutable", func(t *testing.T) {
		g := NewWithT(t)
		a := valid()
		a.Annotations = map[string]string{agentsv1alpha1.PausedAnnotation: "true"}
		g.Expect(k8sClient.Create(ctx, a)).To(Succeed())
		for patch, message := range map[string]string{
			`{"spec":{"nodeId":"node-2"}}`:   "nodeId is immutable: create a new AgentAction for another node",
			`{"spec":{"agentId":"agent-2"}}`: "agentId is immutable: create a new AgentAction for another agent",
		} {
			err := k8sClient.Patch(ctx, a, client.RawPatch(types.MergePatchType, []byte(patch)))
			g.Expect(err).To(MatchError(ContainSubstring(message)), patch)
		}
	})

	t.Run("valid header names and transfer numbers are accepted", func(t *testing.T) {
		g := NewWithT(t)
		a := valid()
		a.Annotations = map[string]string{agentsv1alpha1.PausedAnnotation: "true"}
		a.Spec.CustomHeaders = []agentsv1alpha1.CustomHeader{
			{Key: "X-Api-Key", Value: ptrTo("v")},
			{Key: "!#$%&'*+-.^_`|~09azAZ", Value: ptrTo("v")},
		}
		g.Expect(k8sClient.Create(ctx, a)).To(Succeed())
		for _, number := range []string{"+12", "+14155550100", "+999999999999999"} {
			tr := valid()
			tr.Annotations = map[string]string{agentsv1alpha1.PausedAnnotation: "true"}
			tr.Spec.Type, tr.Spec.URL, tr.Spec.TransferTo = agentsv1alpha1.ActionTypeTransfer, "", number
			g.Expect(k8sClient.Create(ctx, tr)).To(Succeed(), number)
		}
	})

	t.Run("environment driftCheckInterval is 0 or 1s to 24h, a duration the operator can parse", func(t *testing.T) {
		for interval, ok := range map[string]bool{
			"0":        true,
			"0s":       true,
			"1s":       true,
			"10m":      true,
			"1h30m":    true,
			"24h":      true,
			"500ms":    false,
			"24h1s":    false,
			"9999999h": false, // accepted by the pattern, but too long for Go: it would break the informer
			"10":       false,
		} {
			env := &agentsv1alpha1.Environment{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "env-"},
				Spec:       agentsv1alpha1.EnvironmentSpec{TokenSecretRef: agentsv1alpha1.TokenSecretReference{Name: "token"}},
			}
			raw := &unstructured.Unstructured{}
			content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(env)
			NewWithT(t).Expect(err).NotTo(HaveOccurred())
			raw.SetUnstructuredContent(content)
			raw.SetGroupVersionKind(agentsv1alpha1.GroupVersion.WithKind("Environment"))
			NewWithT(t).Expect(unstructured.SetNestedField(raw.Object, interval, "spec", "driftCheckInterval")).To(Succeed())
			err = k8sClient.Create(ctx, raw)
			if ok {
				NewWithT(t).Expect(err).NotTo(HaveOccurred(), interval)
			} else {
				NewWithT(t).Expect(err).To(HaveOccurred(), interval)
			}
		}
	})

	t.Run("environment apiURL must be https except loopback and in-cluster", func(t *testing.T) {
		for url, ok := range map[string]bool{
			"https://app.talkover.ai/api/v1":                     true,
			"http://127.0.0.1:8089/api/v1":                       true,
			"http://localhost:8089/api/v1":                       true,
			"http://talkover-sim.tools.svc:8080/api/v1":          true,
			"http://talkover-sim.tools.svc.cluster.local/api/v1": true,
			"http://127.0.0.53/api/v1":                           true,
			"http://app.talkover.ai/api/v1":                      false,
			"http://127.0.0.1.attacker.example/api/v1":           false,
			"http://127.evil.example/api/v1":                     false,
			"not a url":                                          false,
		} {
			env := &agentsv1alpha1.Environment{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "env-"},
				Spec: agentsv1alpha1.EnvironmentSpec{APIURL: url,
					TokenSecretRef: agentsv1alpha1.TokenSecretReference{Name: "token"}},
			}
			err := k8sClient.Create(ctx, env)
			if ok {
				NewWithT(t).Expect(err).NotTo(HaveOccurred(), url)
			} else {
				NewWithT(t).Expect(err).To(MatchError(ContainSubstring("apiURL must be an https URL")), url)
			}
		}
	})
}
