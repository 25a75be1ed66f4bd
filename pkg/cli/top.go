package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/util/i18n"
	"k8s.io/kubectl/pkg/util/templates"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/capacity"
)

var (
	topLong = templates.LongDesc(i18n.T(`
		Show what the child clusters have and use.

		The top command shows, per child cluster, resources the clusters
		offer and what runs there. "kubectl clusternet --cluster NAME top
		pods|nodes" shows the pods or nodes of one child.`))

	topClustersLong = templates.LongDesc(i18n.T(`
		Show, per child cluster, its CPU, memory and pods: capacity and
		allocatable (summed over its Ready nodes), requested (summed over its
		pods that are bound to a node and not terminated, as the scheduler
		counts them) and, where the child serves the metrics API
		(metrics-server), usage; with whether the cluster is Ready and
		whether its tunnel to the parent is up.

		Capacity and allocatable come from the ManagedCluster's status, which
		the agent reports at each heartbeat; requests and usage are read from
		the child through the parent and its tunnel (as "kubectl clusternet
		--cluster" reads it: the child sees your parent user, and its RBAC
		decides), and so are capacity and allocatable when the status has
		none. A cluster whose tunnel is down shows <unknown> for what only
		the child can tell. REQUESTS and USAGE carry their share of
		allocatable; PODS is pods requested of pods allocatable.

		A cluster that could not be read is reported on standard error and
		the command exits 1 after printing the others.`))

	topClustersExample = templates.Examples(i18n.T(`
		# Show the resources of every child cluster
		kubectl clusternet top clusters

		# Two child clusters, by name or cluster id, with capacity too
		kubectl clusternet top clusters --clusters clusternet-cluster-dzqkw,clusternet-cluster-5krl7 -o wide

		# As JSON, for scripts
		kubectl clusternet top clusters -o json`))
)

// unknownCell is what a column shows when the child could not tell.
const unknownCell = "<unknown>"

// TopClustersOptions are the options of `kubectl clusternet top clusters`.
type TopClustersOptions struct {
	// Clusters is "all" or a comma-separated list of ManagedCluster names or ids.
	Clusters string
	// Output is "" (a table), wide (with capacity) or json.
	Output    string
	NoHeaders bool

	list     clusterLister
	childFor func(c Cluster) (childResources, error)

	genericiooptions.IOStreams
}

// childResources reads what top needs of one child.
type childResources interface {
	Nodes(ctx context.Context) ([]corev1.Node, error)
	Pods(ctx context.Context) ([]corev1.Pod, error)
	// NodeUsage sums the usage of the child's nodes from the metrics API;
	// served is false when the child serves no metrics API.
	NodeUsage(ctx context.Context) (usage corev1.ResourceList, served bool, err error)
}

// NewTopClustersOptions returns options for every cluster, as a table.
func NewTopClustersOptions(streams genericiooptions.IOStreams) *TopClustersOptions {
	return &TopClustersOptions{Clusters: "all", IOStreams: streams}
}

// NewCmdTop builds `kubectl clusternet top`, holding `top clusters`.
func NewCmdTop(parent parentGetter, userFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "top",
		DisableFlagsInUseLine: true,
		Short:                 i18n.T("Show the resources of the child clusters"),
		Long:                  topLong,
		RunE:                  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(NewCmdTopClusters(parent, userFlags, streams))
	return cmd
}

// NewCmdTopClusters builds `kubectl clusternet top clusters`.
func NewCmdTopClusters(parent parentGetter, userFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewTopClustersOptions(streams)
	cmd := &cobra.Command{
		Use:                   "clusters [--clusters all|NAME,...] [-o wide|json]",
		DisableFlagsInUseLine: true,
		Aliases:               []string{"cluster", "managedclusters", "mcls"},
		Short:                 i18n.T("Show capacity, allocatable, requests and usage of each child cluster"),
		Long:                  topClustersLong,
		Example:               topClustersExample,
		Args:                  cobra.NoArgs,
		RunE:                  completeValidateRun(func([]string) error { return o.Complete(parent, userFlags) }, o.Validate, o.Run),
	}
	cmd.Flags().StringVar(&o.Clusters, flagClusters, o.Clusters,
		`Show these child clusters: "all", or a comma-separated list of ManagedCluster names or cluster ids.`)
	must(cmd.RegisterFlagCompletionFunc(flagClusters, clusterListCompletion(parent)))
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "Output format: wide (adds capacity) or json.")
	cmd.Flags().BoolVar(&o.NoHeaders, "no-headers", o.NoHeaders, "Print no header line.")
	return cmd
}

// Complete connects to the parent, and to the children through it.
func (o *TopClustersOptions) Complete(parent parentGetter, userFlags *genericclioptions.ConfigFlags) error {
	if o.list == nil {
		var err error
		if o.list, err = parentLister(parent); err != nil {
			return err
		}
	}
	if o.childFor == nil {
		o.childFor = func(c Cluster) (childResources, error) {
			cfg, err := childConfigFlags(userFlags, c.ID).ToRESTConfig()
			if err != nil {
				return nil, err
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return nil, err
			}
			return kubeChild{cs}, nil
		}
	}
	return nil
}

// Validate checks the flags.
func (o *TopClustersOptions) Validate() error {
	if strings.TrimSpace(o.Clusters) == "" {
		return fmt.Errorf(`--clusters %q: give "all" or a comma-separated list of ManagedCluster names or cluster ids`, o.Clusters)
	}
	switch o.Output {
	case "", "wide", "json":
		return nil
	}
	return fmt.Errorf("--output %q: give wide or json, or leave it out for a table", o.Output)
}

// ClusterTop is one row of `top clusters`; -o json prints a list of them.
type ClusterTop struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	ID        string `json:"clusterID"`
	// Ready is the status of the ManagedCluster's Ready condition.
	Ready string `json:"ready"`
	// TunnelUp says whether the agent holds its tunnel to the parent.
	TunnelUp    bool                `json:"tunnelUp"`
	Capacity    corev1.ResourceList `json:"capacity,omitempty"`
	Allocatable corev1.ResourceList `json:"allocatable,omitempty"`
	// Requested is nil when the child could not be read.
	Requested corev1.ResourceList `json:"requested,omitempty"`
	// Usage is nil when the child serves no metrics API or could not be read.
	Usage corev1.ResourceList `json:"usage,omitempty"`
	// MetricsServed says whether the child serves the metrics API.
	MetricsServed bool `json:"metricsServed"`
	// Errors are what could not be read of the child.
	Errors []string `json:"errors,omitempty"`

	// usageRead says whether the child answered whether it serves metrics.
	usageRead bool
}

// Run reads every chosen cluster at once and prints one row each.
func (o *TopClustersOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	items, err := o.list(ctx)
	if err != nil {
		return err
	}
	listed := func(context.Context) ([]clusterv1beta1.ManagedCluster, error) { return items, nil }
	targets, err := selectClusters(ctx, listed, o.Clusters)
	if err != nil {
		return err
	}
	rows := make([]ClusterTop, len(targets))
	forEachCluster(targets, func(i int, c Cluster) { rows[i] = o.clusterTop(ctx, c, managedCluster(items, c)) })

	var failed []string
	for _, r := range rows {
		for _, e := range r.Errors {
			_, _ = fmt.Fprintf(o.ErrOut, "error: cluster %s: %s\n", r.Name, e)
		}
		if len(r.Errors) > 0 {
			failed = append(failed, r.Name)
		}
	}
	if err := o.print(rows); err != nil {
		return err
	}
	if len(failed) > 0 {
		return &ExitError{Code: 1, Message: fmt.Sprintf("error: %d of %d clusters could not be read: %s", len(failed), len(rows), strings.Join(failed, ", "))}
	}
	return nil
}

func managedCluster(items []clusterv1beta1.ManagedCluster, c Cluster) *clusterv1beta1.ManagedCluster {
	for i := range items {
		if items[i].Namespace == c.Namespace && items[i].Name == c.Name {
			return &items[i]
		}
	}
	return nil
}

// clusterTop is what the status says of mc, completed by the child.
func (o *TopClustersOptions) clusterTop(ctx context.Context, c Cluster, mc *clusterv1beta1.ManagedCluster) ClusterTop {
	row := ClusterTop{Name: c.Name, Namespace: c.Namespace, ID: c.ID, Ready: string(metav1.ConditionUnknown)}
	if mc == nil {
		row.Errors = append(row.Errors, "its ManagedCluster is gone")
		return row
	}
	if cond := meta.FindStatusCondition(mc.Status.Conditions, clusterv1beta1.ClusterReady); cond != nil {
		row.Ready = string(cond.Status)
	}
	row.TunnelUp = mc.Status.UseSocket
	row.Capacity, row.Allocatable = mc.Status.Capacity, mc.Status.Allocatable
	if !row.TunnelUp {
		// The parent reaches a child only through its tunnel: asking would
		// only wait for the hub's "no tunnel" answer.
		return row
	}
	child, err := o.childFor(c)
	if err != nil {
		row.Errors = append(row.Errors, err.Error())
		return row
	}
	if len(row.Allocatable) == 0 {
		if nodes, err := child.Nodes(ctx); err != nil {
			row.Errors = append(row.Errors, fmt.Sprintf("its status reports no allocatable and its nodes could not be listed: %v", err))
		} else {
			row.Capacity, row.Allocatable = capacity.Nodes(nodes)
		}
	}
	if pods, err := child.Pods(ctx); err != nil {
		row.Errors = append(row.Errors, fmt.Sprintf("listing its pods for their requests: %v", err))
	} else {
		row.Requested = capacity.Requested(pods)
	}
	usage, served, err := child.NodeUsage(ctx)
	switch {
	case err != nil:
		row.Errors = append(row.Errors, fmt.Sprintf("reading node usage from its metrics API: %v", err))
	default:
		row.usageRead = true
		row.Usage, row.MetricsServed = usage, served
	}
	return row
}

func (o *TopClustersOptions) print(rows []ClusterTop) error {
	if o.Output == "json" {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "    ")
		if rows == nil {
			rows = []ClusterTop{}
		}
		return enc.Encode(rows)
	}
	return printTopTable(o.Out, rows, o.Output == "wide", o.NoHeaders)
}

func printTopTable(w io.Writer, rows []ClusterTop, wide, noHeaders bool) error {
	tw := printers.GetNewTabWriter(w)
	if !noHeaders {
		header := []string{"NAME", "READY", "TUNNEL", "CPU(ALLOC)", "CPU(REQUESTS)", "CPU(USAGE)", "MEMORY(ALLOC)", "MEMORY(REQUESTS)", "MEMORY(USAGE)", "PODS"}
		if wide {
			header = append(header, "CPU(CAPACITY)", "MEMORY(CAPACITY)")
		}
		_, _ = fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		cells := []string{r.Name, r.Ready, tunnelCell(r.TunnelUp),
			quantityCell(r.Allocatable, corev1.ResourceCPU),
			shareCell(r.Requested, r.Allocatable, corev1.ResourceCPU),
			usageCell(r, corev1.ResourceCPU),
			quantityCell(r.Allocatable, corev1.ResourceMemory),
			shareCell(r.Requested, r.Allocatable, corev1.ResourceMemory),
			usageCell(r, corev1.ResourceMemory),
			podsCell(r),
		}
		if wide {
			cells = append(cells, quantityCell(r.Capacity, corev1.ResourceCPU), quantityCell(r.Capacity, corev1.ResourceMemory))
		}
		_, _ = fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

func tunnelCell(up bool) string {
	if up {
		return "Up"
	}
	return "Down"
}

// quantityCell prints CPU in millicores and memory in MiB, as kubectl top
// does; <unknown> when list has no such resource.
func quantityCell(list corev1.ResourceList, name corev1.ResourceName) string {
	q, ok := list[name]
	if !ok {
		return unknownCell
	}
	switch name {
	case corev1.ResourceCPU:
		return fmt.Sprintf("%dm", q.MilliValue())
	case corev1.ResourceMemory:
		return fmt.Sprintf("%dMi", q.Value()/(1024*1024))
	default:
		return q.String()
	}
}

// shareCell is used with its share of allocatable: "250m (6%)".
func shareCell(used, allocatable corev1.ResourceList, name corev1.ResourceName) string {
	if used == nil {
		return unknownCell
	}
	if _, ok := used[name]; !ok {
		// Nothing requests it: a sum of no pods.
		used = corev1.ResourceList{name: {}}
	}
	cell := quantityCell(used, name)
	u, a := used[name], allocatable[name]
	if a.MilliValue() > 0 {
		cell += fmt.Sprintf(" (%d%%)", u.MilliValue()*100/a.MilliValue())
	}
	return cell
}

func usageCell(r ClusterTop, name corev1.ResourceName) string {
	if r.usageRead && !r.MetricsServed {
		return "<none>"
	}
	return shareCell(r.Usage, r.Allocatable, name)
}

// podsCell is pods requested of pods allocatable: "12/110".
func podsCell(r ClusterTop) string {
	used, alloc := unknownCell, unknownCell
	if r.Requested != nil {
		q := r.Requested[corev1.ResourcePods]
		used = q.String()
	}
	if q, ok := r.Allocatable[corev1.ResourcePods]; ok {
		alloc = q.String()
	}
	return used + "/" + alloc
}

// kubeChild reads a child through a client whose server is the child's
// proxy path on the parent.
type kubeChild struct {
	cs kubernetes.Interface
}

func (k kubeChild) Nodes(ctx context.Context) ([]corev1.Node, error) {
	list, err := k.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// Pods lists the pods that may hold resources, a page at a time.
func (k kubeChild) Pods(ctx context.Context) ([]corev1.Pod, error) {
	opts := metav1.ListOptions{FieldSelector: "status.phase!=Succeeded,status.phase!=Failed", Limit: 500}
	var out []corev1.Pod
	for {
		list, err := k.cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, list.Items...)
		if opts.Continue = list.Continue; opts.Continue == "" {
			return out, nil
		}
	}
}

// nodeMetricsList is the part of metrics.k8s.io/v1beta1 NodeMetricsList top reads.
type nodeMetricsList struct {
	Items []struct {
		Usage corev1.ResourceList `json:"usage"`
	} `json:"items"`
}

func (k kubeChild) NodeUsage(ctx context.Context) (corev1.ResourceList, bool, error) {
	// The core group's client decodes the Status of a refusal, to say why.
	raw, err := k.cs.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/nodes").DoRaw(ctx)
	switch {
	case apierrors.IsNotFound(err):
		return nil, false, nil
	case apierrors.IsForbidden(err):
		// The refusal of a path outside the core group comes back without
		// the apiserver's message: say what was refused.
		return nil, false, errors.New(`forbidden: the child does not let your parent user list "nodes" in API group "metrics.k8s.io"`)
	case err != nil:
		return nil, false, err
	}
	return sumNodeUsage(raw)
}

func sumNodeUsage(raw []byte) (corev1.ResourceList, bool, error) {
	var list nodeMetricsList
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, true, fmt.Errorf("the metrics API answered with no NodeMetricsList: %w", err)
	}
	if len(list.Items) == 0 {
		return nil, true, errors.New("the metrics API has no node metrics yet (metrics-server collects them after its first scrape)")
	}
	sum := corev1.ResourceList{}
	for _, item := range list.Items {
		capacity.Add(sum, item.Usage)
	}
	return sum, true, nil
}
