package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// logsFake is a fake parent with two children whose pods have logs: the
// fakeServer, plus the pods/log subresource of each child, and children
// that refuse every pod request as a child's RBAC refuses a user.
type logsFake struct {
	*fakeServer

	mu        sync.Mutex
	logs      map[string]string // by "<child id>/<namespace>/<pod>/<container>"
	forbidden map[string]bool   // child ids
	queries   []string          // of log requests: "<child id> <pod> <query>"
}

func newLogsFake(t *testing.T) *logsFake {
	t.Helper()
	l := &logsFake{fakeServer: &fakeServer{objects: map[string][]*unstructured.Unstructured{}},
		logs: map[string]string{}, forbidden: map[string]bool{}}
	l.Server = httptest.NewTLSServer(http.HandlerFunc(l.serve))
	t.Cleanup(l.Close)
	l.addCluster(nsChild1, "child1", id1)
	l.addCluster(nsChild2, "child2", id2)
	return l
}

func (l *logsFake) serve(w http.ResponseWriter, r *http.Request) {
	const sockets = "/apis/proxies.clusternet.io/v1alpha1/sockets/"
	rest, ok := strings.CutPrefix(r.URL.Path, sockets)
	if !ok {
		l.fakeServer.serve(w, r)
		return
	}
	id, p, _ := strings.Cut(rest, "/proxy/direct")
	l.mu.Lock()
	forbidden := l.forbidden[id]
	l.mu.Unlock()
	if forbidden && strings.Contains(p, "/pods") {
		writeJSON(w, http.StatusForbidden, status(http.StatusForbidden, "Forbidden",
			fmt.Sprintf(`pods %q is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "default"`, "web")))
		return
	}
	// /api/v1/namespaces/<ns>/pods/<pod>/log
	parts := strings.Split(strings.TrimPrefix(p, "/api/v1/namespaces/"), "/")
	if len(parts) == 1 && r.Method == http.MethodGet && parts[0] != "default" {
		// Only default exists, and a missing one says so as a kube-apiserver does.
		st := status(http.StatusNotFound, "NotFound", fmt.Sprintf("namespaces %q not found", parts[0]))
		st["details"] = map[string]interface{}{"name": parts[0], "kind": "namespaces"}
		writeJSON(w, http.StatusNotFound, st)
		return
	}
	if len(parts) != 4 || parts[1] != "pods" || parts[3] != "log" {
		l.fakeServer.serve(w, r)
		return
	}
	ns, pod, container := parts[0], parts[2], r.URL.Query().Get("container")
	l.mu.Lock()
	l.queries = append(l.queries, id+" "+pod+" "+r.URL.RawQuery)
	text, ok := l.logs[id+"/"+ns+"/"+pod+"/"+container]
	l.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusBadRequest, status(http.StatusBadRequest, "BadRequest", fmt.Sprintf("container %s is not valid for pod %s", container, pod)))
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(text))
}

// addPod puts a Running pod with containers into the child with id, each
// container logging its name and the cluster's id.
func (l *logsFake) addPod(id, namespace, name string, labels map[string]string, containers ...string) {
	var cs []interface{}
	for _, c := range containers {
		cs = append(cs, map[string]interface{}{"name": c, "image": "nginx"})
		l.mu.Lock()
		l.logs[id+"/"+namespace+"/"+name+"/"+c] = fmt.Sprintf("%s started in %s\n%s serving\n", c, id[:8], c)
		l.mu.Unlock()
	}
	pod := obj("v1", "Pod", namespace, name)
	pod.SetLabels(labels)
	pod.Object["spec"] = map[string]interface{}{"containers": cs}
	pod.Object["status"] = map[string]interface{}{"phase": "Running"}
	l.add("child:"+id, "api/v1", "pods", pod)
}

func (l *logsFake) forbid(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forbidden[id] = true
}

func (l *logsFake) logQueries() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.queries)
	slices.Sort(out)
	return out
}

// sortedLines are out's lines in order: clusters are read at once, so
// their lines come in any order (each line whole).
func sortedLines(out string) []string {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	slices.Sort(lines)
	return lines
}

func TestLogsAcrossClusters(t *testing.T) {
	for _, tc := range []struct {
		name      string
		setUp     func(l *logsFake)
		args      []string
		wantLines []string
		wantErr   string
		wantCode  int
	}{
		{
			name: "a pod in every cluster: each line prefixed [cluster/pod/container]",
			setUp: func(l *logsFake) {
				l.addPod(id1, "default", "web", nil, "nginx")
				l.addPod(id2, "default", "web", nil, "nginx")
			},
			args: []string{"logs", "web"},
			wantLines: []string{
				"[child1/web/nginx] nginx serving", "[child1/web/nginx] nginx started in dc91021d",
				"[child2/web/nginx] nginx serving", "[child2/web/nginx] nginx started in 5e0ab1f4",
			},
		},
		{
			name:      "a cluster where it does not exist: one line on the error stream, the other cluster printed",
			setUp:     func(l *logsFake) { l.addPod(id1, "default", "web", nil, "nginx") },
			args:      []string{"logs", "web"},
			wantLines: []string{"[child1/web/nginx] nginx serving", "[child1/web/nginx] nginx started in dc91021d"},
			wantErr:   "error: cluster child2: pods \"web\" not found in namespace \"default\"\n",
		},
		{
			name:     "no cluster yields logs: exit 1",
			args:     []string{"logs", "web", "-n", "foo"},
			wantErr:  "error: cluster child1: namespaces \"foo\" not found\nerror: cluster child2: namespaces \"foo\" not found\nerror: no cluster yielded logs: 2 of 2 clusters failed: child1, child2\n",
			wantCode: 1,
		},
		{
			name: "a child that refuses the caller: a Forbidden naming the cluster, the other printed",
			setUp: func(l *logsFake) {
				l.addPod(id1, "default", "web", nil, "nginx")
				l.addPod(id2, "default", "web", nil, "nginx")
				l.forbid(id2)
			},
			args:      []string{"logs", "web"},
			wantLines: []string{"[child1/web/nginx] nginx serving", "[child1/web/nginx] nginx started in dc91021d"},
			wantErr: `error: cluster child2: pods "web" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "default" ` +
				"(the child's RBAC decides what your parent user, as the hub forwards it, may read there)\n",
		},
		{
			name: "--clusters narrows, -c picks the container, --prefix=false prints the lines alone",
			setUp: func(l *logsFake) {
				l.addPod(id1, "default", "web", nil, "nginx", "sidecar")
				l.addPod(id2, "default", "web", nil, "nginx", "sidecar")
			},
			args:      []string{"logs", "web", "-c", "sidecar", "--clusters", "child2", "--prefix=false"},
			wantLines: []string{"sidecar serving", "sidecar started in 5e0ab1f4"},
		},
		{
			name: "a workload: kubectl's helpers pick its pod in each cluster; --all-containers",
			setUp: func(l *logsFake) {
				for _, id := range []string{id1, id2} {
					l.addPod(id, "foo", "my-nginx-7d4b9-x2x4z", map[string]string{"app": "nginx"}, "nginx", "sidecar")
					d := obj("apps/v1", "Deployment", "foo", "my-nginx")
					d.Object["spec"] = map[string]interface{}{"selector": map[string]interface{}{"matchLabels": map[string]interface{}{"app": "nginx"}}}
					l.add("child:"+id, "apis/apps/v1", "deployments", d)
				}
			},
			args: []string{"logs", "deployment/my-nginx", "-n", "foo", "--all-containers", "--clusters", "child1," + id2},
			wantLines: []string{
				"[child1/my-nginx-7d4b9-x2x4z/nginx] nginx serving", "[child1/my-nginx-7d4b9-x2x4z/nginx] nginx started in dc91021d",
				"[child1/my-nginx-7d4b9-x2x4z/sidecar] sidecar serving", "[child1/my-nginx-7d4b9-x2x4z/sidecar] sidecar started in dc91021d",
				"[child2/my-nginx-7d4b9-x2x4z/nginx] nginx serving", "[child2/my-nginx-7d4b9-x2x4z/nginx] nginx started in 5e0ab1f4",
				"[child2/my-nginx-7d4b9-x2x4z/sidecar] sidecar serving", "[child2/my-nginx-7d4b9-x2x4z/sidecar] sidecar started in 5e0ab1f4",
			},
		},
		{
			name:     "a cluster that is not registered",
			args:     []string{"logs", "web", "--clusters", "child1,child3"},
			wantErr:  `error: cluster "child3" not found: it is neither the name nor the cluster id of a ManagedCluster; known clusters: child1 (namespace clusternet-5l82l, id ` + id1 + `), child2 (namespace clusternet-8x2kq, id ` + id2 + ")\n",
			wantCode: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLogsFake(t)
			if tc.setUp != nil {
				tc.setUp(l)
			}
			out, errOut, code := l.run(t, tc.args...)
			var got []string
			if out != "" {
				got = sortedLines(out)
			}
			if diff := cmp.Diff(tc.wantLines, got); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			// Each cluster's error is printed when it fails, so in any order.
			if diff := cmp.Diff(sortedLines(tc.wantErr), sortedLines(errOut)); diff != "" {
				t.Errorf("error stream (-want +got):\n%s", diff)
			}
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d", code, tc.wantCode)
			}
		})
	}
}

// TestLogsPassesKubectlsOptionsAndTheCallersCredentials: -f, --tail,
// --since and -c reach each child's log request as kubectl sends them,
// with the caller's own parent token (the hub has the child impersonate
// that user), through each child's proxy path.
func TestLogsPassesKubectlsOptionsAndTheCallersCredentials(t *testing.T) {
	l := newLogsFake(t)
	l.addPod(id1, "default", "web", nil, "nginx")
	l.addPod(id2, "default", "web", nil, "nginx")
	out, errOut, code := l.run(t, "logs", "-f", "web", "--tail", "20", "--since", "1h", "-c", "nginx", "--timestamps")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if n := len(sortedLines(out)); n != 4 {
		t.Errorf("%d lines, want 4:\n%s", n, out)
	}
	want := url.Values{"container": {"nginx"}, "follow": {"true"}, "sinceSeconds": {"3600"}, "tailLines": {"20"}, "timestamps": {"true"}}.Encode()
	if diff := cmp.Diff([]string{id2 + " web " + want, id1 + " web " + want}, l.logQueries()); diff != "" {
		t.Errorf("log requests (-want +got):\n%s", diff)
	}
	for _, where := range []string{"child:" + id1, "child:" + id2} {
		if got := l.headersOf(where)["Authorization"]; got != "Bearer parent-token" {
			t.Errorf("%s was asked with Authorization %q, want the caller's own token", where, got)
		}
	}
}

func TestLogsRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"logs"}, wantErr: "error: give a pod, a TYPE/NAME (deployment/my-nginx) or a label selector (-l app=nginx)"},
		{args: []string{"logs", "web", "-l", "app=web"}, wantErr: `error: "web" and -l "app=web": give a pod name or a label selector, not both`},
		{args: []string{"logs", "web", "--clusters", " "}, wantErr: `error: --clusters " ": give "all" or a comma-separated list`},
		{args: []string{"logs", "web", "--since", "1h", "--since-time", "2024-08-30T06:00:00Z"}, wantErr: "error: at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{args: []string{"logs", "web", "--max-log-requests", "0"}, wantErr: "error: --max-log-requests 0: give 1 or more"},
	} {
		l := newLogsFake(t)
		_, errOut, code := l.run(t, tc.args...)
		if code == 0 || !strings.HasPrefix(errOut, tc.wantErr) {
			t.Errorf("%q: exit %d, error stream %q; want it to start %q", tc.args, code, errOut, tc.wantErr)
		}
		if len(l.logQueries()) != 0 {
			t.Errorf("%q asked for logs", tc.args)
		}
	}
}
