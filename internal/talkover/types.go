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
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Action types accepted by the Create/Update Action endpoint.
const (
	ActionTypeWebhook  = "webhook"
	ActionTypeTransfer = "transfer"
	ActionTypeHold     = "hold"
	ActionTypeExternal = "external"
)

// Action statuses (the current_status of an action).
const (
	ActionStatusActive   = "active"
	ActionStatusInactive = "inactive"
)

// Agent statuses (the current_status of an agent).
const (
	AgentStatusDraft     = "draft"
	AgentStatusPublished = "published"
)

// Authorization schemes a webhook action may use when calling its url.
const (
	AuthorizationSchemeNone   = "none"
	AuthorizationSchemeBearer = "bearer"
	AuthorizationSchemeBasic  = "basic"
	AuthorizationSchemeAPIKey = "api_key"
	AuthorizationSchemeCustom = "custom"
)

// Execution modes of an action.
const (
	ExecutionModeDuringCall = "during_call"
	ExecutionModePostCall   = "post_call"
)

// redacted replaces secret values wherever they would otherwise be printed.
const redacted = "<redacted>"

// ActionRequest is the body of POST /agents/{agent_id}/actions.
//
// Optional fields left at their zero value are omitted from the JSON body,
// so the server applies its documented defaults.
type ActionRequest struct {
	// NodeID is the action node ID for workflow integration (required).
	NodeID string `json:"node_id"`
	// Name is the action name, at most 255 characters (required).
	Name string `json:"name"`
	// Description says what the action does (required).
	Description string `json:"description"`
	// Type is one of the ActionType constants (required).
	Type string `json:"type"`
	// Inputs are the input parameters of the action.
	Inputs []Input `json:"inputs,omitempty"`
	// Integration is the integration configuration object.
	Integration *Integration `json:"integration,omitempty"`
	// URL is the webhook URL.
	URL string `json:"url,omitempty"`
	// AuthorizationURL is the separate authorization endpoint of a webhook.
	AuthorizationURL string `json:"authorization_url,omitempty"`
	// AuthorizationScheme is one of the AuthorizationScheme constants.
	AuthorizationScheme string `json:"authorization_scheme,omitempty"`
	// CustomHeaders are sent with the webhook request; their values are secrets.
	CustomHeaders []Header `json:"custom_headers,omitempty"`
	// SpeakOnSend is spoken when the webhook is triggered.
	SpeakOnSend string `json:"speak_on_send,omitempty"`
	// SpeakOnReceive is spoken after the webhook responds successfully.
	SpeakOnReceive string `json:"speak_on_receive,omitempty"`
	// ExecutionMode is one of the ExecutionMode constants.
	ExecutionMode string `json:"execution_mode,omitempty"`
	// HoldDuration is the hold duration in seconds (hold actions).
	HoldDuration *int64 `json:"hold_duration,omitempty"`
	// TransferTo is the E.164 transfer destination (transfer actions).
	TransferTo string `json:"transfer_to,omitempty"`
	// CurrentStatus is one of the ActionStatus constants.
	CurrentStatus string `json:"current_status,omitempty"`
}

// MarshalLog returns a copy of r with custom header values redacted, so
// loggers that honour logr.Marshaler never print the secrets.
func (r ActionRequest) MarshalLog() any {
	type plain ActionRequest
	c := plain(r)
	if len(r.CustomHeaders) > 0 {
		c.CustomHeaders = nil
		for _, h := range r.CustomHeaders {
			c.CustomHeaders = append(c.CustomHeaders, Header{Key: h.Key, Value: redacted})
		}
	}
	return c
}

// Integration references an integration by ID.
type Integration struct {
	// ID is the integration identifier.
	ID string `json:"id,omitempty"`
}

// Input is an input parameter of an action, both in requests ("inputs") and
// in responses ("input_schema").
type Input struct {
	// Name is the parameter name.
	Name string `json:"name"`
	// Type is the parameter type, for example "string" or "integer".
	Type string `json:"type,omitempty"`
	// Required says whether the parameter is required; nil omits it.
	Required *bool `json:"required,omitempty"`
	// Description describes the parameter.
	Description string `json:"description,omitempty"`
	// Value is an optional fixed value, any JSON value.
	Value json.RawMessage `json:"value,omitempty"`
}

// Header is a custom HTTP header of a webhook action. Its Value is a secret:
// it is sent in JSON but never printed by the fmt package.
type Header struct {
	// Key is the header name.
	Key string `json:"key"`
	// Value is the header value (secret).
	Value string `json:"value"`
}

// String returns "Key=<redacted>".
func (h Header) String() string {
	return h.Key + "=" + redacted
}

// GoString returns the same redacted text as String, so %#v hides the value.
func (h Header) GoString() string {
	return h.String()
}

// Format implements fmt.Formatter: every verb prints the redacted form.
func (h Header) Format(f fmt.State, verb rune) {
	s := h.String()
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	_, _ = f.Write([]byte(s))
}

// MarshalLog implements logr.Marshaler with the value redacted.
func (h Header) MarshalLog() any {
	return struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}{Key: h.Key, Value: redacted}
}

// Action is an action as returned by the API.
type Action struct {
	// ID is the server-generated identifier, used as {action_id}.
	ID string `json:"id"`
	// Name is the action name.
	Name string `json:"name"`
	// Label is the display label.
	Label string `json:"label"`
	// Description says what the action does.
	Description string `json:"description"`
	// Type is one of the ActionType constants.
	Type string `json:"type"`
	// InputSchema echoes the request inputs.
	InputSchema []Input `json:"input_schema"`
	// Config is an opaque configuration object; nil when null or absent.
	Config json.RawMessage `json:"config,omitempty"`
	// ActionTrigger is an opaque trigger object; nil when null or absent.
	ActionTrigger json.RawMessage `json:"action_trigger,omitempty"`
	// URL is the webhook URL; "" when null.
	URL string `json:"url"`
	// AuthorizationURL is the authorization URL; "" when null.
	AuthorizationURL string `json:"authorization_url"`
	// CurrentStatus is one of the ActionStatus constants.
	CurrentStatus string `json:"current_status"`
	// CreatedAt is the ISO 8601 creation time.
	CreatedAt string `json:"created_at"`
	// UpdatedAt is the ISO 8601 last update time.
	UpdatedAt string `json:"updated_at"`
}

// UnmarshalJSON decodes an action, turning JSON null in the opaque fields
// into nil so that "absent" and "null" compare equal.
func (a *Action) UnmarshalJSON(b []byte) error {
	type plain Action
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*a = Action(p)
	a.Config = nullToNil(a.Config)
	a.ActionTrigger = nullToNil(a.ActionTrigger)
	for i := range a.InputSchema {
		a.InputSchema[i].Value = nullToNil(a.InputSchema[i].Value)
	}
	return nil
}

// nullToNil returns nil for an empty or JSON null raw message.
func nullToNil(m json.RawMessage) json.RawMessage {
	t := bytes.TrimSpace(m)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil
	}
	return m
}

// Agent is the subset of the agent object the operator uses.
type Agent struct {
	// ID is the agent identifier.
	ID string `json:"id"`
	// Name is the agent name.
	Name string `json:"name"`
	// CurrentStatus is AgentStatusDraft or AgentStatusPublished.
	CurrentStatus string `json:"current_status"`
	// IsReadyToPublish says whether publishing can succeed.
	IsReadyToPublish bool `json:"is_ready_to_publish"`
	// Actions are the agent's actions (Get Agent only).
	Actions []Action `json:"actions,omitempty"`
	// UpdatedAt is the ISO 8601 last update time.
	UpdatedAt string `json:"updated_at"`
}

// envelope is the success envelope {success, message, data, meta}. Only the
// fields the client checks are decoded, and leniently.
type envelope struct {
	Success *bool           `json:"success"`
	Data    json.RawMessage `json:"data"`
	Meta    json.RawMessage `json:"meta"`
}

// pageMeta is the pagination block used by paginated list endpoints.
type pageMeta struct {
	CurrentPage int `json:"current_page"`
	LastPage    int `json:"last_page"`
}
