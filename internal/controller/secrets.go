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
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// errSecretMissing says a Secret or one of its keys does not exist.
var errSecretMissing = errors.New("secret missing")

// secretValue reads one key of a Secret in the namespace, straight from the
// API server: the manager never caches Secret data.
func (r *AgentActionReconciler) secretValue(ctx context.Context, namespace, name, key string) (string, error) {
	return readSecretValue(ctx, r.APIReader, namespace, name, key)
}

func readSecretValue(ctx context.Context, reader client.Reader, namespace, name, key string) (string, error) {
	var secret corev1.Secret
	if err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("%w: Secret %q not found in namespace %q", errSecretMissing, name, namespace)
		}
		return "", fmt.Errorf("reading Secret %q: %w", name, err)
	}
	v, ok := secret.Data[key]
	if !ok || len(v) == 0 {
		return "", fmt.Errorf("%w: Secret %q has no key %q", errSecretMissing, name, key)
	}
	return string(v), nil
}

// secretError stalls on a missing Secret and returns anything else.
func (r *AgentActionReconciler) secretError(s *agentActionScope, err error, what string) (ctrl.Result, error) {
	if errors.Is(err, errSecretMissing) {
		return r.stall(s, agentsv1alpha1.ReasonSecretNotFound, "Cannot read %s: %s.", what, err.Error())
	}
	return ctrl.Result{}, err
}
