package clusterapi

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// The hub's flags for cluster-api discovery. --cluster-api-kubeconfig is
// upstream Clusternet's name for the same setting.
const (
	FlagKubeconfig   = "cluster-api-kubeconfig"
	FlagNamespaces   = "cluster-api-namespaces"
	FlagParentURL    = "cluster-api-parent-url"
	FlagParentCAFile = "cluster-api-parent-ca-file"
	FlagAgentValues  = "cluster-api-agent-values"
)

// AllNamespaces in --cluster-api-namespaces discovers Clusters in every
// namespace of the management cluster.
const AllNamespaces = "*"

// Options are the hub's cluster-api discovery flags. Discovery is off until
// Namespaces names where it may act: whoever can create a Cluster and its
// kubeconfig Secret in a discovered namespace has the hub install an agent,
// with a fresh bootstrap token, wherever that kubeconfig points.
type Options struct {
	// Kubeconfig reaches the management cluster; empty means the parent
	// itself, with the hub's own credentials.
	Kubeconfig string
	// Namespaces of the management cluster whose Clusters are discovered;
	// AllNamespaces alone means all; empty turns discovery off.
	Namespaces []string
	// ParentURL is the parent apiserver as the discovered clusters reach it.
	ParentURL string
	// ParentCAFile is the CA the agents verify the parent with; empty means
	// the CA the hub itself trusts the parent with.
	ParentCAFile string
	// AgentValuesFile holds values of charts/clusternet-agent (image,
	// featureGates, ...) under the ones the hub sets.
	AgentValuesFile string
}

// NewOptions returns the defaults: discovery off.
func NewOptions() *Options { return &Options{} }

// AddFlags adds the flags to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.Namespaces, FlagNamespaces, o.Namespaces,
		"Namespaces of the cluster-api management cluster whose Clusters the hub discovers: each provisioned Cluster (condition ControlPlaneInitialized) with a <name>-kubeconfig Secret gets clusternet-agent installed through that kubeconfig and registers; a deleted Cluster is deregistered. '*' means every namespace. Empty (the default) turns discovery off. Whoever may create a Cluster and a Secret in a listed namespace can have an agent installed wherever their kubeconfig points: list only namespaces your cluster-api operators alone write (docs/cluster-api.md).")
	fs.StringVar(&o.Kubeconfig, FlagKubeconfig, o.Kubeconfig,
		"Path to a kubeconfig file pointing at the management cluster for cluster-api. Empty means the parent itself is the management cluster, reached with the hub's own credentials.")
	fs.StringVar(&o.ParentURL, FlagParentURL, o.ParentURL,
		"The parent apiserver's URL as the discovered clusters reach it, https only (e.g. https://parent.example.com:6443). Required with --"+FlagNamespaces+".")
	fs.StringVar(&o.ParentCAFile, FlagParentCAFile, o.ParentCAFile,
		"PEM CA bundle the installed agents verify --"+FlagParentURL+" with. Empty means the CA the hub itself trusts the parent with (its --kubeconfig, or the in-cluster CA).")
	fs.StringVar(&o.AgentValuesFile, FlagAgentValues, o.AgentValuesFile,
		"YAML file of charts/clusternet-agent values for the agents the hub installs (image, featureGates, syncMode, resources, ...). The hub sets parentURL, registrationToken, parentCA, clusterName, registrationSecret.create and createNamespace itself.")
}

// Enabled says whether discovery runs.
func (o *Options) Enabled() bool { return o != nil && len(o.Namespaces) > 0 }

// Validate checks the flags together, and that the files they name can be
// read, so that a mistake stops the hub at start rather than its leader.
func (o *Options) Validate() []error {
	if !o.Enabled() {
		var errs []error
		for _, f := range []struct{ flag, value string }{{FlagKubeconfig, o.Kubeconfig}, {FlagParentURL, o.ParentURL},
			{FlagParentCAFile, o.ParentCAFile}, {FlagAgentValues, o.AgentValuesFile}} {
			if f.value != "" {
				errs = append(errs, fmt.Errorf("--%s %q needs --%s: discovery stays off until you name the management cluster's namespaces whose Clusters the hub may act on ('*' for all)",
					f.flag, f.value, FlagNamespaces))
			}
		}
		return errs
	}
	var errs []error
	if err := validateNamespaces(o.Namespaces); err != nil {
		errs = append(errs, err)
	}
	if err := validateParentURL(o.ParentURL); err != nil {
		errs = append(errs, err)
	}
	if o.Kubeconfig != "" {
		if _, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig); err != nil {
			errs = append(errs, fmt.Errorf("--%s %q: %w", FlagKubeconfig, o.Kubeconfig, err))
		}
	}
	if o.ParentCAFile != "" {
		if _, err := readCA(o.ParentCAFile); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := o.agentValues(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func validateNamespaces(namespaces []string) error {
	if slices.Contains(namespaces, AllNamespaces) {
		if len(namespaces) > 1 {
			return fmt.Errorf("--%s %q: %q means every namespace and stands alone; name namespaces or give %q", FlagNamespaces, namespaces, AllNamespaces, AllNamespaces)
		}
		return nil
	}
	for _, ns := range namespaces {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("--%s: %q is not a namespace name: %s", FlagNamespaces, ns, errs[0])
		}
	}
	return nil
}

func validateParentURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("--%s is required with --%s: the installed agents register at this address (e.g. https://parent.example.com:6443)", FlagParentURL, FlagNamespaces)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("--%s %q: must be an https URL with a host, e.g. https://parent.example.com:6443: clusternet-agent registers over https only", FlagParentURL, raw)
	}
	return nil
}

// readCA reads a PEM bundle holding at least one certificate.
func readCA(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", FlagParentCAFile, err)
	}
	if block, _ := pem.Decode(data); block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("--%s %q: holds no PEM certificate", FlagParentCAFile, file)
	} else if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return nil, fmt.Errorf("--%s %q: its first certificate does not parse: %w", FlagParentCAFile, file, err)
	}
	return data, nil
}

// agentValues reads --cluster-api-agent-values; nil without it.
func (o *Options) agentValues() (map[string]any, error) {
	if o.AgentValuesFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(o.AgentValuesFile)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", FlagAgentValues, err)
	}
	values := map[string]any{}
	if err := yaml.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("--%s %q: not a YAML map of chart values: %w", FlagAgentValues, o.AgentValuesFile, err)
	}
	return values, nil
}

// ManagementConfig is the configuration reaching the management cluster:
// --cluster-api-kubeconfig, or parent (the hub's own) when that is empty.
func (o *Options) ManagementConfig(parent *rest.Config) (*rest.Config, error) {
	if o.Kubeconfig == "" {
		return rest.CopyConfig(parent), nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("--%s %q: %w", FlagKubeconfig, o.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst, cfg.UserAgent = parent.QPS, parent.Burst, parent.UserAgent
	return cfg, nil
}

// parentCA is the CA the agents get: --cluster-api-parent-ca-file, else
// what parent (the hub's configuration) verifies the parent with; nil when
// that is the system roots.
func (o *Options) parentCA(parent *rest.Config) ([]byte, error) {
	if o.ParentCAFile != "" {
		return readCA(o.ParentCAFile)
	}
	if len(parent.CAData) > 0 {
		return parent.CAData, nil
	}
	if parent.CAFile != "" {
		data, err := os.ReadFile(parent.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the parent's CA for the agents (give --%s instead): %w", FlagParentCAFile, err)
		}
		return data, nil
	}
	return nil, nil
}

// errDisabled is what New answers when discovery is off.
var errDisabled = errors.New("cluster-api discovery is off: --" + FlagNamespaces + " is empty")
