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
	"encoding/json"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// FuzzBuildRequest builds requests from arbitrary specs: it must never
// panic, the body must be valid JSON with the spec's identity, and the hash
// must never contain a header value.
func FuzzBuildRequest(f *testing.F) {
	f.Add("action-node-456", "Schedule Meeting", "webhook", "https://api.example.com/x", "X-Key", "hdr-secret-value", []byte(`"2024-01-01"`), int32(30))
	f.Add("n", "", "", "", "", "", []byte(`30`), int32(0))
	f.Add("n\x00", "\xff\xfe", "hold", "::", "K", "", []byte(`{"a":[1,2]}`), int32(-1))
	f.Fuzz(func(t *testing.T, nodeID, name, typ, url, headerKey, headerValue string, value []byte, hold int32) {
		spec := agentsv1alpha1.AgentActionSpec{
			AgentID: "agent", NodeID: nodeID, Name: name, Description: name, Type: agentsv1alpha1.ActionType(typ), URL: url,
			HoldDuration: &hold,
			Inputs:       []agentsv1alpha1.ActionInput{{Name: "in", Value: &apiextensionsv1.JSON{Raw: value}}},
			CustomHeaders: []agentsv1alpha1.CustomHeader{
				{Key: headerKey, ValueFrom: &agentsv1alpha1.HeaderValueSource{SecretKeyRef: agentsv1alpha1.SecretKeySelector{Name: "s", Key: "k"}}},
			},
		}
		req, err := buildRequest(&spec, headerValues{headerKey: headerValue})
		if err != nil {
			t.Fatalf("a resolved header must build: %v", err)
		}
		hash, err := payloadHash("uid", "https://app.talkover.ai/api/v1", "agent", req)
		if err != nil {
			if json.Valid(value) {
				t.Fatalf("hashing a request with valid JSON values failed: %v", err)
			}
			return
		}
		if len(headerValue) >= 4 && strings.Contains(hash, headerValue) {
			t.Fatalf("the hash shows a header value")
		}
		if req.NodeID != nodeID || *req.HoldDuration != int64(hold) {
			t.Fatalf("the request lost the spec's identity")
		}
		body, err := json.Marshal(req)
		if err != nil || !json.Valid(body) {
			t.Fatalf("invalid body: %v", err)
		}
		_, _ = buildRequest(&spec, headerValues{})
	})
}
