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
	"fmt"
	"regexp"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

// FuzzBuildRequest builds requests from arbitrary specs. It must never
// panic; a header from a Secret must be resolved to build; the body is
// valid JSON with the spec's identity. The hash, which is stored in the
// status, is a digest ("sha256:" and 64 hex digits, so it cannot carry a
// value), the same for the same inputs, and different when a header value
// or the salt changes (a rotated Secret is pushed again). The forms of the
// request that can be printed or logged do not depend on the header value.
func FuzzBuildRequest(f *testing.F) {
	f.Add("action-node-456", "Schedule Meeting", "webhook", "https://api.example.com/x", "X-Key", "hdr-secret-value", []byte(`"2024-01-01"`), int32(30))
	f.Add("n", "", "", "", "", "", []byte(`30`), int32(0))
	f.Add("n\x00", "\xff\xfe", "hold", "::", "K", "", []byte(`{"a":[1,2]}`), int32(-1))
	f.Add("n", "a", "webhook", "u", "K", "\xff", []byte(`not json`), int32(1))
	f.Fuzz(func(t *testing.T, nodeID, name, typ, url, headerKey, headerValue string, value []byte, hold int32) {
		spec := fuzzSpec(nodeID, name, typ, url, headerKey, value, &hold)
		if _, err := buildRequest(&spec, headerValues{}); err == nil {
			t.Fatalf("a header from a Secret that is not resolved must not build")
		}
		req := mustBuild(t, &spec, headerKey, headerValue)
		if req.NodeID != nodeID || *req.HoldDuration != int64(hold) {
			t.Fatalf("the request lost the spec's identity")
		}

		// What can be printed or logged is the same whatever the value.
		other := mustBuild(t, &spec, headerKey, headerValue+"-rotated")
		other.HoldDuration = req.HoldDuration // %v prints the pointer
		checkPrintedForms(t, req, other)
		checkHash(t, value, req, other, func() talkover.ActionRequest {
			return mustBuild(t, &spec, headerKey, headerValue)
		})
	})
}

// fuzzSpec returns the spec FuzzBuildRequest builds from: one input of
// value and one custom header, headerKey, whose value is from a Secret.
func fuzzSpec(nodeID, name, typ, url, headerKey string, value []byte, hold *int32) agentsv1alpha1.AgentActionSpec {
	return agentsv1alpha1.AgentActionSpec{
		AgentID: "agent", NodeID: nodeID, Name: name, Description: name, Type: agentsv1alpha1.ActionType(typ), URL: url,
		HoldDuration: hold,
		Inputs:       []agentsv1alpha1.ActionInput{{Name: "in", Value: &apiextensionsv1.JSON{Raw: value}}},
		CustomHeaders: []agentsv1alpha1.CustomHeader{
			{Key: headerKey, ValueFrom: &agentsv1alpha1.HeaderValueSource{SecretKeyRef: agentsv1alpha1.SecretKeySelector{Name: "s", Key: "k"}}},
		},
	}
}

// mustBuild builds the request of spec with the header key resolved to v,
// and fails t if it does not build.
func mustBuild(t *testing.T, spec *agentsv1alpha1.AgentActionSpec, key, v string) talkover.ActionRequest {
	t.Helper()
	req, err := buildRequest(spec, headerValues{key: v})
	if err != nil {
		t.Fatalf("a resolved header must build: %v", err)
	}
	return req
}

// checkPrintedForms fails t if a form of the request that can be printed
// or logged differs between req and other, which differ only in the header
// value.
func checkPrintedForms(t *testing.T, req, other talkover.ActionRequest) {
	t.Helper()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		if a, b := fmt.Sprintf(verb, req), fmt.Sprintf(verb, other); a != b {
			t.Fatalf("%s of the request depends on the header value:\n%s\n%s", verb, a, b)
		}
	}
	logA, errA := json.Marshal(req.MarshalLog())
	logB, errB := json.Marshal(other.MarshalLog())
	if !bytes.Equal(logA, logB) || fmt.Sprint(errA) != fmt.Sprint(errB) {
		t.Fatalf("the logged request depends on the header value:\n%s %v\n%s %v", logA, errA, logB, errB)
	}
}

// checkHash fails t unless the hash of req fails as that of other does,
// and only when an input value is not valid JSON; and, when it does not
// fail, unless the body is valid JSON and the hash is a sha256 digest,
// the same for an equal request (from again), and different for other's
// header value and for another salt.
func checkHash(t *testing.T, value []byte, req, other talkover.ActionRequest, again func() talkover.ActionRequest) {
	t.Helper()
	const salt, apiURL = "uid", "https://app.talkover.ai/api/v1"
	hash, err := payloadHash(salt, apiURL, "agent", req)
	_, errOther := payloadHash(salt, apiURL, "agent", other)
	if fmt.Sprint(err) != fmt.Sprint(errOther) {
		t.Fatalf("the hash error depends on the header value: %v / %v", err, errOther)
	}
	if err != nil {
		if json.Valid(value) {
			t.Fatalf("hashing a request with valid JSON values failed: %v", err)
		}
		return
	}
	body, err := json.Marshal(req)
	if err != nil || !json.Valid(body) {
		t.Fatalf("invalid body: %v", err)
	}
	if !hashFormat.MatchString(hash) {
		t.Fatalf("the hash %q is not a sha256 digest", hash)
	}
	rehash, err := payloadHash(salt, apiURL, "agent", again())
	if err != nil || rehash != hash {
		t.Fatalf("the hash of an equal request changed: %q, then %q (%v)", hash, rehash, err)
	}
	if rotated, _ := payloadHash(salt, apiURL, "agent", other); rotated == hash {
		t.Fatalf("a new header value keeps the hash %q: the rotation would not be pushed", hash)
	}
	if salted, _ := payloadHash("other-uid", apiURL, "agent", req); salted == hash {
		t.Fatalf("another salt keeps the hash %q", hash)
	}
}

// hashFormat is what payloadHash returns.
var hashFormat = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
