package v1alpha1

import (
	"net/url"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of the tunnel and proxy.
const GroupName = "proxies.clusternet.io"

// TunnelSubresource is where an agent opens its tunnel:
// sockets/<cluster-id>/portforward. The parent apiserver exempts from API
// Priority and Fairness only watches and the proxy, exec, attach, log and
// portforward subresources; a tunnel opened on the bare socket (as agents
// before this subresource did, and the hub still accepts) holds a seat of the
// agent's priority level for as long as it lives, and a few hundred of them
// stall every service account of the parent. A tunnel is a port-forward: the
// hub opens streams through it to what the agent may reach.
const TunnelSubresource = "portforward"

// SocketPath is the parent's path of a cluster's socket, the bare one older
// agents open their tunnel at.
func SocketPath(clusterID string) string {
	return "/apis/" + GroupName + "/" + SchemeGroupVersion.Version + "/sockets/" + clusterID
}

// TunnelPath is the parent's path where a cluster's agent opens its tunnel.
func TunnelPath(clusterID string) string {
	return SocketPath(clusterID) + "/" + TunnelSubresource
}

// SchemeGroupVersion is the group and version the hub serves.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

var (
	// SchemeBuilder collects the functions that register these types.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme registers these types with a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion, &Socket{}, &SocketList{}, &SocketProxyOptions{})
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	// The apiserver decodes connect options from the query, where it has put
	// the rest of the path under "path".
	return scheme.AddConversionFunc((*url.Values)(nil), (*SocketProxyOptions)(nil), func(a, b any, _ conversion.Scope) error {
		b.(*SocketProxyOptions).Path = a.(*url.Values).Get("path")
		return nil
	})
}

// +kubebuilder:object:root=true

// Socket names one child cluster's tunnel; it has no state of its own. The
// name is the cluster id.
type Socket struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
}

// +kubebuilder:object:root=true

// SocketList is a list of Socket.
type SocketList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Socket `json:"items"`
}

// +kubebuilder:object:root=true

// SocketProxyOptions carries the rest of the path after sockets/<id>/proxy/:
// {https|http}/<host[:port]>/<path> or direct/<path>.
type SocketProxyOptions struct {
	metav1.TypeMeta `json:",inline"`
	// Path is what follows proxy/.
	Path string `json:"path,omitempty"`
}
