package sockets

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

func TestClustersByImmutableID(t *testing.T) {
	informer := cache.NewSharedIndexInformer(&cache.ListWatch{}, &clusterv1beta1.ManagedCluster{}, 0, cache.Indexers{})
	if err := AddClusterIDIndex(informer); err != nil {
		t.Fatal(err)
	}
	mc := func(ns, id, label string) *clusterv1beta1.ManagedCluster {
		return &clusterv1beta1.ManagedCluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "c", Labels: map[string]string{clusterv1beta1.LabelClusterID: label}},
			Spec:       clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(id)},
		}
	}
	// Namespace b's agent relabelled its ManagedCluster with a's id: the
	// label lies, spec.clusterId does not.
	for _, obj := range []*clusterv1beta1.ManagedCluster{mc("clusternet-a", "id-a", "id-a"), mc("clusternet-b", "id-b", "id-a")} {
		if err := informer.GetIndexer().Add(obj); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Clusters{Indexer: informer.GetIndexer()}.WithID("id-a")
	if err != nil {
		t.Fatal(err)
	}
	var namespaces []string
	for _, c := range got {
		namespaces = append(namespaces, c.Namespace)
	}
	if diff := cmp.Diff([]string{"clusternet-a"}, namespaces); diff != "" {
		t.Errorf("clusters with id id-a (-want +got):\n%s", diff)
	}
}
