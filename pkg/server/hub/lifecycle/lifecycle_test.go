package lifecycle

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/metrics"
)

func TestMissedHeartbeats(t *testing.T) {
	start := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	freq := int64(10)
	mcls := &clusterv1beta1.ManagedCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "clusternet-abcde"},
		Status: clusterv1beta1.ManagedClusterStatus{
			LastObservedTime: metav1.NewTime(start), HeartbeatFrequencySeconds: &freq, Readyz: true,
			Conditions: []metav1.Condition{{Type: clusterv1beta1.ClusterReady, Status: metav1.ConditionTrue, Reason: "ClusterReady", LastTransitionTime: metav1.NewTime(start)}},
		},
	}
	cs := clusternetfake.NewClientset(mcls)
	informer := externalversions.NewSharedInformerFactory(cs, 0).Clusters().V1beta1().ManagedClusters()
	clk := clocktesting.NewFakePassiveClock(start.Add(5 * time.Second))
	c, err := New(cs, informer, clk)
	if err != nil {
		t.Fatal(err)
	}
	if err := informer.Informer().GetIndexer().Add(mcls); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	recheck, err := c.sync(ctx, "clusternet-abcde/edge")
	if err != nil {
		t.Fatal(err)
	}
	if want := 25 * time.Second; recheck != want {
		t.Errorf("fresh cluster: recheck in %s, want %s (3 x 10s after the last report)", recheck, want)
	}

	clk.SetTime(start.Add(30*time.Second + time.Millisecond))
	if _, err := c.sync(ctx, "clusternet-abcde/edge"); err != nil {
		t.Fatal(err)
	}
	got, err := cs.ClustersV1beta1().ManagedClusters("clusternet-abcde").Get(ctx, "edge", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := meta.FindStatusCondition(got.Status.Conditions, clusterv1beta1.ClusterReady)
	if ready == nil || ready.Status != metav1.ConditionUnknown || ready.Reason != ReasonHeartbeatMissed {
		t.Fatalf("Ready = %+v, want Unknown/%s", ready, ReasonHeartbeatMissed)
	}
	if got.Status.Readyz {
		t.Error("readyz still true for a silent cluster")
	}
}

// A deleted cluster's key comes through the loop too (Watch queues
// deletes, and a pending recheck fires anyway): nothing to check, nothing
// written, no recheck.
func TestDeletedCluster(t *testing.T) {
	cs := clusternetfake.NewClientset()
	informer := externalversions.NewSharedInformerFactory(cs, 0).Clusters().V1beta1().ManagedClusters()
	c, err := New(cs, informer, clocktesting.NewFakePassiveClock(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	recheck, err := c.sync(context.Background(), "clusternet-abcde/edge")
	if recheck != 0 || err != nil {
		t.Errorf("sync of a deleted cluster: recheck in %s, err %v; want 0, nil", recheck, err)
	}
	if actions := cs.Actions(); len(actions) != 0 {
		t.Errorf("sync of a deleted cluster called the API server: %v", actions)
	}
}

// The heartbeat age metric reads the cache: every cluster's id and last
// report, those that never reported included (the metric leaves them out).
func TestHeartbeats(t *testing.T) {
	last := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	cs := clusternetfake.NewClientset()
	informer := externalversions.NewSharedInformerFactory(cs, 0).Clusters().V1beta1().ManagedClusters()
	c, err := New(cs, informer, clocktesting.NewFakePassiveClock(last))
	if err != nil {
		t.Fatal(err)
	}
	for _, mc := range []*clusterv1beta1.ManagedCluster{
		{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns-a"}, Spec: clusterv1beta1.ManagedClusterSpec{ClusterID: "id-a"},
			Status: clusterv1beta1.ManagedClusterStatus{LastObservedTime: metav1.NewTime(last)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns-b"}, Spec: clusterv1beta1.ManagedClusterSpec{ClusterID: "id-b"}},
	} {
		if err := informer.Informer().GetIndexer().Add(mc); err != nil {
			t.Fatal(err)
		}
	}
	got := c.heartbeats()
	slices.SortFunc(got, func(x, y metrics.Heartbeat) int { return strings.Compare(x.Cluster, y.Cluster) })
	want := []metrics.Heartbeat{{Cluster: "id-a", Last: last}, {Cluster: "id-b"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("heartbeats (-want +got):\n%s", diff)
	}
}
