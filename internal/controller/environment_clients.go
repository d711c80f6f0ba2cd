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
	"crypto/sha256"
	"encoding/hex"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/talkover"
	"github.com/talkover/talkover-operator/internal/version"
)

// Clients hands out one API client per environment, and one request budget
// (rate limiter) and circuit breaker per API credential: two environments
// that use the same URL and token share them, because the API counts
// requests per token, and the shared budget runs at the lowest
// requestsPerMinute among them. A credential's budget and breaker are
// dropped when no environment uses it any more. It is safe for concurrent
// use.
type Clients struct {
	factory ClientFactory
	metrics *talkover.Metrics
	clock   talkover.Clock

	mu          sync.Mutex
	credentials map[string]*credential
	clients     map[types.NamespacedName]cachedClient
}

// credential is the budget and breaker of one URL and token.
type credential struct {
	limiter *talkover.Limiter
	breaker *talkover.Breaker
}

// cachedClient is the client of one environment.
type cachedClient struct {
	credential string
	rpm        int
	api        ActionAPI
}

// NewClients returns an empty registry.
func NewClients(factory ClientFactory, metrics *talkover.Metrics, clock talkover.Clock) *Clients {
	if factory == nil {
		factory = NewTalkoverClient
	}
	if clock == nil {
		clock = talkover.RealClock{}
	}
	return &Clients{
		factory:     factory,
		metrics:     metrics,
		clock:       clock,
		credentials: map[string]*credential{},
		clients:     map[types.NamespacedName]cachedClient{},
	}
}

// credentialKey identifies an API credential without holding the token.
func credentialKey(apiURL, token string) string {
	sum := sha256.Sum256([]byte(apiURL + "\x00" + token))
	return hex.EncodeToString(sum[:])
}

// For returns the client of an environment (no namespace: a
// ClusterEnvironment), building it if the environment's URL or token
// changed since the last call.
func (c *Clients) For(env *agentsv1alpha1.Environment, token string) (ActionAPI, error) {
	apiURL := EffectiveAPIURL(env)
	key := credentialKey(apiURL, token)
	name := types.NamespacedName{Namespace: env.Namespace, Name: env.Name}
	rpm := EffectiveRequestsPerMinute(env)

	c.mu.Lock()
	defer c.mu.Unlock()
	cached, ok := c.clients[name]
	if ok && cached.credential == key {
		if cached.rpm != rpm {
			cached.rpm = rpm
			c.clients[name] = cached
			c.rateLocked(key)
		}
		return cached.api, nil
	}
	cred, ok := c.credentials[key]
	if !ok {
		cred = &credential{limiter: talkover.NewLimiter(rpm, c.clock), breaker: talkover.NewBreaker(c.clock)}
		c.credentials[key] = cred
	}
	api, err := c.factory(talkover.Config{
		BaseURL:   apiURL,
		Token:     token,
		UserAgent: version.UserAgent(),
		Limiter:   cred.limiter,
		Breaker:   cred.breaker,
		Metrics:   c.metrics,
	})
	if err != nil {
		c.dropUnusedLocked(key)
		return nil, err
	}
	old, hadOld := c.clients[name]
	c.clients[name] = cachedClient{credential: key, rpm: rpm, api: api}
	c.rateLocked(key)
	if hadOld {
		c.dropUnusedLocked(old.credential)
		c.rateLocked(old.credential)
	}
	return api, nil
}

// rateLocked sets a credential's budget to the lowest requestsPerMinute of
// the environments that use it.
func (c *Clients) rateLocked(key string) {
	cred, ok := c.credentials[key]
	if !ok {
		return
	}
	rpm := 0
	for _, cc := range c.clients {
		if cc.credential == key && (rpm == 0 || cc.rpm < rpm) {
			rpm = cc.rpm
		}
	}
	if rpm > 0 {
		cred.limiter.SetRate(rpm)
	}
}

// dropUnusedLocked drops the budget and breaker of a credential that no
// environment uses.
func (c *Clients) dropUnusedLocked(key string) {
	for _, cc := range c.clients {
		if cc.credential == key {
			return
		}
	}
	delete(c.credentials, key)
}

// Forget drops the client of a deleted environment, and its credential's
// budget and breaker if no other environment uses them.
func (c *Clients) Forget(name types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cached, ok := c.clients[name]
	if !ok {
		return
	}
	delete(c.clients, name)
	c.dropUnusedLocked(cached.credential)
	c.rateLocked(cached.credential)
}

// Credentials returns the number of credentials with a budget.
func (c *Clients) Credentials() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.credentials)
}

// Rate returns the requests per minute of the budget an environment uses
// (0: it has no client).
func (c *Clients) Rate(name types.NamespacedName) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	cached, ok := c.clients[name]
	if !ok {
		return 0
	}
	return c.credentials[cached.credential].limiter.Rate()
}
