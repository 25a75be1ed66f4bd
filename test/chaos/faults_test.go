package chaos

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
)

// stats are the figures the run prints at its end.
type stats struct {
	faults         map[string]int
	rollouts       map[string]int
	writeFailures  int
	failedAttempts int
	observations   int
	armed          int
	checkpoints    int
	violations     int
	deployedEvents map[int]int
	// tunnel back after a restart, by what was restarted
	tunnelBack map[string][]time.Duration
	memory     map[string]*memSeries
}

type memSeries struct {
	first, last, max memSample
	samples          int
}

type memSample struct {
	pid        int
	rssKiB     int64
	goroutines int // -1: not known
}

// A fault is injected and recovered from before the next one.
type fault struct {
	name   string
	weight int
	run    func(w *world, ctx context.Context, rng *rand.Rand) (string, error)
}

var faults = []fault{
	{"hub-kill", 2, (*world).killHub},
	{"agent-kill", 3, (*world).killAgent},
	{"child-apiserver-kill", 2, (*world).killChildAPIServer},
	{"parent-apiserver-kill", 1, (*world).killParentAPIServer},
	{"child-etcd-kill", 2, (*world).killChildEtcd},
	{"tunnel-cut", 2, (*world).cutTunnel},
	{"tunnel-slow", 2, (*world).slowTunnel},
}

// tunnelBound is how soon after its agent restarts a cluster's tunnel must
// carry requests again.
const tunnelBound = 5 * time.Second

func (w *world) killHub(ctx context.Context, rng *rand.Rand) (string, error) {
	if err := w.hub.Kill(); err != nil {
		return "", err
	}
	start := time.Now()
	if err := w.hub.Restart(); err != nil {
		return "", err
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		if w.hub.Exited() {
			return false, fmt.Errorf("the restarted hub exited:\n%s", w.hub.LogTail(3000))
		}
		_, err := w.kube.Discovery().RESTClient().Get().AbsPath("/apis/proxies.clusternet.io/v1alpha1").Timeout(2 * time.Second).DoRaw(ctx)
		return err == nil, nil
	})
	if err != nil {
		return "", fmt.Errorf("hub not serving through the parent after its restart: %w", err)
	}
	served := time.Since(start)
	var back []string
	for _, c := range w.children {
		d, err := w.waitTunnel(ctx, c, start, 60*time.Second)
		if err != nil {
			return "", fmt.Errorf("tunnel of %s not back after the hub restart: %w", c.Cluster.Name, err)
		}
		w.addTunnelBack("hub restart", d)
		back = append(back, fmt.Sprintf("%s %s", c.Cluster.Name, d.Round(time.Millisecond)))
	}
	return fmt.Sprintf("hub (pid %d) serving after %s; tunnels back: %s", w.hub.Pid, served.Round(time.Millisecond), strings.Join(back, ", ")), nil
}

func (w *world) addTunnelBack(what string, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.tunnelBack[what] = append(w.stats.tunnelBack[what], d)
}

func (w *world) killAgent(ctx context.Context, rng *rand.Rand) (string, error) {
	c := w.children[rng.IntN(len(w.children))]
	// Measured from a working tunnel: what is timed is the restart alone.
	if _, err := w.waitTunnel(ctx, c, time.Now(), 60*time.Second); err != nil {
		return "", fmt.Errorf("tunnel of %s not up before killing its agent: %w", c.Cluster.Name, err)
	}
	old := c.agent
	if err := old.Kill(); err != nil {
		return "", err
	}
	p, err := old.Restart()
	if err != nil {
		return "", err
	}
	c.agent = p
	start := time.Now()
	d, err := w.waitTunnel(ctx, c, start, 60*time.Second)
	if err != nil {
		return "", fmt.Errorf("tunnel of %s not back after its agent restarted: %w\n%s", c.Cluster.Name, err, p.LogTail(3000))
	}
	w.addTunnelBack("agent restart", d)
	if d > tunnelBound {
		w.violate(fmt.Sprintf("tunnel/%s/%d", c.Name, p.Pid), "%s: tunnel back %s after its agent restarted (pid %d), bound %s", c.Cluster.Name, d.Round(time.Millisecond), p.Pid, tunnelBound)
	}
	return fmt.Sprintf("agent of %s (%s) restarted as pid %d; tunnel back after %s", c.Cluster.Name, c.mode.mode, p.Pid, d.Round(time.Millisecond)), nil
}

func (w *world) killChildAPIServer(ctx context.Context, rng *rand.Rand) (string, error) {
	c := w.children[rng.IntN(len(w.children))]
	start := time.Now()
	if err := c.KillAndRestart(ctx, "kube-apiserver"); err != nil {
		return "", err
	}
	return fmt.Sprintf("kube-apiserver of %s ready again after %s", c.Cluster.Name, time.Since(start).Round(time.Millisecond)), nil
}

func (w *world) killParentAPIServer(ctx context.Context, rng *rand.Rand) (string, error) {
	start := time.Now()
	if err := w.parent.KillAndRestart(ctx, "kube-apiserver"); err != nil {
		return "", err
	}
	return fmt.Sprintf("parent kube-apiserver ready again after %s", time.Since(start).Round(time.Millisecond)), nil
}

func (w *world) killChildEtcd(ctx context.Context, rng *rand.Rand) (string, error) {
	c := w.children[rng.IntN(len(w.children))]
	start := time.Now()
	if err := c.KillAndRestart(ctx, "etcd"); err != nil {
		return "", err
	}
	return fmt.Sprintf("etcd of %s (data kept) healthy again after %s", c.Cluster.Name, time.Since(start).Round(time.Millisecond)), nil
}

// hold waits d: how long a cut or a slow tunnel lasts (a fault's length,
// not a synchronization).
func hold(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (w *world) cutTunnel(ctx context.Context, rng *rand.Rand) (string, error) {
	c := w.children[rng.IntN(len(w.children))]
	d := time.Duration(2000+rng.IntN(8000)) * time.Millisecond
	n := c.proxy.Cut()
	hold(ctx, d)
	c.proxy.Restore()
	start := time.Now()
	back, err := w.waitTunnel(ctx, c, start, 90*time.Second)
	if err != nil {
		return "", fmt.Errorf("tunnel of %s not back after a cut: %w", c.Cluster.Name, err)
	}
	w.addTunnelBack("cut restored", back)
	return fmt.Sprintf("connections of %s's agent cut for %s (%d dropped); tunnel back %s after", c.Cluster.Name, d, n, back.Round(time.Millisecond)), nil
}

func (w *world) slowTunnel(ctx context.Context, rng *rand.Rand) (string, error) {
	c := w.children[rng.IntN(len(w.children))]
	latency := time.Duration(100+rng.IntN(400)) * time.Millisecond
	d := time.Duration(5000+rng.IntN(10000)) * time.Millisecond
	c.proxy.SetLatency(latency)
	hold(ctx, d)
	c.proxy.SetLatency(0)
	return fmt.Sprintf("connections of %s's agent slowed by %s each way for %s", c.Cluster.Name, latency, d), nil
}

// --- memory and goroutines ---

func rssKiB(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

// hubGoroutines reads go_goroutines from the hub's /metrics (-1 if it cannot).
func (w *world) hubGoroutines(ctx context.Context) int {
	rt, err := rest.TransportFor(w.hubRest)
	if err != nil {
		return -1
	}
	return w.goroutines(ctx, rt, w.hubRest.Host+"/metrics")
}

// goroutines reads go_goroutines from a Prometheus endpoint (-1 if it cannot).
func (w *world) goroutines(ctx context.Context, rt http.RoundTripper, url string) int {
	client := &http.Client{Transport: rt, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return -1
	}
	resp, err := client.Do(req)
	if err != nil {
		w.record("%s: %v", url, err)
		return -1
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		w.record("%s: %s", url, resp.Status)
		return -1
	}
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "go_goroutines "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return int(f)
			}
		}
	}
	return -1
}

// sampleMemory records the RSS of the hub and the agents (and the hub's
// goroutines) at a settled checkpoint.
func (w *world) sampleMemory(ctx context.Context) {
	samples := map[string]memSample{"hub": {pid: w.hub.Pid, rssKiB: rssKiB(w.hub.Pid), goroutines: w.hubGoroutines(ctx)}}
	for _, c := range w.children {
		samples["agent-"+c.Cluster.Name] = memSample{pid: c.agent.Pid, rssKiB: rssKiB(c.agent.Pid),
			goroutines: w.goroutines(ctx, &http.Transport{}, c.metricsURL)}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, s := range samples {
		m := w.stats.memory[name]
		if m == nil {
			m = &memSeries{first: s, max: s}
			w.stats.memory[name] = m
		}
		m.last = s
		m.samples++
		if s.rssKiB > m.max.rssKiB {
			m.max.rssKiB, m.max.pid = s.rssKiB, s.pid
		}
		if s.goroutines > m.max.goroutines {
			m.max.goroutines = s.goroutines
		}
	}
}

// Bounds on growth from the first settled checkpoint: generous, since the
// processes are restarted, caches fill and the machine is shared; a leak of
// a transport, a watch or a tunnel per fault exceeds them within the
// faults of a short run.
const (
	rssGrowthFactor   = 2
	rssGrowthSlackKiB = 100 * 1024
	goroutineFactor   = 2
	goroutineSlack    = 200
)

func (w *world) checkMemory() {
	type finding struct{ key, msg string }
	var found []finding
	w.mu.Lock()
	for name, m := range w.stats.memory {
		if limit := m.first.rssKiB*rssGrowthFactor + rssGrowthSlackKiB; m.first.rssKiB > 0 && m.max.rssKiB > limit {
			found = append(found, finding{"rss/" + name, fmt.Sprintf("%s: RSS grew from %d MiB to %d MiB (pid %d), bound %d MiB", name, m.first.rssKiB/1024, m.max.rssKiB/1024, m.max.pid, limit/1024)})
		}
		if limit := m.first.goroutines*goroutineFactor + goroutineSlack; m.first.goroutines > 0 && m.max.goroutines > limit {
			found = append(found, finding{"goroutines/" + name, fmt.Sprintf("%s: goroutines grew from %d to %d, bound %d", name, m.first.goroutines, m.max.goroutines, limit)})
		}
	}
	w.mu.Unlock()
	for _, f := range found {
		w.violate(f.key, "%s", f.msg)
	}
}

// --- the run ---

// checkpoint pauses rollouts and faults, writes what failed to be written,
// waits for everything to converge within -chaos.converge, arms the uid
// checks and checks appliers and memory.
func (w *world) checkpoint(ctx context.Context, what string) {
	w.opLock.Lock()
	defer w.opLock.Unlock()
	start := time.Now()
	if err := w.flushDirty(ctx, *flagConverge); err != nil {
		w.violate("write/"+what, "checkpoint %s: the parent did not take the model's writes within %s: %v", what, *flagConverge, err)
	}
	var why string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, *flagConverge, true, func(ctx context.Context) (bool, error) {
		var ok bool
		ok, why = w.converged(ctx)
		return ok, nil
	})
	if err != nil {
		w.violate("converge/"+what, "checkpoint %s: not converged %s after faults and rollouts paused: %s", what, *flagConverge, why)
	}
	w.observeOnce(ctx, true)
	w.checkAppliers(ctx)
	w.sampleMemory(ctx)
	w.mu.Lock()
	w.stats.checkpoints++
	w.mu.Unlock()
	w.mu.Lock()
	boundPairs, unboundPairs, armed, helmAt := 0, 0, 0, helmVersion(w.helm.version)
	for _, a := range w.apps {
		for i, p := range a.pairs {
			if a.bound(i) {
				boundPairs++
			} else {
				unboundPairs++
			}
			if p.armed {
				armed++
			}
		}
	}
	w.mu.Unlock()
	msg := fmt.Sprintf("checkpoint %s: converged in %s (%d application-cluster pairs bound, %d of them armed, %d unbound and empty; Helm at %s)",
		what, time.Since(start).Round(time.Millisecond), boundPairs, armed, unboundPairs, helmAt)
	w.record("%s", msg)
	w.t.Logf("chaos: %s", msg)
}

// superviseProcesses notices a hub or agent that exited on its own (no
// fault killed it): a crash is a finding; it is restarted to go on.
func (w *world) superviseProcesses() {
	if w.hub.Exited() {
		w.violate(fmt.Sprintf("exit/hub/%d", w.hub.Pid), "the hub (pid %d) exited on its own:\n%s", w.hub.Pid, w.hub.LogTail(3000))
		_ = w.hub.Restart()
	}
	for _, c := range w.children {
		if c.agent.Exited() {
			w.violate(fmt.Sprintf("exit/agent/%d", c.agent.Pid), "the agent of %s (pid %d) exited on its own:\n%s", c.Cluster.Name, c.agent.Pid, c.agent.LogTail(3000))
			if p, err := c.agent.Restart(); err == nil {
				c.agent = p
			}
		}
	}
}

func (w *world) run(ctx context.Context) {
	t := w.t
	w.stats = stats{faults: map[string]int{}, rollouts: map[string]int{}, deployedEvents: map[int]int{},
		tunnelBack: map[string][]time.Duration{}, memory: map[string]*memSeries{}}
	faultRng := rand.New(rand.NewPCG(w.seed, 1))
	rolloutRng := rand.New(rand.NewPCG(w.seed, 2))

	// Every application created and the Helm release installed before any fault.
	for _, a := range w.apps {
		w.mu.Lock()
		desc := w.mutate(rolloutRng, a, "create")
		w.mu.Unlock()
		if err := w.ensure(ctx, a, 2*time.Minute); err != nil {
			t.Fatalf("creating %s: %v", a.name, err)
		}
		w.record("rollout: create %s: %s", a.name, desc)
	}
	if err := w.ensureHelm(ctx, 2*time.Minute); err != nil {
		t.Fatalf("creating the Helm application: %v", err)
	}
	obsCtx, stopObserving := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Go(func() { w.observe(obsCtx, 2*time.Second) })
	defer func() { stopObserving(); bg.Wait() }()
	w.checkpoint(ctx, "baseline")
	if t.Failed() {
		t.FailNow()
	}

	driveCtx, stopDriving := context.WithCancel(ctx)
	var driver sync.WaitGroup
	driver.Go(func() { w.drive(driveCtx, rolloutRng) })

	total := 0
	for _, f := range faults {
		total += f.weight
	}
	start := time.Now()
	injected := 0
	for time.Since(start) < *flagDuration || injected < *flagMinFaults {
		n := faultRng.IntN(total)
		var f fault
		for _, f = range faults {
			if n -= f.weight; n < 0 {
				break
			}
		}
		w.superviseProcesses()
		fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		t0 := time.Now()
		what, err := f.run(w, fctx, faultRng)
		cancel()
		injected++
		w.mu.Lock()
		w.stats.faults[f.name]++
		w.mu.Unlock()
		if err != nil {
			// What follows would only pile up on this: stop here.
			w.violate(fmt.Sprintf("fault/%d", injected), "fault %d (%s): no recovery: %v", injected, f.name, err)
			stopDriving()
			driver.Wait()
			w.summary(time.Since(start))
			return
		}
		w.record("fault %d %s: %s (%s)", injected, f.name, what, time.Since(t0).Round(time.Millisecond))
		t.Logf("chaos: fault %d %s: %s", injected, f.name, what)
		if injected%*flagCheckpoint == 0 {
			w.checkpoint(ctx, fmt.Sprintf("after fault %d", injected))
		}
		// Pacing: the next fault comes 0.2–2 s later.
		hold(ctx, time.Duration(200+faultRng.IntN(1800))*time.Millisecond)
	}
	stopDriving()
	driver.Wait()
	for _, c := range w.children {
		c.proxy.Restore()
		c.proxy.SetLatency(0)
	}
	w.superviseProcesses()
	elapsed := time.Since(start)
	w.checkpoint(ctx, "final")
	w.checkMemory()
	w.summary(elapsed)
}

func (w *world) summary(elapsed time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	var b strings.Builder
	fmt.Fprintf(&b, "chaos summary\n  seed:        %d\n  duration:    %s of faults and rollouts (plus setup and checkpoints)\n", w.seed, elapsed.Round(time.Second))
	nf, nr := 0, 0
	for _, n := range s.faults {
		nf += n
	}
	for _, n := range s.rollouts {
		nr += n
	}
	fmt.Fprintf(&b, "  faults:      %d %s\n", nf, counts(s.faults))
	fmt.Fprintf(&b, "  rollouts:    %d %s (write attempts refused or lost to a fault and retried: %d; writes given up for later: %d)\n", nr, counts(s.rollouts), s.failedAttempts, s.writeFailures)
	fmt.Fprintf(&b, "  checks:      %d observations of the children, %d bindings armed for uid tracking, %d converged checkpoints\n", s.observations, s.armed, s.checkpoints)
	var ev []string
	for _, c := range w.children {
		ev = append(ev, fmt.Sprintf("%s(%s→%s) %d", c.Cluster.Name, c.mode.mode, c.mode.applier, s.deployedEvents[c.idx]))
	}
	fmt.Fprintf(&b, "  appliers:    SuccessfullyDeployed events, all from the mode's applier: %s\n", strings.Join(ev, ", "))
	for _, what := range sortedKeys(s.tunnelBack, strings.Compare) {
		d := slices.Clone(s.tunnelBack[what])
		slices.Sort(d)
		fmt.Fprintf(&b, "  tunnel back after %s: n=%d median %s max %s\n", what, len(d), d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
	}
	for _, name := range sortedKeys(s.memory, strings.Compare) {
		m := s.memory[name]
		g := ""
		if m.first.goroutines >= 0 {
			g = fmt.Sprintf("; goroutines first %d, last %d, max %d", m.first.goroutines, m.last.goroutines, m.max.goroutines)
		}
		fmt.Fprintf(&b, "  %-13s RSS first %d MiB (pid %d), last %d MiB (pid %d), max %d MiB over %d checkpoints%s\n", name+":",
			m.first.rssKiB/1024, m.first.pid, m.last.rssKiB/1024, m.last.pid, m.max.rssKiB/1024, m.samples, g)
	}
	fmt.Fprintf(&b, "  violations:  %d\n", s.violations)
	w.t.Log(b.String())
}

func counts(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m, strings.Compare) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return "(" + strings.Join(parts, " ") + ")"
}
