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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

// headerValues maps a custom header's key to its value read from a Secret.
type headerValues map[string]string

// buildRequest turns an AgentAction's spec into the request body of
// POST /agents/{agent_id}/actions. Unset fields stay unset, so the API applies
// its own defaults. Header values from Secrets come from secretValues.
func buildRequest(spec *agentsv1alpha1.AgentActionSpec, secretValues headerValues) (talkover.ActionRequest, error) {
	req := talkover.ActionRequest{
		NodeID:              spec.NodeID,
		Name:                spec.Name,
		Description:         spec.Description,
		Type:                string(spec.Type),
		URL:                 spec.URL,
		AuthorizationURL:    spec.AuthorizationURL,
		AuthorizationScheme: string(spec.AuthorizationScheme),
		SpeakOnSend:         spec.SpeakOnSend,
		SpeakOnReceive:      spec.SpeakOnReceive,
		ExecutionMode:       string(spec.ExecutionMode),
		TransferTo:          spec.TransferTo,
		CurrentStatus:       string(spec.CurrentStatus),
	}
	if spec.Integration != nil {
		req.Integration = &talkover.Integration{ID: spec.Integration.ID}
	}
	if spec.HoldDuration != nil {
		d := int64(*spec.HoldDuration)
		req.HoldDuration = &d
	}
	for _, in := range spec.Inputs {
		item := talkover.Input{Name: in.Name, Type: in.Type, Description: in.Description, Required: in.Required}
		if in.Value != nil && len(in.Value.Raw) > 0 {
			item.Value = json.RawMessage(in.Value.Raw)
		}
		req.Inputs = append(req.Inputs, item)
	}
	for _, h := range spec.CustomHeaders {
		switch {
		case h.Value != nil:
			req.CustomHeaders = append(req.CustomHeaders, talkover.Header{Key: h.Key, Value: *h.Value})
		case h.ValueFrom != nil:
			v, ok := secretValues[h.Key]
			if !ok {
				return talkover.ActionRequest{}, fmt.Errorf("customHeaders[%s]: value from Secret %q not resolved", h.Key, h.ValueFrom.SecretKeyRef.Name)
			}
			req.CustomHeaders = append(req.CustomHeaders, talkover.Header{Key: h.Key, Value: v})
		default:
			return talkover.ActionRequest{}, fmt.Errorf("customHeaders[%s]: set value or valueFrom", h.Key)
		}
	}
	return req, nil
}

// payloadHash is a salted hash of everything that decides the remote
// action: the API URL, the agent and the request body (with Secret values).
// The salt (the object's UID) keeps equal header values from giving equal
// hashes across objects. Only the hash is ever stored.
func payloadHash(salt, apiURL, agentID string, req talkover.ActionRequest) (string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("encoding the request: %w", err)
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(salt), []byte(apiURL), []byte(agentID), body} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
