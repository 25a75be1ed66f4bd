package deployer

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	dynamicfake "k8s.io/client-go/dynamic/fake"

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
	if err := k.Replace([]any{configMapAt("a", "1"), configMapAt("b", "1"), configMapAt("c", "1")}, "1"); err != nil {
		t.Fatal(err)
	}
	if !k.HasSynced() {
		t.Error("not synced after the first list")
	}
	if got, want := c.take(), []string{"add foo/a", "add foo/b", "add foo/c"}; !slices.Equal(got, want) {
		t.Errorf("first list told %q, want %q", got, want)
	}
	if err := k.Replace([]any{configMapAt("a", "1"), configMapAt("b", "5"), configMapAt("d", "6")}, "6"); err != nil {
		t.Fatal(err)
	}
	if got, want := c.take(), []string{"add foo/d", "delete foo/c", "update foo/b"}; !slices.Equal(got, want) {
		t.Errorf("relist told %q, want %q", got, want)
	}
	if k.get("foo/c") != nil || k.get("foo/b").GetResourceVersion() != "5" {
		t.Errorf("store after the relist: c %v, b at %q; want c gone and b at 5", k.get("foo/c"), k.get("foo/b").GetResourceVersion())
	}

	// Watch events: the store holds the change before it is told.
	var inStore *unstructured.Unstructured
	k.on = func(old, cur *unstructured.Unstructured) { inStore = k.get("foo/a"); c.on(old, cur) }
	if err := k.Update(configMapAt("a", "7")); err != nil {
		t.Fatal(err)
	}
	if inStore == nil || inStore.GetResourceVersion() != "7" {
		t.Errorf("when told of the update, the store held %v, want version 7", inStore)
	}
	if err := k.Delete(configMapAt("a", "8")); err != nil {
		t.Fatal(err)
	}
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
	if err := k.Add(u); err != nil {
		t.Fatal(err)
	}
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
	go k.run(ctx, child.Dynamic, schema.GroupVersionResource{Version: "v1", Resource: "configmaps"})
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return k.HasSynced(), nil }); err != nil {
		t.Fatal("the watch did not sync")
	}
	if got, want := c.take(), []string{"add foo/a"}; !slices.Equal(got, want) {
		t.Errorf("first list told %q, want %q", got, want)
	}
	fake.Update("/api/v1/namespaces/foo/configmaps/a", func(o map[string]any) { o["data"] = map[string]any{"x": "1"} })
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		a := k.get("foo/a")
		return a != nil && a.Object["data"] != nil, nil
	}); err != nil {
		t.Fatal("the change did not reach the store")
	}
	if got, want := c.take(), []string{"update foo/a"}; !slices.Equal(got, want) {
		t.Errorf("the change told %q, want %q", got, want)
	}
	if k.get("foo/other") != nil {
		t.Error("the store holds an object without the Description label")
	}
}

// A hub that pushes to 1,000 clusters runs a watch per resource per
// cluster: each must cost a few goroutines, not an informer's ten.
func TestKindWatchGoroutinesPerResource(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(kruntime.NewScheme(),
		map[schema.GroupVersionResource]string{gvr: "ConfigMapList"})
	const n = 50
	before := runtime.NumGoroutine()
	watches := make([]*kindWatch, n)
	for i := range watches {
		watches[i] = newKindWatch(func(_, _ *unstructured.Unstructured) {})
		go watches[i].run(ctx, client, gvr)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		for _, k := range watches {
			if !k.HasSynced() {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatal("the watches did not sync")
	}
	time.Sleep(100 * time.Millisecond) // the watches open after the lists
	per := float64(runtime.NumGoroutine()-before) / n
	if per > 3 {
		t.Errorf("%.1f goroutines per watched resource, want at most 3: the reflector, its resync timer and the watch "+
			"(a shared informer adds five: 7 here)", per)
	}
}
