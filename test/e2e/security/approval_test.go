package security

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// approvalPermission is how `kubectl clusternet approve` names the right it lacks.
const approvalPermission = `you lack "update" on "clusterregistrationrequests/status" (API group clusters.clusternet.io) in the parent`

// approvalPlugin runs `kubectl clusternet args...` through the real kubectl,
// the built plugin first on PATH, with exactly the credentials in kubeconfig.
func approvalPlugin(t *testing.T, parent *testbed.Cluster, kubeconfig string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := parent.Kubectl(ctx, append([]string{"clusternet"}, args...)...)
	// kubectl takes no flags before a plugin's name; the last KUBECONFIG wins.
	cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig, "PATH="+e2eutil.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// TestApprovalCLIOnARealParent covers what of `kubectl clusternet approve`
// and `create token` only a real apiserver can show: the status subresource's
// RBAC refuses a reader, and the tokens the plugin makes are bootstrap tokens
// the parent accepts, for registering only, until they expire.
//
// No hub runs: the request must stay unanswered for the reviewer to try
// (an auto-approving hub would answer it first), and neither refusal nor
// token needs the hub.
func TestApprovalCLIOnARealParent(t *testing.T) {
	tb := testbed.ForTest(t, 0)
	parent := tb.Parent
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := framework.InstallParent(ctx, parent); err != nil {
		t.Fatal(err)
	}

	t.Run("a reader cannot approve", func(t *testing.T) {
		const id = "0b6f1c3e-9a47-4d2e-8c15-3f7a9e2d4b60"
		e2eutil.MustKubectl(t, parent, fmt.Sprintf(`apiVersion: clusters.clusternet.io/v1beta1
kind: ClusterRegistrationRequest
metadata: {name: clusternet-%s}
spec: {clusterId: %s, clusterName: edge}
`, id, id), "create", "-f", "-")
		// A parent user who may read requests, and nothing else: a
		// ServiceAccount with its real token from the TokenRequest API.
		e2eutil.MustKubectl(t, parent, "", "create", "serviceaccount", "request-reader", "-n", "default")
		e2eutil.MustKubectl(t, parent, "", "create", "clusterrole", "request-reader",
			"--verb=get,list", "--resource=clusterregistrationrequests.clusters.clusternet.io")
		e2eutil.MustKubectl(t, parent, "", "create", "clusterrolebinding", "request-reader",
			"--clusterrole=request-reader", "--serviceaccount=default:request-reader")
		token := strings.TrimSpace(e2eutil.MustKubectl(t, parent, "", "create", "token", "request-reader", "-n", "default"))
		reader := e2eutil.TokenKubeconfig(t, parent, token)

		out, errOut, err := approvalPlugin(t, parent, reader, "approve", id)
		if err == nil {
			t.Fatalf("a reader approved the request:\n%s", out)
		}
		if !strings.Contains(errOut, approvalPermission) || !strings.Contains(errOut, "is forbidden") {
			t.Errorf("refusal does not name the permission %q:\n%s", approvalPermission, errOut)
		}
		// --all reads the list (allowed) and is refused at the same write.
		if _, errOut, err := approvalPlugin(t, parent, reader, "approve", "--all"); err == nil || !strings.Contains(errOut, approvalPermission) {
			t.Errorf("approve --all by a reader: err %v, stderr:\n%s", err, errOut)
		}
		got := e2eutil.MustKubectl(t, parent, "", "get", "clsrr", "clusternet-"+id, "-o", "jsonpath={.status.result}")
		if got != "" {
			t.Errorf("the refused approval left status.result %q", got)
		}

		// The same command as the parent's admin goes through.
		out, errOut, err = approvalPlugin(t, parent, parent.Kubeconfig, "approve", id)
		if err != nil {
			t.Fatalf("the admin's approval failed: %v\n%s", err, errOut)
		}
		if want := "clusterregistrationrequest.clusters.clusternet.io/clusternet-" + id + " approved\n"; out != want {
			t.Errorf("stdout %q, want %q", out, want)
		}
		if got := e2eutil.MustKubectl(t, parent, "", "get", "clsrr", "clusternet-"+id, "-o", "jsonpath={.status.result}"); got != "Approved" {
			t.Errorf("status.result %q after the admin's approval, want Approved", got)
		}
	})

	t.Run("create token makes a register-only bootstrap token", func(t *testing.T) {
		out, errOut, err := approvalPlugin(t, parent, parent.Kubeconfig, "create", "token", "--ttl", "1h", "--description", "e2e")
		if err != nil {
			t.Fatalf("create token: %v\n%s", err, errOut)
		}
		m := regexp.MustCompile(`^([a-z0-9]{6})\.[a-z0-9]{16}\n$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("stdout %q is not one bootstrap token", out)
		}
		holder := e2eutil.TokenKubeconfig(t, parent, strings.TrimSpace(out))
		canI := func(args ...string) string {
			got, _, _ := e2eutil.Kubectl(t, parent, "", append([]string{"--kubeconfig", holder, "auth", "can-i"}, args...)...)
			return strings.TrimSpace(got)
		}
		if got := canI("create", "clusterregistrationrequests.clusters.clusternet.io"); got != "yes" {
			t.Errorf("can the token create clusterregistrationrequests? %q, want yes", got)
		}
		// It registers and nothing else: not the secrets of kube-system, not approving.
		for _, args := range [][]string{
			{"get", "secrets", "-n", "kube-system"},
			{"update", "clusterregistrationrequests.clusters.clusternet.io", "--subresource=status"},
			{"create", "pods", "-n", "default"},
		} {
			if got := canI(args...); got != "no" {
				t.Errorf("can the token %v? %q, want no", args, got)
			}
		}
		whoami := e2eutil.MustKubectl(t, parent, "", "--kubeconfig", holder, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}")
		if !strings.HasPrefix(whoami, "system:bootstrap:"+m[1]+" ") || !strings.Contains(whoami, "system:bootstrappers:clusternet:register-cluster-token") {
			t.Errorf("the token authenticates as %q, want system:bootstrap:%s in the register group", whoami, m[1])
		}
	})

	t.Run("an expired token is refused", func(t *testing.T) {
		out, errOut, err := approvalPlugin(t, parent, parent.Kubeconfig, "create", "token", "--ttl", "5s")
		if err != nil {
			t.Fatalf("create token: %v\n%s", err, errOut)
		}
		holder := e2eutil.TokenKubeconfig(t, parent, strings.TrimSpace(out))
		canRegister := func() (stdout, stderr string, err error) {
			return e2eutil.Kubectl(t, parent, "", "--kubeconfig", holder, "auth", "can-i", "create", "clusterregistrationrequests.clusters.clusternet.io")
		}
		// Accepted now (the expiry, in whole seconds, is at least 4 s away)...
		if got, errOut, err := canRegister(); err != nil || strings.TrimSpace(got) != "yes" {
			t.Fatalf("a fresh token: %q, %v\n%s; want yes", got, err, errOut)
		}
		// ...and refused once it has expired, and kube-apiserver's cache of
		// successful token authentications (10 s) has let it go.
		e2eutil.WaitFor(t, 30*time.Second, "the expired token refused", func(context.Context) (bool, string) {
			got, errOut, err := canRegister()
			return err != nil && strings.Contains(errOut, "Unauthorized"), got + errOut
		})
	})
}
