package agent

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// agentAt builds an agent in the given state, for the probes to read.
func agentAt(registered, tunnelUp bool, caches map[string]bool) *Agent {
	a := &Agent{}
	a.registered.Store(registered)
	a.tunnelUp.Store(tunnelUp)
	for name, synced := range caches {
		a.caches.add(name, func() bool { return synced })
	}
	return a
}

func TestHealthHandler(t *testing.T) {
	ready := agentAt(true, true, map[string]bool{"managedcluster": true})
	tests := []struct {
		name     string
		agent    *Agent
		path     string
		wantCode int
		wantBody string
	}{
		{name: "starting: alive", agent: nil, path: "/livez", wantCode: 200, wantBody: "ok"},
		{name: "starting: healthz", agent: nil, path: "/healthz", wantCode: 200, wantBody: "ok"},
		{name: "starting: not ready", agent: nil, path: "/readyz?verbose", wantCode: 500,
			wantBody: "[-]registered failed: reason withheld\n[-]informer-sync failed: reason withheld\n[-]tunnel failed: reason withheld\nreadyz check failed\n"},
		{name: "ready", agent: ready, path: "/readyz", wantCode: 200, wantBody: "ok"},
		{name: "ready, verbose", agent: ready, path: "/readyz?verbose", wantCode: 200,
			wantBody: "[+]registered ok\n[+]informer-sync ok\n[+]tunnel ok\nreadyz check passed\n"},
		{name: "registering", agent: agentAt(false, false, nil), path: "/readyz?verbose", wantCode: 500,
			wantBody: "[-]registered failed: reason withheld\n[+]informer-sync ok\n[-]tunnel failed: reason withheld\nreadyz check failed\n"},
		{name: "tunnel down: unready", agent: agentAt(true, false, map[string]bool{"managedcluster": true}), path: "/readyz?verbose", wantCode: 500,
			wantBody: "[+]registered ok\n[+]informer-sync ok\n[-]tunnel failed: reason withheld\nreadyz check failed\n"},
		{name: "tunnel down: alive", agent: agentAt(true, false, nil), path: "/livez", wantCode: 200, wantBody: "ok"},
		{name: "tunnel down: the check says why", agent: agentAt(true, false, nil), path: "/readyz/tunnel", wantCode: 500,
			wantBody: "internal server error: the tunnel to the hub is down: reconnecting\n"},
		{name: "informers not synced", agent: agentAt(true, true, map[string]bool{"managedcluster": true, "generic-puller": false, "helm-puller": false}),
			path: "/readyz/informer-sync", wantCode: 500, wantBody: "internal server error: informers not synced yet: generic-puller, helm-puller\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var current atomic.Pointer[Agent]
			current.Store(tc.agent)
			srv := httptest.NewServer(healthHandler(&current))
			defer srv.Close()
			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantCode {
				t.Errorf("GET %s = %d, want %d", tc.path, resp.StatusCode, tc.wantCode)
			}
			if diff := cmp.Diff(tc.wantBody, string(body)); diff != "" {
				t.Errorf("GET %s body (-want +got):\n%s", tc.path, diff)
			}
		})
	}
}

func TestCachesExpectedBeforeAdded(t *testing.T) {
	var c caches
	c.expect("managedcluster")
	if err := c.check(nil); err == nil || !strings.Contains(err.Error(), "managedcluster") {
		t.Errorf("an expected informer not made yet: %v, want not synced", err)
	}
	remove := c.add("managedcluster", func() bool { return true })
	if err := c.check(nil); err != nil {
		t.Errorf("synced: %v", err)
	}
	c.add("generic-puller", func() bool { return false })
	if err := c.check(nil); err == nil {
		t.Error("an unsynced informer passed")
	}
	remove()
	var none *caches // PullContexts of tests have none
	none.add("x", func() bool { return false })()
	none.expect("x")
}

func TestProbeServers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := NewOptions()
	o.HealthProbeBindAddress, o.MetricsBindAddress = "127.0.0.1:0", "0"
	var current atomic.Pointer[Agent]
	if err := o.serveProbes(ctx, &current); err != nil {
		t.Fatal(err)
	}
	// A port that is taken fails the start, naming the flag.
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	o.HealthProbeBindAddress, o.MetricsBindAddress = "0", ln.Addr().String()
	err = o.serveProbes(ctx, &current)
	if err == nil || !strings.HasPrefix(err.Error(), `--metrics-bind-address "`+ln.Addr().String()+`": `) {
		t.Errorf("serving on a taken port: %v", err)
	}
}

func TestMetricsHandler(t *testing.T) {
	srv := httptest.NewServer(metricsHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "# TYPE go_goroutines gauge") {
		t.Errorf("GET /metrics = %d %.200s", resp.StatusCode, body)
	}
}

// TestProfilingServer: --profiling off (the default) binds nothing; on, it
// binds --profiling-bind-address.
func TestProfilingServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	taken, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	o := NewOptions()
	o.HealthProbeBindAddress, o.MetricsBindAddress, o.ProfilingBindAddress = "0", "0", taken.Addr().String()
	var current atomic.Pointer[Agent]
	if err := o.serveProbes(ctx, &current); err != nil {
		t.Fatalf("profiling off: %v, want nothing bound", err)
	}
	o.Profiling = true
	err = o.serveProbes(ctx, &current)
	if err == nil || !strings.HasPrefix(err.Error(), `--profiling-bind-address "`+taken.Addr().String()+`": `) {
		t.Errorf("profiling on a taken port: %v, want the flag named", err)
	}
}

func TestProfilingHandler(t *testing.T) {
	srv := httptest.NewServer(profilingHandler())
	defer srv.Close()
	get := func(path string) (int, []byte) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	// A heap profile is gzipped protobuf.
	if code, body := get("/debug/pprof/heap"); code != http.StatusOK || len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
		t.Errorf("GET /debug/pprof/heap = %d %.50q, want 200 with a gzipped profile", code, body)
	}
	if code, body := get("/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(string(body), "goroutine profile:") {
		t.Errorf("GET /debug/pprof/goroutine?debug=1 = %d %.100s", code, body)
	}
	// The command line may hold the bootstrap token.
	if code, _ := get("/debug/pprof/cmdline"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/cmdline = %d, want 404", code)
	}
}
