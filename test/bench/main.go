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

// Command bench measures the talkover-operator at scale (issue 5). It starts
// a local control plane (envtest: kube-apiserver and etcd), the Talkover API
// simulator in-process, and the real manager binary as a child process, then
// runs the scenarios and prints one table per scenario: wall time, API calls
// by endpoint, 429s, writes to the kube-apiserver, peak RSS and CPU seconds
// of the manager, each against its target.
//
// Run it with 'make bench', or:
//
//	KUBEBUILDER_ASSETS=bin/k8s/1.37.2-linux-amd64 go run ./test/bench [-scenarios 0,1,2,3,4,5,6] [-quick]
//
// It is not part of 'make test'. Targets are reported as PASS or MISS in
// the output; the exit status is non-zero only when a scenario could not
// run (or, with -strict, when a target was missed).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/talkover/talkover-operator/test/utils"
)

// config holds the command-line flags.
type config struct {
	scenarios     []int
	quick         bool
	workers       int
	createWorkers int
	manager       string
	logDir        string
	timeout       time.Duration
	strict        bool
	mimic         bool

	root   string
	assets string
}

func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	scen := fs.String("scenarios", "0,1,2,3,4,5,6", "comma-separated scenarios to run (3 and 4 need 2)")
	fs.BoolVar(&cfg.quick, "quick", false, "run smaller sizes and shorter windows (a fast check while developing; targets are meant for the full run)")
	fs.IntVar(&cfg.workers, "workers", 8, "--max-concurrent-reconciles of the manager, and the concurrency of the scenario-2 baseline")
	fs.IntVar(&cfg.createWorkers, "create-workers", 16, "goroutines that create the AgentActions")
	fs.StringVar(&cfg.manager, "manager", "bin/manager", "the manager binary (relative paths are relative to the repository root); build it with 'make build'")
	fs.StringVar(&cfg.logDir, "logdir", "", "folder for the manager logs and the kubeconfig (default: a new temporary folder)")
	fs.DurationVar(&cfg.timeout, "timeout", 60*time.Minute, "give up after this long")
	fs.BoolVar(&cfg.strict, "strict", false, "exit with status 1 when a target is missed")
	fs.BoolVar(&cfg.mimic, "mimic", true,
		"with scenario 2, also run a diagnostic baseline that makes the manager's kube-apiserver writes per object, without a controller")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	for _, f := range strings.Split(*scen, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 6 {
			return cfg, fmt.Errorf("-scenarios: %q is not a scenario (0 to 6)", f)
		}
		if !slices.Contains(cfg.scenarios, n) {
			cfg.scenarios = append(cfg.scenarios, n)
		}
	}
	slices.Sort(cfg.scenarios)
	if len(cfg.scenarios) == 0 {
		return cfg, errors.New("-scenarios: no scenario selected")
	}
	if (slices.Contains(cfg.scenarios, 3) || slices.Contains(cfg.scenarios, 4)) && !slices.Contains(cfg.scenarios, 2) {
		return cfg, errors.New("-scenarios: scenarios 3 and 4 run on the objects of scenario 2: add 2")
	}
	if cfg.workers < 1 || cfg.createWorkers < 1 {
		return cfg, errors.New("-workers and -create-workers must be at least 1")
	}
	return cfg, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if cfg.root, err = utils.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	cfg.assets = utils.AssetsDir(cfg.root)
	if !filepath.IsAbs(cfg.manager) {
		cfg.manager = filepath.Join(cfg.root, cfg.manager)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	missed, err := run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if missed > 0 && cfg.strict {
		os.Exit(1)
	}
}
