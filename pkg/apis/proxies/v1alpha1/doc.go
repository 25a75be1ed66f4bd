// Package v1alpha1 holds proxies.clusternet.io/v1alpha1, which the hub serves
// itself as an aggregated API of the parent (no CRD): the way into child
// clusters that the parent cannot dial.
//
// sockets/<cluster-id>/portforward is an agent's tunnel endpoint: the agent
// of that cluster, and no one else, opens a websocket there and keeps it
// open (sockets/<cluster-id> too, for agents older than the subresource).
// sockets/<cluster-id>/proxy/<path> sends a request through that tunnel;
// <path> (SocketProxyOptions.Path) is one of
//
//	direct/<api path>              the child's API server, as the agent reaches it
//	https/<host[:port]>/<path>     another https endpoint the agent may reach
//	http/<host[:port]>/<path>      the same over plain http
//
// so a rest.Config (or a kubeconfig) whose Host is the parent's address
// followed by /apis/proxies.clusternet.io/v1alpha1/sockets/<cluster-id>/proxy/direct
// talks to the child with any client-go client (see the example).
//
// The parent authorizes the verbs of sockets/proxy per cluster id
// (resourceNames); the child's own RBAC then decides, for the parent user the
// hub forwards (never a system: group such as system:masters). The user guide
// is docs/tunnel.md in the repository.
//
// +kubebuilder:object:generate=true
// +kubebuilder:skip
// +k8s:openapi-gen=true
// +groupName=proxies.clusternet.io
package v1alpha1
