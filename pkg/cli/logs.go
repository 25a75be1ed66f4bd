package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/cmd/logs"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/kubectl/pkg/util/i18n"
	"k8s.io/kubectl/pkg/util/templates"
)

var (
	logsLong = templates.LongDesc(i18n.T(`
		Print the logs of a pod, or of a workload's pods, in many child
		clusters at once.

		In each child cluster that --clusters names ("all", the default, or a
		comma-separated list of ManagedCluster names or cluster ids) the pod
		or workload is found and its logs are read as "kubectl logs" reads
		them (a workload's first pod unless --all-pods; its default container
		unless -c or --all-containers), through the parent and the child's
		tunnel, as "kubectl clusternet --cluster" does: the child sees your
		parent user, and its RBAC decides. Every cluster is read at once, and
		each line is prefixed with [cluster/pod/container]; --prefix=false
		prints the lines alone.

		A cluster where the object does not exist, or where you may not read
		it, is reported on standard error in one line, and the others go on.
		The command exits 1 when no cluster could be read.`))

	logsExample = templates.Examples(i18n.T(`
		# Print the logs of the pod web of namespace default in every child cluster
		kubectl clusternet logs web -n default

		# Follow the logs of the first pod of deployment my-nginx in two child clusters
		kubectl clusternet logs -f deployment/my-nginx -n foo --clusters clusternet-cluster-dzqkw,clusternet-cluster-5krl7

		# The last 20 lines of the last hour of container nginx of the pods labelled app=nginx
		kubectl clusternet logs -l app=nginx -c nginx --tail 20 --since 1h`))
)

// LogsOptions are the options of `kubectl clusternet logs`: kubectl's own
// logs options (flags, PodLogOptions, validation, pod selection), run in
// each chosen child cluster.
type LogsOptions struct {
	// Clusters is "all" or a comma-separated list of ManagedCluster names or ids.
	Clusters string

	kubectl   *logs.LogsOptions
	namespace string
	list      clusterLister
	getterFor func(c Cluster) genericclioptions.RESTClientGetter

	genericiooptions.IOStreams
}

// NewLogsOptions returns options with kubectl's defaults, and lines
// prefixed with where they come from.
func NewLogsOptions(streams genericiooptions.IOStreams) *LogsOptions {
	k := logs.NewLogsOptions(streams)
	k.Prefix = true
	return &LogsOptions{Clusters: "all", kubectl: k, IOStreams: streams}
}

// NewCmdLogs builds `kubectl clusternet logs`.
func NewCmdLogs(parent parentGetter, userFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewLogsOptions(streams)
	cmd := &cobra.Command{
		Use:                   "logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER] [--clusters all|NAME,...]",
		DisableFlagsInUseLine: true,
		Short:                 i18n.T("Print the logs of a pod or workload in many child clusters at once"),
		Long:                  logsLong,
		Example:               logsExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args, parent, userFlags); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return o.Run(cmd.Context())
		},
	}
	o.AddFlags(cmd, parent)
	return cmd
}

// AddFlags adds kubectl's logs flags and --clusters.
func (o *LogsOptions) AddFlags(cmd *cobra.Command, parent parentGetter) {
	o.kubectl.AddFlags(cmd)
	cmd.Flags().Lookup("prefix").Usage = "Prefix each log line with its source: [cluster/pod/container]."
	cmd.Flags().Lookup("max-log-requests").Usage = "The most log streams (pods times containers) to follow at once in each cluster."
	cmd.Flags().StringVar(&o.Clusters, flagClusters, o.Clusters,
		`Read the logs in these child clusters: "all", or a comma-separated list of ManagedCluster names or cluster ids.`)
	must(cmd.RegisterFlagCompletionFunc(flagClusters, clusterListCompletion(parent)))
}

// Complete reads the arguments as kubectl logs does, and finds the parent.
func (o *LogsOptions) Complete(cmd *cobra.Command, args []string, parent parentGetter, userFlags *genericclioptions.ConfigFlags) error {
	k := o.kubectl
	k.ContainerNameSpecified = cmd.Flags().Changed("container")
	k.TailSpecified = cmd.Flags().Changed("tail")
	k.Resources = args
	switch len(args) {
	case 0:
		if k.Selector == "" {
			return errors.New("give a pod, a TYPE/NAME (deployment/my-nginx) or a label selector (-l app=nginx), as in `kubectl clusternet logs web -n default`")
		}
	case 1:
		k.ResourceArg = args[0]
		if k.Selector != "" {
			return fmt.Errorf("%q and -l %q: give a pod name or a label selector, not both", args[0], k.Selector)
		}
	case 2:
		k.ResourceArg, k.Container = args[0], args[1]
	default:
		return fmt.Errorf("%d arguments %q: give one pod or TYPE/NAME, and at most one container name", len(args), args)
	}
	var err error
	if o.namespace, _, err = parent.ToRawKubeConfigLoader().Namespace(); err != nil {
		return err
	}
	if k.GetPodTimeout, err = cmdutil.GetPodRunningTimeoutFlag(cmd); err != nil {
		return err
	}
	if k.Options, err = k.ToLogOptions(); err != nil {
		return err
	}
	if k.LogsForObject == nil {
		k.LogsForObject = polymorphichelpers.LogsForObjectFn
	}
	if k.AllPodLogsForObject == nil {
		k.AllPodLogsForObject = polymorphichelpers.AllPodLogsForObjectFn
	}
	if o.list == nil {
		cfg, err := parent.ToRESTConfig()
		if err != nil {
			return err
		}
		o.list = parentClusterLister(cfg)
	}
	if o.getterFor == nil {
		o.getterFor = func(c Cluster) genericclioptions.RESTClientGetter { return childConfigFlags(userFlags, c.ID) }
	}
	return nil
}

// Validate checks the flags with kubectl's rules, and --clusters.
func (o *LogsOptions) Validate() error {
	if strings.TrimSpace(o.Clusters) == "" {
		return fmt.Errorf(`--clusters %q: give "all" or a comma-separated list of ManagedCluster names or cluster ids`, o.Clusters)
	}
	if o.kubectl.MaxFollowConcurrency < 1 {
		return fmt.Errorf("--max-log-requests %d: give 1 or more (the log streams followed at once in each cluster)", o.kubectl.MaxFollowConcurrency)
	}
	return o.kubectl.Validate()
}

// Run reads the logs in every chosen cluster at once. A cluster that fails
// is reported on the error stream as soon as it does; the command fails
// only when no cluster could be read.
func (o *LogsOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	targets, err := selectClusters(ctx, o.list, o.Clusters)
	if err != nil {
		return err
	}
	out, errOut := &lineWriter{w: o.Out}, &lineWriter{w: o.ErrOut}
	failed := make([]bool, len(targets))
	var wg sync.WaitGroup
	sem := make(chan struct{}, fanoutParallelism)
	for i, c := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := o.clusterLogs(ctx, c, sem, out, errOut); err != nil {
				failed[i] = true
				_, _ = fmt.Fprintf(errOut, "error: cluster %s: %s\n", c, err)
			}
		}()
	}
	wg.Wait()
	var names []string
	for i, f := range failed {
		if f {
			names = append(names, targets[i].String())
		}
	}
	if len(names) == len(targets) {
		return &ExitError{Code: 1, Message: fmt.Sprintf("error: no cluster yielded logs: %d of %d clusters failed: %s",
			len(names), len(targets), strings.Join(names, ", "))}
	}
	return nil
}

// selectClusters is every registered child for "all", or the children
// spec names (a comma-separated list of names or ids), each once.
func selectClusters(ctx context.Context, list clusterLister, spec string) ([]Cluster, error) {
	all, err := listClusters(ctx, list)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(spec) == "all" {
		if len(all) == 0 {
			return nil, errors.New("no child cluster has registered with this parent: see `kubectl clusternet get mcls -A`")
		}
		return all, nil
	}
	var names []string
	for _, n := range strings.Split(spec, ",") {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return pickClusters(all, names)
}

// clusterListCompletion completes a value of --clusters: "all", or a list
// of cluster names, completing the last one.
func clusterListCompletion(parent parentGetter) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		prefix, last := "", toComplete
		if i := strings.LastIndex(toComplete, ","); i >= 0 {
			prefix, last = toComplete[:i+1], toComplete[i+1:]
		}
		var out []string
		if prefix == "" && strings.HasPrefix("all", last) {
			out = append(out, "all")
		}
		for _, name := range completeClusters(parent, last) {
			out = append(out, prefix+name)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
