// Package sockets serves proxies.clusternet.io/v1alpha1 sockets: the agents'
// tunnel endpoint (sockets/<cluster-id>/portforward, and the bare socket for
// older agents) and the proxy into each child
// through its tunnel (sockets/<cluster-id>/proxy/...).
package sockets

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/tunnel"
)

// AgentServiceAccount is the ServiceAccount, in each dedicated namespace,
// whose token an agent holds.
const AgentServiceAccount = "clusternet-agent"

// SocketREST is the tunnel endpoint: an agent's websocket lands here.
type SocketREST struct {
	tunnels       *tunnel.Registry
	clusters      Clusters
	registrations Registrations

	// opens paces each cluster's tunnel opens. A tunnel is long-running to
	// the parent, so neither its API Priority and Fairness nor its
	// max-in-flight bound how often one is opened, and each open costs this
	// hub a websocket, a session and a Lease write: an agent (or whoever
	// holds its token) reconnecting in a loop is refused here. The agent's
	// own backoff (100 ms growing to 2 s) stays within it.
	mu    sync.Mutex
	opens map[string]*rate.Limiter
}

// TunnelOpensPerSecond and TunnelOpensBurst bound how often one cluster's
// tunnel is opened at one hub replica.
const (
	TunnelOpensPerSecond = 1
	TunnelOpensBurst     = 5
)

var (
	_ rest.Storage              = &SocketREST{}
	_ rest.Connecter            = &SocketREST{}
	_ rest.Scoper               = &SocketREST{}
	_ rest.SingularNameProvider = &SocketREST{}
)

// NewSocketREST returns the tunnel endpoint storage.
func NewSocketREST(tunnels *tunnel.Registry, clusters Clusters, registrations Registrations) *SocketREST {
	return &SocketREST{tunnels: tunnels, clusters: clusters, registrations: registrations, opens: map[string]*rate.Limiter{}}
}

// New returns an empty Socket.
func (r *SocketREST) New() runtime.Object { return &proxiesv1alpha1.Socket{} }

// Destroy releases nothing: the storage holds no resources of its own.
func (r *SocketREST) Destroy() {}

// NamespaceScoped is false: a socket is named by a cluster id.
func (r *SocketREST) NamespaceScoped() bool { return false }

// GetSingularName is "socket".
func (r *SocketREST) GetSingularName() string { return "socket" }

// ConnectMethods is GET: an agent opens its tunnel with a websocket upgrade.
func (r *SocketREST) ConnectMethods() []string { return []string{http.MethodGet} }

// NewConnectOptions returns nothing: the tunnel endpoint takes no options.
func (r *SocketREST) NewConnectOptions() (runtime.Object, bool, string) { return nil, false, "" }

// openWait takes one of cluster id's tunnel opens, or says how long until
// there is one.
func (r *SocketREST) openWait(id string) time.Duration {
	r.mu.Lock()
	l, ok := r.opens[id]
	if !ok {
		l = rate.NewLimiter(TunnelOpensPerSecond, TunnelOpensBurst)
		r.opens[id] = l
	}
	r.mu.Unlock()
	res := l.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return d
	}
	return 0
}

// Connect accepts an agent's tunnel after checking that the caller is that
// cluster's own identity: RBAC on the parent already limits the socket by
// resourceNames, and this check holds even if RBAC is misconfigured.
func (r *SocketREST) Connect(ctx context.Context, id string, _ runtime.Object, _ rest.Responder) (http.Handler, error) {
	user, ok := request.UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewUnauthorized("no user on the request")
	}
	ns, sa, err := serviceaccount.SplitUsername(user.GetName())
	if err != nil || sa != AgentServiceAccount {
		return nil, apierrors.NewForbidden(proxiesv1alpha1.SchemeGroupVersion.WithResource("sockets").GroupResource(), id,
			fmt.Errorf("user %q is not a cluster agent: only the ServiceAccount %s of a cluster's dedicated namespace may open its socket", user.GetName(), AgentServiceAccount))
	}
	if !r.registrations.HasSynced() {
		return nil, apierrors.NewServiceUnavailable("the hub has not read the registrations yet: retry in a moment")
	}
	if registered := r.registrations.Namespace(id); registered != ns {
		return nil, apierrors.NewForbidden(proxiesv1alpha1.SchemeGroupVersion.WithResource("sockets").GroupResource(), id,
			fmt.Errorf("user %q is not the agent of cluster %s: the hub admitted that cluster into namespace %q (ClusterRegistrationRequest %s%s), not %s",
				user.GetName(), id, registered, clusterv1beta1.NamePrefix, id, ns))
	}
	withID, err := r.clusters.WithID(id)
	if err != nil {
		return nil, err
	}
	var clusters []*clusterv1beta1.ManagedCluster
	for _, mc := range withID {
		if mc.Namespace == ns {
			clusters = append(clusters, mc)
		}
	}
	if len(clusters) == 0 {
		return nil, apierrors.NewForbidden(proxiesv1alpha1.SchemeGroupVersion.WithResource("sockets").GroupResource(), id,
			fmt.Errorf("user %q is not the agent of cluster %s: its namespace %s holds no ManagedCluster with that spec.clusterId", user.GetName(), id, ns))
	}
	// Counted only once the caller is the cluster's agent: the map holds
	// at most one entry per admitted cluster.
	if wait := r.openWait(id); wait > 0 {
		return nil, apierrors.NewTooManyRequests(fmt.Sprintf("the tunnel of cluster %s was opened more than %d times in a moment (at most %d a second): retry later",
			id, TunnelOpensBurst, TunnelOpensPerSecond), int(math.Ceil(wait.Seconds())))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		logger := klog.FromContext(req.Context()).WithValues("clusterID", id)
		ws, err := tunnel.Upgrader.Upgrade(w, req, nil)
		if err != nil {
			logger.Error(err, "Upgrading an agent's tunnel")
			return
		}
		session, err := tunnel.Server(tunnel.NewConn(ws))
		if err != nil {
			logger.Error(err, "Starting the tunnel session")
			_ = ws.Close()
			return
		}
		r.tunnels.Add(id, session)
		logger.Info("Tunnel up", "cluster", klog.KObj(clusters[0]))
		<-session.CloseChan()
		r.tunnels.Remove(id, session)
		logger.Info("Tunnel down", "cluster", klog.KObj(clusters[0]))
	}), nil
}
