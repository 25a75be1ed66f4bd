package agent

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/klog/v2"

	"github.com/clusternet/clusternet/pkg/features"
)

// With the Predictor gate on, status.available is what Dynamic dividing
// places new replicas by, so it must not wait for the next heartbeat (3
// minutes by default) after pods or nodes change: a cluster just filled
// would take new replicas it cannot run for that long. The agent watches
// pods and nodes and, at most once per --predictor-update-frequency,
// recomputes what is available and asks for a heartbeat only when it
// differs from what was last reported. A fleet whose clusters churn pods
// therefore costs the parent one status write per cluster per period at
// most, and a quiet one nothing beyond its heartbeats.

// reported remembers the available resources the last heartbeat wrote.
type reported struct {
	mu        sync.Mutex
	available corev1.ResourceList
	enabled   bool
}

func (r *reported) set(enabled bool, available corev1.ResourceList) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.enabled, r.available = enabled, available
}

// differs says whether available is news to the hub.
func (r *reported) differs(available corev1.ResourceList) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.enabled || !apiequality.Semantic.DeepEqual(r.available, available)
}

// watchCapacity runs until ctx ends when the Predictor gate is on.
func (a *Agent) watchCapacity(ctx context.Context) {
	if !a.opts.FeatureGates.Enabled(features.Predictor) {
		return
	}
	var dirty atomic.Bool
	changed := func() { dirty.Store(true) }
	go a.watchForChanges(ctx, "pods", func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		return a.child.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, o)
	}, changed)
	go a.watchForChanges(ctx, "nodes", func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		return a.child.CoreV1().Nodes().Watch(ctx, o)
	}, changed)
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if dirty.Swap(false) {
			a.kickIfAvailableChanged(ctx)
		}
	}, a.opts.PredictorFrequency)
}

// kickIfAvailableChanged asks for a heartbeat when what the child can take
// is not what the last heartbeat reported.
func (a *Agent) kickIfAvailableChanged(ctx context.Context) {
	cached := metav1.ListOptions{ResourceVersion: "0"}
	nodes, err := a.child.CoreV1().Nodes().List(ctx, cached)
	if err != nil {
		return // the heartbeat reports the failure
	}
	pods, err := a.child.CoreV1().Pods(metav1.NamespaceAll).List(ctx, cached)
	if err != nil {
		return
	}
	if a.lastReported.differs(availableResources(nodes.Items, pods.Items)) {
		a.askForReport()
	}
}

// watchForChanges calls changed on every event of the watch open, opening
// it again from where it ended (from the apiserver's cache after an
// error), with back-off, until ctx ends. Only that something changed
// matters, not what: the events themselves are dropped.
func (a *Agent) watchForChanges(ctx context.Context, what string, open func(context.Context, metav1.ListOptions) (watch.Interface, error), changed func()) {
	rv := "0"
	backoff := wait.Backoff{Duration: time.Second, Factor: 2, Cap: time.Minute, Steps: 1 << 30}
	for ctx.Err() == nil {
		w, err := open(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			klog.FromContext(ctx).V(2).Info("Watching the child for the predictor", "resource", what, "err", err)
			rv = "0"
			select {
			case <-ctx.Done():
			case <-time.After(backoff.Step()):
			}
			continue
		}
		backoff.Duration = time.Second
		rv = drain(w, changed, rv)
	}
}

// drain reads w until it closes and returns the resource version to go on
// from ("0" after an error event: the old version may be gone).
func drain(w watch.Interface, changed func(), rv string) string {
	defer w.Stop()
	for ev := range w.ResultChan() {
		switch ev.Type {
		case watch.Error:
			return "0"
		case watch.Bookmark:
		default:
			changed()
		}
		if m, err := meta.Accessor(ev.Object); err == nil && m.GetResourceVersion() != "" {
			rv = m.GetResourceVersion()
		}
	}
	return rv
}
