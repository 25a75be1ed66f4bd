package metrics

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"
)

// The registry is the process's: each run of a test (-count) uses label
// values of its own, or compares before and after.
var runs atomic.Int64

func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, runs.Add(1)) }

func TestTunnelChanged(t *testing.T) {
	cluster := unique("tunnel-test")
	for _, step := range []struct {
		up                   bool
		wantUp, wantReconnct float64
	}{
		{up: true, wantUp: 1, wantReconnct: 0},
		{up: false, wantUp: 0, wantReconnct: 0},
		{up: true, wantUp: 1, wantReconnct: 1},
		{up: true, wantUp: 1, wantReconnct: 2}, // a tunnel replaced before the old one was seen gone
		{up: false, wantUp: 0, wantReconnct: 2},
	} {
		TunnelChanged(cluster, step.up)
		up, err := testutil.GetGaugeMetricValue(tunnelUp.WithLabelValues(cluster))
		if err != nil {
			t.Fatal(err)
		}
		reconnects, err := testutil.GetCounterMetricValue(tunnelReconnects.WithLabelValues(cluster))
		if err != nil {
			t.Fatal(err)
		}
		if up != step.wantUp || reconnects != step.wantReconnct {
			t.Errorf("after up=%v: up %v reconnects %v, want %v %v", step.up, up, reconnects, step.wantUp, step.wantReconnct)
		}
	}
}

func TestDeployed(t *testing.T) {
	value := func(result string) float64 {
		t.Helper()
		v, err := testutil.GetCounterMetricValue(deploys.WithLabelValues(HelmDeployer, result))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := map[string]float64{ResultSuccess: value(ResultSuccess), ResultFailure: value(ResultFailure)}
	sumBefore, err := testutil.GetHistogramMetricValue(deployDuration.WithLabelValues(HelmDeployer, ResultSuccess))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-300 * time.Millisecond)
	Deployed(HelmDeployer, start, nil)
	Deployed(HelmDeployer, start, nil)
	Deployed(HelmDeployer, start, errors.New("boom"))
	for _, tc := range []struct {
		result string
		want   float64
	}{{ResultSuccess, 2}, {ResultFailure, 1}} {
		if got := value(tc.result) - before[tc.result]; got != tc.want {
			t.Errorf("deploys_total{result=%s} = %v, want %v", tc.result, got, tc.want)
		}
	}
	sum, err := testutil.GetHistogramMetricValue(deployDuration.WithLabelValues(HelmDeployer, ResultSuccess))
	if err != nil {
		t.Fatal(err)
	}
	if sum -= sumBefore; sum < 0.6 || sum > 60 {
		t.Errorf("deploy_duration_seconds sum of two 300ms deploys = %v", sum)
	}
}

func TestRegistration(t *testing.T) {
	before, _ := testutil.GetCounterMetricValue(registrations.WithLabelValues(RegistrationDenied))
	Registration(RegistrationDenied)
	got, err := testutil.GetCounterMetricValue(registrations.WithLabelValues(RegistrationDenied))
	if err != nil {
		t.Fatal(err)
	}
	if got != before+1 {
		t.Errorf("registration_requests_total{result=denied} = %v, want %v", got, before+1)
	}
}

func TestHeartbeatAges(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	heartbeats.now = func() time.Time { return now }
	defer func() { heartbeats.now = time.Now }()
	unsetOld := SetHeartbeats(func() []Heartbeat { return []Heartbeat{{Cluster: "old-term", Last: now}} })
	unset := SetHeartbeats(func() []Heartbeat {
		return []Heartbeat{
			{Cluster: "a", Last: now.Add(-3 * time.Second)},
			{Cluster: "b", Last: now.Add(-90 * time.Second)},
			{Cluster: "b", Last: now.Add(-2 * time.Minute)}, // the same id twice: the newest counts
			{Cluster: "never", Last: time.Time{}},
		}
	})
	unsetOld() // an earlier term ending late does not unset the current one
	want := `
# HELP clusternet_lifecycle_heartbeat_age_seconds [ALPHA] Seconds since the cluster's agent last reported its status (ManagedCluster status.lastObservedTime), as the hub replica running the lifecycle controller sees it.
# TYPE clusternet_lifecycle_heartbeat_age_seconds gauge
clusternet_lifecycle_heartbeat_age_seconds{cluster="a"} 3
clusternet_lifecycle_heartbeat_age_seconds{cluster="b"} 90
`
	if err := testutil.GatherAndCompare(legacyregistry.DefaultGatherer, strings.NewReader(want), "clusternet_lifecycle_heartbeat_age_seconds"); err != nil {
		t.Error(err)
	}
	unset()
	if err := testutil.GatherAndCompare(legacyregistry.DefaultGatherer, strings.NewReader(""), "clusternet_lifecycle_heartbeat_age_seconds"); err != nil {
		t.Errorf("after unset: %v", err)
	}
}

func TestProxyVerb(t *testing.T) {
	for _, tc := range []struct {
		name, method, target, query string
		upgrade                     bool
		want                        string
	}{
		{name: "get", method: "GET", target: "direct/api/v1/namespaces/default/pods/p", want: "get"},
		{name: "list", method: "GET", target: "direct/apis/apps/v1/deployments", want: "list"},
		{name: "watch", method: "GET", target: "direct/api/v1/pods", query: "watch=true", want: "watch"},
		{name: "create", method: "POST", target: "/direct/api/v1/namespaces/default/configmaps", want: "create"},
		{name: "patch", method: "PATCH", target: "direct/api/v1/namespaces/default/configmaps/c", want: "patch"},
		{name: "non-resource", method: "GET", target: "direct/version", want: "get"},
		{name: "exec upgrade", method: "GET", target: "direct/api/v1/namespaces/default/pods/p/exec", upgrade: true, want: "connect"},
		{name: "another host", method: "DELETE", target: "https/10.0.0.1:8443/api/v1/namespaces/x", want: "delete"},
		{name: "a method of its own", method: "BREW", target: "direct/version", want: "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "/apis/proxies.clusternet.io/v1alpha1/sockets/x/proxy/"+tc.target+"?"+tc.query, nil)
			if tc.upgrade {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
			}
			if got := ProxyVerb(tc.target, req); got != tc.want {
				t.Errorf("ProxyVerb = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestProxyRequest(t *testing.T) {
	serve := func(h http.HandlerFunc, cluster, target string) {
		finished := make(chan struct{}) // counted: a hijacked request is not waited for by Close
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			defer close(finished)
			w, done := ProxyRequest(cluster, target, w, req)
			defer done()
			h(w, req)
		}))
		defer func() { <-finished }()
		defer srv.Close()
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		_, _ = io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		_, _ = http.ReadResponse(bufio.NewReader(conn), nil)
	}
	counted := func(cluster, verb, code string) float64 {
		t.Helper()
		v, err := testutil.GetCounterMetricValue(proxyRequests.WithLabelValues(cluster, verb, code))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	t.Run("status written", func(t *testing.T) {
		cluster := unique("written")
		serve(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTooManyRequests) }, cluster, "direct/version")
		if got := counted(cluster, "connect", "429"); got != 1 {
			t.Errorf("requests_total{code=429} = %v, want 1", got)
		}
	})
	t.Run("nothing written is 200", func(t *testing.T) {
		cluster := unique("silent")
		serve(func(http.ResponseWriter, *http.Request) {}, cluster, "direct/version")
		if got := counted(cluster, "connect", "200"); got != 1 {
			t.Errorf("requests_total{code=200} = %v, want 1", got)
		}
	})
	for _, tc := range []struct {
		name, cluster, response, code string
	}{
		{name: "hijacked: upgraded", cluster: "upgraded", response: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", code: "101"},
		{name: "hijacked: refused by the child", cluster: "refused", response: "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", code: "403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster := unique(tc.cluster)
			serve(func(w http.ResponseWriter, _ *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer func() { _ = conn.Close() }()
				_, _ = io.WriteString(conn, tc.response)
			}, cluster, "direct/api/v1/namespaces/default/pods/p/exec")
			if got := counted(cluster, "connect", tc.code); got != 1 {
				t.Errorf("requests_total{code=%s} = %v, want 1", tc.code, got)
			}
		})
	}
	t.Run("flushes reach the client", func(t *testing.T) {
		rec := httptest.NewRecorder()
		cluster := unique("flushed")
		w, done := ProxyRequest(cluster, "direct/api/v1/pods", rec, httptest.NewRequest(http.MethodGet, "/x?watch=1", nil))
		_, _ = io.WriteString(w, "event")
		w.(http.Flusher).Flush()
		done()
		if !rec.Flushed {
			t.Error("Flush did not reach the underlying writer")
		}
		if got := counted(cluster, "watch", "200"); got != 1 {
			t.Errorf("requests_total{verb=watch} = %v, want 1", got)
		}
		if n, err := testutil.GetHistogramMetricCount(proxyRequestDuration.WithLabelValues(cluster, "watch")); err != nil || n != 0 {
			t.Errorf("a watch's duration was observed (%d, %v): it lasts as long as its user wants", n, err)
		}
	})
}

func TestNamesFollowTheConvention(t *testing.T) {
	// One series of each metric.
	TunnelChanged("lint", true)
	Deployed(GenericDeployer, time.Now(), nil)
	Registration(RegistrationApproved)
	_, done := ProxyRequest("lint", "direct/version", httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
	done()
	defer SetHeartbeats(func() []Heartbeat { return []Heartbeat{{Cluster: "lint", Last: time.Now()}} })()

	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^clusternet_(tunnel|proxy|deployer|registration|lifecycle)_[a-z_]+$`)
	bounded := map[string]bool{"cluster": true, "verb": true, "code": true, "deployer": true, "result": true}
	var text strings.Builder
	var got []string
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "clusternet_") {
			continue
		}
		got = append(got, f.GetName())
		if !name.MatchString(f.GetName()) {
			t.Errorf("%s is not clusternet_<subsystem>_<what>_<unit>", f.GetName())
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if !bounded[l.GetName()] {
					t.Errorf("%s has label %q: only %v, whose values are bounded", f.GetName(), l.GetName(), bounded)
				}
			}
		}
		if _, err := testutil.MetricFamilyToText(&text, f); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"clusternet_deployer_deploy_duration_seconds", "clusternet_deployer_deploys_total",
		"clusternet_lifecycle_heartbeat_age_seconds",
		"clusternet_proxy_request_duration_seconds", "clusternet_proxy_requests_total",
		"clusternet_registration_requests_total",
		"clusternet_tunnel_reconnects_total", "clusternet_tunnel_up",
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("registered metrics (-want +got):\n%s", diff)
	}
	dashboardShows(t, want)
	problems, err := testutil.NewPromLinter(strings.NewReader(text.String())).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s", p.String())
	}
}

func TestWorkqueueMetrics(t *testing.T) {
	name := unique("metrics-test")
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
	defer q.ShutDown()
	q.Add("a")
	q.Add("b")
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	depth := -1.0
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetName() == "workqueue_depth" && testutil.LabelsMatch(m, map[string]string{"name": name}) {
				depth = m.GetGauge().GetValue()
			}
		}
	}
	if depth != 2 {
		t.Errorf("workqueue_depth{name=%s} = %v, want 2 (-1: no series): is the workqueue metrics provider installed?", name, depth)
	}
}

// dashboardShows checks the Grafana dashboard the project ships
// (charts/grafana/clusternet.json) graphs every metric in names, and names
// no Clusternet metric that does not exist: it cannot drift from the code.
func dashboardShows(t *testing.T, names []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "charts", "grafana", "clusternet.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("charts/grafana/clusternet.json: %v", err)
	}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	shown := map[string]bool{}
	metric := regexp.MustCompile(`\b(clusternet_[a-z_]+|workqueue_[a-z_]+)`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range metric.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				if strings.HasPrefix(base, "clusternet_") && !known[base] {
					t.Errorf("dashboard panel %q graphs %s, which Clusternet does not export", p.Title, m)
				}
				shown[base] = true
			}
		}
	}
	for _, n := range names {
		if !shown[n] {
			t.Errorf("dashboard graphs no %s", n)
		}
	}
}
