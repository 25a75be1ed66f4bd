package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
)

// Cluster is a child cluster as the plugin addresses it.
type Cluster struct {
	Name, Namespace, ID string
}

// String names the cluster for messages.
func (c Cluster) String() string {
	if c.Name == "" {
		return c.ID
	}
	return c.Name
}

// ProxyPath is the path on the parent that reaches a child's apiserver
// through its tunnel.
func ProxyPath(clusterID string) string {
	return "/apis/" + proxiesv1alpha1.GroupName + "/v1alpha1/sockets/" + clusterID + "/proxy/direct"
}

// ChildConfig returns a copy of the parent's config that reaches the child
// through the parent: the server moves onto the proxy path. Without
// passThrough the parent's credentials stay (the hub has the agent
// impersonate the parent user in the child); with it the request goes out as
// the anonymous user impersonating "clusternet" with the child credentials as
// user extras, which the hub hands to the child (upstream Clusternet's pass-through).
func ChildConfig(parent *rest.Config, clusterID string, passThrough map[string][]string) *rest.Config {
	c := rest.CopyConfig(parent)
	c.Host = strings.TrimSuffix(c.Host, "/") + ProxyPath(clusterID)
	if passThrough != nil {
		c.BearerToken, c.BearerTokenFile = "", ""
		c.Username, c.Password = "", ""
		c.CertData, c.CertFile, c.KeyData, c.KeyFile = nil, "", nil, ""
		c.ExecProvider, c.AuthProvider, c.AuthConfigPersister = nil, nil, nil
		c.Impersonate = rest.ImpersonationConfig{UserName: "clusternet", Extra: passThrough}
	}
	return c
}

// PassThroughExtras reads a child kubeconfig and returns its current user's
// credentials as the user extras the hub passes to the child: a token as
// clusternet-token, or a client certificate and key (base64 of the PEM) as
// clusternet-certificate and clusternet-privatekey.
func PassThroughExtras(path string) (map[string][]string, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("--child-kubeconfig %q: %w", path, err)
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return nil, fmt.Errorf("--child-kubeconfig %q: current context %q not found: set one with `kubectl config use-context --kubeconfig %s`", path, cfg.CurrentContext, path)
	}
	user, ok := cfg.AuthInfos[ctx.AuthInfo]
	if !ok {
		return nil, fmt.Errorf("--child-kubeconfig %q: user %q of context %q not found", path, ctx.AuthInfo, cfg.CurrentContext)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, fmt.Errorf("--child-kubeconfig %q: %w", path, err)
	}
	token := user.Token
	if token == "" && user.TokenFile != "" {
		data, err := os.ReadFile(user.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("--child-kubeconfig %q: reading the token file of user %q: %w", path, ctx.AuthInfo, err)
		}
		token = strings.TrimSpace(string(data))
	}
	switch {
	case token != "":
		return map[string][]string{"clusternet-token": {token}}, nil
	case len(user.ClientCertificateData) > 0 && len(user.ClientKeyData) > 0:
		return map[string][]string{
			"clusternet-certificate": {base64.StdEncoding.EncodeToString(user.ClientCertificateData)},
			"clusternet-privatekey":  {base64.StdEncoding.EncodeToString(user.ClientKeyData)},
		}, nil
	default:
		return nil, fmt.Errorf("--child-kubeconfig %q: user %q has neither a token nor a client certificate and key: "+
			"pass-through needs one of them (exec plugins and auth providers cannot be passed); leave the flag out to impersonate your parent user instead",
			path, ctx.AuthInfo)
	}
}

// clusterLister lists the parent's ManagedClusters.
type clusterLister func(ctx context.Context) ([]clusterv1beta1.ManagedCluster, error)

func parentClusterLister(parent *rest.Config) clusterLister {
	return func(ctx context.Context) ([]clusterv1beta1.ManagedCluster, error) {
		cs, err := versioned.NewForConfig(parent)
		if err != nil {
			return nil, err
		}
		list, err := cs.ClustersV1beta1().ManagedClusters(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing the parent's ManagedClusters: %w", err)
		}
		return list.Items, nil
	}
}

func toCluster(m *clusterv1beta1.ManagedCluster) Cluster {
	id := string(m.Spec.ClusterID)
	if id == "" {
		id = m.Labels[clusterv1beta1.LabelClusterID]
	}
	return Cluster{Name: m.Name, Namespace: m.Namespace, ID: id}
}

// resolveCluster finds the child that nameOrID names: a ManagedCluster name
// (in any namespace) or a cluster id. A cluster id is used as it is when the
// parent's ManagedClusters cannot be listed (RBAC may allow the proxy and
// not the list). Ids are checked too when the list works: an unknown one
// would only get the hub's "no tunnel" after kubectl's retries.
func resolveCluster(ctx context.Context, list clusterLister, nameOrID string) (Cluster, error) {
	all, err := listClusters(ctx, list)
	if err != nil {
		if uuid.Validate(nameOrID) == nil {
			return Cluster{ID: nameOrID}, nil
		}
		return Cluster{}, err
	}
	found, err := pickClusters(all, []string{nameOrID})
	if err != nil {
		return Cluster{}, err
	}
	return found[0], nil
}

func listClusters(ctx context.Context, list clusterLister) ([]Cluster, error) {
	items, err := list(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Cluster, 0, len(items))
	for i := range items {
		out = append(out, toCluster(&items[i]))
	}
	slices.SortFunc(out, func(a, b Cluster) int {
		return strings.Compare(a.Name+"/"+a.Namespace, b.Name+"/"+b.Namespace)
	})
	return out, nil
}

// pickClusters returns the clusters that names name, in that order, or an
// error naming what is unknown or ambiguous and listing the known clusters.
func pickClusters(all []Cluster, names []string) ([]Cluster, error) {
	var out []Cluster
	for _, want := range names {
		var matches []Cluster
		for _, c := range all {
			if c.ID == want || c.Name == want || c.Namespace+"/"+c.Name == want {
				matches = append(matches, c)
			}
		}
		switch len(matches) {
		case 1:
			out = append(out, matches[0])
		case 0:
			return nil, fmt.Errorf("cluster %q not found: it is neither the name nor the cluster id of a ManagedCluster; known clusters: %s",
				want, describeClusters(all))
		default:
			return nil, fmt.Errorf("cluster %q is ambiguous: %s share that name; use the cluster id or <namespace>/<name> instead",
				want, describeClusters(matches))
		}
	}
	return out, nil
}

func describeClusters(cs []Cluster) string {
	if len(cs) == 0 {
		return "none (no child cluster has registered with this parent: see `kubectl clusternet get mcls -A`)"
	}
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s (namespace %s, id %s)", c.Name, c.Namespace, c.ID))
	}
	return strings.Join(parts, ", ")
}
