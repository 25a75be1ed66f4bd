package helm

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// SyncFunc brings the object with key to its desired state. A positive
// duration asks to be called again after that long; an error retries with
// rate-limited backoff.
type SyncFunc func(ctx context.Context, key string) (time.Duration, error)

// WorkLoop is a rate-limited queue of keys fed by any number of informers
// (each mapping its objects to keys) and by Add, worked by a SyncFunc.
type WorkLoop struct {
	name   string
	sync   SyncFunc
	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
}

// NewWorkLoop returns a loop named name calling sync.
func NewWorkLoop(name string, sync SyncFunc) *WorkLoop {
	return &WorkLoop{
		name: name,
		sync: sync,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
	}
}

// Watch queues the keys keys returns for every object informer adds,
// updates or deletes (nil keys queues the object's own key). Run waits
// for informer to sync.
func (l *WorkLoop) Watch(informer cache.SharedIndexInformer, keys func(obj any) []string) error {
	if keys == nil {
		keys = OwnKey
	}
	add := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		for _, k := range keys(obj) {
			l.queue.Add(k)
		}
	}
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(_, obj any) { add(obj) },
		DeleteFunc: add,
	})
	l.synced = append(l.synced, informer.HasSynced)
	return err
}

// OwnKey is obj's namespace/name key.
func OwnKey(obj any) []string {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return nil
	}
	return []string{key}
}

// Add queues key.
func (l *WorkLoop) Add(key string) { l.queue.Add(key) }

// Run works the queue with workers until ctx ends.
func (l *WorkLoop) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer l.queue.ShutDown()
	logger := klog.FromContext(ctx).WithValues("controller", l.name)
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Starting controller")
	if !cache.WaitForCacheSync(ctx.Done(), l.synced...) {
		return
	}
	if workers < 1 {
		workers = 1
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

func (l *WorkLoop) next(ctx context.Context) bool {
	key, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(key)
	again, err := l.sync(ctx, key)
	switch {
	case apierrors.IsConflict(err):
		// A write based on a cached object that changed meanwhile: look
		// again, nothing to report.
		klog.FromContext(ctx).V(4).Info("Conflict, will retry", "key", key, "err", err)
		l.queue.AddRateLimited(key)
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
