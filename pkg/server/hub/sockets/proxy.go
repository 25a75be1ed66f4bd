package sockets

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/tunnel/wire"
)

// ProxyREST serves sockets/<id>/proxy/...: an upgrade-aware reverse proxy
// whose backend connections are streams of the cluster's tunnel.
type ProxyREST struct {
	transports *Transports
	clusters   Clusters
}

var (
	_ rest.Storage   = &ProxyREST{}
	_ rest.Connecter = &ProxyREST{}
)

// NewProxyREST returns the proxy storage.
func NewProxyREST(transports *Transports, clusters Clusters) *ProxyREST {
	return &ProxyREST{transports: transports, clusters: clusters}
}

// New returns an empty Socket.
func (r *ProxyREST) New() runtime.Object { return &proxiesv1alpha1.Socket{} }

// Destroy closes pooled tunnel streams.
func (r *ProxyREST) Destroy() { r.transports.CloseIdle() }

// ConnectMethods are every method kubectl uses.
func (r *ProxyREST) ConnectMethods() []string {
	return []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
}

// NewConnectOptions takes the rest of the path after proxy/.
func (r *ProxyREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &proxiesv1alpha1.SocketProxyOptions{}, true, "path"
}

// Connect proxies one request into cluster id.
func (r *ProxyREST) Connect(ctx context.Context, id string, opts runtime.Object, responder rest.Responder) (http.Handler, error) {
	proxyOpts, ok := opts.(*proxiesv1alpha1.SocketProxyOptions)
	if !ok {
		return nil, fmt.Errorf("invalid options object: %#v", opts)
	}
	if _, err := wire.ParseTarget(proxyOpts.Path); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	caller, ok := request.UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewUnauthorized("no user on the request")
	}
	identity, err := identityOf(caller)
	if err != nil {
		return nil, apierrors.NewForbidden(proxiesv1alpha1.SchemeGroupVersion.WithResource("sockets/proxy").GroupResource(), id, err)
	}
	// Only registered clusters get a transport (and a caller's wait for a
	// tunnel): made-up ids must not cost the hub memory or time. Before the
	// first list of ManagedClusters arrives, every id is given the benefit
	// of the doubt.
	if r.clusters.Synced() {
		if known, err := r.clusters.WithID(id); err != nil {
			return nil, err
		} else if len(known) == 0 {
			return nil, apierrors.NewNotFound(proxiesv1alpha1.SchemeGroupVersion.WithResource("sockets").GroupResource(), id)
		}
	}
	transport := r.transports.For(id)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		location := &url.URL{Scheme: "http", Host: "cluster-" + id, Path: "/" + strings.TrimPrefix(proxyOpts.Path, "/"), RawQuery: req.URL.RawQuery}
		wire.SetIdentity(req.Header, identity)
		h := proxy.NewUpgradeAwareHandler(location, transport, false, false, proxy.NewErrorResponder(responder))
		h.UseLocationHost = true
		h.ServeHTTP(w, req)
	}), nil
}

// identityOf decides how the child sees the caller. The seed's pass-through:
// user "clusternet" with extras carrying the child's own credentials. Anyone
// else: impersonated by the agent, so the child's RBAC decides.
//
// User "clusternet" without credentials is refused, never impersonated:
// deploy/ lets system:anonymous impersonate it (that is how the seed's
// kubeconfigs work), so impersonating it would let anyone who reaches the
// parent into every child as an authenticated user.
func identityOf(u user.Info) (wire.Identity, error) {
	extra := u.GetExtra()
	if u.GetName() == wire.PassThroughUser {
		if tokens := extra[wire.ExtraToken]; len(tokens) > 0 && tokens[0] != "" {
			return wire.Identity{Token: tokens[0]}, nil
		}
		if certs, keys := extra[wire.ExtraCertificate], extra[wire.ExtraPrivateKey]; len(certs) > 0 && len(keys) > 0 && certs[0] != "" && keys[0] != "" {
			return wire.Identity{Certificate: certs[0], PrivateKey: keys[0]}, nil
		}
		return wire.Identity{}, fmt.Errorf("user %q passes the caller's child credentials through and carries none: set user extra %s (a child token), or %s and %s (a child client certificate and key, base64 PEM), as in the seed's kubeconfig",
			wire.PassThroughUser, wire.ExtraToken, wire.ExtraCertificate, wire.ExtraPrivateKey)
	}
	id := wire.Identity{User: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(), Extra: map[string][]string{}}
	for k, v := range extra {
		id.Extra[k] = v
	}
	return id, nil
}
