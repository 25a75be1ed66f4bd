package cli

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
)

// PerClusterOptions run any kubectl command on one child cluster through the
// parent: kubectl's own command tree, in this process, with its server moved
// onto sockets/<cluster-id>/proxy/direct. Every verb works (get, logs -f,
// exec, port-forward, top, ...), streaming included.
type PerClusterOptions struct {
	ClusterFlags
	// Args are kubectl's arguments, without the per-cluster flags.
	Args []string

	configFlags *genericclioptions.ConfigFlags
	list        func(parent *rest.Config) clusterLister

	once    sync.Once
	cluster Cluster
	extras  map[string][]string
	err     error

	genericiooptions.IOStreams
}

// NewPerClusterOptions returns options for kubectl args on the child flags names.
func NewPerClusterOptions(streams genericiooptions.IOStreams, flags ClusterFlags, args []string) *PerClusterOptions {
	return &PerClusterOptions{ClusterFlags: flags, Args: args, list: parentClusterLister, IOStreams: streams}
}

// NewCmdPerCluster returns kubectl's root command, set up to run args on the
// child: `kubectl clusternet --cluster <name|id> <any kubectl args>`.
func NewCmdPerCluster(o *PerClusterOptions) *cobra.Command {
	o.configFlags = genericclioptions.NewConfigFlags(true).WithDeprecatedPasswordFlag().
		WithDiscoveryBurst(300).WithDiscoveryQPS(50.0).WithWarningPrinter(o.IOStreams)
	o.configFlags.WrapConfigFn = o.wrapConfig
	cmd := kubectlcmd.NewKubectlCommand(kubectlcmd.KubectlOptions{
		Arguments:   append([]string{"kubectl"}, o.Args...),
		ConfigFlags: o.configFlags,
		IOStreams:   o.IOStreams,
	})
	target, _ := o.Target()
	cmd.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: DisplayName + " --cluster " + target}
	convertRuns(cmd)
	// Find the child before kubectl starts, so a wrong name fails with the
	// list of known clusters instead of a connection error. Shell completion
	// stays quiet and resolves lazily.
	pre := cmd.PersistentPreRunE
	cmd.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if c.Name() != cobra.ShellCompRequestCmd && c.Name() != cobra.ShellCompNoDescRequestCmd {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
		}
		if pre != nil {
			return pre(c, args)
		}
		return nil
	}
	cmd.SetArgs(o.Args)
	cmd.SetIn(o.In)
	cmd.SetOut(o.Out)
	cmd.SetErr(o.ErrOut)
	return cmd
}

// Complete resolves the child and reads the pass-through credentials.
func (o *PerClusterOptions) Complete() error {
	if _, err := o.configFlags.ToRESTConfig(); err != nil {
		return err
	}
	return o.err
}

// Validate checks the flags.
func (o *PerClusterOptions) Validate() error {
	_, err := o.Target()
	return err
}

// wrapConfig is kubectl's WrapConfigFn: it turns the parent's config into the
// child's. The child is resolved once, with the first config kubectl builds.
func (o *PerClusterOptions) wrapConfig(parent *rest.Config) *rest.Config {
	o.once.Do(func() { o.resolve(parent) })
	if o.err != nil {
		failing := rest.CopyConfig(parent)
		err := o.err
		failing.Wrap(func(http.RoundTripper) http.RoundTripper { return failingRoundTripper{err} })
		return failing
	}
	return withProxyDryRun(ChildConfig(parent, o.cluster.ID, o.extras))
}

func (o *PerClusterOptions) resolve(parent *rest.Config) {
	target, err := o.Target()
	if err != nil {
		o.err = err
		return
	}
	ctx := context.Background()
	if parent.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, parent.Timeout)
		defer cancel()
	}
	o.cluster, o.err = resolveCluster(ctx, o.list(parent), strings.TrimSpace(target))
	if o.err == nil && o.ChildKubeconfig != "" {
		o.extras, o.err = PassThroughExtras(o.ChildKubeconfig)
	}
}

type failingRoundTripper struct{ err error }

func (f failingRoundTripper) RoundTrip(*http.Request) (*http.Response, error) { return nil, f.err }
