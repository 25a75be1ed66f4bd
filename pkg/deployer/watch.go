package deployer

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// childWatch is one child as the controller uses it: the applier and
// informers of the objects the deployers put there (by their Description
// label), one per resource, started as Descriptions need them.
type childWatch struct {
	id     string
	child  *Child
	ctx    context.Context
	cancel context.CancelFunc
	// observe hears every change of a watched object.
	observe func(descKey string, ev watchEvent)

	mu        sync.Mutex
	informers map[schema.GroupVersionResource]cache.SharedIndexInformer
	// users are the keys of the Descriptions deployed through this child.
	users map[string]bool
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
	return &childWatch{id: id, child: child, ctx: ctx, cancel: cancel, observe: observe,
		informers: map[schema.GroupVersionResource]cache.SharedIndexInformer{}, users: map[string]bool{}}
}

func (w *childWatch) stop() { w.cancel() }

// watch makes sure the kinds of refs are watched; kinds the child does not
// serve (yet) are left for a later call.
func (w *childWatch) watch(refs []Ref) {
	for _, r := range refs {
		m, err := w.child.Mapping(schema.FromAPIVersionAndKind(r.APIVersion, r.Kind))
		if err != nil {
			continue
		}
		w.informerFor(m.Resource)
	}
}

func (w *childWatch) informerFor(gvr schema.GroupVersionResource) cache.SharedIndexInformer {
	w.mu.Lock()
	defer w.mu.Unlock()
	if inf, ok := w.informers[gvr]; ok {
		return inf
	}
	inf := dynamicinformer.NewFilteredDynamicInformer(w.child.Dynamic, gvr, metav1.NamespaceAll, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
		func(o *metav1.ListOptions) { o.LabelSelector = watchedLabel }).Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if u, ok := obj.(*unstructured.Unstructured); ok {
				w.emit(u, watchEvent{statusOnly: true})
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*unstructured.Unstructured)
			u, ok2 := newObj.(*unstructured.Unstructured)
			if !ok1 || !ok2 {
				return
			}
			ev := watchEvent{statusOnly: StatusOnlyChange(old, u)}
			if !ev.statusOnly {
				writer, ours := LastWriter(u)
				if ours {
					ev.statusOnly = true // our own apply
				}
				ev.writer = writer
			}
			w.emit(u, ev)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				w.emit(u, watchEvent{deleted: true})
			}
		},
	})
	go inf.RunWithContext(w.ctx)
	w.informers[gvr] = inf
	return inf
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

// cached is r's copy in the informer cache. known is false when r's kind is
// not watched or not synced yet: then the cache says nothing.
func (w *childWatch) cached(r Ref) (live *unstructured.Unstructured, known bool) {
	m, err := w.child.Mapping(schema.FromAPIVersionAndKind(r.APIVersion, r.Kind))
	if err != nil {
		return nil, false
	}
	w.mu.Lock()
	inf, ok := w.informers[m.Resource]
	w.mu.Unlock()
	if !ok || !inf.HasSynced() {
		return nil, false
	}
	key := r.Name
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		key = r.Namespace + "/" + r.Name
	}
	obj, exists, err := inf.GetStore().GetByKey(key)
	if err != nil || !exists {
		return nil, true
	}
	u, _ := obj.(*unstructured.Unstructured)
	return u, true
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

// waitSynced waits (briefly) for the informers of refs' kinds to sync.
func (w *childWatch) waitSynced(ctx context.Context, refs []Ref) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var synced []cache.InformerSynced
	for _, r := range refs {
		m, err := w.child.Mapping(schema.FromAPIVersionAndKind(r.APIVersion, r.Kind))
		if err != nil {
			continue
		}
		w.mu.Lock()
		if inf, ok := w.informers[m.Resource]; ok {
			synced = append(synced, inf.HasSynced)
		}
		w.mu.Unlock()
	}
	cache.WaitForCacheSync(ctx.Done(), synced...)
}
