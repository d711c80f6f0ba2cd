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

// Package argocdhealth holds no production code: its tests run the Argo CD
// health checks of config/argocd (one health.lua per kind, with the cases of
// its health_test.yaml) in a Lua sandbox that opens only the libraries Argo CD
// gives health scripts, and check that config/argocd/argocd-cm-snippet.yaml
// embeds exactly those scripts.
//
// After changing a health.lua, regenerate the snippet with
//
//	go test ./internal/argocdhealth -run TestArgoCDConfigMapSnippet -update
package argocdhealth
