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

// Command manager runs the talkover-operator controllers.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"time"

	// Import all Kubernetes client auth plugins (e.g. Azure, GCP, OIDC, etc.)
	// to ensure that exec-entrypoint and run can make use of them.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	agentsv1alpha1 "github.com/talkover/talkover-operator/api/v1alpha1"
	"github.com/talkover/talkover-operator/internal/controller"
	"github.com/talkover/talkover-operator/internal/talkover"
	"github.com/talkover/talkover-operator/internal/version"
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(agentsv1alpha1.AddToScheme(scheme))
}

// options are the manager's command-line flags.
type options struct {
	metricsAddr          string
	probeAddr            string
	secureMetrics        bool
	enableHTTP2          bool
	enableLeaderElection bool
	leaderElectionNS     string
	leaderElectionID     string
	leaseDuration        time.Duration
	renewDeadline        time.Duration
	retryPeriod          time.Duration
	workers              int
	stalledRetry         time.Duration
	publishQuiet         time.Duration
	operatorNamespace    string
}

func parseFlags() (options, zap.Options) {
	var o options
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", "0", "The address the metrics endpoint binds to. "+
		"Use :8443 for HTTPS or :8080 for HTTP, or leave as 0 to disable the metrics service.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	flag.BoolVar(&o.enableLeaderElection, "leader-elect", false,
		"Enable leader election for controller manager. "+
			"Enabling this will ensure there is only one active controller manager.")
	flag.StringVar(&o.leaderElectionNS, "leader-election-namespace", "",
		"Namespace of the leader election lease (defaults to the manager's namespace when in cluster).")
	flag.StringVar(&o.leaderElectionID, "leader-election-id", "talkover-operator.agents.talkover.ai",
		"Name of the leader election lease; give each installation in a namespace its own.")
	flag.DurationVar(&o.leaseDuration, "leader-election-lease-duration", 15*time.Second,
		"How long a non-leader waits before it may take over a lease that was not renewed.")
	flag.DurationVar(&o.renewDeadline, "leader-election-renew-deadline", 10*time.Second,
		"How long the leader keeps trying to renew its lease before it gives up leadership.")
	flag.DurationVar(&o.retryPeriod, "leader-election-retry-period", 2*time.Second,
		"How often leader election clients retry.")
	flag.BoolVar(&o.secureMetrics, "metrics-secure", true,
		"If set, the metrics endpoint is served securely via HTTPS. Use --metrics-secure=false to use HTTP instead.")
	flag.BoolVar(&o.enableHTTP2, "enable-http2", false,
		"If set, HTTP/2 will be enabled for the metrics server")
	flag.IntVar(&o.workers, "max-concurrent-reconciles", 8, "Number of AgentActions reconciled in parallel.")
	flag.DurationVar(&o.stalledRetry, "stalled-retry-interval", 15*time.Minute,
		"How long a Stalled AgentAction waits before the operator calls the API again on its own.")
	flag.DurationVar(&o.publishQuiet, "publish-quiet-period", 5*time.Second,
		"How long an agent's changes must have settled before the operator publishes it.")
	flag.StringVar(&o.operatorNamespace, "operator-namespace", defaultOperatorNamespace(),
		"The operator's namespace, where the token Secrets of ClusterEnvironments are (default: $POD_NAMESPACE, else talkover-operator-system).")
	showVersion := flag.Bool("version", false, "Print the version and exit.")
	zopts := zap.Options{Development: false}
	zopts.BindFlags(flag.CommandLine)
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		os.Exit(0)
	}
	return o, zopts
}

// defaultOperatorNamespace is the namespace of the operator's pod, from the
// downward API, when it runs in a cluster.
func defaultOperatorNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "talkover-operator-system"
}

func main() {
	o, zopts := parseFlags()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zopts)))
	setupLog.Info("Starting talkover-operator", "version", version.Version)

	mgr, err := newManager(o)
	if err != nil {
		setupLog.Error(err, "Failed to create the manager")
		os.Exit(1)
	}
	ctx := ctrl.SetupSignalHandler()
	if err := setupControllers(ctx, mgr, o); err != nil {
		setupLog.Error(err, "Failed to set up the controllers")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "Failed to set up the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "Failed to set up the ready check")
		os.Exit(1)
	}
	setupLog.Info("Starting manager")
	if err := mgr.Start(ctx); err != nil {
		setupLog.Error(err, "Manager stopped with an error")
		os.Exit(1)
	}
}

func newManager(o options) (ctrl.Manager, error) {
	var tlsOpts []func(*tls.Config)
	if !o.enableHTTP2 {
		// HTTP/2 is disabled by default: see CVE-2023-44487 (HTTP/2 rapid reset).
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.secureMetrics, TLSOpts: tlsOpts}
	if o.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.enableLeaderElection,
		LeaderElectionID:              o.leaderElectionID,
		LeaderElectionNamespace:       o.leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.leaseDuration,
		RenewDeadline:                 &o.renewDeadline,
		RetryPeriod:                   &o.retryPeriod,
		// Secret data is never cached: the controllers watch Secret metadata
		// and read the few Secrets they reference directly.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
	})
}

func setupControllers(ctx context.Context, mgr ctrl.Manager, o options) error {
	clients := controller.NewClients(controller.NewTalkoverClient, talkover.NewMetrics(metrics.Registry), nil)
	envReconciler := &controller.EnvironmentReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Clients: clients,
		ClusterEnvironmentNamespace: o.operatorNamespace}
	if err := envReconciler.SetupWithManager(mgr); err != nil {
		return err
	}
	return (&controller.AgentActionReconciler{
		Client:                      mgr.GetClient(),
		APIReader:                   mgr.GetAPIReader(),
		MetadataReader:              mgr.GetCache(),
		Recorder:                    mgr.GetEventRecorder("talkover-operator"),
		Clients:                     clients,
		StalledRetryInterval:        o.stalledRetry,
		MaxConcurrentReconciles:     o.workers,
		PublishQuiet:                o.publishQuiet,
		ClusterEnvironmentNamespace: o.operatorNamespace,
	}).SetupWithManager(ctx, mgr)
}
