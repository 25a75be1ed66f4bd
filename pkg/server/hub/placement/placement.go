// Package placement is the hub's one answer to "does this replica apply
// what a dedicated namespace holds, and to which cluster", in the generic
// deployer's terms (deployer.Placement): the generic pusher takes it as it
// is and the Helm pusher translates it (helm.TargetState), so they never
// disagree on who applies a cluster's applications.
package placement

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/deployer"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
)

// Inputs are what the answer depends on.
type Inputs struct {
	Clusters clusterlisters.ManagedClusterLister
	// AdmittedInto is the dedicated namespace a cluster was admitted into
	// by its registration ("" when unknown): pushes are bound to it, not to
	// whatever a ManagedCluster's spec.clusterId claims.
	AdmittedInto func(clusterID string) string
	// TunnelHere says whether this replica holds the cluster's tunnel.
	TunnelHere func(clusterID string) bool
}

// Of is the placement of namespace's applications.
func Of(in Inputs, namespace string) deployer.Placement {
	mcs, err := in.Clusters.ManagedClusters(namespace).List(labels.Everything())
	if err != nil {
		return deployer.Placement{Decision: deployer.Skip, Why: fmt.Sprintf("listing ManagedClusters in namespace %s: %v", namespace, err)}
	}
	if len(mcs) == 0 {
		return deployer.Placement{Decision: deployer.Gone, Why: fmt.Sprintf("no ManagedCluster in namespace %s", namespace)}
	}
	mc := mcs[0]
	id := string(mc.Spec.ClusterID)
	if admitted := in.AdmittedInto(id); admitted != namespace {
		return deployer.Placement{Decision: deployer.Skip, Why: fmt.Sprintf("cluster %s was admitted into namespace %q, not %s: nothing of this namespace is pushed into it", id, admitted, namespace)}
	}
	if !clusterv1beta1.HubPushes(mc.Spec.SyncMode, mc.Status.AppPusher) {
		return deployer.Placement{Decision: deployer.Skip, Why: fmt.Sprintf("cluster %s's agent applies (sync mode %s, AppPusher %t)", mc.Name, mc.Spec.SyncMode, mc.Status.AppPusher)}
	}
	if !in.TunnelHere(id) {
		return deployer.Placement{Decision: deployer.Skip, Why: fmt.Sprintf("cluster %s's tunnel is not held by this replica", mc.Name)}
	}
	return deployer.Placement{Decision: deployer.Act, ClusterID: id}
}

// Changed says whether an update of a ManagedCluster from old to cur may
// change the placement of its namespace's applications: what Of reads of
// it (its cluster id, sync mode and AppPusher). The pushers requeue a
// cluster's applications only then, not on its agent's heartbeats and
// other status reports. Adds and deletes always may.
func Changed(old, cur *clusterv1beta1.ManagedCluster) bool {
	return old.Spec.ClusterID != cur.Spec.ClusterID || old.HubPushes() != cur.HubPushes()
}
