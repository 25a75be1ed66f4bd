package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

var (
	setUpParent      = e2eutil.SetUpParent
	startBinary      = e2eutil.StartBinary
	clusternetClient = e2eutil.ClusternetClient
	kubeSystemUID    = e2eutil.KubeSystemUID
	waitFor          = e2eutil.WaitFor
	kubectl          = e2eutil.Kubectl
	mustKubectl      = e2eutil.MustKubectl
	table            = e2eutil.Table
)

func TestRegistration(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent, child1, child2 := tb.Parent, tb.Children[0], tb.Children[1]
	setUpParent(t, parent)
	bootstrapToken := framework.BootstrapToken(parent)
	crrs := clusternetClient(t, parent).ClustersV1beta1().ClusterRegistrationRequests()

	// child1 registers the seed's way: parent URL and token from the Secret
	// that deploy/templates/clusternet_agent_secret.yaml makes.
	template, err := os.ReadFile(filepath.Join("..", "..", "deploy", "templates", "clusternet_agent_secret.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.NewReplacer("${PARENTURL}", parent.URL, "${REGTOKEN}", bootstrapToken).Replace(string(template))
	mustKubectl(t, child1, "", "create", "namespace", "clusternet-system")
	mustKubectl(t, child1, secret, "apply", "-f", "-")
	agentArgs := func(c *testbed.Cluster, extra ...string) []string {
		return append([]string{"--kubeconfig", c.Kubeconfig, "--parent-ca-file", parent.CAFile, "--cluster-status-update-frequency=1s"}, extra...)
	}
	agent1 := startBinary(t, "agent-child1", "agent", agentArgs(child1, "--cluster-sync-mode=Push")...)
	// child2 with flags only.
	agent2 := startBinary(t, "agent-child2", "agent", agentArgs(child2, "--cluster-sync-mode=Pull", "--parent-url", parent.URL, "--bootstrap-token", bootstrapToken, "--cluster-name", "edge-2", "--cluster-labels", "env=edge")...)

	ids := map[string]string{child1.Name: kubeSystemUID(t, child1), child2.Name: kubeSystemUID(t, child2)}
	waitFor(t, 30*time.Second, "both children Approved and READYZ true", func(ctx context.Context) (bool, string) {
		out, _, err := kubectl(t, parent, "", "get", "mcls", "-A", "-o", "jsonpath={range .items[*]}{.status.readyz}{\"\\n\"}{end}")
		if err != nil || strings.Count(out, "true") != 2 {
			return false, fmt.Sprintf("readyz: %q %v", out, err)
		}
		return true, ""
	})

	t.Run("kubectl get clsrr shows both Approved", func(t *testing.T) {
		got := withoutAge(table(mustKubectl(t, parent, "", "get", "clsrr", "--sort-by=.spec.clusterName")))
		want := [][]string{{"NAME", "CLUSTER ID", "STATUS", "AGE"}}
		for _, id := range []string{ids[child1.Name], ids[child2.Name]} {
			want = append(want, []string{"clusternet-" + id, id, "Approved"})
		}
		sortRows := func(rows [][]string) { // header first, then by name
			for i := 1; i < len(rows); i++ {
				for j := i + 1; j < len(rows); j++ {
					if rows[j][0] < rows[i][0] {
						rows[i], rows[j] = rows[j], rows[i]
					}
				}
			}
		}
		sortRows(got)
		sortRows(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("kubectl get clsrr (-want +got):\n%s", diff)
		}
	})

	t.Run("kubectl get mcls -A -o wide shows real values", func(t *testing.T) {
		rows := withoutAge(table(mustKubectl(t, parent, "", "get", "mcls", "-A", "-o", "wide", "--sort-by=.spec.syncMode")))
		if diff := cmp.Diff([]string{"NAMESPACE", "NAME", "CLUSTER ID", "CLUSTER TYPE", "SYNC MODE", "KUBERNETES", "READYZ", "AGE"}, rows[0]); diff != "" {
			t.Errorf("header (-want +got):\n%s", diff)
		}
		if len(rows) != 3 {
			t.Fatalf("want 2 clusters, got:\n%v", rows)
		}
		// Sorted by sync mode: Pull (child2) before Push (child1).
		// Each child's own version: a fleet of two or more mixes them (testbed.ForTest).
		for i, want := range []struct{ id, mode, name, version string }{{ids[child2.Name], "Pull", "edge-2", child2.KubeVersion}, {ids[child1.Name], "Push", "", child1.KubeVersion}} {
			row := rows[i+1]
			if !strings.HasPrefix(row[0], "clusternet-") {
				t.Errorf("namespace %q is not a dedicated clusternet-xxxxx namespace", row[0])
			}
			if want.name != "" && row[1] != want.name {
				t.Errorf("name %q, want %q", row[1], want.name)
			}
			if want.name == "" && !strings.HasPrefix(row[1], "clusternet-cluster-") {
				t.Errorf("generated name %q does not start with clusternet-cluster-", row[1])
			}
			if diff := cmp.Diff([]string{want.id, "EdgeClusterSelfProvisioned", want.mode, want.version, "true"}, row[2:]); diff != "" {
				t.Errorf("row %v (-want +got):\n%s", row, diff)
			}
		}
		if got := mustKubectl(t, parent, "", "get", "mcls", "-A", "-l", "env=edge", "-o", "name"); strings.TrimSpace(got) != "managedcluster.clusters.clusternet.io/edge-2" {
			t.Errorf("--cluster-labels did not reach the ManagedCluster: %q", got)
		}
		status := mustKubectl(t, parent, "", "get", "mcls", "-A", "-l", "env=edge", "-o",
			"jsonpath={.items[0].status.platform} {.items[0].status.appPusher} {.items[0].status.nodeStatistics.readyNodes} {.items[0].status.allocatable.cpu} {.items[0].status.apiserverURL}")
		if want := "linux/amd64 true 1 32 " + child2.URL; status != want {
			t.Errorf("status = %q, want %q", status, want)
		}
	})

	t.Run("agent restart keeps the cluster id and its request", func(t *testing.T) {
		if err := agent1.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		agent1 = startBinary(t, "agent-child1-again", "agent", agentArgs(child1, "--cluster-sync-mode=Push")...)
		waitFor(t, 20*time.Second, "the restarted agent to reuse its credentials", func(context.Context) (bool, string) {
			log, _ := os.ReadFile(agent1.Log)
			return strings.Contains(string(log), "Reusing stored parent credentials"), "log: " + lastLine(string(log))
		})
		list, err := crrs.List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 2 {
			t.Errorf("%d ClusterRegistrationRequests after a restart, want 2", len(list.Items))
		}
	})

	t.Run("security", func(t *testing.T) {
		asToken := func(token string, args ...string) string {
			out, _, _ := kubectl(t, parent, "", append([]string{"auth", "can-i", "--token", token, "--kubeconfig", os.DevNull, "--server", parent.URL, "--certificate-authority", parent.CAFile}, args...)...)
			return strings.TrimSpace(out)
		}
		idA, idB := ids[child1.Name], ids[child2.Name]
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"create", "clusterregistrationrequests.clusters.clusternet.io"}, "yes"},
			{[]string{"get", "clusterregistrationrequests.clusters.clusternet.io/clusternet-" + idA}, "yes"},
			{[]string{"list", "clusterregistrationrequests.clusters.clusternet.io"}, "no"},
			{[]string{"update", "clusterregistrationrequests.clusters.clusternet.io/clusternet-" + idA}, "no"},
			{[]string{"get", "namespaces"}, "no"},
			{[]string{"list", "secrets", "-A"}, "no"},
			{[]string{"get", "managedclusters.clusters.clusternet.io", "-A"}, "no"},
			{[]string{"create", "certificatesigningrequests.certificates.k8s.io"}, "no"},
		} {
			if got := asToken(bootstrapToken, tc.args...); got != tc.want {
				t.Errorf("bootstrap token: can-i %s = %q, want %q", strings.Join(tc.args, " "), got, tc.want)
			}
		}

		tokenA := mustKubectl(t, child1, "", "get", "secret", "-n", "clusternet-system", "clusternet-agent-credentials", "-o", "go-template={{.data.token | base64decode}}")
		nsA := mustKubectl(t, parent, "", "get", "mcls", "-A", "-l", clusterv1beta1.LabelClusterID+"="+idA, "-o", "jsonpath={.items[0].metadata.namespace}")
		nameA := mustKubectl(t, parent, "", "get", "mcls", "-A", "-l", clusterv1beta1.LabelClusterID+"="+idA, "-o", "jsonpath={.items[0].metadata.name}")
		nsB := mustKubectl(t, parent, "", "get", "mcls", "-A", "-l", clusterv1beta1.LabelClusterID+"="+idB, "-o", "jsonpath={.items[0].metadata.namespace}")
		for _, tc := range []struct {
			args []string
			want string
		}{
			// Its own ManagedCluster by name, and nothing else there.
			{[]string{"get", "managedclusters.clusters.clusternet.io/" + nameA, "-n", nsA}, "yes"},
			{[]string{"update", "managedclusters.clusters.clusternet.io/" + nameA, "--subresource=status", "-n", nsA}, "yes"},
			{[]string{"update", "managedclusters.clusters.clusternet.io/" + nameA, "-n", nsA}, "no"},
			{[]string{"create", "pods", "-n", nsA}, "no"},
			{[]string{"list", "secrets", "-n", nsA}, "no"},
			{[]string{"get", "clusterregistrationrequests.clusters.clusternet.io/clusternet-" + idA}, "yes"},
			{[]string{"get", "managedclusters.clusters.clusternet.io", "-n", nsB}, "no"},
			{[]string{"update", "managedclusters.clusters.clusternet.io/status", "-n", nsB}, "no"},
			{[]string{"create", "secrets", "-n", nsB}, "no"},
			{[]string{"get", "clusterregistrationrequests.clusters.clusternet.io/clusternet-" + idB}, "no"},
			{[]string{"list", "clusterregistrationrequests.clusters.clusternet.io"}, "no"},
		} {
			if got := asToken(tokenA, tc.args...); got != tc.want {
				t.Errorf("cluster A's token: can-i %s = %q, want %q", strings.Join(tc.args, " "), got, tc.want)
			}
		}
		// The sockets API is not served yet, so kubectl cannot resolve it for
		// can-i: ask the authorizer directly.
		for id, want := range map[string]string{idA: "true", idB: "false"} {
			review := `{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":` +
				`{"group":"proxies.clusternet.io","resource":"sockets","name":"` + id + `","verb":"get"}}}`
			out, errOut, err := kubectl(t, parent, review, "create", "--validate=false", "-f", "-", "-o", "jsonpath={.status.allowed}",
				"--token", tokenA, "--kubeconfig", os.DevNull, "--server", parent.URL, "--certificate-authority", parent.CAFile)
			if err != nil {
				t.Fatalf("SelfSubjectAccessReview: %v %s", err, errOut)
			}
			if out != want {
				t.Errorf("cluster A's token may open socket %s: %s, want %s", id, out, want)
			}
		}
	})

	t.Run("a wrong bootstrap token is refused clearly and creates nothing", func(t *testing.T) {
		bad := startBinary(t, "agent-bad-token", "agent", agentArgs(child1, "--agent-namespace=bad-token", "--registration-secret=bad-token/none",
			"--parent-url", parent.URL, "--bootstrap-token", "07401b.0000000000000000")...)
		waitFor(t, 20*time.Second, "the agent to report the rejected token", func(context.Context) (bool, string) {
			log, _ := os.ReadFile(bad.Log)
			return strings.Contains(string(log), "the parent rejected the bootstrap token (401 Unauthorized)") &&
				strings.Contains(string(log), "will retry"), lastLine(string(log))
		})
		if bad.Exited() {
			t.Error("the agent gave up instead of retrying with backoff")
		}
		list, err := crrs.List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 2 {
			t.Errorf("%d ClusterRegistrationRequests, want 2: a rejected token created something", len(list.Items))
		}
	})

	t.Run("an http parent URL is refused at start", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, e2eutil.Bin("agent"), "--kubeconfig", child1.Kubeconfig,
			"--parent-url", "http://127.0.0.1:6443", "--bootstrap-token", bootstrapToken).CombinedOutput()
		if err == nil {
			t.Fatalf("the agent started with an http parent URL:\n%s", out)
		}
		// klog quotes the error, so look for its words rather than its quotes.
		if want := `uses scheme \"http\": the parent URL must be https`; !strings.Contains(string(out), want) {
			t.Errorf("error does not say %q:\n%s", want, out)
		}
	})

	t.Run("the parent registers itself as a child", func(t *testing.T) {
		startBinary(t, "agent-parent", "agent", agentArgs(parent, "--cluster-name", "parent-self",
			"--parent-url", parent.URL, "--bootstrap-token", bootstrapToken)...)
		waitFor(t, 30*time.Second, "the parent's own registration", func(ctx context.Context) (bool, string) {
			out, _, _ := kubectl(t, parent, "", "get", "mcls", "-A", "-l", clusterv1beta1.LabelClusterName+"=parent-self", "-o", "jsonpath={.items[0].status.readyz}")
			return out == "true", "readyz=" + out
		})
	})

	t.Run("a stopped agent turns Ready Unknown within 3 heartbeats", func(t *testing.T) {
		if err := agent2.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		mclsClient := clusternetClient(t, parent).ClustersV1beta1()
		nsB := mustKubectl(t, parent, "", "get", "mcls", "-A", "-l", clusterv1beta1.LabelClusterID+"="+ids[child2.Name], "-o", "jsonpath={.items[0].metadata.namespace}")
		// 3 heartbeats of 1s, plus the status write and the informer's delivery.
		waitFor(t, 3*time.Second+2*time.Second, "Ready=Unknown", func(ctx context.Context) (bool, string) {
			mcls, err := mclsClient.ManagedClusters(nsB).Get(ctx, "edge-2", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			c := meta.FindStatusCondition(mcls.Status.Conditions, clusterv1beta1.ClusterReady)
			if c == nil || c.Status != metav1.ConditionUnknown {
				return false, fmt.Sprintf("Ready=%v", c)
			}
			return c.Reason == "ClusterStatusUnknown" && !mcls.Status.Readyz, fmt.Sprintf("reason %q readyz %v", c.Reason, mcls.Status.Readyz)
		})
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
