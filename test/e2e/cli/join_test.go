package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/bootstraptoken"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// failsFast bounds the bad-input cases: they must not wait for --timeout.
const failsFast = 30 * time.Second

// TestJoinAndUnjoin: a fresh child with no agent joins a parent with
// `kubectl clusternet join` (the agent, run locally with exactly the args
// of the Deployment join applied, since kwok runs no containers) and is
// Ready with a live tunnel; the token join made is a bootstrap token with
// an expiry that may register and nothing else, deleted once joined.
// `unjoin` then removes the agent from the child and the registration
// from the parent. Bad input (a wrong parent URL, an expired token) and
// an agent join did not install fail fast, naming the fix, and install
// nothing.
func TestJoinAndUnjoin(t *testing.T) {
	tb := testbed.ForTest(t, 1)
	parent, child := tb.Parent, tb.Children[0]
	e2eutil.SetUpParent(t, parent)
	id := e2eutil.KubeSystemUID(t, child)
	parentKube := kubeClientOf(t, parent)

	t.Run("a wrong parent URL fails fast, naming --parent-url", func(t *testing.T) {
		_, errOut := joinFails(t, child, "--parent-kubeconfig", parent.Kubeconfig, "--parent-url", "https://127.0.0.1:1")
		for _, want := range []string{`parent URL "https://127.0.0.1:1"`, "pass --parent-url with the parent apiserver's address as the child's pods reach it"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("join's error lacks %q:\n%s", want, errOut)
			}
		}
		nothingInstalled(t, child)
	})

	t.Run("an expired token fails fast, naming the fix", func(t *testing.T) {
		// Issued two hours ago for one hour: the parent's authenticator
		// refuses it, as it would a token past its --ttl.
		expired, _, err := bootstraptoken.Create(context.Background(), parentKube, bootstraptoken.Options{
			TTL: time.Hour, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) },
		})
		if err != nil {
			t.Fatal(err)
		}
		_, errOut := joinFails(t, child, "--parent-kubeconfig", parent.Kubeconfig, "--bootstrap-token", expired.String())
		for _, want := range []string{"--bootstrap-token " + expired.ID + ".<secret>: the parent refuses it: it is expired, deleted or mistyped", "kubectl clusternet create token"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("join's error lacks %q:\n%s", want, errOut)
			}
		}
		nothingInstalled(t, child)
	})

	t.Run("an agent join did not install is refused, naming helm uninstall", func(t *testing.T) {
		e2eutil.MustKubectl(t, child, "", "create", "namespace", "clusternet-system")
		e2eutil.MustKubectl(t, child, "", "-n", "clusternet-system", "create", "deployment", "clusternet-agent", "--image", "example.com/agent:v1")
		e2eutil.MustKubectl(t, child, "", "-n", "clusternet-system", "label", "deployment", "clusternet-agent", "app.kubernetes.io/managed-by=Helm")
		_, errOut := joinFails(t, child, "--parent-kubeconfig", parent.Kubeconfig)
		for _, want := range []string{"the child has Deployment clusternet-system/clusternet-agent already, not installed by join", "helm uninstall clusternet-agent -n clusternet-system"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("join's error lacks %q:\n%s", want, errOut)
			}
		}
		if got := e2eutil.MustKubectl(t, child, "", "-n", "clusternet-system", "get", "deployment", "clusternet-agent", "-o", `jsonpath={.metadata.labels}`); strings.Contains(got, "kubectl-clusternet") {
			t.Errorf("join took helm's Deployment over: labels %s", got)
		}
		e2eutil.MustKubectl(t, child, "", "delete", "namespace", "clusternet-system", "--wait=false")
		e2eutil.WaitFor(t, 90*time.Second, "namespace clusternet-system gone from the child", func(ctx context.Context) (bool, string) {
			out, errOut, err := e2eutil.Kubectl(t, child, "", "get", "namespace", "clusternet-system", "-o", "name")
			return err != nil && strings.Contains(errOut, "NotFound"), out + errOut
		})
		nothingInstalled(t, child)
	})

	join := startPlugin(t, child, "", "join", "--parent-kubeconfig", parent.Kubeconfig, "--cluster-name", "edge-1", "--timeout", "3m")
	var deploy appsv1.Deployment
	e2eutil.WaitFor(t, 90*time.Second, "join's agent Deployment in the child", func(ctx context.Context) (bool, string) {
		out, errOut, err := e2eutil.Kubectl(t, child, "", "-n", "clusternet-system", "get", "deployment", "clusternet-agent", "-o", "json")
		if err != nil {
			return false, errOut + join.stderr.String()
		}
		return json.Unmarshal([]byte(out), &deploy) == nil, out
	})

	t.Run("the token join made may register and nothing else, and expires", func(t *testing.T) {
		// Read where the agent reads it, before the agent runs (it removes
		// the token from its Secret once registered).
		raw := e2eutil.MustKubectl(t, child, "", "-n", "clusternet-system", "get", "secret", "clusternet-agent-cluster-registration", "-o", `jsonpath={.data.regToken}`)
		tok, err := bootstraptoken.Parse(decodeBase64(t, raw))
		if err != nil {
			t.Fatalf("the registration Secret's regToken: %v", err)
		}
		secret, err := parentKube.CoreV1().Secrets(bootstraptoken.Namespace).Get(context.Background(), tok.SecretName(), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the token's Secret in the parent: %v", err)
		}
		exp, err := time.Parse(time.RFC3339, string(secret.Data[bootstraptoken.KeyExpiration]))
		if err != nil || time.Until(exp) <= 0 || time.Until(exp) > time.Hour {
			t.Errorf("token expiration %q (%v): want within the next hour", secret.Data[bootstraptoken.KeyExpiration], err)
		}
		if got := string(secret.Data[bootstraptoken.KeyExtraGroups]); got != bootstraptoken.RegisterClusterGroup {
			t.Errorf("token groups %q, want only %q", got, bootstraptoken.RegisterClusterGroup)
		}
		asToken, err := kubernetes.NewForConfig(&rest.Config{Host: parent.URL, BearerToken: tok.String(), TLSClientConfig: rest.TLSClientConfig{CAFile: parent.CAFile}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = asToken.CoreV1().Secrets(bootstraptoken.Namespace).List(context.Background(), metav1.ListOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `User "system:bootstrap:`+tok.ID+`" cannot list resource "secrets"`) {
			t.Errorf("listing the parent's Secrets with join's token: %v, want Forbidden for system:bootstrap:%s", err, tok.ID)
		}
	})

	// A heartbeat quick enough for a test.
	agent := e2eutil.StartDeployedAgent(t, "agent-join", &deploy, child, "--cluster-status-update-frequency=2s")

	t.Run("join brings the child to Ready with a live tunnel", func(t *testing.T) {
		if code := join.wait(t); code != 0 {
			t.Fatalf("join exited %d:\n%s%s\n%s", code, join.stdout.String(), join.stderr.String(), agent.LogTail(2000))
		}
		for _, want := range []string{"[1/6] Parent " + parent.URL, "[2/6] Child ", "cluster id " + id, "[3/6] Bootstrap token", "[4/6] clusternet-agent installed", "[5/6] Registered", "[6/6] ManagedCluster "} {
			if !strings.Contains(join.stderr.String(), want) {
				t.Errorf("join's progress lacks %q:\n%s", want, join.stderr.String())
			}
		}
		if out := join.stdout.String(); !strings.Contains(out, "/edge-1, cluster id "+id) {
			t.Errorf("join printed %q, want the ManagedCluster edge-1 and id %s", out, id)
		}
		state := e2eutil.MustKubectl(t, parent, "", "get", "mcls", "-A", "-l", clusterv1beta1.LabelClusterID+"="+id, "-o", `jsonpath={.items[*].status.useSocket} {.items[*].status.conditions[?(@.type=="Ready")].status}`)
		if state != "true True" {
			t.Errorf("ManagedCluster useSocket and Ready = %q, want %q", state, "true True")
		}
		// A live tunnel: a request reaches the child through the parent.
		version := e2eutil.MustKubectl(t, parent, "", "get", "--raw", "/apis/proxies.clusternet.io/v1alpha1/sockets/"+id+"/proxy/direct/version")
		if !strings.Contains(version, `"gitVersion"`) {
			t.Errorf("the child's /version through the tunnel = %s", version)
		}
		if out := e2eutil.MustKubectl(t, parent, "", "-n", "kube-system", "get", "secrets", "-l", clusterv1beta1.LabelCreatedBy+"=kubectl-clusternet,"+clusterv1beta1.LabelClusterID+"="+id, "-o", "name"); strings.TrimSpace(out) != "" {
			t.Errorf("the token join made is left in the parent after joining: %s", out)
		}
	})

	t.Run("unjoin removes the agent and the registration", func(t *testing.T) {
		unjoin := startPlugin(t, child, "", "unjoin", "--parent-kubeconfig", parent.Kubeconfig, "--timeout", "2m")
		// The Deployment's deletion ends its pod: here, the local agent.
		e2eutil.WaitFor(t, 60*time.Second, "the agent Deployment deleted", func(ctx context.Context) (bool, string) {
			out, errOut, err := e2eutil.Kubectl(t, child, "", "-n", "clusternet-system", "get", "deployment", "clusternet-agent", "-o", "name")
			return err != nil && strings.Contains(errOut, "NotFound"), out + errOut
		})
		if err := agent.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		if code := unjoin.wait(t); code != 0 {
			t.Fatalf("unjoin exited %d:\n%s%s", code, unjoin.stdout.String(), unjoin.stderr.String())
		}
		for _, args := range [][]string{
			{"get", "mcls", "-A", "-l", clusterv1beta1.LabelClusterID + "=" + id, "-o", "name"},
			{"get", "namespaces", "-l", clusterv1beta1.LabelClusterID + "=" + id, "-o", "name"},
			{"get", "clsrr,clusterrole,clusterrolebinding", "--ignore-not-found", "-o", "name", "--field-selector", "metadata.name=" + clusterv1beta1.NamePrefix + id},
		} {
			if out := e2eutil.MustKubectl(t, parent, "", args...); strings.TrimSpace(out) != "" {
				t.Errorf("left in the parent (kubectl %s): %s", strings.Join(args, " "), out)
			}
		}
		nothingInstalled(t, child)
	})
}

// joinFails runs join against child, which must fail within failsFast.
func joinFails(t *testing.T, child *testbed.Cluster, args ...string) (string, string) {
	t.Helper()
	start := time.Now()
	out, errOut, code := runPlugin(t, child, "", append([]string{"join"}, args...)...)
	if code == 0 {
		t.Fatalf("join succeeded:\n%s%s", out, errOut)
	}
	if took := time.Since(start); took > failsFast {
		t.Errorf("join took %s to fail, want under %s", took, failsFast)
	}
	return out, errOut
}

// nothingInstalled checks that child has nothing join makes.
func nothingInstalled(t *testing.T, child *testbed.Cluster) {
	t.Helper()
	out := e2eutil.MustKubectl(t, child, "", "get", "namespaces,clusterroles,clusterrolebindings", "-l", clusterv1beta1.LabelCreatedBy+"=kubectl-clusternet", "-o", "name")
	if strings.TrimSpace(out) != "" {
		t.Errorf("the child has objects of join: %s", out)
	}
	if _, errOut, err := e2eutil.Kubectl(t, child, "", "get", "namespace", "clusternet-system"); err == nil || !strings.Contains(errOut, "NotFound") {
		t.Errorf("the child has namespace clusternet-system (%v %s)", err, errOut)
	}
}

func kubeClientOf(t *testing.T, c *testbed.Cluster) kubernetes.Interface {
	t.Helper()
	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kube
}

func decodeBase64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
