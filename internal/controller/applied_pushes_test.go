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
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
)

func TestAppliedPushes_catchUp(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC))
	push := appliedPush{hash: "h2", id: "act-2", remoteUpdatedAt: "2026-11-29T10:00:00Z", at: at, baseVersions: []string{"7", "8"}}
	for _, tc := range []struct {
		name       string
		version    string
		status     agentsv1alpha1.AgentActionStatus
		wantFilled bool
		wantID     string
		wantHash   string
		wantKept   bool
	}{
		{name: "status write lost after a create", version: "8", status: agentsv1alpha1.AgentActionStatus{},
			wantFilled: true, wantID: "act-2", wantHash: "h2", wantKept: true},
		{name: "stale cache after an update", version: "7", status: agentsv1alpha1.AgentActionStatus{ID: "act-2", AppliedHash: "h1"},
			wantFilled: true, wantID: "act-2", wantHash: "h2", wantKept: true},
		{name: "twin replaced, status write lost", version: "8", status: agentsv1alpha1.AgentActionStatus{ID: "act-1", AppliedHash: "h1"},
			wantFilled: true, wantID: "act-2", wantHash: "h2", wantKept: true},
		{name: "status caught up", version: "9", status: agentsv1alpha1.AgentActionStatus{ID: "act-2", AppliedHash: "h2"},
			wantFilled: false, wantID: "act-2", wantHash: "h2", wantKept: false},
		{name: "drift finding written after the push", version: "10", status: agentsv1alpha1.AgentActionStatus{ID: "act-2"},
			wantFilled: false, wantID: "act-2", wantHash: "", wantKept: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			var a appliedPushes
			a.remember("uid", push)
			obj := &AgentAction{Status: tc.status}
			obj.UID, obj.ResourceVersion = "uid", tc.version
			st := &obj.Status
			g.Expect(a.catchUp(obj)).To(Equal(tc.wantFilled))
			g.Expect(st.ID).To(Equal(tc.wantID))
			g.Expect(st.AppliedHash).To(Equal(tc.wantHash))
			_, kept := a.lookup("uid")
			g.Expect(kept).To(Equal(tc.wantKept))
			if tc.wantFilled {
				g.Expect(st.RemoteUpdatedAt).To(Equal(push.remoteUpdatedAt))
				g.Expect(st.LastSyncTime).To(Equal(&at))
			}
		})
	}
	t.Run("unknown AgentAction", func(t *testing.T) {
		var a appliedPushes
		obj := &AgentAction{Status: agentsv1alpha1.AgentActionStatus{ID: "x", AppliedHash: "h"}}
		obj.UID = "other"
		NewWithT(t).Expect(a.catchUp(obj)).To(BeFalse())
	})
}
