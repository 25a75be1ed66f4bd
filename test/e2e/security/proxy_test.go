package security

import (
	"bufio"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestSocketProxyHolder plays a parent user granted sockets/proxy on one
// cluster only: they reach that cluster's apiserver and nothing else, and
// cannot hold more of its tunnel than the hub allows.
func TestSocketProxyHolder(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	e2eutil.SetUpParent(t, parent, "--max-requests-per-cluster=2")
	children := e2eutil.RegisterChildren(t, parent, tb.Children, nil)
	a, b := children[0], children[1]
	e2eutil.MustKubectl(t, parent, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: proxy-into-a}
rules: [{apiGroups: [proxies.clusternet.io], resources: [sockets/proxy], resourceNames: [`+a.ID+`], verbs: ["*"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: proxy-into-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: proxy-into-a}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: carol}]
`, "apply", "-f", "-")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Both children would let carol read: only the parent's grant decides.
	for _, c := range children {
		if err := framework.GrantInChild(ctx, c.Cluster, "carol-views", "view", "User", "carol"); err != nil {
			t.Fatal(err)
		}
	}
	intoA := parentUserKubeconfig(t, parent, "carol", nil, socketPath(a.ID))

	t.Run("the granted cluster is reachable", func(t *testing.T) {
		if out, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "ns", "default", "-o", "name", "--kubeconfig", intoA); err != nil || strings.TrimSpace(out) != "namespace/default" {
			t.Fatalf("carol into cluster A: %q %v %s", out, err, errOut)
		}
	})

	t.Run("refused: another cluster", func(t *testing.T) {
		// --raw, since kubectl's discovery would hide the parent's message.
		carol := parentUserKubeconfig(t, parent, "carol", nil, "")
		_, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "--raw", socketPath(b.ID)+"/api/v1/namespaces/default", "--kubeconfig", carol)
		if err == nil || !strings.Contains(errOut, `User "carol" cannot get resource "sockets/proxy"`) {
			t.Errorf("carol into cluster B: err=%v %s", err, errOut)
		}
	})

	t.Run("refused: another host through the granted cluster's agent", func(t *testing.T) {
		other := strings.TrimPrefix(b.URL, "https://")
		viaA := parentUserKubeconfig(t, parent, "carol", nil, "/apis/proxies.clusternet.io/v1alpha1/sockets/"+a.ID+"/proxy/https/"+other)
		_, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "ns", "default", "--kubeconfig", viaA)
		if err == nil || !strings.Contains(errOut, "does not dial") {
			t.Errorf("cluster A's agent dialled %s for carol: err=%v %s", other, err, errOut)
		}
	})

	t.Run("refused: more requests in flight than the hub allows", func(t *testing.T) {
		// Two watches hold both of cluster A's slots for as long as they last.
		for i := range 2 {
			wctx, stop := context.WithCancel(ctx)
			watch := parent.Kubectl(wctx, "get", "ns", "default", "-w", "--kubeconfig", intoA)
			stdout, err := watch.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := watch.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stop(); _ = watch.Wait() })
			// The first line is the list; the watch follows at once.
			if !bufio.NewScanner(stdout).Scan() {
				t.Fatalf("watch %d printed nothing", i)
			}
		}
		e2eutil.WaitFor(t, 30*time.Second, "a third request refused with 429", func(context.Context) (bool, string) {
			_, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "ns", "default", "--kubeconfig", intoA)
			return err != nil && strings.Contains(errOut, "already has 2 requests in flight through its tunnel, the most this hub allows (--max-requests-per-cluster)"), errOut
		})
		// Another cluster's slots are its own.
		if err := framework.GrantParentAdmin(ctx, b.Cluster); err != nil {
			t.Fatal(err)
		}
		e2eutil.WaitFor(t, 30*time.Second, "the parent's admin reaching cluster B meanwhile", func(context.Context) (bool, string) {
			_, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "ns", "default", "--kubeconfig", rewriteKubeconfig(t, parent, socketPath(b.ID), nil))
			return err == nil, errOut
		})
	})
}
