package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/kubectl/pkg/cmd/exec"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/i18n"
	"k8s.io/kubectl/pkg/util/templates"
)

var (
	execLong = templates.LongDesc(i18n.T(`
		Run one command in one pod of each child cluster, and print what it
		printed under each cluster's name.

		In each child cluster that --clusters names ("all", the default, or a
		comma-separated list of ManagedCluster names or cluster ids) the pod
		is the one named, or, with -l, the first running pod (by name) the
		selector matches in the namespace. The command runs as "kubectl exec"
		runs it, through the parent and the child's tunnel, as "kubectl
		clusternet --cluster" does: the child sees your parent user, and its
		RBAC decides. It takes no standard input and no terminal: it runs in
		every cluster at once.

		Each cluster's output is printed after a "=== CLUSTER (pod
		NAMESPACE/NAME)" line once its command has ended, clusters in name
		order, each as soon as it and those before it are done; at most 10 MiB
		of each stream per cluster is kept (the rest is cut, saying so), and
		--timeout stops the command where it still runs. What the command wrote to standard error goes to standard
		error, after the same line. A cluster where no pod matches, or where
		the command could not run or exited non-zero, is reported on standard
		error, and the command exits 1 after all clusters have run.`))

	execExample = templates.Examples(i18n.T(`
		# Print the hostname of one pod labelled app=nginx in every child cluster
		kubectl clusternet exec -l app=nginx -n foo -- hostname

		# Run a command in container nginx of one such pod in two child clusters, by name or cluster id
		kubectl clusternet exec -l app=nginx -c nginx -n foo --clusters clusternet-cluster-dzqkw,dc91021d-2361-4f6d-a404-7c33b9e01118 -- uname -r`))
)

// ExecOptions are the options of `kubectl clusternet exec`.
type ExecOptions struct {
	// Clusters is "all" or a comma-separated list of ManagedCluster names or ids.
	Clusters      string
	Selector      string
	ContainerName string
	// Timeout stops the command in a cluster after it; 0 means no limit.
	Timeout time.Duration

	podName   string
	command   []string
	namespace string
	list      clusterLister
	childFor  func(c Cluster) (execChild, error)

	genericiooptions.IOStreams
}

// execChild is one child as exec reaches it.
type execChild struct {
	pods     kubernetes.Interface
	config   *rest.Config
	executor exec.RemoteExecutor
}

// NewExecOptions returns options for every cluster.
func NewExecOptions(streams genericiooptions.IOStreams) *ExecOptions {
	return &ExecOptions{Clusters: "all", IOStreams: streams}
}

// NewCmdExec builds `kubectl clusternet exec`.
func NewCmdExec(parent parentGetter, userFlags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewExecOptions(streams)
	cmd := &cobra.Command{
		Use:                   "exec (POD | -l SELECTOR) [-c CONTAINER] [--clusters all|NAME,...] -- COMMAND [args...]",
		DisableFlagsInUseLine: true,
		Short:                 i18n.T("Run a command in one pod of each child cluster"),
		Long:                  execLong,
		Example:               execExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(parent, userFlags, args, cmd.ArgsLenAtDash()); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.Clusters, flagClusters, o.Clusters,
		`Run the command in these child clusters: "all", or a comma-separated list of ManagedCluster names or cluster ids.`)
	must(cmd.RegisterFlagCompletionFunc(flagClusters, clusterListCompletion(parent)))
	cmd.Flags().StringVarP(&o.Selector, "selector", "l", o.Selector,
		"Run in the first running pod (by name) this label selector matches in each cluster, instead of a named pod.")
	cmd.Flags().StringVarP(&o.ContainerName, "container", "c", o.ContainerName,
		"Container name. If omitted, the pod's default container (kubectl.kubernetes.io/default-container, else its first).")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout,
		"Stop the command in a cluster where it still runs after this long (e.g. 1m); 0 means no limit.")
	return cmd
}

// Complete reads the pod and the command (after --), and finds the parent.
func (o *ExecOptions) Complete(parent parentGetter, userFlags *genericclioptions.ConfigFlags, args []string, argsLenAtDash int) error {
	if argsLenAtDash < 0 {
		return fmt.Errorf("no command: give it after --, as in `kubectl clusternet exec -l app=nginx -- hostname`")
	}
	o.command = args[argsLenAtDash:]
	switch argsLenAtDash {
	case 0:
	case 1:
		o.podName = args[0]
	default:
		return fmt.Errorf("%d arguments before -- %q: give one pod name, or none with -l", argsLenAtDash, args[:argsLenAtDash])
	}
	var err error
	if o.namespace, _, err = parent.ToRawKubeConfigLoader().Namespace(); err != nil {
		return err
	}
	if o.list == nil {
		if o.list, err = parentLister(parent); err != nil {
			return err
		}
	}
	if o.childFor == nil {
		o.childFor = func(c Cluster) (execChild, error) {
			// Through MatchVersionFlags, as kubectl's factory is: its config
			// carries the core group's defaults exec's REST client needs.
			f := cmdutil.NewFactory(cmdutil.NewMatchVersionFlags(childConfigFlags(userFlags, c.ID)))
			cfg, err := f.ToRESTConfig()
			if err != nil {
				return execChild{}, err
			}
			cs, err := f.KubernetesClientSet()
			if err != nil {
				return execChild{}, err
			}
			return execChild{pods: cs, config: cfg, executor: &exec.DefaultRemoteExecutor{}}, nil
		}
	}
	return nil
}

// Validate checks the flags.
func (o *ExecOptions) Validate() error {
	if o.Timeout < 0 {
		return fmt.Errorf("--timeout %q is negative: give a duration such as 1m, or 0 for no limit", o.Timeout)
	}
	if strings.TrimSpace(o.Clusters) == "" {
		return fmt.Errorf(`--clusters %q: give "all" or a comma-separated list of ManagedCluster names or cluster ids`, o.Clusters)
	}
	switch {
	case len(o.command) == 0:
		return errors.New("no command after --: give one, as in `kubectl clusternet exec -l app=nginx -- hostname`")
	case o.podName == "" && o.Selector == "":
		return errors.New("give a pod name or a label selector (-l app=nginx), as in `kubectl clusternet exec -l app=nginx -- hostname`")
	case o.podName != "" && o.Selector != "":
		return fmt.Errorf("pod %q and -l %q: give a pod name or a label selector, not both", o.podName, o.Selector)
	}
	return nil
}

// execResult is what the command did in one cluster.
type execResult struct {
	cluster        Cluster
	pod            string
	stdout, stderr cappedBuffer
	err            error
}

// execOutputCap bounds what exec keeps of each stream of each cluster: a
// command's output is held until its cluster's turn to print, and a
// chatty command in many clusters must not exhaust memory.
const execOutputCap = 10 << 20

// cappedBuffer keeps the first execOutputCap bytes written to it and
// counts the rest. It is locked: a stream stopped by --timeout may still
// be writing while its output is printed.
type cappedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	dropped int
	limit   int // 0: execOutputCap
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := b.limit
	if limit == 0 {
		limit = execOutputCap
	}
	keep := min(len(p), max(limit-b.buf.Len(), 0))
	b.buf.Write(p[:keep])
	b.dropped += len(p) - keep
	return len(p), nil
}

// contents is what was kept, with a note of what was cut.
func (b *cappedBuffer) contents() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Clone(b.buf.Bytes())
	if b.dropped > 0 {
		out = fmt.Appendf(out, "\n[output truncated: %d more bytes not shown; exec keeps %d bytes per cluster]\n", b.dropped, b.buf.Len())
	}
	return out
}

// Run runs the command in every chosen cluster at once and prints each
// cluster's output once it is done, clusters in name order.
func (o *ExecOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	targets, err := selectClusters(ctx, o.list, o.Clusters)
	if err != nil {
		return err
	}
	// Each cluster's result is printed as soon as it and those before it
	// are done, so output flows while slow clusters still run.
	results := make([]chan *execResult, len(targets))
	for i := range results {
		results[i] = make(chan *execResult, 1)
	}
	go forEachCluster(targets, func(i int, c Cluster) { results[i] <- o.execIn(ctx, c) })

	var failed []string
	for _, ch := range results {
		r := <-ch
		o.printResult(r)
		if r.err != nil {
			failed = append(failed, fmt.Sprintf("%s (%s)", r.cluster, r.err))
		}
	}
	if len(failed) > 0 {
		return &ExitError{Code: 1, Message: fmt.Sprintf("error: the command failed in %d of %d clusters: %s",
			len(failed), len(results), strings.Join(failed, "; "))}
	}
	return nil
}

func (o *ExecOptions) printResult(r *execResult) {
	header := fmt.Sprintf("=== %s", r.cluster)
	if r.pod != "" {
		header += fmt.Sprintf(" (pod %s/%s)", o.namespace, r.pod)
	}
	_, _ = fmt.Fprintln(o.Out, header)
	writeEndingInNewline(o.Out, r.stdout.contents())
	if stderr := r.stderr.contents(); len(stderr) > 0 {
		_, _ = fmt.Fprintln(o.ErrOut, header)
		writeEndingInNewline(o.ErrOut, stderr)
	}
	if r.err != nil {
		_, _ = fmt.Fprintf(o.ErrOut, "error: cluster %s: %s\n", r.cluster, r.err)
	}
}

// writeEndingInNewline writes b, ending it with a newline so the next
// cluster's header starts a line.
func writeEndingInNewline(w io.Writer, b []byte) {
	if len(b) == 0 {
		return
	}
	_, _ = w.Write(b)
	if b[len(b)-1] != '\n' {
		_, _ = io.WriteString(w, "\n")
	}
}

// execIn picks the pod in cluster c and runs the command there with
// kubectl's exec.
func (o *ExecOptions) execIn(ctx context.Context, c Cluster) *execResult {
	r := &execResult{cluster: c}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	child, err := o.childFor(c)
	if err != nil {
		r.err = err
		return r
	}
	pod, err := o.pickPod(ctx, child.pods)
	if err != nil {
		r.err = err
		return r
	}
	r.pod = pod.Name
	k := &exec.ExecOptions{
		StreamOptions: exec.StreamOptions{
			Namespace: o.namespace,
			// kubectl reads the pod again by name (it takes a set Pod only
			// with a resource builder): the one picked here.
			PodName:       pod.Name,
			ContainerName: o.ContainerName,
			// kubectl's "Defaulted container" notice would land in the middle
			// of other clusters' output.
			Quiet:     true,
			IOStreams: genericiooptions.IOStreams{Out: &r.stdout, ErrOut: &r.stderr},
		},
		Command:   o.command,
		Executor:  ctxExecutor{RemoteExecutor: child.executor, ctx: ctx},
		PodClient: child.pods.CoreV1(),
		Config:    child.config,
	}
	r.err = explainExecError(k.Run())
	if r.err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r.err = fmt.Errorf("stopped after --timeout %s: %w", o.Timeout, r.err)
	}
	return r
}

// ctxExecutor runs kubectl's exec, which calls Execute, with ctx, so that
// --timeout stops the stream.
type ctxExecutor struct {
	exec.RemoteExecutor
	ctx context.Context
}

func (e ctxExecutor) Execute(u *url.URL, config *rest.Config, stdin io.Reader, stdout, stderr io.Writer, tty bool, q remotecommand.TerminalSizeQueue) error {
	return e.ExecuteWithContext(e.ctx, u, config, stdin, stdout, stderr, tty, q)
}

// explainExecError says what the command's exit status was.
func explainExecError(err error) error {
	var exit utilexec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		return fmt.Errorf("command exited with status %d", exit.ExitStatus())
	}
	return err
}

// pickPod is the named pod, or the first running pod by name that the
// selector matches.
func (o *ExecOptions) pickPod(ctx context.Context, cs kubernetes.Interface) (*corev1.Pod, error) {
	pods := cs.CoreV1().Pods(o.namespace)
	if o.podName != "" {
		return pods.Get(ctx, o.podName, metav1.GetOptions{})
	}
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: o.Selector})
	if err != nil {
		return nil, err
	}
	var running []*corev1.Pod
	for i := range list.Items {
		if p := &list.Items[i]; p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running = append(running, p)
		}
	}
	if len(running) == 0 {
		return nil, fmt.Errorf("no running pod matches -l %q in namespace %q (%d pods match, none running)", o.Selector, o.namespace, len(list.Items))
	}
	slices.SortFunc(running, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return running[0], nil
}
