package agent

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

func kicked(a *Agent) bool {
	select {
	case <-a.kick:
		return true
	default:
		return false
	}
}

// A heartbeat is asked for only when what the child can take is not what
// the last heartbeat reported: a quiet cluster costs the parent nothing.
func TestKickIfAvailableChanged(t *testing.T) {
	n := node(corev1.ConditionTrue, "4")
	n.Name = "n1"
	child := kubefake.NewClientset(&n)
	a := &Agent{child: child, kick: make(chan struct{}, 1)}
	ctx := context.Background()

	a.kickIfAvailableChanged(ctx)
	if !kicked(a) {
		t.Fatal("nothing reported yet: want a heartbeat")
	}
	a.lastReported.set(true, availableResources([]corev1.Node{n}, nil))
	a.kickIfAvailableChanged(ctx)
	if kicked(a) {
		t.Fatal("available unchanged since the last heartbeat: want no heartbeat")
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, Spec: corev1.PodSpec{
		NodeName: "n1",
		Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}}}},
	}}
	if _, err := child.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	a.kickIfAvailableChanged(ctx)
	if !kicked(a) {
		t.Fatal("a pod took 3 CPUs of 4: want a heartbeat")
	}
	a.lastReported.set(false, nil)
	a.kickIfAvailableChanged(ctx)
	if !kicked(a) {
		t.Fatal("the last heartbeat reported no prediction: want a heartbeat")
	}
}

// Every event but a bookmark says something changed; a watch that ends is
// opened again from its last resource version, and from the cache ("0")
// after an error event.
func TestWatchForChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var opened []string
	watchers := make(chan *watch.FakeWatcher, 3)
	open := func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
		opened = append(opened, o.ResourceVersion)
		w := watch.NewFake()
		watchers <- w
		return w, nil
	}
	var changes atomic.Int32
	a := &Agent{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.watchForChanges(ctx, "pods", open, func() { changes.Add(1) })
	}()
	pod := func(rv string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: rv}}
	}
	w := <-watchers
	w.Add(pod("5"))
	w.Action(watch.Bookmark, pod("7"))
	w.Stop()
	w = <-watchers
	w.Modify(pod("9"))
	w.Error(&metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonExpired})
	w = <-watchers
	cancel()
	w.Stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watchForChanges did not return after its context ended")
	}
	if got := changes.Load(); got != 2 {
		t.Errorf("changes = %d, want 2 (an add and a modify; not the bookmark)", got)
	}
	want := []string{"0", "7", "0"}
	if len(opened) != len(want) {
		t.Fatalf("watches opened from %q, want %q", opened, want)
	}
	for i := range want {
		if opened[i] != want[i] {
			t.Errorf("watch %d opened from %q, want %q", i, opened[i], want[i])
		}
	}
}
