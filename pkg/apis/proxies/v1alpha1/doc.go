// Package v1alpha1 holds proxies.clusternet.io/v1alpha1, which the hub serves
// itself as an aggregated API (no CRD): sockets/<cluster-id> is an agent's
// tunnel endpoint, and sockets/<cluster-id>/proxy/... reaches that child.
//
// +kubebuilder:object:generate=true
// +kubebuilder:skip
// +k8s:openapi-gen=true
// +groupName=proxies.clusternet.io
package v1alpha1
