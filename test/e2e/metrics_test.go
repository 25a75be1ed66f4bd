package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// heartbeat is the agent's --cluster-status-update-frequency in
// RegisterChildren.
const heartbeat = 2 * time.Second

// TestMetricsAndProbes scrapes a running hub and agent after proxied
// requests and a rollout, checks that the hub's /metrics is only for who
// may read it, and follows the agent's /readyz while its tunnel drops and
// comes back.
func TestMetricsAndProbes(t *testing.T) {
	tb := testbed.ForTest(t, 1)
	parent := tb.Parent
	hub := setUpParent(t, parent)
	probes, err := framework.ReserveAgentProbes()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(probes.Release)
	child := e2eutil.RegisterChildren(t, parent, tb.Children, func(int) []string { return probes.Args() })[0]
	id := child.ID
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	plain := &http.Client{Timeout: 10 * time.Second}
	health := func(path string) (int, string) {
		code, body, err := framework.Get(ctx, plain, "http://"+probes.HealthAddr+path, "")
		if err != nil {
			return 0, err.Error()
		}
		return code, body
	}
	agentMetrics := func() (framework.Metrics, error) {
		return framework.Scrape(ctx, plain, "http://"+probes.MetricsAddr+"/metrics", "")
	}

	t.Run("the agent is ready and lists its checks", func(t *testing.T) {
		waitFor(t, 30*time.Second, "agent /readyz", func(context.Context) (bool, string) {
			code, body := health("/readyz?verbose")
			return code == http.StatusOK && strings.Contains(body, "[+]registered ok") &&
				strings.Contains(body, "[+]informer-sync ok") && strings.Contains(body, "[+]tunnel ok"), fmt.Sprint(code, " ", body)
		})
		for _, path := range []string{"/livez", "/healthz", "/readyz/tunnel"} {
			if code, body := health(path); code != http.StatusOK || body != "ok" {
				t.Errorf("GET %s = %d %q, want 200 ok", path, code, body)
			}
		}
	})

	// Traffic: proxied requests, and a rollout the hub pushes (Dual with
	// AppPusher, the default).
	const proxied = 3
	for range proxied {
		mustKubectl(t, parent, "", "get", "--raw", "/apis/proxies.clusternet.io/v1alpha1/sockets/"+id+"/proxy/direct/version")
	}
	cm := []byte(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "metrics-e2e", "namespace": "default"}, "data": {"a": "b"}}`)
	descs := e2eutil.ClusternetClient(t, parent).AppsV1alpha1().Descriptions(child.Namespace)
	desc := e2eutil.GenericDescription(child, "metrics-e2e", cm)
	if _, err := descs.Create(ctx, desc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "Description "+desc.Name+" Success", func(ctx context.Context) (bool, string) {
		d, err := descs.Get(ctx, desc.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return d.Status.Phase == appsv1alpha1.DescriptionPhaseSuccess, string(d.Status.Phase)
	})

	// Who may read the hub's metrics: a parent identity granted get on
	// /metrics, as for any Kubernetes component.
	mustKubectl(t, parent, "", "create", "serviceaccount", "metrics-reader", "-n", "default")
	mustKubectl(t, parent, "", "create", "serviceaccount", "metrics-nobody", "-n", "default")
	mustKubectl(t, parent, "", "create", "clusterrole", "clusternet-metrics-reader", "--verb=get", "--non-resource-url=/metrics")
	mustKubectl(t, parent, "", "create", "clusterrolebinding", "clusternet-metrics-reader", "--clusterrole=clusternet-metrics-reader", "--serviceaccount=default:metrics-reader")
	reader := strings.TrimSpace(mustKubectl(t, parent, "", "create", "token", "metrics-reader", "-n", "default"))
	nobody := strings.TrimSpace(mustKubectl(t, parent, "", "create", "token", "metrics-nobody", "-n", "default"))
	// The agent's parent token, read from where the agent keeps it.
	agentToken := mustKubectl(t, child.Cluster, "", "get", "secret", "-n", "clusternet-system", "clusternet-agent-credentials", "-o", "go-template={{.data.token | base64decode}}")
	hubClient, err := framework.HubClient(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	hubURL := fmt.Sprintf("https://127.0.0.1:%d/metrics", hub.Port)

	t.Run("the hub's /metrics needs authorization", func(t *testing.T) {
		for _, tc := range []struct {
			name, token string
			// refusedUser is who the refusal names; empty: allowed.
			refusedUser string
		}{
			{name: "refused: anonymous", refusedUser: "system:anonymous"},
			{name: "refused: a cluster's agent", token: agentToken, refusedUser: "system:serviceaccount:" + child.Namespace + ":clusternet-agent"},
			{name: "refused: a parent identity without get on /metrics", token: nobody, refusedUser: "system:serviceaccount:default:metrics-nobody"},
			{name: "allowed: get on nonResourceURL /metrics", token: reader},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, body, err := framework.Get(ctx, hubClient, hubURL, tc.token)
				if err != nil {
					t.Fatal(err)
				}
				if tc.refusedUser == "" {
					if code != http.StatusOK || !strings.Contains(body, "# TYPE clusternet_tunnel_up gauge") {
						t.Errorf("GET /metrics = %d, want 200 with clusternet_ series: %.300s", code, body)
					}
					return
				}
				var status metav1.Status
				if err := json.Unmarshal([]byte(body), &status); err != nil {
					t.Fatalf("GET /metrics = %d %.300s: want a Status refusal: %v", code, body, err)
				}
				want := fmt.Sprintf(`forbidden: User %q cannot get path "/metrics"`, tc.refusedUser)
				if code != http.StatusForbidden || status.Message != want {
					t.Errorf("GET /metrics = %d %q, want 403 %q", code, status.Message, want)
				}
			})
		}
	})

	t.Run("the hub's readyz includes its caches", func(t *testing.T) {
		// /readyz is public, as in every Kubernetes component.
		code, body, err := framework.Get(ctx, hubClient, fmt.Sprintf("https://127.0.0.1:%d/readyz?verbose", hub.Port), "")
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusOK || !strings.Contains(body, "[+]clusternet-informer-sync ok") || !strings.Contains(body, "[+]clusternet-shadow ok") {
			t.Errorf("hub /readyz?verbose = %d:\n%s", code, body)
		}
	})

	t.Run("the hub's series", func(t *testing.T) {
		cluster := map[string]string{"cluster": id}
		waitFor(t, 30*time.Second, "the hub's metrics", func(context.Context) (bool, string) {
			m, err := framework.Scrape(ctx, hubClient, hubURL, reader)
			if err != nil {
				return false, err.Error()
			}
			return expectSeries(m, []series{
				{"clusternet_proxy_requests_total", map[string]string{"cluster": id, "verb": "get", "code": "200"}, atLeast(proxied)},
				{"clusternet_proxy_request_duration_seconds", map[string]string{"cluster": id, "verb": "get"}, atLeast(proxied)},
				{"clusternet_tunnel_up", cluster, equal(1)},
				{"clusternet_tunnel_reconnects_total", cluster, atLeast(0)},
				{"clusternet_deployer_deploys_total", map[string]string{"deployer": "generic", "result": "success"}, atLeast(1)},
				{"clusternet_deployer_deploy_duration_seconds", map[string]string{"deployer": "generic"}, atLeast(1)},
				{"clusternet_registration_requests_total", map[string]string{"result": "approved"}, atLeast(1)},
				{"clusternet_lifecycle_heartbeat_age_seconds", cluster, below((2 * heartbeat).Seconds())},
				{"workqueue_adds_total", map[string]string{"name": "cluster-registration"}, atLeast(1)},
				{"workqueue_adds_total", map[string]string{"name": "generic-pusher"}, atLeast(1)},
				{"workqueue_depth", map[string]string{"name": "cluster-lifecycle"}, atLeast(0)},
				{"workqueue_queue_duration_seconds", map[string]string{"name": "generic-pusher"}, atLeast(1)},
			})
		})
	})

	t.Run("the agent's series", func(t *testing.T) {
		m, err := agentMetrics()
		if err != nil {
			t.Fatal(err)
		}
		if ok, why := expectSeries(m, []series{
			{"clusternet_tunnel_up", map[string]string{"cluster": id}, equal(1)},
			{"clusternet_tunnel_reconnects_total", map[string]string{"cluster": id}, equal(0)},
		}); !ok {
			t.Error(why)
		}
		for name := range m {
			if strings.HasPrefix(name, "clusternet_") && strings.Contains(name, "proxy") {
				t.Errorf("the agent reports the hub's proxy metric %s", name)
			}
		}
	})

	t.Run("the agent's readyz follows its tunnel", func(t *testing.T) {
		if err := hub.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "agent unready with its tunnel down", func(context.Context) (bool, string) {
			code, body := health("/readyz?verbose")
			return code == http.StatusInternalServerError && strings.Contains(body, "[-]tunnel failed") &&
				strings.Contains(body, "[+]registered ok"), fmt.Sprint(code, " ", body)
		})
		if code, body := health("/livez"); code != http.StatusOK {
			t.Errorf("/livez while reconnecting = %d %q, want 200: a restart would not bring the hub back", code, body)
		}
		if m, err := agentMetrics(); err != nil {
			t.Error(err)
		} else if ok, why := expectSeries(m, []series{{"clusternet_tunnel_up", map[string]string{"cluster": id}, equal(0)}}); !ok {
			t.Error(why)
		}
		if err := hub.Restart(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 60*time.Second, "agent ready again with its tunnel back", func(context.Context) (bool, string) {
			code, body := health("/readyz?verbose")
			return code == http.StatusOK && strings.Contains(body, "[+]tunnel ok"), fmt.Sprint(code, " ", body)
		})
		m, err := agentMetrics()
		if err != nil {
			t.Fatal(err)
		}
		if ok, why := expectSeries(m, []series{
			{"clusternet_tunnel_up", map[string]string{"cluster": id}, equal(1)},
			{"clusternet_tunnel_reconnects_total", map[string]string{"cluster": id}, atLeast(1)},
		}); !ok {
			t.Error(why)
		}
	})
}

// series is a check of the sum of a metric's series that carry labels.
type series struct {
	name   string
	labels map[string]string
	check  func(float64) error
}

func atLeast(n float64) func(float64) error {
	return func(v float64) error {
		if v < n {
			return fmt.Errorf("%v, want at least %v", v, n)
		}
		return nil
	}
}

func equal(n float64) func(float64) error {
	return func(v float64) error {
		if v != n {
			return fmt.Errorf("%v, want %v", v, n)
		}
		return nil
	}
}

func below(n float64) func(float64) error {
	return func(v float64) error {
		if v >= n {
			return fmt.Errorf("%v, want below %v", v, n)
		}
		return nil
	}
}

// expectSeries says whether every check holds in m, and which do not.
func expectSeries(m framework.Metrics, checks []series) (bool, string) {
	var failed []string
	for _, c := range checks {
		v, found := m.Sum(c.name, c.labels)
		if !found {
			failed = append(failed, fmt.Sprintf("%s%v: no such series", c.name, c.labels))
			continue
		}
		if err := c.check(v); err != nil {
			failed = append(failed, fmt.Sprintf("%s%v: %v", c.name, c.labels, err))
		}
	}
	return len(failed) == 0, strings.Join(failed, "; ")
}
