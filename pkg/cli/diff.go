package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/rest"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/deployer"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
)

var diffClustersExample = templates.Examples(`
	# Show what applying examples/applications/ changes: in the parent's
	# templates, then in every child cluster of its Subscription
	kubectl clusternet diff -f examples/applications/

	# The same, in one of the Subscription's clusters only
	kubectl clusternet diff -f examples/applications/ --clusters clusternet-cluster-dzqkw`)

// diffExitError is how the per-cluster part fails: as kubectl diff's own
// errors, above 1 (1 means "differences found").
func diffExitError(err error) error {
	return &ExitError{Code: 2, Message: "error: " + err.Error()}
}

// NewCmdDiff makes cmd (kubectl's diff, against the parent's templates)
// go on to what applying the file would change in each child cluster.
func NewCmdDiff(cmd *cobra.Command, f cmdutil.Factory, parent parentGetter, streams genericiooptions.IOStreams) *cobra.Command {
	convertRuns(cmd)
	cmd.Long += "\n\n" + templates.LongDesc(`
		Then, for each Subscription in the files or feeding a template in them,
		and each cluster it is bound to (--clusters narrows them), it renders
		what the cluster would get with the files applied (the parent's Base,
		Globalizations and the cluster's Localizations) and server-side
		dry-run applies it in the child, through the parent, printing a
		unified diff of each live object against the dry run under
		an "=== cluster NAME (ID)" line. HelmChart feeds are not diffed.`)
	cmd.Example += "\n\n" + diffClustersExample
	o := &clusterDiff{IOStreams: streams}
	cmd.Flags().StringVar(&o.clusters, flagClusters, "all",
		`Child clusters to diff: "all" bound clusters, or a comma-separated list of ManagedCluster names or cluster ids.`)
	templateDiff := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		// Flags parsed: what fails from here is not a usage mistake.
		c.SilenceUsage = true
		client, cfg, err := parentClients(parent)
		if err != nil {
			return diffExitError(err)
		}
		o.client, o.childOf = client, func(id string) (childDiffer, error) {
			return deployer.NewChild(withProxyDryRun(ChildConfig(cfg, id, nil)))
		}
		// A wrong --clusters fails before any diff is printed.
		if err := o.pickClusters(c.Context(), parentClusterLister(cfg)); err != nil {
			return diffExitError(err)
		}
		code, err := diffCode(templateDiff(c, args))
		if code > 1 {
			return err
		}
		objs, err := fileObjects(f, c)
		if err != nil {
			return diffExitError(err)
		}
		changed, err := o.run(c.Context(), objs)
		if err != nil {
			return diffExitError(err)
		}
		if changed || code == 1 {
			return &ExitError{Code: 1}
		}
		return nil
	}
	return cmd
}

// diffCode is the exit code of kubectl's diff: 0 no differences, 1
// differences, above 1 an error.
func diffCode(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		return exit.Code, err
	}
	return 2, err
}

// fileObjects reads the files diff was given, as kubectl's diff reads them.
func fileObjects(f cmdutil.Factory, c *cobra.Command) ([]*unstructured.Unstructured, error) {
	filenames, _ := c.Flags().GetStringSlice("filename")
	recursive, _ := c.Flags().GetBool("recursive")
	kustomize, _ := c.Flags().GetString("kustomize")
	ns, enforce, err := f.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, err
	}
	infos, err := f.NewBuilder().Unstructured().NamespaceParam(ns).DefaultNamespace().
		FilenameParam(enforce, &resource.FilenameOptions{Filenames: filenames, Recursive: recursive, Kustomize: kustomize}).
		Flatten().Do().Infos()
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, 0, len(infos))
	for _, info := range infos {
		if u, ok := info.Object.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	return out, nil
}

func parentClients(parent parentGetter) (versioned.Interface, *rest.Config, error) {
	cfg, err := parent.ToRESTConfig()
	if err != nil {
		return nil, nil, err
	}
	client, err := versioned.NewForConfig(cfg)
	return client, cfg, err
}

// childDiffer is the part of a deployer.Child the diff uses.
type childDiffer interface {
	Namespaced(gvk schema.GroupVersionKind) (bool, error)
	Get(ctx context.Context, r deployer.Ref) (*unstructured.Unstructured, error)
	DryRun(ctx context.Context, o deployer.Object) (*unstructured.Unstructured, error)
}

// clusterDiff is the per-cluster part of `kubectl clusternet diff`.
type clusterDiff struct {
	clusters string
	// picked are the clusters (namespace/name) --clusters names; nil for all.
	picked  map[string]bool
	client  versioned.Interface
	childOf func(clusterID string) (childDiffer, error)
	genericiooptions.IOStreams
}

// run diffs every bound cluster (narrowed by --clusters) of every
// Subscription objs concern, and says whether anything differs.
func (o *clusterDiff) run(ctx context.Context, objs []*unstructured.Unstructured) (bool, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	subs, err := o.subscriptionsOf(ctx, objs)
	if err != nil {
		return false, err
	}
	overlay, err := newFileOverlay(objs, parentReader{ctx: ctx, client: o.client})
	if err != nil {
		return false, err
	}
	changed := false
	for _, sub := range subs {
		if len(subs) > 1 {
			_, _ = fmt.Fprintf(o.Out, "=== subscription %s/%s\n", sub.Namespace, sub.Name)
		}
		data, err := subscriptionReader{client: o.client, namespace: sub.Namespace, name: sub.Name}.readOwned(ctx, sub)
		if err != nil {
			return changed, err
		}
		for _, c := range o.chosen(evaluate(data)) {
			d, err := o.diffCluster(ctx, sub, c, overlay)
			if err != nil {
				return changed, fmt.Errorf("cluster %s (subscription %s/%s): %w", c.Name, sub.Namespace, sub.Name, err)
			}
			changed = changed || d
		}
	}
	return changed, nil
}

// subscriptionsOf are the parent's Subscriptions named in objs or feeding
// a template in objs, in namespace/name order.
func (o *clusterDiff) subscriptionsOf(ctx context.Context, objs []*unstructured.Unstructured) ([]*appsv1alpha1.Subscription, error) {
	list, err := o.client.AppsV1alpha1().Subscriptions("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, explainRead("list", "subscriptions", "", "", err)
	}
	named := map[string]bool{}
	for _, obj := range objs {
		if obj.GroupVersionKind().Group == appsv1alpha1.GroupName && obj.GetKind() == "Subscription" {
			named[obj.GetNamespace()+"/"+obj.GetName()] = true
		}
	}
	templates := fileTemplates(objs)
	var out []*appsv1alpha1.Subscription
	for i := range list.Items {
		sub := &list.Items[i]
		uses := named[sub.Namespace+"/"+sub.Name]
		for _, t := range templates {
			uses = uses || usesTemplate(sub, t.GroupVersionKind().GroupKind(), t)
		}
		if uses {
			out = append(out, sub)
		}
	}
	return out, nil
}

// pickClusters resolves --clusters among the parent's ManagedClusters;
// "all" leaves picked nil (every bound cluster).
func (o *clusterDiff) pickClusters(ctx context.Context, list clusterLister) error {
	if o.clusters == "all" {
		return nil
	}
	if strings.TrimSpace(o.clusters) == "" {
		return fmt.Errorf(`--%s "": give "all" or a comma-separated list of ManagedCluster names or cluster ids`, flagClusters)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	all, err := listClusters(ctx, list)
	if err != nil {
		return err
	}
	picked, err := pickClusters(all, strings.Split(o.clusters, ","))
	if err != nil {
		return fmt.Errorf(`--%s %q: %w; give "all" or a comma-separated list of them`, flagClusters, o.clusters, err)
	}
	o.picked = map[string]bool{}
	for _, c := range picked {
		o.picked[c.Namespace+"/"+c.Name] = true
	}
	return nil
}

// chosen are p's bound clusters that --clusters picked.
func (o *clusterDiff) chosen(p subscriptionProgress) []clusterProgress {
	if o.picked == nil {
		return p.Clusters
	}
	var out []clusterProgress
	for _, c := range p.Clusters {
		if o.picked[c.Namespace+"/"+c.Name] {
			out = append(out, c)
		}
	}
	return out
}

// diffCluster prints, under the cluster's header, the diff of each object
// the cluster would get: its live copy against a dry-run apply.
func (o *clusterDiff) diffCluster(ctx context.Context, sub *appsv1alpha1.Subscription, c clusterProgress, r *fileOverlay) (bool, error) {
	_, _ = fmt.Fprintf(o.Out, "=== cluster %s (%s)\n", c.Name, orDefault(c.ID, "unknown"))
	if c.Base == nil || c.ID == "" {
		_, _ = fmt.Fprintf(o.Out, "not diffed: the hub has not written its Base yet\n")
		return false, nil
	}
	desc, hasCharts, err := genericDescription(ctx, o.client, sub, c, r)
	if err != nil {
		return false, err
	}
	if hasCharts {
		_, _ = fmt.Fprintf(o.Out, "helm releases are not diffed\n")
	}
	changed := false
	if desc != nil {
		child, err := o.childOf(c.ID)
		if err != nil {
			return false, err
		}
		if changed, err = diffObjects(ctx, o.Out, child, desc); err != nil {
			return false, err
		}
	}
	if !changed {
		_, _ = fmt.Fprintf(o.Out, "no changes\n")
	}
	return changed, nil
}

// diffObjects diffs each of desc's objects in child, live against dry run.
func diffObjects(ctx context.Context, w io.Writer, child childDiffer, desc *appsv1alpha1.Description) (bool, error) {
	objs, err := deployer.Objects(desc, child.Namespaced)
	if err != nil {
		return false, err
	}
	changed := false
	for _, obj := range objs {
		ref := obj.Ref()
		live, err := child.Get(ctx, ref)
		if err != nil {
			return changed, fmt.Errorf("reading %s: %w", ref, err)
		}
		wouldBe, err := child.DryRun(ctx, obj.Marked(live))
		if err != nil {
			return changed, explainDryRun(ref, err)
		}
		a, err := yamlLines(stripChildNoise(live))
		if err != nil {
			return changed, err
		}
		b, err := yamlLines(stripChildNoise(wouldBe))
		if err != nil {
			return changed, err
		}
		d, err := writeUnifiedDiff(w, "live/"+ref.String(), "dry-run/"+ref.String(), a, b)
		if err != nil {
			return changed, err
		}
		changed = changed || d
	}
	return changed, nil
}

// explainDryRun names the object a dry run failed for.
func explainDryRun(ref deployer.Ref, err error) error {
	return fmt.Errorf("dry-run applying %s: %w", ref, err)
}
