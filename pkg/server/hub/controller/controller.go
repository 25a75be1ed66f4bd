// Package controller is the work loop the hub's controllers share: a typed,
// rate-limited queue of object keys fed by an informer, workers that call a
// sync function, and requeues when sync asks to look again later.
package controller

import (
	"context"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// SyncFunc brings the object with key to its desired state. A positive
// duration asks to be called again for key after that long; an error retries
// with rate-limited backoff.
type SyncFunc func(ctx context.Context, key string) (time.Duration, error)

// Loop runs a SyncFunc over the keys of the objects an informer reports.
type Loop struct {
	name   string
	sync   SyncFunc
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
}

// New makes a loop named name and feeds it adds and updates from informer.
func New(name string, informer cache.SharedIndexInformer, sync SyncFunc) (*Loop, error) {
	l := &Loop{
		name:   name,
		sync:   sync,
		synced: informer.HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
	}
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    l.enqueue,
		UpdateFunc: func(_, obj any) { l.enqueue(obj) },
	})
	return l, err
}

func (l *Loop) enqueue(obj any) {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	l.queue.Add(key)
}

// Run processes keys with the given number of workers until ctx ends.
func (l *Loop) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer l.queue.ShutDown()
	logger := klog.FromContext(ctx).WithValues("controller", l.name)
	logger.Info("Starting controller")
	if !cache.WaitForCacheSync(ctx.Done(), l.synced) {
		return
	}
	for range workers {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for l.next(ctx) {
			}
		}, time.Second)
	}
	<-ctx.Done()
	logger.Info("Stopping controller")
}

func (l *Loop) next(ctx context.Context) bool {
	key, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(key)
	again, err := l.sync(ctx, key)
	switch {
	case err != nil:
		utilruntime.HandleErrorWithContext(ctx, err, "Sync failed, will retry", "controller", l.name, "key", key)
		l.queue.AddRateLimited(key)
	case again > 0:
		l.queue.Forget(key)
		l.queue.AddAfter(key, again)
	default:
		l.queue.Forget(key)
	}
	return true
}
