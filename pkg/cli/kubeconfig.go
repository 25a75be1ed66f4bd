package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/kubectl/pkg/util/i18n"
	"k8s.io/kubectl/pkg/util/templates"
)

var (
	kubeconfigLong = templates.LongDesc(i18n.T(`
		Write a kubeconfig that reaches a child cluster through the parent.

		The server is the parent's, moved onto the child's proxy path
		(.../sockets/CLUSTER-ID/proxy/direct under
		/apis/proxies.clusternet.io/v1alpha1),
		so plain kubectl reaches the child even when the parent cannot dial it.

		By default the user is your parent user: the hub has the child
		impersonate it, so the child's RBAC decides what you may do there. With
		--child-kubeconfig the kubeconfig carries that child user's token or
		client certificate instead, passed through the parent as the user
		"clusternet" with user extras, as "Visit ManagedCluster With RBAC" in
		upstream Clusternet's README (github.com/clusternet/clusternet) shows.`))

	kubeconfigExample = templates.Examples(i18n.T(`
		# Print a kubeconfig for the child cluster named clusternet-cluster-dzqkw
		kubectl clusternet kubeconfig --cluster clusternet-cluster-dzqkw

		# Write it to a file (by cluster id) and use it with plain kubectl
		kubectl clusternet kubeconfig --cluster dc91021d-2361-4f6d-a404-7c33b9e01118 -o child.kubeconfig
		kubectl --kubeconfig child.kubeconfig get nodes

		# Pass a child user's credentials through instead of impersonating
		kubectl clusternet kubeconfig --cluster clusternet-cluster-dzqkw --child-kubeconfig ~/.kube/child-config -o child.kubeconfig`))
)

// KubeconfigOptions are the options of `kubectl clusternet kubeconfig`.
type KubeconfigOptions struct {
	*ClusterFlags
	OutputFile string

	target    string
	namespace string
	parent    *rest.Config
	list      clusterLister

	genericiooptions.IOStreams
}

// NewKubeconfigOptions returns options reading the shared cluster flags.
func NewKubeconfigOptions(streams genericiooptions.IOStreams, clusterFlags *ClusterFlags) *KubeconfigOptions {
	return &KubeconfigOptions{ClusterFlags: clusterFlags, IOStreams: streams}
}

// NewCmdKubeconfig builds `kubectl clusternet kubeconfig`.
func NewCmdKubeconfig(parent genericclioptions.RESTClientGetter, clusterFlags *ClusterFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewKubeconfigOptions(streams, clusterFlags)
	cmd := &cobra.Command{
		Use:     "kubeconfig --cluster NAME|ID [-o FILE]",
		Short:   i18n.T("Write a kubeconfig that reaches a child cluster through the parent"),
		Long:    kubeconfigLong,
		Example: kubeconfigExample,
		Args:    cobra.NoArgs,
		RunE:    completeValidateRun(func([]string) error { return o.Complete(parent) }, o.Validate, o.Run),
	}
	cmd.Flags().StringVarP(&o.OutputFile, "output-file", "o", o.OutputFile, "Write the kubeconfig to this file (mode 0600) instead of standard output.")
	return cmd
}

// Complete reads the parent's configuration.
func (o *KubeconfigOptions) Complete(parent genericclioptions.RESTClientGetter) error {
	o.target, _ = o.Target()
	cfg, err := parent.ToRESTConfig()
	if err != nil {
		return err
	}
	o.parent = cfg
	if ns, explicit, err := parent.ToRawKubeConfigLoader().Namespace(); err == nil && explicit {
		o.namespace = ns
	}
	if o.list == nil {
		o.list = parentClusterLister(cfg)
	}
	return nil
}

// Validate checks the flags.
func (o *KubeconfigOptions) Validate() error {
	if _, err := o.Target(); err != nil {
		return err
	}
	if o.target == "" {
		return fmt.Errorf("--cluster is required: name the child by its ManagedCluster name or cluster id (see `kubectl clusternet get mcls -A`)")
	}
	return nil
}

// Run writes the kubeconfig.
func (o *KubeconfigOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cluster, err := resolveCluster(ctx, o.list, o.target)
	if err != nil {
		return err
	}
	var extras map[string][]string
	if o.ChildKubeconfig != "" {
		if extras, err = PassThroughExtras(o.ChildKubeconfig); err != nil {
			return err
		}
	}
	cfg, err := KubeconfigFor(ChildConfig(o.parent, cluster.ID, extras), cluster.String(), o.namespace)
	if err != nil {
		return err
	}
	if o.OutputFile != "" {
		if err := clientcmd.WriteToFile(*cfg, o.OutputFile); err != nil {
			return fmt.Errorf("--output-file %q: %w", o.OutputFile, err)
		}
		return os.Chmod(o.OutputFile, 0o600)
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	_, err = o.Out.Write(data)
	return err
}

// KubeconfigFor turns a client configuration into a self-contained
// kubeconfig (files inlined) with one cluster, user and context named name.
func KubeconfigFor(c *rest.Config, name, namespace string) (*clientcmdapi.Config, error) {
	cluster := clientcmdapi.NewCluster()
	cluster.Server = c.Host
	cluster.InsecureSkipTLSVerify = c.Insecure
	cluster.TLSServerName = c.ServerName
	cluster.DisableCompression = c.DisableCompression
	var err error
	if cluster.CertificateAuthorityData, err = dataOrFile(c.CAData, c.CAFile); err != nil {
		return nil, err
	}
	user := clientcmdapi.NewAuthInfo()
	if user.ClientCertificateData, err = dataOrFile(c.CertData, c.CertFile); err != nil {
		return nil, err
	}
	if user.ClientKeyData, err = dataOrFile(c.KeyData, c.KeyFile); err != nil {
		return nil, err
	}
	if c.BearerTokenFile != "" {
		user.TokenFile = c.BearerTokenFile
	} else {
		user.Token = c.BearerToken
	}
	user.Username, user.Password = c.Username, c.Password
	user.Impersonate, user.ImpersonateUID = c.Impersonate.UserName, c.Impersonate.UID
	user.ImpersonateGroups = c.Impersonate.Groups
	user.ImpersonateUserExtra = c.Impersonate.Extra
	if c.ExecProvider != nil {
		user.Exec = c.ExecProvider.DeepCopy()
	}
	if c.AuthProvider != nil {
		user.AuthProvider = c.AuthProvider.DeepCopy()
	}
	ctx := clientcmdapi.NewContext()
	ctx.Cluster, ctx.AuthInfo, ctx.Namespace = name, name, namespace
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = cluster
	cfg.AuthInfos[name] = user
	cfg.Contexts[name] = ctx
	cfg.CurrentContext = name
	return cfg, nil
}

func dataOrFile(data []byte, file string) ([]byte, error) {
	if len(data) > 0 || file == "" {
		return data, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("inlining %q into the kubeconfig: %w", file, err)
	}
	return b, nil
}
