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

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/talkover/talkover-operator/internal/apisim"
	"github.com/talkover/talkover-operator/test/utils"
)

const (
	waitTimeout  = 60 * time.Second
	pollInterval = 200 * time.Millisecond
)

// The three requests of the Create/Update Action documentation, as the
// simulator must have received them from the samples. Fields the samples
// leave unset are stored with the API's documented defaults.
func docActions(agentID string) map[string]apisim.Action {
	yes := true
	hold := int64(30)
	return map[string]apisim.Action{
		"action-node-456": {
			AgentID: agentID, NodeID: "action-node-456", Name: "Schedule Meeting",
			Description: "Schedule a meeting with the customer", Type: "webhook",
			Inputs: []apisim.Input{
				{Name: "date", Type: "string", Required: &yes, Description: "Meeting date"},
				{Name: "time", Type: "string", Required: &yes, Description: "Meeting time"},
			},
			IntegrationID: "integration-uuid", URL: "https://api.example.com/schedule",
			AuthorizationURL: "https://api.example.com/auth", AuthorizationScheme: "none",
			ExecutionMode: "during_call", CurrentStatus: "active",
		},
		"action-node-789": {
			AgentID: agentID, NodeID: "action-node-789", Name: "Transfer Call",
			Description: "Transfer the call to a human agent", Type: "transfer",
			Inputs: []apisim.Input{
				{Name: "transfer_to", Type: "string", Required: &yes, Description: "Transfer to", Value: json.RawMessage(`"+1234567890"`)},
			},
			TransferTo: "+1234567890", AuthorizationScheme: "none", ExecutionMode: "during_call", CurrentStatus: "active",
		},
		"action-node-101": {
			AgentID: agentID, NodeID: "action-node-101", Name: "Put Call on Hold",
			Description: "Put the current call on hold for a specified duration", Type: "hold",
			Inputs: []apisim.Input{
				{Name: "hold_duration", Type: "integer", Required: &yes, Description: "Hold duration in seconds", Value: json.RawMessage(`30`)},
			},
			HoldDuration: &hold, AuthorizationScheme: "none", ExecutionMode: "during_call", CurrentStatus: "active",
		},
	}
}

// normalized clears what the server decides (ID, label, timestamps) and
// compacts input values, so an action can be compared with docActions.
func normalized(a apisim.Action) apisim.Action {
	a.ID, a.Label = "", ""
	a.CreatedAt, a.UpdatedAt = time.Time{}, time.Time{}
	for i, in := range a.Inputs {
		if len(in.Value) > 0 {
			var buf bytes.Buffer
			if err := json.Compact(&buf, in.Value); err == nil {
				a.Inputs[i].Value = buf.Bytes()
			}
		}
	}
	return a
}

// TestOperator runs the operator as a user does. The steps share one
// control plane and build on each other, in order.
func TestOperator(t *testing.T) {
	start := time.Now()
	s := newSuite(t)
	t.Logf("set up in %s: CRDs and RBAC from %s; manager runs as system:serviceaccount:%s:%s",
		time.Since(start).Round(time.Millisecond), s.source, s.saNamespace, s.saName)

	if !t.Run("samples become Ready", s.testSamplesReady) {
		t.FailNow()
	}
	t.Run("edit with kubectl apply", s.testEdit)
	t.Run("delete releases the finalizer", s.testDelete)
	t.Run("kubectl explain", s.testExplain)
	t.Run("printer columns", s.testPrinterColumns)
	t.Run("CEL rejects a webhook without url", s.testCEL)
	t.Run("server-side apply is stable", s.testServerSideApply)
	t.Run("metrics as a metrics-reader", s.testMetrics)
	t.Run("no RBAC denial in the manager's log", s.testNoDenials)
	t.Run("chart and installer apply with a server-side dry-run", s.testManifestsDryRun)
	t.Logf("done in %s", time.Since(start).Round(time.Millisecond))
}

// testSamplesReady applies config/samples/ and checks what the simulator
// received.
func (s *suite) testSamplesReady(t *testing.T) {
	g := NewWithT(t)
	s.mustKubectl(t, "apply", "-n", samplesNamespace, "-f", s.samples)
	s.mustKubectl(t, "wait", "-n", samplesNamespace, "--for=condition=Ready", "agentaction", "--all", "--timeout=60s")

	want := docActions(s.agentID)
	got := s.sim.Actions(s.agentID)
	g.Expect(got).To(HaveLen(len(want)), "the simulator's actions")
	for _, a := range got {
		g.Expect(a.ID).NotTo(BeEmpty())
		g.Expect(normalized(a)).To(Equal(want[a.NodeID]), "the action with node_id %q", a.NodeID)
	}
	g.Expect(s.sim.Count(apisim.RouteUpsert)).To(Equal(3), "one POST per sample")

	// Each AgentAction records the ID the API gave its action.
	for _, name := range []string{"schedule-meeting", "transfer-call", "put-call-on-hold"} {
		obj := s.get(t, name)
		id, _, _ := unstructured.NestedString(obj.Object, "status", "id")
		nodeID, _, _ := unstructured.NestedString(obj.Object, "spec", "nodeId")
		remote, ok := s.sim.ActionByNodeID(s.agentID, nodeID)
		g.Expect(ok).To(BeTrue(), "the remote action of %s", name)
		g.Expect(id).To(Equal(remote.ID), "status.id of %s", name)
		g.Expect(obj.GetFinalizers()).To(ContainElement("agents.talkover.ai/finalizer"))
	}
}

// testEdit changes a description with kubectl apply: exactly one more POST.
func (s *suite) testEdit(t *testing.T) {
	g := NewWithT(t)
	before := s.sim.Count(apisim.RouteUpsert)
	old, ok := s.sim.ActionByNodeID(s.agentID, "action-node-456")
	g.Expect(ok).To(BeTrue())

	obj := s.readSample(t, "agents_v1alpha1_agentaction_webhook.yaml")
	const description = "Schedule a meeting with the customer, in their time zone"
	g.Expect(unstructured.SetNestedField(obj.Object, description, "spec", "description")).To(Succeed())
	path := s.writeJSON(t, "edit/schedule-meeting.json", obj.Object)
	s.mustKubectl(t, "apply", "-n", samplesNamespace, "-f", path)

	g.Eventually(func(g Gomega) {
		a := s.get(t, "schedule-meeting")
		g.Expect(a.GetGeneration()).To(BeNumerically("==", 2))
		g.Expect(readyFor(a)).To(BeTrue(), "Ready for generation %d", a.GetGeneration())
		remote, ok := s.sim.ActionByNodeID(s.agentID, "action-node-456")
		g.Expect(ok).To(BeTrue())
		g.Expect(remote.Description).To(Equal(description))
		g.Expect(remote.ID).To(Equal(old.ID), "the same remote action is updated")
	}, waitTimeout, pollInterval).Should(Succeed())
	g.Consistently(func() int { return s.sim.Count(apisim.RouteUpsert) }, 3*time.Second, pollInterval).
		Should(Equal(before+1), "exactly one more POST")
	g.Expect(s.sim.Actions(s.agentID)).To(HaveLen(3))
}

// testDelete deletes an AgentAction: the remote action goes, then the
// object (the finalizer is released).
func (s *suite) testDelete(t *testing.T) {
	g := NewWithT(t)
	before := s.sim.Count(apisim.RouteDelete)
	_, ok := s.sim.ActionByNodeID(s.agentID, "action-node-789")
	g.Expect(ok).To(BeTrue())

	// kubectl delete waits until the object is gone.
	s.mustKubectl(t, "delete", "-n", samplesNamespace, "agentaction", "transfer-call", "--timeout=60s")
	_, stderr, err := s.kubectlIn(nil, "get", "-n", samplesNamespace, "agentaction", "transfer-call")
	g.Expect(err).To(HaveOccurred())
	g.Expect(stderr).To(ContainSubstring("NotFound"))
	_, ok = s.sim.ActionByNodeID(s.agentID, "action-node-789")
	g.Expect(ok).To(BeFalse(), "the remote action is deleted")
	g.Expect(s.sim.Count(apisim.RouteDelete)).To(Equal(before + 1))
	g.Expect(s.sim.Actions(s.agentID)).To(HaveLen(2))
}

// testExplain checks that the CRD's field documentation is published.
func (s *suite) testExplain(t *testing.T) {
	g := NewWithT(t)
	g.Eventually(func(g Gomega) {
		out, stderr, err := s.kubectlIn(nil, "explain", "agentaction.spec.transferTo")
		g.Expect(err).NotTo(HaveOccurred(), stderr)
		g.Expect(out).To(ContainSubstring("E.164"))
	}, waitTimeout, time.Second).Should(Succeed())
}

// testPrinterColumns checks the columns of kubectl get.
func (s *suite) testPrinterColumns(t *testing.T) {
	g := NewWithT(t)
	out := s.mustKubectl(t, "get", "-n", samplesNamespace, "agentactions")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	g.Expect(strings.Fields(lines[0])).To(Equal([]string{"NAME", "AGENT", "TYPE", "REMOTE-ID", "READY", "REASON", "AGE"}))
	g.Expect(lines).To(HaveLen(3), "a header and the two remaining samples:\n%s", out)
	for _, line := range lines[1:] {
		fields := strings.Fields(line)
		g.Expect(fields).To(HaveLen(7), line)
		g.Expect(fields[1]).To(Equal(s.agentID))
		g.Expect(fields[3]).To(MatchRegexp(`^[0-9a-f-]{36}$`))
		g.Expect(fields[4:6]).To(Equal([]string{"True", "Synced"}))
	}
}

// testCEL checks that kubectl apply of a webhook without url is refused
// with the CRD's message.
func (s *suite) testCEL(t *testing.T) {
	g := NewWithT(t)
	manifest := []byte(`apiVersion: agents.talkover.ai/v1alpha1
kind: AgentAction
metadata:
  name: webhook-without-url
spec:
  environmentRef:
    name: production
  agentId: ` + s.agentID + `
  nodeId: action-node-999
  name: Broken Webhook
  description: A webhook with nowhere to call
  type: webhook
`)
	out, stderr, err := s.kubectlIn(manifest, "apply", "-n", samplesNamespace, "-f", "-")
	g.Expect(err).To(HaveOccurred(), "kubectl apply accepted it: %s", out)
	g.Expect(stderr).To(ContainSubstring("url is required when type is webhook"))
	_, _, err = s.kubectlIn(nil, "get", "-n", samplesNamespace, "agentaction", "webhook-without-url")
	g.Expect(err).To(HaveOccurred(), "the invalid AgentAction exists")
}

// testServerSideApply applies a reconciled sample twice with server-side
// apply: neither apply changes its generation or spec, and the second is a
// no-op.
func (s *suite) testServerSideApply(t *testing.T) {
	g := NewWithT(t)
	path := filepath.Join(s.samples, "agents_v1alpha1_agentaction_hold.yaml")
	before := s.get(t, "put-call-on-hold")
	g.Expect(readyFor(before)).To(BeTrue())
	posts := s.sim.Count(apisim.RouteUpsert)

	var rv string
	for i := 1; i <= 2; i++ {
		s.mustKubectl(t, "apply", "--server-side", "-n", samplesNamespace, "-f", path)
		after := s.get(t, "put-call-on-hold")
		g.Expect(after.GetGeneration()).To(Equal(before.GetGeneration()), "generation after apply %d", i)
		g.Expect(after.Object["spec"]).To(Equal(before.Object["spec"]), "spec after apply %d", i)
		if i == 2 {
			g.Expect(after.GetResourceVersion()).To(Equal(rv), "the second apply is a no-op")
		}
		rv = after.GetResourceVersion()
	}
	g.Consistently(func() int { return s.sim.Count(apisim.RouteUpsert) }, 2*time.Second, pollInterval).
		Should(Equal(posts), "no POST for an unchanged spec")
}

// testMetrics scrapes the manager's metrics with the token of a
// ServiceAccount bound to the chart's metrics-reader ClusterRole: the
// manager must be allowed to review the token and the access.
func (s *suite) testMetrics(t *testing.T) {
	if s.metricsAddr == "" {
		t.Skipf("the Deployment of %s serves no metrics", s.source)
	}
	if s.metricsReader == "" {
		t.Fatalf("%s serves metrics but has no metrics-reader ClusterRole", s.source)
	}
	g := NewWithT(t)
	scheme := "https"
	for _, a := range s.deploymentArgs {
		if a == "--metrics-secure=false" {
			scheme = "http"
		}
	}
	url := scheme + "://" + s.metricsAddr + "/metrics"
	s.mustKubectl(t, "create", "serviceaccount", "-n", samplesNamespace, "scraper")
	s.mustKubectl(t, "create", "clusterrolebinding", "e2e-scraper", "--clusterrole="+s.metricsReader,
		"--serviceaccount="+samplesNamespace+":scraper")
	token := strings.TrimSpace(s.mustKubectl(t, "create", "token", "-n", samplesNamespace, "scraper"))

	httpClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the manager's self-signed certificate
	}}
	scrape := func(token string) (int, string, error) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if err != nil {
			return 0, "", err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	g.Eventually(func(g Gomega) {
		code, body, err := scrape(token)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusOK), body)
		g.Expect(body).To(ContainSubstring("controller_runtime_reconcile_total"))
	}, 30*time.Second, 500*time.Millisecond).Should(Succeed())
	if scheme == "https" {
		code, body, err := scrape("")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusUnauthorized), "an anonymous scrape: %s", body)
	}
}

// testNoDenials fails when the manager was refused anything: a permission
// the chart misses shows up there even when nothing else fails (events,
// for example).
func (s *suite) testNoDenials(t *testing.T) {
	data, err := os.ReadFile(s.managerLog)
	if err != nil {
		t.Fatal(err)
	}
	var denials []string
	for _, line := range strings.Split(string(data), "\n") {
		// The API server's RBAC refusal: `... is forbidden: User "..." cannot ...`.
		if strings.Contains(line, "is forbidden: User") {
			if len(line) > 600 {
				line = line[:600] + "..."
			}
			denials = append(denials, line)
		}
	}
	if len(denials) > 0 {
		t.Errorf("the manager was refused something %d times, first:\n%s", len(denials), strings.Join(denials[:min(3, len(denials))], "\n"))
	}
}

// get reads an AgentAction of the samples' namespace with kubectl.
func (s *suite) get(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	out := s.mustKubectl(t, "get", "-n", samplesNamespace, "agentaction", name, "-o", "json")
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON([]byte(out)); err != nil {
		t.Fatalf("decoding AgentAction %s: %v", name, err)
	}
	return obj
}

// readSample decodes a file of the samples' copy.
func (s *suite) readSample(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	objs, err := utils.ReadObjects(filepath.Join(s.samples, name))
	if err != nil || len(objs) != 1 {
		t.Fatalf("reading sample %s: %v (%d objects)", name, err, len(objs))
	}
	return objs[0]
}

// writeJSON writes obj below the test's temporary folder and returns the
// path.
func (s *suite) writeJSON(t *testing.T, rel string, obj any) string {
	t.Helper()
	data, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.tmp, rel)
	if err := utils.WriteFile(path, data); err != nil {
		t.Fatal(err)
	}
	return path
}

// readyFor reports whether an AgentAction is Ready for its current
// generation.
func readyFor(obj *unstructured.Unstructured) bool {
	observed, _, _ := unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
	if observed != obj.GetGeneration() {
		return false
	}
	conditions, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conditions {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			return m["status"] == "True"
		}
	}
	return false
}
