// Package v1beta1 holds the clusters.clusternet.io/v1beta1 API: how child
// clusters ask to join a parent and how the parent sees them once they have.
// Both kinds live in the parent.
//
// A ClusterRegistrationRequest (cluster-scoped, named clusternet-<cluster id>)
// is what a child's agent creates with a bootstrap token. The hub approves it,
// or a user does (kubectl clusternet approve), and answers in its status:
// the cluster's dedicated namespace, a token for the agent, and the parent's
// CA.
//
// A ManagedCluster, in that dedicated namespace, is the parent's record of one
// child: spec.clusterId (immutable; the label LabelClusterID carries it too),
// spec.syncMode (Push, Pull or Dual: who applies applications, see
// HubPushes), and a status the agent reports (health, Kubernetes version,
// capacity, whether its tunnel is up). Subscriptions select clusters by the
// ManagedCluster's labels, which the parent's users own: an agent may report
// status but not relabel its own cluster.
//
// Clients: the typed clientset is
// github.com/clusternet/clusternet/pkg/generated/clientset/versioned
// (ClustersV1beta1()), with a fake clientset (versioned/fake) for tests. The
// user guide is docs/registration.md in the repository.
//
// +kubebuilder:object:generate=true
// +groupName=clusters.clusternet.io
package v1beta1
