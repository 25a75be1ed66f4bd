package cli

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/util/i18n"
	"k8s.io/kubectl/pkg/util/templates"
	"sigs.k8s.io/yaml"

	"github.com/clusternet/clusternet/charts"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/bootstraptoken"
)

var (
	createTokenLong = templates.LongDesc(i18n.T(`
		Create a bootstrap token that lets child clusters register with this parent.

		The token is a fresh random one (6 and 16 characters of [a-z0-9], from a
		cryptographic source), stored as Secret kube-system/bootstrap-token-ID
		with an expiry (--ttl). Its only group,
		system:bootstrappers:clusternet:register-cluster-token, may create and
		read ClusterRegistrationRequests and nothing else. The parent's apiserver
		must run with --enable-bootstrap-token-auth.

		The token alone is printed, so that TOKEN=$(kubectl clusternet create
		token) works. With --print-join-command, what to run in the child is
		printed instead: the agent's registration Secret with the parent's URL,
		the token and the parent's CA from your kubeconfig.

		Treat the token as a password, give it the shortest expiry that fits,
		and delete it once your children have registered ("kubectl -n
		kube-system delete secret bootstrap-token-ID"): registered agents do not
		need it any more.`))

	createTokenExample = templates.Examples(i18n.T(`
		# A token valid for 24 hours
		TOKEN=$(kubectl clusternet create token)

		# A token valid for one hour, and the commands to run in the child
		kubectl clusternet create token --ttl 1h --description "edge site 12" --print-join-command

		# The same, for children that reach the parent at another address
		kubectl clusternet create token --print-join-command --parent-url https://parent.example.com:6443`))
)

// Where clusternet-agent reads its registration settings (its
// --registration-secret default) and the keys it reads.
const (
	agentNamespace          = charts.Namespace
	agentRegistrationSecret = "clusternet-agent-cluster-registration"
	tokenCreatedBy          = "kubectl-clusternet"
)

// CreateTokenOptions are the options of `kubectl clusternet create token`.
type CreateTokenOptions struct {
	TTL              time.Duration
	Description      string
	PrintJoinCommand bool
	// ParentURL is the parent's address as children reach it; empty means
	// the server of the current kubeconfig.
	ParentURL string

	parentCA []byte
	// newClient makes the parent's clientset; tests put a fake in.
	newClient func() (kubernetes.Interface, error)
	now       func() time.Time

	genericiooptions.IOStreams
}

// NewCreateTokenOptions returns options with kubeadm's default expiry.
func NewCreateTokenOptions(streams genericiooptions.IOStreams) *CreateTokenOptions {
	return &CreateTokenOptions{TTL: bootstraptoken.DefaultTTL, IOStreams: streams}
}

// NewCmdCreateToken builds `kubectl clusternet create token`. It takes the
// place of kubectl's `create token` (ServiceAccount tokens), which has no
// meaning for templates.
func NewCmdCreateToken(parent genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdCreateToken(NewCreateTokenOptions(streams), parent)
}

func newCmdCreateToken(o *CreateTokenOptions, parent genericclioptions.RESTClientGetter) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "token [--ttl DURATION] [--description TEXT] [--print-join-command [--parent-url URL]]",
		DisableFlagsInUseLine: true,
		Short:                 i18n.T("Create a bootstrap token for child clusters to register with"),
		Long:                  createTokenLong,
		Example:               createTokenExample,
		Args:                  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(parent); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().DurationVar(&o.TTL, "ttl", o.TTL, "How long the token is accepted. 0 means it never expires (not recommended).")
	cmd.Flags().StringVar(&o.Description, "description", o.Description, "A description kept in the token's Secret, e.g. which clusters it is for.")
	cmd.Flags().BoolVar(&o.PrintJoinCommand, "print-join-command", o.PrintJoinCommand, "Print the commands that register a child with this token, instead of the token alone.")
	cmd.Flags().StringVar(&o.ParentURL, "parent-url", o.ParentURL, "With --print-join-command: the parent apiserver's URL as children reach it. Default: the server of the current kubeconfig.")
	return cmd
}

// Complete connects to the parent itself (bootstrap tokens are not
// templates) and reads its address and CA for the join command.
func (o *CreateTokenOptions) Complete(parent genericclioptions.RESTClientGetter) error {
	if o.now == nil {
		o.now = time.Now
	}
	cfg, err := parent.ToRESTConfig()
	if err != nil {
		return err
	}
	if o.PrintJoinCommand {
		if o.ParentURL == "" {
			o.ParentURL = cfg.Host
		}
		if o.parentCA, err = dataOrFile(cfg.CAData, cfg.CAFile); err != nil {
			return err
		}
	}
	if o.newClient == nil {
		o.newClient = func() (kubernetes.Interface, error) { return kubernetes.NewForConfig(cfg) }
	}
	return nil
}

// Validate checks the flags before anything is created.
func (o *CreateTokenOptions) Validate() error {
	if o.TTL < 0 {
		return fmt.Errorf("--ttl %q is negative: give a duration such as 1h or 24h (0 for a token that never expires, which is not recommended)", o.TTL)
	}
	if !o.PrintJoinCommand {
		if o.ParentURL != "" {
			return fmt.Errorf("--parent-url %q needs --print-join-command: it only goes into the printed registration Secret", o.ParentURL)
		}
		return nil
	}
	u, err := url.Parse(o.ParentURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("parent URL %q is not an https URL: clusternet-agent only registers over https; pass --parent-url https://HOST:PORT", o.ParentURL)
	}
	return nil
}

// Run creates the token and prints it, or the join command.
func (o *CreateTokenOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	client, err := o.newClient()
	if err != nil {
		return err
	}
	tok, secret, err := createBootstrapToken(ctx, client, bootstraptoken.Options{
		TTL:         o.TTL,
		Description: o.Description,
		Labels:      map[string]string{clusterv1beta1.LabelCreatedBy: tokenCreatedBy},
		Now:         o.now,
	})
	if err != nil {
		return err
	}
	if o.TTL == 0 {
		_, _ = fmt.Fprintf(o.ErrOut, "Warning: this bootstrap token never expires: whoever holds it may ask to register clusters until you delete it (`kubectl -n %s delete secret %s`)\n",
			bootstraptoken.Namespace, secret.Name)
	}
	if !o.PrintJoinCommand {
		_, err = fmt.Fprintln(o.Out, tok.String())
		return err
	}
	return o.printJoinCommand(tok, secret)
}

// createBootstrapToken creates a token in the parent, a refusal explained.
func createBootstrapToken(ctx context.Context, client kubernetes.Interface, opts bootstraptoken.Options) (bootstraptoken.Token, *corev1.Secret, error) {
	tok, secret, err := bootstraptoken.Create(ctx, client, opts)
	if apierrors.IsForbidden(err) {
		return tok, nil, fmt.Errorf("creating a bootstrap token: you lack %q on %q in namespace %q of the parent, where kube-apiserver reads bootstrap tokens: ask a parent admin for it: %w",
			"create", "secrets", bootstraptoken.Namespace, err)
	}
	if err != nil {
		return tok, nil, fmt.Errorf("creating a bootstrap token: %w", err)
	}
	return tok, secret, nil
}

// printJoinCommand prints what to run in a child: the agent's registration
// Secret (docs/registration.md, "In each child"), then the agent.
func (o *CreateTokenOptions) printJoinCommand(tok bootstraptoken.Token, secret *corev1.Secret) error {
	if isLoopback(o.ParentURL) {
		_, _ = fmt.Fprintf(o.ErrOut, "Warning: the parent URL %q is a loopback address, which a child reaches only if it runs on this machine: pass --parent-url with the address children reach\n", o.ParentURL)
	}
	reg := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: agentRegistrationSecret, Namespace: agentNamespace},
		Type:       corev1.SecretTypeOpaque,
		StringData: map[string]string{"parentURL": o.ParentURL, "regToken": tok.String()},
	}
	if len(o.parentCA) > 0 {
		reg.StringData["parentCA"] = string(o.parentCA)
	} else {
		_, _ = fmt.Fprintln(o.ErrOut, "Warning: the kubeconfig has no CA for the parent, so the Secret has no parentCA: the agent will trust only its system roots")
	}
	data, err := yaml.Marshal(reg)
	if err != nil {
		return err
	}
	// yaml.Marshal writes "creationTimestamp: null" for an unset time.
	manifest := strings.Replace(string(data), "  creationTimestamp: null\n", "", 1)
	expiry := "It never expires."
	if exp, ok := secret.Data[bootstraptoken.KeyExpiration]; ok {
		expiry = "It expires at " + string(exp) + "."
	}
	_, err = fmt.Fprintf(o.Out, `# Bootstrap token %s (Secret %s/%s in the parent). %s
# Run these with kubectl pointed at the child cluster:
kubectl create namespace %s
kubectl apply -f - <<'EOF'
%sEOF
kubectl apply -f deploy/agent    # clusternet-agent, from the Clusternet repository
# If clusternet-hub approves registrations by hand, then approve the child in
# the parent by its cluster id, the UID of the child's kube-system namespace
# (in the child: kubectl get namespace kube-system -o jsonpath='{.metadata.uid}'):
#   kubectl clusternet approve CLUSTER-ID
`, tok.ID, secret.Namespace, secret.Name, expiry, agentNamespace, manifest)
	return err
}

// isLoopback says whether rawURL's host is localhost or a loopback IP.
func isLoopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
