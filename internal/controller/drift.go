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
	"bytes"
	"encoding/json"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

// driftMissing is the drift reason of a remote action that no longer exists.
const driftMissing = "the remote action was deleted outside Kubernetes"

// compareRemote compares the fields the API returns with the spec, and
// says what differs ("" when nothing does).
func compareRemote(spec *agentsv1alpha1.AgentActionSpec, remote talkover.Action, found bool) string {
	if !found {
		return driftMissing
	}
	wantStatus := string(spec.CurrentStatus)
	if wantStatus == "" {
		wantStatus = "active"
	}
	diffs := []struct {
		field string
		same  bool
	}{
		{"name", remote.Name == spec.Name},
		{"description", remote.Description == spec.Description},
		{"type", remote.Type == string(spec.Type)},
		{"url", remote.URL == spec.URL},
		{"authorization_url", remote.AuthorizationURL == spec.AuthorizationURL},
		{"current_status", remote.CurrentStatus == wantStatus},
		{"input_schema", sameInputs(spec.Inputs, remote.InputSchema)},
	}
	for _, diff := range diffs {
		if !diff.same {
			return "the remote action's " + diff.field + " was changed outside Kubernetes"
		}
	}
	return ""
}

// sameInputs compares the spec's inputs with the API's input_schema.
func sameInputs(want []agentsv1alpha1.ActionInput, got []talkover.Input) bool {
	if len(want) != len(got) {
		return false
	}
	for i, w := range want {
		g := got[i]
		if w.Name != g.Name || w.Type != g.Type || w.Description != g.Description || !sameBool(w.Required, g.Required) {
			return false
		}
		var raw []byte
		if w.Value != nil {
			raw = w.Value.Raw
		}
		if !sameJSON(raw, g.Value) {
			return false
		}
	}
	return true
}

func sameBool(a, b *bool) bool {
	return (a == nil && (b == nil || !*b)) || (b == nil && !*a) || (a != nil && b != nil && *a == *b)
}

// sameJSON compares two JSON values semantically; empty means absent.
func sameJSON(a, b []byte) bool {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	if len(a) == 0 || len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return (len(a) == 0 || bytes.Equal(a, []byte("null"))) && (len(b) == 0 || bytes.Equal(b, []byte("null")))
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}
