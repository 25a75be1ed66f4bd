package apps

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// syncFunc brings one key to its desired state; a positive duration asks to
// look again after that long, an error retries with backoff.
type syncFunc func(ctx context.Context, key string) (time.Duration, error)

// loop is a rate-limited queue of keys and the workers that sync them. Keys
// come from several informers (a template change reaches the Subscriptions
// and Bases that use it), so the queue is fed by the controller's handlers.
type loop struct {
	name  string
	queue workqueue.TypedRateLimitingInterface[string]
	sync  syncFunc
}

func newLoop(name string, sync syncFunc) *loop {
	return &loop{
		name: name,
		sync: sync,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
	}
}

func (l *loop) add(key string) { l.queue.Add(key) }

// run processes keys with workers until ctx ends.
func (l *loop) run(ctx context.Context, workers int) {
	defer l.queue.ShutDown()
	for range workers {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for l.next(ctx) {
			}
		}, time.Second)
	}
	<-ctx.Done()
}

func (l *loop) next(ctx context.Context) bool {
	key, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(key)
	again, err := l.sync(klog.NewContext(ctx, klog.FromContext(ctx).WithValues("controller", l.name, "key", key)), key)
	switch {
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		// The cache was behind the API server: look again once it caught up.
		klog.FromContext(ctx).V(4).Info("Stale cache, will retry", "controller", l.name, "key", key, "err", err)
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
