package helm

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/helm"
)

type fakeTunnels map[string]bool

func (f fakeTunnels) Has(id string) bool       { return f[id] }
func (f fakeTunnels) Watch(func(string, bool)) {}

func TestTunnelTargets(t *testing.T) {
	const id = "0b9e2c4e-0000-4000-8000-000000000001"
	hr := &appsv1alpha1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: dedicated}}
	tests := []struct {
		name     string
		cluster  *clusterv1beta1.ManagedCluster
		tunnels  fakeTunnels
		want     helm.TargetState
		wantWhy  string
		wantHost string
	}{
		{name: "no ManagedCluster", want: helm.TargetGone, wantWhy: "no ManagedCluster in namespace clusternet-abcde"},
		{name: "Pull mode", cluster: managedCluster(clusterv1beta1.PullSyncMode, true), tunnels: fakeTunnels{id: true},
			want: helm.TargetSkip, wantWhy: "cluster child-1's agent applies (sync mode Pull, AppPusher true)"},
		{name: "Push mode, AppPusher off", cluster: managedCluster(clusterv1beta1.PushSyncMode, false), tunnels: fakeTunnels{id: true},
			want: helm.TargetSkip, wantWhy: "cluster child-1's agent applies (sync mode Push, AppPusher false)"},
		{name: "tunnel in another replica", cluster: managedCluster(clusterv1beta1.DualSyncMode, true), tunnels: fakeTunnels{},
			want: helm.TargetSkip, wantWhy: "cluster child-1's tunnel is not held by this replica"},
		{name: "pushed from here", cluster: managedCluster(clusterv1beta1.DualSyncMode, true), tunnels: fakeTunnels{id: true}, want: helm.TargetAct},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			factory := externalversions.NewSharedInformerFactory(clusternetfake.NewSimpleClientset(), 0)
			mcls := factory.Clusters().V1beta1().ManagedClusters()
			if tc.cluster != nil {
				if err := mcls.Informer().GetIndexer().Add(tc.cluster); err != nil {
					t.Fatal(err)
				}
			}
			var asked []string
			targets := &tunnelTargets{mcls: mcls.Lister(), tunnels: tc.tunnels, clusters: map[string]*helm.Cluster{},
				childConfig: func(id string) *rest.Config {
					asked = append(asked, id)
					return &rest.Config{Host: "http://cluster-" + id}
				}}
			c, state, why := targets.Target(hr)
			if state != tc.want || why != tc.wantWhy {
				t.Fatalf("Target = %v %q, want %v %q", state, why, tc.want, tc.wantWhy)
			}
			if (c != nil) != (state == helm.TargetAct) {
				t.Fatalf("cluster %v for state %v", c, state)
			}
			if state == helm.TargetAct {
				again, _, _ := targets.Target(hr)
				if again != c || len(asked) != 1 || asked[0] != id {
					t.Errorf("the cluster is not reused: asked for configs %v", asked)
				}
			}
		})
	}
}
