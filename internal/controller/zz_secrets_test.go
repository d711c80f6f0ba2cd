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
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// The secrets check of the envtest suite. It does not depend on the order
// of the tests (nor on this file's name): TestMain starts a watch before
// m.Run and concludes after it, so -shuffle and -run are both fine.
//
//   - During the run, every version of every AgentAction, Environment and
//     ClusterEnvironment (status, annotations, labels) and every Event in
//     every namespace is scanned as the watch delivers it, so objects that a
//     test deletes in its cleanup (ClusterEnvironments, for instance) are
//     scanned too.
//   - After the run, with the manager stopped, the same objects are listed
//     once more (core and events.k8s.io Events), and every line the manager
//     logged, at every level, is scanned.
//
// Any of the suite's secrets, in clear or base64, fails the run. When the
// whole suite ran (no -run or -skip), the check also requires a floor of
// material (log lines of the paths that handle tokens, Events, statuses of
// each kind) so that it cannot pass by having looked at nothing; a subset
// run scans whatever the subset produced and prints what it saw.

// The distinctive secrets the suite uses: environment tokens and header
// values from Secrets.
const (
	wrongToken        = "talq_wrong_token_zq81VVx4kP"
	secretHeaderValue = "hdr-secret-Qm93Lk2xP0"
	secretHeaderV1    = "hdr-rotate-one-Zy7Ww3"
	secretHeaderV2    = "hdr-rotate-two-Kd5Pp9"
)

// suiteSecrets are the values that must never leave their Secrets.
func suiteSecrets() []string {
	return []string{testToken, wrongToken, secretHeaderValue, secretHeaderV1, secretHeaderV2}
}

// Markers of log lines that the full suite must produce: the paths where a
// token or a header value would be most likely to leak.
const (
	markerPushed   = " remote action" // "Created remote action", "Updated remote action"
	markerRejected = "The Talkover API rejected the request"
)

// The kinds of material the scanner counts (distinct objects).
const (
	matAgentActionsReady    = "AgentActions with a Ready condition"
	matAgentActionsUnauth   = "AgentActions with Ready=Unauthorized"
	matEnvironments         = "Environments with conditions"
	matClusterEnvironments  = "ClusterEnvironments with conditions"
	matPendingPublishes     = "(Cluster)Environments with status.pendingPublishes"
	matEvents               = "Events"
	matEventsAboutActions   = "Events about AgentActions"
	matUnauthorizedEvents   = "Unauthorized Events"
	matLogLines             = "manager log lines"
	matLogLinesPushed       = "log lines \"… remote action\""
	matLogLinesRejected     = "log lines \"" + markerRejected + "\""
	matLogCanary            = "canary log lines"
	matObjectVersionScanned = "object versions scanned"
)

// fullSuiteFloors is what the whole suite must have shown the scanner.
var fullSuiteFloors = []struct {
	material string
	min      int
}{
	{matLogCanary, 1},
	{matLogLines, 100},
	{matLogLinesPushed, 1},
	{matLogLinesRejected, 1},
	{matEvents, 1},
	{matEventsAboutActions, 1},
	{matUnauthorizedEvents, 1},
	{matAgentActionsReady, 1},
	{matAgentActionsUnauth, 1},
	{matEnvironments, 1},
	{matClusterEnvironments, 1},
	{matPendingPublishes, 1},
}

// subsetFloors is what any run must have shown: the logs were captured,
// through the logger the manager uses.
var subsetFloors = []struct {
	material string
	min      int
}{
	{matLogCanary, 1},
	{matLogLines, 1},
}

// secretForm is one way a secret could appear: in clear or encoded.
type secretForm struct {
	secret, text, how string
}

func secretForms(secrets []string) []secretForm {
	var forms []secretForm
	for _, s := range secrets {
		forms = append(forms, secretForm{secret: s, text: s, how: ""})
		// Unpadded: a prefix of the padded encoding, so it finds both.
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			e := enc.EncodeToString([]byte(s))
			if !slices.ContainsFunc(forms, func(f secretForm) bool { return f.text == e }) {
				forms = append(forms, secretForm{secret: s, text: e, how: "base64 of "})
			}
		}
	}
	return forms
}

// leakScanner looks for secrets in whatever it is shown, and counts the
// material it saw. It is safe for concurrent use.
type leakScanner struct {
	forms []secretForm

	mu       sync.Mutex
	findings []string
	reported map[string]bool
	objects  map[string]map[types.UID]bool
	counts   map[string]int
}

func newLeakScanner(secrets []string) *leakScanner {
	return &leakScanner{
		forms:    secretForms(secrets),
		reported: map[string]bool{},
		objects:  map[string]map[types.UID]bool{},
		counts:   map[string]int{},
	}
}

// redact replaces every secret form in text.
func (s *leakScanner) redact(text string) string {
	for _, f := range s.forms {
		text = strings.ReplaceAll(text, f.text, "<SECRET>")
	}
	return text
}

// check records a finding for every secret form in text. Callers hold mu.
func (s *leakScanner) check(text, where string) {
	for _, f := range s.forms {
		if !strings.Contains(text, f.text) {
			continue
		}
		key := f.text + "\x00" + where
		if s.reported[key] {
			continue
		}
		s.reported[key] = true
		s.findings = append(s.findings, fmt.Sprintf("%sa secret (%s…) appears in %s", f.how, f.secret[:6], where))
	}
}

func (s *leakScanner) saw(material string, uid types.UID) {
	if s.objects[material] == nil {
		s.objects[material] = map[types.UID]bool{}
	}
	s.objects[material][uid] = true
}

// owned is what the operator writes on its resources.
type owned struct {
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Status      any               `json:"status"`
}

func (s *leakScanner) scanJSON(v any, where string) {
	b, err := json.Marshal(v)
	if err != nil {
		s.findings = append(s.findings, fmt.Sprintf("cannot encode %s to scan it: %v", where, err))
		return
	}
	s.counts[matObjectVersionScanned]++
	s.check(string(b), where)
}

// observe scans one version of an object.
func (s *leakScanner) observe(obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch o := obj.(type) {
	case *agentsv1alpha1.AgentAction:
		where := fmt.Sprintf("the status or metadata of AgentAction %s/%s", o.Namespace, o.Name)
		s.scanJSON(owned{o.Annotations, o.Labels, o.Status}, where)
		if c := findCondition(o.Status.Conditions, agentsv1alpha1.ConditionReady); c != nil {
			s.saw(matAgentActionsReady, o.UID)
			if c.Reason == agentsv1alpha1.ReasonUnauthorized {
				s.saw(matAgentActionsUnauth, o.UID)
			}
		}
	case *agentsv1alpha1.Environment:
		where := fmt.Sprintf("the status or metadata of Environment %s/%s", o.Namespace, o.Name)
		s.scanJSON(owned{o.Annotations, o.Labels, o.Status}, where)
		if len(o.Status.Conditions) > 0 {
			s.saw(matEnvironments, o.UID)
		}
		if len(o.Status.PendingPublishes) > 0 {
			s.saw(matPendingPublishes, o.UID)
		}
	case *agentsv1alpha1.ClusterEnvironment:
		where := fmt.Sprintf("the status or metadata of ClusterEnvironment %s", o.Name)
		s.scanJSON(owned{o.Annotations, o.Labels, o.Status}, where)
		if len(o.Status.Conditions) > 0 {
			s.saw(matClusterEnvironments, o.UID)
		}
		if len(o.Status.PendingPublishes) > 0 {
			s.saw(matPendingPublishes, o.UID)
		}
	case *eventsv1.Event:
		s.scanJSON(o, fmt.Sprintf("Event %s/%s (%s about %s %s)", o.Namespace, o.Name, o.Reason, o.Regarding.Kind, o.Regarding.Name))
		s.sawEvent(o.UID, o.Regarding.Kind, o.Reason)
	case *corev1.Event:
		s.scanJSON(o, fmt.Sprintf("core Event %s/%s (%s about %s %s)", o.Namespace, o.Name, o.Reason, o.InvolvedObject.Kind, o.InvolvedObject.Name))
		s.sawEvent(o.UID, o.InvolvedObject.Kind, o.Reason)
	default:
		s.findings = append(s.findings, fmt.Sprintf("the scanner was shown a %T it does not know", obj))
	}
}

func (s *leakScanner) sawEvent(uid types.UID, kind, reason string) {
	s.saw(matEvents, uid)
	if kind == "AgentAction" {
		s.saw(matEventsAboutActions, uid)
	}
	if reason == agentsv1alpha1.ReasonUnauthorized {
		s.saw(matUnauthorizedEvents, uid)
	}
}

// scanLogs scans every log line; canary is a line the caller logged
// through the same logger right before.
func (s *leakScanner) scanLogs(logs, canary string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, line := range strings.Split(strings.TrimRight(logs, "\n"), "\n") {
		if line == "" {
			continue
		}
		s.counts[matLogLines]++
		if strings.Contains(line, markerPushed) {
			s.counts[matLogLinesPushed]++
		}
		if strings.Contains(line, markerRejected) {
			s.counts[matLogLinesRejected]++
		}
		if canary != "" && strings.Contains(line, canary) {
			s.counts[matLogCanary]++
		}
		before := len(s.findings)
		s.check(line, fmt.Sprintf("manager log line %d", i+1))
		if len(s.findings) > before {
			shown := s.redact(line)
			if len(shown) > 400 {
				shown = shown[:400] + "…"
			}
			s.findings[len(s.findings)-1] += ": " + shown
		}
	}
}

// count is how much of a material the scanner saw.
func (s *leakScanner) count(material string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if objs, ok := s.objects[material]; ok {
		return len(objs)
	}
	return s.counts[material]
}

// result returns the findings, and the floors that were not met.
func (s *leakScanner) result(floors []struct {
	material string
	min      int
}) (findings, shortfalls []string) {
	for _, f := range floors {
		if n := s.count(f.material); n < f.min {
			shortfalls = append(shortfalls, fmt.Sprintf("saw %d %s, want at least %d", n, f.material, f.min))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.findings), shortfalls
}

func (s *leakScanner) summary() string {
	materials := []string{matLogLines, matLogLinesPushed, matLogLinesRejected, matObjectVersionScanned,
		matAgentActionsReady, matAgentActionsUnauth, matEnvironments, matClusterEnvironments, matPendingPublishes,
		matEvents, matEventsAboutActions, matUnauthorizedEvents}
	parts := make([]string, 0, len(materials))
	for _, m := range materials {
		parts = append(parts, fmt.Sprintf("%d %s", s.count(m), m))
	}
	return strings.Join(parts, ", ")
}

// leakWatch feeds the suite's objects to a scanner while the tests run.
type leakWatch struct {
	scanner *leakScanner
	cancel  context.CancelFunc
	done    chan struct{}
}

// startLeakWatch watches AgentActions, Environments, ClusterEnvironments and
// Events in every namespace, and scans every version the watch delivers.
func startLeakWatch() (*leakWatch, error) {
	c, err := cache.New(restCfg, cache.Options{Scheme: testScheme})
	if err != nil {
		return nil, err
	}
	w := &leakWatch{scanner: newLeakScanner(suiteSecrets()), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.scanner.observe(obj) },
		UpdateFunc: func(_, obj any) { w.scanner.observe(obj) },
		DeleteFunc: func(obj any) { w.scanner.observe(obj) },
	}
	for _, obj := range []client.Object{
		&agentsv1alpha1.AgentAction{}, &agentsv1alpha1.Environment{}, &agentsv1alpha1.ClusterEnvironment{}, &eventsv1.Event{},
	} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			cancel()
			return nil, err
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			cancel()
			return nil, err
		}
	}
	go func() {
		defer close(w.done)
		if err := c.Start(ctx); err != nil {
			fmt.Println("secrets scan: the watch stopped:", err)
		}
	}()
	syncCtx, syncCancel := context.WithTimeout(ctx, timeout)
	defer syncCancel()
	if !c.WaitForCacheSync(syncCtx) {
		cancel()
		<-w.done
		return nil, fmt.Errorf("the secrets scan's watch did not sync")
	}
	return w, nil
}

// testFlag returns the value of a flag of the testing package.
func testFlag(name string) string {
	if f := flag.Lookup("test." + name); f != nil {
		return f.Value.String()
	}
	return ""
}

// conclude is called by TestMain after m.Run, with the manager stopped:
// it scans the objects left and the manager's logs, and returns whether the
// check passed, with a report to print.
func (w *leakWatch) conclude() (bool, string) {
	defer func() { w.cancel(); <-w.done }()
	if testFlag("list") != "" {
		return true, "" // no test ran
	}
	s := w.scanner
	var problems []string
	if err := w.scanLeftovers(); err != nil {
		problems = append(problems, err.Error())
	}

	// A canary through the manager's logger proves the scanned buffer is
	// where the manager's lines go.
	canary := fmt.Sprintf("secrets-scan-canary-%d", time.Now().UnixNano())
	logf.Log.WithName("secrets-scan").Info("Canary", "marker", canary)
	s.scanLogs(managerLogs.String(), canary)

	floors, mode := fullSuiteFloors, "whole suite"
	if testFlag("run") != "" || testFlag("skip") != "" {
		floors, mode = subsetFloors, "subset of the suite (-run/-skip): floors of material not required"
	}
	findings, shortfalls := s.result(floors)
	problems = append(problems, findings...)
	for _, sf := range shortfalls {
		problems = append(problems, "the check would be vacuous: "+sf)
	}
	if len(problems) == 0 {
		return true, fmt.Sprintf("secrets scan (%s): no secret found; scanned %s\n", mode, s.summary())
	}
	var b strings.Builder
	b.WriteString("--- FAIL: secrets scan (TestMain, after every test)\n")
	for _, p := range problems {
		b.WriteString("    " + p + "\n")
	}
	b.WriteString("    scanned (" + mode + "): " + s.summary() + "\n")
	return false, b.String()
}

// scanLeftovers scans what is left once more: the watch may not have
// delivered the last writes, and core Events are the same objects seen
// through another API.
func (w *leakWatch) scanLeftovers() error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, list := range []client.ObjectList{
		&agentsv1alpha1.AgentActionList{}, &agentsv1alpha1.EnvironmentList{}, &agentsv1alpha1.ClusterEnvironmentList{},
		&eventsv1.EventList{}, &corev1.EventList{},
	} {
		if err := k8sClient.List(ctx, list); err != nil {
			return fmt.Errorf("listing %T: %w", list, err)
		}
		items, err := apimeta.ExtractList(list)
		if err != nil {
			return err
		}
		for _, obj := range items {
			w.scanner.observe(obj)
		}
	}
	return nil
}

// TestSecretsScanner checks the scanner itself, without the control plane's
// state: it finds every secret, in clear and in base64, in every kind of
// place, counts material, and finds nothing in clean material.
func TestSecretsScanner(t *testing.T) {
	secrets := suiteSecrets()
	if len(secrets) != 5 {
		t.Fatalf("the suite has %d secrets, want 5", len(secrets))
	}
	for _, sec := range secrets {
		if len(sec) < 12 {
			t.Fatalf("secret %q is too short to be distinctive", sec)
		}
	}
	ready := []metav1.Condition{{Type: agentsv1alpha1.ConditionReady, Reason: agentsv1alpha1.ReasonUnauthorized}}

	clean := newLeakScanner(secrets)
	clean.observe(&agentsv1alpha1.AgentAction{ObjectMeta: metav1.ObjectMeta{UID: "a"},
		Status: agentsv1alpha1.AgentActionStatus{Conditions: ready}})
	clean.observe(&eventsv1.Event{ObjectMeta: metav1.ObjectMeta{UID: "e"}, Note: "all fine",
		Reason: agentsv1alpha1.ReasonUnauthorized, Regarding: corev1.ObjectReference{Kind: "AgentAction"}})
	clean.scanLogs("INFO\tCreated remote action\nINFO\tcanary-x\n", "canary-x")
	if f, _ := clean.result(nil); len(f) != 0 {
		t.Errorf("findings in clean material: %v", f)
	}
	for material, want := range map[string]int{matAgentActionsReady: 1, matAgentActionsUnauth: 1, matEvents: 1,
		matEventsAboutActions: 1, matUnauthorizedEvents: 1, matLogLines: 2, matLogLinesPushed: 1, matLogCanary: 1} {
		if got := clean.count(material); got != want {
			t.Errorf("count(%s) = %d, want %d", material, got, want)
		}
	}

	for _, sec := range secrets {
		for _, form := range []string{sec, base64.StdEncoding.EncodeToString([]byte(sec))} {
			places := map[string]func(*leakScanner){
				"AgentAction status": func(s *leakScanner) {
					s.observe(&agentsv1alpha1.AgentAction{Status: agentsv1alpha1.AgentActionStatus{
						Conditions: []metav1.Condition{{Message: "token " + form + " rejected"}}}})
				},
				"AgentAction annotation": func(s *leakScanner) {
					s.observe(&agentsv1alpha1.AgentAction{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"x": form}}})
				},
				"Environment status": func(s *leakScanner) {
					s.observe(&agentsv1alpha1.Environment{Status: agentsv1alpha1.EnvironmentStatus{
						Conditions: []metav1.Condition{{Message: form}}}})
				},
				"ClusterEnvironment pendingPublishes": func(s *leakScanner) {
					s.observe(&agentsv1alpha1.ClusterEnvironment{Status: agentsv1alpha1.EnvironmentStatus{
						PendingPublishes: []string{form}}})
				},
				"Event": func(s *leakScanner) { s.observe(&eventsv1.Event{Note: "x" + form + "y"}) },
				"core Event": func(s *leakScanner) {
					s.observe(toolscache.DeletedFinalStateUnknown{Obj: &corev1.Event{Message: form}})
				},
				"log line": func(s *leakScanner) { s.scanLogs("DEBUG\tsending\t{\"auth\": \"Bearer "+form+"\"}\n", "") },
			}
			for place, show := range places {
				s := newLeakScanner(secrets)
				show(s)
				if f, _ := s.result(nil); len(f) != 1 {
					t.Errorf("secret %s… as %q in a %s: findings %v, want one", sec[:6], form, place, f)
				} else if strings.Contains(f[0], sec) || strings.Contains(f[0], form) {
					t.Errorf("the finding repeats the secret: %s", f[0])
				}
			}
		}
	}
}
