package shadow

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestRewrite(t *testing.T) {
	tests := []struct {
		name, path, want string
		wantErr          string
	}{
		{name: "namespaced object", path: "/apis/apps/v1/namespaces/foo/deployments/my-nginx", want: "/apis/shadow/v1alpha1/namespaces/foo/deployments/my-nginx"},
		{name: "namespaced list", path: "/apis/apps/v1/namespaces/foo/deployments", want: "/apis/shadow/v1alpha1/namespaces/foo/deployments"},
		{name: "list in all namespaces", path: "/apis/apps/v1/deployments", want: "/apis/shadow/v1alpha1/deployments"},
		{name: "core namespace", path: "/api/v1/namespaces/foo", want: "/apis/shadow/v1alpha1/namespaces/foo"},
		{name: "core namespaces", path: "/api/v1/namespaces", want: "/apis/shadow/v1alpha1/namespaces"},
		{name: "core service", path: "/api/v1/namespaces/foo/services/my-nginx-svc", want: "/apis/shadow/v1alpha1/namespaces/foo/services/my-nginx-svc"},
		{name: "cluster-scoped CRD kind", path: "/apis/example.com/v1/widgets/w", want: "/apis/shadow/v1alpha1/widgets/w"},
		{name: "scale subresource", path: "/apis/apps/v1/namespaces/foo/deployments/my-nginx/scale", want: "/apis/shadow/v1alpha1/namespaces/foo/deployments/my-nginx/scale"},
		{name: "deprecated watch prefix", path: "/api/v1/watch/namespaces/foo/configmaps", want: "/apis/shadow/v1alpha1/watch/namespaces/foo/configmaps"},
		{name: "status subresource", path: "/apis/apps/v1/namespaces/foo/deployments/my-nginx/status",
			wantErr: `subresource "status" of deployments is not served for templates`},
		{name: "namespace status", path: "/api/v1/namespaces/foo/status", wantErr: `subresource "status" of namespaces`},
		{name: "namespace finalize", path: "/api/v1/namespaces/foo/finalize", wantErr: `subresource "finalize" of namespaces`},
		{name: "pod log", path: "/api/v1/namespaces/foo/pods/web/log", wantErr: `subresource "log" of pods`},
		{name: "node proxy", path: "/api/v1/nodes/n1/proxy/metrics", wantErr: `subresource "proxy/metrics" of nodes`},
		{name: "clusternet kind", path: "/apis/apps.clusternet.io/v1alpha1/namespaces/default/subscriptions", want: "/apis/apps.clusternet.io/v1alpha1/namespaces/default/subscriptions"},
		{name: "clusternet cluster kind", path: "/apis/clusters.clusternet.io/v1beta1/managedclusters", want: "/apis/clusters.clusternet.io/v1beta1/managedclusters"},
		{name: "clusternet status", path: "/apis/apps.clusternet.io/v1alpha1/namespaces/default/helmcharts/mysql/status", want: "/apis/apps.clusternet.io/v1alpha1/namespaces/default/helmcharts/mysql/status"},
		{name: "proxy path", path: "/apis/proxies.clusternet.io/v1alpha1/sockets/abc/proxy/direct/api/v1/pods", want: "/apis/proxies.clusternet.io/v1alpha1/sockets/abc/proxy/direct/api/v1/pods"},
		{name: "shadow itself", path: "/apis/shadow/v1alpha1/namespaces/foo/deployments", want: "/apis/shadow/v1alpha1/namespaces/foo/deployments"},
		{name: "core events", path: "/api/v1/namespaces/foo/events", want: "/api/v1/namespaces/foo/events"},
		{name: "events.k8s.io events", path: "/apis/events.k8s.io/v1/namespaces/foo/events", want: "/apis/events.k8s.io/v1/namespaces/foo/events"},
		{name: "discovery root", path: "/api", want: "/api"},
		{name: "core discovery", path: "/api/v1", want: "/api/v1"},
		{name: "core discovery slash", path: "/api/v1/", want: "/api/v1/"},
		{name: "groups", path: "/apis", want: "/apis"},
		{name: "group", path: "/apis/apps", want: "/apis/apps"},
		{name: "group version", path: "/apis/apps/v1", want: "/apis/apps/v1"},
		{name: "group version slash", path: "/apis/apps/v1/", want: "/apis/apps/v1/"},
		{name: "openapi v3", path: "/openapi/v3/apis/apps/v1", want: "/openapi/v3/apis/apps/v1"},
		{name: "openapi v2", path: "/openapi/v2", want: "/openapi/v2"},
		{name: "version", path: "/version", want: "/version"},
		{name: "healthz", path: "/healthz", want: "/healthz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Rewrite(tc.path)
			if tc.wantErr != "" {
				var sub *UnsupportedSubresourceError
				if !errors.As(err, &sub) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Rewrite(%q) error = %v, want an UnsupportedSubresourceError containing %q", tc.path, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Rewrite(%q): %v", tc.path, err)
			}
			if got != tc.want {
				t.Errorf("Rewrite(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
}

// recorder is an API server that records each request's method and path and
// answers with an empty object of the kind the client expects.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.calls = append(r.calls, req.Method+" "+req.URL.Path)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch req.Method {
	case http.MethodDelete:
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Success"}`))
	default:
		_, _ = w.Write([]byte(`{"metadata":{"name":"x"}}`))
	}
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func TestWrapWithClientGo(t *testing.T) {
	for _, base := range []string{"", "/k8s/clusters/c-1"} {
		t.Run("base path "+base, func(t *testing.T) {
			rec := &recorder{}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			cfg := Wrap(&rest.Config{Host: srv.URL + base})
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			dyn, err := dynamic.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			_, _ = cs.AppsV1().Deployments("foo").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "my-nginx"}}, metav1.CreateOptions{})
			_, _ = cs.CoreV1().Namespaces().Get(ctx, "foo", metav1.GetOptions{})
			_, _ = cs.CoreV1().Services("foo").List(ctx, metav1.ListOptions{})
			_, _ = cs.AppsV1().Deployments("foo").GetScale(ctx, "my-nginx", metav1.GetOptions{})
			_ = cs.CoreV1().ConfigMaps("foo").Delete(ctx, "c", metav1.DeleteOptions{})
			_, _ = dyn.Resource(schema.GroupVersionResource{Group: "apps.clusternet.io", Version: "v1alpha1", Resource: "subscriptions"}).
				Namespace("default").Get(ctx, "app-demo", metav1.GetOptions{})
			_, _ = dyn.Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}).Get(ctx, "w", metav1.GetOptions{})
			_, _ = cs.Discovery().ServerVersion()
			_, _ = cs.CoreV1().Events("foo").List(ctx, metav1.ListOptions{})

			want := []string{
				"POST " + base + "/apis/shadow/v1alpha1/namespaces/foo/deployments",
				"GET " + base + "/apis/shadow/v1alpha1/namespaces/foo",
				"GET " + base + "/apis/shadow/v1alpha1/namespaces/foo/services",
				"GET " + base + "/apis/shadow/v1alpha1/namespaces/foo/deployments/my-nginx/scale",
				"DELETE " + base + "/apis/shadow/v1alpha1/namespaces/foo/configmaps/c",
				"GET " + base + "/apis/apps.clusternet.io/v1alpha1/namespaces/default/subscriptions/app-demo",
				"GET " + base + "/apis/shadow/v1alpha1/widgets/w",
				"GET " + base + "/version",
				"GET " + base + "/api/v1/namespaces/foo/events",
			}
			if diff := cmp.Diff(want, rec.got()); diff != "" {
				t.Errorf("paths the server saw (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefusedSubresourceIsAnAPIError(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	cfg := &rest.Config{Host: srv.URL}
	cs, err := kubernetes.NewForConfig(Wrap(cfg))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.AppsV1().Deployments("foo").UpdateStatus(context.Background(), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "my-nginx"}}, metav1.UpdateOptions{})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `subresource "status" of deployments is not served for templates`) {
		t.Errorf("UpdateStatus error = %v, want BadRequest naming the subresource", err)
	}
	_, err = cs.CoreV1().Pods("foo").GetLogs("web", &corev1.PodLogOptions{}).DoRaw(context.Background())
	if !apierrors.IsBadRequest(err) {
		t.Errorf("GetLogs error = %v, want BadRequest", err)
	}
	if got := rec.got(); len(got) != 0 {
		t.Errorf("refused requests reached the server: %v", got)
	}
	// The caller's config is left as it was.
	if cfg.WrapTransport != nil {
		t.Error("Wrap changed the config it was given")
	}
}
