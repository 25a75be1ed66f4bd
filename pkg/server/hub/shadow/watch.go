package shadow

import (
	"context"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// templateWatch turns a watch of Manifests into a watch of the templates
// they hold: the same event types and resourceVersions, bookmarks kept,
// errors restated about the templates (same code and reason), templates
// the client did not select left out.
type templateWatch struct {
	in     watch.Interface
	sel    *templateSelection
	result chan watch.Event
	done   chan struct{}
	stop   sync.Once
}

func newTemplateWatch(ctx context.Context, in watch.Interface, sel *templateSelection) *templateWatch {
	w := &templateWatch{in: in, sel: sel, result: make(chan watch.Event), done: make(chan struct{})}
	go w.run(klog.FromContext(ctx))
	return w
}

func (w *templateWatch) ResultChan() <-chan watch.Event { return w.result }

// Stop ends the watch and the Manifest watch under it.
func (w *templateWatch) Stop() {
	w.stop.Do(func() {
		close(w.done)
		w.in.Stop()
	})
}

func (w *templateWatch) run(logger klog.Logger) {
	defer close(w.result)
	defer w.in.Stop()
	for {
		var in watch.Event
		var ok bool
		select {
		case <-w.done:
			return
		case in, ok = <-w.in.ResultChan():
			if !ok {
				return
			}
		}
		out, keep := w.translate(logger, in)
		if !keep {
			continue
		}
		select {
		case <-w.done:
			return
		case w.result <- out:
		}
	}
}

func (w *templateWatch) translate(logger klog.Logger, in watch.Event) (watch.Event, bool) {
	r := w.sel.r
	m, ok := in.Object.(*appsv1alpha1.Manifest)
	switch {
	case ok:
	case in.Type != watch.Error:
		logger.Info("Skipping an event without a Manifest", "type", in.Type, "object", fmt.Sprintf("%T", in.Object))
		return in, false
	default:
		// An ERROR event: its Status, told about the templates (a 410
		// Expired stays one, so clients list again).
		st, isStatus := in.Object.(*metav1.Status)
		if !isStatus {
			logger.Info("A watch of templates ended with an error that is not a Status", "object", fmt.Sprintf("%T", in.Object))
			st = &apierrors.NewInternalError(fmt.Errorf("the watch of %s failed", r.groupResource())).ErrStatus
		}
		restated := r.restate(*st, "", "")
		return watch.Event{Type: watch.Error, Object: &restated}, true
	}
	if in.Type == watch.Bookmark {
		b := &unstructured.Unstructured{}
		b.SetGroupVersionKind(r.gvk())
		b.SetResourceVersion(m.ResourceVersion)
		b.SetAnnotations(m.Annotations)
		return watch.Event{Type: watch.Bookmark, Object: b}, true
	}
	u, err := objectFrom(m)
	if err != nil {
		logger.Error(err, "Skipping a Manifest without a valid template", "manifest", klog.KObj(m))
		return in, false
	}
	if !w.sel.matches(m.Labels, u) {
		return in, false
	}
	return watch.Event{Type: in.Type, Object: u}, true
}
