package cli

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// fakeServer is a small kube-apiserver: discovery for a fixed set of
// resources, and create/get/list (as objects or Tables "NAME CREATED AT")
// of any of them, kept in memory. It serves the parent at / and each child
// at /apis/proxies.clusternet.io/v1alpha1/sockets/<id>/proxy/direct/, each
// with its own objects, and records every request as "<where> <METHOD> <path>".
type fakeServer struct {
	*httptest.Server

	mu       sync.Mutex
	requests []string
	headers  map[string]map[string]string            // identity headers of the last request, by where
	objects  map[string][]*unstructured.Unstructured // by where: "parent" or "child:<id>"
}

// resources served, as "group/version resource kind namespaced shortnames".
var fakeResources = []struct {
	gv, resource, kind string
	namespaced         bool
	shortNames         []string
	subresources       []string
}{
	{gv: "v1", resource: "namespaces", kind: "Namespace", shortNames: []string{"ns"}, subresources: []string{"status"}},
	{gv: "v1", resource: "pods", kind: "Pod", namespaced: true, shortNames: []string{"po"}, subresources: []string{"log", "status"}},
	{gv: "v1", resource: "services", kind: "Service", namespaced: true, shortNames: []string{"svc"}},
	{gv: "v1", resource: "events", kind: "Event", namespaced: true, shortNames: []string{"ev"}},
	{gv: "apps/v1", resource: "deployments", kind: "Deployment", namespaced: true, shortNames: []string{"deploy"}, subresources: []string{"scale", "status"}},
	{gv: "apps.clusternet.io/v1alpha1", resource: "subscriptions", kind: "Subscription", namespaced: true, shortNames: []string{"subs", "sub"}},
	{gv: "apps.clusternet.io/v1alpha1", resource: "helmcharts", kind: "HelmChart", namespaced: true, shortNames: []string{"chart"}},
	{gv: "clusters.clusternet.io/v1beta1", resource: "managedclusters", kind: "ManagedCluster", namespaced: true, shortNames: []string{"mcls"}},
	// The shadow group as a hub may advertise it: same names, same short names.
	{gv: "shadow/v1alpha1", resource: "deployments", kind: "Deployment", namespaced: true, shortNames: []string{"deploy"}},
	{gv: "shadow/v1alpha1", resource: "namespaces", kind: "Namespace", shortNames: []string{"ns"}},
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{objects: map[string][]*unstructured.Unstructured{}}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

// addCluster registers a ManagedCluster in the parent.
func (f *fakeServer) addCluster(namespace, name, id string) {
	f.add("parent", "apis/clusters.clusternet.io/v1beta1", "managedclusters", &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "clusters.clusternet.io/v1beta1", "kind": "ManagedCluster",
		"metadata": map[string]interface{}{"name": name, "namespace": namespace,
			"labels": map[string]interface{}{"clusters.clusternet.io/cluster-id": id}},
		"spec": map[string]interface{}{"clusterId": id, "syncMode": "Dual"},
	}})
}

// addObject puts an object into where ("parent" or "child:<id>").
func (f *fakeServer) addObject(where, apiVersion, kind, resource, namespace, name string) {
	prefix := "api/v1"
	if strings.Contains(apiVersion, "/") {
		prefix = "apis/" + apiVersion
	}
	md := map[string]interface{}{"name": name}
	if namespace != "" {
		md["namespace"] = namespace
	}
	f.add(where, prefix, resource, &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": apiVersion, "kind": kind, "metadata": md}})
}

func (f *fakeServer) add(where, prefix, resource string, u *unstructured.Unstructured) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u.SetCreationTimestamp(metaTime())
	u.SetUID(types.UID("uid-" + u.GetName()))
	u.SetResourceVersion("1")
	u.SetAnnotations(mergeMaps(u.GetAnnotations(), map[string]string{"fake/path": prefix + "/" + resource}))
	f.objects[where] = append(f.objects[where], u)
}

func mergeMaps(a, b map[string]string) map[string]string {
	if a == nil {
		a = map[string]string{}
	}
	for k, v := range b {
		a[k] = v
	}
	return a
}

func (f *fakeServer) headersOf(where string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.headers[where]
}

// log returns the requests recorded so far, without discovery.
func (f *fakeServer) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	where, p := "parent", r.URL.Path
	const sockets = "/apis/proxies.clusternet.io/v1alpha1/sockets/"
	if rest, ok := strings.CutPrefix(p, sockets); ok {
		id, tail, _ := strings.Cut(rest, "/proxy/direct")
		where, p = "child:"+id, tail
		if p == "" {
			p = "/"
		}
	}
	if f.serveDiscovery(w, p) {
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, where+" "+r.Method+" "+p)
	if f.headers == nil {
		f.headers = map[string]map[string]string{}
	}
	f.headers[where] = map[string]string{}
	for _, h := range []string{"Authorization", "Impersonate-User", "Impersonate-Extra-Clusternet-Token"} {
		f.headers[where][h] = r.Header.Get(h)
	}
	f.mu.Unlock()

	prefix, resource, namespace, name, ok := splitAPIPath(p)
	if !ok {
		if p == "/version" {
			writeJSON(w, http.StatusOK, map[string]string{"gitVersion": "v1.35.4", "major": "1", "minor": "35"})
			return
		}
		writeJSON(w, http.StatusNotFound, status(http.StatusNotFound, "NotFound", "no such path "+p))
		return
	}
	switch r.Method {
	case http.MethodGet:
		f.get(w, r, where, prefix, resource, namespace, name)
	case http.MethodPost:
		body, _ := io.ReadAll(r.Body)
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal(body, &u.Object); err != nil {
			writeJSON(w, http.StatusBadRequest, status(http.StatusBadRequest, "BadRequest", err.Error()))
			return
		}
		if namespace != "" {
			u.SetNamespace(namespace)
		}
		f.add(where, prefix, resource, u)
		writeJSON(w, http.StatusCreated, u.Object)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, status(http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method))
	}
}

func (f *fakeServer) matching(where, prefix, resource, namespace, name string) []*unstructured.Unstructured {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*unstructured.Unstructured
	for _, u := range f.objects[where] {
		if u.GetAnnotations()["fake/path"] == prefix+"/"+resource && (namespace == "" || u.GetNamespace() == namespace) && (name == "" || u.GetName() == name) {
			out = append(out, u)
		}
	}
	return out
}

func (f *fakeServer) get(w http.ResponseWriter, r *http.Request, where, prefix, resource, namespace, name string) {
	items := f.matching(where, prefix, resource, namespace, name)
	if name != "" && len(items) == 0 {
		writeJSON(w, http.StatusNotFound, status(http.StatusNotFound, "NotFound", fmt.Sprintf("%s %q not found", resource, name)))
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "as=Table") {
		rows := []interface{}{}
		for _, u := range items {
			md := map[string]interface{}{"name": u.GetName(), "namespace": u.GetNamespace(), "creationTimestamp": u.GetCreationTimestamp().UTC().Format(time.RFC3339)}
			rows = append(rows, map[string]interface{}{
				"cells":  []interface{}{u.GetName(), u.GetCreationTimestamp().UTC().Format(time.RFC3339)},
				"object": map[string]interface{}{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": md},
			})
		}
		writeJSON(w, http.StatusOK, map[string]interface{}{
			"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": map[string]interface{}{"resourceVersion": "1"},
			"columnDefinitions": []interface{}{
				map[string]interface{}{"name": "Name", "type": "string", "format": "name"},
				map[string]interface{}{"name": "Created At", "type": "date"},
			},
			"rows": rows,
		})
		return
	}
	if name != "" {
		writeJSON(w, http.StatusOK, items[0].Object)
		return
	}
	list := []interface{}{}
	for _, u := range items {
		list = append(list, u.Object)
	}
	listKind, apiVersion := "List", "v1"
	for _, fr := range fakeResources {
		if fr.resource == resource && (prefix == "api/"+fr.gv || prefix == "apis/"+fr.gv) {
			listKind, apiVersion = fr.kind+"List", fr.gv
		}
	}
	writeJSON(w, http.StatusOK, map[string]interface{}{"kind": listKind, "apiVersion": apiVersion, "metadata": map[string]interface{}{"resourceVersion": "1"}, "items": list})
}

// splitAPIPath splits /api/v1/... and /apis/<g>/<v>/... resource paths.
func splitAPIPath(p string) (prefix, resource, namespace, name string, ok bool) {
	var rest string
	switch {
	case strings.HasPrefix(p, "/api/v1/"):
		prefix, rest = "api/v1", strings.TrimPrefix(p, "/api/v1/")
	case strings.HasPrefix(p, "/apis/"):
		parts := strings.SplitN(strings.TrimPrefix(p, "/apis/"), "/", 3)
		if len(parts) < 3 {
			return "", "", "", "", false
		}
		prefix, rest = "apis/"+parts[0]+"/"+parts[1], parts[2]
	default:
		return "", "", "", "", false
	}
	segs := strings.Split(rest, "/")
	if segs[0] == "namespaces" && len(segs) >= 3 {
		namespace, segs = segs[1], segs[2:]
	}
	resource = segs[0]
	if len(segs) > 1 {
		name = segs[1]
	}
	return prefix, resource, namespace, name, true
}

func (f *fakeServer) serveDiscovery(w http.ResponseWriter, p string) bool {
	switch p {
	case "/api":
		writeJSON(w, http.StatusOK, map[string]interface{}{"kind": "APIVersions", "versions": []string{"v1"}})
		return true
	case "/apis":
		var groups []interface{}
		seen := map[string]bool{}
		for _, r := range fakeResources {
			g, v, ok := strings.Cut(r.gv, "/")
			if !ok || seen[r.gv] {
				continue
			}
			seen[r.gv] = true
			gv := map[string]interface{}{"groupVersion": r.gv, "version": v}
			groups = append(groups, map[string]interface{}{"name": g, "versions": []interface{}{gv}, "preferredVersion": gv})
		}
		writeJSON(w, http.StatusOK, map[string]interface{}{"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
		return true
	}
	gv := strings.TrimPrefix(strings.TrimPrefix(p, "/apis/"), "/api/")
	if strings.HasPrefix(p, "/openapi") {
		writeJSON(w, http.StatusNotFound, status(http.StatusNotFound, "NotFound", "no openapi"))
		return true
	}
	var list []interface{}
	for _, r := range fakeResources {
		if r.gv != gv {
			continue
		}
		list = append(list, map[string]interface{}{"name": r.resource, "kind": r.kind, "namespaced": r.namespaced, "shortNames": r.shortNames,
			"verbs": []string{"create", "delete", "get", "list", "patch", "update", "watch"}})
		for _, sub := range r.subresources {
			list = append(list, map[string]interface{}{"name": r.resource + "/" + sub, "kind": r.kind, "namespaced": r.namespaced, "verbs": []string{"get", "patch", "update"}})
		}
	}
	if list == nil {
		return false
	}
	writeJSON(w, http.StatusOK, map[string]interface{}{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
	return true
}

func status(code int, reason, msg string) map[string]interface{} {
	return map[string]interface{}{"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": msg}
}

func writeJSON(w http.ResponseWriter, code int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// kubeconfigFor writes a kubeconfig pointing at the fake server.
func (f *fakeServer) kubeconfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: parent, cluster: {server: %q, certificate-authority-data: %s}}]
users: [{name: admin, user: {token: parent-token}}]
contexts: [{name: parent, context: {cluster: parent, user: admin, namespace: default}}]
current-context: parent
`, f.URL, base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})))
	if err := writeFile(path, data); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeFile(path, data string) error { return os.WriteFile(path, []byte(data), 0o600) }

var fixedTime = time.Date(2021, 8, 7, 8, 50, 55, 0, time.UTC)

func metaTime() metav1.Time { return metav1.NewTime(fixedTime) }

func obj(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": apiVersion, "kind": kind}}
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

func streamsForTest() genericiooptions.IOStreams {
	return genericiooptions.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}
}
