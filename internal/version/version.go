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

// Package version holds the operator's version, stamped at build time.
package version

// Version is the operator's version, set with
// -ldflags "-X github.com/talkover/talkover-operator/internal/version.Version=v1.2.3".
var Version = "dev"

// UserAgent is the User-Agent the operator sends to the Talkover API.
func UserAgent() string {
	return "talkover-operator/" + Version
}
