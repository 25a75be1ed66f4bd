package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/kubectl/pkg/util/i18n"
	"k8s.io/kubectl/pkg/util/templates"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/scheme"
	clustersclient "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/typed/clusters/v1beta1"
)

var (
	approveLong = templates.LongDesc(i18n.T(`
		Approve cluster registration requests.

		When clusternet-hub runs with --registration-approval=manual, a child
		cluster's agent waits until an administrator approves its
		ClusterRegistrationRequest. The hub then creates the cluster's dedicated
		namespace, ManagedCluster and credentials, and the agent picks them up.

		Name a request as clusternet-CLUSTER-ID or by the bare CLUSTER-ID;
		"kubectl get clsrr" lists them with their cluster ids and states. --all
		approves every request that has no answer yet.

		SECURITY NOTICE: an approved cluster gets a token that may read and write
		everything in its dedicated namespace, including what Subscriptions send
		it. Approve only clusters whose requests you expected.`))

	approveExample = templates.Examples(i18n.T(`
		# List the requests, then approve one by name or by cluster id
		kubectl get clsrr
		kubectl clusternet approve clusternet-dc91021d-2361-4f6d-a404-7c33b9e01118
		kubectl clusternet approve dc91021d-2361-4f6d-a404-7c33b9e01118

		# Approve every pending request
		kubectl clusternet approve --all`))

	denyLong = templates.LongDesc(i18n.T(`
		Deny cluster registration requests.

		A denied request is final: the agent reports the reason and keeps
		asking, but gets no credentials. To let the cluster register later,
		delete the request ("kubectl delete clsrr NAME"): the agent creates a
		new one at its next attempt.

		An approved request cannot be denied: the cluster already holds a token,
		valid until it expires. To remove such a cluster, delete its dedicated
		namespace, which holds its ManagedCluster and its agent's ServiceAccount.`))

	denyExample = templates.Examples(i18n.T(`
		# Deny a request, saying why (the agent logs the reason)
		kubectl clusternet deny clusternet-dc91021d-2361-4f6d-a404-7c33b9e01118 --reason "unknown edge site"

		# Deny every pending request
		kubectl clusternet deny --all`))
)

const (
	defaultDenyReason = "denied by an administrator of the parent cluster"
	// statusPermission is what a user needs to answer requests.
	statusPermission = `"update" on "clusterregistrationrequests/status" (API group ` + clusterv1beta1.GroupName + `)`
	canIStatus       = "kubectl auth can-i update clusterregistrationrequests." + clusterv1beta1.GroupName + " --subresource=status"
)

// ReviewOptions are the options of `kubectl clusternet approve` and `deny`:
// both write an answer into requests' status.
type ReviewOptions struct {
	PrintFlags *genericclioptions.PrintFlags
	// All answers every request that has no answer yet.
	All bool
	// Reason is the errorMessage of a denial.
	Reason string

	// result is what this command writes: Approved or Denied.
	result clusterv1beta1.ApprovedResult
	names  []string

	printObj printers.ResourcePrinterFunc
	// newClient makes the parent's clientset; tests put a fake in.
	newClient func() (versioned.Interface, error)
	requests  clustersclient.ClusterRegistrationRequestInterface

	genericiooptions.IOStreams
}

// NewReviewOptions returns options that write result into requests.
func NewReviewOptions(streams genericiooptions.IOStreams, result clusterv1beta1.ApprovedResult) *ReviewOptions {
	return &ReviewOptions{
		PrintFlags: genericclioptions.NewPrintFlags(strings.ToLower(string(result))).WithTypeSetter(scheme.Scheme),
		result:     result,
		IOStreams:  streams,
	}
}

// NewCmdApprove builds `kubectl clusternet approve`.
func NewCmdApprove(parent genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdApprove(NewReviewOptions(streams, clusterv1beta1.RequestApproved), parent)
}

func newCmdApprove(o *ReviewOptions, parent genericclioptions.RESTClientGetter) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "approve (NAME | CLUSTER-ID)... | --all",
		DisableFlagsInUseLine: true,
		Short:                 i18n.T("Approve cluster registration requests"),
		Long:                  approveLong,
		Example:               approveExample,
	}
	return o.command(cmd, parent)
}

// NewCmdDeny builds `kubectl clusternet deny`.
func NewCmdDeny(parent genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdDeny(NewReviewOptions(streams, clusterv1beta1.RequestDenied), parent)
}

func newCmdDeny(o *ReviewOptions, parent genericclioptions.RESTClientGetter) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "deny (NAME | CLUSTER-ID)... | --all [--reason TEXT]",
		DisableFlagsInUseLine: true,
		Short:                 i18n.T("Deny cluster registration requests"),
		Long:                  denyLong,
		Example:               denyExample,
		// The testbed's hub approves every request itself, so none is left
		// for deny's examples to refuse.
		Annotations: map[string]string{AnnotationExamplesNeed: "a registration request still waiting for approval (a hub run with manual approval)"},
	}
	cmd.Flags().StringVar(&o.Reason, "reason", o.Reason, "Why the requests are denied: stored as status.errorMessage, which the agent logs. Default: \""+defaultDenyReason+"\".")
	return o.command(cmd, parent)
}

func (o *ReviewOptions) command(cmd *cobra.Command, parent genericclioptions.RESTClientGetter) *cobra.Command {
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(parent, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		cmd.SilenceUsage = true
		return o.Run(cmd.Context())
	}
	verb := "approve"
	if o.result == clusterv1beta1.RequestDenied {
		verb = "deny"
	}
	cmd.Flags().BoolVar(&o.All, "all", o.All, strings.ToUpper(verb[:1])+verb[1:]+" every request that has no answer yet, instead of naming them.")
	o.PrintFlags.AddFlags(cmd)
	return cmd
}

// Complete reads the arguments and connects to the parent (the parent
// itself: requests are not templates).
func (o *ReviewOptions) Complete(parent genericclioptions.RESTClientGetter, args []string) error {
	o.names = args
	printer, err := o.PrintFlags.ToPrinter()
	if err != nil {
		return err
	}
	o.printObj = printer.PrintObj
	if o.newClient == nil {
		o.newClient = func() (versioned.Interface, error) {
			cfg, err := parent.ToRESTConfig()
			if err != nil {
				return nil, err
			}
			return versioned.NewForConfig(cfg)
		}
	}
	return nil
}

// Validate checks the arguments before anything is read or written.
func (o *ReviewOptions) Validate() error {
	switch {
	case o.All && len(o.names) > 0:
		return fmt.Errorf("--all and names %q both given: name requests, or use --all for every pending one, not both", o.names)
	case !o.All && len(o.names) == 0:
		return fmt.Errorf("no request named: give one or more names (clusternet-<cluster-id>) or cluster ids, or --all; list them with `kubectl get clsrr`")
	}
	for _, n := range o.names {
		if strings.TrimSpace(n) == "" {
			return fmt.Errorf("request name %q is empty: give names as clusternet-<cluster-id> or bare cluster ids", n)
		}
	}
	return nil
}

// requestName is the request that arg names: a cluster id stands for its
// request, "clusternet-<cluster-id>", as agents name them.
func requestName(arg string) string {
	if uuid.Validate(arg) == nil {
		return clusterv1beta1.NamePrefix + arg
	}
	return arg
}

// Run answers the requests. Every named request is read and checked before
// any is written: one unknown or refused request changes nothing.
func (o *ReviewOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cs, err := o.newClient()
	if err != nil {
		return err
	}
	o.requests = cs.ClustersV1beta1().ClusterRegistrationRequests()

	var targets []*clusterv1beta1.ClusterRegistrationRequest
	if o.All {
		if targets, err = o.pending(ctx); err != nil {
			return err
		}
		if len(targets) == 0 {
			_, _ = fmt.Fprintln(o.ErrOut, "No pending cluster registration requests found.")
			return nil
		}
	} else {
		var problems []string
		seen := map[string]bool{}
		for _, arg := range o.names {
			name := requestName(arg)
			if seen[name] {
				continue
			}
			seen[name] = true
			crr, err := o.requests.Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				err = o.refusal(crr)
			} else {
				err = o.explainRead(arg, name, err)
			}
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			targets = append(targets, crr)
		}
		switch len(problems) {
		case 0:
		case 1:
			return fmt.Errorf("%s", problems[0])
		default:
			return fmt.Errorf("nothing was %s, because:\n  - %s", o.past(), strings.Join(problems, "\n  - "))
		}
	}
	for _, crr := range targets {
		answered, err := o.answer(ctx, crr)
		if err != nil {
			return err
		}
		if err := o.printObj(answered, o.Out); err != nil {
			return err
		}
	}
	return nil
}

// pending lists the requests without an answer, by name.
func (o *ReviewOptions) pending(ctx context.Context) ([]*clusterv1beta1.ClusterRegistrationRequest, error) {
	list, err := o.requests.List(ctx, metav1.ListOptions{})
	if apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("listing cluster registration requests for --all: you lack %q on %q (API group %s) in the parent: "+
			"ask a parent admin for it, or name the requests instead: %w", "list", "clusterregistrationrequests", clusterv1beta1.GroupName, err)
	}
	if err != nil {
		return nil, fmt.Errorf("listing cluster registration requests: %w", err)
	}
	var out []*clusterv1beta1.ClusterRegistrationRequest
	for i := range list.Items {
		if isPending(&list.Items[i]) {
			out = append(out, &list.Items[i])
		}
	}
	slices.SortFunc(out, func(a, b *clusterv1beta1.ClusterRegistrationRequest) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func isPending(crr *clusterv1beta1.ClusterRegistrationRequest) bool {
	return crr.Status.Result == nil || *crr.Status.Result == "" || *crr.Status.Result == clusterv1beta1.RequestPending
}

func (o *ReviewOptions) past() string { return strings.ToLower(string(o.result)) }

func (o *ReviewOptions) verb() string {
	if o.result == clusterv1beta1.RequestApproved {
		return "approving"
	}
	return "denying"
}

// explainRead turns a failed read of a named request into what to do.
func (o *ReviewOptions) explainRead(arg, name string, err error) error {
	what := fmt.Sprintf("clusterregistrationrequest %q", name)
	if arg != name {
		what += fmt.Sprintf(" (of cluster id %q)", arg)
	}
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s not found: list the requests and their cluster ids with `kubectl get clsrr`", what)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("reading %s: you lack %q on %q (API group %s) in the parent; %s also needs %s: ask a parent admin for both: %w",
			what, "get", "clusterregistrationrequests", clusterv1beta1.GroupName, o.verb(), statusPermission, err)
	default:
		return fmt.Errorf("reading %s: %w", what, err)
	}
}

// refusal says why crr cannot get this answer; nil if it can (or already has it).
func (o *ReviewOptions) refusal(crr *clusterv1beta1.ClusterRegistrationRequest) error {
	if isPending(crr) || *crr.Status.Result == o.result {
		return nil
	}
	switch o.result {
	case clusterv1beta1.RequestApproved:
		// The hub never provisions a denied request, and an answer is final.
		return fmt.Errorf("clusterregistrationrequest %q is already Denied (%s) and cannot be approved: delete it with `kubectl delete clsrr %s`, "+
			"and the cluster's agent will create a new request at its next attempt", crr.Name, orNone(crr.Status.ErrorMessage), crr.Name)
	default:
		where := fmt.Sprintf("namespace %q (`kubectl delete namespace %s`)", crr.Status.DedicatedNamespace, crr.Status.DedicatedNamespace)
		if crr.Status.DedicatedNamespace == "" {
			where = fmt.Sprintf("namespace (find it with `kubectl get namespace -l %s=%s`)", clusterv1beta1.LabelClusterID, crr.Spec.ClusterID)
		}
		return fmt.Errorf("clusterregistrationrequest %q is already Approved and cannot be denied: denying it now would not revoke "+
			"the token the cluster already holds, which stays valid until it expires; to remove the cluster, delete its dedicated %s, "+
			"which holds its ManagedCluster and its agent's ServiceAccount, so the agent's parent token stops working at once",
			crr.Name, where)
	}
}

func orNone(msg string) string {
	if msg == "" {
		return "no reason given"
	}
	return "reason: " + msg
}

// answer writes the answer into crr's status, unless it is already there.
// A conflict (the hub or another admin wrote in between) is retried once
// on a fresh read, which is checked again.
func (o *ReviewOptions) answer(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest) (*clusterv1beta1.ClusterRegistrationRequest, error) {
	for attempt := 1; ; attempt++ {
		if !isPending(crr) {
			// Already answered this way (refusal has ruled the other out).
			return crr, nil
		}
		update := crr.DeepCopy()
		update.Status.Result = &o.result
		// A hub that waits for an admin says so in errorMessage: an approval
		// answers that, and a denial says why.
		update.Status.ErrorMessage = ""
		if o.result == clusterv1beta1.RequestDenied {
			update.Status.ErrorMessage = o.Reason
			if update.Status.ErrorMessage == "" {
				update.Status.ErrorMessage = defaultDenyReason
			}
		}
		updated, err := o.requests.UpdateStatus(ctx, update, metav1.UpdateOptions{})
		switch {
		case err == nil:
			return updated, nil
		case apierrors.IsConflict(err) && attempt == 1:
			name := crr.Name
			if crr, err = o.requests.Get(ctx, name, metav1.GetOptions{}); err != nil {
				return nil, o.explainRead(name, name, err)
			}
			if err := o.refusal(crr); err != nil {
				return nil, err
			}
		case apierrors.IsConflict(err):
			return nil, fmt.Errorf("%s clusterregistrationrequest %q: it changed twice while being written; run the command again: %w", o.verb(), crr.Name, err)
		case apierrors.IsForbidden(err):
			return nil, fmt.Errorf("%s clusterregistrationrequest %q: you lack %s in the parent: ask a parent admin for it (check with `%s`): %w",
				o.verb(), crr.Name, statusPermission, canIStatus, err)
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("%s clusterregistrationrequest %q: it was deleted meanwhile: list the requests with `kubectl get clsrr`", o.verb(), crr.Name)
		default:
			return nil, fmt.Errorf("%s clusterregistrationrequest %q: %w", o.verb(), crr.Name, err)
		}
	}
}
