package security

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/clusternet/clusternet/pkg/server/hub/certs"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// clusterCA is the CA that signs c's client certificates: a parent user's
// certificate is what its admin would issue.
func clusterCA(t *testing.T, c *testbed.Cluster) *testbed.CA {
	t.Helper()
	certPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(c.CAKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.ParseCA(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("the CA of %s (%s, %s): %v", c.Name, c.CAFile, c.CAKeyFile, err)
	}
	return &testbed.CA{CA: ca}
}

// parentUserKubeconfig is a kubeconfig for a parent user: a client
// certificate for name in groups, issued by the parent's CA, pointed at
// path on the parent (empty: the parent itself).
func parentUserKubeconfig(t *testing.T, parent *testbed.Cluster, name string, groups []string, path string) string {
	t.Helper()
	kp, err := clusterCA(t, parent).Issue(testbed.CertSpec{CommonName: name, Organization: groups, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	return rewriteKubeconfig(t, parent, path, &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM})
}

// rewriteKubeconfig copies the parent's admin kubeconfig with the server
// moved onto path and, if user is set, another user.
func rewriteKubeconfig(t *testing.T, parent *testbed.Cluster, path string, user *clientcmdapi.AuthInfo) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(parent.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	cfg.Clusters[ctx.Cluster].Server = parent.URL + path
	if user != nil {
		cfg.AuthInfos[ctx.AuthInfo] = user
	}
	file := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, file); err != nil {
		t.Fatal(err)
	}
	return file
}

func socketPath(id string) string {
	return "/apis/proxies.clusternet.io/v1alpha1/sockets/" + id + "/proxy/direct"
}

// whoami is "<user> <groups as JSON>" as the child's SelfSubjectReview sees the caller.
func whoami(t *testing.T, parent *testbed.Cluster, kubeconfig string) string {
	t.Helper()
	out, errOut, err := e2eutil.Kubectl(t, parent, "", "auth", "whoami", "-o", `jsonpath={.status.userInfo.username} {.status.userInfo.groups}`, "--kubeconfig", kubeconfig)
	if err != nil {
		t.Fatalf("whoami: %v %s", err, errOut)
	}
	return out
}

// TestParentIdentitiesAreMappedNotCopied plays parent users reaching
// children through the hub's impersonation mode: the parent's admin
// (system:masters in the parent) is not system:masters in a child, a
// parent ServiceAccount is not the child's ServiceAccount of that name, and
// a parent group gains child rights only where the hub's
// --identity-mapping-file maps it (here: group platform -> child group
// clusternet:dev-admins, for clusters labelled env=dev).
func TestParentIdentitiesAreMappedNotCopied(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	mapping := filepath.Join(t.TempDir(), "identity-mapping.yaml")
	if err := os.WriteFile(mapping, []byte(`apiVersion: proxies.clusternet.io/v1alpha1
kind: IdentityMapping
rules:
  - name: platform-admins-in-dev
    clusterSelector: {matchLabels: {env: dev}}
    from: {group: platform}
    to: {groups: ["clusternet:dev-admins"]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	e2eutil.SetUpParent(t, parent, "--identity-mapping-file", mapping)
	children := e2eutil.RegisterChildren(t, parent, tb.Children, nil)
	dev, prod := children[0], children[1]
	e2eutil.MustKubectl(t, parent, "", "label", "mcls", "-n", dev.Namespace, dev.Name, "env=dev")
	e2eutil.MustKubectl(t, parent, "", "label", "mcls", "-n", prod.Namespace, prod.Name, "env=prod")
	// Both children's admins grant the mapped group everything: only the
	// mapping decides who is in it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range children {
		if err := framework.GrantInChild(ctx, c.Cluster, "dev-admins", "cluster-admin", "Group", "clusternet:dev-admins"); err != nil {
			t.Fatal(err)
		}
	}
	// Parent users in group platform (and a ServiceAccount) may use the proxy.
	e2eutil.MustKubectl(t, parent, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: proxy-user}
rules: [{apiGroups: [proxies.clusternet.io], resources: [sockets/proxy], verbs: ["*"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: proxy-user}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: proxy-user}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: platform}
  - {kind: ServiceAccount, name: deployer, namespace: default}
`, "apply", "-f", "-")

	t.Run("the parent's admin is not system:masters in a child", func(t *testing.T) {
		admin := rewriteKubeconfig(t, parent, socketPath(prod.ID), nil)
		if got := whoami(t, parent, admin); got != `kubernetes-admin ["system:authenticated"]` {
			t.Errorf("the child sees the parent's admin as %s: want kubernetes-admin in no group but system:authenticated", got)
		}
		_, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "secrets", "-n", "kube-system", "--kubeconfig", admin)
		if err == nil || !strings.Contains(errOut, `User "kubernetes-admin" cannot list resource "secrets"`) {
			t.Errorf("the parent's admin listed the child's secrets: err=%v %s", err, errOut)
		}
		// The same through the plugin, `kubectl clusternet --cluster <id>`.
		plugin := parent.Kubectl(ctx, "clusternet", "--cluster", prod.ID, "get", "secrets", "-n", "kube-system")
		plugin.Env = append(plugin.Env, "PATH="+e2eutil.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := plugin.CombinedOutput()
		if err == nil || !strings.Contains(string(out), `User "kubernetes-admin" cannot list resource "secrets"`) {
			t.Errorf("kubectl clusternet --cluster %s get secrets as the parent's admin: err=%v %s", prod.ID, err, out)
		}
		// The child's admin decides: once it grants the parent's admin, it may.
		if err := framework.GrantInChild(ctx, prod.Cluster, "parent-admin-reads-secrets", "view", "User", framework.AdminUser); err != nil {
			t.Fatal(err)
		}
		e2eutil.WaitFor(t, 10*time.Second, "the child's grant in effect", func(context.Context) (bool, string) {
			_, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "configmaps", "-n", "kube-system", "--kubeconfig", admin)
			return err == nil, errOut
		})
	})

	t.Run("a mapped parent group has the child group's rights only in matching clusters", func(t *testing.T) {
		inDev := parentUserKubeconfig(t, parent, "pat", []string{"platform"}, socketPath(dev.ID))
		inProd := parentUserKubeconfig(t, parent, "pat", []string{"platform"}, socketPath(prod.ID))
		if got := whoami(t, parent, inDev); got != `pat ["platform","clusternet:dev-admins","system:authenticated"]` {
			t.Errorf("in the env=dev child pat is %s: want platform mapped to clusternet:dev-admins", got)
		}
		if got := whoami(t, parent, inProd); got != `pat ["platform","system:authenticated"]` {
			t.Errorf("in the env=prod child pat is %s: want no mapped group", got)
		}
		if out, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "secrets", "-n", "kube-system", "-o", "name", "--kubeconfig", inDev); err != nil {
			t.Errorf("pat in the env=dev child: %v %s %s", err, out, errOut)
		}
		_, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "secrets", "-n", "kube-system", "--kubeconfig", inProd)
		if err == nil || !strings.Contains(errOut, `User "pat" cannot list resource "secrets"`) {
			t.Errorf("pat listed secrets in the env=prod child: err=%v %s", err, errOut)
		}
		// A user outside the group gets nothing mapped, even in env=dev.
		other := parentUserKubeconfig(t, parent, "pat", []string{"platform-readers"}, socketPath(dev.ID))
		if _, _, err := e2eutil.Kubectl(t, parent, "", "get", "secrets", "-n", "kube-system", "--kubeconfig", other); err == nil {
			t.Error("a parent user outside group platform listed secrets in the env=dev child")
		}
	})

	t.Run("a parent ServiceAccount is not the child's ServiceAccount of that name", func(t *testing.T) {
		e2eutil.MustKubectl(t, parent, "", "create", "serviceaccount", "deployer", "-n", "default")
		token := strings.TrimSpace(e2eutil.MustKubectl(t, parent, "", "create", "token", "deployer", "-n", "default"))
		// The child has a ServiceAccount of that name, with rights.
		e2eutil.MustKubectl(t, dev.Cluster, "", "create", "serviceaccount", "deployer", "-n", "default")
		e2eutil.MustKubectl(t, dev.Cluster, "", "create", "clusterrolebinding", "deployer", "--clusterrole=cluster-admin", "--serviceaccount=default:deployer")
		sa := rewriteKubeconfig(t, parent, socketPath(dev.ID), &clientcmdapi.AuthInfo{Token: token})
		_, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "secrets", "-n", "kube-system", "--kubeconfig", sa)
		if err == nil || !strings.Contains(errOut, `parent ServiceAccount "system:serviceaccount:default:deployer" is not forwarded to children`) ||
			!strings.Contains(errOut, "--identity-mapping-file") {
			t.Errorf("a parent ServiceAccount through the proxy: err=%v %s: want the hub's refusal naming the rule and the fix", err, errOut)
		}
	})
}
