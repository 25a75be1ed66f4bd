// Command scale measures one parent and one hub with many clusters: N
// stand-in agents in this process (the real registration, heartbeats at
// the default frequency, a real tunnel each, an in-memory child, and in
// Pull pkg/deployer's controller), plus two real kwok children with the
// real agent, end to end. It prints its figures and writes them into
// docs/benchmarks.md between <!-- bench:scale --> markers.
//
//	go run ./test/scale --hub bin/hub --agent bin/agent --clusters 1000 --out docs/benchmarks.md
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/deployer"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/memchild"
	"github.com/clusternet/clusternet/test/testbed"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

type options struct {
	hub, agent, out string
	clusters, runs  int
	// registering is how many stand-ins register at once.
	registering int
	// registrationsPerMinute is the hub's admission rate; 0 leaves the
	// hub's default, which a fleet's operator would have.
	registrationsPerMinute int
	limit                  time.Duration
	// wait bounds each step of a rollout (Ready, update, deletion).
	wait time.Duration
	// profile, when set, is where CPU profiles of each phase and the
	// hub's heap profiles go (the hub then runs with --profiling).
	profile string
}

func run() error {
	var o options
	flag.StringVar(&o.hub, "hub", "bin/hub", "clusternet-hub binary")
	flag.StringVar(&o.agent, "agent", "bin/agent", "clusternet-agent binary (the two real children's)")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "Markdown file to write the results into (empty: print only)")
	flag.IntVar(&o.clusters, "clusters", 1000, "stand-in clusters, beside the two real ones")
	flag.IntVar(&o.registering, "registering", 50, "stand-ins registering at once (a fleet whose agents are installed in waves); 0: all at once")
	flag.IntVar(&o.runs, "runs", 3, "Subscriptions timed in Pull and again in Push")
	flag.IntVar(&o.registrationsPerMinute, "registrations-per-minute", 0, "the hub's --registrations-per-minute (0: its default)")
	flag.DurationVar(&o.wait, "wait", 5*time.Minute, "how long each step of a rollout (Ready, update, deletion) may take")
	flag.DurationVar(&o.limit, "timeout", 15*time.Minute, "the whole run's limit")
	flag.StringVar(&o.profile, "profile", "", "a folder for CPU profiles of the hub, the parent apiserver and the stand-ins over the first 20 s of each phase, and the hub's heap and goroutines once each rollout is Ready (the hub and the parent apiserver run with --profiling)")
	flag.Parse()
	if o.clusters < 1 {
		return fmt.Errorf("--clusters %d: want at least 1 stand-in cluster", o.clusters)
	}
	if o.runs < 1 {
		return fmt.Errorf("--runs %d: want at least 1", o.runs)
	}
	var err error
	if o.hub, err = filepath.Abs(o.hub); err != nil {
		return err
	}
	if o.agent, err = filepath.Abs(o.agent); err != nil {
		return err
	}
	// Interrupted, it still stops what it started (deferred below).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.limit)
	defer cancel()
	dir, err := os.MkdirTemp("", "clusternet-scale-")
	if err != nil {
		return err
	}
	if err := logTo(filepath.Join(dir, "standins.log")); err != nil {
		return err
	}
	if os.Getenv("BENCH_KEEP") == "" {
		defer func() { _ = os.RemoveAll(dir) }()
	} else {
		fmt.Fprintln(os.Stderr, "scale: keeping", dir)
	}
	res, err := measure(ctx, dir, o)
	if err != nil {
		// What was measured before the failure still tells where it stood.
		if res != nil && len(res.registration) > 0 {
			fmt.Print(scaleSection(res, o))
		}
		return err
	}
	section := scaleSection(res, o)
	fmt.Print(section)
	if o.out == "" {
		return nil
	}
	return writeSection(o.out, "scale", section)
}

// logTo sends this process's logs (the stand-ins' pull controllers, a
// thousand of them) to file rather than the terminal.
func logTo(file string) error {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL", "log_file": file} {
		if err := fs.Set(k, v); err != nil {
			return err
		}
	}
	return nil
}

// results are one run's figures.
type results struct {
	started                  time.Time
	clusters                 int
	registration             []time.Duration
	allRegistered, tunnelsUp time.Duration
	// seatsWithTunnels are the parent's non-exempt APF seats in use once
	// every tunnel is up: about one per tunnel if tunnels held seats.
	seatsWithTunnels           float64
	registrationParent         window
	registrationCPU            cpuSplit
	pull, push                 []rollout
	hubCPU                     time.Duration
	hubRSSIdle, hubRSS, hubHWM int64
	etcdBefore, etcdAfter      int64
	childRefusals              int
	elapsed                    time.Duration
	// load is the machine's load average (1, 5, 15 minutes) at the start:
	// whatever else ran shares the cores.
	load string
}

func measure(ctx context.Context, dir string, o options) (*results, error) {
	res := &results{started: time.Now(), clusters: o.clusters, load: loadAverage()}
	topts := testbed.Options{Dir: dir, Children: 2}
	if o.profile != "" {
		topts.ParentAPIServerArgs = []string{"--profiling"}
	}
	tb, err := testbed.Up(ctx, topts)
	if err != nil {
		return nil, err
	}
	defer tb.Down()
	parentCluster := tb.Parent
	if err := framework.InstallParent(ctx, parentCluster); err != nil {
		return nil, err
	}
	var hubArgs []string
	if o.registrationsPerMinute > 0 {
		hubArgs = append(hubArgs, "--registrations-per-minute="+strconv.Itoa(o.registrationsPerMinute))
	}
	if o.profile != "" {
		hubArgs = append(hubArgs, "--profiling")
	}
	hub, err := framework.StartHub(ctx, filepath.Join(dir, "hub"), framework.InDir(dir), parentCluster, o.hub, hubArgs...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = hub.Stop(10 * time.Second) }()
	cfg, err := parentCluster.RESTConfig()
	if err != nil {
		return nil, err
	}
	cs, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	res.etcdBefore = etcdSize(parentCluster.Dir)
	res.hubRSSIdle = framework.ProcMemory(hub.Pid)["VmRSS"]
	cpuStart := framework.CPUTime(hub.Pid)
	// Read before the hub stops (deferred above), on success or failure.
	defer func() {
		res.hubCPU = framework.CPUTime(hub.Pid) - cpuStart
		m := framework.ProcMemory(hub.Pid)
		res.hubRSS, res.hubHWM = m["VmRSS"], m["VmHWM"]
		res.etcdAfter = etcdSize(parentCluster.Dir)
		res.elapsed = time.Since(res.started)
	}()

	var prof *profiler
	if o.profile != "" {
		if prof, err = newProfiler(ctx, o.profile, parentCluster, hub.Port, kube); err != nil {
			return nil, err
		}
	}
	who := parties{parent: parentCluster, hub: hub.Pid, children: tb.Children}

	// The two real children: one pulls, one is pushed to.
	for i, mode := range []string{"Pull", "Dual"} {
		agent, err := testbed.StartProcess(dir, "agent-"+tb.Children[i].Name, o.agent,
			framework.AgentArgs(parentCluster, tb.Children[i], "--cluster-sync-mode="+mode)...)
		if err != nil {
			return nil, err
		}
		defer func() { _ = agent.Stop(10 * time.Second) }()
		who.agents = append(who.agents, agent.Pid)
	}

	standIns, server, err := newStandIns(parentCluster, o.clusters, &res.childRefusals)
	if err != nil {
		return nil, err
	}
	defer server.Close()
	runCtx, stopStandIns := context.WithCancel(ctx)
	defer stopStandIns()
	before, err := scrapeParent(ctx, kube)
	if err != nil {
		return nil, err
	}
	cpuBefore := who.snapshot()
	profiled := prof.cpu(ctx, "registration")
	if res.registration, res.allRegistered, err = register(runCtx, standIns, o.registering); err != nil {
		return nil, err
	}
	res.registrationCPU = cpuBefore.until(who.snapshot())
	profiled()
	after, err := scrapeParent(ctx, kube)
	if err != nil {
		return nil, err
	}
	res.registrationParent = between(before, after)
	start := time.Now()
	if err := waitClusters(ctx, cs, o.clusters+2, "Ready with the tunnel up", func(mc *clusterv1beta1.ManagedCluster) bool {
		c := meta.FindStatusCondition(mc.Status.Conditions, clusterv1beta1.ClusterReady)
		return c != nil && c.Status == metav1.ConditionTrue && mc.Status.UseSocket
	}); err != nil {
		return nil, err
	}
	res.tunnelsUp = res.allRegistered + time.Since(start)
	up, err := scrapeParent(ctx, kube)
	if err != nil {
		return nil, err
	}
	res.seatsWithTunnels = up.seats
	fmt.Fprintf(os.Stderr, "scale: %d stand-ins registered in %s, tunnels up after %s\n", o.clusters, res.allRegistered.Round(time.Millisecond), res.tunnelsUp.Round(time.Millisecond))

	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: subsNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	r, err := newRollouts(runCtx, cs, kube, dyn, who, prof, o.clusters+2)
	if err != nil {
		return nil, err
	}
	limit := o.wait

	// Pull: every stand-in applies its Descriptions itself.
	for _, s := range standIns {
		if err := s.startPulling(runCtx); err != nil {
			return nil, err
		}
	}
	for i := range o.runs {
		ro, err := r.run(ctx, "pull-"+strconv.Itoa(i), limit)
		if ro.ready > 0 {
			res.pull = append(res.pull, ro) // what it measured before failing, too
		}
		if err != nil {
			return res, fmt.Errorf("pull run %d: %w\n%s", i, err, hub.LogTail(2000))
		}
		fmt.Fprintf(os.Stderr, "scale: pull run %d: ready %s, update %s, delete %s; at Ready %s\n", i, ro.ready.Round(time.Millisecond), ro.update.Round(time.Millisecond), ro.deleted.Round(time.Millisecond), ro.renders)
	}

	// Push: the stand-ins stop pulling and report AppPusher; the hub then
	// pushes through their tunnels.
	var wg sync.WaitGroup
	for _, s := range standIns {
		wg.Go(s.stopPulling)
		s.push.Store(true)
		s.beatNow()
	}
	wg.Wait()
	ids := map[string]bool{}
	for _, s := range standIns {
		ids[string(s.id)] = true
	}
	if err := waitClusters(ctx, cs, o.clusters+2, "pushed to", func(mc *clusterv1beta1.ManagedCluster) bool {
		return !ids[mc.Labels[clusterv1beta1.LabelClusterID]] || mc.Status.AppPusher
	}); err != nil {
		return res, err
	}
	for i := range o.runs {
		ro, err := r.run(ctx, "push-"+strconv.Itoa(i), limit)
		if ro.ready > 0 {
			res.push = append(res.push, ro)
		}
		if err != nil {
			return res, fmt.Errorf("push run %d: %w\n%s", i, err, hub.LogTail(2000))
		}
		fmt.Fprintf(os.Stderr, "scale: push run %d: ready %s, update %s, delete %s; at Ready %s\n", i, ro.ready.Round(time.Millisecond), ro.update.Round(time.Millisecond), ro.deleted.Round(time.Millisecond), ro.renders)
	}
	return res, nil
}

// newStandIns makes n stand-ins and their in-memory children, served on
// one local address under /clusters/<i>.
func newStandIns(parentCluster *testbed.Cluster, n int, refusals *int) ([]*standIn, *httptest.Server, error) {
	ca, err := os.ReadFile(parentCluster.CAFile)
	if err != nil {
		return nil, nil, err
	}
	p := parent{url: parentCluster.URL, bootstrapToken: framework.BootstrapToken(parentCluster), ca: ca}
	var mu sync.Mutex
	refused := func(string, ...any) {
		mu.Lock()
		*refusals++
		mu.Unlock()
	}
	mux := http.NewServeMux()
	server := httptest.NewUnstartedServer(mux)
	server.Start()
	// The pull controllers' clients of every child share one pool of
	// connections: a watch holds one, and client-go's default keeps 2 idle.
	transport := &http.Transport{MaxIdleConnsPerHost: 4 * n, IdleConnTimeout: time.Minute}
	var out []*standIn
	for i := range n {
		child := memchild.New(memchild.Options{FieldManager: deployer.FieldManager, Errorf: refused, Rollout: true})
		for _, ns := range []string{"default", "kube-system"} {
			child.Put("/api/v1/namespaces/"+ns, map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}})
		}
		prefix := "/clusters/" + strconv.Itoa(i)
		mux.Handle(prefix+"/", http.StripPrefix(prefix, child))
		s, err := newStandIn(p, child, &rest.Config{Host: server.URL + prefix, QPS: 50, Burst: 100, Transport: transport})
		if err != nil {
			server.Close()
			return nil, nil, err
		}
		out = append(out, s)
	}
	return out, server, nil
}

// register starts the stand-ins, at most at once of them registering at a
// time (0: all at once), and returns each one's registration time and the
// total. Every registering agent polls its request several times a second
// with the shared bootstrap token, whose requests the parent's API Priority
// and Fairness keeps to a small priority level of their own
// (deploy/hub/flowcontrol.yaml): a thousand at once mostly wait there.
func register(ctx context.Context, standIns []*standIn, atOnce int) ([]time.Duration, time.Duration, error) {
	errs := make(chan error, len(standIns))
	if atOnce <= 0 {
		atOnce = len(standIns)
	}
	slots := make(chan struct{}, atOnce)
	start := time.Now()
	go func() {
		for _, s := range standIns {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go s.run(ctx, func(err error) {
				<-slots
				errs <- err
			})
		}
	}()
	var failed []error
	for range standIns {
		select {
		case err := <-errs:
			if err != nil {
				failed = append(failed, err)
			}
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("registering: %w", ctx.Err())
		}
	}
	total := time.Since(start)
	if len(failed) > 0 {
		return nil, 0, fmt.Errorf("%d of %d stand-ins did not register; first: %w", len(failed), len(standIns), failed[0])
	}
	d := make([]time.Duration, 0, len(standIns))
	for _, s := range standIns {
		d = append(d, s.registered)
	}
	slices.Sort(d)
	return d, total, nil
}

// waitClusters waits, for up to 5 minutes, until want ManagedClusters
// exist and ok holds of each.
func waitClusters(ctx context.Context, cs versioned.Interface, want int, what string, ok func(*clusterv1beta1.ManagedCluster) bool) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := cs.ClustersV1beta1().ManagedClusters("").List(ctx, metav1.ListOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		good := 0
		for i := range list.Items {
			if ok(&list.Items[i]) {
				good++
			}
		}
		last = fmt.Sprintf("%d of %d ManagedClusters (%d wanted) %s", good, len(list.Items), want, what)
		return len(list.Items) == want && good == want, nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", last, err)
	}
	return nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// writeSection puts section between path's <!-- bench:NAME --> markers, or
// appends it with them, leaving the rest of the file as it is.
func writeSection(path, name, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	begin, end := "<!-- bench:"+name+" -->", "<!-- /bench:"+name+" -->"
	text, block := string(old), begin+"\n"+section+end
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		return os.WriteFile(path, []byte(strings.TrimRight(text, "\n")+"\n\n"+block+"\n"), 0o644)
	}
	return os.WriteFile(path, []byte(text[:i]+block+text[j+len(end):]), 0o644)
}
