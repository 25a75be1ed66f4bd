package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/cli"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/helmrepo"
	"github.com/clusternet/clusternet/test/testbed"
)

// Generous: the machine has 2 cores, shared with other end-to-end runs.
const rolloutWithin = 4 * time.Minute

// run is one `kubectl clusternet ...` the real kubectl runs, started in
// the background.
type run struct {
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{}
	err            error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startPlugin starts `kubectl clusternet args...` against parent with the
// credentials of kubeconfig (the admin's when empty), its output piped.
func startPlugin(t *testing.T, parent *testbed.Cluster, kubeconfig string, args ...string) *run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rolloutWithin+time.Minute)
	t.Cleanup(cancel)
	r := &run{cmd: parent.Kubectl(ctx, append([]string{"clusternet"}, args...)...), done: make(chan struct{})}
	r.cmd.Env = append(r.cmd.Env, "PATH="+e2eutil.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	if kubeconfig != "" {
		// kubectl takes no flags before a plugin's name; the last KUBECONFIG wins.
		r.cmd.Env = append(r.cmd.Env, "KUBECONFIG="+kubeconfig)
	}
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	return r
}

// wait is the exit code once the command has ended.
func (r *run) wait(t *testing.T) int {
	t.Helper()
	<-r.done
	t.Logf("$ kubectl %s  (exit %d)\n%s%s", strings.Join(r.cmd.Args[1:], " "), exitCode(r.err), r.stdout.String(), r.stderr.String())
	return exitCode(r.err)
}

func runPlugin(t *testing.T, parent *testbed.Cluster, kubeconfig string, args ...string) (string, string, int) {
	t.Helper()
	r := startPlugin(t, parent, kubeconfig, args...)
	code := r.wait(t)
	return r.stdout.String(), r.stderr.String(), code
}

// terminal runs a command line in a tmux session of its own (a private tmux
// server), so that its output is a terminal; everything it writes is
// recorded as it is written.
type terminal struct {
	t      *testing.T
	socket string
	raw    string
}

func (tm *terminal) tmux(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", tm.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startTerminal runs `kubectl clusternet args...` in a 200x50 terminal,
// then prints EXIT=<its exit code>.
func startTerminal(t *testing.T, parent *testbed.Cluster, args ...string) *terminal {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is needed to give the plugin a terminal: %v", err)
	}
	dir := t.TempDir()
	tm := &terminal{t: t, socket: fmt.Sprintf("clusternet-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()), raw: filepath.Join(dir, "raw")}
	kubectl := parent.Kubectl(context.Background()).Path
	// The command waits for "go": the recording must start before it writes.
	script := fmt.Sprintf("while [ ! -e %[1]s/go ]; do sleep 0.1; done\nexport KUBECONFIG=%[2]s PATH=%[3]s:$PATH\n%[4]s clusternet %[5]s\necho EXIT=$?\nsleep 3600\n",
		dir, parent.Kubeconfig, e2eutil.BinDir, kubectl, strings.Join(args, " "))
	if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	tm.tmux("new-session", "-d", "-s", "e2e", "-x", "200", "-y", "50", "sh "+filepath.Join(dir, "run.sh"))
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", tm.socket, "kill-server").Run() })
	tm.tmux("pipe-pane", "-t", "e2e", "-o", "cat >> "+tm.raw)
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return tm
}

// screen is what the terminal shows now.
func (tm *terminal) screen() string { return tm.tmux("capture-pane", "-p", "-t", "e2e") }

func (tm *terminal) written() string {
	b, _ := os.ReadFile(tm.raw)
	return string(b)
}

// TestRolloutStatusAndTree follows the seed's app-demo to both children
// with the real plugin, piped and on a terminal, shows its tree, and then
// makes rollouts fail and time out, and a reader without rights in one
// cluster's namespace be refused.
func TestRolloutStatusAndTree(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	e2eutil.SetUpParent(t, parent)
	// One child pushed to by the hub, one pulling: rollout status reads
	// Descriptions, whoever reports on them.
	children := e2eutil.RegisterChildren(t, parent, tb.Children, func(i int) []string {
		return [][]string{{"--cluster-sync-mode=Dual"}, {"--cluster-sync-mode=Pull"}}[i]
	})
	child1, child2 := children[0], children[1]
	cs := e2eutil.ClusternetClient(t, parent)
	t.Cleanup(func() {
		if t.Failed() {
			logDescriptions(t, parent)
			for _, c := range children {
				t.Logf("--- agent of %s ---\n%s", c.Cluster.Name, c.Agent.LogTail(4000))
			}
		}
	})

	apps := seedAppDemo(t, child1, child2)

	t.Run("the seed's app-demo rolls out: piped and on a terminal, both exit 0", func(t *testing.T) {
		// The Subscription first: its feeds do not resolve until the
		// templates are stored, so both runs see the rollout from the start.
		mustClusternet(t, parent, "apply", "-f", filepath.Join(apps, "05-subscription.yaml"))
		piped := startPlugin(t, parent, "", "rollout", "status", "subscription/app-demo", "--timeout", rolloutWithin.String())
		term := startTerminal(t, parent, "rollout", "status", "subscription/app-demo", "--timeout", rolloutWithin.String())
		e2eutil.WaitFor(t, time.Minute, "both runs waiting for the feeds", func(context.Context) (bool, string) {
			waiting := `Waiting for subscription "app-demo": its feeds do not resolve`
			return strings.Contains(piped.stdout.String(), waiting) && strings.Contains(term.screen(), waiting), term.screen()
		})
		mustClusternet(t, parent, "apply", "-f", apps)

		if code := piped.wait(t); code != 0 {
			t.Fatalf("piped rollout status exit %d", code)
		}
		out := piped.stdout.String()
		if strings.Contains(out, "\x1b") {
			t.Errorf("piped output holds escape codes:\n%q", out)
		}
		for _, want := range []string{
			child1.Name + " app-demo-generic: Success, 3/3 ready: available\n",
			child2.Name + " app-demo-generic: Success, 3/3 ready: available\n",
			child1.Name + " app-demo-helm: Success: available\n",
			child2.Name + " app-demo-helm: Success: available\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("piped output lacks %q:\n%s", want, out)
			}
		}
		if !strings.HasSuffix(out, `subscription "app-demo" successfully rolled out to 2 clusters`+"\n") {
			t.Errorf("piped output does not end with the rollout done:\n%s", out)
		}

		var screen string
		e2eutil.WaitFor(t, rolloutWithin, "the terminal run to end", func(context.Context) (bool, string) {
			screen = term.screen()
			return strings.Contains(screen, "EXIT="), screen
		})
		t.Logf("--- the terminal at the end ---\n%s", strings.TrimRight(screen, "\n"))
		// Drawn in place: the table was redrawn (the cursor went back up
		// over it), and the screen holds one table, the last one.
		if raw := term.written(); !strings.Contains(raw, "A\r\x1b[J") {
			t.Errorf("the terminal run never redrew its table in place:\n%q", raw)
		}
		if n := strings.Count(screen, "CLUSTER "); n != 1 {
			t.Errorf("the screen holds %d tables, want the one redrawn in place:\n%s", n, screen)
		}
		for _, want := range []string{`subscription "app-demo" successfully rolled out to 2 clusters`, "EXIT=0"} {
			if !strings.Contains(screen, want) {
				t.Errorf("the screen lacks %q:\n%s", want, screen)
			}
		}
	})

	t.Run("tree shows where app-demo went", func(t *testing.T) {
		// The Subscription's own status (its Ready condition, the feeds
		// summed over the clusters) is the hub's, written a moment after the
		// Descriptions the rollout was judged on.
		var out string
		e2eutil.WaitFor(t, time.Minute, "tree subscription/app-demo showing the rollout", func(context.Context) (bool, string) {
			out = mustClusternet(t, parent, "tree", "subscription/app-demo")
			return treeHas(out, "default", "Subscription/app-demo", "Ready", "2/2") &&
				treeHas(out, "foo", "Deployment/my-nginx", "Available", "2/2"), out
		})
		t.Logf("$ kubectl clusternet tree subscription/app-demo\n%s", out)
		for _, want := range [][]string{
			{"default", "HelmChart/mysql", "Available", "2/2"},
			{child1.Namespace, "ManagedCluster/" + child1.Name, "Done", "3/3"},
			{child2.Namespace, "ManagedCluster/" + child2.Name, "Done", "3/3"},
			{child1.Namespace, "Base/app-demo", "Rendered"},
			{child1.Namespace, "Description/app-demo-generic", "Success", "3/3"},
			{child2.Namespace, "Description/app-demo-helm", "Success"},
			{"foo", "Deployment/my-nginx", "Available", "3/3"},
			{"foo", "Service/my-nginx-svc", "Available"},
		} {
			if !treeHas(out, want[0], want[1], want[2:]...) {
				t.Errorf("tree lacks a row %q:\n%s", want, out)
			}
		}

		out = mustClusternet(t, parent, "tree", "subs", "app-demo", "-o", "json")
		var root cli.TreeNode
		if err := json.Unmarshal([]byte(out), &root); err != nil {
			t.Fatalf("-o json: %v\n%s", err, out)
		}
		clusters := map[string]string{}
		for _, c := range root.Children {
			if c.Kind == "ManagedCluster" {
				clusters[c.ClusterID] = c.Status
			}
		}
		if root.Status != "Ready" || clusters[child1.ID] != "Done" || clusters[child2.ID] != "Done" || len(clusters) != 2 {
			t.Errorf("-o json: status %q, clusters %v:\n%s", root.Status, clusters, out)
		}

		out = mustClusternet(t, parent, "tree", "deployment/my-nginx", "-n", "foo")
		t.Logf("$ kubectl clusternet tree deployment/my-nginx -n foo\n%s", out)
		for _, want := range [][]string{
			{"foo", "Deployment/my-nginx", "2/2"},
			{"default", "Subscription/app-demo", "Ready", "2/2"},
			{child1.Namespace, "ManagedCluster/" + child1.Name, "Available", "3/3"},
			{child2.Namespace, "ManagedCluster/" + child2.Name, "Available", "3/3"},
		} {
			if !treeHas(out, want[0], want[1], want[2:]...) {
				t.Errorf("template tree lacks a row %q:\n%s", want, out)
			}
		}
	})

	t.Run("a template the child refuses: exit 1 naming that cluster", func(t *testing.T) {
		// The Deployment's namespace exists in child1 only, and is no feed:
		// child2's apiserver refuses the Deployment.
		e2eutil.MustKubectl(t, child1.Cluster, "", "create", "namespace", "rollout-missing")
		e2eutil.CreateTemplate(t, parent, `apiVersion: apps/v1
kind: Deployment
metadata: {name: broken, namespace: rollout-missing}
spec:
  replicas: 1
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec: {containers: [{name: c, image: nginx}]}
`)
		applySubscription(t, parent, "broken", []string{child1.ID, child2.ID}, `{apiVersion: apps/v1, kind: Deployment, namespace: rollout-missing, name: broken}`)
		_, errOut, code := runPlugin(t, parent, "", "rollout", "status", "subscription/broken", "--timeout", rolloutWithin.String())
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		for _, want := range []string{
			`error: subscription "broken" in namespace "default" failed in cluster ` + child2.Name + ": Description " + child2.Namespace + "/broken-generic: ",
			`"rollout-missing" not found`,
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
		}
		if strings.Contains(errOut, "cluster "+child1.Name) {
			t.Errorf("stderr names %s, which applied the Deployment:\n%s", child1.Name, errOut)
		}
	})

	t.Run("a workload that never becomes available: --timeout names the cluster", func(t *testing.T) {
		node := strings.TrimPrefix(strings.TrimSpace(e2eutil.MustKubectl(t, child2.Cluster, "", "get", "nodes", "-o", "name")), "node/")
		// Its pods fit child2's node only: in child1 they stay Pending.
		e2eutil.CreateTemplate(t, parent, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: pinned, namespace: foo}
spec:
  replicas: 2
  selector: {matchLabels: {app: pinned}}
  template:
    metadata: {labels: {app: pinned}}
    spec:
      nodeSelector: {kubernetes.io/hostname: %s}
      containers: [{name: c, image: nginx}]
`, node))
		applySubscription(t, parent, "pinned", []string{child1.ID, child2.ID},
			`{apiVersion: v1, kind: Namespace, name: foo}`, `{apiVersion: apps/v1, kind: Deployment, namespace: foo, name: pinned}`)
		// Wait for child2 to be done, as its deployer reports it, so the
		// timeout can name child1 alone.
		e2eutil.WaitFor(t, rolloutWithin, "pinned available in "+child2.Name, func(ctx context.Context) (bool, string) {
			d, err := cs.AppsV1alpha1().Descriptions(child2.Namespace).Get(ctx, "pinned-generic", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return d.Status.Phase == appsv1alpha1.DescriptionPhaseSuccess && allAvailable(d), fmt.Sprintf("%s %+v", d.Status.Phase, d.Status.ManifestStatuses)
		})
		_, errOut, code := runPlugin(t, parent, "", "rollout", "status", "subscription/pinned", "--timeout", "20s")
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		want := `error: timed out after 20s waiting for subscription "pinned" in namespace "default" to roll out: 1 of 2 clusters not done: cluster ` +
			child1.Name + ": Description " + child1.Namespace + "/pinned-generic: Deployment foo/pinned: "
		if !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, "replicas") {
			t.Errorf("stderr = %q, want it to start %q and name the replicas", errOut, want)
		}
	})

	t.Run("a reader without rights in one cluster's namespace is refused, naming it", func(t *testing.T) {
		// A ServiceAccount that may read Subscriptions in default and Bases
		// and Descriptions in child1's dedicated namespace only; its real
		// token, from the TokenRequest API.
		e2eutil.MustKubectl(t, parent, "", "create", "serviceaccount", "rollout-reader", "-n", "default")
		grantReader(t, parent, "default", "subscriptions")
		grantReader(t, parent, child1.Namespace, "bases", "descriptions")
		token := strings.TrimSpace(e2eutil.MustKubectl(t, parent, "", "create", "token", "rollout-reader", "-n", "default"))
		kubeconfig := e2eutil.TokenKubeconfig(t, parent, token)

		_, errOut, code := runPlugin(t, parent, kubeconfig, "rollout", "status", "subscription/app-demo", "--watch=false")
		want := fmt.Sprintf(`error: you may not list bases.apps.clusternet.io in namespace %q (the dedicated namespace of cluster %s) of the parent: `,
			child2.Namespace, child2.Name)
		if code != 1 || !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, "forbidden") {
			t.Errorf("exit %d, stderr %q; want exit 1 and it to start %q", code, errOut, want)
		}
		_, errOut, code = runPlugin(t, parent, kubeconfig, "rollout", "status", "subscription/app-demo", "--timeout", "1m")
		if want := fmt.Sprintf("(the dedicated namespace of cluster %s)", child2.Name); code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("watching: exit %d, stderr %q; want exit 1 naming %q", code, errOut, want)
		}

		// Read rights in every namespace involved are enough.
		grantReader(t, parent, child2.Namespace, "bases", "descriptions")
		out, errOut, code := runPlugin(t, parent, kubeconfig, "rollout", "status", "subscription/app-demo", "--timeout", "1m")
		if code != 0 || !strings.HasSuffix(out, "successfully rolled out to 2 clusters\n") {
			t.Errorf("with read rights in both namespaces: exit %d\n%s%s", code, out, errOut)
		}
	})
}

// treeHas says whether the text tree has a line for name (Kind/name, as
// the NAME column ends) in namespace ("" for none), followed by the
// columns rest.
func treeHas(out, namespace, name string, rest ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || namespace != "" && f[0] != namespace {
			continue
		}
		for i, w := range f {
			if (w == name || strings.HasSuffix(w, "─"+name)) && len(f) >= i+1+len(rest) && strings.Join(f[i+1:i+1+len(rest)], " ") == strings.Join(rest, " ") {
				return true
			}
		}
	}
	return false
}

func allAvailable(d *appsv1alpha1.Description) bool {
	for _, ms := range d.Status.ManifestStatuses {
		if !ms.Available {
			return false
		}
	}
	return len(d.Status.ManifestStatuses) > 0
}

// applySubscription stores Subscription name in default with feeds (YAML
// flow mappings) for the clusters of ids.
func applySubscription(t *testing.T, parent *testbed.Cluster, name string, ids []string, feeds ...string) {
	t.Helper()
	var subscribers []string
	for _, id := range ids {
		subscribers = append(subscribers, fmt.Sprintf("{clusterAffinity: {matchLabels: {clusters.clusternet.io/cluster-id: %s}}}", id))
	}
	mustClusternetStdin(t, parent, fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: %s, namespace: default}
spec:
  subscribers: [%s]
  feeds: [%s]
`, name, strings.Join(subscribers, ", "), strings.Join(feeds, ", ")), "apply", "-f", "-")
}

func mustClusternetStdin(t *testing.T, c *testbed.Cluster, stdin string, args ...string) {
	t.Helper()
	out, errOut, err := clusternet(t, c, stdin, nil, args...)
	if err != nil {
		t.Fatalf("kubectl clusternet %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
}

// grantReader lets the ServiceAccount default/rollout-reader get, list
// and watch resources of Clusternet's apps group in namespace.
func grantReader(t *testing.T, parent *testbed.Cluster, namespace string, resources ...string) {
	t.Helper()
	args := []string{"create", "role", "rollout-reader", "-n", namespace, "--verb=get,list,watch"}
	for _, r := range resources {
		args = append(args, "--resource="+r+"."+appsv1alpha1.GroupName)
	}
	e2eutil.MustKubectl(t, parent, "", args...)
	e2eutil.MustKubectl(t, parent, "", "create", "rolebinding", "rollout-reader", "-n", namespace, "--role=rollout-reader",
		"--serviceaccount=default:rollout-reader")
}

// seedAppDemo is the seed's app-demo (upstream Clusternet's README,
// examples/applications) for child1 and child2, its mysql chart served by a
// repository on loopback, with the one fix the hub names for the seed's
// "apps/v1 Service"; it returns the file's path.
func seedAppDemo(t *testing.T, child1, child2 *e2eutil.Child) string {
	t.Helper()
	repo := helmrepo.NewRepo(t)
	repo.Add(t, helmrepo.DemoChart("mysql", "8.6.2"))
	return e2eutil.SeedApplications(t, repo.URL, []string{child1.ID, child2.ID}, func(feeds []any) []any {
		for _, f := range feeds {
			if f := f.(map[string]any); f["kind"] == "Service" {
				f["apiVersion"] = "v1"
			}
		}
		return feeds
	})
}

// logDescriptions logs every Description's phase and reason: what a failed
// rollout test needs to be read.
func logDescriptions(t *testing.T, parent *testbed.Cluster) {
	out, _, _ := e2eutil.Kubectl(t, parent, "", "get", "desc", "-A", "-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {.status.phase} {.status.reason}{"\n"}{end}`)
	t.Logf("--- Descriptions ---\n%s", out)
}
