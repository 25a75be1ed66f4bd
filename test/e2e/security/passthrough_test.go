package security

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// anonymousRequest is what any network client of the parent can send: no
// credentials at all, only the parent's CA to verify the server. It returns
// the status code and body.
func anonymousRequest(t *testing.T, parent *testbed.Cluster, method, path, body string, header http.Header) (int, string) {
	t.Helper()
	tlsConfig, err := parent.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest(method, parent.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const selfSubjectReview = `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`

// reviewedUser reads a SelfSubjectReview answer: user name and groups.
func reviewedUser(t *testing.T, body string) (string, []string) {
	t.Helper()
	var r struct {
		Kind   string
		Status struct {
			UserInfo struct {
				Username string
				Groups   []string
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Kind != "SelfSubjectReview" {
		return "", nil
	}
	return r.Status.UserInfo.Username, r.Status.UserInfo.Groups
}

// passThroughKubeconfig is the seed's "Visit ManagedCluster With RBAC"
// kubeconfig: the parent's server moved onto sockets/<id>/proxy/<mode>, the
// user edited to system:anonymous impersonating clusternet with a child token.
func passThroughKubeconfig(t *testing.T, parent *testbed.Cluster, id, mode, childToken string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(parent.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	cfg.Clusters[ctx.Cluster].Server = parent.URL + "/apis/proxies.clusternet.io/v1alpha1/sockets/" + id + "/proxy/" + mode
	cfg.AuthInfos[ctx.AuthInfo] = &clientcmdapi.AuthInfo{
		Username: "system:anonymous", Impersonate: "clusternet",
		ImpersonateUserExtra: map[string][]string{"clusternet-token": {childToken}},
	}
	path := filepath.Join(t.TempDir(), "config-cluster-"+id)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAnonymousPassThroughIsOptIn plays an anonymous network client of the
// parent (it holds nothing but the parent's CA): on the default install it
// cannot impersonate "clusternet", so it never becomes system:authenticated;
// only an admin who applies deploy/optional/anonymous-passthrough.yaml opens
// the seed's pass-through, which then works with a child token as the seed shows.
func TestAnonymousPassThroughIsOptIn(t *testing.T) {
	tb := testbed.ForTest(t, 1)
	parent := tb.Parent
	e2eutil.SetUpParent(t, parent)
	child := e2eutil.RegisterChildren(t, parent, tb.Children, nil)[0]

	impersonateClusternet := http.Header{"Impersonate-User": {"clusternet"}}
	withToken := http.Header{"Impersonate-User": {"clusternet"}, "Impersonate-Extra-Clusternet-Token": {"any"}}

	t.Run("default install: anonymous may not impersonate clusternet", func(t *testing.T) {
		for _, h := range []http.Header{impersonateClusternet, withToken} {
			code, body := anonymousRequest(t, parent, http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews", selfSubjectReview, h)
			if code != http.StatusForbidden || !strings.Contains(body, `User \"system:anonymous\" cannot impersonate resource \"users\"`) {
				t.Errorf("anonymous SelfSubjectReview with %v: %d %s: want 403 naming the impersonation rule", h, code, body)
			}
			if name, groups := reviewedUser(t, body); name != "" {
				t.Errorf("anonymous came back as %q in %v", name, groups)
			}
		}
		// Nor may it use the proxy, with or without child credentials.
		code, body := anonymousRequest(t, parent, http.MethodGet, "/apis/proxies.clusternet.io/v1alpha1/sockets/"+child.ID+"/proxy/direct/api", "", withToken)
		if code != http.StatusForbidden || !strings.Contains(body, `User \"system:anonymous\" cannot impersonate resource \"users\"`) {
			t.Errorf("anonymous pass-through on the default install: %d %s: want 403 naming the impersonation rule", code, body)
		}
		// The default install's impersonation mode works: the parent's admin
		// reaches the child as itself.
		out := e2eutil.MustKubectl(t, parent, selfSubjectReview, "create", "--raw",
			"/apis/proxies.clusternet.io/v1alpha1/sockets/"+child.ID+"/proxy/direct/apis/authentication.k8s.io/v1/selfsubjectreviews", "-f", "-")
		if name, _ := reviewedUser(t, out); name != framework.AdminUser {
			t.Errorf("the parent's admin through the proxy is %q in the child: %s", name, out)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := framework.InstallPassThrough(ctx, parent); err != nil {
		t.Fatal(err)
	}

	t.Run("opted in: anonymous is clusternet in the parent, as the manifest warns", func(t *testing.T) {
		e2eutil.WaitFor(t, 10*time.Second, "the pass-through grant in effect", func(context.Context) (bool, string) {
			code, body := anonymousRequest(t, parent, http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews", selfSubjectReview, impersonateClusternet)
			name, groups := reviewedUser(t, body)
			return code == http.StatusCreated && name == "clusternet" && strings.Contains(strings.Join(groups, ","), "system:authenticated"), body
		})
		// It still may not be anyone else, nor carry groups.
		code, body := anonymousRequest(t, parent, http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews", selfSubjectReview,
			http.Header{"Impersonate-User": {"clusternet"}, "Impersonate-Group": {"system:masters"}})
		if code != http.StatusForbidden || !strings.Contains(body, `cannot impersonate resource \"groups\"`) {
			t.Errorf("anonymous as clusternet in system:masters: %d %s: want 403", code, body)
		}
		// And without child credentials the hub refuses it.
		code, body = anonymousRequest(t, parent, http.MethodGet, "/apis/proxies.clusternet.io/v1alpha1/sockets/"+child.ID+"/proxy/direct/api", "", impersonateClusternet)
		if code != http.StatusForbidden || !strings.Contains(body, "carries none") {
			t.Errorf("anonymous as clusternet without credentials: %d %s: want the hub's 403", code, body)
		}
	})

	t.Run("opted in: the seed's walkthrough passes a child token through proxy/https", func(t *testing.T) {
		e2eutil.MustKubectl(t, child.Cluster, "", "create", "serviceaccount", "viewer", "-n", "default")
		e2eutil.MustKubectl(t, child.Cluster, "", "create", "rolebinding", "viewer", "-n", "default", "--clusterrole=view", "--serviceaccount=default:viewer")
		token := strings.TrimSpace(e2eutil.MustKubectl(t, child.Cluster, "", "create", "token", "viewer", "-n", "default"))
		cfg := passThroughKubeconfig(t, parent, child.ID, "https/"+strings.TrimPrefix(child.URL, "https://"), token)
		out, errOut, err := e2eutil.Kubectl(t, parent, "", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", "--kubeconfig", cfg)
		if err != nil || out != "system:serviceaccount:default:viewer" {
			t.Fatalf("whoami with the passed token = %q, %v %s", out, err, errOut)
		}
		if _, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "configmaps", "-n", "default", "--kubeconfig", cfg); err != nil {
			t.Errorf("view may list configmaps: %v %s", err, errOut)
		}
		_, errOut, err = e2eutil.Kubectl(t, parent, "", "get", "secrets", "-n", "default", "--kubeconfig", cfg)
		if err == nil || !strings.Contains(errOut, `User "system:serviceaccount:default:viewer" cannot list resource "secrets"`) {
			t.Errorf("view may not list secrets: err=%v %s", err, errOut)
		}
	})
}
