package shadow

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// templateWatch turns a watch of Manifests into a watch of the templates
// they hold: the same event types and resourceVersions, bookmarks kept,
// errors passed through, templates the client did not select left out.
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
	m, ok := in.Object.(*appsv1alpha1.Manifest)
	if !ok {
		// An ERROR event's Status, passed as it is.
		return in, true
	}
	if in.Type == watch.Bookmark {
		b := &unstructured.Unstructured{}
		b.SetGroupVersionKind(w.sel.r.gvk())
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
