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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults of the Environment fields, applied by the operator (never written
// back into spec) when a field is unset.
const (
	DefaultAPIURL             = "https://app.talkover.ai/api/v1"
	DefaultTokenKey           = "token"
	DefaultRequestsPerMinute  = 100
	DefaultDriftCheckInterval = "10m"
)

// PublishPolicy says when the operator publishes an agent after it changed
// the agent's actions.
// +kubebuilder:validation:Enum=Auto;Always;Manual
type PublishPolicy string

// The publish policies.
const (
	// PublishPolicyAuto publishes an agent after a rollout only if it was
	// published before the operator changed it.
	PublishPolicyAuto PublishPolicy = "Auto"
	// PublishPolicyAlways publishes an agent after every rollout.
	PublishPolicyAlways PublishPolicy = "Always"
	// PublishPolicyManual never publishes; the agent stays in draft.
	PublishPolicyManual PublishPolicy = "Manual"
)

// TokenSecretReference selects the key of a Secret that holds an environment
// token.
type TokenSecretReference struct {
	// name of the Secret: in the Environment's namespace, or for a
	// ClusterEnvironment in the operator's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key in the Secret's data that holds the token. Defaults to "token".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// EnvironmentSpec says where a Talkover environment's API is and which token
// to use.
type EnvironmentSpec struct {
	// apiURL is the base URL of the Talkover API, up to and including
	// /api/v1. Defaults to https://app.talkover.ai/api/v1. It must use https,
	// except for loopback hosts (localhost, ::1 or a literal address in
	// 127.0.0.0/8, never a name that merely starts with "127.") and
	// in-cluster Service names (*.svc).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getHostname() != '' && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && (url(self).getHostname() in ['localhost', '::1'] || self.matches('^http://127[.][0-9]{1,3}[.][0-9]{1,3}[.][0-9]{1,3}(:[0-9]+)?(/.*)?$') || url(self).getHostname().endsWith('.svc') || url(self).getHostname().endsWith('.svc.cluster.local'))))",message="apiURL must be an https URL (plain http is allowed only for loopback hosts and in-cluster *.svc names)"
	APIURL string `json:"apiURL,omitempty"`

	// tokenSecretRef selects the Secret key that holds the environment token
	// (talq_...). The token is sent only to apiURL, only in the Authorization
	// header.
	// +required
	TokenSecretRef TokenSecretReference `json:"tokenSecretRef"`

	// requestsPerMinute caps the calls the operator makes to this
	// environment's API, shared by all its AgentActions. Defaults to 100, the
	// Standard plan's limit. Set it lower to leave room for other clients of
	// the same token.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	RequestsPerMinute *int32 `json:"requestsPerMinute,omitempty"`

	// publishPolicy says when the operator publishes an agent after changing
	// its actions (every change puts the agent in draft): Auto (the default)
	// publishes once per rollout if the agent was published before; Always
	// publishes once per rollout; Manual never publishes.
	// +optional
	PublishPolicy PublishPolicy `json:"publishPolicy,omitempty"`

	// driftCheckInterval is how often the operator lists each agent's
	// actions to find changes made outside Kubernetes, for example
	// "10m" (the default): 0 (drift checks off) or from 1s to 24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ms|s|m|h))+)$`
	// +kubebuilder:validation:XValidation:rule="self == '0' || duration(self) == duration('0s') || (duration(self) >= duration('1s') && duration(self) <= duration('24h'))",message="driftCheckInterval must be 0 (drift checks off) or from 1s to 24h"
	DriftCheckInterval *metav1.Duration `json:"driftCheckInterval,omitempty"`
}

// EnvironmentStatus is the observed state of an Environment.
type EnvironmentStatus struct {
	// observedGeneration is the metadata.generation the status was last
	// computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready is True when the token Secret is present and no
	// AgentAction using this environment had its last call refused with 401
	// (its message then names one of them); Stalled is True while Ready is
	// False.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// pendingPublishes lists the agents the operator changed and still has
	// to publish (publishPolicy Auto or Always): every change of an action
	// puts the agent in draft, and the operator publishes it once its
	// changes have settled. The operator writes an agent here before its
	// first change and removes it after the publish, so a restart or a new
	// leader still makes a publish the previous one owed. Read-only.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10000
	// +kubebuilder:validation:items:MaxLength=255
	PendingPublishes []string `json:"pendingPublishes,omitempty"`

	// publishes is the publish state of each agent the operator changed
	// through this environment, one entry per agent: written when a rollout
	// is prepared (before its first change), and when a publish is made,
	// refused or fails. The AgentPublished condition of the agent's
	// AgentActions repeats it. Read-only.
	// +optional
	// +listType=map
	// +listMapKey=agentId
	// +kubebuilder:validation:MaxItems=10000
	Publishes []AgentPublishStatus `json:"publishes,omitempty"`
}

// AgentPublishStatus is the publish state of one agent.
type AgentPublishStatus struct {
	// agentId is the agent's ID.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	AgentID string `json:"agentId"`
	// reason is how the agent's last rollout ended or stands: Published,
	// PublishPending, AgentNotReady, AgentNotFound, AgentLeftInDraft or
	// ManualPublish (the reasons of the AgentPublished condition of
	// AgentAction).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason"`
	// message says what happened in words: the API's answer when it
	// refused or failed to publish, or what the rollout waits for.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Message string `json:"message,omitempty"`
	// lastTransitionTime is when the reason last changed.
	// +required
	LastTransitionTime metav1.Time `json:"lastTransitionTime"`
}

// Environment is a Talkover environment: the API address and the Secret with
// its environment token. AgentActions in the same namespace refer to it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tenv,categories=talkover
// +kubebuilder:printcolumn:name="API",type=string,JSONPath=`.spec.apiURL`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Environment struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says where the API is and which token to use.
	// +required
	Spec EnvironmentSpec `json:"spec"`

	// status is the environment as last observed by the operator.
	// +optional
	// +kubebuilder:default:={"observedGeneration":-1}
	Status EnvironmentStatus `json:"status,omitempty"`
}

// EnvironmentList is a list of Environments.
// +kubebuilder:object:root=true
type EnvironmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Environment `json:"items"`
}

// ClusterEnvironmentSpec is an EnvironmentSpec that AgentActions of several
// namespaces may use.
type ClusterEnvironmentSpec struct {
	EnvironmentSpec `json:",inline"`

	// allowedNamespaces selects, by label, the namespaces whose AgentActions
	// may use this ClusterEnvironment. An empty selector ({}) allows every
	// namespace; when unset, no namespace may use it.
	// +optional
	AllowedNamespaces *metav1.LabelSelector `json:"allowedNamespaces,omitempty"`
}

// ClusterEnvironment is a Talkover environment that a platform team shares
// with the namespaces it selects. Its token Secret lives in the operator's
// namespace, out of reach of the namespaces that use it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=tcenv,categories=talkover
// +kubebuilder:printcolumn:name="API",type=string,JSONPath=`.spec.apiURL`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterEnvironment struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says where the API is, which token to use and who may use it.
	// +required
	Spec ClusterEnvironmentSpec `json:"spec"`

	// status is the environment as last observed by the operator.
	// +optional
	// +kubebuilder:default:={"observedGeneration":-1}
	Status EnvironmentStatus `json:"status,omitempty"`
}

// ClusterEnvironmentList is a list of ClusterEnvironments.
// +kubebuilder:object:root=true
type ClusterEnvironmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterEnvironment `json:"items"`
}
