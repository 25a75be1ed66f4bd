package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/server/hub"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/helmrepo"
	"github.com/clusternet/clusternet/test/testbed"
)

// appNamespace is where every application's objects live, in the parent
// (templates) and in the children; the test makes it in each, so pruning
// never has to wait for a namespace to terminate.
const appNamespace = "chaos"

// helmVersions is how many versions of the test chart the repository
// serves; upgrades cycle through them.
const helmVersions = 40

// syncMode is how one child gets its Descriptions applied, and who applies
// (as the SuccessfullyDeployed events name it: docs/deployer.md).
type syncMode struct {
	mode    string
	applier string
}

var modes = []syncMode{
	{mode: "Push", applier: "clusternet-hub"},
	{mode: "Pull", applier: "clusternet-agent"},
	{mode: "Dual", applier: "clusternet-hub"}, // AppPusher on (the default): the hub pushes
}

type child struct {
	*testbed.Cluster
	idx                 int
	mode                syncMode
	ID, Namespace, Name string
	kube                kubernetes.Interface
	proxy               *Proxy
	agent               *testbed.Process // the fault goroutine alone replaces it
	agentArgs           []string
	metricsURL          string
}

type world struct {
	t      *testing.T
	seed   uint64
	parent *testbed.Cluster
	// hubs are the hub replicas behind their balancer; the fault goroutine
	// alone restarts them (superviseProcesses runs between its faults).
	hubs *framework.Hubs
	cs   versioned.Interface
	kube kubernetes.Interface
	dyn  dynamic.Interface
	// hubRest reaches each replica directly, by index (not through the
	// aggregator and the balancer): its /metrics, and requests that must
	// reach that one replica.
	hubRest []*rest.Config
	hubKube []kubernetes.Interface
	// leaseDuration is the controllers' Lease's, as the hubs run it.
	leaseDuration time.Duration
	children      []*child
	dir           string
	repo          *helmrepo.Repo

	// opLock is held by the rollout driver for each operation and by a
	// checkpoint for its whole length: a checkpoint pauses the rollouts.
	opLock sync.Mutex

	mu    sync.Mutex // guards everything below
	seq   int64      // model events, in order
	apps  []*app
	helm  helmApp
	stats stats
	log   []string // the last events (faults, operations), for a failure's evidence
	seen  map[string]bool
	// causes are the first line of each violation, repeated when the test
	// ends: the logs printed on failure would otherwise push them out of
	// the tail CI shows.
	causes []string
	// onViolation, when set (the invariants' own tests), receives
	// violations instead of the test failing.
	onViolation func(key, msg string)
}

// hubReplicas is how many hub replicas run (docs/install.md, "More than one
// replica"): the issue asks for two.
const hubReplicas = 2

// setUp starts the testbed, the hub replicas, a proxy and an agent per
// child, and the namespaces and chart repository the rollouts use.
func setUp(t *testing.T, seed uint64) *world {
	tb := testbed.ForTest(t, len(modes))
	// The hubs' and agents' logs beside the clusters', kept with them when
	// the test fails (testbed.ForTest prints where).
	w := &world{t: t, seed: seed, parent: tb.Parent, dir: filepath.Join(tb.Dir, "clusternet"), seen: map[string]bool{}}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w.hubs, w.leaseDuration = startHubs(ctx, t, tb.Parent, w.dir)
	cfg, err := tb.Parent.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 20 * time.Second
	w.cs = versioned.NewForConfigOrDie(cfg)
	w.kube = kubernetes.NewForConfigOrDie(cfg)
	w.dyn = dynamic.NewForConfigOrDie(cfg)
	for _, h := range w.hubs.Replicas {
		rc := w.hubConfig(ctx, cfg, h.Port)
		w.hubRest = append(w.hubRest, rc)
		w.hubKube = append(w.hubKube, kubernetes.NewForConfigOrDie(rc))
	}

	parentURL, err := url.Parse(tb.Parent.URL)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range tb.Children {
		cfg, err := c.RESTConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Timeout = 20 * time.Second
		ch := &child{Cluster: c, idx: i, mode: modes[i], kube: kubernetes.NewForConfigOrDie(cfg), ID: e2eutil.KubeSystemUID(t, c)}
		ch.proxy, err = NewProxy(parentURL.Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ch.proxy.Close() })
		// The agent reaches the parent only through its proxy: its API
		// calls and its tunnel. The parent's certificate names 127.0.0.1,
		// so TLS verifies through the proxy's port as well.
		args := framework.AgentArgs(tb.Parent, c, "--cluster-status-update-frequency=2s", "--cluster-sync-mode="+ch.mode.mode)
		for j := range args {
			if args[j] == "--parent-url" {
				args[j+1] = "https://" + ch.proxy.Addr
			}
		}
		// Probes and metrics on ports of their own: three agents share this host.
		var ports [2]int
		for k := range ports {
			port, release, err := testbed.ReservePort()
			if err != nil {
				t.Fatal(err)
			}
			release()
			ports[k] = port
		}
		ch.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1])
		args = append(args, fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[0]), fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[1]))
		ch.agentArgs = args
		if ch.agent, err = testbed.StartProcess(w.dir, "agent-"+c.Name, e2eutil.Bin("agent"), args...); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = ch.agent.Stop(10 * time.Second)
			if t.Failed() {
				t.Logf("--- agent of %s (%s) ---\n%s", c.Name, ch.agent.Log, ch.agent.LogTail(4000))
			}
		})
		for _, kube := range []kubernetes.Interface{w.kube, ch.kube} {
			if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
		}
		w.children = append(w.children, ch)
	}
	for _, c := range w.children {
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			l, err := w.cs.ClustersV1beta1().ManagedClusters("").List(ctx, metav1.ListOptions{LabelSelector: clusterv1beta1.LabelClusterID + "=" + c.ID})
			if err != nil || len(l.Items) != 1 {
				return false, nil
			}
			m := l.Items[0]
			c.Namespace, c.Name = m.Namespace, m.Name
			return m.Status.Readyz && m.Status.UseSocket, nil
		})
		if err != nil {
			t.Fatalf("cluster %s not registered, ready and tunnelled: %v\n%s", c.Cluster.Name, err, c.agent.LogTail(3000))
		}
	}

	w.repo = helmrepo.NewRepo(t)
	for i := range helmVersions {
		w.repo.Add(t, helmrepo.DemoChart(helmChartName, helmVersion(i)))
	}
	for i := range *flagApps {
		w.apps = append(w.apps, newApp(fmt.Sprintf("app%d", i), len(w.children)))
	}
	t.Cleanup(func() {
		if t.Failed() {
			w.mu.Lock()
			t.Logf("--- last events ---\n%s", strings.Join(w.log, "\n"))
			w.mu.Unlock()
		}
	})
	return w
}

// startHubs installs deploy/ into the parent and starts hubReplicas hubs
// behind a balancer (framework.StartHubs: the chart's args, leader election
// on, the serving certificate the hubs manage) with the chart's leader
// election timings, stopped when the test ends (their logs printed if it
// failed). It returns them and their Lease duration.
func startHubs(ctx context.Context, t *testing.T, parent *testbed.Cluster, dir string) (*framework.Hubs, time.Duration) {
	if err := framework.InstallParent(ctx, parent); err != nil {
		t.Fatal(err)
	}
	le, lease, err := chartLeaderElection()
	if err != nil {
		t.Fatal(err)
	}
	hubs, err := framework.StartHubs(ctx, dir, framework.InDir(dir), parent, e2eutil.Bin("hub"), hubReplicas, le...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hubs.Stop()
		if t.Failed() {
			t.Logf("--- hubs ---\n%s", hubs.LogTail(8000))
		}
	})
	return hubs, lease
}

// chartLeaderElection are the leader election flags the hub chart ships
// for its timings: its values when it sets them, else the hub's defaults
// (the chart leaves them empty: a 15 s lease, renewed within 10 s, tried
// for every 2 s), and the lease duration they make. framework.HubArgs
// shortens them for the end-to-end tests (a 4 s lease); here they are what
// a real install runs, so that a killed leader hands its work over as late
// as it would there (its Lease must expire first) and a parent apiserver
// away for long costs the leader its term as it would there.
func chartLeaderElection() ([]string, time.Duration, error) {
	chart, err := framework.HubChartArgs()
	if err != nil {
		return nil, 0, err
	}
	defaults := hub.NewOptions()
	flags := []string{"--leader-elect-lease-duration", "--leader-elect-renew-deadline", "--leader-elect-retry-period"}
	values := map[string]string{
		flags[0]: defaults.LeaseDuration.String(),
		flags[1]: defaults.RenewDeadline.String(),
		flags[2]: defaults.RetryPeriod.String(),
	}
	elect := false
	for _, a := range chart.Args {
		name, value, _ := strings.Cut(a, "=")
		if _, ok := values[name]; ok {
			values[name] = value
		}
		elect = elect || a == "--leader-elect=true"
	}
	if !elect {
		return nil, 0, fmt.Errorf("the hub chart does not run --leader-elect=true (args %q): %d replicas would all run the controllers", chart.Args, hubReplicas)
	}
	lease, err := time.ParseDuration(values[flags[0]])
	if err != nil {
		return nil, 0, fmt.Errorf("the hub chart's %s=%q: %w", flags[0], values[flags[0]], err)
	}
	var out []string
	for _, f := range flags {
		out = append(out, f+"="+values[f])
	}
	return out, lease, nil
}

// hubConfig reaches the replica on port directly (not through the
// aggregator and the balancer) as the parent's admin, verifying it with the
// caBundle of its APIService (the CA the hubs manage).
func (w *world) hubConfig(ctx context.Context, parentCfg *rest.Config, port int) *rest.Config {
	out, err := w.parent.Kubectl(ctx, "get", "apiservice", "v1alpha1.proxies.clusternet.io", "-o", "jsonpath={.spec.caBundle}").Output()
	if err != nil {
		w.t.Fatalf("reading the hubs' caBundle: %v", err)
	}
	cfg := rest.CopyConfig(parentCfg)
	cfg.Host = fmt.Sprintf("https://127.0.0.1:%d", port)
	cfg.CAFile = ""
	cfg.CAData, err = decodeBase64(string(out))
	if err != nil {
		w.t.Fatalf("the hubs' caBundle: %v", err)
	}
	cfg.Timeout = 5 * time.Second
	return cfg
}

// record adds a line to the event log kept for a failure's evidence.
func (w *world) record(format string, args ...any) {
	line := time.Now().UTC().Format("15:04:05.000") + " " + fmt.Sprintf(format, args...)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, line)
	if len(w.log) > 300 {
		w.log = w.log[len(w.log)-300:]
	}
}

// violate records an invariant violation (each distinct key once) and fails the test.
func (w *world) violate(key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if w.onViolation != nil {
		w.onViolation(key, msg)
		return
	}
	w.mu.Lock()
	first := !w.seen[key]
	w.seen[key] = true
	w.stats.violations++
	w.mu.Unlock()
	w.record("VIOLATION %s", msg)
	if first {
		w.mu.Lock()
		w.causes = append(w.causes, firstLine(msg, 400))
		w.mu.Unlock()
		w.t.Errorf("invariant violated at %s: %s", time.Now().UTC().Format(time.RFC3339), msg)
	}
}

// firstLine is msg up to its first newline, at most n bytes.
func firstLine(msg string, n int) string {
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > n {
		msg = msg[:n] + "…"
	}
	return msg
}

// retry runs f until it succeeds or timeout passes; the last error is
// returned. Failed attempts (a fault in the way) are counted.
func (w *world) retry(ctx context.Context, timeout time.Duration, f func(ctx context.Context) error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 300*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if last = f(c); last != nil {
			w.mu.Lock()
			w.stats.failedAttempts++
			w.mu.Unlock()
		}
		return last == nil, nil
	})
	if err != nil && last != nil {
		return last
	}
	return err
}

// pick returns a random non-empty subset of n clusters.
func pick(rng *rand.Rand, n int) map[int]bool {
	for {
		out := map[int]bool{}
		for i := range n {
			if rng.IntN(2) == 0 {
				out[i] = true
			}
		}
		if len(out) > 0 {
			return out
		}
	}
}

func sortedKeys[K comparable, V any](m map[K]V, less func(a, b K) int) []K {
	var out []K
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, less)
	return out
}
