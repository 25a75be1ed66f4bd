package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/kubectl/pkg/util/i18n"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/clusternet/clusternet/pkg/bootstraptoken"
)

// AnnotationExamplesNeed marks a command whose examples cannot run against
// the local testbed alone; its value says what they need.
const AnnotationExamplesNeed = "examples.clusternet.io/needs"

var (
	joinLong = templates.LongDesc(i18n.T(`
		Join the child cluster of your current context (or --context) to a
		parent: install clusternet-agent there, have it register, and wait
		until the cluster is Ready with its tunnel up.

		The parent is named by --parent-kubeconfig and/or --parent-context. In
		it, join makes a bootstrap token for this cluster alone (one hour,
		registration rights only, deleted once the cluster has joined), or uses
		--bootstrap-token. In the child it installs the clusternet-agent chart this
		plugin ships, with the parent's URL and CA, every object labelled
		clusternet.io/created-by=kubectl-clusternet so that unjoin removes
		exactly these, and the chart's CRDs the child lacks. It refuses a child
		whose agent it did not install (helm's, say) or that is joined to
		another parent. Each step prints one line; a failed step says what to
		fix, and removes what join made unless the agent may be registering.

		If clusternet-hub approves registrations by hand, approve the cluster
		from another terminal while join waits ("kubectl clusternet approve
		CLUSTER-ID"; join prints the id).`))

	joinExample = templates.Examples(i18n.T(`
		# Join the child of the current context to the parent of another kubeconfig
		kubectl clusternet join --parent-kubeconfig ~/.kube/parent.yaml

		# Join the child of context edge-12, with the parent's context of the same
		# kubeconfig, under a chosen name, giving the agent the parent's address as
		# the child's pods reach it
		kubectl clusternet join --context edge-12 --parent-context parent --cluster-name edge-12 --parent-url https://parent.example.com:6443

		# Join with a token made beforehand (kubectl clusternet create token)
		kubectl clusternet join --parent-context parent --bootstrap-token abcdef.0123456789abcdef --timeout 10m`))
)

// installedBy is the clusternet.io/created-by label of what join makes:
// the objects in the child (unjoin deletes exactly those) and its token
// in the parent, the value `create token` gives its tokens.
const installedBy = tokenCreatedBy

// Defaults of join and unjoin.
const (
	defaultJoinTimeout = 5 * time.Minute
	// joinTokenTTL bounds the token join makes: long enough for a slow
	// image pull and a hand approval, and deleted sooner once joined.
	joinTokenTTL = time.Hour
	// probeTimeout keeps a wrong address from holding a step for long.
	probeTimeout = 15 * time.Second
)

// parentFlags say where the parent is, for commands that run against a
// child: `clusteradm join --hub-*` and `karmadactl join --karmada-*` name
// theirs after the other side too.
type parentFlags struct {
	Kubeconfig, Context string
}

func (p *parentFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&p.Kubeconfig, "parent-kubeconfig", p.Kubeconfig, "The parent cluster's kubeconfig (where clusternet-hub runs). Default: the child's kubeconfig, with --parent-context.")
	fs.StringVar(&p.Context, "parent-context", p.Context, "The parent's context in --parent-kubeconfig. Default: that kubeconfig's current context.")
}

// load reads the parent's client configuration. childLoader is the
// child's kubeconfig loader: without --parent-kubeconfig the parent is a
// context of the same file(s).
func (p *parentFlags) load(command string, childLoader clientcmd.ClientConfig) (*rest.Config, error) {
	if p.Kubeconfig == "" && p.Context == "" {
		return nil, fmt.Errorf("%s runs against the child and needs the parent too: pass --parent-kubeconfig FILE (the parent's kubeconfig) and/or --parent-context NAME (a context of your kubeconfig)", command)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if p.Kubeconfig != "" {
		if _, err := os.Stat(p.Kubeconfig); err != nil {
			return nil, fmt.Errorf("--parent-kubeconfig %q: %w: pass the path of a kubeconfig for the parent cluster, where clusternet-hub runs", p.Kubeconfig, err)
		}
		rules.ExplicitPath = p.Kubeconfig
	} else if childLoader != nil {
		rules.ExplicitPath = childLoader.ConfigAccess().GetExplicitFile()
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: p.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("the parent's kubeconfig (--parent-kubeconfig %q, --parent-context %q): %w: fix the flags (`kubectl config get-contexts` lists a kubeconfig's contexts)",
			p.Kubeconfig, p.Context, err)
	}
	return cfg, nil
}

// JoinOptions are the options of `kubectl clusternet join`.
type JoinOptions struct {
	parentFlags
	// ParentURL is the parent's address as the child's agent reaches it;
	// empty means the server of the parent's kubeconfig.
	ParentURL string
	// Token is a bootstrap token to register with; empty makes one.
	Token       string
	ClusterName string
	// AgentImage replaces the chart's image: repository:tag or repository@digest.
	AgentImage string
	Timeout    time.Duration

	childConfig, parentConfig *rest.Config
	parentCA                  []byte
	token                     bootstraptoken.Token
	// clients reach both clusters; tests put fakes in.
	clients *fleetClients
	now     func() time.Time

	genericiooptions.IOStreams
}

// NewJoinOptions returns options with the default timeout.
func NewJoinOptions(streams genericiooptions.IOStreams) *JoinOptions {
	return &JoinOptions{Timeout: defaultJoinTimeout, IOStreams: streams}
}

// NewCmdJoin builds `kubectl clusternet join`; child is the kubeconfig's
// cluster (current context or --context), without the shadow rewriting.
func NewCmdJoin(child genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewJoinOptions(streams)
	cmd := &cobra.Command{
		Use:                   "join (--parent-kubeconfig FILE | --parent-context NAME) [--parent-url URL] [--bootstrap-token TOKEN] [--cluster-name NAME] [--agent-image IMAGE] [--timeout DURATION]",
		DisableFlagsInUseLine: true,
		Short:                 i18n.T("Install clusternet-agent into a child cluster and register it with a parent"),
		Long:                  joinLong,
		Example:               joinExample,
		Args:                  cobra.NoArgs,
		Annotations:           map[string]string{AnnotationExamplesNeed: "a second cluster with no agent yet, to join to the parent, and the parent's kubeconfig"},
		RunE:                  completeValidateRun(func([]string) error { return o.Complete(child) }, o.Validate, o.Run),
	}
	fs := cmd.Flags()
	o.addFlags(fs)
	fs.StringVar(&o.ParentURL, "parent-url", o.ParentURL, "The parent apiserver's URL as the child's pods reach it. Default: the server of the parent's kubeconfig.")
	fs.StringVar(&o.Token, "bootstrap-token", o.Token, "A bootstrap token of the parent to register with (made by kubectl clusternet create token). Default: join makes one for this cluster alone.")
	fs.StringVar(&o.ClusterName, "cluster-name", o.ClusterName, "The ManagedCluster name to ask for (a DNS label). Default: the hub picks one.")
	fs.StringVar(&o.AgentImage, "agent-image", o.AgentImage, "The clusternet-agent image, REPOSITORY:TAG or REPOSITORY@DIGEST, as the child's nodes pull it. Default: the chart's.")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for the agent to register and the cluster to be Ready with its tunnel up.")
	return cmd
}

// Complete reads the child's and the parent's configuration.
func (o *JoinOptions) Complete(child genericclioptions.RESTClientGetter) error {
	if o.now == nil {
		o.now = time.Now
	}
	var err error
	if o.childConfig, o.parentConfig, err = loadBoth("join", child, &o.parentFlags); err != nil {
		return err
	}
	if o.ParentURL == "" {
		o.ParentURL = o.parentConfig.Host
	}
	if o.parentCA, err = dataOrFile(o.parentConfig.CAData, o.parentConfig.CAFile); err != nil {
		return err
	}
	if o.clients == nil {
		o.clients, err = newFleetClients(o.childConfig, o.parentConfig)
	}
	return err
}

// loadBoth reads the child's configuration from child and the parent's
// from p, refusing the same apiserver for both.
func loadBoth(command string, child genericclioptions.RESTClientGetter, p *parentFlags) (*rest.Config, *rest.Config, error) {
	loader := child.ToRawKubeConfigLoader()
	childCfg, err := loader.ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("the child cluster (your kubeconfig's current context, or --context): %w", err)
	}
	parentCfg, err := p.load(command, loader)
	if err != nil {
		return nil, nil, err
	}
	if strings.TrimSuffix(childCfg.Host, "/") == strings.TrimSuffix(parentCfg.Host, "/") {
		return nil, nil, fmt.Errorf("the child and the parent are the same apiserver %q: %s runs against the child (pick it with --context) and reaches the parent with --parent-kubeconfig/--parent-context",
			childCfg.Host, command)
	}
	return childCfg, parentCfg, nil
}

// Validate checks the flags before anything is created.
func (o *JoinOptions) Validate() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout %q must be positive: give a duration such as 5m", o.Timeout)
	}
	u, err := url.Parse(o.ParentURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("parent URL %q is not an https URL: clusternet-agent only registers over https; pass --parent-url https://HOST:PORT", o.ParentURL)
	}
	if len(o.parentCA) == 0 && o.parentConfig != nil && o.parentConfig.Insecure {
		return fmt.Errorf("your parent kubeconfig skips TLS verification (insecure-skip-tls-verify) and has no CA: the agent would have nothing to trust the parent by: add the parent's CA to it (certificate-authority-data) instead")
	}
	if o.Token != "" {
		if o.token, err = bootstraptoken.Parse(o.Token); err != nil {
			return fmt.Errorf("--bootstrap-token: %w", err)
		}
	}
	if o.ClusterName != "" {
		if errs := validation.IsDNS1123Label(o.ClusterName); len(errs) > 0 {
			return fmt.Errorf("--cluster-name %q: %s: pick a name such as edge-12", o.ClusterName, strings.Join(errs, "; "))
		}
	}
	if _, err := imageValues(o.AgentImage); err != nil {
		return err
	}
	return nil
}

// Run joins the child, step by step.
func (o *JoinOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	j := &joiner{JoinOptions: o, progress: &progress{out: o.ErrOut}}
	if err := j.failed(ctx, j.progress.run(ctx, j.checkParent, j.checkChild, j.ensureToken, j.install, j.waitRegistered, j.waitReady)); err != nil {
		return err
	}
	j.deleteToken(ctx)
	_, err := fmt.Fprintf(o.Out, "Joined: ManagedCluster %s/%s, cluster id %s\n", j.managed.Namespace, j.managed.Name, j.id)
	return err
}

// progress prints one line per step, as `clusteradm join` does.
type progress struct {
	out   io.Writer
	n, of int
}

// run runs steps in order, each printing the line it returns, and stops
// at the first that fails, naming it.
func (p *progress) run(ctx context.Context, steps ...func(context.Context) (string, error)) error {
	p.of = len(steps)
	for _, step := range steps {
		line, err := step(ctx)
		if err != nil {
			return fmt.Errorf("step %d of %d: %w", p.n+1, p.of, err)
		}
		p.n++
		_, _ = fmt.Fprintf(p.out, "[%d/%d] %s\n", p.n, p.of, line)
	}
	return nil
}

// note is a line of the step in progress, such as a hint while waiting.
func (p *progress) note(format string, args ...any) {
	_, _ = fmt.Fprintf(p.out, "[%d/%d] %s\n", p.n+1, p.of, fmt.Sprintf(format, args...))
}

// imageValues are the chart's image values for image (REPOSITORY:TAG or
// REPOSITORY@DIGEST); nil for the chart's own.
func imageValues(image string) (map[string]any, error) {
	if image == "" {
		return nil, nil
	}
	bad := func() error {
		return fmt.Errorf("--agent-image %q: give REPOSITORY:TAG or REPOSITORY@sha256:DIGEST, e.g. ghcr.io/clusternet/clusternet-agent:v0.1.0", image)
	}
	if repo, digest, ok := strings.Cut(image, "@"); ok {
		if repo == "" || !strings.HasPrefix(digest, "sha256:") {
			return nil, bad()
		}
		return map[string]any{"repository": repo, "digest": digest}, nil
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= slash || colon == len(image)-1 || strings.ContainsAny(image, " \t") {
		return nil, bad()
	}
	return map[string]any{"repository": image[:colon], "tag": image[colon+1:]}, nil
}
