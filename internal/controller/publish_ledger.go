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
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// Ledger keeps the agents that owe a publish where the next run of the
// operator finds them. An environment key with no namespace names a
// ClusterEnvironment.
type Ledger interface {
	// Environments lists the environments that record owed publishes.
	Environments(ctx context.Context) ([]types.NamespacedName, error)
	// Owed lists the agents of an environment recorded as owing a publish.
	Owed(ctx context.Context, env types.NamespacedName) ([]string, error)
	// Add records that an agent owes a publish.
	Add(ctx context.Context, env types.NamespacedName, agentID string) error
	// Remove records that an agent owes nothing.
	Remove(ctx context.Context, env types.NamespacedName, agentID string) error
}

// statusLedger is the Ledger kept in status.pendingPublishes of the
// Environments and ClusterEnvironments. It reads from the API server, not
// the cache, so what it writes is based on the latest version.
type statusLedger struct {
	Client client.Client
	Reader client.Reader
}

// +kubebuilder:rbac:groups=agents.talkover.ai,resources=environments/status,verbs=patch
// +kubebuilder:rbac:groups=agents.talkover.ai,resources=clusterenvironments/status,verbs=patch

// NewStatusLedger returns the Ledger kept in the environments' status.
func NewStatusLedger(c client.Client, reader client.Reader) Ledger {
	return &statusLedger{Client: c, Reader: reader}
}

func (l *statusLedger) Environments(ctx context.Context) ([]types.NamespacedName, error) {
	var envs agentsv1alpha1.EnvironmentList
	if err := l.Reader.List(ctx, &envs); err != nil {
		return nil, err
	}
	var clusterEnvs agentsv1alpha1.ClusterEnvironmentList
	if err := l.Reader.List(ctx, &clusterEnvs); err != nil {
		return nil, err
	}
	var keys []types.NamespacedName
	for _, e := range envs.Items {
		if len(e.Status.PendingPublishes) > 0 {
			keys = append(keys, types.NamespacedName{Namespace: e.Namespace, Name: e.Name})
		}
	}
	for _, e := range clusterEnvs.Items {
		if len(e.Status.PendingPublishes) > 0 {
			keys = append(keys, types.NamespacedName{Name: e.Name})
		}
	}
	return keys, nil
}

func (l *statusLedger) Owed(ctx context.Context, env types.NamespacedName) ([]string, error) {
	obj, status := ledgerObject(env)
	if err := l.Reader.Get(ctx, env, obj); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return slices.Clone(status.PendingPublishes), nil
}

func (l *statusLedger) Add(ctx context.Context, env types.NamespacedName, agentID string) error {
	return l.update(ctx, env, func(list []string) []string {
		if slices.Contains(list, agentID) {
			return list
		}
		return append(list, agentID)
	})
}

func (l *statusLedger) Remove(ctx context.Context, env types.NamespacedName, agentID string) error {
	return l.update(ctx, env, func(list []string) []string {
		return slices.DeleteFunc(list, func(s string) bool { return s == agentID })
	})
}

// ledgerBackoff spaces the retries of a ledger write that met a conflict
// (under 2 s in all): the Publisher serialises its own writes to one
// environment, so conflicts come only from other writers of its status.
var ledgerBackoff = wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.5}

// update changes status.pendingPublishes of an environment, with an
// optimistic lock: a conflict reads the environment again.
func (l *statusLedger) update(ctx context.Context, env types.NamespacedName, change func([]string) []string) error {
	return retry.RetryOnConflict(ledgerBackoff, func() error {
		obj, status := ledgerObject(env)
		if err := l.Reader.Get(ctx, env, obj); err != nil {
			if apierrors.IsNotFound(err) {
				// No environment, nothing to publish through it.
				return nil
			}
			return err
		}
		before := obj.DeepCopyObject().(client.Object)
		next := change(slices.Clone(status.PendingPublishes))
		if slices.Equal(next, status.PendingPublishes) {
			return nil
		}
		status.PendingPublishes = next
		return client.IgnoreNotFound(l.Client.Status().Patch(ctx, obj,
			client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})))
	})
}

// ledgerObject returns an empty Environment or ClusterEnvironment for a key,
// and its status.
func ledgerObject(env types.NamespacedName) (client.Object, *agentsv1alpha1.EnvironmentStatus) {
	if env.Namespace == "" {
		ce := &agentsv1alpha1.ClusterEnvironment{}
		return ce, &ce.Status
	}
	e := &agentsv1alpha1.Environment{}
	return e, &e.Status
}
