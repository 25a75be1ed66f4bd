// Package hub is clusternet-hub: the parent-side server. It runs the
// registration approver and the cluster lifecycle controller (under leader
// election, so any number of replicas can run).
package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"

	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/component-base/logs"
	"k8s.io/klog/v2"

	"github.com/clusternet/clusternet/pkg/features"
	"github.com/clusternet/clusternet/pkg/helm"
	"github.com/clusternet/clusternet/pkg/metrics"
	"github.com/clusternet/clusternet/pkg/server/command"
	"github.com/clusternet/clusternet/pkg/server/hub/approver"
	"github.com/clusternet/clusternet/pkg/server/hub/clusterapi"
	"github.com/clusternet/clusternet/pkg/server/hub/lifecycle"
	"github.com/clusternet/clusternet/pkg/server/hub/sockets"
	"github.com/clusternet/clusternet/pkg/tunnel"
	"github.com/clusternet/clusternet/pkg/version"
)

// Options are clusternet-hub's flags.
type Options struct {
	Kubeconfig string
	Workers    int
	// QPS and Burst bound the hub's requests to the parent. client-go's
	// defaults (5/10) would pace one approval's dozen writes over seconds;
	// ours are sized for a fleet: a rollout to 1,000 clusters is some 10,000
	// requests and a registration 14, so 50 a second (the old default, as
	// kube-controller-manager's) meant minutes for either. The parent's API
	// Priority and Fairness, not this client-side pacing, is what protects
	// the parent from the hub.
	QPS   float32
	Burst int

	LeaderElect          bool
	LeaderElectNamespace string
	LeaseDuration        time.Duration
	RenewDeadline        time.Duration
	RetryPeriod          time.Duration

	// Recommended are the aggregated API server's options (serving,
	// delegated authentication and authorization). --secure-port=0 runs
	// the controllers alone.
	Recommended *genericoptions.RecommendedOptions
	// ShadowAuthorizeRealKind makes shadow API requests also need the
	// caller's permission on the real kind (docs/shadow.md).
	ShadowAuthorizeRealKind bool
	// IdentityMappingFile maps parent users and groups to child ones on the
	// proxy path (docs/tunnel.md); empty maps nothing.
	IdentityMappingFile string
	// MaxRequestsPerCluster bounds the proxied requests in flight into one
	// cluster (and so the streams in its tunnel).
	MaxRequestsPerCluster int
	// Registration: --registration-approval and --agent-token-ttl.
	Registration approver.Options
	// ChartRepositories bound what the hub fetches from chart repositories
	// (--chart-repository-*, docs/helm.md).
	ChartRepositories *helm.RepositoryOptions
	// Replicas: forwarding between replicas and the managed certificates
	// (replicas.go).
	Replicas ReplicaOptions
	// ClusterAPI: discovering cluster-api Clusters (--cluster-api-*,
	// docs/cluster-api.md); off unless it names namespaces.
	ClusterAPI *clusterapi.Options
	// FailoverGracePeriod is how long a cluster may be not Ready before
	// the hub taints it for failover (gate FailOver, docs/failover.md).
	FailoverGracePeriod time.Duration

	FeatureGates featuregate.MutableFeatureGate
	Logs         *logs.Options
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		// Each sync of a per-cluster object (a Base, a pushed Description)
		// waits on the parent or a tunnel for tens of milliseconds: with 2
		// workers a Subscription to 1,000 clusters rendered 40 Bases a
		// second (docs/scale.md). The parent is protected by the client's
		// QPS and its own API Priority and Fairness, not by this.
		Workers:                 16,
		QPS:                     300,
		Burst:                   600,
		LeaderElect:             true,
		LeaderElectNamespace:    "clusternet-system",
		LeaseDuration:           15 * time.Second,
		RenewDeadline:           10 * time.Second,
		RetryPeriod:             2 * time.Second,
		Recommended:             newRecommendedOptions(),
		ShadowAuthorizeRealKind: true,
		MaxRequestsPerCluster:   sockets.DefaultMaxRequestsPerCluster,
		Registration:            approver.DefaultOptions(),
		ChartRepositories:       helm.NewRepositoryOptions("clusternet-hub"),
		Replicas:                defaultReplicaOptions(),
		ClusterAPI:              clusterapi.NewOptions(),
		FailoverGracePeriod:     lifecycle.DefaultFailoverGracePeriod,
		FeatureGates:            features.NewHubGates(),
		Logs:                    logs.NewOptions(),
	}
}

// Flags groups the flags by concern, for help output.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	fs := fss.FlagSet("parent")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig of the parent cluster; empty means in-cluster configuration.")
	fs.IntVar(&o.Workers, "workers", o.Workers, "Workers per controller.")
	fs.Float32Var(&o.QPS, "kube-api-qps", o.QPS, "Requests per second to the parent apiserver.")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Request burst to the parent apiserver.")
	reg := fss.FlagSet("registration")
	reg.StringVar((*string)(&o.Registration.Approval), "registration-approval", string(o.Registration.Approval),
		"Who approves ClusterRegistrationRequests: auto (every valid request, as upstream Clusternet does) or manual (an admin, with 'kubectl clusternet approve').")
	reg.DurationVar(&o.Registration.TokenTTL, "agent-token-ttl", o.Registration.TokenTTL,
		"Lifetime of the token each agent gets; the hub renews it at half life. An agent offline for longer needs a new bootstrap token to register again.")
	reg.IntVar(&o.Registration.RegistrationsPerMinute, "registrations-per-minute", o.Registration.RegistrationsPerMinute,
		"How many new clusters the hub admits per minute (bursts of a tenth of it); more wait their turn. Anyone holding the bootstrap token may ask.")
	le := fss.FlagSet("leader election")
	le.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Run controllers only in the replica that holds the lease.")
	le.StringVar(&o.LeaderElectNamespace, "leader-elect-resource-namespace", o.LeaderElectNamespace, "Namespace of the leader election Lease.")
	le.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", o.LeaseDuration, "How long a lease lasts without renewal.")
	le.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", o.RenewDeadline, "How long the leader retries renewing before it gives up.")
	le.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", o.RetryPeriod, "How often candidates try to take the lease.")
	o.Recommended.SecureServing.AddFlags(fss.FlagSet("secure serving"))
	o.Recommended.Authentication.AddFlags(fss.FlagSet("authentication"))
	o.Recommended.Authorization.AddFlags(fss.FlagSet("authorization"))
	o.Recommended.Features.AddFlags(fss.FlagSet("features"))
	fss.FlagSet("features").Lookup("profiling").Usage = profilingUsage
	fss.FlagSet("shadow API").BoolVar(&o.ShadowAuthorizeRealKind, "shadow-authorize-real-kind", o.ShadowAuthorizeRealKind,
		"Require, for every shadow API request, the caller's permission for the same verb on the real kind in the parent (a template of a Secret needs Secret permissions).")
	fss.FlagSet("proxy").IntVar(&o.MaxRequestsPerCluster, "max-requests-per-cluster", o.MaxRequestsPerCluster,
		"Requests in flight into one child cluster through its tunnel (proxied requests, watches and exec sessions count while they last); more are refused with 429.")
	fss.FlagSet("proxy").StringVar(&o.IdentityMappingFile, "identity-mapping-file", o.IdentityMappingFile,
		"YAML file (kind IdentityMapping) mapping parent users and groups to child users and groups, per cluster label selector. Without it, system: groups and users stay in the parent (docs/tunnel.md).")
	o.ChartRepositories.AddFlags(fss.FlagSet("chart repositories"))
	o.ClusterAPI.AddFlags(fss.FlagSet("cluster-api discovery"))
	fss.FlagSet("failover").DurationVar(&o.FailoverGracePeriod, "cluster-failover-grace-period", o.FailoverGracePeriod,
		"With feature gate FailOver: how long a cluster's Ready condition may be Unknown or False before the hub taints it clusters.clusternet.io/unschedulable:NoSchedule and Dividing Subscriptions place its replicas on healthy clusters (docs/failover.md).")
	o.addReplicaFlags(&fss)
	o.FeatureGates.AddFlag(fss.FlagSet("feature gates"))
	logsapi.AddFlags(o.Logs, fss.FlagSet("logging"))
	return fss
}

// Validate checks the flags together.
func (o *Options) Validate() error {
	var errs []error
	if o.QPS <= 0 || o.Burst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps %v and --kube-api-burst %d: both must be positive", o.QPS, o.Burst))
	}
	if o.Workers < 1 {
		errs = append(errs, fmt.Errorf("--workers %d: must be at least 1", o.Workers))
	}
	if a := o.Registration.Approval; a != approver.AutoApproval && a != approver.ManualApproval {
		errs = append(errs, fmt.Errorf("--registration-approval %q: must be %q or %q", a, approver.AutoApproval, approver.ManualApproval))
	}
	if o.FailoverGracePeriod <= 0 {
		errs = append(errs, fmt.Errorf("--cluster-failover-grace-period %q: must be positive (the time a cluster may be not Ready before its replicas move, and Ready again before they may come back); omit it for the default %s", o.FailoverGracePeriod.String(), lifecycle.DefaultFailoverGracePeriod))
	}
	if o.MaxRequestsPerCluster < 1 {
		errs = append(errs, fmt.Errorf("--max-requests-per-cluster %d: must be at least 1", o.MaxRequestsPerCluster))
	}
	if n := o.Registration.RegistrationsPerMinute; n < 1 {
		errs = append(errs, fmt.Errorf("--registrations-per-minute %d: must be at least 1", n))
	}
	if ttl := o.Registration.TokenTTL; ttl < 10*time.Minute {
		errs = append(errs, fmt.Errorf("--agent-token-ttl %s: must be at least 10m (the parent refuses shorter tokens)", ttl))
	}
	errs = append(errs, o.ChartRepositories.Validate()...)
	errs = append(errs, o.ClusterAPI.Validate()...)
	errs = append(errs, o.validateReplicas()...)
	errs = append(errs, o.Recommended.SecureServing.Validate()...)
	errs = append(errs, o.Recommended.Authentication.Validate()...)
	errs = append(errs, o.Recommended.Authorization.Validate()...)
	if o.LeaderElect && o.RenewDeadline >= o.LeaseDuration {
		errs = append(errs, fmt.Errorf("--leader-elect-renew-deadline %s must be shorter than --leader-elect-lease-duration %s", o.RenewDeadline, o.LeaseDuration))
	}
	return errors.Join(errs...)
}

// NewCommand builds the clusternet-hub command.
func NewCommand() *cobra.Command {
	o := NewOptions()
	return command.New(command.Component{
		Use:   "clusternet-hub",
		Short: "Approves child clusters and tracks their health, in the parent cluster",
		Long: `clusternet-hub runs in the parent cluster. It approves ClusterRegistrationRequests
(giving each child a dedicated namespace, a ManagedCluster and scoped
credentials), marks clusters whose heartbeats stop Ready=Unknown, and serves
proxies.clusternet.io as an aggregated API: the agents' tunnels and the proxy
into every child through them.`,
		Flags:    o.Flags(),
		Logs:     o.Logs,
		Validate: o.Validate,
		Run:      o.Run,
	})
}

// Run runs the hub until ctx ends: the API server and the per-tunnel
// controllers in every replica (the parent's aggregator may send a request to
// any of them, and each pushes to the clusters whose tunnels it holds), the
// other controllers only in the replica holding the lease.
func (o *Options) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	logger.Info("Starting clusternet-hub", "version", version.Get())
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	transports := sockets.NewTransports(tunnel.NewRegistry(), o.MaxRequestsPerCluster)
	transports.Tunnels().Watch(metrics.TunnelChanged)
	newContext := func() (*Context, error) {
		c, err := newControllerContext(cfg, transports, o.Workers, o.FeatureGates, o.Registration, o.ChartRepositories)
		if err != nil {
			return nil, err
		}
		c.ClusterAPI = o.ClusterAPI
		c.FailoverGracePeriod = o.FailoverGracePeriod
		return c, nil
	}
	replica, err := newContext()
	if err != nil {
		return err
	}
	serverErr := make(chan error, 1)
	// peersDone holds until this replica released its tunnel Leases.
	var peersDone sync.WaitGroup
	defer func() {
		cancel()
		peersDone.Wait()
	}()
	if o.Recommended.SecureServing.BindPort != 0 {
		peering, err := o.startPeering(ctx, replica, &peersDone)
		if err != nil {
			return err
		}
		// Unless the hub serves its own certificate (--self-signed-certs).
		if peering.serving == nil {
			if err := o.Recommended.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost",
				[]string{"clusternet-hub.clusternet-system.svc"}, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
				return fmt.Errorf("serving certificate: %w", err)
			}
		}
		server, err := o.newAPIServer(replica, peering)
		if err != nil {
			return fmt.Errorf("building the API server: %w", err)
		}
		go func() {
			serverErr <- server.PrepareRun().RunWithContext(ctx)
			cancel() // no API server, no hub: let the process restart
		}()
	}
	if err := replica.start(ctx, replicaControllers); err != nil {
		return err
	}
	// A fresh Context per term as leader: its informers and workers stop
	// with the term, and its wait returns once they have.
	startLeader := func(ctx context.Context) (wait func(), err error) {
		c, err := newContext()
		if err != nil {
			return nil, fmt.Errorf("leader controllers: %w", err)
		}
		if err := c.start(ctx, leaderControllers); err != nil {
			return nil, fmt.Errorf("leader controllers: %w", err)
		}
		return c.shutdown, nil
	}
	elect := noElection
	if o.LeaderElect {
		if elect, err = o.leaseElector(replica.Kube); err != nil {
			return err
		}
	}
	termErr := runTerms(ctx, elect, startLeader)
	cancel() // a failed term stops the API server too: the hub exits
	replica.shutdown()
	if termErr != nil {
		return termErr
	}
	select {
	case err := <-serverErr:
		return err
	default:
		return nil
	}
}

// leaseElector stands for the "clusternet-hub" Lease in
// --leader-elect-resource-namespace. Losing it (say, the parent apiserver
// was away longer than the renew deadline) ends the term, not the hub: it
// keeps serving tunnels and proxying, and runTerms stands again.
func (o *Options) leaseElector(kube kubernetes.Interface) (elector, error) {
	id, err := replicaIdentity()
	if err != nil {
		return nil, err
	}
	return o.newLeaseElector(kube, id)
}

func (o *Options) newLeaseElector(kube kubernetes.Interface, id string) (elector, error) {
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.LeaderElectNamespace, "clusternet-hub",
		kube.CoreV1(), kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return nil, err
	}
	config := func(onStarted func(context.Context), logger klog.Logger) leaderelection.LeaderElectionConfig {
		// client-go calls OnStoppedLeading whenever Run returns, led or not:
		// only a replica that started leading says it stopped.
		var led atomic.Bool
		return leaderelection.LeaderElectionConfig{
			Lock:          lock,
			LeaseDuration: o.LeaseDuration,
			RenewDeadline: o.RenewDeadline,
			RetryPeriod:   o.RetryPeriod,
			// runTerms cancels the elector's context only once the term's
			// workers stopped (or never started): the lease is handed on
			// then, not while they still write.
			ReleaseOnCancel: true,
			Name:            "clusternet-hub",
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					led.Store(true)
					onStarted(ctx)
				},
				OnStoppedLeading: func() {
					if led.Load() {
						logger.Info("Stopped leading", "identity", id)
					}
				},
			},
		}
	}
	// Check the durations once here, so that standing later cannot fail.
	if _, err := leaderelection.NewLeaderElector(config(func(context.Context) {}, klog.Background())); err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return func(ctx context.Context, onStarted func(context.Context)) {
		le, err := leaderelection.NewLeaderElector(config(onStarted, klog.FromContext(ctx)))
		if err != nil { // checked above
			klog.FromContext(ctx).Error(err, "Leader election")
			<-ctx.Done()
			return
		}
		le.Run(ctx)
	}, nil
}

func (o *Options) restConfig() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if o.Kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	}
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = o.QPS, o.Burst
	cfg.UserAgent = "clusternet-hub/" + version.Get().GitVersion
	return cfg, nil
}
