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
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// errSecretMissing says a Secret or one of its keys does not exist.
var errSecretMissing = errors.New("secret missing")

// secretValue reads one key of a Secret in the namespace. The manager caches
// only the metadata of Secrets; the data of the few Secrets the operator
// references is read from the API server and kept while the Secret's
// resourceVersion (from the metadata cache) is unchanged, so steady-state
// reconciles read no Secret at all.
func (r *AgentActionReconciler) secretValue(ctx context.Context, namespace, name, key string) (string, error) {
	nn := types.NamespacedName{Namespace: namespace, Name: name}
	if r.MetadataReader != nil {
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		if err := r.MetadataReader.Get(ctx, nn, meta); err == nil {
			if data, ok := r.secrets.get(nn, meta.ResourceVersion); ok {
				return secretKey(data, name, key)
			}
		}
	}
	var secret corev1.Secret
	if err := r.APIReader.Get(ctx, nn, &secret); err != nil {
		r.secrets.drop(nn)
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("%w: Secret %q not found in namespace %q", errSecretMissing, name, namespace)
		}
		return "", fmt.Errorf("reading Secret %q: %w", name, err)
	}
	r.secrets.put(nn, secret.ResourceVersion, secret.Data)
	return secretKey(secret.Data, name, key)
}

// secretKey returns one key of a Secret's data.
func secretKey(data map[string][]byte, name, key string) (string, error) {
	v, ok := data[key]
	if !ok || len(v) == 0 {
		return "", fmt.Errorf("%w: Secret %q has no key %q", errSecretMissing, name, key)
	}
	return string(v), nil
}

// secretCache holds the data of referenced Secrets by resourceVersion.
type secretCache struct {
	mu      sync.Mutex
	entries map[types.NamespacedName]secretEntry
}

type secretEntry struct {
	resourceVersion string
	data            map[string][]byte
}

func (c *secretCache) get(nn types.NamespacedName, resourceVersion string) (map[string][]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[nn]
	if !ok || e.resourceVersion != resourceVersion || resourceVersion == "" {
		return nil, false
	}
	return e.data, true
}

func (c *secretCache) put(nn types.NamespacedName, resourceVersion string, data map[string][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[types.NamespacedName]secretEntry{}
	}
	c.entries[nn] = secretEntry{resourceVersion: resourceVersion, data: data}
}

func (c *secretCache) drop(nn types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, nn)
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
