package sockets

import (
	"k8s.io/client-go/tools/cache"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

// ClusterIDIndex indexes ManagedClusters by spec.clusterId: immutable (the
// CRD says so), unlike the cluster-id label, which an agent may edit in its
// dedicated namespace.
const ClusterIDIndex = "spec.clusterId"

// AddClusterIDIndex adds ClusterIDIndex to a ManagedCluster informer.
func AddClusterIDIndex(informer cache.SharedIndexInformer) error {
	return informer.AddIndexers(cache.Indexers{ClusterIDIndex: func(obj any) ([]string, error) {
		mc, ok := obj.(*clusterv1beta1.ManagedCluster)
		if !ok {
			return nil, nil
		}
		return []string{string(mc.Spec.ClusterID)}, nil
	}})
}

// Clusters finds ManagedClusters by cluster id.
type Clusters struct {
	Indexer cache.Indexer
	// Synced says whether the indexer holds the parent's ManagedClusters yet.
	Synced cache.InformerSynced
}

// WithID returns the ManagedClusters whose spec.clusterId is id.
func (c Clusters) WithID(id string) ([]*clusterv1beta1.ManagedCluster, error) {
	objs, err := c.Indexer.ByIndex(ClusterIDIndex, id)
	if err != nil {
		return nil, err
	}
	out := make([]*clusterv1beta1.ManagedCluster, 0, len(objs))
	for _, o := range objs {
		if mc, ok := o.(*clusterv1beta1.ManagedCluster); ok {
			out = append(out, mc)
		}
	}
	return out, nil
}
