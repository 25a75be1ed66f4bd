package sockets

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/metrics"
	"github.com/clusternet/clusternet/pkg/server/hub/peers"
	"github.com/clusternet/clusternet/pkg/tunnel/wire"
)

// ProxyREST serves sockets/<id>/proxy/...: an upgrade-aware reverse proxy
// whose backend connections are streams of the cluster's tunnel.
type ProxyREST struct {
	transports *Transports
	clusters   Clusters
	identities *IdentityMapper
	// forwarder, when set, sends requests for clusters whose tunnel
	// another replica holds to that replica.
	forwarder Forwarder
}

// Forwarder sends a request to the hub replica holding a cluster's tunnel
// (peers.Forwarder).
type Forwarder interface {
	// Locate waits, until ctx ends, for cluster id's tunnel to be here
	// (addr "") or at another replica (its address).
	Locate(ctx context.Context, id string) (addr string, err error)
	// Forward proxies req to the replica at addr, as caller. It returns an
	// error wrapping peers.ErrPeerUnreachable, having written nothing, when
	// addr could not be dialed; every other failure goes to responder.
	Forward(w http.ResponseWriter, req *http.Request, addr, id, path string, caller user.Info, responder proxy.ErrorResponder) error
}

var (
	_ rest.Storage   = &ProxyREST{}
	_ rest.Connecter = &ProxyREST{}
)

// NewProxyREST returns the proxy storage; identities decides as whom each
// child sees a caller (nil maps nothing: see identity.go).
func NewProxyREST(transports *Transports, clusters Clusters, identities *IdentityMapper) *ProxyREST {
	return &ProxyREST{transports: transports, clusters: clusters, identities: identities}
}

// ForwardTo makes r forward requests for tunnels other replicas hold.
func (r *ProxyREST) ForwardTo(f Forwarder) *ProxyREST {
	r.forwarder = f
	return r
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
	// Only registered clusters get a transport (and a caller's wait for a
	// tunnel): made-up ids must not cost the hub memory or time. Before the
	// first list of ManagedClusters arrives, every id is given the benefit
	// of the doubt, unless a mapping rule needs the cluster's labels.
	var clusterLabels []map[string]string
	if r.clusters.Synced() {
		known, err := r.clusters.WithID(id)
		if err != nil {
			return nil, err
		}
		if len(known) == 0 {
			return nil, apierrors.NewNotFound(proxiesv1alpha1.SchemeGroupVersion.WithResource("sockets").GroupResource(), id)
		}
		for _, mc := range known {
			clusterLabels = append(clusterLabels, mc.Labels)
		}
	} else if r.identities.NeedsClusterLabels() {
		return nil, apierrors.NewServiceUnavailable("the hub has not read the ManagedClusters yet, which its identity mapping selects by label: retry in a moment")
	}
	identity, err := r.identities.IdentityFor(caller, clusterLabels)
	if err != nil {
		return nil, apierrors.NewForbidden(proxiesv1alpha1.SchemeGroupVersion.WithResource("sockets/proxy").GroupResource(), id, err)
	}
	transport := r.transports.For(id)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w, done := metrics.ProxyRequest(id, proxyOpts.Path, w, req)
		defer done()
		// A request another replica forwarded is served here or not at
		// all: a stale Lease must not send it round in circles.
		forwarded := req.Header.Get(peers.ForwardedHeader) != ""
		req.Header.Del(peers.ForwardedHeader)
		if r.forwarder != nil && !forwarded && !r.transports.Tunnels().Has(id) && r.forward(w, req, id, proxyOpts.Path, caller, responder) {
			return
		}
		release, ok := r.transports.Acquire(id)
		if !ok {
			responder.Error(apierrors.NewTooManyRequests(fmt.Sprintf("cluster %s already has %d requests in flight through its tunnel, "+
				"the most this hub allows (--max-requests-per-cluster): retry later, or end idle watches and exec sessions", id, r.transports.MaxRequests()), 1))
			return
		}
		defer release()
		// UpgradeAwareHandler sends the request's own query, not the
		// location's: the rename must be on the request.
		childReq, err := withChildQuery(req)
		if err != nil {
			responder.Error(err)
			return
		}
		if childReq != req {
			w.Header().Set(proxiesv1alpha1.DryRunHeader, "forwarded")
		}
		req = childReq
		location := &url.URL{Scheme: "http", Host: "cluster-" + id, Path: "/" + strings.TrimPrefix(proxyOpts.Path, "/"), RawQuery: req.URL.RawQuery}
		wire.SetIdentity(req.Header, identity)
		wire.ExplicitEncoding(req.Header)
		h := proxy.NewUpgradeAwareHandler(location, transport, false, false, proxy.NewErrorResponder(responder))
		h.UseLocationHost = true
		h.ServeHTTP(w, req)
	}), nil
}

// withChildQuery returns req as the agent of its cluster is to get it:
// with DryRunParameter renamed to dryRun in a copy (req itself is left as it
// came, and returned when there is nothing to rename).
// The rename happens only here, on the replica serving the tunnel, after the
// parent authorized the request; a replica forwarding to a peer passes the
// query as it came. A caller cannot smuggle its own dryRun past the parent
// (its API server refuses dryRun on connect subresources before the hub runs),
// and forwarding a dry run is safe: it only lessens what the request does,
// and the child authorizes it for the forwarded user as the real request.
func withChildQuery(req *http.Request) (*http.Request, error) {
	if !strings.Contains(req.URL.RawQuery, proxiesv1alpha1.DryRunParameter) {
		return req, nil
	}
	query, err := url.ParseQuery(req.URL.RawQuery)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("query %q: %v: escape it as url.Values.Encode does", req.URL.RawQuery, err))
	}
	dryRun, ok := query[proxiesv1alpha1.DryRunParameter]
	if !ok {
		return req, nil
	}
	delete(query, proxiesv1alpha1.DryRunParameter)
	query["dryRun"] = dryRun
	renamed := req.WithContext(req.Context())
	u := *req.URL
	u.RawQuery = query.Encode()
	renamed.URL = &u
	return renamed, nil
}

// maxForwards bounds the replicas one request is forwarded to: each whose
// dial fails is skipped until it renews a Lease, so a second attempt goes to
// the replica the agent reconnected to (or serves here).
const maxForwards = 2

// peerUnreachableRetryAfter is the Retry-After of a 503 for a tunnel whose
// replica died: the agent reconnects to a live replica within seconds.
const peerUnreachableRetryAfter = 1

// forward serves req from the replica holding cluster id's tunnel, waiting
// up to dialWait for one, and reports false when the tunnel is here after
// all (the caller serves it). A holder that cannot be dialed (a replica that
// just died) is skipped and the tunnel located again within the same wait,
// so a request racing the agent's reconnect goes where the tunnel went.
func (r *ProxyREST) forward(w http.ResponseWriter, req *http.Request, id, path string, caller user.Info, responder rest.Responder) (served bool) {
	ctx, cancel := context.WithTimeout(req.Context(), dialWait)
	defer cancel()
	var unreachable error
	for range maxForwards {
		addr, err := r.forwarder.Locate(ctx, id)
		if err != nil && unreachable == nil {
			responder.Error(apierrors.NewServiceUnavailable(err.Error()))
			return true
		}
		if err != nil {
			break
		}
		if addr == "" {
			return false
		}
		unreachable = r.forwarder.Forward(w, req, addr, id, path, caller, proxy.NewErrorResponder(responder))
		if unreachable == nil {
			return true
		}
		klog.FromContext(req.Context()).Info("The hub replica holding a tunnel is unreachable", "clusterID", id, "peer", addr, "err", unreachable)
		if req.ContentLength != 0 {
			// The failed attempt closed the body: it cannot be sent again.
			// (ContentLength, not Body: over HTTP/2, which the aggregator
			// speaks, a request without a body still has a non-nil Body,
			// and its ContentLength is 0; an unknown length is -1.)
			break
		}
	}
	// The peer's address is left out: it is hub-internal, and the caller can
	// do nothing with it but retry (the log above has it for the operator).
	responder.Error(&apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure,
		Code:   http.StatusServiceUnavailable,
		Reason: metav1.StatusReasonServiceUnavailable,
		Message: fmt.Sprintf("cluster %s: the hub replica holding its tunnel is unreachable (it may just have stopped) "+
			"and the tunnel has not come back to a live replica yet: retry in a moment, its agent reconnects within seconds", id),
		Details: &metav1.StatusDetails{RetryAfterSeconds: peerUnreachableRetryAfter},
	}})
	return true
}
