package placement

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/deployer"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
)

func TestOf(t *testing.T) {
	const id, ns = "0b9e2c4e-0000-4000-8000-000000000001", "clusternet-abcde"
	cluster := func(mode clusterv1beta1.ClusterSyncMode, appPusher bool) *clusterv1beta1.ManagedCluster {
		return &clusterv1beta1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: "child-1", Namespace: ns},
			Spec: clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(id), SyncMode: mode}, Status: clusterv1beta1.ManagedClusterStatus{AppPusher: appPusher}}
	}
	tests := []struct {
		name     string
		cluster  *clusterv1beta1.ManagedCluster
		admitted string
		tunnel   bool
		want     deployer.Placement
	}{
		{name: "no cluster", want: deployer.Placement{Decision: deployer.Gone, Why: "no ManagedCluster in namespace clusternet-abcde"}},
		{name: "admitted elsewhere", cluster: cluster(clusterv1beta1.PushSyncMode, true), admitted: "clusternet-other", tunnel: true,
			want: deployer.Placement{Decision: deployer.Skip, Why: `cluster ` + id + ` was admitted into namespace "clusternet-other", not clusternet-abcde: nothing of this namespace is pushed into it`}},
		{name: "the agent applies", cluster: cluster(clusterv1beta1.DualSyncMode, false), admitted: ns, tunnel: true,
			want: deployer.Placement{Decision: deployer.Skip, Why: "cluster child-1's agent applies (sync mode Dual, AppPusher false)"}},
		{name: "tunnel in another replica", cluster: cluster(clusterv1beta1.PushSyncMode, true), admitted: ns,
			want: deployer.Placement{Decision: deployer.Skip, Why: "cluster child-1's tunnel is not held by this replica"}},
		{name: "pushed from here", cluster: cluster(clusterv1beta1.PushSyncMode, true), admitted: ns, tunnel: true,
			want: deployer.Placement{Decision: deployer.Act, ClusterID: id}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mcls := externalversions.NewSharedInformerFactory(fake.NewClientset(), 0).Clusters().V1beta1().ManagedClusters()
			if tc.cluster != nil {
				if err := mcls.Informer().GetIndexer().Add(tc.cluster); err != nil {
					t.Fatal(err)
				}
			}
			got := Of(Inputs{Clusters: mcls.Lister(), AdmittedInto: func(string) string { return tc.admitted }, TunnelHere: func(string) bool { return tc.tunnel }}, ns)
			// Config (a func) is never set here: compare the rest.
			if got.Config != nil || got.Decision != tc.want.Decision || got.ClusterID != tc.want.ClusterID || got.Why != tc.want.Why {
				t.Errorf("Of = %+v,\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestChanged(t *testing.T) {
	base := func() *clusterv1beta1.ManagedCluster {
		return &clusterv1beta1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: "child-1", Namespace: "clusternet-abcde"},
			Spec:   clusterv1beta1.ManagedClusterSpec{ClusterID: "0b9e2c4e-0000-4000-8000-000000000001", SyncMode: clusterv1beta1.DualSyncMode},
			Status: clusterv1beta1.ManagedClusterStatus{AppPusher: true}}
	}
	tests := []struct {
		name   string
		change func(mc *clusterv1beta1.ManagedCluster)
		want   bool
	}{
		{name: "heartbeat", change: func(mc *clusterv1beta1.ManagedCluster) {
			mc.Status.LastObservedTime = metav1.Now()
			mc.Status.Healthz = true
			mc.ResourceVersion = "2"
		}},
		{name: "labels", change: func(mc *clusterv1beta1.ManagedCluster) { mc.Labels = map[string]string{"zone": "b"} }},
		{name: "Dual to Push, the hub still pushes", change: func(mc *clusterv1beta1.ManagedCluster) { mc.Spec.SyncMode = clusterv1beta1.PushSyncMode }},
		{name: "Dual to Pull", change: func(mc *clusterv1beta1.ManagedCluster) { mc.Spec.SyncMode = clusterv1beta1.PullSyncMode }, want: true},
		{name: "AppPusher off", change: func(mc *clusterv1beta1.ManagedCluster) { mc.Status.AppPusher = false }, want: true},
		{name: "cluster id", change: func(mc *clusterv1beta1.ManagedCluster) { mc.Spec.ClusterID = "0b9e2c4e-0000-4000-8000-000000000002" }, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur := base()
			tc.change(cur)
			if got := Changed(base(), cur); got != tc.want {
				t.Errorf("Changed = %t, want %t", got, tc.want)
			}
		})
	}
}
