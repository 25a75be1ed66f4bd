package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusternet/clusternet/pkg/cli"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestTopExecAndColumns deploys the seed's app-demo (upstream Clusternet's
// README, examples/applications) to two children, then reads the fleet as
// an operator does: `kubectl get subscriptions` with its CLUSTERS, READY
// and AGE columns, `top clusters`, and `exec` in one nginx pod per cluster.
func TestTopExecAndColumns(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	e2eutil.SetUpParent(t, parent)
	children := e2eutil.RegisterChildren(t, parent, tb.Children, nil)
	child1, child2 := children[0], children[1]
	// Tables and exec print clusters in name order.
	byName := slices.SortedFunc(slices.Values(children), func(a, b *e2eutil.Child) int { return strings.Compare(a.Name, b.Name) })
	t.Cleanup(func() {
		if t.Failed() {
			logDescriptions(t, parent)
		}
	})

	apps := seedAppDemo(t, child1, child2)
	mustClusternet(t, parent, "apply", "-f", apps)
	e2eutil.WaitFor(t, rolloutWithin, "app-demo's nginx pods Running in both children", func(context.Context) (bool, string) {
		var all string
		for _, c := range children {
			out, _, _ := e2eutil.Kubectl(t, c.Cluster, "", "get", "pods", "-n", "foo", "-l", "app=nginx", "-o", "jsonpath={.items[*].status.phase}")
			if strings.Count(out, "Running") != 3 {
				return false, c.Name + ": " + out
			}
			all += out
		}
		return true, all
	})

	t.Run("get subscriptions -o wide shows CLUSTERS, READY and AGE", func(t *testing.T) {
		// The hub writes status.boundClusters and status.ready; the columns
		// are the CRD's, printed by the real kubectl. They are wide-only
		// (priority 1) so that the default view keeps upstream's NAME AGE
		// (TestPlugin checks that one).
		var out string
		e2eutil.WaitFor(t, rolloutWithin, "app-demo 2 clusters, 2/2 ready", func(context.Context) (bool, string) {
			out = mustClusternet(t, parent, "get", "subscriptions", "-n", "default", "-o", "wide")
			return slices.Equal(column(out, "CLUSTERS"), []string{"2"}) && slices.Equal(column(out, "READY"), []string{"2/2"}), out
		})
		t.Logf("$ kubectl clusternet get subscriptions -n default -o wide\n%s", out)
		if diff := cmp.Diff([]string{"NAME", "CLUSTERS", "READY", "AGE"}, header(out)); diff != "" {
			t.Errorf("columns (-want +got):\n%s", diff)
		}
	})

	// The parent's admin reaches the children as its user name; child1
	// grants it cluster-admin, child2 nothing yet.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := framework.GrantParentAdmin(ctx, child1.Cluster); err != nil {
		t.Fatal(err)
	}

	t.Run("top clusters: a child that refuses the parent user is reported, the other is shown", func(t *testing.T) {
		out, errOut, code := runPlugin(t, parent, "", "top", "clusters")
		want := fmt.Sprintf(`error: cluster %s: listing its pods for their requests: pods is forbidden: User "kubernetes-admin" cannot list resource "pods"`, child2.Name)
		wantUsage := fmt.Sprintf(`error: cluster %s: reading node usage from its metrics API: forbidden: the child does not let your parent user list "nodes" in API group "metrics.k8s.io"`, child2.Name)
		if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, wantUsage) {
			t.Errorf("exit %d, stderr %q; want exit 1, %q and %q", code, errOut, want, wantUsage)
		}
		if one, two := cell(out, child1.Name, "CPU(REQUESTS)"), cell(out, child2.Name, "CPU(REQUESTS)"); one == "<unknown>" || one == "" || two != "<unknown>" {
			t.Errorf("CPU(REQUESTS) %q of %s and %q of %s, want a sum and <unknown>:\n%s", one, child1.Name, two, child2.Name, out)
		}
	})

	if err := framework.GrantParentAdmin(ctx, child2.Cluster); err != nil {
		t.Fatal(err)
	}

	t.Run("top clusters shows each child's status and what its pods request", func(t *testing.T) {
		out := mustClusternet(t, parent, "top", "clusters")
		t.Logf("$ kubectl clusternet top clusters\n%s", out)
		if diff := cmp.Diff([]string{byName[0].Name, byName[1].Name}, column(out, "NAME")); diff != "" {
			t.Errorf("NAME (-want +got):\n%s", diff)
		}
		for _, col := range []string{"READY", "TUNNEL", "CPU(USAGE)", "MEMORY(USAGE)"} {
			// The testbed runs no metrics-server: no usage, and no error.
			want := map[string]string{"READY": "True", "TUNNEL": "Up", "CPU(USAGE)": "<none>", "MEMORY(USAGE)": "<none>"}[col]
			if diff := cmp.Diff([]string{want, want}, column(out, col)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", col, diff)
			}
		}
		// PODS is requested/allocatable: the pods bound and not terminated,
		// counted here with kubectl in each child, of the ManagedCluster's
		// allocatable pods.
		for _, c := range children {
			phases := e2eutil.MustKubectl(t, c.Cluster, "", "get", "pods", "-A", "-o", `jsonpath={range .items[?(@.spec.nodeName)]}{.status.phase}{"\n"}{end}`)
			holding := 0
			for _, p := range strings.Fields(phases) {
				if p != "Succeeded" && p != "Failed" {
					holding++
				}
			}
			alloc := e2eutil.MustKubectl(t, parent, "", "get", "mcls", "-n", c.Namespace, c.Name, "-o", "jsonpath={.status.allocatable.pods}")
			if want, got := strconv.Itoa(holding)+"/"+alloc, cell(out, c.Name, "PODS"); got != want || holding < 3 {
				t.Errorf("%s PODS %q, want %q (3 or more: app-demo's nginx replicas)", c.Name, got, want)
			}
			if cpu := cell(out, c.Name, "CPU(ALLOC)"); !regexp.MustCompile(`^[1-9][0-9]*m$`).MatchString(cpu) {
				t.Errorf("%s CPU(ALLOC) %q, want millicores from its status", c.Name, cpu)
			}
		}

		// --clusters narrows; -o json carries the ManagedCluster's allocatable.
		out = mustClusternet(t, parent, "top", "clusters", "--clusters", child2.ID, "-o", "json")
		var rows []cli.ClusterTop
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("-o json: %v\n%s", err, out)
		}
		cpu := e2eutil.MustKubectl(t, parent, "", "get", "mcls", "-n", child2.Namespace, child2.Name, "-o", "jsonpath={.status.allocatable.cpu}")
		if len(rows) != 1 || rows[0].Name != child2.Name || rows[0].ID != child2.ID || !rows[0].TunnelUp {
			t.Fatalf("-o json for %s: %s", child2.ID, out)
		}
		if got := rows[0].Allocatable.Cpu(); got.String() != cpu {
			t.Errorf("allocatable cpu %s, want the status's %s", got.String(), cpu)
		}
	})

	// kwok runs no containers, but the testbed configures its ClusterExec
	// to run commands locally with TESTBED_CLUSTER set to the child's name:
	// each cluster's output says which child ran it.
	t.Run("exec runs in one nginx pod per cluster and prints each result under its cluster", func(t *testing.T) {
		out, errOut, code := runPlugin(t, parent, "", "exec", "-l", "app=nginx", "-n", "foo", "--", "sh", "-c", "echo ran in $TESTBED_CLUSTER")
		re := regexp.MustCompile(`(?m)^=== (\S+) \(pod foo/my-nginx-[a-z0-9]+-[a-z0-9]+\)\nran in (\S+)\n`)
		var got []string
		for _, m := range re.FindAllStringSubmatch(out, -1) {
			got = append(got, m[1]+" "+m[2])
		}
		want := []string{byName[0].Name + " " + byName[0].Cluster.Name, byName[1].Name + " " + byName[1].Cluster.Name}
		if code != 0 || errOut != "" || !cmp.Equal(want, got) {
			t.Errorf("exit %d, stderr %q, sections %q; want exit 0, no stderr, sections %q", code, errOut, got, want)
		}
	})

	t.Run("exec: a failure in each cluster is reported per cluster, with exit 1", func(t *testing.T) {
		// kwok reports a command's non-zero exit as an InternalError naming
		// the status, where a kubelet reports the exit code itself (which
		// the plugin prints as "command exited with status N": the unit
		// tests check that shape).
		_, errOut, code := runPlugin(t, parent, "", "exec", "-l", "app=nginx", "-n", "foo", "--clusters", child1.Name+","+child2.ID, "--", "sh", "-c", "exit 3")
		for _, c := range children {
			line := regexp.MustCompile(`(?m)^error: cluster ` + regexp.QuoteMeta(c.Name) + `: .*exit status 3$`)
			if !line.MatchString(errOut) {
				t.Errorf("stderr lacks a line %q:\n%s", line, errOut)
			}
		}
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		_, errOut, code = runPlugin(t, parent, "", "exec", "-l", "app=nowhere", "-n", "foo", "--", "true")
		want := fmt.Sprintf("error: cluster %s: no running pod matches -l \"app=nowhere\" in namespace \"foo\" (0 pods match, none running)\n", child1.Name)
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("exit %d, stderr %q; want exit 1 and %q", code, errOut, want)
		}
	})
}

// cell is the value of column col in the row of a table's output whose
// first column is row.
func cell(out, row, col string) string {
	rows := e2eutil.Table(out)
	i := slices.Index(rows[0], col)
	for _, r := range rows[1:] {
		if i >= 0 && i < len(r) && r[0] == row {
			return r[i]
		}
	}
	return ""
}
