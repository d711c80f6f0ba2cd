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

package apisim

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// validBody returns a valid webhook body with changes applied; a nil value
// deletes the field.
func validBody(t *testing.T, changes map[string]any) map[string]any {
	t.Helper()
	body := mustJSON(t, webhookBody)
	for k, v := range changes {
		if v == nil {
			delete(body, k)
			continue
		}
		body[k] = v
	}
	return body
}

func TestUpsert_Validation(t *testing.T) {
	tests := map[string]struct {
		changes   map[string]any
		wantField string
		wantMsg   string
	}{
		"node_id missing":             {map[string]any{"node_id": nil}, "node_id", "The node id field is required."},
		"node_id empty":               {map[string]any{"node_id": ""}, "node_id", "The node id field is required."},
		"node_id not a string":        {map[string]any{"node_id": 7}, "node_id", "The node id must be a string."},
		"name missing":                {map[string]any{"name": nil}, "name", "The name field is required."},
		"name blank":                  {map[string]any{"name": "   "}, "name", "The name field is required."},
		"name not a string":           {map[string]any{"name": 5}, "name", "The name must be a string."},
		"name 256 characters":         {map[string]any{"name": strings.Repeat("é", 256)}, "name", "The name may not be greater than 255 characters."},
		"description missing":         {map[string]any{"description": nil}, "description", "The description field is required."},
		"type missing":                {map[string]any{"type": nil}, "type", "The type field is required."},
		"type unknown":                {map[string]any{"type": "sms"}, "type", "The selected type is invalid."},
		"type wrong case":             {map[string]any{"type": "Webhook"}, "type", "The selected type is invalid."},
		"type not a string":           {map[string]any{"type": []any{"webhook"}}, "type", "The type must be a string."},
		"url not a URL":               {map[string]any{"url": "not a url"}, "url", "The url must be a valid URL."},
		"url relative":                {map[string]any{"url": "/schedule"}, "url", "The url must be a valid URL."},
		"url ftp":                     {map[string]any{"url": "ftp://api.example.com/x"}, "url", "The url must be a valid URL."},
		"url without host":            {map[string]any{"url": "https://"}, "url", "The url must be a valid URL."},
		"url not a string":            {map[string]any{"url": 42}, "url", "The url must be a valid URL."},
		"authorization_url invalid":   {map[string]any{"authorization_url": "auth"}, "authorization_url", "The authorization url must be a valid URL."},
		"authorization_scheme":        {map[string]any{"authorization_scheme": "oauth2"}, "authorization_scheme", "The selected authorization scheme is invalid."},
		"execution_mode unknown":      {map[string]any{"execution_mode": "later"}, "execution_mode", "The selected execution mode is invalid."},
		"post_call on webhook":        {map[string]any{"execution_mode": "post_call"}, "execution_mode", "The execution mode post_call is only valid for external actions."},
		"current_status unknown":      {map[string]any{"current_status": "paused"}, "current_status", "The selected current status is invalid."},
		"transfer_to without plus":    {map[string]any{"transfer_to": "1234567890"}, "transfer_to", "The transfer to format is invalid."},
		"transfer_to leading zero":    {map[string]any{"transfer_to": "+0123456"}, "transfer_to", "The transfer to format is invalid."},
		"transfer_to 16 digits":       {map[string]any{"transfer_to": "+1234567890123456"}, "transfer_to", "The transfer to format is invalid."},
		"transfer_to with spaces":     {map[string]any{"transfer_to": "+1 234 567 890"}, "transfer_to", "The transfer to format is invalid."},
		"hold_duration zero":          {map[string]any{"hold_duration": 0}, "hold_duration", "The hold duration must be at least 1."},
		"hold_duration negative":      {map[string]any{"hold_duration": -5}, "hold_duration", "The hold duration must be at least 1."},
		"hold_duration fraction":      {map[string]any{"hold_duration": 1.5}, "hold_duration", "The hold duration must be an integer."},
		"hold_duration string":        {map[string]any{"hold_duration": "30"}, "hold_duration", "The hold duration must be an integer."},
		"hold_duration bool":          {map[string]any{"hold_duration": true}, "hold_duration", "The hold duration must be an integer."},
		"custom header without key":   {map[string]any{"custom_headers": []any{map[string]any{"value": "v"}}}, "custom_headers.0.key", "The custom headers.0.key field is required."},
		"custom header value number":  {map[string]any{"custom_headers": []any{map[string]any{"key": "k", "value": 1}}}, "custom_headers.0.value", "The custom headers.0.value must be a string."},
		"custom_headers not an array": {map[string]any{"custom_headers": "X-A: b"}, "custom_headers", "The custom headers must be an array."},
		"custom header not an object": {map[string]any{"custom_headers": []any{"X-A"}}, "custom_headers.0", "The custom headers.0 must be an array."},
		"inputs not an array":         {map[string]any{"inputs": map[string]any{"name": "x"}}, "inputs", "The inputs must be an array."},
		"input without name":          {map[string]any{"inputs": []any{map[string]any{"type": "string"}}}, "inputs.0.name", "The inputs.0.name field is required."},
		"input required not a bool":   {map[string]any{"inputs": []any{map[string]any{"name": "a", "required": "yes"}}}, "inputs.0.required", "The inputs.0.required field must be true or false."},
		"integration not an object":   {map[string]any{"integration": "integration-uuid"}, "integration", "The integration must be an array."},
		"speak_on_send not a string":  {map[string]any{"speak_on_send": false}, "speak_on_send", "The speak on send must be a string."},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			r := f.upsert(validBody(t, tt.changes))
			expectFailure(t, r, http.StatusUnprocessableEntity, "The given data was invalid.")
			want := map[string]any{tt.wantField: []any{tt.wantMsg}}
			if !reflect.DeepEqual(r.body["errors"], want) {
				t.Errorf("errors = %v, want %v", r.body["errors"], want)
			}
			if n := len(f.s.Actions(agentID)); n != 0 {
				t.Errorf("invalid request stored %d actions", n)
			}
			if a, _ := f.s.Agent(agentID); a.Status != AgentPublished {
				t.Errorf("invalid request changed agent status to %q", a.Status)
			}
		})
	}
}

func TestUpsert_ValidEdgeCases(t *testing.T) {
	tests := map[string]map[string]any{
		"name of 255 characters": {"name": strings.Repeat("é", 255)},
		"post_call on external":  {"type": "external", "execution_mode": "post_call"},
		"hold_duration 1":        {"type": "hold", "hold_duration": 1},
		"null optional fields":   {"url": nil, "authorization_url": nil, "inputs": nil, "integration": nil},
		"empty url is unset":     {"url": ""},
		"shortest E.164":         {"type": "transfer", "transfer_to": "+12"},
		"http URL with port":     {"url": "http://localhost:8080/hook?x=1"},
		"every scheme value":     {"authorization_scheme": "api_key"},
		"inactive status":        {"current_status": "inactive"},
		"header with empty val":  {"custom_headers": []any{map[string]any{"key": "X-Empty", "value": ""}}},
	}
	for name, changes := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			expectStatus(t, f.upsert(validBody(t, changes)), http.StatusOK)
		})
	}
}

func TestUpsert_DocumentedValidationExample(t *testing.T) {
	f := newFixture(t)
	r := f.upsert(validBody(t, map[string]any{
		"name": nil, "type": "sms", "url": "nope", "authorization_url": "also nope",
	}))
	expectFailure(t, r, http.StatusUnprocessableEntity, "The given data was invalid.")
	want := mustJSON(t, `{
	  "name": ["The name field is required."],
	  "type": ["The selected type is invalid."],
	  "url": ["The url must be a valid URL."],
	  "authorization_url": ["The authorization url must be a valid URL."]
	}`)
	if !reflect.DeepEqual(r.body["errors"], want) {
		t.Errorf("errors = %v, want %v", r.body["errors"], want)
	}
	expectKeys(t, r.body, "success", "message", "errors")
}
