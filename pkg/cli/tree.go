package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	utilcomp "k8s.io/kubectl/pkg/util/completion"
	"k8s.io/kubectl/pkg/util/i18n"
	"k8s.io/kubectl/pkg/util/templates"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
)

var (
	treeLong = templates.LongDesc(i18n.T(`
		Show where a Subscription went and how it is doing, as a tree.

		For a Subscription: its feeds (with their state summed over the
		clusters), then each cluster it is bound to, the cluster's Base, the
		Descriptions the Base is rendered into (with their phase), and the
		objects of each Description with their state in the child, as its
		deployer reported it. Everything is read from the parent with your own
		credentials; the children are not asked.

		For a template (any ordinary kind, as "kubectl clusternet get" shows
		them) or a HelmChart: the Subscriptions that use it as a feed, by name
		or by selector, with its state in each of their clusters.

		READY counts ready of desired replicas of workloads; for a
		Subscription, its clusters done; for a feed or a template, the clusters
		where it is available. -o json and -o yaml print the same tree for
		scripts.`))

	treeExample = templates.Examples(i18n.T(`
		# Show the Subscription app-demo, its feeds, clusters, Bases, Descriptions and objects
		kubectl clusternet tree subscription/app-demo

		# The same as JSON, for scripts
		kubectl clusternet tree subs app-demo -o json

		# Show which Subscriptions use the template deployment my-nginx of namespace foo
		kubectl clusternet tree deployment/my-nginx -n foo`))
)

const treeUsage = "`kubectl clusternet tree subscription/app-demo` or `kubectl clusternet tree deployment/my-nginx -n foo`"

// TreeOptions are the options of `kubectl clusternet tree`.
type TreeOptions struct {
	// Output is "" (text), json or yaml.
	Output string

	args   []string
	target namedResource

	parentReads
	// The templates (through the shadow API) and the clock: tests put
	// their own in.
	templates func() (dynamic.Interface, error)
	now       func() time.Time

	genericiooptions.IOStreams
}

// NewTreeOptions returns options with defaults.
func NewTreeOptions(streams genericiooptions.IOStreams) *TreeOptions {
	return &TreeOptions{IOStreams: streams}
}

// NewCmdTree builds `kubectl clusternet tree`.
func NewCmdTree(f cmdutil.Factory, parent genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdTree(NewTreeOptions(streams), f, parent)
}

func newCmdTree(o *TreeOptions, f cmdutil.Factory, parent genericclioptions.RESTClientGetter) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "tree (TYPE NAME | TYPE/NAME) [-o json|yaml]",
		DisableFlagsInUseLine: true,
		Short:                 i18n.T("Show where a Subscription went, or which Subscriptions use a template, as a tree"),
		Long:                  treeLong,
		Example:               treeExample,
		RunE:                  completeValidateRun(func(args []string) error { return o.Complete(f, parent, args) }, o.Validate, o.Run),
	}
	if f != nil {
		cmd.ValidArgsFunction = utilcomp.ResourceTypeAndNameCompletionFunc(f)
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "Output format: json or yaml; empty for the text tree.")
	return cmd
}

// Complete reads the namespace and connects to the parent: Clusternet's
// kinds directly, templates through the shadow API (f's clients).
func (o *TreeOptions) Complete(f cmdutil.Factory, parent genericclioptions.RESTClientGetter, args []string) error {
	o.args = args
	if err := o.complete(f, parent); err != nil {
		return err
	}
	if o.templates == nil {
		o.templates = f.DynamicClient
	}
	if o.now == nil {
		o.now = time.Now
	}
	return nil
}

// Validate checks the output format and what the argument names.
func (o *TreeOptions) Validate() error {
	if o.Output != "" && o.Output != "json" && o.Output != "yaml" {
		return fmt.Errorf("--output %q: give json or yaml, or leave it out for the text tree", o.Output)
	}
	mapper, err := o.mapper()
	if err != nil {
		return err
	}
	if o.target, err = parseResourceArgs(mapper, o.args, treeUsage); err != nil {
		return err
	}
	gk := o.target.mapping.GroupVersionKind.GroupKind()
	if strings.HasSuffix(gk.Group, "clusternet.io") && !o.target.isSubscription() && gk != helmChartKind {
		hint := ""
		if gk.Kind == "Base" || gk.Kind == "Description" {
			hint = fmt.Sprintf("; a %s is part of its Subscription's tree: its labels %s and %s name the Subscription",
				gk.Kind, appsv1alpha1.LabelSubscriptionNamespace, appsv1alpha1.LabelSubscriptionName)
		}
		return fmt.Errorf("%s %q: tree starts from a Subscription, a template or a HelmChart, as in %s%s",
			gk.Kind, o.target.name, treeUsage, hint)
	}
	return nil
}

// Run builds the tree and prints it.
func (o *TreeOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	client, err := o.newClient()
	if err != nil {
		return err
	}
	var root TreeNode
	if o.target.isSubscription() {
		data, err := subscriptionReader{client: client, namespace: o.namespace, name: o.target.name}.read(ctx)
		if err != nil {
			return err
		}
		root = subscriptionTree(evaluate(data))
	} else if root, err = o.templateTree(ctx, client); err != nil {
		return err
	}
	if o.Output != "" {
		return printTreeData(o.Out, root, o.Output)
	}
	return printTreeText(o.Out, root, o.now(), o.allowColor(o.Out))
}

// templateTree reads the template (a missing one is an error naming it)
// and the Subscriptions that use it.
func (o *TreeOptions) templateTree(ctx context.Context, client versioned.Interface) (TreeNode, error) {
	dyn, err := o.templates()
	if err != nil {
		return TreeNode{}, err
	}
	m := o.target.mapping
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	namespace := ""
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		namespace = o.namespace
		ri = dyn.Resource(m.Resource).Namespace(namespace)
	}
	obj, err := ri.Get(ctx, o.target.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		where := ""
		if namespace != "" {
			where = fmt.Sprintf(" in namespace %q", namespace)
		}
		return TreeNode{}, fmt.Errorf("%s %q not found%s: list them with `kubectl clusternet get %s`, or pick another namespace with -n",
			m.Resource.GroupResource(), o.target.name, where, m.Resource.GroupResource())
	}
	if err != nil {
		return TreeNode{}, err
	}
	subs, err := o.subscriptions(ctx, client, namespace)
	if err != nil {
		return TreeNode{}, err
	}
	var uses []subscriptionProgress
	for i := range subs {
		sub := &subs[i]
		if !usesTemplate(sub, m.GroupVersionKind.GroupKind(), obj) {
			continue
		}
		reader := subscriptionReader{client: client, namespace: sub.Namespace, name: sub.Name}
		data, err := reader.readOwned(ctx, sub)
		if err != nil {
			return TreeNode{}, err
		}
		uses = append(uses, evaluate(data))
	}
	return templateTree(obj, uses), nil
}

// subscriptions lists the Subscriptions of every namespace, or, for a
// caller who may not, those of the template's namespace (the current one
// for a cluster-scoped template), saying so.
func (o *TreeOptions) subscriptions(ctx context.Context, client versioned.Interface, namespace string) ([]appsv1alpha1.Subscription, error) {
	list, err := client.AppsV1alpha1().Subscriptions(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if apierrors.IsForbidden(err) {
		if namespace == "" {
			namespace = o.namespace
		}
		_, _ = fmt.Fprintf(o.ErrOut, "warning: you may not list subscriptions.%s in all namespaces: only namespace %q was searched\n",
			appsv1alpha1.GroupName, namespace)
		list, err = client.AppsV1alpha1().Subscriptions(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, explainRead("list", "subscriptions", namespace, "", err)
		}
	} else if err != nil {
		return nil, explainRead("list", "subscriptions", metav1.NamespaceAll, "", err)
	}
	items := list.Items
	slices.SortFunc(items, func(a, b appsv1alpha1.Subscription) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return items, nil
}
