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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxBodyBytes bounds a request body; larger bodies answer 413.
const maxBodyBytes = 1 << 20

// maxNameLength is the documented maximum length of an action name.
const maxNameLength = 255

// Allowed values of the enumerated request fields, from the documentation.
var (
	actionTypes          = []string{"webhook", "transfer", "hold", "external"}
	authorizationSchemes = []string{"none", "bearer", "basic", "api_key", "custom"}
	executionModes       = []string{"during_call", "post_call"}
	actionStatuses       = []string{"active", "inactive"}
)

// e164 matches an E.164 phone number.
var e164 = regexp.MustCompile(`^\+[1-9]\d{1,14}$`)

// readBody reads the request body, answering 413 past maxBodyBytes.
func readBody(c *call) ([]byte, *reply) {
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, maxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		rep := failure(http.StatusRequestEntityTooLarge, "The request body is too large.")
		return nil, &rep
	case err != nil:
		rep := failure(http.StatusBadRequest, "The request body could not be read.")
		return nil, &rep
	}
	return body, nil
}

// isJSONRequest reports whether the request declares a JSON body.
func isJSONRequest(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == jsonContentType || strings.HasSuffix(mt, "+json"))
}

// parseAction decodes and validates an upsert body. A body that is not
// declared as JSON is ignored, as Laravel does, so the required fields fail
// with 422. A declared JSON body that does not parse, or is not an object,
// answers 400.
func parseAction(body []byte, isJSON bool) (Action, reply, bool) {
	fields := map[string]json.RawMessage{}
	if isJSON && len(bytes.TrimSpace(body)) > 0 {
		if !json.Valid(body) {
			return Action{}, failure(http.StatusBadRequest, "The request body is not valid JSON."), false
		}
		if err := json.Unmarshal(body, &fields); err != nil {
			return Action{}, failure(http.StatusBadRequest, "The request body must be a JSON object."), false
		}
	}
	v := &validator{fields: fields, errs: map[string][]string{}}
	act := v.action()
	if len(v.errs) > 0 {
		return Action{}, reply{status: http.StatusUnprocessableEntity, body: envelope{
			Message: "The given data was invalid.", Errors: v.errs,
		}}, false
	}
	return act, reply{}, true
}

// validator collects Laravel-style validation messages, one per field.
type validator struct {
	fields map[string]json.RawMessage
	errs   map[string][]string
}

// fail records message for field, keeping only the first message of a
// field. Every "%s" in message is replaced by the field's display name, its
// underscores turned to spaces as Laravel does.
func (v *validator) fail(field, message string) {
	if len(v.errs[field]) > 0 {
		return
	}
	v.errs[field] = []string{strings.ReplaceAll(message, "%s", strings.ReplaceAll(field, "_", " "))}
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// strAt decodes an optional string. Blank strings count as absent, as
// Laravel converts empty strings to null. ok is false after a type error.
func (v *validator) strAt(field string, raw json.RawMessage) (string, bool) {
	if isNull(raw) {
		return "", true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		v.fail(field, "The %s must be a string.")
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		return "", true
	}
	return s, true
}

// str decodes the optional top-level string field.
func (v *validator) str(field string) string {
	s, _ := v.strAt(field, v.fields[field])
	return s
}

// requiredAt decodes a required string.
func (v *validator) requiredAt(field string, raw json.RawMessage) string {
	s, ok := v.strAt(field, raw)
	if ok && s == "" {
		v.fail(field, "The %s field is required.")
	}
	return s
}

// required decodes the required top-level string field.
func (v *validator) required(field string) string {
	return v.requiredAt(field, v.fields[field])
}

// oneOf decodes an optional enumerated field, returning def when absent.
func (v *validator) oneOf(field string, allowed []string, def string) string {
	s, ok := v.strAt(field, v.fields[field])
	switch {
	case !ok:
		return ""
	case s == "":
		return def
	case !slices.Contains(allowed, s):
		v.fail(field, "The selected %s is invalid.")
	}
	return s
}

// actionType decodes the required type field.
func (v *validator) actionType() string {
	s := v.required("type")
	if s != "" && !slices.Contains(actionTypes, s) {
		v.fail("type", "The selected %s is invalid.")
	}
	return s
}

// name decodes the required name field and checks its length in characters.
func (v *validator) name() string {
	s := v.required("name")
	if utf8.RuneCountInString(s) > maxNameLength {
		v.fail("name", "The %s may not be greater than 255 characters.")
	}
	return s
}

// validURL reports whether s is an absolute http(s) URL with a host.
func validURL(s string) bool {
	if strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Hostname() == "" {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	return scheme == "http" || scheme == "https"
}

// urlField decodes an optional URL field.
func (v *validator) urlField(field string) string {
	raw := v.fields[field]
	if isNull(raw) {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || (strings.TrimSpace(s) != "" && !validURL(s)) {
		v.fail(field, "The %s must be a valid URL.")
		return ""
	}
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return s
}

// transferTo decodes the optional E.164 transfer_to field.
func (v *validator) transferTo() string {
	s := v.str("transfer_to")
	if s != "" && !e164.MatchString(s) {
		v.fail("transfer_to", "The %s format is invalid.")
	}
	return s
}

// holdDuration decodes the optional hold_duration: a JSON integer ≥ 1.
// Strings, fractions and exponents are rejected.
func (v *validator) holdDuration() *int64 {
	raw := v.fields["hold_duration"]
	if isNull(raw) {
		return nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		v.fail("hold_duration", "The %s must be an integer.")
		return nil
	}
	if n < 1 {
		v.fail("hold_duration", "The %s must be at least 1.")
		return nil
	}
	return &n
}

// executionMode decodes execution_mode; post_call is only valid for
// external actions.
func (v *validator) executionMode(actionType string) string {
	s := v.oneOf("execution_mode", executionModes, "during_call")
	if s == "post_call" && actionType != "external" {
		v.fail("execution_mode", "The execution mode post_call is only valid for external actions.")
	}
	return s
}

// objects decodes an optional array of objects, recording "must be an
// array" (Laravel's word for objects too) for the array or an item; items
// that are not objects are returned as nil.
func (v *validator) objects(field string) ([]map[string]json.RawMessage, bool) {
	raw := v.fields[field]
	if isNull(raw) {
		return nil, false
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		v.fail(field, "The %s must be an array.")
		return nil, false
	}
	out := make([]map[string]json.RawMessage, len(items))
	for i, item := range items {
		if err := json.Unmarshal(item, &out[i]); err != nil || out[i] == nil {
			out[i] = nil
			v.fail(fmt.Sprintf("%s.%d", field, i), "The %s must be an array.")
		}
	}
	return out, true
}

// boolAt decodes an optional boolean.
func (v *validator) boolAt(field string, raw json.RawMessage) *bool {
	if isNull(raw) {
		return nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		v.fail(field, "The %s field must be true or false.")
		return nil
	}
	return &b
}

// compactValue returns raw compacted, or nil for absent or null.
func compactValue(raw json.RawMessage) json.RawMessage {
	if isNull(raw) {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil
	}
	return buf.Bytes()
}

// inputs decodes the optional inputs array; each item needs a name.
func (v *validator) inputs() []Input {
	items, ok := v.objects("inputs")
	if !ok {
		return nil
	}
	out := make([]Input, 0, len(items))
	for i, item := range items {
		if item == nil {
			continue
		}
		p := fmt.Sprintf("inputs.%d.", i)
		name := v.requiredAt(p+"name", item["name"])
		typ, _ := v.strAt(p+"type", item["type"])
		desc, _ := v.strAt(p+"description", item["description"])
		out = append(out, Input{
			Name: name, Type: typ, Required: v.boolAt(p+"required", item["required"]),
			Description: desc, Value: compactValue(item["value"]),
		})
	}
	return out
}

// customHeaders decodes the optional custom_headers array; each item needs
// a key.
func (v *validator) customHeaders() []Header {
	items, ok := v.objects("custom_headers")
	if !ok {
		return nil
	}
	out := make([]Header, 0, len(items))
	for i, item := range items {
		if item == nil {
			continue
		}
		p := fmt.Sprintf("custom_headers.%d.", i)
		key := v.requiredAt(p+"key", item["key"])
		value, _ := v.strAt(p+"value", item["value"])
		out = append(out, Header{Key: key, Value: value})
	}
	return out
}

// integrationID decodes the optional integration object and returns its id.
func (v *validator) integrationID() string {
	raw := v.fields["integration"]
	if isNull(raw) {
		return ""
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		v.fail("integration", "The %s must be an array.")
		return ""
	}
	id, _ := v.strAt("integration.id", obj["id"])
	return id
}

// action decodes and validates every documented field. Undocumented fields,
// including a body "id", are ignored.
func (v *validator) action() Action {
	name := v.name()
	typ := v.actionType()
	return Action{
		NodeID:              v.required("node_id"),
		Name:                name,
		Label:               name,
		Description:         v.required("description"),
		Type:                typ,
		Inputs:              v.inputs(),
		IntegrationID:       v.integrationID(),
		URL:                 v.urlField("url"),
		AuthorizationURL:    v.urlField("authorization_url"),
		AuthorizationScheme: v.oneOf("authorization_scheme", authorizationSchemes, "none"),
		CustomHeaders:       v.customHeaders(),
		SpeakOnSend:         v.str("speak_on_send"),
		SpeakOnReceive:      v.str("speak_on_receive"),
		ExecutionMode:       v.executionMode(typ),
		HoldDuration:        v.holdDuration(),
		TransferTo:          v.transferTo(),
		CurrentStatus:       v.oneOf("current_status", actionStatuses, "active"),
	}
}
