package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/kubectl/pkg/util/i18n"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/clusternet/clusternet/charts"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/bootstraptoken"
	"github.com/clusternet/clusternet/pkg/registration"
)

// agentCredentialsSecret is where the agent keeps what the parent gave it
// (the agent's CredentialsSecret): left behind, a later agent would come
// back with them instead of registering anew.
const agentCredentialsSecret = "clusternet-agent-credentials"

var (
	unjoinLong = templates.LongDesc(i18n.T(`
		Deregister the child cluster of your current context (or --context)
		from the parent, then remove clusternet-agent from the child.

		unjoin first checks that the parent knows the cluster (a
		ManagedCluster or a ClusterRegistrationRequest of its id) and that the
		agent registered at the parent's address; --force skips both. In the
		parent it deletes the cluster's ClusterRegistrationRequest, its
		dedicated namespace (with its ManagedCluster, Descriptions and the
		agent's ServiceAccount, which revokes the agent's credentials) and its
		cluster-wide RBAC, each only when clusternet-hub made it, as
		docs/install.md ("Deregister a cluster") does by hand. Then, in the
		child, it deletes the objects join installs, by name, when they carry
		join's label clusternet.io/created-by=kubectl-clusternet, and the
		credentials the agent kept; nothing else (the chart's CRDs stay, as
		helm leaves them). It waits until all of it is gone. What Clusternet
		deployed in the child stays there: delete the cluster's Descriptions
		first to remove it.`))

	unjoinExample = templates.Examples(i18n.T(`
		# Unjoin the child of the current context from the parent of another kubeconfig
		kubectl clusternet unjoin --parent-kubeconfig ~/.kube/parent.yaml

		# Unjoin the child of context edge-12, the parent being context parent
		kubectl clusternet unjoin --context edge-12 --parent-context parent --timeout 2m`))
)

// UnjoinOptions are the options of `kubectl clusternet unjoin`.
type UnjoinOptions struct {
	parentFlags
	Timeout time.Duration
	// Force removes join's agent from the child though the parent does
	// not know the cluster, or the agent is joined to another address.
	Force bool

	childConfig, parentConfig *rest.Config
	clients                   *fleetClients

	genericiooptions.IOStreams
}

// NewUnjoinOptions returns options with the default timeout.
func NewUnjoinOptions(streams genericiooptions.IOStreams) *UnjoinOptions {
	return &UnjoinOptions{Timeout: defaultJoinTimeout, IOStreams: streams}
}

// NewCmdUnjoin builds `kubectl clusternet unjoin`.
func NewCmdUnjoin(child genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewUnjoinOptions(streams)
	cmd := &cobra.Command{
		Use:                   "unjoin (--parent-kubeconfig FILE | --parent-context NAME) [--timeout DURATION] [--force]",
		DisableFlagsInUseLine: true,
		Short:                 i18n.T("Remove clusternet-agent from a child cluster and deregister it from the parent"),
		Long:                  unjoinLong,
		Example:               unjoinExample,
		Args:                  cobra.NoArgs,
		Annotations:           map[string]string{AnnotationExamplesNeed: "a second cluster joined with `kubectl clusternet join`, and the parent's kubeconfig"},
		RunE:                  completeValidateRun(func([]string) error { return o.Complete(child) }, o.Validate, o.Run),
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait until the registration is gone from the parent and the agent from the child.")
	cmd.Flags().BoolVar(&o.Force, "force", o.Force, "Remove join's agent from the child even though the parent knows no registration of it, or the agent's parent URL is not the parent's.")
	return cmd
}

// Complete reads the child's and the parent's configuration.
func (o *UnjoinOptions) Complete(child genericclioptions.RESTClientGetter) error {
	childCfg, parentCfg, err := loadBoth("unjoin", child, &o.parentFlags)
	if err != nil {
		return err
	}
	o.childConfig, o.parentConfig = childCfg, parentCfg
	if o.clients == nil {
		o.clients, err = newFleetClients(childCfg, parentCfg)
	}
	return err
}

// Validate checks the flags.
func (o *UnjoinOptions) Validate() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout %q must be positive: give a duration such as 2m", o.Timeout)
	}
	return nil
}

// Run unjoins the child, step by step.
func (o *UnjoinOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	u := &unjoiner{UnjoinOptions: o, progress: &progress{out: o.ErrOut}}
	if err := u.progress.run(ctx, u.identify, u.deregister, u.removeAgent, u.waitGone); err != nil {
		return err
	}
	_, err := fmt.Fprintf(o.Out, "Unjoined: cluster id %s\n", u.id)
	return err
}

// unjoiner runs unjoin's steps, each returning the line it prints.
type unjoiner struct {
	*UnjoinOptions
	progress *progress

	id      string
	managed *clusterv1beta1.ManagedCluster
	// removedObjects are the child objects deleted, the Namespace among them
	// when join had made it.
	removedObjects []*unstructured.Unstructured
}

func (u *unjoiner) identify(ctx context.Context) (string, error) {
	id, err := childClusterID(ctx, u.clients, u.childConfig.Host)
	if err != nil {
		return "", err
	}
	u.id = id
	if u.managed, err = findManagedCluster(ctx, u.clients.parentClusternet, id); err != nil {
		return "", err
	}
	if err := u.checkSameParent(ctx); err != nil {
		return "", err
	}
	if u.managed == nil {
		return fmt.Sprintf("Child %s: cluster id %s, with no ManagedCluster in the parent", u.childConfig.Host, id), nil
	}
	return fmt.Sprintf("Child %s: cluster id %s, ManagedCluster %s/%s", u.childConfig.Host, id, u.managed.Namespace, u.managed.Name), nil
}

// checkSameParent refuses, unless --force, to strip a child the parent
// does not know (neither a ManagedCluster nor a registration request of
// its id: the wrong parent, most likely) or whose agent registered at
// another URL than the parent's.
func (u *unjoiner) checkSameParent(ctx context.Context) error {
	if u.Force {
		return nil
	}
	if u.managed == nil {
		_, err := u.clients.parentClusternet.ClustersV1beta1().ClusterRegistrationRequests().Get(ctx, clusterv1beta1.NamePrefix+u.id, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return fmt.Errorf("the parent %s has neither a ManagedCluster nor a ClusterRegistrationRequest of cluster id %s: the child is not registered there: check --parent-kubeconfig/--parent-context, or pass --force to remove join's agent from the child anyway",
				u.parentConfig.Host, u.id)
		case err != nil:
			return inParent("get", "clusterregistrationrequests", "", err)
		}
	}
	footprint, err := agentFootprint()
	if err != nil {
		return err
	}
	for _, want := range footprint {
		if want.GetKind() != "Secret" {
			continue
		}
		got, err := u.clients.getInChild(ctx, want)
		if err != nil {
			return err
		}
		if got == nil || !madeByJoin(got) {
			continue
		}
		if url := registrationParentURL(got); url != "" && strings.TrimSuffix(url, "/") != strings.TrimSuffix(u.parentConfig.Host, "/") {
			return fmt.Errorf("the child's agent registered with %s (Secret %s/%s), not with this parent's %s: run unjoin against that parent, or, if it is this parent under another address (join's --parent-url), pass --force",
				url, got.GetNamespace(), got.GetName(), u.parentConfig.Host)
		}
	}
	return nil
}

// removeAgent deletes the objects of join's footprint that carry its
// label (removeJoined), then, when there were any, the agent's
// credentials unless their namespace goes too.
func (u *unjoiner) removeAgent(ctx context.Context) (string, error) {
	found, err := removeJoined(ctx, u.clients)
	u.removedObjects = found
	if err != nil {
		return "", err
	}
	credentials := ""
	// Only after join's agent: the credentials of an agent installed
	// otherwise are that agent's.
	if len(found) > 0 && !u.removesNamespace() {
		err := u.clients.childKube.CoreV1().Secrets(charts.Namespace).Delete(ctx, agentCredentialsSecret, metav1.DeleteOptions{})
		switch {
		case err == nil:
			credentials = fmt.Sprintf(", and the agent's Secret %s/%s", charts.Namespace, agentCredentialsSecret)
		case !apierrors.IsNotFound(err):
			return "", inChild("delete", "Secret "+charts.Namespace+"/"+agentCredentialsSecret, err)
		}
	}
	if len(found) == 0 {
		u.progress.note("The child has no objects labelled %s=%s: an agent installed otherwise stays (helm uninstall clusternet-agent -n %s)",
			clusterv1beta1.LabelCreatedBy, installedBy, charts.Namespace)
	}
	return fmt.Sprintf("Removed clusternet-agent from the child: %d objects join installed%s", len(found), credentials), nil
}

// leftInChild is what of the agent is still in the child.
func (u *unjoiner) leftInChild(ctx context.Context) ([]string, error) {
	var left []string
	if u.removesNamespace() {
		_, err := u.clients.childKube.CoreV1().Namespaces().Get(ctx, charts.Namespace, metav1.GetOptions{})
		if err == nil {
			left = append(left, "namespace "+charts.Namespace+" in the child")
		} else if !apierrors.IsNotFound(err) {
			return nil, inChild("get", "namespace "+charts.Namespace, err)
		}
	}
	if u.removed("Deployment") {
		pods, err := u.clients.childKube.CoreV1().Pods(charts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: agentPodSelector})
		if err != nil {
			return nil, inChild("list", "pods in namespace "+charts.Namespace, err)
		}
		for _, p := range pods.Items {
			left = append(left, "agent pod "+charts.Namespace+"/"+p.Name+" in the child")
		}
	}
	if len(u.removedObjects) == 0 {
		return left, nil
	}
	_, err := u.clients.childKube.CoreV1().Secrets(charts.Namespace).Get(ctx, agentCredentialsSecret, metav1.GetOptions{})
	if err == nil {
		left = append(left, "Secret "+charts.Namespace+"/"+agentCredentialsSecret+" in the child")
	} else if !apierrors.IsNotFound(err) {
		return nil, inChild("get", "Secret "+charts.Namespace+"/"+agentCredentialsSecret, err)
	}
	return left, nil
}

// removed says whether unjoin deleted an object of kind.
func (u *unjoiner) removed(kind string) bool {
	return slices.ContainsFunc(u.removedObjects, func(o *unstructured.Unstructured) bool { return o.GetKind() == kind })
}

// removesNamespace says whether unjoin deleted the agent's namespace
// (join had made it): the credentials Secret goes with it.
func (u *unjoiner) removesNamespace() bool { return u.removed("Namespace") }

// deregister deletes the cluster's registration in the parent, and the
// bootstrap tokens join made for it that are left.
func (u *unjoiner) deregister(ctx context.Context) (string, error) {
	if _, err := registration.Deregister(ctx, u.clients.parentKube, u.clients.parentClusternet, u.id); err != nil {
		if apierrors.IsForbidden(err) {
			return "", fmt.Errorf("deregistering needs delete on clusterregistrationrequests, namespaces, clusterroles and clusterrolebindings in the parent: ask a parent admin for it (or use --parent-context with more rights): %w", err)
		}
		return "", fmt.Errorf("deregistering cluster %s in the parent: %w", u.id, err)
	}
	tokens, err := u.clients.parentKube.CoreV1().Secrets(bootstraptoken.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{clusterv1beta1.LabelCreatedBy: installedBy, clusterv1beta1.LabelClusterID: u.id}).String(),
	})
	if err != nil {
		return "", inParent("list", "secrets", bootstraptoken.Namespace, err)
	}
	for _, s := range tokens.Items {
		if err := u.clients.parentKube.CoreV1().Secrets(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return "", inParent("delete", "secrets", bootstraptoken.Namespace, err)
		}
	}
	return fmt.Sprintf("Deregistered from the parent: ClusterRegistrationRequest %s%s, the cluster's dedicated namespace and RBAC deleted",
		clusterv1beta1.NamePrefix, u.id), nil
}

// waitGone waits until the ManagedCluster and the dedicated namespace
// (which deleting it leaves Terminating until the namespace controller has
// emptied it) are gone from the parent and,
// from the child, the agent's namespace when unjoin deleted it, the
// agent's pods when it deleted its Deployment (a pod still running would
// write its credentials back) and the credentials Secret.
func (u *unjoiner) waitGone(ctx context.Context) (string, error) {
	var left []string
	ctx, cancel := context.WithTimeout(ctx, u.Timeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		left = nil
		mc, err := findManagedCluster(ctx, u.clients.parentClusternet, u.id)
		if err != nil {
			return false, err
		}
		if mc != nil {
			left = append(left, fmt.Sprintf("ManagedCluster %s/%s in the parent", mc.Namespace, mc.Name))
		}
		namespaces, err := registration.DedicatedNamespaces(ctx, u.clients.parentKube, u.id)
		if err != nil {
			return false, err
		}
		for _, ns := range namespaces {
			left = append(left, fmt.Sprintf("namespace %s in the parent", ns.Name))
		}
		inChildLeft, err := u.leftInChild(ctx)
		left = append(left, inChildLeft...)
		return len(left) == 0 && err == nil, err
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return "", fmt.Errorf("still there after %s: %s: namespaces wait for their objects' finalizers (kubectl get namespace -o yaml shows which): look there, or run unjoin again with a longer --timeout",
			u.Timeout, strings.Join(left, ", "))
	}
	if err != nil {
		return "", err
	}
	return "Gone: no ManagedCluster or dedicated namespace of this cluster in the parent, no agent in the child", nil
}
