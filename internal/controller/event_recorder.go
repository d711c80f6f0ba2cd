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
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// maxEventNote is the kube-apiserver's limit on an Event's note: a longer
// one makes the Event itself be rejected, so it would be lost.
const maxEventNote = 1024

// noteLimitRecorder cuts every Event note to maxEventNote bytes, on a rune
// boundary, so that a long message (a 422 listing many field errors) still
// makes an Event.
type noteLimitRecorder struct {
	events.EventRecorder
}

// Eventf formats the note and records it, cut to the limit.
func (r noteLimitRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.EventRecorder.Eventf(regarding, related, eventtype, reason, action, "%s", truncate(fmt.Sprintf(note, args...), maxEventNote))
}

// limitNotes wraps a recorder with noteLimitRecorder, once.
func limitNotes(rec events.EventRecorder) events.EventRecorder {
	if rec == nil {
		return nil
	}
	if _, ok := rec.(noteLimitRecorder); ok {
		return rec
	}
	return noteLimitRecorder{rec}
}
