package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/clusternet/clusternet/test/framework"
)

// The incompressible LIST: listConfigMaps ConfigMaps of listConfigMapBytes
// random lowercase letters each (10 MB of JSON that gzip shrinks only to
// about 60%), as a user tried it (issue 16). Repeated letters would hide
// what compressing costs: gzip shrinks them a thousandfold.
const (
	listConfigMaps     = 100
	listConfigMapBytes = 100 << 10
	listNamespace      = "bench-random"
	// listRuns LISTs are timed per mode and path, after one to warm up.
	listRuns = 5
	// concurrentClients GET in parallel for concurrentFor, per path.
	concurrentClients = 100
	concurrentFor     = 5 * time.Second
)

// encodingMode is what a client asks for: how it sets Accept-Encoding and
// whether its transport decompresses.
type encodingMode struct {
	name string
	// disableCompression stops Go's transport from adding
	// "Accept-Encoding: gzip" (and decompressing) itself.
	disableCompression bool
	// acceptEncoding, when set, is sent as is.
	acceptEncoding string
}

var encodingModes = []encodingMode{
	{name: "no Accept-Encoding (rest.Config DisableCompression)", disableCompression: true},
	{name: "Accept-Encoding: identity", disableCompression: true, acceptEncoding: "identity"},
	{name: "gzip (client-go's default: Go's transport asks and decompresses)"},
}

// proc is a process whose CPU time the LIST rows report.
type proc struct {
	name string
	pid  int
}

// listRun is one mode's LIST, direct and proxied: p50 wall time and CPU per
// LIST in each process (in procs' order).
type listRun struct {
	mode                  encodingMode
	bytes                 int
	directP50, proxyP50   time.Duration
	directCPU, proxyCPU   []time.Duration
	directGzip, proxyGzip bool
	procNames             []string
}

func benchIncompressibleList(ctx context.Context, agent *agentProcess, directCfg, proxyCfg *rest.Config, procs []proc) ([]listRun, error) {
	if _, err := agent.child.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: listNamespace}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(16, 16))
	letters := make([]byte, listConfigMapBytes)
	for i := range listConfigMaps {
		for j := range letters {
			letters[j] = 'a' + byte(rng.IntN(26))
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "random-" + strconv.Itoa(i)}, Data: map[string]string{"letters": string(letters)}}
		if _, err := agent.child.CoreV1().ConfigMaps(listNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}
	var runs []listRun
	for _, mode := range encodingModes {
		run := listRun{mode: mode}
		for _, p := range procs {
			run.procNames = append(run.procNames, p.name)
		}
		var err error
		if run.directP50, run.directCPU, run.bytes, run.directGzip, err = timeLists(ctx, directCfg, mode, procs); err != nil {
			return nil, fmt.Errorf("direct LIST, %s: %w", mode.name, err)
		}
		if run.proxyP50, run.proxyCPU, _, run.proxyGzip, err = timeLists(ctx, proxyCfg, mode, procs); err != nil {
			return nil, fmt.Errorf("proxied LIST, %s: %w", mode.name, err)
		}
		runs = append(runs, run)
	}
	return runs, nil
}

// timeLists LISTs the random ConfigMaps listRuns times (after a warm-up)
// and returns the p50, each process's CPU per LIST, the bytes the client
// read and whether the response came gzipped.
func timeLists(ctx context.Context, base *rest.Config, mode encodingMode, procs []proc) (p50 time.Duration, cpu []time.Duration, n int, gzipped bool, err error) {
	cfg := rest.CopyConfig(base)
	cfg.DisableCompression = mode.disableCompression
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return 0, nil, 0, false, err
	}
	url := cfg.Host + "/api/v1/namespaces/" + listNamespace + "/configmaps"
	list := func() (int, bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, false, err
		}
		req.Header.Set("Accept", "application/json")
		if mode.acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", mode.acceptEncoding)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, false, err
		}
		defer func() { _ = resp.Body.Close() }()
		n, err := io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return 0, false, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return int(n), resp.Uncompressed || resp.Header.Get("Content-Encoding") == "gzip", err
	}
	if _, _, err := list(); err != nil {
		return 0, nil, 0, false, err
	}
	before := cpuTimes(procs)
	var d []time.Duration
	for range listRuns {
		start := time.Now()
		if n, gzipped, err = list(); err != nil {
			return 0, nil, 0, false, err
		}
		d = append(d, time.Since(start))
	}
	after := cpuTimes(procs)
	for i := range procs {
		cpu = append(cpu, (after[i]-before[i])/listRuns)
	}
	slices.Sort(d)
	return percentile(d, 0.5), cpu, n, gzipped, nil
}

func cpuTimes(procs []proc) []time.Duration {
	var t []time.Duration
	for _, p := range procs {
		t = append(t, framework.CPUTime(p.pid))
	}
	return t
}

// concurrentGets runs concurrentClients goroutines GETting a small object
// through client for concurrentFor and returns requests per second.
func concurrentGets(ctx context.Context, client *http.Client, base string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, concurrentFor)
	defer cancel()
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, concurrentClients)
	start := time.Now()
	for range concurrentClients {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := get(ctx, client, base+"/api/v1/namespaces/default"); err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		return 0, fmt.Errorf("one of %d concurrent clients: %w", concurrentClients, err)
	}
	return float64(done.Load()) / elapsed.Seconds(), nil
}

// echoTarget is a plain http server the agent may dial (proxy/http/<host>,
// --proxy-allowed-hosts): it records the Accept-Encoding each request
// arrived with, after the parent, the hub and the agent.
type echoTarget struct {
	*httptest.Server
	host string
	mu   sync.Mutex
	seen []string
}

func newEchoTarget() *echoTarget {
	e := &echoTarget{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen = append(e.seen, r.Header.Get("Accept-Encoding"))
		e.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	e.host = strings.TrimPrefix(e.URL, "http://")
	if _, port, err := net.SplitHostPort(e.host); err == nil {
		e.host = "127.0.0.1:" + port
	}
	return e
}

// hopHeaders is, for one client mode, the Accept-Encoding the client sent
// and the one the target behind the agent received.
type hopHeaders struct {
	mode     encodingMode
	received string
}

// hopHeaders sends one request per client mode to url (the echo target
// through the proxy) and returns what the target received.
func (e *echoTarget) hopHeaders(ctx context.Context, base *rest.Config, url string) ([]hopHeaders, error) {
	var hops []hopHeaders
	for _, mode := range encodingModes {
		cfg := rest.CopyConfig(base)
		cfg.Host = url
		cfg.DisableCompression = mode.disableCompression
		client, err := rest.HTTPClientFor(cfg)
		if err != nil {
			return nil, err
		}
		e.mu.Lock()
		e.seen = nil
		e.mu.Unlock()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
		if err != nil {
			return nil, err
		}
		if mode.acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", mode.acceptEncoding)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		e.mu.Lock()
		seen := slices.Clone(e.seen)
		e.mu.Unlock()
		if len(seen) != 1 {
			return nil, fmt.Errorf("the agent's http target saw %d requests for one, want 1", len(seen))
		}
		hops = append(hops, hopHeaders{mode: mode, received: seen[0]})
	}
	return hops, nil
}

func writeListSection(b *strings.Builder, r *proxyResults) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
	enc := func(gz bool) string {
		if gz {
			return "gzip"
		}
		return "identity"
	}
	if len(r.lists) > 0 {
		fmt.Fprintf(b, "\nLIST of %d ConfigMaps of %d KiB of random letters (%.1f MiB of JSON), p50 of %d after a warm-up, per client encoding mode.\n",
			listConfigMaps, listConfigMapBytes>>10, float64(r.lists[0].bytes)/(1<<20), listRuns)
		fmt.Fprintf(b, "CPU per LIST in each process (from /proc, 10 ms ticks, averaged over the %d; processes idle on the direct path show their background work):\n\n", listRuns)
		fmt.Fprintf(b, "| client mode | path | LIST p50 | × direct | response came | %s |\n|---|---|---|---|---|%s\n",
			strings.Join(r.lists[0].procNames, " | "), strings.Repeat("---|", len(r.lists[0].procNames)))
		for _, l := range r.lists {
			cpus := func(c []time.Duration) string {
				var s []string
				for _, d := range c {
					s = append(s, ms(d))
				}
				return strings.Join(s, " | ")
			}
			fmt.Fprintf(b, "| %s | direct | %s | 1.00 | %s | %s |\n", l.mode.name, ms(l.directP50), enc(l.directGzip), cpus(l.directCPU))
			fmt.Fprintf(b, "| | proxy | %s | %.2f | %s | %s |\n", ms(l.proxyP50), float64(l.proxyP50)/float64(l.directP50), enc(l.proxyGzip), cpus(l.proxyCPU))
		}
		fmt.Fprintf(b, "\nTarget: proxy ≤ 1.25x direct in every mode. Before (issue 16, same data): 5–6x without gzip, 1.6x with.\n")
		writeEncodingFindings(b, r.lists)
	}
	if len(r.hops) > 0 {
		fmt.Fprintf(b, "\nWhat a target behind the agent (proxy/http/<host>, a plain server in the bench) received as Accept-Encoding, per client mode:\n\n")
		fmt.Fprintf(b, "| client mode | received behind the agent |\n|---|---|\n")
		for _, h := range r.hops {
			received := h.received
			if received == "" {
				received = "(none)"
			}
			fmt.Fprintf(b, "| %s | `%s` |\n", h.mode.name, received)
		}
	}
}

// writeEncodingFindings explains the no-gzip row with this run's figures:
// what the aggregator does, and what a client can do about it.
func writeEncodingFindings(b *strings.Builder, lists []listRun) {
	if len(lists) < 2 {
		return
	}
	none, identity := lists[0], lists[1]
	cpu := func(l listRun, c []time.Duration, name string) string {
		i := slices.Index(l.procNames, name)
		if i < 0 {
			return "?"
		}
		return fmt.Sprintf("%.0f ms", float64(c[i].Microseconds())/1000)
	}
	fmt.Fprintf(b, "\nA client that sends no Accept-Encoding: the parent apiserver's aggregator (kube-aggregator, not ours) forwards\n")
	fmt.Fprintf(b, "the request to the hub through a Go transport that asks for gzip on the client's behalf and decompresses the\n")
	fmt.Fprintf(b, "answer. The hub and the agent forward exactly the Accept-Encoding they receive (identity when none, so no\n")
	fmt.Fprintf(b, "transport of ours asks for gzip), and still the target behind the agent received `gzip` for that client\n")
	fmt.Fprintf(b, "(table below): the child compresses (child CPU %s per LIST, %s direct) and the parent decompresses (parent %s).\n",
		cpu(none, none.proxyCPU, "child apiserver"), cpu(none, none.directCPU, "child apiserver"), cpu(none, none.proxyCPU, "parent apiserver"))
	fmt.Fprintf(b, "The hub cannot tell that gzip from a client's own (both read `gzip`): answering identity to every gzip request\n")
	fmt.Fprintf(b, "would take compression from every kubectl (client-go asks for gzip), which an edge cluster's slow tunnel needs.\n")
	fmt.Fprintf(b, "A client that wants no compression says so with `Accept-Encoding: identity`: then nothing on the path compresses,\n")
	fmt.Fprintf(b, "the LIST takes %.2fx direct, the parent %s and the child %s of CPU.\n",
		float64(identity.proxyP50)/float64(identity.directP50), cpu(identity, identity.proxyCPU, "parent apiserver"), cpu(identity, identity.proxyCPU, "child apiserver"))
}
