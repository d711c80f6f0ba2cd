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

package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PausedAnnotation, set to "true" on an AgentAction, stops every call to the
// Talkover API for that resource (including the delete call of its
// finalizer) until it is removed.
const PausedAnnotation = "agents.talkover.ai/paused"

// AgentActionFinalizer is the finalizer the operator puts on every
// AgentAction so the remote action can be removed before the resource goes.
const AgentActionFinalizer = "agents.talkover.ai/finalizer"

// ActionType is the kind of a Talkover action.
// +kubebuilder:validation:Enum=webhook;transfer;hold;external
type ActionType string

// The action types the Talkover API accepts.
const (
	ActionTypeWebhook  ActionType = "webhook"
	ActionTypeTransfer ActionType = "transfer"
	ActionTypeHold     ActionType = "hold"
	ActionTypeExternal ActionType = "external"
)

// AuthorizationScheme is how the agent authenticates when it calls url.
// +kubebuilder:validation:Enum=none;bearer;basic;api_key;custom
type AuthorizationScheme string

// ExecutionMode says when an action runs.
// +kubebuilder:validation:Enum=during_call;post_call
type ExecutionMode string

// The execution modes the Talkover API accepts.
const (
	ExecutionModeDuringCall ExecutionMode = "during_call"
	ExecutionModePostCall   ExecutionMode = "post_call"
)

// ActionStatus says whether the agent may use an action.
// +kubebuilder:validation:Enum=active;inactive
type ActionStatus string

// DeletionPolicy says what happens to the remote action when the
// AgentAction is deleted.
// +kubebuilder:validation:Enum=Delete;Orphan
type DeletionPolicy string

// The deletion policies.
const (
	// DeletionPolicyDelete deletes the remote action with the resource.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyOrphan leaves the remote action in place.
	DeletionPolicyOrphan DeletionPolicy = "Orphan"
)

// EnvironmentKind is the kind of environment an AgentAction refers to.
// +kubebuilder:validation:Enum=Environment;ClusterEnvironment
type EnvironmentKind string

// The environment kinds.
const (
	EnvironmentKindNamespaced EnvironmentKind = "Environment"
	EnvironmentKindCluster    EnvironmentKind = "ClusterEnvironment"
)

// EnvironmentReference names the Environment an AgentAction uses.
type EnvironmentReference struct {
	// kind is Environment (the default: an Environment in the AgentAction's
	// namespace) or ClusterEnvironment (shared by a platform team with the
	// namespaces it allows).
	// +optional
	Kind EnvironmentKind `json:"kind,omitempty"`

	// name of the Environment or ClusterEnvironment.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ActionInput is one input parameter the agent collects before it runs the
// action.
type ActionInput struct {
	// name of the parameter, unique within the action.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self.trim() != ''",message="inputs name must not be blank: the API treats a value of only spaces as missing"
	Name string `json:"name"`

	// type of the parameter's value, for example "string" or "integer".
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Type string `json:"type,omitempty"`

	// required says whether the agent must collect this parameter before
	// running the action.
	// +optional
	Required *bool `json:"required,omitempty"`

	// description tells the agent what the parameter is.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Description string `json:"description,omitempty"`

	// value is a fixed value for the parameter: any JSON value, for example
	// "+1234567890" or 30.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	Value *apiextensionsv1.JSON `json:"value,omitempty"`
}

// Integration links the action to a Talkover integration.
type Integration struct {
	// id of the Talkover integration.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	ID string `json:"id"`
}

// SecretKeySelector selects one key of a Secret in the resource's namespace.
type SecretKeySelector struct {
	// name of the Secret, in the same namespace as the resource.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key of the value within the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// HeaderValueSource is where a header value is read from.
type HeaderValueSource struct {
	// secretKeyRef reads the value from a key of a Secret in the same
	// namespace. A change of that value is pushed to the API.
	// +required
	SecretKeyRef SecretKeySelector `json:"secretKeyRef"`
}

// CustomHeader is an HTTP header the agent sends with the webhook request.
// +kubebuilder:validation:XValidation:rule="has(self.value) != has(self.valueFrom)",message="set exactly one of value or valueFrom"
type CustomHeader struct {
	// key is the header name, for example "X-Api-Key". It must be a valid
	// HTTP header name: letters, digits and !#$%&'*+-.^_`|~, with no spaces
	// or colons.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches(\"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$\")",message="customHeaders key must be a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~, no spaces or colons)"
	Key string `json:"key"`

	// value is the header value in clear text. Use valueFrom for anything
	// secret: a value written here is readable by everyone who can read the
	// AgentAction.
	// +optional
	// +kubebuilder:validation:MaxLength=8192
	Value *string `json:"value,omitempty"`

	// valueFrom reads the header value from a Secret.
	// +optional
	ValueFrom *HeaderValueSource `json:"valueFrom,omitempty"`
}

// AgentActionSpec is the desired state of one action of a Talkover voice
// agent. It mirrors the body of POST /api/v1/agents/{agent_id}/actions.
// Fields left unset are not sent to the API, which then applies its own
// defaults.
// +kubebuilder:validation:XValidation:rule="self.type != 'webhook' || has(self.url)",message="url is required when type is webhook"
// +kubebuilder:validation:XValidation:rule="self.type != 'transfer' || has(self.transferTo)",message="transferTo is required when type is transfer"
// +kubebuilder:validation:XValidation:rule="self.type != 'hold' || has(self.holdDuration)",message="holdDuration is required when type is hold"
// +kubebuilder:validation:XValidation:rule="!has(self.executionMode) || self.executionMode != 'post_call' || self.type == 'external'",message="executionMode post_call is only valid when type is external"
type AgentActionSpec struct {
	// environmentRef names the Environment (API address and token) used to
	// manage this action.
	// +required
	EnvironmentRef EnvironmentReference `json:"environmentRef"`

	// agentId is the ID of the Talkover voice agent that owns the action.
	// It cannot be changed: create a new AgentAction instead.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self.trim() != ''",message="agentId must not be blank: the API treats a value of only spaces as missing"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="agentId is immutable: create a new AgentAction for another agent"
	AgentID string `json:"agentId"`

	// nodeId is the action node ID in the agent's workflow. Together with
	// agentId it identifies the action, so it cannot be changed: create a
	// new AgentAction instead.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self.trim() != ''",message="nodeId must not be blank: the API treats a value of only spaces as missing"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="nodeId is immutable: create a new AgentAction for another node"
	NodeID string `json:"nodeId"`

	// name of the action as the agent and the dashboard show it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self.trim() != ''",message="name must not be blank: the API treats a value of only spaces as missing"
	Name string `json:"name"`

	// description tells the agent what the action does and when to use it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65535
	// +kubebuilder:validation:XValidation:rule="self.trim() != ''",message="description must not be blank: the API treats a value of only spaces as missing"
	Description string `json:"description"`

	// type of the action: webhook (calls url), transfer (transfers the call
	// to transferTo), hold (puts the call on hold for holdDuration seconds)
	// or external.
	// +required
	Type ActionType `json:"type"`

	// inputs are the parameters the agent collects before it runs the
	// action, keyed by name.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Inputs []ActionInput `json:"inputs,omitempty"`

	// integration links the action to a Talkover integration.
	// +optional
	Integration *Integration `json:"integration,omitempty"`

	// url the agent calls, an absolute http or https URL. Required when type
	// is webhook.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="url must be an absolute http or https URL"
	URL string `json:"url,omitempty"`

	// authorizationUrl is a separate endpoint the agent calls to authorize
	// before calling url, an absolute http or https URL.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="authorizationUrl must be an absolute http or https URL"
	AuthorizationURL string `json:"authorizationUrl,omitempty"`

	// authorizationScheme is how the agent authenticates when it calls url:
	// none, bearer, basic, api_key or custom. The API's default is none.
	// +optional
	AuthorizationScheme AuthorizationScheme `json:"authorizationScheme,omitempty"`

	// customHeaders are HTTP headers the agent sends with the webhook
	// request, keyed by header name. Take secret values from a Secret with
	// valueFrom.
	// +optional
	// +listType=map
	// +listMapKey=key
	// +kubebuilder:validation:MaxItems=32
	CustomHeaders []CustomHeader `json:"customHeaders,omitempty"`

	// speakOnSend is a phrase the agent says when the webhook fires, before
	// the call to url.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	SpeakOnSend string `json:"speakOnSend,omitempty"`

	// speakOnReceive is a phrase the agent says after the webhook answers
	// successfully. It may use template variables of the response.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	SpeakOnReceive string `json:"speakOnReceive,omitempty"`

	// executionMode says when the action runs: during_call (the API's
	// default; the agent uses the response in the conversation) or post_call
	// (after the call ends; only valid when type is external).
	// +optional
	ExecutionMode ExecutionMode `json:"executionMode,omitempty"`

	// holdDuration is how long, in seconds, a hold action keeps the caller on
	// hold. Required when type is hold.
	// +optional
	// +kubebuilder:validation:Minimum=1
	HoldDuration *int32 `json:"holdDuration,omitempty"`

	// transferTo is the phone number a transfer action transfers the call
	// to, in E.164 format: a plus sign, the country code and the number,
	// with no spaces or dashes, for example +14155550100. Required when type
	// is transfer.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[+][1-9][0-9]{1,14}$')",message="transferTo must be an E.164 phone number such as +14155550100"
	TransferTo string `json:"transferTo,omitempty"`

	// currentStatus says whether the agent may use the action: active (the
	// API's default) or inactive.
	// +optional
	CurrentStatus ActionStatus `json:"currentStatus,omitempty"`

	// deletionPolicy says what happens to the remote action when this
	// resource is deleted: Delete (the default) removes it from the agent,
	// Orphan leaves it in place.
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// AgentActionStatus is the observed state of an AgentAction.
type AgentActionStatus struct {
	// observedGeneration is the metadata.generation the status was last
	// computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready summarises the others; Synced says whether the
	// remote action matches the spec; Reconciling and Stalled follow kstatus.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// id is the ID the Talkover API gave the remote action.
	// +optional
	ID string `json:"id,omitempty"`

	// agentStatus is the agent's status (draft or published) as last seen.
	// +optional
	AgentStatus string `json:"agentStatus,omitempty"`

	// lastSyncTime is when the remote action was last written or confirmed.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// remoteUpdatedAt is the updated_at the API returned for the action.
	// +optional
	RemoteUpdatedAt string `json:"remoteUpdatedAt,omitempty"`

	// replacedId is the ID of the remote action that was superseded when
	// the API created a new action (now status.id) instead of updating it;
	// the operator deletes it, so that no stale twin is left, and then
	// clears this field.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	ReplacedID string `json:"replacedId,omitempty"`

	// appliedHash is a hash of the last request body the API accepted,
	// including referenced Secret values. It never holds the values
	// themselves.
	// +optional
	AppliedHash string `json:"appliedHash,omitempty"`
}

// AgentAction is one action (webhook, call transfer, hold or external hook)
// of a Talkover voice agent, kept in step with the Talkover API.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=aa,categories=talkover
// +kubebuilder:printcolumn:name="Agent",type=string,JSONPath=`.spec.agentId`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Remote-ID",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AgentAction struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired action.
	// +required
	Spec AgentActionSpec `json:"spec"`

	// status is the action as last observed by the operator.
	// +optional
	// +kubebuilder:default:={"observedGeneration":-1}
	Status AgentActionStatus `json:"status,omitempty"`
}

// AgentActionList is a list of AgentActions.
// +kubebuilder:object:root=true
type AgentActionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgentAction `json:"items"`
}
