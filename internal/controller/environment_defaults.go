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
	"time"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// EffectiveAPIURL is the Environment's API URL, or the default.
func EffectiveAPIURL(env *agentsv1alpha1.Environment) string {
	if env.Spec.APIURL != "" {
		return env.Spec.APIURL
	}
	return agentsv1alpha1.DefaultAPIURL
}

// EffectiveTokenKey is the key of the token in the Environment's Secret.
func EffectiveTokenKey(env *agentsv1alpha1.Environment) string {
	if env.Spec.TokenSecretRef.Key != "" {
		return env.Spec.TokenSecretRef.Key
	}
	return agentsv1alpha1.DefaultTokenKey
}

// EffectiveRequestsPerMinute is the Environment's request budget.
func EffectiveRequestsPerMinute(env *agentsv1alpha1.Environment) int {
	if env.Spec.RequestsPerMinute != nil && *env.Spec.RequestsPerMinute > 0 {
		return int(*env.Spec.RequestsPerMinute)
	}
	return agentsv1alpha1.DefaultRequestsPerMinute
}

// EffectivePublishPolicy is the Environment's publish policy.
func EffectivePublishPolicy(env *agentsv1alpha1.Environment) agentsv1alpha1.PublishPolicy {
	if env.Spec.PublishPolicy != "" {
		return env.Spec.PublishPolicy
	}
	return agentsv1alpha1.PublishPolicyAuto
}

// EffectiveDriftCheckInterval is the Environment's drift check interval; 0
// disables drift checks.
func EffectiveDriftCheckInterval(env *agentsv1alpha1.Environment) time.Duration {
	if env.Spec.DriftCheckInterval != nil {
		return env.Spec.DriftCheckInterval.Duration
	}
	return 10 * time.Minute
}
