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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/clusternet/clusternet/pkg/server/hub/peers"
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
	// hub replicas killed, and of those the ones holding the controllers'
	// Lease, by replica; how long after a leader's kill another took it
	hubKills, leaderKills map[string]int
	handOvers             []time.Duration
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

// The hubs' leader election Lease: "clusternet-hub" in
// --leader-elect-resource-namespace (pkg/server/hub, the chart's release
// namespace).
const (
	hubNamespace     = "clusternet-system"
	controllersLease = "clusternet-hub"
)

func hubName(i int) string { return fmt.Sprintf("hub-%d", i) }

// lease reads the holder identity and transitions of a Lease of the hubs'
// namespace ("" when nobody holds it).
func (w *world) lease(ctx context.Context, name string) (string, int32, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := w.kube.CoordinationV1().Leases(hubNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", 0, err
	}
	return ptr.Deref(l.Spec.HolderIdentity, ""), ptr.Deref(l.Spec.LeaseTransitions, 0), nil
}

// holderReplica is the index of the running replica a Lease's holder
// identity names ("<host>_<pid>": pkg/server/hub replicaIdentity), or -1.
func (w *world) holderReplica(holder string) int {
	for i, h := range w.hubs.Replicas {
		if !h.Exited() && strings.HasSuffix(holder, "_"+strconv.Itoa(h.Pid)) {
			return i
		}
	}
	return -1
}

// waitLeader waits until a running replica holds the controllers' Lease
// and returns its index and the Lease's transitions.
func (w *world) waitLeader(ctx context.Context, limit time.Duration) (int, int32, error) {
	leader, transitions, last := -1, int32(0), ""
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, limit, true, func(ctx context.Context) (bool, error) {
		holder, tr, err := w.lease(ctx, controllersLease)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		leader, transitions, last = w.holderReplica(holder), tr, fmt.Sprintf("held by %q", holder)
		return leader >= 0, nil
	})
	if err != nil {
		return -1, 0, fmt.Errorf("no running replica holds Lease %s/%s within %s (last: %s): %w", hubNamespace, controllersLease, limit, last, err)
	}
	return leader, transitions, nil
}

// killHub SIGKILLs one replica, the seeded stream's pick by index (the
// leader or not, as it happens), measures the tunnels through the other
// one, restarts it on the same port, waits until it serves every cluster's
// tunnel itself (forwarding to the holder), and, when it held the
// controllers' Lease, until another replica took it.
func (w *world) killHub(ctx context.Context, rng *rand.Rand) (string, error) {
	i := rng.IntN(len(w.hubs.Replicas))
	h, name := w.hubs.Replicas[i], hubName(i)
	// Measured from working tunnels and a running leader: what is timed is
	// the kill alone.
	for _, c := range w.children {
		if _, err := w.waitTunnel(ctx, c, time.Now(), 60*time.Second); err != nil {
			return "", fmt.Errorf("tunnel of %s not up before killing %s: %w", c.Cluster.Name, name, err)
		}
	}
	leader, transitions, err := w.waitLeader(ctx, 60*time.Second)
	if err != nil {
		return "", fmt.Errorf("before killing %s: %w", name, err)
	}
	wasLeader := leader == i
	held := map[int]bool{} // children whose tunnel the killed replica holds
	for _, c := range w.children {
		if holder, _, err := w.lease(ctx, peers.LeasePrefix+c.ID); err == nil && w.holderReplica(holder) == i {
			held[c.idx] = true
		}
	}
	oldPid := h.Pid
	if err := h.Kill(); err != nil {
		return "", err
	}
	killed := time.Now()
	w.mu.Lock()
	w.stats.hubKills[name]++
	if wasLeader {
		w.stats.leaderKills[name]++
	}
	w.mu.Unlock()

	// The other replica alone, through the parent and the balancer: every
	// cluster polled at once, each from the kill.
	waits := make([]time.Duration, len(w.children))
	errs := make([]error, len(w.children))
	var polls sync.WaitGroup
	for k, c := range w.children {
		polls.Go(func() { waits[k], errs[k] = w.waitTunnel(ctx, c, killed, 60*time.Second) })
	}
	polls.Wait()
	var back []string
	for k, c := range w.children {
		if errs[k] != nil {
			return "", fmt.Errorf("tunnel of %s not back through the other replica after %s (pid %d) was killed: %w\n%s", c.Cluster.Name, name, oldPid, errs[k], w.hubs.LogTail(3000))
		}
		d, where := waits[k], "on the other"
		if held[c.idx] {
			where = "on it"
		}
		// Reported, not bounded like an agent's restart: an agent whose
		// tunnel dropped less than a minute before waits up to 2.6 s
		// between tries (pkg/server/agent reconnectBackoff), and hub
		// kills come seconds apart here.
		w.addTunnelBack("replica kill (tunnel "+where+")", d)
		back = append(back, fmt.Sprintf("%s (tunnel %s) %s", c.Cluster.Name, where, d.Round(time.Millisecond)))
	}

	// Restarted on the same port: it serves once a request for every
	// cluster's tunnel made to it directly succeeds (forwarded to the
	// replica holding the tunnel, or through its own).
	if err := h.Restart(); err != nil {
		return "", err
	}
	restarted := time.Now()
	for _, c := range w.children {
		var last error
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
			if h.Exited() {
				return false, fmt.Errorf("%s exited after its restart:\n%s", name, h.LogTail(3000))
			}
			last = w.replicaTunnelUp(ctx, i, c)
			return last == nil, nil
		})
		if err != nil {
			return "", fmt.Errorf("%s (pid %d) not serving the tunnel of %s after its restart: %w (last: %w)", name, h.Pid, c.Cluster.Name, err, last)
		}
	}
	served := time.Since(restarted)
	w.addTunnelBack("replica restart (asked directly)", served)

	// The controllers' Lease: a SIGKILLed leader never gives it up, so
	// another replica takes it once it expired (no renewal for the lease
	// duration); a replica that did not hold it leaves it where it is.
	var lease string
	if wasLeader {
		j, _, err := w.waitLeader(ctx, 2*w.leaseDuration+time.Minute)
		if err != nil {
			return "", fmt.Errorf("after the leader %s (pid %d) was killed: %w\n%s", name, oldPid, err, w.hubs.LogTail(3000))
		}
		d := time.Since(killed)
		w.mu.Lock()
		w.stats.handOvers = append(w.stats.handOvers, d)
		w.mu.Unlock()
		if bound := 2 * w.leaseDuration; d > bound {
			w.violate(fmt.Sprintf("handover/%s/%d", name, oldPid), "the controllers' Lease was taken %s after its holder %s (pid %d) was killed, bound %s (twice the lease duration)", d.Round(time.Millisecond), name, oldPid, bound)
		}
		lease = fmt.Sprintf("the lease taken by %s (pid %d) %s after the kill", hubName(j), w.hubs.Replicas[j].Pid, d.Round(time.Millisecond))
	} else {
		holder, tr, err := w.lease(ctx, controllersLease)
		switch j := w.holderReplica(holder); {
		case err != nil:
			lease = fmt.Sprintf("the lease not read: %v", err)
		case j == leader && tr == transitions:
			lease = fmt.Sprintf("the lease stayed with %s", hubName(leader))
		default:
			// Not a violation by itself (the leader may have lost a renewal
			// to a slow parent), but worth seeing next to the kill.
			lease = fmt.Sprintf("the lease moved from %s to %q (transitions %d -> %d)", hubName(leader), holder, transitions, tr)
		}
	}
	role := "not the leader"
	if wasLeader {
		role = "the leader"
	}
	return fmt.Sprintf("%s (pid %d, %s, %d of %d tunnels) killed; tunnels back through the other replica: %s; restarted as pid %d, serving every tunnel after %s; %s",
		name, oldPid, role, len(held), len(w.children), strings.Join(back, ", "), h.Pid, served.Round(time.Millisecond), lease), nil
}

// replicaTunnelUp is whether a request made to replica i directly (not
// through the parent) reaches c's apiserver through c's tunnel.
func (w *world) replicaTunnelUp(ctx context.Context, i int, c *child) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := w.hubKube[i].Discovery().RESTClient().Get().
		AbsPath("/apis/proxies.clusternet.io/v1alpha1/sockets", c.ID, "proxy/direct/version").Timeout(2 * time.Second).DoRaw(ctx)
	return err
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

// hubGoroutines reads go_goroutines from replica i's /metrics (-1 if it cannot).
func (w *world) hubGoroutines(ctx context.Context, i int) int {
	rt, err := rest.TransportFor(w.hubRest[i])
	if err != nil {
		return -1
	}
	return w.goroutines(ctx, rt, w.hubRest[i].Host+"/metrics")
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

// sampleMemory records the RSS and goroutines of each hub replica and
// agent at a settled checkpoint.
func (w *world) sampleMemory(ctx context.Context) {
	samples := map[string]memSample{}
	for i, h := range w.hubs.Replicas {
		samples[hubName(i)] = memSample{pid: h.Pid, rssKiB: rssKiB(h.Pid), goroutines: w.hubGoroutines(ctx, i)}
	}
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
// observeTimeout bounds one look at the world, apart from the bound a
// checkpoint waits for.
const observeTimeout = 30 * time.Second

// awaitConverged looks at the world every interval until converged says
// it has converged or bound has passed, and says why not. Each look gets
// its own timeout rather than the bound's deadline: a look that starts as
// that deadline passes fails at once in the clients' rate limiters ("would
// exceed context deadline"), and its error would replace the reason every
// earlier look gave. A look cut short by the end of the run keeps the
// previous reason for the same cause.
func awaitConverged(ctx context.Context, bound, interval time.Duration, converged func(context.Context) (bool, string)) (bool, string) {
	look := func() (bool, string) {
		lctx, cancel := context.WithTimeout(ctx, observeTimeout)
		defer cancel()
		return converged(lctx)
	}
	deadline := time.Now().Add(bound)
	var why string
	for {
		ok, reason := look()
		if ok {
			return true, ""
		}
		if ctx.Err() == nil || why == "" {
			why = reason
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			return false, why
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

func (w *world) checkpoint(ctx context.Context, what string) {
	w.opLock.Lock()
	defer w.opLock.Unlock()
	start := time.Now()
	if err := w.flushDirty(ctx, *flagConverge); err != nil {
		w.violate("write/"+what, "checkpoint %s: the parent did not take the model's writes within %s: %v", what, *flagConverge, err)
	}
	converged, why := awaitConverged(ctx, *flagConverge, 500*time.Millisecond, w.converged)
	if !converged {
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
	outcome := "converged in"
	if !converged {
		outcome = "NOT converged after"
	}
	msg := fmt.Sprintf("checkpoint %s: %s %s (%d application-cluster pairs bound, %d of them armed, %d unbound and empty; Helm at %s)",
		what, outcome, time.Since(start).Round(time.Millisecond), boundPairs, armed, unboundPairs, helmAt)
	w.record("%s", msg)
	w.t.Logf("chaos: %s", msg)
}

// superviseProcesses notices a hub replica or agent that exited on its own
// (no fault killed it): a crash is a finding; it is restarted to go on.
func (w *world) superviseProcesses() {
	for i, h := range w.hubs.Replicas {
		if h.Exited() {
			w.violate(fmt.Sprintf("exit/%s/%d", hubName(i), h.Pid), "%s (pid %d) exited on its own:\n%s", hubName(i), h.Pid, h.LogTail(3000))
			_ = h.Restart()
		}
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
		tunnelBack: map[string][]time.Duration{}, memory: map[string]*memSeries{}, hubKills: map[string]int{}, leaderKills: map[string]int{}}
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
	var kills []string
	for i := range w.hubs.Replicas {
		name := hubName(i)
		kills = append(kills, fmt.Sprintf("%s %d (%d holding the lease)", name, s.hubKills[name], s.leaderKills[name]))
	}
	handOver := "none"
	if d := slices.Clone(s.handOvers); len(d) > 0 {
		slices.Sort(d)
		handOver = fmt.Sprintf("n=%d median %s max %s", len(d), d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "  hub kills:   %s; lease taken over after a leader kill: %s (lease duration %s)\n", strings.Join(kills, ", "), handOver, w.leaseDuration)
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
