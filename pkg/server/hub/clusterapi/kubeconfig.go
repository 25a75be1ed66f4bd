package clusterapi

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// childTimeout bounds each request to a discovered cluster, so that one
// that does not answer holds a worker no longer than this.
const childTimeout = 30 * time.Second

// childConfig turns a kubeconfig Secret's content into a configuration for
// the cluster it names, refusing what would have the hub act on anything
// but the bytes it was handed: credential plugins (exec, auth-provider) run
// programs in the hub, file paths read the hub's own files (its service
// account token among them), and insecure-skip-tls-verify trusts whoever
// answers. cluster-api writes kubeconfigs with inline certificates or
// tokens, which are all this accepts. The client-side rate limits and user
// agent are the hub's own (from hub): client-go's defaults (5 requests a
// second) would spread the install's discovery over seconds.
func childConfig(kubeconfig []byte, hub *rest.Config) (*rest.Config, error) {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("not a kubeconfig: %w", err)
	}
	contextName := cfg.CurrentContext
	kctx, ok := cfg.Contexts[contextName]
	if !ok {
		return nil, fmt.Errorf("current-context %q names no context", contextName)
	}
	cluster, ok := cfg.Clusters[kctx.Cluster]
	if !ok {
		return nil, fmt.Errorf("context %q names cluster %q, which is not in the kubeconfig", contextName, kctx.Cluster)
	}
	user, ok := cfg.AuthInfos[kctx.AuthInfo]
	if !ok {
		return nil, fmt.Errorf("context %q names user %q, which is not in the kubeconfig", contextName, kctx.AuthInfo)
	}
	if err := refuseOutsideReferences(kctx.Cluster, cluster, kctx.AuthInfo, user); err != nil {
		return nil, err
	}
	// Only the current context's entries, so that nothing else of the
	// kubeconfig (another user's exec plugin) is ever looked at.
	minimal := clientcmdapi.NewConfig()
	minimal.Clusters[kctx.Cluster] = cluster
	minimal.AuthInfos[kctx.AuthInfo] = user
	minimal.Contexts[contextName] = kctx
	minimal.CurrentContext = contextName
	rc, err := clientcmd.NewDefaultClientConfig(*minimal, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, err
	}
	rc.Timeout = childTimeout
	rc.UserAgent, rc.QPS, rc.Burst = hub.UserAgent, hub.QPS, hub.Burst
	return rc, nil
}

func refuseOutsideReferences(clusterName string, cluster *clientcmdapi.Cluster, userName string, user *clientcmdapi.AuthInfo) error {
	var errs []error
	refuse := func(field, why string) {
		errs = append(errs, fmt.Errorf("%s: %s; give the credentials inline, as cluster-api writes them", field, why))
	}
	if cluster.Server == "" {
		errs = append(errs, fmt.Errorf("clusters[%q].server is empty", clusterName))
	}
	if cluster.InsecureSkipTLSVerify {
		refuse(fmt.Sprintf("clusters[%q].insecure-skip-tls-verify", clusterName), "the hub verifies the clusters it installs into")
	}
	if cluster.CertificateAuthority != "" {
		refuse(fmt.Sprintf("clusters[%q].certificate-authority", clusterName), "a file path on the hub")
	}
	u := fmt.Sprintf("users[%q]", userName)
	if user.ClientCertificate != "" {
		refuse(u+".client-certificate", "a file path on the hub")
	}
	if user.ClientKey != "" {
		refuse(u+".client-key", "a file path on the hub")
	}
	if user.TokenFile != "" {
		refuse(u+".tokenFile", "a file path on the hub")
	}
	if user.Exec != nil {
		refuse(u+".exec", "a credential plugin would run a program inside the hub")
	}
	if user.AuthProvider != nil {
		refuse(u+".auth-provider", "an auth provider plugin runs inside the hub")
	}
	return errors.Join(errs...)
}
