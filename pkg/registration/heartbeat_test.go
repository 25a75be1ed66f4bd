package registration

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// versionedParent holds one ManagedCluster as the apiserver does: every
// write must carry the resourceVersion it read, and gets a new one (the fake
// clientset alone checks neither). It counts reads and status writes.
type versionedParent struct {
	*fake.Clientset
	mu            sync.Mutex
	reads, writes int
	conflicts     int
	failNext      error
}

// newVersionedParent holds ManagedCluster clusternet-x1/edge-1 at
// resourceVersion 7.
func newVersionedParent() *versionedParent {
	mc := &clusterv1beta1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "clusternet-x1", Name: "edge-1", ResourceVersion: "7"}}
	p := &versionedParent{Clientset: fake.NewClientset(mc)}
	p.PrependReactor("get", "managedclusters", func(clienttesting.Action) (bool, runtime.Object, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.reads++
		return false, nil, nil
	})
	p.PrependReactor("update", "managedclusters", func(a clienttesting.Action) (bool, runtime.Object, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if a.GetSubresource() == "status" {
			p.writes++
		}
		if err := p.failNext; err != nil {
			p.failNext = nil
			return true, nil, err
		}
		in := a.(clienttesting.UpdateAction).GetObject().(*clusterv1beta1.ManagedCluster)
		have, err := p.Tracker().Get(a.GetResource(), in.Namespace, in.Name)
		if err != nil {
			return true, nil, err
		}
		rv := have.(*clusterv1beta1.ManagedCluster).ResourceVersion
		if in.ResourceVersion != rv {
			p.conflicts++
			return true, nil, apierrors.NewConflict(clusterv1beta1.Resource("managedclusters"), in.Name, errors.New("the object has been modified"))
		}
		n, _ := strconv.Atoi(rv)
		out := in.DeepCopy()
		out.ResourceVersion = strconv.Itoa(n + 1)
		return true, out, p.Tracker().Update(a.GetResource(), out, in.Namespace)
	})
	return p
}

func beat(w *StatusWriter, p *versionedParent, reason string) error {
	return w.Write(context.Background(), p.ClustersV1beta1(), "clusternet-x1", "edge-1", clusterv1beta1.ManagedClusterStatus{Readyz: true},
		func(int64) metav1.Condition {
			return metav1.Condition{Type: clusterv1beta1.ClusterReady, Status: metav1.ConditionTrue, Reason: reason}
		})
}

func (p *versionedParent) current(t *testing.T) *clusterv1beta1.ManagedCluster {
	t.Helper()
	mc, err := p.ClustersV1beta1().ManagedClusters("clusternet-x1").Get(context.Background(), "edge-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.reads--
	return mc
}

// A heartbeat that follows the agent's own last one costs one request: the
// status write, from the object that write returned.
func TestStatusWriterWritesOnceABeat(t *testing.T) {
	p := newVersionedParent()
	var w StatusWriter
	for i := range 5 {
		if err := beat(&w, p, "Beat"+strconv.Itoa(i)); err != nil {
			t.Fatalf("beat %d: %v", i, err)
		}
	}
	if p.reads != 1 || p.writes != 5 || p.conflicts != 0 {
		t.Errorf("5 beats: %d reads, %d writes, %d conflicts; want 1 read (the first beat's), 5 writes, no conflict", p.reads, p.writes, p.conflicts)
	}
	if got := meta.FindStatusCondition(p.current(t).Status.Conditions, clusterv1beta1.ClusterReady); got == nil || got.Reason != "Beat4" {
		t.Errorf("Ready %+v, want the last beat's", got)
	}
}

// What someone else wrote since the last beat (the hub's Ready=Unknown, a
// condition of its own, an admin's label) is never written over from the
// agent's old copy: the beat conflicts, reads the object again and keeps
// the other writer's conditions.
func TestStatusWriterReadsAgainAfterAnotherWrite(t *testing.T) {
	p := newVersionedParent()
	var w StatusWriter
	if err := beat(&w, p, "First"); err != nil {
		t.Fatal(err)
	}
	// The hub's lifecycle controller, through the same (versioned) parent.
	hub := p.current(t)
	meta.SetStatusCondition(&hub.Status.Conditions, metav1.Condition{Type: clusterv1beta1.ClusterReady, Status: metav1.ConditionUnknown, Reason: "HeartbeatMissed"})
	meta.SetStatusCondition(&hub.Status.Conditions, metav1.Condition{Type: "HubSays", Status: metav1.ConditionTrue, Reason: "Kept"})
	if _, err := p.ClustersV1beta1().ManagedClusters("clusternet-x1").UpdateStatus(context.Background(), hub, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p.writes--
	if err := beat(&w, p, "Second"); err != nil {
		t.Fatal(err)
	}
	if p.conflicts != 1 || p.reads != 2 || p.writes != 3 {
		t.Errorf("%d conflicts, %d reads, %d writes; want 1 conflict, 2 reads (the first beat's and after the conflict), 3 writes", p.conflicts, p.reads, p.writes)
	}
	got := p.current(t).Status.Conditions
	if c := meta.FindStatusCondition(got, "HubSays"); c == nil {
		t.Errorf("conditions %+v: the hub's HubSays was written over", got)
	}
	if c := meta.FindStatusCondition(got, clusterv1beta1.ClusterReady); c == nil || c.Status != metav1.ConditionTrue || c.Reason != "Second" {
		t.Errorf("Ready %+v, want True from the second beat", c)
	}
}

// After a write that failed, what the parent holds is unknown: the next
// beat reads it first.
func TestStatusWriterReadsAgainAfterAFailedWrite(t *testing.T) {
	p := newVersionedParent()
	var w StatusWriter
	if err := beat(&w, p, "First"); err != nil {
		t.Fatal(err)
	}
	p.failNext = apierrors.NewServiceUnavailable("etcd leader changed")
	if err := beat(&w, p, "Lost"); !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("beat with the parent failing: %v, want its 503", err)
	}
	if err := beat(&w, p, "Third"); err != nil {
		t.Fatal(err)
	}
	if p.reads != 2 || p.conflicts != 0 {
		t.Errorf("%d reads, %d conflicts; want 2 reads (the first beat's, and the one after the failure), no conflict", p.reads, p.conflicts)
	}
}

// The agent reads its ManagedCluster to check new credentials, just before
// its first beat: that read serves the beat.
func TestStatusWriterStartsFromWhatWasSeen(t *testing.T) {
	p := newVersionedParent()
	var w StatusWriter
	w.Seen(p.current(t))
	if err := beat(&w, p, "First"); err != nil {
		t.Fatal(err)
	}
	if p.reads != 0 || p.writes != 1 {
		t.Errorf("first beat after Seen: %d reads, %d writes; want none and 1", p.reads, p.writes)
	}
}
