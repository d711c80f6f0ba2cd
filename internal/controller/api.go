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

	"github.com/talkover/talkover-operator/internal/talkover"
)

// ActionAPI is the part of the Talkover API the controllers use. The
// controllers get one per Environment from a ClientFactory;
// *talkover.Client implements it.
type ActionAPI interface {
	// Reserve is called right before a push: it takes a slot of
	// the credential's request budget for the next call made with the
	// returned context, or fails at once (a *talkover.BudgetError or a
	// *talkover.CircuitOpenError saying when to come back). The caller
	// adds its finalizer in between, so a resource whose requests never
	// left has none.
	Reserve(ctx context.Context) (context.Context, error)
	// UpsertAction is called when the payload of an AgentAction differs
	// from the one last applied, or the remote action is gone.
	UpsertAction(ctx context.Context, agentID string, req talkover.ActionRequest) (*talkover.Action, error)
	// ListActions is called once per agent per drift check.
	ListActions(ctx context.Context, agentID string) ([]talkover.Action, error)
	// DeleteAction is called when an AgentAction with deletionPolicy Delete
	// is deleted, and to remove a twin the API created instead of updating.
	DeleteAction(ctx context.Context, agentID, actionID string) error
	// GetAgent is called before the first change to an agent in a rollout,
	// to learn whether it was published.
	GetAgent(ctx context.Context, agentID string) (*talkover.Agent, error)
	// PublishAgent is called once per agent after its changes settled.
	PublishAgent(ctx context.Context, agentID string) (*talkover.Agent, error)
}

var _ ActionAPI = (*talkover.Client)(nil)

// ClientFactory builds an ActionAPI from a client configuration. Tests may
// wrap the real one to observe calls.
type ClientFactory func(cfg talkover.Config) (ActionAPI, error)

// NewTalkoverClient is the ClientFactory of production: the real HTTP client.
func NewTalkoverClient(cfg talkover.Config) (ActionAPI, error) {
	return talkover.New(cfg)
}
