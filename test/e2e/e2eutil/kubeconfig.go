package e2eutil

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/clusternet/clusternet/test/testbed"
)

// TokenKubeconfig is a kubeconfig for the parent carrying token alone, in
// namespace default: no client certificate, which the apiserver would
// prefer to it, so requests are the token's subject's and no one else's.
func TokenKubeconfig(t *testing.T, parent *testbed.Cluster, token string) string {
	t.Helper()
	ca, err := os.ReadFile(parent.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["parent"] = &clientcmdapi.Cluster{Server: parent.URL, CertificateAuthorityData: ca}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["parent"] = &clientcmdapi.Context{Cluster: "parent", AuthInfo: "user", Namespace: "default"}
	cfg.CurrentContext = "parent"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
