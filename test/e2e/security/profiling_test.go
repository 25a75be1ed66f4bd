package security

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestHubProfiling: the hub's /debug/pprof is not served without
// --profiling, and with it only to a parent identity granted get on
// nonResourceURL /debug/pprof/*; anonymous callers and identities without
// the grant are refused by the delegated authorization, naming the user.
func TestHubProfiling(t *testing.T) {
	tb := testbed.ForTest(t, 0)
	parent := tb.Parent
	kubectl := func(args ...string) string { return strings.TrimSpace(e2eutil.MustKubectl(t, parent, "", args...)) }
	kubectl("create", "serviceaccount", "profiler", "-n", "default")
	kubectl("create", "serviceaccount", "not-a-profiler", "-n", "default")
	// The grant an operator gives a profiler; the other may read /metrics
	// only, so a refusal is about the path, not about having no rights.
	kubectl("create", "clusterrole", "clusternet-profiler", "--verb=get", "--non-resource-url=/debug/pprof/*")
	kubectl("create", "clusterrolebinding", "clusternet-profiler", "--clusterrole=clusternet-profiler", "--serviceaccount=default:profiler")
	kubectl("create", "clusterrole", "clusternet-metrics", "--verb=get", "--non-resource-url=/metrics")
	kubectl("create", "clusterrolebinding", "clusternet-metrics", "--clusterrole=clusternet-metrics", "--serviceaccount=default:not-a-profiler")
	profiler := kubectl("create", "token", "profiler", "-n", "default")
	notProfiler := kubectl("create", "token", "not-a-profiler", "-n", "default")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	get := func(t *testing.T, hub *framework.Hub, method, path, token string) (int, string) {
		t.Helper()
		client, err := framework.HubClient(ctx, parent)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(ctx, method, fmt.Sprintf("https://127.0.0.1:%d%s", hub.Port, path), nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}

	t.Run("off by default: not served", func(t *testing.T) {
		hub := e2eutil.SetUpParent(t, parent)
		defer func() { _ = hub.Stop(10 * time.Second) }()
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap"} {
			if code, body := get(t, hub, http.MethodGet, path, profiler); code != http.StatusNotFound {
				t.Errorf("GET %s as a profiler = %d %.200q, want 404", path, code, body)
			}
		}
	})

	hub := e2eutil.SetUpParent(t, parent, "--profiling")
	for _, tc := range []struct {
		name, method, path, token string
		// refused is the user the 403 names; empty: allowed.
		refused string
	}{
		{name: "refused: anonymous", method: http.MethodGet, path: "/debug/pprof/heap", refused: "system:anonymous"},
		{name: "refused: a parent identity without get on /debug/pprof/*", method: http.MethodGet, path: "/debug/pprof/heap", token: notProfiler,
			refused: "system:serviceaccount:default:not-a-profiler"},
		{name: "refused: a profiler changing the log level", method: http.MethodPut, path: "/debug/flags/v", token: profiler,
			refused: "system:serviceaccount:default:profiler"},
		{name: "allowed: a heap profile for get on /debug/pprof/*", method: http.MethodGet, path: "/debug/pprof/heap", token: profiler},
	} {
		t.Run("--profiling: "+tc.name, func(t *testing.T) {
			code, body := get(t, hub, tc.method, tc.path, tc.token)
			if tc.refused == "" {
				// A heap profile is gzipped protobuf.
				if code != http.StatusOK || !strings.HasPrefix(body, "\x1f\x8b") {
					t.Errorf("%s %s = %d %.200q, want 200 with a gzipped profile", tc.method, tc.path, code, body)
				}
				return
			}
			var status metav1.Status
			if err := json.Unmarshal([]byte(body), &status); err != nil {
				t.Fatalf("%s %s = %d %.300s: want a Status refusal: %v", tc.method, tc.path, code, body, err)
			}
			want := fmt.Sprintf(`forbidden: User %q cannot %s path %q`, tc.refused, strings.ToLower(tc.method), tc.path)
			if code != http.StatusForbidden || status.Message != want {
				t.Errorf("%s %s = %d %q, want 403 %q", tc.method, tc.path, code, status.Message, want)
			}
		})
	}
}
