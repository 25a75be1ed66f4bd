package shadow

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	namespaceBar = `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bar","labels":{"a":"b"}}}`
	volume       = `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pv1"},
		"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"hostPath":{"path":"/tmp"}}}`
	mergePatch = "application/merge-patch+json"
)

// TestRoutesAreKubeAPIServers checks every URL shape against what
// kube-apiserver serves. A cluster-scoped kind under /namespaces/<ns>/ is
// 404 there: the parent authorizes such a request as one in <ns>, so an
// editor of foo (with real-kind checks off) could otherwise read, patch and
// delete every Namespace template through /namespaces/foo/namespaces/<any>
// (the review's repro). The Namespace kind's own /namespaces/<name> is
// served.
func TestRoutesAreKubeAPIServers(t *testing.T) {
	ta := newTestAPI(t)
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces", namespaceBar)
	ta.must(t, http.StatusCreated, "POST", prefix+"/persistentvolumes", volume)
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/configmaps", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`)
	before := map[string]string{
		"bar": ta.must(t, http.StatusOK, "GET", prefix+"/namespaces/bar", "").GetResourceVersion(),
		"pv1": ta.must(t, http.StatusOK, "GET", prefix+"/persistentvolumes/pv1", "").GetResourceVersion(),
	}

	for _, tc := range []struct {
		name, method, path, body, contentType string
		code                                  int
		reason                                metav1.StatusReason
	}{
		// The review's repro, and the other verbs on the same route.
		{"get a Namespace template through another namespace", "GET", "/namespaces/foo/namespaces/bar", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"get it through its own name as namespace", "GET", "/namespaces/bar/namespaces/bar", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"list Namespace templates in a namespace", "GET", "/namespaces/foo/namespaces", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"watch Namespace templates in a namespace", "GET", "/namespaces/foo/namespaces?watch=1&timeoutSeconds=1", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"watch one through the path prefix", "GET", "/watch/namespaces/foo/namespaces/bar?timeoutSeconds=1", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"patch a Namespace template through another namespace", "PATCH", "/namespaces/foo/namespaces/bar",
			`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`, mergePatch, http.StatusNotFound, metav1.StatusReasonNotFound},
		{"update a Namespace template through another namespace", "PUT", "/namespaces/foo/namespaces/bar",
			`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bar","labels":{"x":"y"}}}`, "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"delete a Namespace template through another namespace", "DELETE", "/namespaces/foo/namespaces/bar", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"delete Namespace templates in a namespace", "DELETE", "/namespaces/foo/namespaces", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"create a Namespace template in a namespace", "POST", "/namespaces/foo/namespaces",
			`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"baz"}}`, "", http.StatusNotFound, metav1.StatusReasonNotFound},
		// The same rule for any other cluster-scoped kind.
		{"get another cluster-scoped kind in a namespace", "GET", "/namespaces/foo/persistentvolumes/pv1", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"list another cluster-scoped kind in a namespace", "GET", "/namespaces/foo/persistentvolumes", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"patch another cluster-scoped kind in a namespace", "PATCH", "/namespaces/foo/persistentvolumes/pv1",
			`{"metadata":{"labels":{"x":"y"}}}`, mergePatch, http.StatusNotFound, metav1.StatusReasonNotFound},
		{"delete another cluster-scoped kind in a namespace", "DELETE", "/namespaces/foo/persistentvolumes/pv1", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"create another cluster-scoped kind in a namespace", "POST", "/namespaces/foo/persistentvolumes",
			`{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pv2"}}`, "", http.StatusNotFound, metav1.StatusReasonNotFound},
		// A namespaced kind needs its namespace, except across all of them.
		{"get a namespaced kind without a namespace", "GET", "/configmaps/c", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"delete a namespaced kind without a namespace", "DELETE", "/configmaps/c", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"list a namespaced kind across namespaces", "GET", "/configmaps", "", "", http.StatusOK, ""},
		// POST creates in collections only: the parent authorized the
		// name in the path, the body may name another object.
		{"create at a Namespace's own path", "POST", "/namespaces/bar",
			`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"baz"}}`, "", http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed},
		{"create at a named path", "POST", "/namespaces/foo/configmaps/x",
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"y"}}`, "", http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed},
		// kube-apiserver's own shapes for Namespaces.
		{"get a Namespace template", "GET", "/namespaces/bar", "", "", http.StatusOK, ""},
		{"list Namespace templates", "GET", "/namespaces", "", "", http.StatusOK, ""},
		{"watch one Namespace template through the path prefix", "GET", "/watch/namespaces/bar?timeoutSeconds=1", "", "", http.StatusOK, ""},
		{"a Namespace's status is no template's", "GET", "/namespaces/bar/status", "", "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"a Namespace's finalize is no template's", "PUT", "/namespaces/bar/finalize",
			`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bar"}}`, "", http.StatusNotFound, metav1.StatusReasonNotFound},
		{"get another cluster-scoped kind", "GET", "/persistentvolumes/pv1", "", "", http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.contentType != "" {
				headers = []string{"Content-Type", tc.contentType}
			}
			resp := ta.do(t, tc.method, prefix+tc.path, tc.body, headers...)
			if resp.code != tc.code {
				t.Fatalf("%s %s = %d, want %d: %s", tc.method, tc.path, resp.code, tc.code, resp.body)
			}
			if tc.reason != "" {
				if st := resp.status(t); st.Reason != tc.reason {
					t.Errorf("reason = %s, want %s: %s", st.Reason, tc.reason, st.Message)
				}
			}
		})
	}

	// Nothing was changed, deleted or created through the refused routes.
	after := map[string]string{
		"bar": ta.must(t, http.StatusOK, "GET", prefix+"/namespaces/bar", "").GetResourceVersion(),
		"pv1": ta.must(t, http.StatusOK, "GET", prefix+"/persistentvolumes/pv1", "").GetResourceVersion(),
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("resourceVersions changed (-before +after):\n%s", diff)
	}
	if got := ta.must(t, http.StatusOK, "GET", prefix+"/namespaces/bar", "").GetLabels(); !cmp.Equal(got, map[string]string{"a": "b"}) {
		t.Errorf("Namespace template bar has labels %v, want a=b only", got)
	}
	for _, absent := range []struct{ group, kind, namespace, name string }{
		{"", "Namespace", "", "baz"}, {"", "PersistentVolume", "", "pv2"}, {"", "ConfigMap", "foo", "y"},
	} {
		if m := ta.storedManifest(t, absent.group, absent.kind, absent.namespace, absent.name); m != nil {
			t.Errorf("%s %s/%s was stored through a refused route", absent.kind, absent.namespace, absent.name)
		}
	}
}

func TestNamespacedPath(t *testing.T) {
	for _, tc := range []struct {
		path, namespace string
		want            bool
	}{
		{prefix + "/namespaces/foo", "foo", false},
		{prefix + "/namespaces/foo/", "foo", false},
		{prefix + "/namespaces/foo/status", "foo", false},
		{prefix + "/namespaces/foo/finalize", "foo", false},
		{prefix + "/watch/namespaces/foo", "foo", false},
		{prefix + "/namespaces", "", false},
		{prefix + "/persistentvolumes/pv1", "", false},
		{prefix + "/namespaces/foo/namespaces/bar", "foo", true},
		{prefix + "/namespaces/foo/namespaces", "foo", true},
		{prefix + "/watch/namespaces/foo/namespaces", "foo", true},
		{prefix + "/namespaces/foo/configmaps/c", "foo", true},
		{prefix + "/namespaces/foo/deployments/d/scale", "foo", true},
	} {
		t.Run(tc.path, func(t *testing.T) {
			ri := requestInfo(t, tc.path)
			if ri.Namespace != tc.namespace {
				t.Fatalf("RequestInfo namespace = %q, want %q", ri.Namespace, tc.namespace)
			}
			if got := namespacedPath(ri); got != tc.want {
				t.Errorf("namespacedPath = %v, want %v", got, tc.want)
			}
		})
	}
}
