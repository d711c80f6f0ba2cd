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
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// jsonEqual reports whether a and b are semantically equal JSON documents.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("unmarshal %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func ptr[T any](v T) *T { return &v }

// The three request bodies of create-update-action.md, verbatim.
const (
	docRequest1 = `{
      "node_id": "action-node-456",
      "name": "Schedule Meeting",
      "description": "Schedule a meeting with the customer",
      "type": "webhook",
      "inputs": [
        {
          "name": "date",
          "type": "string",
          "required": true,
          "description": "Meeting date"
        },
        {
          "name": "time",
          "type": "string",
          "required": true,
          "description": "Meeting time"
        }
      ],
      "integration": {
        "id": "integration-uuid"
      },
      "url": "https://api.example.com/schedule",
      "authorization_url": "https://api.example.com/auth",
      "current_status": "active"
    }`
	docRequest2 = `{
      "node_id": "action-node-789",
      "name": "Transfer Call",
      "description": "Transfer the call to a human agent",
      "type": "transfer",
      "inputs": [
        {
          "name": "transfer_to",
          "type": "string",
          "required": true,
          "description": "Transfer to",
          "value": "+1234567890"
        }
      ],
      "transfer_to": "+1234567890",
      "current_status": "active"
    }`
	docRequest3 = `{
      "node_id": "action-node-101",
      "name": "Put Call on Hold",
      "description": "Put the current call on hold for a specified duration",
      "type": "hold",
      "inputs": [
        {
          "name": "hold_duration",
          "type": "integer",
          "required": true,
          "description": "Hold duration in seconds",
          "value": 30
        }
      ],
      "hold_duration": 30,
      "current_status": "active"
    }`
	docSuccessResponse = `{
    "success": true,
    "message": "Agent action updated successfully",
    "data": {
      "id": "action-uuid-1",
      "name": "Schedule Meeting",
      "label": "Schedule Meeting",
      "description": "Schedule a meeting with the customer",
      "type": "webhook",
      "input_schema": [
        {
          "name": "date",
          "type": "string",
          "required": true,
          "description": "Meeting date"
        },
        {
          "name": "time",
          "type": "string",
          "required": true,
          "description": "Meeting time"
        }
      ],
      "config": null,
      "action_trigger": null,
      "url": "https://api.example.com/schedule",
      "authorization_url": "https://api.example.com/auth",
      "current_status": "active",
      "created_at": "2024-01-15T10:30:00Z",
      "updated_at": "2024-01-15T12:30:00Z"
    }
  }`
)

func docActionRequest1() ActionRequest {
	return ActionRequest{
		NodeID:      "action-node-456",
		Name:        "Schedule Meeting",
		Description: "Schedule a meeting with the customer",
		Type:        ActionTypeWebhook,
		Inputs: []Input{
			{Name: "date", Type: "string", Required: ptr(true), Description: "Meeting date"},
			{Name: "time", Type: "string", Required: ptr(true), Description: "Meeting time"},
		},
		Integration:      &Integration{ID: "integration-uuid"},
		URL:              "https://api.example.com/schedule",
		AuthorizationURL: "https://api.example.com/auth",
		CurrentStatus:    ActionStatusActive,
	}
}

func docActionRequest2() ActionRequest {
	return ActionRequest{
		NodeID:      "action-node-789",
		Name:        "Transfer Call",
		Description: "Transfer the call to a human agent",
		Type:        ActionTypeTransfer,
		Inputs: []Input{{
			Name: "transfer_to", Type: "string", Required: ptr(true),
			Description: "Transfer to", Value: json.RawMessage(`"+1234567890"`),
		}},
		TransferTo:    "+1234567890",
		CurrentStatus: ActionStatusActive,
	}
}

func docActionRequest3() ActionRequest {
	return ActionRequest{
		NodeID:      "action-node-101",
		Name:        "Put Call on Hold",
		Description: "Put the current call on hold for a specified duration",
		Type:        ActionTypeHold,
		Inputs: []Input{{
			Name: "hold_duration", Type: "integer", Required: ptr(true),
			Description: "Hold duration in seconds", Value: json.RawMessage(`30`),
		}},
		HoldDuration:  ptr(int64(30)),
		CurrentStatus: ActionStatusActive,
	}
}

// docExample is one example request of create-update-action.md: the
// ActionRequest that expresses it and its documented JSON body.
type docExample struct {
	name string
	req  ActionRequest
	want string
}

func docExamples() []docExample {
	return []docExample{
		{name: "request 1: webhook action", req: docActionRequest1(), want: docRequest1},
		{name: "request 2: transfer action", req: docActionRequest2(), want: docRequest2},
		{name: "request 3: hold action", req: docActionRequest3(), want: docRequest3},
	}
}

// jsonDiff compares two JSON documents semantically (both are decoded into
// any) and returns one line per difference, each naming its path; "" means
// equal.
func jsonDiff(t *testing.T, got, want []byte) string {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("unmarshal %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("unmarshal %s: %v", want, err)
	}
	var diffs []string
	diffJSON("$", g, w, &diffs)
	return strings.Join(diffs, "\n")
}

func diffJSON(path string, got, want any, diffs *[]string) {
	switch w := want.(type) {
	case map[string]any:
		if g, ok := got.(map[string]any); ok {
			diffJSONObjects(path, g, w, diffs)
			return
		}
	case []any:
		if g, ok := got.([]any); ok {
			if len(g) != len(w) {
				*diffs = append(*diffs, fmt.Sprintf("%s: got %d elements, want %d", path, len(g), len(w)))
			}
			for i := range min(len(g), len(w)) {
				diffJSON(fmt.Sprintf("%s[%d]", path, i), g[i], w[i], diffs)
			}
			return
		}
	}
	if !reflect.DeepEqual(got, want) {
		*diffs = append(*diffs, fmt.Sprintf("%s: got %s, want %s", path, compactJSON(got), compactJSON(want)))
	}
}

func diffJSONObjects(path string, got, want map[string]any, diffs *[]string) {
	keys := make([]string, 0, len(got)+len(want))
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		g, inGot := got[k]
		w, inWant := want[k]
		switch {
		case !inGot:
			*diffs = append(*diffs, fmt.Sprintf("%s.%s: missing, want %s", path, k, compactJSON(w)))
		case !inWant:
			*diffs = append(*diffs, fmt.Sprintf("%s.%s: got %s, want no such field", path, k, compactJSON(g)))
		default:
			diffJSON(path+"."+k, g, w, diffs)
		}
	}
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

func TestJSONDiff(t *testing.T) {
	if diff := jsonDiff(t, []byte(`{"b":[1,{"c":"x"}],"a":30}`), []byte(` {"a":30.0, "b":[1, {"c":"x"}]}`)); diff != "" {
		t.Errorf("equal documents (key order, spacing, 30 vs 30.0) differ:\n%s", diff)
	}
	got := `{"name":"n","inputs":[{"value":"30"}],"url":"u","type":null}`
	want := `{"name":"n","inputs":[{"value":30},{"name":"x"}],"hold_duration":30,"type":"hold"}`
	wantDiff := strings.Join([]string{
		"$.hold_duration: missing, want 30",
		"$.inputs: got 1 elements, want 2",
		`$.inputs[0].value: got "30", want 30`,
		`$.type: got null, want "hold"`,
		`$.url: got "u", want no such field`,
	}, "\n")
	if diff := jsonDiff(t, []byte(got), []byte(want)); diff != wantDiff {
		t.Errorf("jsonDiff =\n%s\nwant\n%s", diff, wantDiff)
	}
}

func TestActionRequest_MarshalsDocExamples(t *testing.T) {
	for _, ex := range docExamples() {
		t.Run(ex.name, func(t *testing.T) {
			got, err := json.Marshal(ex.req)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if diff := jsonDiff(t, got, []byte(ex.want)); diff != "" {
				t.Errorf("body differs from the documented example:\n%s\n got: %s", diff, got)
			}
		})
	}
}

func TestActionRequest_OmitsUnsetOptionalFields(t *testing.T) {
	got, err := json.Marshal(ActionRequest{NodeID: "n", Name: "a", Description: "d", Type: ActionTypeExternal})
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	want := `{"node_id":"n","name":"a","description":"d","type":"external"}`
	if string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	got, err = json.Marshal(Input{Name: "x"})
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if string(got) != `{"name":"x"}` {
		t.Errorf("input: got %s", got)
	}
	// Zero values that are explicitly set through pointers are sent.
	got, _ = json.Marshal(ActionRequest{HoldDuration: ptr(int64(0)), Inputs: []Input{{Name: "x", Required: ptr(false)}}})
	for _, frag := range []string{`"hold_duration":0`, `"required":false`} {
		if !strings.Contains(string(got), frag) {
			t.Errorf("%s missing from %s", frag, got)
		}
	}
}

func TestActionRequest_AllOptionalFieldsUseDocumentedNames(t *testing.T) {
	req := ActionRequest{
		NodeID: "n", Name: "a", Description: "d", Type: ActionTypeWebhook,
		Inputs: []Input{{Name: "i"}}, Integration: &Integration{ID: "int"},
		URL: "https://u", AuthorizationURL: "https://a", AuthorizationScheme: AuthorizationSchemeBearer,
		CustomHeaders: []Header{{Key: "X-Key", Value: "v"}},
		SpeakOnSend:   "one moment", SpeakOnReceive: "done", ExecutionMode: ExecutionModeDuringCall,
		HoldDuration: ptr(int64(5)), TransferTo: "+1", CurrentStatus: ActionStatusInactive,
	}
	got, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	documented := []string{
		"node_id", "name", "description", "type", "inputs", "integration", "url", "authorization_url",
		"authorization_scheme", "custom_headers", "speak_on_send", "speak_on_receive", "execution_mode",
		"hold_duration", "transfer_to", "current_status",
	}
	if len(m) != len(documented) {
		t.Errorf("got %d fields, want %d: %s", len(m), len(documented), got)
	}
	for _, k := range documented {
		if _, ok := m[k]; !ok {
			t.Errorf("field %q missing from %s", k, got)
		}
	}
	if !strings.Contains(string(got), `"custom_headers":[{"key":"X-Key","value":"v"}]`) {
		t.Errorf("custom header value must still be sent: %s", got)
	}
}

func TestHeader_NeverPrintsValue(t *testing.T) {
	const secret = "s3cr3t-header-value"
	h := Header{Key: "X-Api-Key", Value: secret}
	req := ActionRequest{Name: "a", CustomHeaders: []Header{h, {Key: "B", Value: secret}}}
	values := map[string]any{"header": h, "*header": &h, "slice": req.CustomHeaders, "request": req, "*request": &req}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, secret) {
				t.Errorf("%s with %s leaks the value: %s", name, verb, out)
			}
			if !strings.Contains(out, "<redacted>") && verb != "%x" {
				t.Errorf("%s with %s: want <redacted> in %s", name, verb, out)
			}
		}
	}
	if got := fmt.Sprint(h); got != "X-Api-Key=<redacted>" {
		t.Errorf("Sprint = %q", got)
	}
	if got := h.GoString(); got != "X-Api-Key=<redacted>" {
		t.Errorf("GoString = %q", got)
	}
	logged, _ := json.Marshal(req.MarshalLog())
	if strings.Contains(string(logged), secret) || !strings.Contains(string(logged), "X-Api-Key") {
		t.Errorf("MarshalLog of the request: %s", logged)
	}
	logged, _ = json.Marshal(h.MarshalLog())
	if strings.Contains(string(logged), secret) {
		t.Errorf("MarshalLog of the header: %s", logged)
	}
	if req.CustomHeaders[0].Value != secret {
		t.Error("MarshalLog must not modify the request")
	}
}

func TestAction_DecodesDocResponse(t *testing.T) {
	var env struct {
		Data Action `json:"data"`
	}
	if err := json.Unmarshal([]byte(docSuccessResponse), &env); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	want := Action{
		ID: "action-uuid-1", Name: "Schedule Meeting", Label: "Schedule Meeting",
		Description: "Schedule a meeting with the customer", Type: ActionTypeWebhook,
		InputSchema: []Input{
			{Name: "date", Type: "string", Required: ptr(true), Description: "Meeting date"},
			{Name: "time", Type: "string", Required: ptr(true), Description: "Meeting time"},
		},
		URL: "https://api.example.com/schedule", AuthorizationURL: "https://api.example.com/auth",
		CurrentStatus: ActionStatusActive, CreatedAt: "2024-01-15T10:30:00Z", UpdatedAt: "2024-01-15T12:30:00Z",
	}
	if !reflect.DeepEqual(env.Data, want) {
		t.Errorf("got  %+v\nwant %+v", env.Data, want)
	}
}

func TestAction_NullsBecomeZero(t *testing.T) {
	var a Action
	in := `{"id":"x","url":null,"authorization_url":null,"config":{"a":1},"action_trigger":null,
		"input_schema":[{"name":"n","value":null},{"name":"m","value":"+1"}]}`
	if err := json.Unmarshal([]byte(in), &a); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if a.URL != "" || a.AuthorizationURL != "" || a.ActionTrigger != nil || a.InputSchema[0].Value != nil {
		t.Errorf("nulls not zeroed: %+v", a)
	}
	if string(a.Config) != `{"a":1}` || string(a.InputSchema[1].Value) != `"+1"` {
		t.Errorf("values lost: %+v", a)
	}
}
