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

package apisim

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Agent statuses, as the Get Agent endpoint reports them.
const (
	// AgentDraft is the status of an agent that is not taking new calls.
	AgentDraft = "draft"
	// AgentPublished is the status of a live agent.
	AgentPublished = "published"
)

// Action is one stored agent action, including the fields the API never
// returns (node ID, authorization scheme, headers, phrases, execution mode,
// hold duration and transfer number).
type Action struct {
	ID                  string
	AgentID             string
	NodeID              string
	Name                string
	Label               string
	Description         string
	Type                string
	Inputs              []Input
	IntegrationID       string
	URL                 string
	AuthorizationURL    string
	AuthorizationScheme string
	CustomHeaders       []Header
	SpeakOnSend         string
	SpeakOnReceive      string
	ExecutionMode       string
	HoldDuration        *int64
	TransferTo          string
	CurrentStatus       string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Input is one input parameter of an action, as sent in the request's inputs.
type Input struct {
	Name        string
	Type        string
	Required    *bool
	Description string
	Value       json.RawMessage
}

// Header is one custom HTTP header of a webhook action.
type Header struct {
	Key   string
	Value string
}

// AgentOptions configures an agent added with Server.AddAgent.
type AgentOptions struct {
	// Name is the agent's display name; the agent ID when empty.
	Name string
	// Published starts the agent in "published" instead of "draft".
	Published bool
	// NotReadyToPublish makes publish answer 422 until SetAgentReady(id, true).
	NotReadyToPublish bool
}

// AgentState is a snapshot of an agent.
type AgentState struct {
	ID             string
	Env            string
	Name           string
	Status         string
	ReadyToPublish bool
	// Publishes counts the publish requests answered 200, including those
	// on an agent that was already published.
	Publishes int
}

// agent is the stored state of one agent.
type agent struct {
	AgentState
	createdAt time.Time
	updatedAt time.Time
	actions   []*Action
}

// forbidKey names one token and agent pair answered 403.
type forbidKey struct {
	token   string
	agentID string
}

// clone returns a deep copy of a.
func (a *Action) clone() Action {
	c := *a
	c.Inputs = cloneInputs(a.Inputs)
	c.CustomHeaders = slices.Clone(a.CustomHeaders)
	if a.HoldDuration != nil {
		d := *a.HoldDuration
		c.HoldDuration = &d
	}
	return c
}

// cloneInputs returns a deep copy of in.
func cloneInputs(in []Input) []Input {
	if in == nil {
		return nil
	}
	out := make([]Input, len(in))
	for i, v := range in {
		out[i] = v
		if v.Required != nil {
			r := *v.Required
			out[i].Required = &r
		}
		out[i].Value = bytes.Clone(v.Value)
	}
	return out
}

// newUUID returns a random RFC 4122 version 4 UUID string.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// AddEnvironment registers an environment and the bearer token that maps to
// it. An environment may have several tokens; a token maps to one environment.
func (s *Server) AddEnvironment(name, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = name
	s.envs[name] = true
}

// AddAgent adds an agent to an environment, or replaces the metadata of an
// existing agent with the same ID while keeping its actions.
func (s *Server) AddAgent(env, agentID string, opts AgentOptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addAgentLocked(env, agentID, opts)
}

// addAgentLocked implements AddAgent; s.mu must be held.
func (s *Server) addAgentLocked(env, agentID string, opts AgentOptions) {
	name := opts.Name
	if name == "" {
		name = agentID
	}
	status := AgentDraft
	if opts.Published {
		status = AgentPublished
	}
	now := s.now()
	a, ok := s.agents[agentID]
	if !ok {
		a = &agent{createdAt: now}
		s.agents[agentID] = a
	}
	a.AgentState = AgentState{
		ID: agentID, Env: env, Name: name, Status: status,
		ReadyToPublish: !opts.NotReadyToPublish, Publishes: a.Publishes,
	}
	a.updatedAt = now
	s.envs[env] = true
}

// Forbid makes every request of token on agentID answer 403.
func (s *Server) Forbid(token, agentID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidden[forbidKey{token: token, agentID: agentID}] = true
}

// SetUpsertMode selects how POST /agents/{agent_id}/actions picks its target.
func (s *Server) SetUpsertMode(m UpsertMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.upsertMode = m
}

// Actions returns deep copies of the actions of agentID, oldest first.
func (s *Server) Actions(agentID string) []Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[agentID]
	if !ok {
		return nil
	}
	out := make([]Action, 0, len(a.actions))
	for _, act := range a.actions {
		out = append(out, act.clone())
	}
	return out
}

// ActionByNodeID returns a copy of the oldest action of agentID with nodeID.
func (s *Server) ActionByNodeID(agentID, nodeID string) (Action, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if act := s.findByNodeID(agentID, nodeID); act != nil {
		return act.clone(), true
	}
	return Action{}, false
}

// Agent returns a snapshot of agentID.
func (s *Server) Agent(agentID string) (AgentState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[agentID]
	if !ok {
		return AgentState{}, false
	}
	return a.AgentState, true
}

// SetAgentReady sets whether publishing agentID succeeds.
func (s *Server) SetAgentReady(agentID string, ready bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.agents[agentID]; ok {
		a.ReadyToPublish = ready
	}
}

// SetAgentStatus sets the status ("draft" or "published") of agentID.
func (s *Server) SetAgentStatus(agentID, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.agents[agentID]; ok {
		a.Status = status
	}
}

// EditAction changes an action the way a dashboard user would: no request
// is logged and the agent's status is left alone. edit runs without the
// server's lock held, on a copy that is stored back if the action still
// exists; ID and AgentID cannot be changed, and UpdatedAt is set to now
// unless edit changed it. It reports whether the action was found.
func (s *Server) EditAction(agentID, actionID string, edit func(*Action)) bool {
	s.mu.Lock()
	act := s.findAction(agentID, actionID)
	if act == nil {
		s.mu.Unlock()
		return false
	}
	c := act.clone()
	s.mu.Unlock()

	before := c.UpdatedAt
	edit(&c)
	c.ID, c.AgentID = actionID, agentID

	s.mu.Lock()
	defer s.mu.Unlock()
	act = s.findAction(agentID, actionID)
	if act == nil {
		return false
	}
	if c.UpdatedAt.Equal(before) {
		c.UpdatedAt = s.now()
	}
	*act = c.clone()
	return true
}

// RemoveAction deletes an action the way a dashboard user would: no request
// is logged and the agent's status is left alone. It reports whether the
// action was found.
func (s *Server) RemoveAction(agentID, actionID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteAction(agentID, actionID)
}

// findAction returns the stored action, or nil; s.mu must be held.
func (s *Server) findAction(agentID, actionID string) *Action {
	a, ok := s.agents[agentID]
	if !ok {
		return nil
	}
	for _, act := range a.actions {
		if act.ID == actionID {
			return act
		}
	}
	return nil
}

// findByNodeID returns the oldest action with nodeID, or nil; s.mu must be held.
func (s *Server) findByNodeID(agentID, nodeID string) *Action {
	a, ok := s.agents[agentID]
	if !ok {
		return nil
	}
	for _, act := range a.actions {
		if act.NodeID == nodeID {
			return act
		}
	}
	return nil
}

// deleteAction removes an action and reports whether it existed; s.mu must
// be held.
func (s *Server) deleteAction(agentID, actionID string) bool {
	a, ok := s.agents[agentID]
	if !ok {
		return false
	}
	i := slices.IndexFunc(a.actions, func(act *Action) bool { return act.ID == actionID })
	if i < 0 {
		return false
	}
	a.actions = slices.Delete(a.actions, i, i+1)
	return true
}

// upsertAction stores in for agent a following the upsert mode and returns
// the stored action; s.mu must be held. The agent goes to draft.
func (s *Server) upsertAction(a *agent, in Action) *Action {
	now := s.now()
	var target *Action
	if s.upsertMode == UpsertByNodeID {
		target = s.findByNodeID(a.ID, in.NodeID)
	}
	if target == nil {
		target = &Action{ID: newUUID(), CreatedAt: now}
		a.actions = append(a.actions, target)
	}
	in.ID, in.AgentID, in.CreatedAt, in.UpdatedAt = target.ID, a.ID, target.CreatedAt, now
	*target = in
	s.markDraft(a)
	return target
}

// markDraft sets a to draft after an action changed; s.mu must be held.
func (s *Server) markDraft(a *agent) {
	a.Status = AgentDraft
	a.updatedAt = s.now()
}
