package deployer

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
// replicas as invalid, and records every write.
type fakeChild struct {
	t *testing.T

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
	f := &fakeChild{t: t, objects: map[string]map[string]any{}, owned: map[string]map[string]bool{},
		rejectReal: map[string]bool{}, rejectDelete: map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
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

// parse splits an object path into its resource, namespace and name.
func (f *fakeChild) parse(path string) (fakeResource, string, string, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var gv []string
	switch {
	case len(parts) > 2 && parts[0] == "api":
		gv, parts = []string{"", parts[1]}, parts[2:]
	case len(parts) > 3 && parts[0] == "apis":
		gv, parts = parts[1:3], parts[3:]
	default:
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
