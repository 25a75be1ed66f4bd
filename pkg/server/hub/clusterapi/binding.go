package clusterapi

import (
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
)

// Labels the hub puts on the ManagedCluster of a discovered cluster, and on
// the bootstrap token it made for it, binding them to their cluster-api
// Cluster. They are under clusters.clusternet.io/, which a registration may
// not ask for (the approver refuses it) and an agent may not write (the
// hub chart's admission policy), so only the hub sets them: deregistration
// trusts nothing else.
const (
	// LabelManagement is the UID of the management cluster's kube-system
	// namespace: pointing the hub at another management cluster leaves the
	// clusters discovered from this one alone.
	LabelManagement = "clusters.clusternet.io/cluster-api-management"
	// LabelNamespace and LabelName are the Cluster's namespace and name
	// (the name only when it fits a label value, as names of at most 63
	// characters do).
	LabelNamespace = "clusters.clusternet.io/cluster-api-namespace"
	LabelName      = "clusters.clusternet.io/cluster-api-name"
	// LabelUID is the Cluster's UID: a Cluster deleted and made again under
	// the same name is another cluster.
	LabelUID = "clusters.clusternet.io/cluster-api-uid"
	// AnnotationApplied on a ManagedCluster is the digest of what the hub
	// last applied into its cluster, so that a restarted hub applies
	// nothing again until the kubeconfig or the agent's manifests change.
	AnnotationApplied = "clusters.clusternet.io/cluster-api-applied"
)

// binding identifies one Cluster of one management cluster.
type binding struct {
	management, namespace, name string
	uid                         types.UID
}

func bindingOf(management string, c *clusterv1.Cluster) binding {
	return binding{management: management, namespace: c.Namespace, name: c.Name, uid: c.UID}
}

// labels are the binding's labels.
func (b binding) labels() map[string]string {
	l := map[string]string{LabelManagement: b.management, LabelNamespace: b.namespace, LabelUID: string(b.uid)}
	if len(validation.IsValidLabelValue(b.name)) == 0 {
		l[LabelName] = b.name
	}
	return l
}

// inNamespace selects what is bound to any Cluster of namespace ns of
// management.
func inNamespace(management, ns string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{LabelManagement: management, LabelNamespace: ns})
}

// boundTo selects what is bound to the Cluster with uid of management.
func boundTo(management string, uid types.UID) labels.Selector {
	return labels.SelectorFromSet(labels.Set{LabelManagement: management, LabelUID: string(uid)})
}

// boundLabels says whether have carries every label of b.
func (b binding) boundLabels(have map[string]string) bool {
	for k, v := range b.labels() {
		if have[k] != v {
			return false
		}
	}
	return true
}
