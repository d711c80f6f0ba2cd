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

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

// statusLedger keeps what must survive a restart about the publishes of
// an environment's agents, in the status of the Environment or
// ClusterEnvironment (an environment key with no namespace): which agents
// owe a publish (status.pendingPublishes) and how each agent's last
// rollout stands (status.publishes). It reads from the API server, not the
// cache, so what it writes is based on the latest version.
type statusLedger struct {
	Client client.Client
	Reader client.Reader
	Now    func() time.Time
}

// +kubebuilder:rbac:groups=agents.talkover.ai,resources=environments/status,verbs=patch
// +kubebuilder:rbac:groups=agents.talkover.ai,resources=clusterenvironments/status,verbs=patch

// add records that an agent owes a publish, before the first change of its
// rollout.
func (l *statusLedger) add(ctx context.Context, env types.NamespacedName, agentID string) error {
	return l.update(ctx, env, func(st *agentsv1alpha1.EnvironmentStatus) {
		if !slices.Contains(st.PendingPublishes, agentID) {
			st.PendingPublishes = append(st.PendingPublishes, agentID)
		}
		l.setRecord(st, agentsv1alpha1.AgentPublishStatus{AgentID: agentID, Reason: agentsv1alpha1.ReasonPublishPending,
			Message: pendingMessage})
	})
}

// settle records that an agent owes nothing any more, and how its rollout
// ended.
func (l *statusLedger) settle(ctx context.Context, env types.NamespacedName, rec agentsv1alpha1.AgentPublishStatus) error {
	return l.update(ctx, env, func(st *agentsv1alpha1.EnvironmentStatus) {
		st.PendingPublishes = slices.DeleteFunc(st.PendingPublishes, func(s string) bool { return s == rec.AgentID })
		l.setRecord(st, rec)
	})
}

// record records how an agent's rollout stands.
func (l *statusLedger) record(ctx context.Context, env types.NamespacedName, rec agentsv1alpha1.AgentPublishStatus) error {
	return l.update(ctx, env, func(st *agentsv1alpha1.EnvironmentStatus) { l.setRecord(st, rec) })
}

// forget drops what is recorded of an agent that has no AgentAction left.
func (l *statusLedger) forget(ctx context.Context, env types.NamespacedName, agentID string) error {
	return l.update(ctx, env, func(st *agentsv1alpha1.EnvironmentStatus) {
		st.PendingPublishes = slices.DeleteFunc(st.PendingPublishes, func(s string) bool { return s == agentID })
		st.Publishes = slices.DeleteFunc(st.Publishes, func(p agentsv1alpha1.AgentPublishStatus) bool { return p.AgentID == agentID })
	})
}

// setRecord sets the record of rec.AgentID; the transition time moves only
// when the reason changes.
func (l *statusLedger) setRecord(st *agentsv1alpha1.EnvironmentStatus, rec agentsv1alpha1.AgentPublishStatus) {
	rec.Message = truncate(rec.Message, maxRecordMessage)
	i := slices.IndexFunc(st.Publishes, func(p agentsv1alpha1.AgentPublishStatus) bool { return p.AgentID == rec.AgentID })
	if i >= 0 {
		old := st.Publishes[i]
		if old.Reason == rec.Reason && old.Message == rec.Message {
			return
		}
		rec.LastTransitionTime = old.LastTransitionTime
		if old.Reason != rec.Reason {
			rec.LastTransitionTime = metav1.NewTime(l.now())
		}
		st.Publishes[i] = rec
		return
	}
	rec.LastTransitionTime = metav1.NewTime(l.now())
	st.Publishes = append(st.Publishes, rec)
}

// maxRecordMessage is the API's bound on status.publishes[].message.
const maxRecordMessage = 512

func (l *statusLedger) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// findRecord returns the publish record of an agent, if any.
func findRecord(st *agentsv1alpha1.EnvironmentStatus, agentID string) *agentsv1alpha1.AgentPublishStatus {
	for i := range st.Publishes {
		if st.Publishes[i].AgentID == agentID {
			return &st.Publishes[i]
		}
	}
	return nil
}

// ledgerBackoff spaces the retries of a ledger write that met a conflict
// (under 2 s in all): the publishes of two agents of one environment, or
// the Environment controller, wrote its status at the same time.
var ledgerBackoff = wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.5}

// update changes status.pendingPublishes of an environment, with an
// optimistic lock: a conflict reads the environment again.
func (l *statusLedger) update(ctx context.Context, env types.NamespacedName, change func(*agentsv1alpha1.EnvironmentStatus)) error {
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
		old := status.DeepCopy()
		change(status)
		if equality.Semantic.DeepEqual(old, status) {
			return nil
		}
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
