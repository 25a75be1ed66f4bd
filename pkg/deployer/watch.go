package deployer

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// childWatch is one child as the controller uses it: the applier and
// watches of the objects the deployers put there (by their Description
// label), one per resource (kindWatch), started as Descriptions need them.
type childWatch struct {
	id     string
	child  *Child
	ctx    context.Context
	cancel context.CancelFunc
	// observe hears every change of a watched object.
	observe func(descKey string, ev watchEvent)
	// after is time.After (a fake in tests); it bounds waitSynced.
	after func(time.Duration) <-chan time.Time

	mu    sync.Mutex
	kinds map[schema.GroupVersionResource]*kindWatch
	// unsynced are the resources whose watch did not sync within the
	// syncTimeout a deploy waited for it (the child refuses to list or
	// watch them: RBAC, say). Deploys do not wait for them again until they
	// sync or the watch starts over (DropChild): each wait would hold a
	// worker. Meanwhile their objects are read from the child, not the
	// cache, and their drift is corrected by the periodic full deploys.
	unsynced map[schema.GroupVersionResource]bool
	// users are the keys of the Descriptions deployed through this child.
	users map[string]bool
	// done is closed when child's clients are no longer valid (nil: never).
	done <-chan struct{}
}

// watchEvent is one change of an object in the child.
type watchEvent struct {
	ref Ref
	// statusOnly: only its status or bookkeeping changed (or it was added).
	statusOnly bool
	deleted    bool
	// writer is the field manager that last changed it, when not ours.
	writer string
}

func newChildWatch(ctx context.Context, id string, child *Child, observe func(string, watchEvent)) *childWatch {
	ctx, cancel := context.WithCancel(ctx)
	return &childWatch{id: id, child: child, ctx: ctx, cancel: cancel, observe: observe, after: time.After,
		kinds: map[schema.GroupVersionResource]*kindWatch{}, unsynced: map[schema.GroupVersionResource]bool{},
		users: map[string]bool{}}
}

func (w *childWatch) stop() { w.cancel() }

// invalid says whether the clients w watches through were invalidated.
func (w *childWatch) invalid() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// watch makes sure the kinds of refs are watched; kinds the child does not
// serve (yet) are left for a later call.
func (w *childWatch) watch(refs []Ref) {
	for _, r := range refs {
		m, err := w.child.Mapping(schema.FromAPIVersionAndKind(r.APIVersion, r.Kind))
		if err != nil {
			continue
		}
		w.kindFor(m.Resource)
	}
}

func (w *childWatch) kindFor(gvr schema.GroupVersionResource) *kindWatch {
	w.mu.Lock()
	defer w.mu.Unlock()
	if k, ok := w.kinds[gvr]; ok {
		return k
	}
	k := newKindWatch(func(old, cur *unstructured.Unstructured) {
		switch {
		case cur == nil:
			w.emit(old, watchEvent{deleted: true})
		case old == nil:
			w.emit(cur, watchEvent{statusOnly: true})
		default:
			ev := watchEvent{statusOnly: StatusOnlyChange(old, cur)}
			if !ev.statusOnly {
				writer, ours := LastWriter(cur)
				if ours {
					ev.statusOnly = true // our own apply
				}
				ev.writer = writer
			}
			w.emit(cur, ev)
		}
	})
	go k.run(w.ctx, w.child, gvr)
	w.kinds[gvr] = k
	return k
}

func (w *childWatch) emit(u *unstructured.Unstructured, ev watchEvent) {
	l := u.GetLabels()
	ns, name := l[appsv1alpha1.LabelDescriptionNamespace], l[appsv1alpha1.LabelDescriptionName]
	if ns == "" || name == "" {
		return
	}
	ev.ref = Ref{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
	w.observe(ns+"/"+name, ev)
}

// cached is r's copy in its watch's store. known is false when r's kind is
// not watched or not synced yet: then the cache says nothing.
func (w *childWatch) cached(r Ref) (live *unstructured.Unstructured, known bool) {
	m, err := w.child.Mapping(schema.FromAPIVersionAndKind(r.APIVersion, r.Kind))
	if err != nil {
		return nil, false
	}
	w.mu.Lock()
	k, ok := w.kinds[m.Resource]
	w.mu.Unlock()
	if !ok || !k.HasSynced() {
		return nil, false
	}
	key := r.Name
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		key = r.Namespace + "/" + r.Name
	}
	return k.get(key), true
}

// live is r's copy in the child: from the cache when it knows, else read.
func (w *childWatch) live(ctx context.Context, r Ref) (*unstructured.Unstructured, error) {
	if u, known := w.cached(r); known {
		return u, nil
	}
	return w.child.Get(ctx, r)
}

// existing is r's copy in the child, to tell what an apply creates from
// what existed before: from the cache when it holds r (the cache only sees
// objects carrying Clusternet's labels), read from the child otherwise.
func (w *childWatch) existing(ctx context.Context, r Ref) (*unstructured.Unstructured, error) {
	if u, _ := w.cached(r); u != nil {
		return u, nil
	}
	return w.child.Get(ctx, r)
}

// syncTimeout bounds how long a deploy waits for the watches to sync.
const syncTimeout = 10 * time.Second

// waitSynced waits, at most syncTimeout, for the watches of refs' kinds
// to sync, so that what changes in the child after the deploy reaches
// observe as a change (a watch that lists later sees it as it is).
// A kind that does not sync in time costs that wait once per watch: it is
// remembered in unsynced and not waited for again until it syncs.
func (w *childWatch) waitSynced(ctx context.Context, refs []Ref) {
	var gvrs []schema.GroupVersionResource
	for _, r := range refs {
		m, err := w.child.Mapping(schema.FromAPIVersionAndKind(r.APIVersion, r.Kind))
		if err != nil {
			continue
		}
		gvrs = append(gvrs, m.Resource)
	}
	pending := map[schema.GroupVersionResource]cache.InformerSynced{}
	w.mu.Lock()
	for _, gvr := range gvrs {
		k, ok := w.kinds[gvr]
		switch {
		case !ok:
		case k.HasSynced():
			delete(w.unsynced, gvr)
		case !w.unsynced[gvr]:
			pending[gvr] = k.HasSynced
		}
	}
	w.mu.Unlock()
	if len(pending) == 0 {
		return
	}

	timeout := w.after(syncTimeout)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timedOut := make(chan struct{})
	go func() {
		select {
		case <-timeout:
			close(timedOut)
			cancel()
		case <-ctx.Done():
		}
	}()
	if cache.WaitForCacheSync(ctx.Done(), slices.Collect(maps.Values(pending))...) {
		return
	}
	select {
	case <-timedOut:
	default:
		return // the sync was cancelled: that says nothing of the kinds
	}
	var names []string
	w.mu.Lock()
	for gvr, synced := range pending {
		if !synced() {
			w.unsynced[gvr] = true
			names = append(names, gvr.GroupResource().String())
		}
	}
	w.mu.Unlock()
	slices.Sort(names)
	klog.FromContext(ctx).Info("Watches of the child did not sync in time; deploys no longer wait for them, and their drift is corrected by full deploys only until they sync",
		"cluster", w.id, "timeout", syncTimeout, "resources", names)
}
