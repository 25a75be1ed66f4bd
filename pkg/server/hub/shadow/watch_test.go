package shadow

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

func TestTemplateWatch(t *testing.T) {
	r := deploymentResource()
	sel, err := r.selection("foo", nil)
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(namespace, name, rv string) *appsv1alpha1.Manifest {
		m := &appsv1alpha1.Manifest{}
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("apps/v1")
		u.SetKind("Deployment")
		u.SetNamespace(namespace)
		u.SetName(name)
		if err := r.fillManifest(m, u); err != nil {
			t.Fatal(err)
		}
		m.ResourceVersion = rv
		return m
	}
	bookmark := &appsv1alpha1.Manifest{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "9",
		Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}}
	in := watch.NewFake()
	w := newTemplateWatch(context.Background(), in, sel)
	go func() {
		in.Add(manifest("foo", "a", "5"))
		in.Modify(manifest("bar", "other-namespace", "6"))
		in.Action(watch.Bookmark, bookmark)
		in.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired})
		in.Delete(manifest("foo", "a", "10"))
	}()
	var got []string
	for i := 0; i < 4; i++ {
		select {
		case ev := <-w.ResultChan():
			switch o := ev.Object.(type) {
			case *unstructured.Unstructured:
				got = append(got, string(ev.Type)+" "+o.GetKind()+" "+o.GetName()+" rv="+o.GetResourceVersion()+" "+o.GetAnnotations()[metav1.InitialEventsAnnotationKey])
			case *metav1.Status:
				got = append(got, string(ev.Type)+" "+string(o.Reason))
			default:
				t.Fatalf("event object %T", ev.Object)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far: %v", got)
		}
	}
	want := []string{"ADDED Deployment a rv=5 ", "BOOKMARK Deployment  rv=9 true", "ERROR Expired", "DELETED Deployment a rv=10 "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	w.Stop()
	if _, open := <-w.ResultChan(); open {
		t.Error("the result channel is open after Stop")
	}
	if !in.IsStopped() {
		t.Error("the Manifest watch was not stopped")
	}
}
