package agent

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/featuregate"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/features"
	"github.com/clusternet/clusternet/pkg/helm"
)

// Options are clusternet-agent's flags.
type Options struct {
	// Child cluster.
	Kubeconfig     string
	AgentNamespace string

	// Parent cluster and registration.
	ParentURL          string
	BootstrapToken     string
	ParentCAFile       string
	RegistrationSecret string

	// What the child says about itself.
	ClusterName       string
	ClusterNamePrefix string
	ClusterNamespace  string
	ClusterType       string
	ClusterLabels     map[string]string
	ClusterSyncMode   string
	StatusFrequency   time.Duration
	// PredictorFrequency bounds how often a change in what the child can
	// take is reported between heartbeats (Predictor gate: predictor.go).
	PredictorFrequency time.Duration

	// LabelAggregatePrefixes and LabelAggregateThreshold (upstream
	// Clusternet's --label-aggregate-prefix and --label-aggregate-threshold)
	// copy node labels under the prefixes that at least that share of the
	// worker nodes carry onto the ManagedCluster (nodelabels.go).
	LabelAggregatePrefixes  []string
	LabelAggregateThreshold float64

	// ProxyAllowedHosts widens what the agent dials for the hub's proxy
	// beyond its own apiserver.
	ProxyAllowedHosts []string

	// ChartRepositories bound what the agent fetches from chart
	// repositories in pull mode (--chart-repository-*, docs/helm.md).
	ChartRepositories *helm.RepositoryOptions

	// HealthProbeBindAddress serves /healthz, /livez and /readyz,
	// MetricsBindAddress /metrics; "0" turns either off.
	HealthProbeBindAddress string
	MetricsBindAddress     string
	// Profiling serves Go's /debug/pprof/ on ProfilingBindAddress, which
	// must be a loopback address: the metrics listener has no
	// authentication, so profiles get a listener only the pod itself (or
	// kubectl port-forward) reaches.
	Profiling            bool
	ProfilingBindAddress string

	FeatureGates featuregate.MutableFeatureGate
	Logs         *logs.Options
}

// DefaultRegistrationSecret is the Secret that deploy/templates/clusternet_agent_secret.yaml creates.
const DefaultRegistrationSecret = "clusternet-system/clusternet-agent-cluster-registration"

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		AgentNamespace:          "clusternet-system",
		RegistrationSecret:      DefaultRegistrationSecret,
		ClusterNamePrefix:       "clusternet-cluster",
		ClusterType:             string(clusterv1beta1.EdgeClusterSelfProvisioned),
		ClusterSyncMode:         string(clusterv1beta1.DualSyncMode),
		StatusFrequency:         3 * time.Minute,
		PredictorFrequency:      15 * time.Second,
		LabelAggregatePrefixes:  []string{DefaultLabelAggregatePrefix},
		LabelAggregateThreshold: DefaultLabelAggregateThreshold,
		ChartRepositories:       helm.NewRepositoryOptions("clusternet-agent"),
		HealthProbeBindAddress:  ":8081",
		MetricsBindAddress:      ":8080",
		ProfilingBindAddress:    "127.0.0.1:6060",
		FeatureGates:            features.NewAgentGates(),
		Logs:                    logs.NewOptions(),
	}
}

// Flags groups the flags by concern, for help output.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	child := fss.FlagSet("child cluster")
	child.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig of the child cluster; empty means in-cluster configuration.")
	child.StringVar(&o.AgentNamespace, "agent-namespace", o.AgentNamespace, "Namespace in the child where the agent keeps its parent credentials.")

	reg := fss.FlagSet("registration")
	reg.StringVar(&o.ParentURL, "parent-url", o.ParentURL, "The parent apiserver, https only (e.g. https://192.168.10.10:6443). Overrides parentURL in --registration-secret.")
	reg.StringVar(&o.BootstrapToken, "bootstrap-token", o.BootstrapToken, "Bootstrap token to register with, as made by 'kubectl clusternet create token' in the parent (abcdef.0123456789abcdef). Overrides regToken in --registration-secret.")
	reg.StringVar(&o.ParentCAFile, "parent-ca-file", o.ParentCAFile, "CA bundle to verify the parent with; empty uses parentCA from --registration-secret, else the system roots.")
	reg.StringVar(&o.RegistrationSecret, "registration-secret", o.RegistrationSecret, "namespace/name of the child Secret holding parentURL, regToken and optionally parentCA.")
	reg.StringVar(&o.ClusterName, "cluster-name", o.ClusterName, "ManagedCluster name to ask for; empty lets the hub generate one from --cluster-name-prefix.")
	reg.StringVar(&o.ClusterNamePrefix, "cluster-name-prefix", o.ClusterNamePrefix, "Prefix of generated cluster names.")
	reg.StringVar(&o.ClusterNamespace, "cluster-namespace", o.ClusterNamespace, "Dedicated namespace to ask for in the parent; empty lets the hub generate one.")
	reg.StringVar(&o.ClusterType, "cluster-type", o.ClusterType, "Cluster type: EdgeClusterSelfProvisioned, EdgeCluster, CloudCluster or SelfProvisioned.")
	reg.Var(cliflag.NewMapStringString(&o.ClusterLabels), "cluster-labels", "Labels for the ManagedCluster, k1=v1,k2=v2; subscriptions select clusters by them.")
	reg.StringVar(&o.ClusterSyncMode, "cluster-sync-mode", o.ClusterSyncMode, "Who applies applications to this cluster: Push, Pull or Dual.")
	reg.DurationVar(&o.StatusFrequency, "cluster-status-update-frequency", o.StatusFrequency, "How often the agent reports the cluster's status (its heartbeat).")
	reg.DurationVar(&o.PredictorFrequency, "predictor-update-frequency", o.PredictorFrequency,
		"With the Predictor gate on: how often at most the agent reports, between heartbeats, that what the cluster can still take (status.available) changed. Nothing is written while it does not change.")
	reg.StringSliceVar(&o.LabelAggregatePrefixes, "label-aggregate-prefix", o.LabelAggregatePrefixes,
		"Node label key prefixes (repeat the flag or separate with commas, e.g. feature.node.kubernetes.io/) whose labels, when at least --label-aggregate-threshold of the worker nodes carry them, "+
			"the agent copies onto the ManagedCluster at each heartbeat, so Subscriptions select clusters by them. Empty turns it off. The parent's admission policy must allow the prefixes.")
	reg.Float64Var(&o.LabelAggregateThreshold, "label-aggregate-threshold", o.LabelAggregateThreshold,
		"Share of worker (not control-plane) nodes, more than 0 and at most 1, that must carry a node label under --label-aggregate-prefix for the ManagedCluster to get it.")

	tun := fss.FlagSet("tunnel")
	tun.StringSliceVar(&o.ProxyAllowedHosts, "proxy-allowed-hosts", o.ProxyAllowedHosts, "host:port pairs, besides the child's own apiserver, that requests through the hub may reach (e.g. a kubectl proxy in the child).")

	serving := fss.FlagSet("health and metrics")
	serving.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress,
		"Address serving /healthz, /livez and /readyz (ready: registered, informers synced, tunnel to the hub up), e.g. :8081 or 127.0.0.1:8081; 0 turns them off.")
	serving.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress,
		"Address serving Prometheus metrics on /metrics, e.g. :8080 or 127.0.0.1:8080; 0 turns them off.")
	serving.BoolVar(&o.Profiling, "profiling", o.Profiling,
		"Serve /debug/pprof/ (Go's CPU, heap, goroutine ... profiles) on --profiling-bind-address. Named as in Kubernetes components, but off by default: a profile is for investigating, and it costs CPU.")
	serving.StringVar(&o.ProfilingBindAddress, "profiling-bind-address", o.ProfilingBindAddress,
		"With --profiling: loopback address (127.0.0.1:<port>, [::1]:<port> or localhost:<port>) serving /debug/pprof/, without authentication, so only the agent's pod reaches it; use kubectl port-forward to read a profile.")
	o.ChartRepositories.AddFlags(fss.FlagSet("chart repositories"))
	o.FeatureGates.AddFlag(fss.FlagSet("feature gates"))
	logsapi.AddFlags(o.Logs, fss.FlagSet("logging"))
	return fss
}

// Validate checks the flags that do not need the child cluster. The parent
// URL and token may still come from the registration Secret: validateParent
// checks them once they are known.
func (o *Options) Validate() error {
	var errs []error
	switch clusterv1beta1.ClusterSyncMode(o.ClusterSyncMode) {
	case clusterv1beta1.PushSyncMode, clusterv1beta1.PullSyncMode, clusterv1beta1.DualSyncMode:
	default:
		errs = append(errs, fmt.Errorf("--cluster-sync-mode %q is not supported: use Push, Pull or Dual", o.ClusterSyncMode))
	}
	switch clusterv1beta1.ClusterType(o.ClusterType) {
	case clusterv1beta1.EdgeClusterSelfProvisioned, clusterv1beta1.EdgeCluster, clusterv1beta1.CloudCluster, clusterv1beta1.SelfProvisioned:
	default:
		errs = append(errs, fmt.Errorf("--cluster-type %q is not supported: use EdgeClusterSelfProvisioned, EdgeCluster, CloudCluster or SelfProvisioned", o.ClusterType))
	}
	errs = append(errs, o.ChartRepositories.Validate()...)
	for _, f := range []struct{ flag, addr string }{{"--health-probe-bind-address", o.HealthProbeBindAddress}, {"--metrics-bind-address", o.MetricsBindAddress}} {
		if err := validateBindAddress(f.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", f.flag, f.addr, err))
		}
	}
	if o.HealthProbeBindAddress != "0" && o.HealthProbeBindAddress == o.MetricsBindAddress {
		errs = append(errs, fmt.Errorf("--health-probe-bind-address and --metrics-bind-address are both %q: give them different ports, or 0 to turn one off", o.MetricsBindAddress))
	}
	if o.Profiling {
		if err := validateLoopbackAddress(o.ProfilingBindAddress); err != nil {
			errs = append(errs, fmt.Errorf("--profiling-bind-address %q: %w", o.ProfilingBindAddress, err))
		}
	}
	if o.PredictorFrequency < time.Second {
		errs = append(errs, fmt.Errorf("--predictor-update-frequency %s: must be at least 1s", o.PredictorFrequency))
	}
	if o.StatusFrequency < time.Second {
		errs = append(errs, fmt.Errorf("--cluster-status-update-frequency %s: must be at least 1s", o.StatusFrequency))
	}
	errs = append(errs, validateLabelAggregation(o.LabelAggregatePrefixes, o.LabelAggregateThreshold)...)
	if o.ClusterName != "" {
		for _, msg := range validation.IsDNS1123Label(o.ClusterName) {
			errs = append(errs, fmt.Errorf("--cluster-name %q: %s", o.ClusterName, msg))
		}
	}
	if ns, name, ok := strings.Cut(o.RegistrationSecret, "/"); !ok || ns == "" || name == "" {
		errs = append(errs, fmt.Errorf("--registration-secret %q: must be namespace/name", o.RegistrationSecret))
	}
	if o.ParentURL != "" {
		if err := validateParentURL(o.ParentURL); err != nil {
			errs = append(errs, fmt.Errorf("--parent-url: %w", err))
		}
	}
	if o.BootstrapToken != "" {
		if err := validateToken(o.BootstrapToken); err != nil {
			errs = append(errs, fmt.Errorf("--bootstrap-token: %w", err))
		}
	}
	return errors.Join(errs...)
}

// validateBindAddress accepts host:port (the host may be empty: every
// address) or 0.
func validateBindAddress(addr string) error {
	if addr == "0" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be host:port, :port or 0 (off): %w", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q must be a number from 0 to 65535", port)
	}
	return nil
}

// validateLoopbackAddress accepts host:port whose host is a loopback
// address: profiles are served without authentication.
func validateLoopbackAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be 127.0.0.1:<port>: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("host %q is not a loopback address: profiles have no authentication, so they are served on 127.0.0.1, [::1] or localhost only (read them with kubectl port-forward)", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q must be a number from 0 to 65535", port)
	}
	return nil
}

// validateParentURL accepts only https: upstream Clusternet's only scheme, and
// the only one that keeps the bootstrap token off the wire in clear text.
func validateParentURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%q uses scheme %q: the parent URL must be https, e.g. https://192.168.10.10:6443", raw, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host: write it as https://<host>[:<port>]", raw)
	}
	return nil
}

// validateToken checks the bootstrap token's shape: [a-z0-9]{6}.[a-z0-9]{16}.
func validateToken(token string) error {
	id, secret, ok := strings.Cut(token, ".")
	if !ok || len(id) != 6 || len(secret) != 16 || !lowerAlnum(id) || !lowerAlnum(secret) {
		return errors.New("a bootstrap token looks like abcdef.0123456789abcdef: 6 and 16 characters of [a-z0-9] joined by a dot")
	}
	return nil
}

func lowerAlnum(s string) bool {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
