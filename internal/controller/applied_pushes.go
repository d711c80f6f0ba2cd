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
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// appliedPush is a push the API accepted.
type appliedPush struct {
	hash            string
	id              string
	remoteUpdatedAt string
	at              metav1.Time
	// baseVersions are the resourceVersions of the AgentAction the push
	// was made from (as read, and after the finalizer was added): a read of
	// one of them misses the push.
	baseVersions []string
}

// appliedPushes remembers the pushes the API accepted until the status of
// their AgentAction shows them. A push whose status write failed (the
// kube-apiserver was down) or that a later reconcile reads from a stale
// cache is then not sent again: every call to the API counts.
type appliedPushes struct {
	mu sync.Mutex
	m  map[types.UID]appliedPush
}

// remember records an accepted push.
func (a *appliedPushes) remember(uid types.UID, p appliedPush) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[types.UID]appliedPush{}
	}
	a.m[uid] = p
}

// lookup returns the accepted push of an AgentAction that its status may not
// show yet.
func (a *appliedPushes) lookup(uid types.UID) (appliedPush, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.m[uid]
	return p, ok
}

// forget drops the push of an AgentAction whose status shows it, or that is
// gone.
func (a *appliedPushes) forget(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m, uid)
}

// catchUp fills the status of an AgentAction read at the version the last
// accepted push was made from (its status write failed, or the cache has
// not seen it yet), and forgets the push once a later version is read:
// that version shows the push, or a later write (a drift finding) that
// supersedes it. It reports whether the status was filled.
func (a *appliedPushes) catchUp(obj *AgentAction) bool {
	p, ok := a.lookup(obj.UID)
	if !ok {
		return false
	}
	st := &obj.Status
	if (st.ID == p.id && st.AppliedHash == p.hash) || !slices.Contains(p.baseVersions, obj.ResourceVersion) {
		a.forget(obj.UID)
		return false
	}
	// The memory is newer than any status this run of the operator read:
	// it holds the last push this run made, and another run cannot write
	// while this one leads.
	st.ID, st.AppliedHash, st.RemoteUpdatedAt = p.id, p.hash, p.remoteUpdatedAt
	at := p.at
	st.LastSyncTime = &at
	return true
}
