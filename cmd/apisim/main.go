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

// Command apisim serves the in-memory Talkover API simulator on a loopback
// address, for running the operator against it by hand or from scripts.
//
//	apisim --env dev=talq_dev --agent dev/agent-1:published --rate-limit 100
//
// The API is served under /api/v1 and the unauthenticated admin endpoints
// under /_admin/ (state, requests, counts, reset, faults, outage, burst429,
// agents, upsert-mode). One line is logged per request: method, route
// template and status, never tokens or bodies.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/talkover/talkover-operator/internal/apisim"
)

// shutdownTimeout bounds the graceful shutdown after a signal.
const shutdownTimeout = 5 * time.Second

// environment is one --env NAME=TOKEN flag.
type environment struct {
	name  string
	token string
}

// agentSpec is one --agent ENV/AGENT_ID[:published] flag.
type agentSpec struct {
	env       string
	id        string
	published bool
}

// config is the parsed command line.
type config struct {
	addr        string
	envs        []environment
	agents      []agentSpec
	rateLimit   int
	upsertMode  apisim.UpsertMode
	allowRemote bool
}

// envFlags collects repeated --env flags.
type envFlags struct{ list *[]environment }

// String returns the flag's value for help output; tokens are not printed.
func (f envFlags) String() string { return "" }

// Set parses NAME=TOKEN.
func (f envFlags) Set(v string) error {
	name, token, ok := strings.Cut(v, "=")
	if !ok || name == "" || token == "" {
		return errors.New("want NAME=TOKEN")
	}
	*f.list = append(*f.list, environment{name: name, token: token})
	return nil
}

// agentFlags collects repeated --agent flags.
type agentFlags struct{ list *[]agentSpec }

// String returns the flag's value for help output.
func (f agentFlags) String() string { return "" }

// Set parses ENV/AGENT_ID[:published].
func (f agentFlags) Set(v string) error {
	spec := agentSpec{}
	if rest, ok := strings.CutSuffix(v, ":published"); ok {
		v, spec.published = rest, true
	}
	env, id, ok := strings.Cut(v, "/")
	if !ok || env == "" || id == "" {
		return errors.New("want ENV/AGENT_ID[:published]")
	}
	spec.env, spec.id = env, id
	*f.list = append(*f.list, spec)
	return nil
}

// parseFlags parses the command line.
func parseFlags(args []string, output io.Writer) (config, error) {
	cfg := config{}
	fs := flag.NewFlagSet("apisim", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8089", "listen address (loopback only unless --allow-remote)")
	fs.Var(envFlags{&cfg.envs}, "env", "environment NAME=TOKEN (repeatable)")
	fs.Var(agentFlags{&cfg.agents}, "agent", "agent ENV/AGENT_ID[:published] (repeatable)")
	fs.IntVar(&cfg.rateLimit, "rate-limit", 0, "requests per minute per token, 0 = off")
	mode := fs.String("upsert-mode", "node_id", "upsert key: node_id or always-create")
	fs.BoolVar(&cfg.allowRemote, "allow-remote", false, "allow a non-loopback --addr (the admin endpoints have no auth)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	m, err := apisim.ParseUpsertMode(*mode)
	if err != nil {
		return config{}, err
	}
	cfg.upsertMode = m
	return cfg, cfg.validate()
}

// validate checks the flags against each other.
func (c config) validate() error {
	if c.rateLimit < 0 {
		return errors.New("--rate-limit must be ≥ 0")
	}
	known := map[string]bool{}
	for _, e := range c.envs {
		known[e.name] = true
	}
	for _, a := range c.agents {
		if !known[a.env] {
			return fmt.Errorf("--agent %s/%s: environment %q has no --env", a.env, a.id, a.env)
		}
	}
	if !c.allowRemote && !isLoopback(c.addr) {
		return fmt.Errorf("--addr %q is not a loopback address; pass --allow-remote to serve it anyway", c.addr)
	}
	return nil
}

// isLoopback reports whether addr's host is localhost or a loopback IP.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newSimulator builds the simulator described by cfg, logging API requests.
func newSimulator(cfg config, logger *log.Logger) *apisim.Server {
	s := apisim.New(
		apisim.WithRateLimit(cfg.rateLimit),
		apisim.WithUpsertMode(cfg.upsertMode),
		apisim.WithRequestHook(func(r apisim.Request) { logRequest(logger, r) }),
	)
	for _, e := range cfg.envs {
		s.AddEnvironment(e.name, e.token)
	}
	for _, a := range cfg.agents {
		s.AddAgent(a.env, a.id, apisim.AgentOptions{Published: a.published})
	}
	return s
}

// logRequest logs one API request (method and route template, status,
// fault) without token, IDs or body.
func logRequest(logger *log.Logger, r apisim.Request) {
	route := r.Route // a template that starts with the method
	if route == "" {
		route = r.Method + " (no route)"
	}
	status := fmt.Sprint(r.Status)
	if r.Status == 0 {
		status = "reset"
	}
	line := fmt.Sprintf("api %s %s", route, status)
	if r.Fault != "" {
		line += " fault=" + r.Fault
	}
	logger.Print(line)
}

// statusRecorder remembers the status written by a handler.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader records status and forwards it.
func (w *statusRecorder) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// logAdmin logs the admin requests; API requests are logged by the hook.
func logAdmin(logger *log.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/_admin/") {
			next.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		logger.Printf("admin %s %s %d", r.Method, r.URL.Path, rec.status)
	})
}

// run serves cfg until ctx is done, then shuts down. ready, if set, gets
// the listening address.
func run(ctx context.Context, cfg config, logger *log.Logger, ready func(addr string)) error {
	sim := newSimulator(cfg, logger)
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: logAdmin(logger, sim.Handler()), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Printf("serving http://%s/api/v1 (%d environments, %d agents, upsert mode %s, rate limit %d/min)",
		ln.Addr(), len(cfg.envs), len(cfg.agents), cfg.upsertMode, cfg.rateLimit)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Print("shutting down")
	sim.Close() // cuts injected latency and streamed bodies short
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apisim:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := log.New(os.Stderr, "apisim: ", log.LstdFlags)
	if err := run(ctx, cfg, logger, nil); err != nil {
		logger.Print(err)
		stop()
		os.Exit(1)
	}
}
