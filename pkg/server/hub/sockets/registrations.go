package sockets

import (
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
)

// Registrations is the hub's own record of which dedicated namespace each
// cluster id was admitted into: the ClusterRegistrationRequest it approved.
// Tunnels and pushes are bound to it rather than to what a ManagedCluster
// says, since a ManagedCluster can be written by more parties (any parent
// user granted ManagedCluster rights in a namespace) than a request's status
// (the hub, and admins who approve).
type Registrations struct {
	Lister clusterlisters.ClusterRegistrationRequestLister
	// Synced says whether Lister holds the parent's requests yet; nil means it does.
	Synced func() bool
}

// HasSynced says whether the requests were read: until then, nothing can be
// told registered.
func (r Registrations) HasSynced() bool { return r.Synced == nil || r.Synced() }

// Namespace is the dedicated namespace cluster id was admitted into, or ""
// when it has no approved registration.
func (r Registrations) Namespace(id string) string {
	crr, err := r.Lister.Get(clusterv1beta1.NamePrefix + id)
	if err != nil || string(crr.Spec.ClusterID) != id || crr.Status.Result == nil || *crr.Status.Result != clusterv1beta1.RequestApproved {
		return ""
	}
	return crr.Status.DedicatedNamespace
}
