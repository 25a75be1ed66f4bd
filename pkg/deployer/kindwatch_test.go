package deployer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// changes records what a kindWatch tells, as "add ns/name", "update ns/name"
// and "delete ns/name".
type changes struct {
	mu  sync.Mutex
	got []string
}

func (c *changes) on(old, cur *unstructured.Unstructured) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case cur == nil:
		c.got = append(c.got, "delete "+storeKey(old))
	case old == nil:
		c.got = append(c.got, "add "+storeKey(cur))
	default:
		c.got = append(c.got, "update "+storeKey(cur))
	}
}

func (c *changes) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.got
	c.got = nil
	slices.Sort(got)
	return got
}

func configMapsAt(us ...*unstructured.Unstructured) []unstructured.Unstructured {
	out := make([]unstructured.Unstructured, len(us))
	for i, u := range us {
		out[i] = *u
	}
	return out
}

func configMapAt(name, rv string) *unstructured.Unstructured {
	u := unstr(obj("v1", "ConfigMap", "foo", name))
	u.SetResourceVersion(rv)
	return u
}

// A new list (a relist after the watch broke) is told as what changed
// since the last one: an object new, one at another version, one gone. An
// object at the same version is not told again: each telling costs a
// Description's sync.
func TestKindWatchReplaceTellsWhatChanged(t *testing.T) {
	var c changes
	k := newKindWatch(c.on)
	if k.HasSynced() {
		t.Fatal("synced before the first list")
	}
	k.replace(configMapsAt(configMapAt("a", "1"), configMapAt("b", "1"), configMapAt("c", "1")))
	if !k.HasSynced() {
		t.Error("not synced after the first list")
	}
	if got, want := c.take(), []string{"add foo/a", "add foo/b", "add foo/c"}; !slices.Equal(got, want) {
		t.Errorf("first list told %q, want %q", got, want)
	}
	k.replace(configMapsAt(configMapAt("a", "1"), configMapAt("b", "5"), configMapAt("d", "6")))
	if got, want := c.take(), []string{"add foo/d", "delete foo/c", "update foo/b"}; !slices.Equal(got, want) {
		t.Errorf("relist told %q, want %q", got, want)
	}
	if k.get("foo/c") != nil || k.get("foo/b").GetResourceVersion() != "5" {
		t.Errorf("store after the relist: c %v, b at %q; want c gone and b at 5", k.get("foo/c"), k.get("foo/b").GetResourceVersion())
	}

	// Watch events: the store holds the change before it is told.
	var inStore *unstructured.Unstructured
	k.on = func(old, cur *unstructured.Unstructured) { inStore = k.get("foo/a"); c.on(old, cur) }
	k.put(configMapAt("a", "7"))
	if inStore == nil || inStore.GetResourceVersion() != "7" {
		t.Errorf("when told of the update, the store held %v, want version 7", inStore)
	}
	k.remove(configMapAt("a", "8"))
	if inStore != nil {
		t.Errorf("when told of the deletion, the store still held %v", inStore)
	}
	if got, want := c.take(), []string{"delete foo/a", "update foo/a"}; !slices.Equal(got, want) {
		t.Errorf("watch events told %q, want %q", got, want)
	}
}

// The copies keep who wrote an object and when (LastWriter reads them),
// not the field sets, which nothing reads from the store.
func TestKindWatchKeepsWritersNotFieldSets(t *testing.T) {
	var c changes
	k := newKindWatch(c.on)
	u := configMapAt("a", "1")
	u.Object["metadata"].(map[string]any)["managedFields"] = []any{
		map[string]any{"manager": "kubectl", "operation": "Update", "time": "2026-12-07T10:00:00Z",
			"fieldsType": "FieldsV1", "fieldsV1": map[string]any{"f:data": map[string]any{"f:x": map[string]any{}}}},
		map[string]any{"manager": FieldManager, "operation": "Apply", "time": "2026-12-07T09:00:00Z",
			"fieldsType": "FieldsV1", "fieldsV1": map[string]any{"f:data": map[string]any{}}},
	}
	k.put(u)
	got := k.get("foo/a")
	for _, e := range got.GetManagedFields() {
		if e.FieldsV1 != nil {
			t.Errorf("the store keeps %s's field set", e.Manager)
		}
	}
	if writer, ours := LastWriter(got); writer != `"kubectl" (Update)` || ours {
		t.Errorf("LastWriter of the stored copy = %q, ours %v; want kubectl's Update, not ours", writer, ours)
	}
}

// Through a real list and watch (the in-memory child over HTTP): the first
// list is told and synced, then a change another writer makes arrives, and
// objects without the Description label are never seen.
func TestKindWatchListsAndWatchesLabelledObjects(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fake, child := newFakeChild(t)
	labelled := func(name string) map[string]any {
		o := obj("v1", "ConfigMap", "foo", name)
		o["metadata"].(map[string]any)["labels"] = map[string]any{appsv1alpha1.LabelDescriptionName: "demo"}
		return o
	}
	fake.Put("/api/v1/namespaces/foo/configmaps/a", labelled("a"))
	fake.Put("/api/v1/namespaces/foo/configmaps/other", obj("v1", "ConfigMap", "foo", "other"))

	var c changes
	k := newKindWatch(c.on)
	go k.run(ctx, child, configMaps)
	waitFor(t, "the watch to sync", k.HasSynced)
	if got, want := c.take(), []string{"add foo/a"}; !slices.Equal(got, want) {
		t.Errorf("first list told %q, want %q", got, want)
	}
	fake.Update("/api/v1/namespaces/foo/configmaps/a", func(o map[string]any) { o["data"] = map[string]any{"x": "1"} })
	// The store takes the change before the handler is told (put), so
	// wait for both.
	var told []string
	waitFor(t, "the change to reach the store and be told", func() bool {
		told = append(told, c.take()...)
		a := k.get("foo/a")
		return a != nil && a.Object["data"] != nil && len(told) > 0
	})
	if want := []string{"update foo/a"}; !slices.Equal(told, want) {
		t.Errorf("the change told %q, want %q", told, want)
	}
	if k.get("foo/other") != nil {
		t.Error("the store holds an object without the Description label")
	}
}

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// A watch the child ends is resumed from its last event's version (a
// bookmark's too), without listing again; a version the child no longer
// has, said by an ERROR event or by the watch request's 410, is listed
// again, and that list tells only what changed.
func TestKindWatchResumesAndRelistsWhenExpired(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cm := func(name, rv string) map[string]any {
		o := obj("v1", "ConfigMap", "foo", name)
		o["metadata"].(map[string]any)["resourceVersion"] = rv
		return o
	}
	lists := [][]any{
		{cm("a", "5")},
		{cm("a", "11"), cm("b", "20")},
		{cm("a", "11"), cm("b", "20")},
	}
	listRVs := []string{"10", "20", "21"}
	var mu sync.Mutex
	var watchedFrom []string
	listed := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("labelSelector") != watchedLabel {
			t.Errorf("%s without the Description label's selector: %q", r.URL, q.Get("labelSelector"))
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		mu.Lock()
		if q.Get("watch") != "true" {
			i := min(listed, len(lists)-1)
			listed++
			mu.Unlock()
			_ = enc.Encode(map[string]any{"apiVersion": "v1", "kind": "ConfigMapList",
				"metadata": map[string]any{"resourceVersion": listRVs[i]}, "items": lists[i]})
			return
		}
		watchedFrom = append(watchedFrom, q.Get("resourceVersion"))
		n := len(watchedFrom)
		mu.Unlock()
		switch n {
		case 1: // a change and a bookmark, then the child ends the watch
			_ = enc.Encode(map[string]any{"type": "MODIFIED", "object": cm("a", "11")})
			_ = enc.Encode(map[string]any{"type": "BOOKMARK", "object": map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
				"metadata": map[string]any{"resourceVersion": "15"}}})
		case 2: // the version expired, said in the stream
			_ = enc.Encode(map[string]any{"type": "ERROR", "object": map[string]any{"apiVersion": "v1", "kind": "Status",
				"status": "Failure", "reason": "Expired", "code": 410, "message": "too old resource version: 15 (18)"}})
		case 3: // the version expired, said by the request's answer
			w.WriteHeader(http.StatusGone)
			_ = enc.Encode(map[string]any{"apiVersion": "v1", "kind": "Status",
				"status": "Failure", "reason": "Expired", "code": 410, "message": "too old resource version: 20 (21)"})
		default:
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	defer srv.Close()
	defer cancel() // before srv.Close: it waits for the watch held open
	child, err := NewChild(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	var c changes
	k := newKindWatch(c.on)
	go k.run(ctx, child, configMaps)
	waitFor(t, "a fourth watch", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(watchedFrom) >= 4
	})
	mu.Lock()
	from, timesListed := slices.Clone(watchedFrom[:4]), listed
	mu.Unlock()
	if want := []string{"10", "15", "20", "21"}; !slices.Equal(from, want) {
		t.Errorf("watched from versions %q, want %q: resumed after the bookmark, from each list's version after an expiry", from, want)
	}
	if timesListed != 3 {
		t.Errorf("listed %d times, want 3: the first list, and one after each expiry", timesListed)
	}
	if got, want := c.take(), []string{"add foo/a", "add foo/b", "update foo/a"}; !slices.Equal(got, want) {
		t.Errorf("told %q, want %q: a relist tells only what changed", got, want)
	}
}

// A hub that pushes to 1,000 clusters runs a watch per resource per
// cluster: each must cost its connection and one goroutine, not a shared
// informer's machinery besides.
func TestKindWatchGoroutinesPerResource(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, child := newFakeChild(t)
	const n = 30
	before := runtime.NumGoroutine()
	watches := make([]*kindWatch, n)
	for i := range watches {
		watches[i] = newKindWatch(func(_, _ *unstructured.Unstructured) {})
		go watches[i].run(ctx, child, configMaps)
	}
	waitFor(t, "the watches to sync", func() bool {
		for _, k := range watches {
			if !k.HasSynced() {
				return false
			}
		}
		return true
	})
	time.Sleep(200 * time.Millisecond) // the watches open after the lists
	// Per watch, in this process: the watch's goroutine, the client
	// connection's read and write loops, and the in-memory child's two for
	// serving it.
	if per := float64(runtime.NumGoroutine()-before) / n; per > 5.5 {
		t.Errorf("%.1f goroutines per watched resource, want 5: a reflector adds two, a shared informer five more", per)
	}
}

// Something on the way that ends every watch at once, with nothing in it
// (a proxy, a tunnel), is retried after a growing backoff, not at once and
// forever.
func TestKindWatchBacksOffWatchesThatEndAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var watches arrivals
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") == "true" {
			watches.add()
			return // an empty stream
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "v1", "kind": "ConfigMapList",
			"metadata": map[string]any{"resourceVersion": "1"}, "items": []any{}})
	}))
	defer srv.Close()
	defer cancel()
	child, err := NewChild(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	go newKindWatch(func(_, _ *unstructured.Unstructured) {}).run(ctx, child, configMaps)
	// At once, then after 0.8 to 1.2 s, then 1.6 to 2.4 s later.
	watches.wantBackoff(t, "watches of a child ending each at once")
}

// arrivals records when a test server was asked.
type arrivals struct {
	mu sync.Mutex
	at []time.Time
}

func (a *arrivals) add() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.at = append(a.at, time.Now())
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

// wantBackoff waits for three requests and checks each came at least the
// backoff's shortest wait (0.8 s, then 1.6 s) after the one before: retried,
// and never in a loop. Gaps, not counts in a fixed time, so that a loaded
// machine's slow start does not fail it.
func (a *arrivals) wantBackoff(t *testing.T, what string) {
	t.Helper()
	waitFor(t, "three "+what, func() bool { return a.count() >= 3 })
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, least := range []time.Duration{800 * time.Millisecond, 1600 * time.Millisecond} {
		if gap := a.at[i+1].Sub(a.at[i]); gap < least {
			t.Errorf("%s: request %d came %s after the one before, want at least %s: a backoff", what, i+2, gap.Round(time.Millisecond), least)
		}
	}
}

// A watch that always fails, whether the child expires every version or
// refuses the watch (RBAC that grants list but not watch, a proxy), is
// listed again after a backoff each time: never in a loop, and the store
// is still brought up to date by the lists.
func TestKindWatchListsAgainAfterFailedWatches(t *testing.T) {
	for _, tc := range []struct {
		name  string
		watch func(w http.ResponseWriter)
	}{
		{"every version expired", func(w http.ResponseWriter) {
			_ = json.NewEncoder(w).Encode(map[string]any{"type": "ERROR", "object": map[string]any{"apiVersion": "v1", "kind": "Status",
				"status": "Failure", "reason": "Expired", "code": 410, "message": "too old resource version"}})
		}},
		{"watch forbidden", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "v1", "kind": "Status",
				"status": "Failure", "reason": "Forbidden", "code": 403, "message": "configmaps is forbidden: cannot watch"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var lists arrivals
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if r.URL.Query().Get("watch") == "true" {
					tc.watch(w)
					return
				}
				items := []any{obj("v1", "ConfigMap", "foo", "a")}
				lists.add()
				if lists.count() > 1 {
					items = append(items, obj("v1", "ConfigMap", "foo", "b"))
				}
				_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "v1", "kind": "ConfigMapList",
					"metadata": map[string]any{"resourceVersion": "1"}, "items": items})
			}))
			defer srv.Close()
			defer cancel()
			child, err := NewChild(&rest.Config{Host: srv.URL, QPS: -1})
			if err != nil {
				t.Fatal(err)
			}
			k := newKindWatch(func(_, _ *unstructured.Unstructured) {})
			go k.run(ctx, child, configMaps)
			// At once, then after 0.8 to 1.2 s, then 1.6 to 2.4 s later.
			lists.wantBackoff(t, "lists, each after a failed watch")
			waitFor(t, "the store to hold what the second list brought", func() bool { return k.get("foo/b") != nil })
		})
	}
}

// A watch stream that breaks in the middle of an event, or that carries an
// ERROR event other than an expiry, is a failed watch: listed again after a
// backoff. Cancelling the watch ends its request in the child.
func TestKindWatchBrokenStreamAndCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var watches, lists int
	open := make(chan struct{})
	closed := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		mu.Lock()
		if r.URL.Query().Get("watch") != "true" {
			lists++
			mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "v1", "kind": "ConfigMapList",
				"metadata": map[string]any{"resourceVersion": "1"}, "items": []any{}})
			return
		}
		watches++
		n := watches
		mu.Unlock()
		switch n {
		case 1: // an event, then half of one, then the connection drops
			_ = json.NewEncoder(w).Encode(map[string]any{"type": "ADDED", "object": obj("v1", "ConfigMap", "foo", "a")})
			_, _ = w.Write([]byte(`{"type":"MODIFIED","object":{"apiVersion":"v1","kin`))
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		case 2: // the child's own failure, said in the stream
			_ = json.NewEncoder(w).Encode(map[string]any{"type": "ERROR", "object": map[string]any{"apiVersion": "v1", "kind": "Status",
				"status": "Failure", "reason": "InternalError", "code": 500, "message": "etcd is unhappy"}})
		default:
			w.(http.Flusher).Flush()
			close(open)
			<-r.Context().Done()
			close(closed)
		}
	}))
	defer srv.Close()
	defer cancel()
	child, err := NewChild(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	var c changes
	k := newKindWatch(c.on)
	go func() {
		k.run(ctx, child, configMaps)
		close(ended)
	}()
	select {
	case <-open:
	case <-time.After(10 * time.Second):
		t.Fatal("no third watch")
	}
	mu.Lock()
	if lists != 3 {
		t.Errorf("%d lists before the third watch, want 3: the first, and one after each failed watch", lists)
	}
	mu.Unlock()
	// The event before the break was told; the list after it, which the
	// child answers empty, tells its deletion.
	if got, want := c.take(), []string{"add foo/a", "delete foo/a"}; !slices.Equal(got, want) {
		t.Errorf("told %q, want %q", got, want)
	}
	cancel()
	for what, ch := range map[string]chan struct{}{"the watch's request in the child": closed, "run": ended} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not end when the watch was cancelled", what)
		}
	}
}
