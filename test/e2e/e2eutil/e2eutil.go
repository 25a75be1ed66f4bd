// Package e2eutil is what the end-to-end test packages share: the
// Clusternet binaries built once per package, real kubectl runs, a parent
// with the hub serving, registered children, and polling.
package e2eutil

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// BinDir holds hub, agent and kubectl-clusternet, built once by Main.
var BinDir string

// RaceEnv names the variable that, set to 1 (make test-e2e does), has Main
// build the hub and the agent with -race: a data race either hits while a
// test drives it fails the package (the plugin is built without: servers).
const RaceEnv = "CLUSTERNET_E2E_RACE"

// Main is an e2e package's TestMain body: it builds the binaries (unless
// -short, which runs no e2e test) and runs the tests.
func Main(m *testing.M) int {
	flag.Parse()
	dir, err := os.MkdirTemp("", "clusternet-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	BinDir = dir
	if testing.Short() {
		return m.Run()
	}
	race := os.Getenv(RaceEnv) == "1"
	if race {
		// Every process these binaries start writes its race reports to
		// race.<pid> here, so a report is found however the process ended
		// (tests SIGKILL hubs and agents, and a killed process never
		// reaches the exit code a race sets).
		if err := os.Setenv("GORACE", raceOptions(dir)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := buildBinaries(dir, race); err != nil {
		fmt.Fprintln(os.Stderr, "building hub, agent and kubectl-clusternet:", err)
		return 1
	}
	code := m.Run()
	if race && raceReports(dir) && code == 0 {
		code = 1
	}
	return code
}

// Bin is the path of a binary Main built.
func Bin(name string) string { return filepath.Join(BinDir, name) }

// Kubectl runs the real kubectl against c and returns stdout, stderr and the error.
func Kubectl(t *testing.T, c *testbed.Cluster, stdin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.Kubectl(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// MustKubectl runs kubectl and fails the test if it fails.
func MustKubectl(t *testing.T, c *testbed.Cluster, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := Kubectl(t, c, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// AwaitKubectl runs kubectl args against c until it prints something, for
// up to 30 s, and returns what it printed: for what a component sends in the
// background after what a test waited for, as events are.
func AwaitKubectl(t *testing.T, c *testbed.Cluster, args ...string) string {
	t.Helper()
	var out string
	WaitFor(t, 30*time.Second, "kubectl "+strings.Join(args, " ")+" to print something", func(context.Context) (bool, string) {
		got, errOut, err := Kubectl(t, c, "", args...)
		out = got
		return err == nil && strings.TrimSpace(got) != "", got + errOut
	})
	return out
}

// Table splits kubectl's column output into rows of fields. Fields are
// separated by runs of two or more spaces, as kubectl's tab writer pads them,
// so a header such as "CLUSTER ID" stays one field.
func Table(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		var fields []string
		for _, f := range strings.Split(line, "  ") {
			if f = strings.TrimSpace(f); f != "" {
				fields = append(fields, f)
			}
		}
		rows = append(rows, fields)
	}
	return rows
}

// SetUpParent installs deploy/ into the parent and starts a serving hub
// with extra flags, stopped when the test ends (its log printed if it failed).
func SetUpParent(t *testing.T, parent *testbed.Cluster, hubArgs ...string) *framework.Hub {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := framework.InstallParent(ctx, parent); err != nil {
		t.Fatal(err)
	}
	hub, err := framework.StartHub(ctx, t.TempDir(), framework.InDir(t.TempDir()), parent, Bin("hub"), hubArgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = hub.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("--- hub log (%s) ---\n%s", hub.Log, hub.LogTail(8000))
		}
	})
	return hub
}

// StartBinary runs a Clusternet binary from BinDir, stopped when the test ends.
func StartBinary(t *testing.T, name, binary string, args ...string) *testbed.Process {
	t.Helper()
	if binary == "agent" {
		// Probes and metrics off unless args turn them on (a later flag
		// wins): their default ports would collide between the agents of
		// one machine, as framework.AgentArgs says.
		args = append([]string{"--health-probe-bind-address=0", "--metrics-bind-address=0"}, args...)
	}
	p, err := testbed.StartProcess(t.TempDir(), name, Bin(binary), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("--- %s log (%s) ---\n%s", name, p.Log, p.LogTail(8000))
		}
	})
	return p
}

// ClusternetClient is a typed client of c as its admin.
func ClusternetClient(t *testing.T, c *testbed.Cluster) versioned.Interface {
	t.Helper()
	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := versioned.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// KubeSystemUID is c's cluster id as its agent computes it.
func KubeSystemUID(t *testing.T, c *testbed.Cluster) string {
	t.Helper()
	return MustKubectl(t, c, "", "get", "ns", "kube-system", "-o", "jsonpath={.metadata.uid}")
}

// WaitFor polls cond until it holds or timeout passes; the last reason it
// gave is in the failure.
func WaitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, why := cond(ctx)
		// A last call cut short by the deadline says only that: keep the
		// reason the one before it gave.
		if ctx.Err() == nil || last == "" {
			last = why
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last: %s)", what, err, last)
	}
}

// Child is a registered child cluster.
type Child struct {
	*testbed.Cluster
	// ID is the cluster id; Namespace the dedicated namespace in the parent;
	// Name the ManagedCluster's name.
	ID, Namespace, Name string
	Agent               *testbed.Process
}

// RegisterChildren starts an agent in each child (with a 2 s heartbeat and
// the extra flags agentArgs(i) gives, which may be nil) and waits until every
// ManagedCluster is Ready with its tunnel up.
func RegisterChildren(t *testing.T, parent *testbed.Cluster, children []*testbed.Cluster, agentArgs func(i int) []string) []*Child {
	t.Helper()
	out := make([]*Child, len(children))
	for i, c := range children {
		args := []string{"--cluster-status-update-frequency=2s"}
		if agentArgs != nil {
			args = append(args, agentArgs(i)...)
		}
		out[i] = &Child{Cluster: c, ID: KubeSystemUID(t, c)}
		out[i].Agent = StartBinary(t, "agent-"+c.Name, "agent", framework.AgentArgs(parent, c, args...)...)
	}
	for _, c := range out {
		WaitFor(t, 60*time.Second, "cluster "+c.Cluster.Name+" registered, ready, tunnel up", func(ctx context.Context) (bool, string) {
			got, _, err := Kubectl(t, parent, "", "get", "mcls", "-A", "-l", "clusters.clusternet.io/cluster-id="+c.ID,
				"-o", `jsonpath={range .items[*]}{.metadata.namespace} {.metadata.name} {.status.readyz} {.status.useSocket}{end}`)
			f := strings.Fields(got)
			if err != nil || len(f) != 4 || f[2] != "true" || f[3] != "true" {
				return false, got
			}
			c.Namespace, c.Name = f[0], f[1]
			return true, ""
		})
	}
	return out
}
