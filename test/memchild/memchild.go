// Package memchild is a tiny in-memory Kubernetes apiserver: a stand-in for a
// child cluster where a real one would cost a control plane. pkg/deployer's
// tests use it as the child their deployer applies to, and the 1,000-cluster
// harness (test/scale) runs one per stand-in agent.
//
// It serves discovery for a few kinds (and those of the CRDs applied to it),
// server-side apply (dry-run or not) with a small model of field ownership
// (apply), JSON merge patch with a resourceVersion precondition, get, list,
// watch and delete (a Namespace takes what is in it along). It refuses
// objects in namespaces it does not hold and the deletion of "default",
// "kube-system" and "kube-public" as the real NamespaceLifecycle admission
// does, rejects Deployments with negative replicas as invalid, and records
// every write. A watch streams what the collection holds when asked to
// (sendInitialEvents, as informers may), then every change after the
// resourceVersion it was asked from. What it does not model: authentication,
// authorization beyond the lists refused with ForbidList, and impersonation.
package memchild

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// Options shape a Child.
type Options struct {
	// FieldManager is the manager whose server-side applies the child takes;
	// any other PATCH that is not a forced apply by it is reported to Errorf.
	FieldManager string
	// Errorf hears requests a well-behaved client would not send (tests pass
	// t.Errorf); nil ignores them.
	Errorf func(format string, args ...any)
	// Rollout makes an applied Deployment report all its replicas updated,
	// ready and available at once, as a child whose pods start instantly
	// would. Off, status is whatever Put or Update set.
	Rollout bool
}

// Child is the in-memory apiserver; it is an http.Handler.
type Child struct {
	opts Options
	// done ends the watches still open (Close): an httptest server cannot
	// close while a handler runs.
	done      chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	objects map[string]map[string]any // by path
	// owned holds, by path, what FieldManager's applies set: "labels/<key>",
	// "annotations/<key>" and "field/<top-level field>".
	owned  map[string]map[string]bool
	rv     int
	writes []string
	// rejectReal holds paths of objects whose real (not dry-run) apply is
	// refused, as a webhook that only acts on real writes would.
	rejectReal map[string]bool
	// rejectDelete holds paths of objects whose deletion a policy refuses.
	rejectDelete map[string]bool
	// forbidList holds resources (plural names) RBAC lets nobody list or watch.
	forbidList map[string]bool
	// hold, when set, sees every request before it is served (outside mu).
	hold func(r *http.Request)
	// watchers are the open watches; history the latest changes, replayed
	// to a watch that starts from an older resourceVersion (an informer's
	// list and its watch are two requests: a change between them must not
	// be lost).
	watchers map[*watcher]bool
	history  []event
}

// historySize bounds the changes kept for watches that start behind.
const historySize = 1024

// watchBuffer is how many changes a watch may fall behind before the child
// ends it, as the real apiserver ends a watcher too slow to keep up: the
// client lists again.
const watchBuffer = 64

type watcher struct {
	res      resource
	ns       string
	selector labels.Selector
	events   chan event
}

type event struct {
	rv   int
	path string
	typ  string // ADDED, MODIFIED, DELETED
	obj  map[string]any
}

type resource struct {
	group, version, resource, kind string
	namespaced                     bool
}

var builtin = []resource{
	{"", "v1", "namespaces", "Namespace", false},
	{"", "v1", "services", "Service", true},
	{"", "v1", "configmaps", "ConfigMap", true},
	{"apps", "v1", "deployments", "Deployment", true},
	{"apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false},
}

// New is an empty child: no namespaces, not even "default" (Put them).
func New(o Options) *Child {
	return &Child{opts: o, done: make(chan struct{}), objects: map[string]map[string]any{}, owned: map[string]map[string]bool{},
		rejectReal: map[string]bool{}, rejectDelete: map[string]bool{}, forbidList: map[string]bool{}, watchers: map[*watcher]bool{}}
}

// Close ends the open watches; call it before closing the server.
func (c *Child) Close() { c.closeOnce.Do(func() { close(c.done) }) }

func (c *Child) errorf(format string, args ...any) {
	if c.opts.Errorf != nil {
		c.opts.Errorf(format, args...)
	}
}

func (c *Child) resources() []resource {
	out := append([]resource{}, builtin...)
	for path, o := range c.objects {
		if !strings.HasPrefix(path, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/") {
			continue
		}
		spec, _ := o["spec"].(map[string]any)
		names, _ := spec["names"].(map[string]any)
		out = append(out, resource{spec["group"].(string), "v1", names["plural"].(string), names["kind"].(string), spec["scope"] == "Namespaced"})
	}
	return out
}

func write(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

func status(w http.ResponseWriter, code int, reason metav1.StatusReason, kind, name, msg string) {
	write(w, code, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
		Code: int32(code), Reason: reason, Message: msg, Details: &metav1.StatusDetails{Kind: kind, Name: name}})
}

func notFound(w http.ResponseWriter, res resource, name string) {
	status(w, http.StatusNotFound, metav1.StatusReasonNotFound, res.resource, name, fmt.Sprintf("%s %q not found", res.resource, name))
}

func (c *Child) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	hold := c.hold
	c.mu.Unlock()
	if hold != nil {
		hold(r)
	}
	if c.collection(w, r) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.discovery(w, r) {
		return
	}
	path := r.URL.Path
	res, ns, name, ok := c.parse(path)
	if !ok {
		status(w, http.StatusNotFound, metav1.StatusReasonNotFound, "", "", "no such path "+path)
		return
	}
	switch r.Method {
	case http.MethodGet:
		if o, ok := c.objects[path]; ok {
			write(w, http.StatusOK, o)
			return
		}
		notFound(w, res, name)
	case http.MethodDelete:
		c.delete(w, path, res, name)
	case http.MethodPatch:
		if r.Header.Get("Content-Type") == "application/merge-patch+json" {
			c.mergePatch(w, path, res, name, r)
			return
		}
		c.apply(w, path, res, ns, name, r)
	default:
		status(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "", "", r.Method)
	}
}

// immortalNamespaces are those the real apiserver refuses to delete.
var immortalNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true}

// ImmortalNamespace says whether the real apiserver refuses to delete the
// namespace name, as this child does.
func ImmortalNamespace(name string) bool { return immortalNamespaces[name] }

func (c *Child) delete(w http.ResponseWriter, path string, res resource, name string) {
	c.writes = append(c.writes, "DELETE "+path)
	if _, ok := c.objects[path]; !ok {
		notFound(w, res, name)
		return
	}
	if res.kind == "Namespace" && immortalNamespaces[name] || c.rejectDelete[path] {
		status(w, http.StatusForbidden, metav1.StatusReasonForbidden, res.resource, name,
			fmt.Sprintf("%s %q is forbidden: this namespace may not be deleted", res.resource, name))
		return
	}
	c.remove(path)
	if res.kind == "Namespace" {
		for p := range c.objects {
			if strings.Contains(p, "/namespaces/"+name+"/") {
				c.remove(p)
			}
		}
	}
	write(w, http.StatusOK, &metav1.Status{Status: metav1.StatusSuccess})
}

// apply serves a server-side apply.
func (c *Child) apply(w http.ResponseWriter, path string, res resource, ns, name string, r *http.Request) {
	dryRun := r.URL.Query().Get("dryRun") == "All"
	if r.Header.Get("Content-Type") != "application/apply-patch+yaml" || r.URL.Query().Get("fieldManager") != c.opts.FieldManager || r.URL.Query().Get("force") != "true" {
		c.errorf("PATCH %s is not a forced server-side apply by %s: %s %s", path, c.opts.FieldManager, r.Header.Get("Content-Type"), r.URL.RawQuery)
	}
	verb := "APPLY "
	if dryRun {
		verb = "DRYRUN "
	}
	c.writes = append(c.writes, verb+path)
	body, _ := io.ReadAll(r.Body)
	var o map[string]any
	if err := json.Unmarshal(body, &o); err != nil {
		status(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, res.kind, name, err.Error())
		return
	}
	if res.namespaced {
		if _, ok := c.objects["/api/v1/namespaces/"+ns]; !ok {
			status(w, http.StatusNotFound, metav1.StatusReasonNotFound, "namespaces", ns, fmt.Sprintf("namespaces %q not found", ns))
			return
		}
	}
	if spec, _ := o["spec"].(map[string]any); res.kind == "Deployment" && replicas(spec) < 0 {
		status(w, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "Deployment", name,
			fmt.Sprintf("Deployment.apps %q is invalid: spec.replicas: Invalid value: %v: must be greater than or equal to 0", name, spec["replicas"]))
		return
	}
	if !dryRun && c.rejectReal[path] {
		status(w, http.StatusForbidden, metav1.StatusReasonForbidden, res.kind, name, fmt.Sprintf("admission webhook %q denied the request", "policy.example.com"))
		return
	}
	out, owned := c.applied(path, o)
	if res.kind == "CustomResourceDefinition" {
		out["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Established", "status": "True"}}}
	}
	if c.opts.Rollout && res.kind == "Deployment" {
		rollOut(out)
	}
	if !dryRun {
		c.store(path, out)
		c.owned[path] = owned
	}
	write(w, http.StatusOK, out)
}

// replicas is a Deployment spec's replicas, 1 when unset as the real default.
func replicas(spec map[string]any) float64 {
	n, ok := spec["replicas"].(float64)
	if !ok {
		return 1
	}
	return n
}

// rollOut sets a Deployment's status to all its replicas updated, ready and
// available for its current generation.
func rollOut(d map[string]any) {
	spec, _ := d["spec"].(map[string]any)
	n := replicas(spec)
	gen := d["metadata"].(map[string]any)["generation"]
	d["status"] = map[string]any{"observedGeneration": gen, "replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
		"conditions": []any{map[string]any{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}}}
}

// applied is what a server-side apply of o by FieldManager makes of the
// object at path, and what FieldManager then owns: a small model of the
// real rules. The labels, annotations and top-level fields the applier set
// before and no longer sends are removed, what it sends is set, the rest
// (other managers' fields, status) kept; managedFields keep the other
// managers' entries next to FieldManager's Apply entry. metadata.generation
// moves when spec does, as the real apiserver's.
func (c *Child) applied(path string, o map[string]any) (map[string]any, map[string]bool) {
	out := map[string]any{}
	live, existed := c.objects[path]
	if existed {
		out = runtime.DeepCopyJSON(live)
	}
	prev := c.owned[path]
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
	if spec, ok := out["spec"]; ok {
		gen, _ := meta["generation"].(float64)
		if !existed || gen == 0 || !reflect.DeepEqual(spec, live["spec"]) {
			meta["generation"] = gen + 1
		}
	}
	managed := []any{}
	entries, _ := meta["managedFields"].([]any)
	for _, e := range entries {
		if m, _ := e.(map[string]any); m["manager"] != c.opts.FieldManager || m["operation"] != "Apply" {
			managed = append(managed, e)
		}
	}
	meta["managedFields"] = append(managed, map[string]any{"manager": c.opts.FieldManager, "operation": "Apply",
		"apiVersion": o["apiVersion"], "fieldsType": "FieldsV1", "fieldsV1": map[string]any{}})
	return out, owned
}

// mergePatch applies a JSON merge patch (RFC 7386) to the object at path,
// refusing it with a Conflict when it carries another resourceVersion.
func (c *Child) mergePatch(w http.ResponseWriter, path string, res resource, name string, r *http.Request) {
	c.writes = append(c.writes, "PATCH "+path)
	live, ok := c.objects[path]
	if !ok {
		notFound(w, res, name)
		return
	}
	var patch map[string]any
	if err := json.NewDecoder(r.Body).Decode(&patch); err != nil {
		status(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, res.kind, name, err.Error())
		return
	}
	liveMeta, _ := live["metadata"].(map[string]any)
	if m, _ := patch["metadata"].(map[string]any); m["resourceVersion"] != nil && m["resourceVersion"] != liveMeta["resourceVersion"] {
		status(w, http.StatusConflict, metav1.StatusReasonConflict, res.kind, name,
			fmt.Sprintf("Operation cannot be fulfilled on %s %q: the object has been modified", res.resource, name))
		return
	}
	out := mergeJSON(runtime.DeepCopyJSON(live), patch).(map[string]any)
	// managedFields [] or [{}] reset them.
	if mf, ok := out["metadata"].(map[string]any)["managedFields"].([]any); ok && (len(mf) == 0 || len(mf) == 1 && len(mf[0].(map[string]any)) == 0) {
		delete(out["metadata"].(map[string]any), "managedFields")
	}
	c.store(path, out)
	write(w, http.StatusOK, out)
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

// store keeps o at path with a new resourceVersion and tells the watches
// (c.mu held).
func (c *Child) store(path string, o map[string]any) {
	c.rv++
	meta, _ := o["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		o["metadata"] = meta
	}
	meta["resourceVersion"] = strconv.Itoa(c.rv)
	c.keep(path, o)
}

// keep keeps o at path and tells the watches (c.mu held).
func (c *Child) keep(path string, o map[string]any) {
	typ := "MODIFIED"
	if _, ok := c.objects[path]; !ok {
		typ = "ADDED"
	}
	c.objects[path] = o
	c.notify(event{rv: c.rv, path: path, typ: typ, obj: runtime.DeepCopyJSON(o)})
}

// remove deletes the object at path and tells the watches (c.mu held).
func (c *Child) remove(path string) {
	o, ok := c.objects[path]
	if !ok {
		return
	}
	delete(c.objects, path)
	delete(c.owned, path)
	c.rv++
	gone := runtime.DeepCopyJSON(o)
	gone["metadata"].(map[string]any)["resourceVersion"] = strconv.Itoa(c.rv)
	c.notify(event{rv: c.rv, path: path, typ: "DELETED", obj: gone})
}

// notify records ev and hands it to the watches it matches; a watch too far
// behind is ended (c.mu held).
func (c *Child) notify(ev event) {
	c.history = append(c.history, ev)
	if len(c.history) > historySize {
		c.history = c.history[len(c.history)-historySize:]
	}
	for wt := range c.watchers {
		if !c.matches(wt, ev) {
			continue
		}
		select {
		case wt.events <- ev:
		default:
			close(wt.events)
			delete(c.watchers, wt)
		}
	}
}

func (c *Child) matches(wt *watcher, ev event) bool {
	res, ns, _, ok := c.parse(ev.path)
	return ok && res == wt.res && (wt.ns == "" || ns == wt.ns) && wt.selector.Matches(labelSet(ev.obj))
}

func labelSet(o map[string]any) labels.Set {
	meta, _ := o["metadata"].(map[string]any)
	l, _ := meta["labels"].(map[string]any)
	set := labels.Set{}
	for k, v := range l {
		set[k] = fmt.Sprint(v)
	}
	return set
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
func (c *Child) parse(path string) (resource, string, string, bool) {
	gv, parts, ok := splitGroupVersion(path)
	if !ok {
		return resource{}, "", "", false
	}
	ns := ""
	if len(parts) == 4 && parts[0] == "namespaces" {
		ns, parts = parts[1], parts[2:]
	}
	if len(parts) != 2 {
		return resource{}, "", "", false
	}
	for _, res := range c.resources() {
		if res.group == gv[0] && res.version == gv[1] && res.resource == parts[0] && res.namespaced == (ns != "") {
			return res, ns, parts[1], true
		}
	}
	return resource{}, "", "", false
}

// parseCollection splits a collection path into its resource and
// namespace ("" for all of them).
func (c *Child) parseCollection(path string) (resource, string, bool) {
	gv, parts, ok := splitGroupVersion(path)
	if !ok {
		return resource{}, "", false
	}
	ns := ""
	if len(parts) == 3 && parts[0] == "namespaces" {
		ns, parts = parts[1], parts[2:]
	}
	if len(parts) != 1 {
		return resource{}, "", false
	}
	for _, res := range c.resources() {
		if res.group == gv[0] && res.version == gv[1] && res.resource == parts[0] && (ns == "" || res.namespaced) {
			return res, ns, true
		}
	}
	return resource{}, "", false
}

func (res resource) apiVersion() string {
	if res.group == "" {
		return res.version
	}
	return res.group + "/" + res.version
}

// collection answers a list or a watch of a collection, and says whether r
// was one.
func (c *Child) collection(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	c.mu.Lock()
	res, ns, ok := c.parseCollection(r.URL.Path)
	if !ok {
		c.mu.Unlock()
		return false
	}
	q := r.URL.Query()
	watching := q.Get("watch") == "true" || q.Get("watch") == "1"
	if c.forbidList[res.resource] {
		verb := "list"
		if watching {
			verb = "watch"
		}
		status(w, http.StatusForbidden, metav1.StatusReasonForbidden, res.resource, "", fmt.Sprintf(
			"%s is forbidden: User %q cannot %s resource %q in API group %q at the cluster scope", res.resource, "clusternet", verb, res.resource, res.group))
		c.mu.Unlock()
		return true
	}
	selector, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		status(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, res.kind, "", err.Error())
		c.mu.Unlock()
		return true
	}
	wt := &watcher{res: res, ns: ns, selector: selector}
	var paths []string
	for p, o := range c.objects {
		if c.matches(wt, event{path: p, obj: o}) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	items := make([]any, 0, len(paths))
	for _, p := range paths {
		items = append(items, runtime.DeepCopyJSON(c.objects[p]))
	}
	rv := strconv.Itoa(c.rv)
	if !watching {
		write(w, http.StatusOK, map[string]any{"apiVersion": res.apiVersion(), "kind": res.kind + "List",
			"metadata": map[string]any{"resourceVersion": rv}, "items": items})
		c.mu.Unlock()
		return true
	}
	// Changes after the resourceVersion asked from, then every new one.
	var replay []event
	if from, err := strconv.Atoi(q.Get("resourceVersion")); err == nil && from > 0 {
		for _, ev := range c.history {
			if ev.rv > from && c.matches(wt, ev) {
				replay = append(replay, ev)
			}
		}
	}
	wt.events = make(chan event, len(replay)+watchBuffer)
	for _, ev := range replay {
		wt.events <- ev
	}
	c.watchers[wt] = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.watchers, wt)
		c.mu.Unlock()
	}()
	c.stream(w, r, res, rv, items, wt)
	return true
}

// stream writes a watch: the initial events when asked for, then the
// watcher's changes until the request or the child ends, or the watcher
// falls too far behind.
func (c *Child) stream(w http.ResponseWriter, r *http.Request, res resource, rv string, items []any, wt *watcher) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flush := func() {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	if r.URL.Query().Get("sendInitialEvents") == "true" {
		for _, o := range items {
			_ = enc.Encode(map[string]any{"type": "ADDED", "object": o})
		}
		_ = enc.Encode(map[string]any{"type": "BOOKMARK", "object": map[string]any{"apiVersion": res.apiVersion(), "kind": res.kind,
			"metadata": map[string]any{"resourceVersion": rv, "annotations": map[string]any{"k8s.io/initial-events-end": "true"}}}})
	}
	flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.done:
			return
		case ev, ok := <-wt.events:
			if !ok {
				return
			}
			if err := enc.Encode(map[string]any{"type": ev.typ, "object": ev.obj}); err != nil {
				return
			}
			flush()
		}
	}
}

// discovery answers the legacy discovery documents.
func (c *Child) discovery(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	resources := c.resources()
	switch path := r.URL.Path; {
	case path == "/api":
		write(w, http.StatusOK, &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
	case path == "/apis":
		list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
		seen := map[string]bool{}
		for _, res := range resources {
			if res.group == "" || seen[res.group] {
				continue
			}
			seen[res.group] = true
			gv := metav1.GroupVersionForDiscovery{GroupVersion: res.apiVersion(), Version: res.version}
			list.Groups = append(list.Groups, metav1.APIGroup{Name: res.group, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv})
		}
		write(w, http.StatusOK, list)
	case path == "/api/v1" || strings.HasPrefix(path, "/apis/") && strings.Count(path, "/") == 3:
		gv := strings.TrimPrefix(strings.TrimPrefix(path, "/api/"), "/apis/")
		list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv}
		for _, res := range resources {
			if gv == res.apiVersion() {
				list.APIResources = append(list.APIResources, metav1.APIResource{Name: res.resource, Kind: res.kind, Namespaced: res.namespaced,
					Verbs: metav1.Verbs{"get", "list", "watch", "patch", "delete"}})
			}
		}
		if len(list.APIResources) == 0 {
			status(w, http.StatusNotFound, metav1.StatusReasonNotFound, "", "", "no group version "+gv)
			return true
		}
		write(w, http.StatusOK, list)
	default:
		return false
	}
	return true
}

// Put stores a copy of o at path exactly as given (no resourceVersion
// added), as another writer of the child would, so a test can compare it
// with what it put.
func (c *Child) Put(path string, o map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rv++
	c.keep(path, runtime.DeepCopyJSON(o))
}

// Update changes the object at path in place with change, as another writer
// (a controller of the child's) would, and says whether it was there.
func (c *Child) Update(path string, change func(o map[string]any)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.objects[path]
	if !ok {
		return false
	}
	o = runtime.DeepCopyJSON(o)
	change(o)
	c.store(path, o)
	return true
}

// Object is a copy of the object at path, or nil.
func (c *Child) Object(path string) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.objects[path]
	if !ok {
		return nil
	}
	return runtime.DeepCopyJSON(o)
}

// Paths are the paths of the objects the child holds, sorted.
func (c *Child) Paths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.objects))
}

// TakeWrites returns the writes since the last call: "APPLY <path>",
// "DRYRUN <path>", "PATCH <path>" (merge patch) and "DELETE <path>".
func (c *Child) TakeWrites() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

// RejectReal refuses real (not dry-run) applies of the object at path, as a
// webhook that only acts on real writes would.
func (c *Child) RejectReal(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rejectReal[path] = true
}

// RejectDelete refuses the deletion of the object at path, as a policy would.
func (c *Child) RejectDelete(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rejectDelete[path] = true
}

// ForbidList refuses lists and watches of resource (a plural name), as RBAC
// that grants nobody them would.
func (c *Child) ForbidList(resource string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forbidList[resource] = true
}

// Hold has hold see every request before it is served, outside the child's
// lock, so a test can hold one back; nil stops it.
func (c *Child) Hold(hold func(r *http.Request)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = hold
}
