package feedprotect

import (
	"context"
	"math"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
)

// releasePage bounds what one list of the sweep holds in memory: Manifests
// carry whole templates.
const releasePage = 250

// ReleaseAll removes the feed-protection finalizer and annotation from
// every template Manifest and HelmChart that carries them. The hub's leader
// runs it when FeedInUseProtection is off: a gate is only changed by
// restarting the hub, so turning it off leaves nothing held by an earlier
// run, and an object being deleted then goes at once. It retries until
// the sweep completes or ctx ends.
func ReleaseAll(ctx context.Context, client versioned.Interface) {
	logger := klog.FromContext(ctx).WithValues("controller", "feed-protection-release")
	backoff := wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: math.MaxInt32, Cap: time.Minute}
	_ = wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		released, err := release(ctx, client)
		if err != nil {
			logger.Error(err, "Releasing what FeedInUseProtection held, will retry", "released", released)
			return false, nil
		}
		if released > 0 {
			logger.Info("FeedInUseProtection is off: released what it held", "objects", released)
		}
		return true, nil
	})
}

// release is one sweep; it says how many objects it released.
func release(ctx context.Context, client versioned.Interface) (int, error) {
	manifests, err := releasePaged(ctx, func(ctx context.Context, opts metav1.ListOptions) ([]appsv1alpha1.Manifest, string, error) {
		list, err := client.AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace).List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		return list.Items, list.Continue, nil
	}, func(m *appsv1alpha1.Manifest) target {
		return manifestTarget(client, m, "Manifest "+m.Namespace+"/"+m.Name)
	})
	if err != nil {
		return manifests, err
	}
	charts, err := releasePaged(ctx, func(ctx context.Context, opts metav1.ListOptions) ([]appsv1alpha1.HelmChart, string, error) {
		list, err := client.AppsV1alpha1().HelmCharts(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		return list.Items, list.Continue, nil
	}, func(ch *appsv1alpha1.HelmChart) target { return chartTarget(client, ch) })
	return manifests + charts, err
}

// releasePaged lists one kind page by page (list returns a page's items and
// its continue token) and releases every object that carries the
// protection; it says how many it released.
func releasePaged[T any, PT interface {
	*T
	metav1.Object
}](ctx context.Context, list func(context.Context, metav1.ListOptions) ([]T, string, error), targetOf func(PT) target) (int, error) {
	released := 0
	opts := metav1.ListOptions{Limit: releasePage}
	for {
		items, next, err := list(ctx, opts)
		if err != nil {
			return released, err
		}
		for i := range items {
			obj := PT(&items[i])
			if !carries(obj) {
				continue
			}
			if err := write(ctx, targetOf(obj), without(obj.GetFinalizers()), nil); err != nil {
				return released, err
			}
			released++
		}
		if opts.Continue = next; next == "" {
			return released, nil
		}
	}
}

// carries says whether obj has the feed-protection finalizer or annotation.
func carries(obj metav1.Object) bool {
	_, noted := obj.GetAnnotations()[appsv1alpha1.AnnotationFeedProtection]
	return noted || slices.Contains(obj.GetFinalizers(), appsv1alpha1.FeedProtectionFinalizer)
}
