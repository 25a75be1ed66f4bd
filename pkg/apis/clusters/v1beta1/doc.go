// Package v1beta1 holds the clusters.clusternet.io/v1beta1 API: how child
// clusters ask to join a parent (ClusterRegistrationRequest) and how the parent
// sees them once they have (ManagedCluster).
//
// +kubebuilder:object:generate=true
// +groupName=clusters.clusternet.io
package v1beta1
