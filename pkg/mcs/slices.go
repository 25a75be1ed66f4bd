package mcs

import (
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
)

// An exported Service travels as EndpointSlices in three hops, each
// rendered by one function here and written by one party:
//
//	child A (kube-controller-manager's slices of the Service)
//	  -> ExportedSlice: A's agent, in A's dedicated namespace of the parent
//	  -> ImportedSlice: the hub, in each importing cluster's dedicated namespace
//	  -> ChildSlice:    the importing agent, in its child, owned by the ServiceImport

// MaxEndpointsPerSlice is how many endpoints the hub copies from one
// exported slice: the EndpointSlice API's own limit, which an agent's
// copy may not exceed either.
const MaxEndpointsPerSlice = 1000

// routable says whether slices of type t carry addresses another cluster
// can reach: IPv4 or IPv6. FQDN slices (deprecated) name hosts only the
// exporting cluster may resolve, and are not exported.
func routable(t discoveryv1.AddressType) bool {
	return t == discoveryv1.AddressTypeIPv4 || t == discoveryv1.AddressTypeIPv6
}

// ExportedSlice is what the agent of a child publishes in its dedicated
// namespace for one of the child's slices of an exported Service; nil for
// a slice that is not IPv4 or IPv6.
func ExportedSlice(child *discoveryv1.EndpointSlice, svc ServiceKey, props ExportedProperties, namespace string) *discoveryv1.EndpointSlice {
	if !routable(child.AddressType) {
		return nil
	}
	name := svc.Namespace + "." + child.Name
	if len(name) > validation.DNS1123SubdomainMaxLength {
		name = svc.Namespace + "." + hash(child.Name)
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: namespace,
			Labels: map[string]string{
				mcsv1alpha1.LabelServiceName: svc.Name,
				LabelServiceNamespace:        svc.Namespace,
				discoveryv1.LabelManagedBy:   ManagedByExport,
			},
			Annotations: map[string]string{AnnotationExport: props.Encode()},
		},
		AddressType: child.AddressType,
		Endpoints:   endpointsOnly(child.Endpoints),
		Ports:       child.Ports,
	}
}

// ImportedSlice is what the hub writes, in an importing cluster's
// dedicated namespace, for one exported slice of sourceCluster. The
// source-cluster label is sourceCluster, which the hub derives from the
// registration of the namespace the exported slice is in: whatever labels
// the exporting agent wrote are not copied. An agent wrote exported, so
// what is copied is bounded: the first address of each endpoint (all a
// consumer uses, as kube-proxy does), at most MaxEndpointsPerSlice
// endpoints, and nothing of a slice that is not IPv4 or IPv6 (nil).
func ImportedSlice(exported *discoveryv1.EndpointSlice, svc ServiceKey, sourceCluster, namespace string) *discoveryv1.EndpointSlice {
	if !routable(exported.AddressType) {
		return nil
	}
	eps := exported.Endpoints
	if len(eps) > MaxEndpointsPerSlice {
		eps = eps[:MaxEndpointsPerSlice]
	}
	eps = endpointsOnly(eps)
	for i := range eps {
		if len(eps[i].Addresses) > 1 {
			eps[i].Addresses = eps[i].Addresses[:1]
		}
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: ImportedSliceName(svc, sourceCluster, exported.Name), Namespace: namespace,
			Labels: importLabels(svc.Name, svc.Namespace, sourceCluster),
		},
		AddressType: exported.AddressType,
		Endpoints:   eps,
		Ports:       exported.Ports,
	}
}

// ImportedSliceName is unique per source cluster and exported slice, and
// starts with the Service's name for whoever lists slices in a child.
func ImportedSliceName(svc ServiceKey, sourceCluster, exportedName string) string {
	return svc.Name + "-" + hash(sourceCluster, exportedName)
}

// ChildSlice is the importing agent's copy, in its child, of a slice the
// hub wrote for it: in the ServiceImport's namespace, labelled as mcs-api
// prescribes, and owned by the ServiceImport so that deleting it removes them.
func ChildSlice(imported *discoveryv1.EndpointSlice, si *mcsv1alpha1.ServiceImport) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: imported.Name, Namespace: si.Namespace,
			Labels: importLabels(si.Name, si.Namespace, imported.Labels[mcsv1alpha1.LabelSourceCluster]),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: mcsv1alpha1.GroupVersion.String(), Kind: "ServiceImport", Name: si.Name, UID: si.UID,
				BlockOwnerDeletion: ptr.To(false), Controller: ptr.To(true),
			}},
		},
		AddressType: imported.AddressType,
		Endpoints:   endpointsOnly(imported.Endpoints),
		Ports:       imported.Ports,
	}
}

// importLabels are mcs-api's labels of an imported slice, plus the
// Service's namespace (for the hub's and agent's selectors).
func importLabels(name, namespace, sourceCluster string) map[string]string {
	return map[string]string{
		mcsv1alpha1.LabelServiceName:   name,
		mcsv1alpha1.LabelSourceCluster: sourceCluster,
		LabelServiceNamespace:          namespace,
		discoveryv1.LabelManagedBy:     ManagedByImport,
	}
}

// endpointsOnly keeps what another cluster can use of an endpoint (its
// addresses, readiness, hostname and zone) and drops what names objects of
// the cluster it came from (targetRef, nodeName) or steers its own
// kube-proxy (hints).
func endpointsOnly(in []discoveryv1.Endpoint) []discoveryv1.Endpoint {
	if in == nil {
		return nil
	}
	out := make([]discoveryv1.Endpoint, len(in))
	for i, e := range in {
		out[i] = discoveryv1.Endpoint{Addresses: e.Addresses, Conditions: e.Conditions, Hostname: e.Hostname, Zone: e.Zone}
	}
	return out
}

// SameContent says whether have already carries want's labels, annotations,
// owner, endpoints and ports, so that a sync writes only what changed.
func SameContent(have, want *discoveryv1.EndpointSlice) bool {
	return mapsEqual(have.Labels, want.Labels) && mapsEqual(have.Annotations, want.Annotations) &&
		apiequality.Semantic.DeepEqual(have.OwnerReferences, want.OwnerReferences) &&
		have.AddressType == want.AddressType && apiequality.Semantic.DeepEqual(have.Endpoints, want.Endpoints) && apiequality.Semantic.DeepEqual(have.Ports, want.Ports)
}

// mapsEqual compares the keys want sets (others on have, say a label a
// person added, are left alone).
func mapsEqual(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}
