// Package controller is the work loop Clusternet's controllers share, in the
// hub and in the agent alike: a typed, rate-limited queue of object keys fed
// by informers (each mapping its objects to keys) and by Add, workers that
// call a sync function, and requeues when sync asks to look again later.
package controller

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// SyncFunc brings the object with key to its desired state. A positive
// duration asks to be called again for key after that long; an error retries
// with rate-limited backoff. The logger in ctx names the controller and key.
type SyncFunc func(ctx context.Context, key string) (time.Duration, error)

// KeyFunc maps an object an informer reports (added, updated, or deleted,
// tombstones unwrapped) to the keys to queue; none ignores it.
type KeyFunc func(obj any) []string

// quietRetries is how many retries in a row of a key whose sync failed with
// a Conflict or AlreadyExists go unreported: past that the cache is not just
// a moment behind, and the error is worth a word (about a second with the
// default rate limiter).
const quietRetries = 8

// Loop runs a SyncFunc over the keys its informers and Add queue.
type Loop struct {
	name   string
	sync   SyncFunc
	queue  workqueue.TypedRateLimitingInterface[string]
	synced []cache.InformerSynced
}

// New returns a loop named name (in logs and workqueue metrics) calling
// sync. Watch and WaitFor come before Run.
func New(name string, sync SyncFunc, opts ...Option) *Loop {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	config := workqueue.TypedRateLimitingQueueConfig[string]{Name: name}
	if o.order != nil {
		// The order is the innermost queue's; the delaying queue (AddAfter,
		// rate-limited retries) adds to it when a key is due, and the
		// typed queue around it keeps its de-duplication: a key is queued
		// once, and never handed to two workers at once.
		config.DelayingQueue = workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[string]{
			Name:  name,
			Queue: workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: name, Queue: o.order}),
		})
	}
	return &Loop{
		name:  name,
		sync:  sync,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), config),
	}
}

// An Option adjusts a Loop.
type Option func(*options)

type options struct {
	order workqueue.Queue[string]
}

// Ordered hands the keys waiting in the loop out in order's order instead
// of first come, first served. order holds only keys waiting, each once:
// the loop calls its Push for a key newly queued, Touch for one queued
// again while it waits, and Pop for the next to sync.
func Ordered(order workqueue.Queue[string]) Option {
	return func(o *options) { o.order = order }
}

// A WatchOption adjusts what Watch queues.
type WatchOption func(*watchOptions)

type watchOptions struct {
	ignoreUpdate func(old, cur any) bool
}

// IgnoreUpdates skips the updates for which ignore(old, cur) holds, such as
// the controller's own status writes. Adds and deletes are always queued.
func IgnoreUpdates(ignore func(old, cur any) bool) WatchOption {
	return func(o *watchOptions) { o.ignoreUpdate = ignore }
}

// Watch queues keys(obj) for every object informer adds, updates or deletes
// (nil keys is OwnKey). A deleted object's key is queued too: sync finds it
// gone (NotFound from its lister) and cleans up or does nothing. Run waits
// until informer has delivered its initial list here.
func (l *Loop) Watch(informer cache.SharedIndexInformer, keys KeyFunc, opts ...WatchOption) error {
	var o watchOptions
	for _, opt := range opts {
		opt(&o)
	}
	if keys == nil {
		keys = OwnKey
	}
	add := func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			// Deleted while the watch was down: the last state known.
			obj = tomb.Obj
		}
		for _, k := range keys(obj) {
			l.queue.Add(k)
		}
	}
	reg, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: add,
		UpdateFunc: func(old, cur any) {
			if o.ignoreUpdate != nil && o.ignoreUpdate(old, cur) {
				return
			}
			add(cur)
		},
		DeleteFunc: add,
	})
	if err != nil {
		return err
	}
	l.WaitFor(reg.HasSynced)
	return nil
}

// WaitFor has Run wait for synced before working: the informers sync reads
// (a cluster that is not in a cache yet would look gone) or that feed the
// loop through Add.
func (l *Loop) WaitFor(synced ...cache.InformerSynced) {
	l.synced = append(l.synced, synced...)
}

// OwnKey is obj's own namespace/name key (name for a cluster-scoped object).
func OwnKey(obj any) []string {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return nil
	}
	return []string{key}
}

// Add queues key.
func (l *Loop) Add(key string) { l.queue.Add(key) }

// AddAfter queues key once d has passed.
func (l *Loop) AddAfter(key string, d time.Duration) { l.queue.AddAfter(key, d) }

// Run waits for the watched informers to sync, then works the queue with
// workers (at least one) until ctx ends, and returns once they stopped.
func (l *Loop) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	logger := klog.FromContext(ctx).WithValues("controller", l.name)
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Starting controller")
	defer logger.Info("Stopping controller")
	var wg sync.WaitGroup
	defer wg.Wait()
	defer l.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), l.synced...) {
		return
	}
	for range max(workers, 1) {
		wg.Go(func() {
			defer utilruntime.HandleCrash()
			for l.next(ctx) {
			}
		})
	}
	<-ctx.Done()
}

// next syncs one key; false when the loop is shutting down.
func (l *Loop) next(ctx context.Context) bool {
	key, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(key)
	if ctx.Err() != nil {
		return false // stopping: what is left is not worth a failed sync each
	}
	logger := klog.FromContext(ctx).WithValues("key", key)
	ctx = klog.NewContext(ctx, logger)
	again, err := l.sync(ctx, key)
	switch {
	case (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && l.queue.NumRequeues(key) < quietRetries:
		// A write based on a cached object that changed meanwhile, or a
		// create of what the cache did not show yet: the cache was behind
		// the API server. Look again once it caught up; nothing to report.
		logger.V(4).Info("Stale cache, will retry", "err", err)
		l.queue.AddRateLimited(key)
	case err != nil:
		utilruntime.HandleErrorWithContext(ctx, err, "Sync failed, will retry")
		l.queue.AddRateLimited(key)
	case again > 0:
		l.queue.Forget(key)
		l.queue.AddAfter(key, again)
	default:
		l.queue.Forget(key)
	}
	return true
}
