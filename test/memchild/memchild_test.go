package memchild

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

var deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

func newServed(t *testing.T) (*Child, dynamic.Interface) {
	c := New(Options{FieldManager: "test", Errorf: t.Errorf, Rollout: true})
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	t.Cleanup(c.Close)
	c.Put("/api/v1/namespaces/default", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "default"}})
	dyn, err := dynamic.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c, dyn
}

func apply(t *testing.T, dyn dynamic.Interface, replicas int64, labels map[string]any) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "default", "labels": labels}, "spec": map[string]any{"replicas": replicas}}}
	got, err := dyn.Resource(deployments).Namespace("default").Apply(context.Background(), "web", u, metav1.ApplyOptions{FieldManager: "test", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// An applied Deployment reports its replicas ready for its generation, and
// its generation moves with its spec only, as the real apiserver's.
func TestRolloutReportsTheAppliedGeneration(t *testing.T) {
	_, dyn := newServed(t)
	for _, step := range []struct {
		replicas int64
		labels   map[string]any
		wantGen  int64
	}{{2, nil, 1}, {2, map[string]any{"team": "a"}, 1}, {3, map[string]any{"team": "a"}, 2}} {
		got := apply(t, dyn, step.replicas, step.labels)
		observed, _, _ := unstructured.NestedInt64(got.Object, "status", "observedGeneration")
		ready, _, _ := unstructured.NestedInt64(got.Object, "status", "readyReplicas")
		if got.GetGeneration() != step.wantGen || observed != step.wantGen || ready != step.replicas {
			t.Errorf("after applying %d replicas, labels %v: generation %d, observed %d, ready %d; want generation %d observed, %d ready",
				step.replicas, step.labels, got.GetGeneration(), observed, ready, step.wantGen, step.replicas)
		}
	}
}

// A watch from a list's resourceVersion sees what changed after that list,
// even before the watch was opened (an informer's list and watch are two
// requests), and then every change and the deletion.
func TestWatchFromAListSeesEveryLaterChange(t *testing.T) {
	_, dyn := newServed(t)
	ctx := context.Background()
	list, err := dyn.Resource(deployments).Namespace("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, dyn, 1, nil) // between the list and the watch
	w, err := dyn.Resource(deployments).Namespace("default").Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	apply(t, dyn, 2, nil)
	if err := dyn.Resource(deployments).Namespace("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []watch.EventType
	timeout := time.After(10 * time.Second)
	for len(got) < 3 {
		select {
		case ev := <-w.ResultChan():
			got = append(got, ev.Type)
		case <-timeout:
			t.Fatalf("events after 10 s: %v; want ADDED, MODIFIED, DELETED", got)
		}
	}
	if want := []watch.EventType{watch.Added, watch.Modified, watch.Deleted}; !slices.Equal(got, want) {
		t.Errorf("events %v; want %v", got, want)
	}
}
