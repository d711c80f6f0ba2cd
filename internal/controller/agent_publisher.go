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

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// turn is the budget turn of one kind of work on an agent.
func (k agentKey) turn(work string) string {
	return work + "/" + k.env.String() + "/" + k.agentID
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
	owed bool
	// ledgered: the Ledger records that the agent owes a publish.
	ledgered   bool
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
// a while. A publish it owes is written to the Ledger before the first
// change of the rollout and removed after the publish, so the next run of
// the operator makes it if this one cannot. It is a manager Runnable and
// runs only on the leader.
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
	// Ledger keeps the owed publishes across restarts; nil keeps them in
	// memory only.
	Ledger Ledger
	// Resolve returns the API client and publish policy of an environment,
	// for a publish found in the Ledger.
	Resolve func(ctx context.Context, env types.NamespacedName) (ActionAPI, agentsv1alpha1.PublishPolicy, error)
	Now     func() time.Time

	mu     sync.Mutex
	agents map[agentKey]*agentRollout
	// loaded: the environments whose Ledger entries were read.
	loaded map[types.NamespacedName]bool
	// loading serialises the reads of the Ledger.
	loading sync.Mutex
	// ledgerLocks serialise the Ledger writes of each environment, so that a
	// removal and a new rollout's record of the same agent cannot cross.
	ledgerLocks map[types.NamespacedName]*sync.Mutex
	wake        chan struct{}
}

// NewPublisher returns a Publisher with the given quiet period.
func NewPublisher(quiet time.Duration) *Publisher {
	return &Publisher{Quiet: quiet, SlowRetry: 10 * time.Minute, Now: time.Now,
		agents: map[agentKey]*agentRollout{}, loaded: map[types.NamespacedName]bool{},
		ledgerLocks: map[types.NamespacedName]*sync.Mutex{}, wake: make(chan struct{}, 1)}
}

// Load reads the publishes an environment owes from the Ledger, once per
// run of the operator and before any change through that environment.
func (p *Publisher) Load(ctx context.Context, env types.NamespacedName) error {
	if p.Ledger == nil || p.isLoaded(env) {
		return nil
	}
	p.loading.Lock()
	defer p.loading.Unlock()
	if p.isLoaded(env) {
		return nil
	}
	agents, err := p.Ledger.Owed(ctx, env)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range agents {
		r := p.rollout(agentKey{env: env, agentID: id})
		r.ledgered = true
		if !r.active {
			r.active, r.owed, r.lastChange = true, true, p.Now()
			r.state = rolloutState(r.policy, true)
		}
	}
	p.loaded[env] = true
	if len(agents) > 0 {
		p.signal()
	}
	return nil
}

func (p *Publisher) isLoaded(env types.NamespacedName) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loaded[env]
}

// loadAll reads the Ledger of every environment that records owed
// publishes, so that an agent with no AgentAction left is still published.
func (p *Publisher) loadAll(ctx context.Context) error {
	if p.Ledger == nil {
		return nil
	}
	envs, err := p.Ledger.Environments(ctx)
	if err != nil {
		return err
	}
	for _, env := range envs {
		if err := p.Load(ctx, env); err != nil {
			return err
		}
	}
	return nil
}

func (p *Publisher) ledgerLock(env types.NamespacedName) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.ledgerLocks[env]
	if !ok {
		l = &sync.Mutex{}
		p.ledgerLocks[env] = l
	}
	return l
}

func (p *Publisher) rollout(key agentKey) *agentRollout {
	r, ok := p.agents[key]
	if !ok {
		r = &agentRollout{}
		p.agents[key] = r
	}
	return r
}

// BeginChange is called before each write to an agent's actions; when it
// returns nil, EndChange must follow the write. Before the first change of a
// rollout under publishPolicy Auto it reads the agent (one GET, even when
// several workers start changes at once) to learn whether it was published,
// unless the Ledger says a publish is owed already. A rollout that owes a
// publish is recorded in the Ledger before its first change is allowed.
func (p *Publisher) BeginChange(ctx context.Context, key agentKey, api ActionAPI, policy agentsv1alpha1.PublishPolicy) error {
	if err := p.Load(ctx, key.env); err != nil {
		return err
	}
	prior, err := p.readPrior(ctx, key, api, policy)
	if err != nil {
		return err
	}
	p.mu.Lock()
	r := p.rollout(key)
	r.api, r.policy = api, policy
	r.inflight++
	switch {
	case r.active:
		// A change after a refused publish retries the publish.
		r.notBefore = time.Time{}
	default:
		r.active, r.lastChange, r.failures, r.notBefore = true, p.Now(), 0, time.Time{}
		r.owed = policy == agentsv1alpha1.PublishPolicyAlways ||
			(policy == agentsv1alpha1.PublishPolicyAuto && prior == talkover.AgentStatusPublished)
		r.state = rolloutState(policy, r.owed)
	}
	p.mu.Unlock()
	if err := p.record(ctx, key); err != nil {
		p.EndChange(key)
		return err
	}
	return nil
}

// record writes an owed publish to the Ledger, once per rollout. A change
// of a rollout that owes nothing takes no lock: only the entry of an owed
// publish can race with its removal.
func (p *Publisher) record(ctx context.Context, key agentKey) error {
	p.mu.Lock()
	owed := p.agents[key].owed
	p.mu.Unlock()
	if p.Ledger == nil || !owed {
		return nil
	}
	lock := p.ledgerLock(key.env)
	lock.Lock()
	defer lock.Unlock()
	p.mu.Lock()
	r := p.agents[key]
	need := r.owed && !r.ledgered
	p.mu.Unlock()
	if !need {
		return nil
	}
	if err := p.Ledger.Add(ctx, key.env, key.agentID); err != nil {
		return fmt.Errorf("recording that agent %s owes a publish: %w", key.agentID, err)
	}
	p.mu.Lock()
	r.ledgered = true
	p.mu.Unlock()
	return nil
}

// unrecord removes the Ledger entry of an agent that owes nothing.
func (p *Publisher) unrecord(ctx context.Context, key agentKey) {
	lock := p.ledgerLock(key.env)
	lock.Lock()
	defer lock.Unlock()
	p.mu.Lock()
	r := p.agents[key]
	need := r != nil && r.ledgered && !r.active
	p.mu.Unlock()
	if !need {
		return
	}
	err := p.Ledger.Remove(ctx, key.env, key.agentID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		log.FromContext(ctx).Info("Failed to remove the record of an owed publish; will retry", "agent", key.agentID, "error", err.Error())
		r.failures++
		r.notBefore = p.Now().Add(backoff(r.failures))
		return
	}
	r.ledgered, r.failures, r.notBefore = false, 0, time.Time{}
}

// readPrior returns the agent's status before the rollout, reading it only
// under Auto and only once per rollout. Concurrent callers wait for the
// reader.
func (p *Publisher) readPrior(ctx context.Context, key agentKey, api ActionAPI,
	policy agentsv1alpha1.PublishPolicy) (string, error) {
	for {
		p.mu.Lock()
		r := p.rollout(key)
		if r.active || policy != agentsv1alpha1.PublishPolicyAuto {
			p.mu.Unlock()
			return "", nil
		}
		if wait := r.reading; wait != nil {
			p.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		done := make(chan struct{})
		r.reading = done
		p.mu.Unlock()

		agent, err := api.GetAgent(talkover.WithTurn(ctx, key.turn("read"), talkover.PriorityHigh), key.agentID)

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
			return "", err
		}
		return agent.CurrentStatus, nil
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
	loaded := false
	for {
		if !loaded {
			if err := p.loadAll(ctx); err != nil {
				log.FromContext(ctx).Info("Failed to read the owed publishes; will retry", "error", err.Error())
			} else {
				loaded = true
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-p.wake:
		}
		publish, unrecord := p.due()
		for _, key := range publish {
			p.publish(ctx, key)
		}
		for _, key := range unrecord {
			p.unrecord(ctx, key)
		}
	}
}

// due lists the agents whose publish is owed and whose changes settled, and
// the agents whose Ledger entry is to be removed.
func (p *Publisher) due() (publish, unrecord []agentKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.Now()
	for key, r := range p.agents {
		if now.Before(r.notBefore) {
			continue
		}
		if !r.active {
			if r.ledgered && p.Ledger != nil {
				unrecord = append(unrecord, key)
			}
			continue
		}
		if r.inflight > 0 || now.Sub(r.lastChange) < p.Quiet {
			continue
		}
		if !r.owed {
			// Nothing to publish: the rollout ends, the state stays.
			r.active = false
			continue
		}
		publish = append(publish, key)
	}
	return publish, unrecord
}

// publish publishes one agent and records the outcome.
func (p *Publisher) publish(ctx context.Context, key agentKey) {
	logger := log.FromContext(ctx).WithValues("agent", key.agentID, "environment", key.env.String())
	p.mu.Lock()
	r := p.agents[key]
	api, policy := r.api, r.policy
	p.mu.Unlock()
	if api == nil {
		// A publish found in the Ledger: no change of this run has
		// resolved the environment yet.
		var err error
		if api, policy, err = p.resolve(ctx, key); err != nil {
			p.resolveFailed(ctx, key, r, err)
			return
		}
	}
	if policy == agentsv1alpha1.PublishPolicyManual {
		// The policy became Manual after the change: never publish.
		p.mu.Lock()
		r.active, r.owed, r.state = false, false, rolloutState(policy, false)
		p.mu.Unlock()
		p.unrecord(ctx, key)
		p.notify(key)
		return
	}

	agent, err := api.PublishAgent(talkover.WithTurn(ctx, key.turn("publish"), talkover.PriorityHigh), key.agentID)
	if errors.Is(err, context.Canceled) {
		return
	}
	var budget *talkover.BudgetError
	if errors.As(err, &budget) {
		// Not sent: come back when the booked slot is due.
		p.mu.Lock()
		r.notBefore = p.Now().Add(budget.RetryAfter)
		p.mu.Unlock()
		return
	}
	ended, changed := p.recordOutcome(logger, r, agent, err)
	if ended {
		p.unrecord(ctx, key)
	}
	if changed {
		p.notify(key)
	}
}

func (p *Publisher) resolve(ctx context.Context, key agentKey) (ActionAPI, agentsv1alpha1.PublishPolicy, error) {
	if p.Resolve == nil {
		return nil, "", errors.New("no API client for the environment")
	}
	api, policy, err := p.Resolve(ctx, key.env)
	if err != nil {
		return nil, "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.agents[key]
	if r.api == nil {
		r.api, r.policy = api, policy
	}
	return r.api, r.policy, nil
}

// resolveFailed drops a publish whose environment is gone, and retries one
// whose environment cannot be used yet.
func (p *Publisher) resolveFailed(ctx context.Context, key agentKey, r *agentRollout, err error) {
	p.mu.Lock()
	if apierrors.IsNotFound(err) {
		r.active, r.owed, r.ledgered = false, false, false
		p.mu.Unlock()
		return
	}
	r.failures++
	r.notBefore = p.Now().Add(backoff(r.failures))
	p.mu.Unlock()
	log.FromContext(ctx).Info("Cannot publish the agent yet; will retry", "agent", key.agentID,
		"environment", key.env.String(), "error", err.Error())
}

func (p *Publisher) notify(key agentKey) {
	if p.Notify != nil {
		go p.Notify(key)
	}
}

// recordOutcome records the outcome of a publish call. It reports whether
// the rollout ended with it, and whether the AgentActions have something new
// to report.
func (p *Publisher) recordOutcome(logger logr.Logger, r *agentRollout, agent *talkover.Agent, err error) (ended, changed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.inflight > 0 || p.Now().Sub(r.lastChange) < p.Quiet {
		// A change started meanwhile: keep the publish owed.
		if err == nil {
			r.state.agentStatus = talkover.AgentStatusDraft
		}
		return false, false
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
	case talkover.IsNotFound(err):
		// The agent is gone, and its actions with it: nothing to publish.
		logger.Info("The agent to publish no longer exists", "error", err.Error())
		r.active, r.owed, r.failures, r.notBefore = false, false, 0, time.Time{}
		r.state = publishState{reason: agentsv1alpha1.ReasonAgentNotFound, agentStatus: "",
			message: "The agent was not found when the operator published it: " + err.Error()}
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
	return !r.active, true
}

// backoff is the wait before the n-th retry of a failed publish.
func backoff(n int) time.Duration {
	d := retryBaseDelay
	for i := 1; i < n && d < retryMaxDelay; i++ {
		d *= 2
	}
	return min(d, retryMaxDelay)
}
