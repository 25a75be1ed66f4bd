package v1alpha1

import (
	"fmt"
	"math"
)

// BindingReplicasOf gives replicas per feed per cluster (SubscriptionStatus.Replicas)
// the shape upstream Clusternet's status.replicas has (BindingReplicas): for
// each feed key, one count per cluster of bindingClusters, in that order; a
// cluster without a share counts 0. It returns nil for no feeds.
func BindingReplicasOf(bindingClusters []string, byCluster map[string]map[string]int32) map[string][]int32 {
	if len(byCluster) == 0 {
		return nil
	}
	out := make(map[string][]int32, len(byCluster))
	for feed, perCluster := range byCluster {
		counts := make([]int32, len(bindingClusters))
		for i, c := range bindingClusters {
			counts[i] = perCluster[c]
		}
		out[feed] = counts
	}
	return out
}

// ReplicasByClusterOf reads status.replicas as upstream Clusternet writes it
// (BindingReplicas, one count per binding cluster) into replicas per feed per
// cluster. A feed whose list is not as long as bindingClusters is an error
// naming it: the counts cannot be matched to clusters.
func ReplicasByClusterOf(bindingClusters []string, replicas map[string][]int32) (map[string]map[string]int32, error) {
	if len(replicas) == 0 {
		return nil, nil
	}
	out := make(map[string]map[string]int32, len(replicas))
	for feed, counts := range replicas {
		if len(counts) != len(bindingClusters) {
			return nil, fmt.Errorf("status.replicas[%q] has %d counts for %d bindingClusters: it needs one per binding cluster, in the order of status.bindingClusters",
				feed, len(counts), len(bindingClusters))
		}
		perCluster := make(map[string]int32, len(counts))
		for i, c := range bindingClusters {
			perCluster[c] = counts[i]
		}
		out[feed] = perCluster
	}
	return out, nil
}

// SpecHashValueOf turns a 64-bit hash into what status.specHash holds
// (SpecHashValue): the API's integers are signed, so the top bit is dropped.
func SpecHashValueOf(sum uint64) int64 {
	return int64(sum & math.MaxInt64)
}
