package deployer

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
)

// fakeChild is a tiny apiserver: discovery for a few kinds (and those of
// the CRDs applied to it), server-side apply (dry-run or not) with a small
// model of field ownership (fakeApply), JSON merge patch with a
// resourceVersion precondition, get and delete (a Namespace takes what is
// in it along). It refuses objects in namespaces it does not hold and the
// deletion of "default", "kube-system" and "kube-public" as the real
// NamespaceLifecycle admission does, rejects Deployments with negative
// replicas as invalid, and records every write. It lists and watches too
// (a watch streams what the collection holds, then no change until the
// request ends), and refuses both for the resources in forbidList as RBAC
// would.
type fakeChild struct {
	t *testing.T
	// done ends the watches still open when the test ends: the server
	// cannot close while a handler runs.
	done chan struct{}
	// url is the server's address, for a rest.Config.
	url string

	mu      sync.Mutex
	objects map[string]map[string]any // by path
	// owned holds, by path, what FieldManager's applies set: "labels/<key>",
	// "annotations/<key>" and "field/<top-level field>".
	owned  map[string]map[string]bool
	rv     int
	writes []string
	// rejectReal holds paths of objects whose real (not dry-run) apply is refused, as
	// a webhook that only acts on real writes would.
	rejectReal map[string]bool
	// rejectDelete holds paths of objects whose deletion a policy refuses.
	rejectDelete map[string]bool
	// forbidList holds resources (plural names) RBAC lets nobody list or watch.
	forbidList map[string]bool
	// hold, when set, sees every request before it is served (outside mu),
	// so a test can hold one back.
	hold func(r *http.Request)
}

type fakeResource struct {
	group, version, resource, kind string
	namespaced                     bool
}

var fakeResources = []fakeResource{
	{"", "v1", "namespaces", "Namespace", false},
	{"", "v1", "services", "Service", true},
	{"", "v1", "configmaps", "ConfigMap", true},
	{"apps", "v1", "deployments", "Deployment", true},
	{"apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false},
}

func newFakeChild(t *testing.T) (*fakeChild, *Child) {
	f := &fakeChild{t: t, done: make(chan struct{}), objects: map[string]map[string]any{}, owned: map[string]map[string]bool{},
		rejectReal: map[string]bool{}, rejectDelete: map[string]bool{}, forbidList: map[string]bool{}}
	srv := httptest.NewServer(f)
	f.url = srv.URL
	t.Cleanup(srv.Close)
	// Before srv.Close (cleanups run last first): it waits for open watches.
	t.Cleanup(func() { close(f.done) })
	child, err := NewChild(&rest.Config{Host: srv.URL, QPS: -1}) // no client-side throttling
	if err != nil {
		t.Fatal(err)
	}
	return f, child
}

func (f *fakeChild) resources() []fakeResource {
	out := append([]fakeResource{}, fakeResources...)
	for path, o := range f.objects {
		if !strings.HasPrefix(path, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/") {
			continue
		}
		spec, _ := o["spec"].(map[string]any)
		names, _ := spec["names"].(map[string]any)
		out = append(out, fakeResource{spec["group"].(string), "v1", names["plural"].(string), names["kind"].(string), spec["scope"] == "Namespaced"})
	}
	return out
}

func (f *fakeChild) write(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

func (f *fakeChild) status(w http.ResponseWriter, code int, reason metav1.StatusReason, kind, name, msg string) {
	f.write(w, code, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
		Code: int32(code), Reason: reason, Message: msg, Details: &metav1.StatusDetails{Kind: kind, Name: name}})
}

func (f *fakeChild) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		hold(r)
	}
	if f.collection(w, r) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.discovery(w, r) {
		return
	}
	path := r.URL.Path
	res, ns, name, ok := f.parse(path)
	if !ok {
		f.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, "", "", "no such path "+path)
		return
	}
	switch r.Method {
	case http.MethodGet:
		if o, ok := f.objects[path]; ok {
			f.write(w, http.StatusOK, o)
			return
		}
		f.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, res.resource, name, fmt.Sprintf("%s %q not found", res.resource, name))
	case http.MethodDelete:
		f.writes = append(f.writes, "DELETE "+path)
		if _, ok := f.objects[path]; !ok {
			f.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, res.resource, name, fmt.Sprintf("%s %q not found", res.resource, name))
			return
		}
		if res.kind == "Namespace" && immortalNamespaces[name] || f.rejectDelete[path] {
			f.status(w, http.StatusForbidden, metav1.StatusReasonForbidden, res.resource, name,
				fmt.Sprintf("%s %q is forbidden: this namespace may not be deleted", res.resource, name))
			return
		}
		delete(f.objects, path)
		delete(f.owned, path)
		if res.kind == "Namespace" {
			for p := range f.objects {
				if strings.Contains(p, "/namespaces/"+name+"/") {
					delete(f.objects, p)
					delete(f.owned, p)
				}
			}
		}
		f.write(w, http.StatusOK, &metav1.Status{Status: metav1.StatusSuccess})
	case http.MethodPatch:
		if r.Header.Get("Content-Type") == "application/merge-patch+json" {
			f.mergePatch(w, path, res, name, r)
			return
		}
		dryRun := r.URL.Query().Get("dryRun") == "All"
		if r.Header.Get("Content-Type") != "application/apply-patch+yaml" || r.URL.Query().Get("fieldManager") != FieldManager || r.URL.Query().Get("force") != "true" {
			f.t.Errorf("PATCH %s is not a forced server-side apply by %s: %s %s", path, FieldManager, r.Header.Get("Content-Type"), r.URL.RawQuery)
		}
		verb := "APPLY "
		if dryRun {
			verb = "DRYRUN "
		}
		f.writes = append(f.writes, verb+path)
		body, _ := io.ReadAll(r.Body)
		var o map[string]any
		if err := json.Unmarshal(body, &o); err != nil {
			f.status(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, res.kind, name, err.Error())
			return
		}
		if res.namespaced {
			if _, ok := f.objects["/api/v1/namespaces/"+ns]; !ok {
				f.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, "namespaces", ns, fmt.Sprintf("namespaces %q not found", ns))
				return
			}
		}
		if spec, _ := o["spec"].(map[string]any); res.kind == "Deployment" && spec["replicas"].(float64) < 0 {
			f.status(w, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "Deployment", name,
				fmt.Sprintf("Deployment.apps %q is invalid: spec.replicas: Invalid value: %v: must be greater than or equal to 0", name, spec["replicas"]))
			return
		}
		if !dryRun && f.rejectReal[path] {
			f.status(w, http.StatusForbidden, metav1.StatusReasonForbidden, res.kind, name, fmt.Sprintf("admission webhook %q denied the request", "policy.example.com"))
			return
		}
		out, owned := f.fakeApply(path, o)
		if res.kind == "CustomResourceDefinition" {
			out["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Established", "status": "True"}}}
		}
		if !dryRun {
			f.rv++
			out["metadata"].(map[string]any)["resourceVersion"] = strconv.Itoa(f.rv)
			f.objects[path] = out
			f.owned[path] = owned
		}
		f.write(w, http.StatusOK, out)
	default:
		f.status(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "", "", r.Method)
	}
}

// immortalNamespaces are those the real apiserver refuses to delete.
var immortalNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true}

// fakeApply is what a server-side apply of o by FieldManager makes of the
// object at path, and what FieldManager then owns: a small model of the
// real rules. The labels, annotations and top-level fields the applier set
// before and no longer sends are removed, what it sends is set, the rest
// (other managers' fields, status) kept; managedFields keep the other
// managers' entries next to FieldManager's Apply entry.
func (f *fakeChild) fakeApply(path string, o map[string]any) (map[string]any, map[string]bool) {
	out := map[string]any{}
	if live, ok := f.objects[path]; ok {
		out = runtime.DeepCopyJSON(live)
	}
	prev := f.owned[path]
	owned := map[string]bool{}
	for k, v := range o {
		if k != "metadata" {
			out[k] = v
			owned["field/"+k] = true
		}
	}
	for k := range prev {
		if field, ok := strings.CutPrefix(k, "field/"); ok && !owned[k] {
			delete(out, field)
		}
	}
	meta, _ := out["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		out["metadata"] = meta
	}
	sent, _ := o["metadata"].(map[string]any)
	for _, k := range []string{"name", "namespace"} {
		if v, ok := sent[k]; ok {
			meta[k] = v
		}
	}
	for _, field := range []string{"labels", "annotations"} {
		have, _ := meta[field].(map[string]any)
		if have == nil {
			have = map[string]any{}
		}
		want, _ := sent[field].(map[string]any)
		for k := range prev {
			if key, ok := strings.CutPrefix(k, field+"/"); ok {
				if _, still := want[key]; !still {
					delete(have, key)
				}
			}
		}
		for k, v := range want {
			have[k] = v
			owned[field+"/"+k] = true
		}
		if len(have) == 0 {
			delete(meta, field)
		} else {
			meta[field] = have
		}
	}
	managed := []any{}
	entries, _ := meta["managedFields"].([]any)
	for _, e := range entries {
		if m, _ := e.(map[string]any); m["manager"] != FieldManager || m["operation"] != "Apply" {
			managed = append(managed, e)
		}
	}
	meta["managedFields"] = append(managed, map[string]any{"manager": FieldManager, "operation": "Apply",
		"apiVersion": o["apiVersion"], "fieldsType": "FieldsV1", "fieldsV1": map[string]any{}})
	return out, owned
}

// mergePatch applies a JSON merge patch (RFC 7386) to the object at path,
// refusing it with a Conflict when it carries another resourceVersion.
func (f *fakeChild) mergePatch(w http.ResponseWriter, path string, res fakeResource, name string, r *http.Request) {
	f.writes = append(f.writes, "PATCH "+path)
	live, ok := f.objects[path]
	if !ok {
		f.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, res.resource, name, fmt.Sprintf("%s %q not found", res.resource, name))
		return
	}
	var patch map[string]any
	if err := json.NewDecoder(r.Body).Decode(&patch); err != nil {
		f.status(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, res.kind, name, err.Error())
		return
	}
	liveMeta, _ := live["metadata"].(map[string]any)
	if m, _ := patch["metadata"].(map[string]any); m["resourceVersion"] != nil && m["resourceVersion"] != liveMeta["resourceVersion"] {
		f.status(w, http.StatusConflict, metav1.StatusReasonConflict, res.kind, name,
			fmt.Sprintf("Operation cannot be fulfilled on %s %q: the object has been modified", res.resource, name))
		return
	}
	out := mergeJSON(runtime.DeepCopyJSON(live), patch).(map[string]any)
	// managedFields [] or [{}] reset them.
	if mf, ok := out["metadata"].(map[string]any)["managedFields"].([]any); ok && (len(mf) == 0 || len(mf) == 1 && len(mf[0].(map[string]any)) == 0) {
		delete(out["metadata"].(map[string]any), "managedFields")
	}
	f.rv++
	out["metadata"].(map[string]any)["resourceVersion"] = strconv.Itoa(f.rv)
	f.objects[path] = out
	f.write(w, http.StatusOK, out)
}

func mergeJSON(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergeJSON(t[k], v)
		}
	}
	return t
}

// splitGroupVersion splits a resource path into its group and version and
// the parts after them.
func splitGroupVersion(path string) (gv, rest []string, ok bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) > 2 && parts[0] == "api":
		return []string{"", parts[1]}, parts[2:], true
	case len(parts) > 3 && parts[0] == "apis":
		return parts[1:3], parts[3:], true
	}
	return nil, nil, false
}

// parse splits an object path into its resource, namespace and name.
func (f *fakeChild) parse(path string) (fakeResource, string, string, bool) {
	gv, parts, ok := splitGroupVersion(path)
	if !ok {
		return fakeResource{}, "", "", false
	}
	ns := ""
	if len(parts) == 4 && parts[0] == "namespaces" {
		ns, parts = parts[1], parts[2:]
	}
	if len(parts) != 2 {
		return fakeResource{}, "", "", false
	}
	for _, res := range f.resources() {
		if res.group == gv[0] && res.version == gv[1] && res.resource == parts[0] && res.namespaced == (ns != "") {
			return res, ns, parts[1], true
		}
	}
	return fakeResource{}, "", "", false
}

// parseCollection splits a collection path into its resource and
// namespace ("" for all of them).
func (f *fakeChild) parseCollection(path string) (fakeResource, string, bool) {
	gv, parts, ok := splitGroupVersion(path)
	if !ok {
		return fakeResource{}, "", false
	}
	ns := ""
	if len(parts) == 3 && parts[0] == "namespaces" {
		ns, parts = parts[1], parts[2:]
	}
	if len(parts) != 1 {
		return fakeResource{}, "", false
	}
	for _, res := range f.resources() {
		if res.group == gv[0] && res.version == gv[1] && res.resource == parts[0] && (ns == "" || res.namespaced) {
			return res, ns, true
		}
	}
	return fakeResource{}, "", false
}

// collection answers a list or a watch of a collection, and says whether
// r was one. A watch streams what the collection holds when asked to
// (sendInitialEvents, as informers do), then stays open without a change
// until the request or the test ends.
func (f *fakeChild) collection(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	f.mu.Lock()
	res, ns, ok := f.parseCollection(r.URL.Path)
	if !ok {
		f.mu.Unlock()
		return false
	}
	q := r.URL.Query()
	watching := q.Get("watch") == "true" || q.Get("watch") == "1"
	if f.forbidList[res.resource] {
		verb := "list"
		if watching {
			verb = "watch"
		}
		f.status(w, http.StatusForbidden, metav1.StatusReasonForbidden, res.resource, "", fmt.Sprintf(
			"%s is forbidden: User %q cannot %s resource %q in API group %q at the cluster scope", res.resource, "clusternet", verb, res.resource, res.group))
		f.mu.Unlock()
		return true
	}
	selector, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		f.status(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, res.kind, "", err.Error())
		f.mu.Unlock()
		return true
	}
	var paths []string
	for p, o := range f.objects {
		r2, ns2, _, ok := f.parse(p)
		meta, _ := o["metadata"].(map[string]any)
		l, _ := meta["labels"].(map[string]any)
		set := labels.Set{}
		for k, v := range l {
			set[k] = fmt.Sprint(v)
		}
		if ok && r2 == res && (ns == "" || ns2 == ns) && selector.Matches(set) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	items := make([]any, 0, len(paths))
	for _, p := range paths {
		items = append(items, runtime.DeepCopyJSON(f.objects[p]))
	}
	apiVersion := res.version
	if res.group != "" {
		apiVersion = res.group + "/" + res.version
	}
	rv := strconv.Itoa(f.rv)
	if !watching {
		f.write(w, http.StatusOK, map[string]any{"apiVersion": apiVersion, "kind": res.kind + "List",
			"metadata": map[string]any{"resourceVersion": rv}, "items": items})
		f.mu.Unlock()
		return true
	}
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	if q.Get("sendInitialEvents") == "true" {
		for _, o := range items {
			_ = enc.Encode(map[string]any{"type": "ADDED", "object": o})
		}
		_ = enc.Encode(map[string]any{"type": "BOOKMARK", "object": map[string]any{"apiVersion": apiVersion, "kind": res.kind,
			"metadata": map[string]any{"resourceVersion": rv, "annotations": map[string]any{"k8s.io/initial-events-end": "true"}}}})
	}
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	select {
	case <-r.Context().Done():
	case <-f.done:
	}
	return true
}

// discovery answers the legacy discovery documents.
func (f *fakeChild) discovery(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	resources := f.resources()
	switch path := r.URL.Path; {
	case path == "/api":
		f.write(w, http.StatusOK, &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
	case path == "/apis":
		list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
		seen := map[string]bool{}
		for _, res := range resources {
			if res.group == "" || seen[res.group] {
				continue
			}
			seen[res.group] = true
			gv := metav1.GroupVersionForDiscovery{GroupVersion: res.group + "/" + res.version, Version: res.version}
			list.Groups = append(list.Groups, metav1.APIGroup{Name: res.group, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv})
		}
		f.write(w, http.StatusOK, list)
	case path == "/api/v1" || strings.HasPrefix(path, "/apis/") && strings.Count(path, "/") == 3:
		gv := strings.TrimPrefix(strings.TrimPrefix(path, "/api/"), "/apis/")
		list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv}
		for _, res := range resources {
			if (res.group == "" && gv == res.version) || gv == res.group+"/"+res.version {
				list.APIResources = append(list.APIResources, metav1.APIResource{Name: res.resource, Kind: res.kind, Namespaced: res.namespaced,
					Verbs: metav1.Verbs{"get", "list", "watch", "patch", "delete"}})
			}
		}
		if len(list.APIResources) == 0 {
			f.status(w, http.StatusNotFound, metav1.StatusReasonNotFound, "", "", "no group version "+gv)
			return true
		}
		f.write(w, http.StatusOK, list)
	default:
		return false
	}
	return true
}

func (f *fakeChild) put(path string, o map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[path] = o
}

func (f *fakeChild) takeWrites() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.writes
	f.writes = nil
	return w
}

func (f *fakeChild) paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for p := range f.objects {
		out = append(out, p)
	}
	return out
}
