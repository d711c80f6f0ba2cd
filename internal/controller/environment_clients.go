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

// Clients hands out one API client per Environment, and one rate limiter and
// circuit breaker per API credential: two Environments that use the same URL
// and token share them, because the API counts requests per token. It also remembers
// whether each Environment's token last worked, for the Environment's Ready
// condition. It is safe for concurrent use.
type Clients struct {
	factory ClientFactory
	metrics *talkover.Metrics
	clock   talkover.Clock

	mu       sync.Mutex
	limiters map[string]*talkover.Limiter
	breakers map[string]*talkover.Breaker
	clients  map[types.NamespacedName]cachedClient
	auth     map[types.NamespacedName]authState
	notify   func(types.NamespacedName)
}

type cachedClient struct {
	credential string
	api        ActionAPI
}

// authState is what the last API answer said about an Environment's token.
type authState struct {
	ok      bool
	reason  string
	message string
}

// NewClients returns an empty registry. notify, if not nil, is called with
// the Environment's name whenever what is known about its token changes.
func NewClients(factory ClientFactory, metrics *talkover.Metrics, clock talkover.Clock, notify func(types.NamespacedName)) *Clients {
	if factory == nil {
		factory = NewTalkoverClient
	}
	if clock == nil {
		clock = talkover.RealClock{}
	}
	return &Clients{
		factory:  factory,
		metrics:  metrics,
		clock:    clock,
		limiters: map[string]*talkover.Limiter{},
		breakers: map[string]*talkover.Breaker{},
		clients:  map[types.NamespacedName]cachedClient{},
		auth:     map[types.NamespacedName]authState{},
		notify:   notify,
	}
}

// credentialKey identifies an API credential without holding the token.
func credentialKey(apiURL, token string) string {
	sum := sha256.Sum256([]byte(apiURL + "\x00" + token))
	return hex.EncodeToString(sum[:])
}

// For returns the client of an Environment, building it if the Environment's
// URL or token changed since the last call.
func (c *Clients) For(env *agentsv1alpha1.Environment, token string) (ActionAPI, error) {
	apiURL := EffectiveAPIURL(env)
	key := credentialKey(apiURL, token)
	name := types.NamespacedName{Namespace: env.Namespace, Name: env.Name}

	c.mu.Lock()
	defer c.mu.Unlock()
	limiter := c.limiterLocked(key, EffectiveRequestsPerMinute(env))
	breaker, ok := c.breakers[key]
	if !ok {
		breaker = talkover.NewBreaker(c.clock)
		c.breakers[key] = breaker
	}
	if cached, ok := c.clients[name]; ok && cached.credential == key {
		return cached.api, nil
	}
	api, err := c.factory(talkover.Config{
		BaseURL:   apiURL,
		Token:     token,
		UserAgent: version.UserAgent(),
		Limiter:   limiter,
		Breaker:   breaker,
		Metrics:   c.metrics,
	})
	if err != nil {
		return nil, err
	}
	c.clients[name] = cachedClient{credential: key, api: api}
	return api, nil
}

func (c *Clients) limiterLocked(key string, rpm int) *talkover.Limiter {
	l, ok := c.limiters[key]
	if !ok {
		l = talkover.NewLimiter(rpm, c.clock)
		c.limiters[key] = l
		return l
	}
	l.SetRate(rpm)
	return l
}

// Forget drops the client of a deleted Environment.
func (c *Clients) Forget(name types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.clients, name)
	delete(c.auth, name)
}

// ReportAuth records whether the API accepted an Environment's token, and
// notifies the Environment's controller when that changed.
func (c *Clients) ReportAuth(name types.NamespacedName, ok bool, reason, message string) {
	c.mu.Lock()
	prev, known := c.auth[name]
	next := authState{ok: ok, reason: reason, message: message}
	c.auth[name] = next
	notify := c.notify
	c.mu.Unlock()
	if notify != nil && (!known || prev != next) {
		notify(name)
	}
}

// Auth returns what the last API answer said about an Environment's token.
func (c *Clients) Auth(name types.NamespacedName) (authState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.auth[name]
	return s, ok
}
