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
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
)

// agentKey names one agent as seen through one Environment.
type agentKey struct {
	env     types.NamespacedName
	agentID string
}

// publishState is what the AgentActions of an agent report in their
// AgentPublished condition and status.agentStatus.
type publishState struct {
	status      bool
	reason      string
	message     string
	agentStatus string
}

// agentRollout is the publish bookkeeping of one agent.
type agentRollout struct {
	api    ActionAPI
	policy agentsv1alpha1.PublishPolicy
	// active: a rollout is under way (the agent was read before its first
	// change); it ends with the publish, or when the agent is left in draft.
	active bool
	// owed: the operator must publish the agent once its changes settle.
	owed       bool
	inflight   int
	lastChange time.Time
	// reading is closed when the read of the agent under way ends.
	reading chan struct{}
	// notBefore delays the next publish attempt after a failure.
	notBefore time.Time
	failures  int
	state     publishState
}

// Publisher restores an agent's published state after the operator changed
// its actions (every change puts the agent in draft), with one publish per
// agent per rollout: it waits until the agent's changes have been quiet for
// a while. It is a manager Runnable and runs only on the leader.
type Publisher struct {
	// Quiet is how long an agent's changes must have settled before it is
	// published.
	Quiet time.Duration
	// SlowRetry is how long a publish refused with 422 waits before it is
	// tried again without a change.
	SlowRetry time.Duration
	// Notify re-queues the AgentActions of an agent whose publish state
	// changed.
	Notify func(agentKey)
	Now    func() time.Time

	mu     sync.Mutex
	agents map[agentKey]*agentRollout
	wake   chan struct{}
}

// NewPublisher returns a Publisher with the given quiet period.
func NewPublisher(quiet time.Duration) *Publisher {
	return &Publisher{Quiet: quiet, SlowRetry: 10 * time.Minute, Now: time.Now,
		agents: map[agentKey]*agentRollout{}, wake: make(chan struct{}, 1)}
}

func (p *Publisher) rollout(key agentKey) *agentRollout {
	r, ok := p.agents[key]
	if !ok {
		r = &agentRollout{}
		p.agents[key] = r
	}
	return r
}

// BeginChange is called before each write to an agent's actions. Before the
// first change of a rollout under publishPolicy Auto it reads the agent (one
// GET, even when several workers start changes at once) to learn whether it
// was published.
// It reports whether this call started the rollout.
func (p *Publisher) BeginChange(ctx context.Context, key agentKey, api ActionAPI, policy agentsv1alpha1.PublishPolicy) (bool, error) {
	prior, read, err := p.readPrior(ctx, key, api, policy)
	if err != nil {
		return false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rollout(key)
	r.api, r.policy = api, policy
	r.inflight++
	if r.active {
		// A change after a refused publish retries the publish.
		r.notBefore = time.Time{}
		return read, nil
	}
	r.active, r.lastChange = true, p.Now()
	r.owed = policy == agentsv1alpha1.PublishPolicyAlways ||
		(policy == agentsv1alpha1.PublishPolicyAuto && prior == talkover.AgentStatusPublished)
	r.state = rolloutState(policy, r.owed)
	return true, nil
}

// readPrior returns the agent's status before the rollout, reading it only
// under Auto and only once per rollout. Concurrent callers wait for the
// reader.
func (p *Publisher) readPrior(ctx context.Context, key agentKey, api ActionAPI,
	policy agentsv1alpha1.PublishPolicy) (status string, read bool, err error) {
	for {
		p.mu.Lock()
		r := p.rollout(key)
		if r.active || policy != agentsv1alpha1.PublishPolicyAuto {
			p.mu.Unlock()
			return "", false, nil
		}
		if wait := r.reading; wait != nil {
			p.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return "", false, ctx.Err()
			}
		}
		done := make(chan struct{})
		r.reading = done
		p.mu.Unlock()

		agent, err := api.GetAgent(talkover.WithPriority(ctx, talkover.PriorityHigh), key.agentID)

		p.mu.Lock()
		r.reading = nil
		close(done)
		if err == nil {
			// The change follows at once; lastChange keeps the publish
			// loop from seeing a settled agent before it starts.
			r.active, r.lastChange = true, p.Now()
			r.owed = agent.CurrentStatus == talkover.AgentStatusPublished
			r.state = rolloutState(policy, r.owed)
		}
		p.mu.Unlock()
		if err != nil {
			return "", false, err
		}
		return agent.CurrentStatus, true, nil
	}
}

// rolloutState is what the AgentActions report while a rollout is under way.
func rolloutState(policy agentsv1alpha1.PublishPolicy, owed bool) publishState {
	switch {
	case policy == agentsv1alpha1.PublishPolicyManual:
		return publishState{reason: agentsv1alpha1.ReasonManualPublish, agentStatus: talkover.AgentStatusDraft,
			message: "publishPolicy is Manual: publish the agent yourself."}
	case owed:
		return publishState{reason: agentsv1alpha1.ReasonPublishPending, agentStatus: talkover.AgentStatusDraft,
			message: "The agent will be published once its changes have settled."}
	}
	return publishState{reason: agentsv1alpha1.ReasonAgentLeftInDraft, agentStatus: talkover.AgentStatusDraft,
		message: "The agent was in draft before the operator changed it, so it was left in draft (publishPolicy Auto): " +
			"publish it when its other edits are ready."}
}

// EndChange is called after each write begun with BeginChange.
func (p *Publisher) EndChange(key agentKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rollout(key)
	if r.inflight > 0 {
		r.inflight--
	}
	r.lastChange = p.Now()
	if !r.active {
		return
	}
	p.signal()
}

// Restore records a publish that a previous run of the operator owed, as
// recorded in an AgentAction's status.
func (p *Publisher) Restore(key agentKey, api ActionAPI, policy agentsv1alpha1.PublishPolicy) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rollout(key)
	if r.active {
		return
	}
	r.api, r.policy, r.active, r.owed = api, policy, true, true
	r.lastChange = p.Now()
	r.state = rolloutState(policy, true)
	p.signal()
}

// State returns what the AgentActions of an agent should report, if the
// operator knows.
func (p *Publisher) State(key agentKey) (publishState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.agents[key]
	if !ok || r.state.reason == "" {
		return publishState{}, false
	}
	return r.state, true
}

// Forget drops the bookkeeping of an agent that has no AgentActions left and
// owes nothing.
func (p *Publisher) Forget(key agentKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.agents[key]; ok && !r.owed && r.inflight == 0 {
		delete(p.agents, key)
	}
}

func (p *Publisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Start runs the publish loop until ctx ends.
func (p *Publisher) Start(ctx context.Context) error {
	tick := p.Quiet / 4
	if tick < 50*time.Millisecond {
		tick = 50 * time.Millisecond
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-p.wake:
		}
		for _, key := range p.due() {
			p.publish(ctx, key)
		}
	}
}

// due lists the agents whose publish is owed and whose changes settled.
func (p *Publisher) due() []agentKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.Now()
	var keys []agentKey
	for key, r := range p.agents {
		if !r.active {
			continue
		}
		settled := r.inflight == 0 && now.Sub(r.lastChange) >= p.Quiet && !now.Before(r.notBefore)
		if !settled {
			continue
		}
		if !r.owed {
			// Nothing to publish: the rollout ends, the state stays.
			r.active = false
			continue
		}
		keys = append(keys, key)
	}
	return keys
}

// publish publishes one agent and records the outcome.
func (p *Publisher) publish(ctx context.Context, key agentKey) {
	p.mu.Lock()
	r := p.agents[key]
	api := r.api
	p.mu.Unlock()

	agent, err := api.PublishAgent(talkover.WithPriority(ctx, talkover.PriorityHigh), key.agentID)
	if errors.Is(err, context.Canceled) {
		return
	}
	logger := log.FromContext(ctx).WithValues("agent", key.agentID, "environment", key.env.String())

	p.mu.Lock()
	defer p.mu.Unlock()
	if r.inflight > 0 || p.Now().Sub(r.lastChange) < p.Quiet {
		// A change started meanwhile: keep the publish owed.
		if err == nil {
			r.state.agentStatus = talkover.AgentStatusDraft
		}
		return
	}
	switch {
	case err == nil:
		logger.Info("Published agent")
		r.active, r.owed, r.failures, r.notBefore = false, false, 0, time.Time{}
		status := agent.CurrentStatus
		if status == "" {
			status = talkover.AgentStatusPublished
		}
		r.state = publishState{status: true, reason: agentsv1alpha1.ReasonAgentPublished, agentStatus: status,
			message: "The operator published the agent after its changes."}
	case talkover.IsValidation(err):
		logger.Info("The API refused to publish the agent", "error", err.Error())
		r.failures++
		r.notBefore = p.Now().Add(p.SlowRetry)
		r.state = publishState{reason: agentsv1alpha1.ReasonAgentNotReady, agentStatus: talkover.AgentStatusDraft,
			message: "The Talkover API refused to publish the agent: " + err.Error()}
	default:
		r.failures++
		r.notBefore = p.Now().Add(backoff(r.failures))
		r.state = publishState{reason: agentsv1alpha1.ReasonPublishPending, agentStatus: talkover.AgentStatusDraft,
			message: fmt.Sprintf("Publishing the agent failed and will be retried: %s", err.Error())}
	}
	if p.Notify != nil {
		go p.Notify(key)
	}
}

// backoff is the wait before the n-th retry of a failed publish.
func backoff(n int) time.Duration {
	d := retryBaseDelay
	for i := 1; i < n && d < retryMaxDelay; i++ {
		d *= 2
	}
	return min(d, retryMaxDelay)
}
