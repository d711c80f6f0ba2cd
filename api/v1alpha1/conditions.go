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

// Condition types. All have positive polarity except Reconciling and
// Stalled, which are abnormal-true per kstatus: they are present (True) only
// while work is pending or blocked.
const (
	// ConditionReady summarises the resource: True when the remote action
	// matches the spec (and, for Environments, when the token works).
	ConditionReady = "Ready"
	// ConditionSynced is True when the remote action matches the spec.
	ConditionSynced = "Synced"
	// ConditionReconciling is True while the operator works towards the
	// spec, including while it retries after a transient error.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the operator cannot make progress until
	// a person changes something (spec, Secret, Environment or the agent).
	ConditionStalled = "Stalled"
	// ConditionAgentPublished is True when the agent is published, False
	// when the operator left it in draft or could not publish it.
	ConditionAgentPublished = "AgentPublished"
)

// Condition reasons. Each is documented with the condition it appears on and
// what a user should do.
const (
	// ReasonSynced (Ready=True, Synced=True): the remote action matches the
	// spec.
	ReasonSynced = "Synced"
	// ReasonProgressing (Reconciling=True): the operator is pushing the spec.
	ReasonProgressing = "Progressing"
	// ReasonEnvironmentNotFound (Stalled): the referenced Environment does
	// not exist in the namespace. Create it.
	ReasonEnvironmentNotFound = "EnvironmentNotFound"
	// ReasonEnvironmentNotAllowed (Stalled): the ClusterEnvironment's
	// allowedNamespaces does not select the AgentAction's namespace.
	ReasonEnvironmentNotAllowed = "EnvironmentNotAllowed"
	// ReasonSecretNotFound (Stalled): a referenced Secret or key is missing:
	// the Environment's token or a header's valueFrom. Create it.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonUnauthorized (Stalled): the API rejected the token (401). Fix
	// the token in the Secret; the operator retries when it changes.
	ReasonUnauthorized = "Unauthorized"
	// ReasonForbidden (Stalled): the token may not manage this agent (403).
	ReasonForbidden = "Forbidden"
	// ReasonAgentNotFound (Stalled): the agent does not exist in the token's
	// environment (404). Check agentId and the Environment.
	ReasonAgentNotFound = "AgentNotFound"
	// ReasonValidationFailed (Stalled): the API rejected the spec (422); the
	// message lists the API's field errors. Fix the spec.
	ReasonValidationFailed = "ValidationFailed"
	// ReasonRateLimited (Reconciling): the API answered 429; the operator
	// waits for Retry-After and tries again.
	ReasonRateLimited = "RateLimited"
	// ReasonWaitingForBudget (Reconciling): the request budget of the
	// environment's token (requestsPerMinute) has no free slot now; the push
	// has a booked slot and leaves at its turn. Other environments are not
	// affected.
	ReasonWaitingForBudget = "WaitingForBudget"
	// ReasonAPIUnavailable (Reconciling): the API failed (5xx, timeout,
	// network or an unreadable answer); the operator retries with backoff.
	ReasonAPIUnavailable = "APIUnavailable"
	// ReasonDuplicateNodeID (Stalled): an older AgentAction already manages
	// the same environment, agentId and nodeId. Delete one of them.
	ReasonDuplicateNodeID = "DuplicateNodeID"
	// ReasonPaused (Ready=False): the agents.talkover.ai/paused annotation
	// is "true"; no API calls are made until it is removed.
	ReasonPaused = "Paused"
	// ReasonDeleting (Reconciling): the resource is being deleted and the
	// remote action removed.
	ReasonDeleting = "Deleting"
	// ReasonInvalidSpec (Stalled): the spec cannot be turned into a request
	// (admission rules normally prevent this).
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonDrifted (Ready=False, Synced=False, Reconciling=True): a drift
	// check found the remote action changed or deleted outside Kubernetes;
	// the message names what differs, and the operator pushes the spec
	// again.
	ReasonDrifted = "Drifted"
	// ReasonDriftCorrected (Event): the remote action had been changed or
	// deleted outside Kubernetes and was restored.
	ReasonDriftCorrected = "DriftCorrected"
	// ReasonAgentPublished (AgentPublished=True): the operator published the
	// agent after its changes.
	ReasonAgentPublished = "Published"
	// ReasonAgentLeftInDraft (AgentPublished=False): the agent was in draft
	// before the operator changed it, so under publishPolicy Auto it was
	// left in draft rather than publishing someone else's edits.
	ReasonAgentLeftInDraft = "AgentLeftInDraft"
	// ReasonAgentNotReady (AgentPublished=False): the API refused to
	// publish the agent (422); the message says what is missing.
	ReasonAgentNotReady = "AgentNotReady"
	// ReasonPublishPending (AgentPublished=False): a publish is owed and will
	// be made once the agent's changes settle.
	ReasonPublishPending = "PublishPending"
	// ReasonManualPublish (AgentPublished=False): publishPolicy is Manual.
	ReasonManualPublish = "ManualPublish"
	// ReasonTokenValid (Environment Ready=True): the token was found and
	// last accepted by the API.
	ReasonTokenValid = "TokenValid"
)
