package v1beta1_test

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// Every child cluster the parent knows, how applications reach it, and
// whether its tunnel is up: what `kubectl get mcls -A -o wide` shows, from
// Go. The fake clientset stands in for the parent; with a real one
// (versioned.NewForConfig) the calls are the same.
func Example() {
	ctx := context.Background()
	cluster := func(ns, id string, mode clusterv1beta1.ClusterSyncMode, appPusher, tunnel bool) *clusterv1beta1.ManagedCluster {
		return &clusterv1beta1.ManagedCluster{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: ns, Name: "clusternet-cluster-" + id,
				Labels: map[string]string{clusterv1beta1.LabelClusterID: id},
			},
			Spec:   clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(id), SyncMode: mode},
			Status: clusterv1beta1.ManagedClusterStatus{AppPusher: appPusher, UseSocket: tunnel},
		}
	}
	client := fake.NewClientset(
		cluster("clusternet-abcde", "edge-1", clusterv1beta1.DualSyncMode, true, true),
		cluster("clusternet-fghij", "edge-2", clusterv1beta1.PushSyncMode, false, true),
		cluster("clusternet-klmno", "edge-3", clusterv1beta1.PullSyncMode, true, false),
	)

	clusters, err := client.ClustersV1beta1().ManagedClusters(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		panic(err)
	}
	// Lists come in no particular order.
	slices.SortFunc(clusters.Items, func(a, b clusterv1beta1.ManagedCluster) int { return strings.Compare(a.Namespace, b.Namespace) })
	for _, mc := range clusters.Items {
		installer := "agent"
		if mc.HubPushes() {
			installer = "hub"
		}
		fmt.Printf("%s/%s: %s mode, installed by the %s, tunnel up: %t\n",
			mc.Namespace, mc.Spec.ClusterID, mc.Spec.SyncMode, installer, mc.Status.UseSocket)
	}
	// Output:
	// clusternet-abcde/edge-1: Dual mode, installed by the hub, tunnel up: true
	// clusternet-fghij/edge-2: Push mode, installed by the agent, tunnel up: true
	// clusternet-klmno/edge-3: Pull mode, installed by the agent, tunnel up: false
}
