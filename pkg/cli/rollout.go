package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	utilcomp "k8s.io/kubectl/pkg/util/completion"
	"k8s.io/kubectl/pkg/util/i18n"
	"k8s.io/kubectl/pkg/util/templates"
	"k8s.io/kubectl/pkg/util/term"
)

var (
	rolloutLong = templates.LongDesc(i18n.T(`
		Follow how Subscriptions roll out to child clusters.`))

	rolloutExample = templates.Examples(i18n.T(`
		# Watch a Subscription roll out to every cluster it is bound to
		kubectl clusternet rollout status subscription/app-demo`))

	rolloutStatusLong = templates.LongDesc(i18n.T(`
		Show how a Subscription rolls out, cluster by cluster, and wait until
		it is done.

		For each cluster the Subscription is bound to (status.bindingClusters),
		it shows each Description the cluster's Base is rendered into, its
		phase as its deployer reported it, and the ready and desired replicas
		of its workloads. Everything is read from the parent (Subscriptions,
		Bases and Descriptions, with your own credentials); the children are
		not asked.

		A cluster is done when its Base is rendered and every Description is
		in phase Success for its latest spec, with every object available.
		The command exits 0 when every bound cluster is done; 1 as soon as a
		Description is in phase Failure or a Base does not render (naming the
		cluster, the Description and the reason), or when --timeout passes
		(naming the clusters not done and what they wait for).

		On a terminal the table is redrawn in place; otherwise each change is
		printed as one line. With --watch=false the state is printed once, and
		the exit code follows the same rule.`))

	rolloutStatusExample = templates.Examples(i18n.T(`
		# Wait until the Subscription app-demo is rolled out to all its clusters
		kubectl clusternet rollout status subscription/app-demo

		# Give up after 5 minutes; the Subscription is in namespace default
		kubectl clusternet rollout status subs/app-demo -n default --timeout 5m

		# Print the current state once, exiting 1 unless it is rolled out
		kubectl clusternet rollout status subscription app-demo --watch=false`))
)

const rolloutStatusUsage = "`kubectl clusternet rollout status subscription/app-demo`"

// NewCmdRollout builds `kubectl clusternet rollout`.
func NewCmdRollout(f cmdutil.Factory, parent genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "rollout SUBCOMMAND",
		DisableFlagsInUseLine: true,
		Short:                 i18n.T("Follow how Subscriptions roll out to child clusters"),
		Long:                  rolloutLong,
		Example:               rolloutExample,
		Args:                  cobra.NoArgs,
		RunE:                  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(NewCmdRolloutStatus(f, parent, streams))
	return cmd
}

// RolloutStatusOptions are the options of `kubectl clusternet rollout status`.
type RolloutStatusOptions struct {
	// Timeout ends the wait with exit 1; 0 waits for ever.
	Timeout time.Duration
	// Watch waits for the rollout; false prints its state once.
	Watch bool

	args []string
	name string

	parentReads
	// The terminal check and size: tests put their own in.
	isTerminal func(io.Writer) bool
	size       func() (width, height int)

	genericiooptions.IOStreams
}

// NewRolloutStatusOptions returns options with defaults.
func NewRolloutStatusOptions(streams genericiooptions.IOStreams) *RolloutStatusOptions {
	return &RolloutStatusOptions{Watch: true, IOStreams: streams}
}

// NewCmdRolloutStatus builds `kubectl clusternet rollout status`.
func NewCmdRolloutStatus(f cmdutil.Factory, parent genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdRolloutStatus(NewRolloutStatusOptions(streams), f, parent)
}

func newCmdRolloutStatus(o *RolloutStatusOptions, f cmdutil.Factory, parent genericclioptions.RESTClientGetter) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "status (TYPE NAME | TYPE/NAME) [--timeout DURATION] [--watch=false]",
		DisableFlagsInUseLine: true,
		Short:                 i18n.T("Show a Subscription's rollout, cluster by cluster, and wait until it is done"),
		Long:                  rolloutStatusLong,
		Example:               rolloutStatusExample,
		RunE:                  completeValidateRun(func(args []string) error { return o.Complete(f, parent, args) }, o.Validate, o.Run),
	}
	if f != nil {
		cmd.ValidArgsFunction = utilcomp.SpecifiedResourceTypeAndNameNoRepeatCompletionFunc(f, []string{"subscription"})
	}
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait before exiting 1, naming the clusters not done (e.g. 30s, 5m); 0 waits for ever.")
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", o.Watch, "Wait until the rollout is done or fails; false prints its state once.")
	return cmd
}

// Complete reads the namespace and connects to the parent.
func (o *RolloutStatusOptions) Complete(f cmdutil.Factory, parent genericclioptions.RESTClientGetter, args []string) error {
	o.args = args
	if err := o.complete(f, parent); err != nil {
		return err
	}
	if o.isTerminal == nil {
		o.isTerminal = func(w io.Writer) bool { return printers.IsTerminal(w) }
	}
	if o.size == nil {
		o.size = func() (int, int) {
			if s := (term.TTY{Out: o.Out}).GetSize(); s != nil {
				return int(s.Width) - 1, int(s.Height)
			}
			return 0, 0
		}
	}
	return nil
}

// Validate checks the flags and that the argument names a Subscription.
func (o *RolloutStatusOptions) Validate() error {
	if o.Timeout < 0 {
		return fmt.Errorf("--timeout %q: give a duration of 0 (wait for ever) or more, such as 5m", o.Timeout)
	}
	mapper, err := o.mapper()
	if err != nil {
		return err
	}
	r, err := parseResourceArgs(mapper, o.args, rolloutStatusUsage)
	if err != nil {
		return err
	}
	if !r.isSubscription() {
		return fmt.Errorf("%s/%s is a %s, not a Subscription: rollout status follows Subscriptions, as in %s; "+
			"`kubectl clusternet tree %s/%s` shows which Subscriptions use it",
			strings.ToLower(r.mapping.GroupVersionKind.Kind), r.name, r.mapping.GroupVersionKind.Kind, rolloutStatusUsage,
			strings.ToLower(r.mapping.GroupVersionKind.Kind), r.name)
	}
	o.name = r.name
	return nil
}

// Run shows the rollout until it is done, fails or times out; with
// --watch=false it shows it once.
func (o *RolloutStatusOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	client, err := o.newClient()
	if err != nil {
		return err
	}
	reader := subscriptionReader{client: client, namespace: o.namespace, name: o.name}
	printer := o.printer()
	if !o.Watch {
		data, err := reader.read(ctx)
		if err != nil {
			return err
		}
		p := evaluate(data)
		printer.show(p)
		return o.verdict(p)
	}
	return o.watch(ctx, reader, printer)
}

func (o *RolloutStatusOptions) printer() progressPrinter {
	if o.isTerminal(o.Out) {
		return &tablePrinter{out: o.Out, size: o.size, colour: o.allowColor(o.Out)}
	}
	return &linePrinter{out: o.Out, errOut: o.ErrOut}
}

// watch follows the rollout through informers until it is done or fails,
// or until --timeout.
func (o *RolloutStatusOptions) watch(ctx context.Context, reader subscriptionReader, printer progressPrinter) error {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, o.Timeout, errTimedOut)
		defer cancel()
	}
	w := newRolloutWatch(reader)
	defer w.stop()
	if err := w.start(ctx); err != nil {
		if errors.Is(context.Cause(ctx), errTimedOut) {
			return o.timedOut(nil)
		}
		return err
	}
	var last *subscriptionProgress
	for {
		select {
		case <-w.changed:
			data, ok, err := w.data()
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			p := evaluate(data)
			last = &p
			printer.show(p)
			if p.State != stateWaiting {
				return o.verdict(p)
			}
		case msg := <-w.notes:
			printer.note(msg)
		case err := <-w.fatal:
			return err
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), errTimedOut) {
				return o.timedOut(last)
			}
			return ctx.Err()
		}
	}
}

var errTimedOut = errors.New("--timeout passed")

// verdict is nil for a rollout that is done, and otherwise an error naming
// the clusters that failed or are not done, and why.
func (o *RolloutStatusOptions) verdict(p subscriptionProgress) error {
	switch p.State {
	case stateDone:
		return nil
	case stateFailed:
		if p.Failure != "" {
			return &ExitError{Code: 1, Message: fmt.Sprintf("error: subscription %q in namespace %q cannot roll out: %s", p.Sub.Name, p.Sub.Namespace, p.Failure)}
		}
		return &ExitError{Code: 1, Message: fmt.Sprintf("error: subscription %q in namespace %q failed in %s", p.Sub.Name, p.Sub.Namespace,
			listed(p.clustersIn(stateFailed)))}
	default:
		return &ExitError{Code: 1, Message: fmt.Sprintf("error: subscription %q in namespace %q is not rolled out yet: %s", p.Sub.Name, p.Sub.Namespace, notDone(p))}
	}
}

func (o *RolloutStatusOptions) timedOut(last *subscriptionProgress) error {
	if last == nil {
		return &ExitError{Code: 1, Message: fmt.Sprintf("error: timed out after %s waiting for subscription %q in namespace %q: the parent has not answered the first list yet",
			o.Timeout, o.name, o.namespace)}
	}
	return &ExitError{Code: 1, Message: fmt.Sprintf("error: timed out after %s waiting for subscription %q in namespace %q to roll out: %s",
		o.Timeout, o.name, o.namespace, notDone(*last))}
}

// notDone says what a rollout still waits for: the Subscription itself,
// or each cluster not done.
func notDone(p subscriptionProgress) string {
	if p.Waiting != "" {
		return p.Waiting
	}
	waiting := p.clustersIn(stateWaiting)
	return fmt.Sprintf("%d of %d clusters not done: %s", len(waiting), len(p.Clusters), listed(waiting))
}

// listed joins items on one line, or one per line when there are several.
func listed(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return "\n  " + strings.Join(items, "\n  ")
}
