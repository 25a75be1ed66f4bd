package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	utilcomp "k8s.io/kubectl/pkg/util/completion"
	"k8s.io/kubectl/pkg/util/i18n"
	"k8s.io/kubectl/pkg/util/templates"
)

var (
	renderLong = templates.LongDesc(i18n.T(`
		Print the exact objects a Subscription sends to a child cluster.

		The hub renders each bound cluster's Base (the Subscription's feeds
		with that cluster's share of divided replicas) and the Globalizations
		and Localizations that select the cluster into Descriptions, in the
		cluster's dedicated namespace. This command prints what those
		Descriptions hold: the objects of the Generic Description
		(SUBSCRIPTION-generic) as the deployer applies them, and for the Helm
		Description (SUBSCRIPTION-helm) one HelmRelease per chart, with the
		chart options and Helm values that cluster gets.
		Everything is read from the parent with your own credentials; the
		children are not asked.

		With --cluster (a ManagedCluster name, NAMESPACE/NAME, or a cluster id)
		only that cluster's objects are printed, as they are; without it,
		those of every bound cluster, each document after a "# cluster: NAME"
		line (-o json: one List whose items carry the annotations
		clusters.clusternet.io/cluster-name and cluster-id). A cluster the
		Subscription is not bound to is an error listing those it is bound to.

		The Descriptions are printed only when they are rendered from the
		Subscription's current generation. While the hub has not rendered it
		yet (or rendering failed, and the Descriptions stay as they were) the
		command says so for each such cluster and exits 1; --allow-stale
		prints what the Descriptions hold anyway, with a warning.`))

	renderExample = templates.Examples(i18n.T(`
		# Print what the cluster clusternet-cluster-dzqkw gets from the Subscription app-demo
		kubectl clusternet render subscription/app-demo --cluster clusternet-cluster-dzqkw

		# Print what every bound cluster gets, as JSON
		kubectl clusternet render subs app-demo -o json

		# Print the Descriptions even if the hub has not rendered the latest change yet
		kubectl clusternet render subscription/app-demo -n default --allow-stale`))
)

const renderUsage = "`kubectl clusternet render subscription/app-demo --cluster <name|id>`"

// RenderOptions are the options of `kubectl clusternet render`.
type RenderOptions struct {
	// Output is yaml (the default) or json.
	Output string
	// AllowStale prints Descriptions the hub has not rendered from the
	// Subscription's current generation, with a warning, instead of failing.
	AllowStale bool

	clusterFlags *ClusterFlags
	args         []string
	name         string
	target       string

	parentReads

	genericiooptions.IOStreams
}

// NewRenderOptions returns options reading --cluster from clusterFlags
// (the root's persistent flags).
func NewRenderOptions(streams genericiooptions.IOStreams, clusterFlags *ClusterFlags) *RenderOptions {
	return &RenderOptions{Output: "yaml", clusterFlags: clusterFlags, IOStreams: streams}
}

// NewCmdRender builds `kubectl clusternet render`.
func NewCmdRender(f cmdutil.Factory, parent genericclioptions.RESTClientGetter, clusterFlags *ClusterFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdRender(NewRenderOptions(streams, clusterFlags), f, parent)
}

func newCmdRender(o *RenderOptions, f cmdutil.Factory, parent genericclioptions.RESTClientGetter) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "render (TYPE NAME | TYPE/NAME) [--cluster NAME|ID] [-o yaml|json] [--allow-stale]",
		DisableFlagsInUseLine: true,
		Short:                 i18n.T("Print the exact objects a Subscription sends to each child cluster"),
		Long:                  renderLong,
		Example:               renderExample,
		RunE:                  completeValidateRun(func(args []string) error { return o.Complete(f, parent, args) }, o.Validate, o.Run),
	}
	if f != nil {
		cmd.ValidArgsFunction = utilcomp.SpecifiedResourceTypeAndNameNoRepeatCompletionFunc(f, []string{"subscription"})
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "Output format: yaml or json.")
	cmd.Flags().BoolVar(&o.AllowStale, "allow-stale", o.AllowStale,
		"Print Descriptions the hub has not rendered from the Subscription's current generation yet (with a warning) instead of exiting 1.")
	return cmd
}

// Complete reads the namespace, the cluster flag and connects to the parent.
func (o *RenderOptions) Complete(f cmdutil.Factory, parent genericclioptions.RESTClientGetter, args []string) error {
	o.args = args
	target, err := o.clusterFlags.Target()
	if err != nil {
		return err
	}
	o.target = strings.TrimSpace(target)
	return o.complete(f, parent)
}

// Validate checks the output format and that the argument names a Subscription.
func (o *RenderOptions) Validate() error {
	if o.Output != "yaml" && o.Output != "json" {
		return fmt.Errorf("--output %q: give yaml or json", o.Output)
	}
	mapper, err := o.mapper()
	if err != nil {
		return err
	}
	r, err := parseResourceArgs(mapper, o.args, renderUsage)
	if err != nil {
		return err
	}
	if !r.isSubscription() {
		kind := r.mapping.GroupVersionKind.Kind
		return fmt.Errorf("%s/%s is a %s, not a Subscription: render prints what a Subscription sends, as in %s; "+
			"`kubectl clusternet tree %s/%s` shows which Subscriptions use it",
			strings.ToLower(kind), r.name, kind, renderUsage, strings.ToLower(kind), r.name)
	}
	o.name = r.name
	return nil
}

// Run reads the Subscription and its Descriptions and prints the objects
// of the chosen clusters. A cluster whose Descriptions are not of the
// current generation is reported and fails the command (unless
// --allow-stale); the others are printed all the same.
func (o *RenderOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	client, err := o.newClient()
	if err != nil {
		return err
	}
	data, err := subscriptionReader{client: client, namespace: o.namespace, name: o.name}.read(ctx)
	if err != nil {
		return err
	}
	p := evaluate(data)
	clusters, err := o.chosen(p)
	if err != nil {
		return err
	}
	charts := chartReader{client: client}
	var printed []renderedCluster
	var failed []string
	for _, c := range clusters {
		rc, err := renderCluster(ctx, p, c, data.Descriptions, charts)
		if err != nil {
			return err
		}
		switch {
		case len(rc.docs) == 0 && rc.stale != "":
			failed = append(failed, c.Name)
			_, _ = fmt.Fprintf(o.ErrOut, "error: cluster %s: nothing is rendered for it yet: %s\n", c.Name, rc.stale)
			continue
		case rc.stale != "" && !o.AllowStale:
			failed = append(failed, c.Name)
			_, _ = fmt.Fprintf(o.ErrOut, "error: cluster %s: its Descriptions are not rendered from the Subscription's current generation (%d): %s; "+
				"wait for the hub (`kubectl clusternet rollout status subscription/%s -n %s`), or pass --allow-stale to print them as they are\n",
				c.Name, p.Sub.Generation, rc.stale, p.Sub.Name, p.Sub.Namespace)
			continue
		case rc.stale != "":
			_, _ = fmt.Fprintf(o.ErrOut, "warning: cluster %s: printing Descriptions not rendered from the Subscription's current generation (%d): %s\n",
				c.Name, p.Sub.Generation, rc.stale)
		}
		printed = append(printed, rc)
	}
	if err := printRendered(o.Out, printed, o.Output, o.target == ""); err != nil {
		return err
	}
	if len(failed) > 0 {
		return &ExitError{Code: 1, Message: fmt.Sprintf("error: subscription %q in namespace %q: %d of %d clusters not printed: %s",
			p.Sub.Name, p.Sub.Namespace, len(failed), len(clusters), strings.Join(failed, ", "))}
	}
	return nil
}

// chosen is the cluster --cluster names among the bound ones, or every
// bound cluster without it.
func (o *RenderOptions) chosen(p subscriptionProgress) ([]clusterProgress, error) {
	if len(p.Clusters) == 0 {
		return nil, fmt.Errorf("subscription %q in namespace %q is bound to no cluster (its status.bindingClusters is empty): "+
			"`kubectl clusternet rollout status subscription/%s -n %s` says why", p.Sub.Name, p.Sub.Namespace, p.Sub.Name, p.Sub.Namespace)
	}
	if o.target == "" {
		return p.Clusters, nil
	}
	var matches []clusterProgress
	for _, c := range p.Clusters {
		if c.Name == o.target || c.Namespace+"/"+c.Name == o.target || c.ID != "" && c.ID == o.target {
			matches = append(matches, c)
		}
	}
	bound := make([]Cluster, 0, len(p.Clusters))
	for _, c := range p.Clusters {
		bound = append(bound, Cluster{Name: c.Name, Namespace: c.Namespace, ID: orDefault(c.ID, "unknown until its Base exists")})
	}
	switch len(matches) {
	case 1:
		return matches, nil
	case 0:
		return nil, fmt.Errorf("--cluster %q: subscription %q in namespace %q is not bound to that cluster; it is bound to %s",
			o.target, p.Sub.Name, p.Sub.Namespace, describeClusters(bound))
	default:
		return nil, fmt.Errorf("--cluster %q is ambiguous: subscription %q is bound to %d clusters of that name; use the cluster id or <namespace>/<name>: %s",
			o.target, p.Sub.Name, len(matches), describeClusters(bound))
	}
}
