package deployer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// kindWatch keeps a child's objects of one resource that carry the
// Description label, as it lists and watches them, and tells each change
// to on, from its own goroutine.
//
// Why not a shared informer, or even a reflector: an informer runs five
// goroutines of its own per resource (its controller, its queue's loop, the
// processor and each handler's two) and a notification ring buffer per
// handler, to hand each change to many handlers at their own pace; its
// reflector adds a resync timer and a watch decoder. The deployer has one
// handler, which only queues a key (Controller.observe). A hub that pushes
// to 1,000 clusters watches three resources or more in each: that
// machinery was 21,000 goroutines and about 30 MiB of its heap
// (docs/scale.md). Here one goroutine lists, watches and reads the watch's
// stream itself; the connection's own goroutines are the rest.
type kindWatch struct {
	store cache.Store // of *unstructured.Unstructured, by storeKey
	// on hears a change: old is nil for an object first seen, cur is nil
	// for one deleted. It must not block: the watch waits for it.
	on     func(old, cur *unstructured.Unstructured)
	synced atomic.Bool
}

func newKindWatch(on func(old, cur *unstructured.Unstructured)) *kindWatch {
	return &kindWatch{store: cache.NewStore(func(obj any) (string, error) {
		return storeKey(obj.(*unstructured.Unstructured)), nil
	}), on: on}
}

// Watch timing, as a reflector's: the child ends each watch after a random
// 5 to 10 minutes (so that a fleet's watches do not all restart at once),
// and failures are retried after a backoff that grows to 30 s.
const (
	minWatchTimeout = 5 * time.Minute
	watchBackoffCap = 30 * time.Second
)

// run lists gvr's labelled objects in child, then watches from the list's
// version, resuming a watch the child ended from its last event; until ctx
// ends. It lists again when the version expired (at once if the watch had
// brought events, else after a backoff, so that a child expiring every
// version is not listed in a loop) and after a watch failed (after a
// backoff, so that a store whose watch keeps failing, as RBAC or a proxy
// may make it, is still brought up to date).
func (k *kindWatch) run(ctx context.Context, child *Child, gvr schema.GroupVersionResource) {
	logger := klog.FromContext(ctx).WithValues("resource", gvr.String())
	backoff := wait.Backoff{Duration: 800 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: math.MaxInt32, Cap: watchBackoffCap}
	failures := backoff
	rv := ""
	for ctx.Err() == nil {
		var err error
		if rv == "" {
			rv, err = k.list(ctx, child, gvr)
		}
		if err == nil {
			start := time.Now()
			var progressed bool
			rv, progressed, err = k.watch(ctx, child, gvr, rv)
			if progressed {
				failures = backoff
			}
			switch {
			case ctx.Err() != nil:
				return
			case err == nil && (progressed || time.Since(start) >= time.Second):
				continue // the child ended the watch: resume it
			case err == nil:
				// Ended at once with nothing: something on the way closes
				// watches. Resume after the backoff, not at once, forever.
				err = errors.New("the watch ended at once, with no event")
			case isExpired(err) && progressed:
				logger.V(2).Info("Watch of the child expired; listing again", "err", err)
				rv = ""
				continue
			default:
				rv = ""
			}
		}
		if ctx.Err() != nil {
			return
		}
		delay := failures.Step()
		logger.V(2).Info("Watching the child failed; retrying", "err", err, "retryIn", delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// isExpired says the version to watch from is too old: list again. The
// child says so by answering the watch request, or by an ERROR event.
func isExpired(err error) bool {
	return apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
}

// list replaces the store with gvr's labelled objects and returns the
// list's version.
func (k *kindWatch) list(ctx context.Context, child *Child, gvr schema.GroupVersionResource) (string, error) {
	list, err := child.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: watchedLabel})
	if err != nil {
		return "", err
	}
	k.replace(list.Items)
	return list.GetResourceVersion(), nil
}

// watchEventFrame is one event of a watch's stream (metav1.WatchEvent,
// with the object left for the type its event says).
type watchEventFrame struct {
	Type   watch.EventType `json:"type"`
	Object json.RawMessage `json:"object"`
}

// watch watches gvr's labelled objects from rv until the child ends the
// watch (nil error) or it fails, telling each event; it returns the
// version of the last event and whether any came.
func (k *kindWatch) watch(ctx context.Context, child *Child, gvr schema.GroupVersionResource, rv string) (string, bool, error) {
	timeout := minWatchTimeout + time.Duration(rand.Int64N(int64(minWatchTimeout)))
	// The child ends the watch after timeout; a stream that stalls (a
	// tunnel half open) is ended here a minute later.
	ctx, cancel := context.WithTimeout(ctx, timeout+time.Minute)
	defer cancel()
	path := []string{"/apis", gvr.Group, gvr.Version, gvr.Resource}
	if gvr.Group == "" {
		path = []string{"/api", gvr.Version, gvr.Resource}
	}
	body, err := child.Raw.Get().AbsPath(path...).
		Param("watch", "true").
		Param("resourceVersion", rv).
		Param("labelSelector", watchedLabel).
		Param("allowWatchBookmarks", "true").
		Param("timeoutSeconds", strconv.Itoa(int(timeout.Seconds()))).
		Stream(ctx)
	if err != nil {
		return rv, false, err
	}
	defer func() { _ = body.Close() }()
	dec := json.NewDecoder(body)
	progressed := false
	for {
		var ev watchEventFrame
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return rv, progressed, nil
			}
			return rv, progressed, err
		}
		if ev.Type == watch.Error {
			var status metav1.Status
			if err := json.Unmarshal(ev.Object, &status); err != nil {
				return rv, progressed, fmt.Errorf("decoding a watch error: %w", err)
			}
			return rv, progressed, apierrors.FromObject(&status)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(ev.Object); err != nil {
			return rv, progressed, fmt.Errorf("decoding a %s watch event: %w", ev.Type, err)
		}
		switch ev.Type {
		case watch.Added, watch.Modified:
			k.put(u)
		case watch.Deleted:
			k.remove(u)
		case watch.Bookmark:
		default:
			return rv, progressed, fmt.Errorf("unknown watch event type %q", ev.Type)
		}
		if v := u.GetResourceVersion(); v != "" {
			rv = v
		}
		progressed = true
	}
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

// put, remove and replace update the store before telling on, so that a
// worker woken by on reads the change from the store. The store holds only
// *unstructured.Unstructured and never fails to take one: they return no
// error.

func (k *kindWatch) put(cur *unstructured.Unstructured) {
	lean(cur)
	old := k.get(storeKey(cur))
	_ = k.store.Update(cur)
	k.on(old, cur)
}

func (k *kindWatch) remove(u *unstructured.Unstructured) {
	last := k.get(storeKey(u))
	if last == nil {
		last = lean(u)
	}
	_ = k.store.Delete(u)
	k.on(last, nil)
}

// replace takes a new list (the first, or one after the watch broke) and
// tells on what differs from the store: objects new, changed (by their
// resourceVersion) and gone. An object the list shows unchanged is not
// told again, unlike an informer's relist, which "updates" every object.
func (k *kindWatch) replace(list []unstructured.Unstructured) {
	type change struct{ old, cur *unstructured.Unstructured }
	var changes []change
	seen := make(map[string]bool, len(list))
	items := make([]any, len(list))
	for i := range list {
		cur := lean(&list[i])
		key := storeKey(cur)
		seen[key] = true
		items[i] = cur
		if old := k.get(key); old == nil || old.GetResourceVersion() != cur.GetResourceVersion() {
			changes = append(changes, change{old, cur})
		}
	}
	for _, obj := range k.store.List() {
		if u := obj.(*unstructured.Unstructured); !seen[storeKey(u)] {
			changes = append(changes, change{u, nil})
		}
	}
	_ = k.store.Replace(items, "")
	for _, c := range changes {
		k.on(c.old, c.cur)
	}
	k.synced.Store(true)
}

// storeKey is u's key in the store: namespace/name, or name.
func storeKey(u *unstructured.Unstructured) string { return cache.MetaObjectToName(u).String() }

// lean drops from u what the deployer never reads from its copy: the field
// sets of its managed fields, often the largest part of a small object.
// Who wrote it and when stay (LastWriter reads them); what reads the field
// sets (Release) reads the object from the child.
func lean(u *unstructured.Unstructured) *unstructured.Unstructured {
	md, _ := u.Object["metadata"].(map[string]any)
	entries, _ := md["managedFields"].([]any)
	for _, e := range entries {
		if m, ok := e.(map[string]any); ok {
			delete(m, "fieldsV1")
		}
	}
	return u
}
