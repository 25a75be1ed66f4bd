package deployer

import (
	"context"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
)

// kindWatch keeps a child's objects of one resource that carry the
// Description label, as a reflector lists and watches them, and tells each
// change to on, from the reflector's own goroutine.
//
// Why not a shared informer: it runs five goroutines of its own per
// resource (its controller, its queue's loop, the processor and each
// handler's two) and a notification ring buffer per handler, to hand each
// change to many handlers at their own pace. The deployer has one handler,
// which only queues a key (Controller.observe). A hub that pushes to 1,000
// clusters watches three resources or more in each: those goroutines and
// buffers were 15,000 goroutines and about 30 MiB of its heap
// (docs/scale.md). What is left per resource is the reflector, its resync
// timer, and the watch's decoder and connection.
type kindWatch struct {
	store cache.Store
	// on hears a change: old is nil for an object first seen, cur is nil
	// for one deleted. It must not block: the watch waits for it.
	on     func(old, cur *unstructured.Unstructured)
	synced atomic.Bool
}

var _ cache.TransformingStore = &kindWatch{}

func newKindWatch(on func(old, cur *unstructured.Unstructured)) *kindWatch {
	return &kindWatch{store: cache.NewStore(cache.DeletionHandlingMetaNamespaceKeyFunc), on: on}
}

// run lists and watches gvr's labelled objects in client until ctx ends.
func (k *kindWatch) run(ctx context.Context, client dynamic.Interface, gvr schema.GroupVersionResource) {
	labelled := func(o *metav1.ListOptions) { o.LabelSelector = watchedLabel }
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			labelled(&o)
			return client.Resource(gvr).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			labelled(&o)
			return client.Resource(gvr).Watch(ctx, o)
		},
	}, client)
	cache.NewReflectorWithOptions(lw, &unstructured.Unstructured{}, k,
		cache.ReflectorOptions{Name: "deployer " + gvr.String(), TypeDescription: gvr.String()}).RunWithContext(ctx)
}

// HasSynced says whether the first list has been told to on.
func (k *kindWatch) HasSynced() bool { return k.synced.Load() }

// get is key's copy (namespace/name, or name), nil when the child has none.
func (k *kindWatch) get(key string) *unstructured.Unstructured {
	obj, exists, err := k.store.GetByKey(key)
	if err != nil || !exists {
		return nil
	}
	u, _ := obj.(*unstructured.Unstructured)
	return u
}

// Add, Update, Delete, Replace and Resync are what the reflector calls.
// Each updates the store before telling on, so that a worker woken by on
// reads the change from the store.

func (k *kindWatch) Add(obj any) error    { return k.put(obj) }
func (k *kindWatch) Update(obj any) error { return k.put(obj) }

func (k *kindWatch) put(obj any) error {
	cur, ok := lean(obj).(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	old := k.get(storeKey(cur))
	if err := k.store.Update(cur); err != nil {
		return err
	}
	k.on(old, cur)
	return nil
}

func (k *kindWatch) Delete(obj any) error {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	last := k.get(storeKey(u))
	if last == nil {
		last = lean(u).(*unstructured.Unstructured)
	}
	if err := k.store.Delete(u); err != nil {
		return err
	}
	k.on(last, nil)
	return nil
}

// Replace takes a new list (the first, or one after the watch broke) and
// tells on what differs from the store: objects new, changed (by their
// resourceVersion) and gone. An object the list shows unchanged is not
// told again, unlike an informer's relist, which "updates" every object.
func (k *kindWatch) Replace(list []any, resourceVersion string) error {
	type change struct{ old, cur *unstructured.Unstructured }
	var changes []change
	seen := make(map[string]bool, len(list))
	items := make([]any, 0, len(list))
	for _, obj := range list {
		cur, ok := lean(obj).(*unstructured.Unstructured)
		if !ok {
			continue
		}
		key := storeKey(cur)
		seen[key] = true
		items = append(items, cur)
		if old := k.get(key); old == nil || old.GetResourceVersion() != cur.GetResourceVersion() {
			changes = append(changes, change{old, cur})
		}
	}
	for _, obj := range k.store.List() {
		if u, ok := obj.(*unstructured.Unstructured); ok && !seen[storeKey(u)] {
			changes = append(changes, change{u, nil})
		}
	}
	if err := k.store.Replace(items, resourceVersion); err != nil {
		return err
	}
	for _, c := range changes {
		k.on(c.old, c.cur)
	}
	k.synced.Store(true)
	return nil
}

func (k *kindWatch) Resync() error { return nil }

// Transformer is lean, also for the store a streaming list fills first.
func (k *kindWatch) Transformer() cache.TransformFunc {
	return func(obj any) (any, error) { return lean(obj), nil }
}

func storeKey(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return ns + "/" + u.GetName()
	}
	return u.GetName()
}

// lean drops from an object what the deployer never reads from its copy:
// the field sets of its managed fields, often the largest part of a small
// object. Who wrote it and when stay (LastWriter reads them); what reads
// the field sets (Release) reads the object from the child.
func lean(obj any) any {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj
	}
	md, _ := u.Object["metadata"].(map[string]any)
	entries, _ := md["managedFields"].([]any)
	for _, e := range entries {
		if m, ok := e.(map[string]any); ok {
			delete(m, "fieldsV1")
		}
	}
	return u
}
