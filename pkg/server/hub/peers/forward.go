package peers

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/transport"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
)

// ForwardedHeader marks a request a replica forwarded (its value is that
// replica's identity). The holder never forwards it again, so stale Leases
// cannot make requests go round in circles. Anyone may set it: it only keeps
// their request on the replica it reached.
const ForwardedHeader = "X-Clusternet-Forwarded-By"

// Forwarder sends proxy requests to the replica holding the tunnel.
type Forwarder struct {
	leases    *Leases
	transport *http.Transport
}

// NewForwarder forwards with t's peer certificate to the holders leases finds.
func NewForwarder(leases *Leases, t *TLS) *Forwarder {
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	f := &Forwarder{leases: leases}
	f.transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				leases.Unreachable(addr)
			}
			return conn, err
		},
		TLSClientConfig:     t.ClientConfig(),
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		// Content encoding passes through untouched, as on the holder.
		DisableCompression: true,
	}
	return f
}

// Locate waits, until ctx ends, for cluster id's tunnel to be here (addr "")
// or at another replica.
func (f *Forwarder) Locate(ctx context.Context, id string) (addr string, err error) {
	return f.leases.Locate(ctx, id)
}

// Identity is this replica's.
func (f *Forwarder) Identity() string { return f.leases.Identity() }

// Forward proxies req (for sockets/<id>/proxy/<path>) to the replica at addr
// as caller: every identity header the caller sent is replaced by caller's
// X-Remote-* headers, which the holder trusts only because this replica's
// peer certificate comes with them. Upgrades (exec, port-forward, watch)
// stream as on the holder.
func (f *Forwarder) Forward(w http.ResponseWriter, req *http.Request, addr, id, path string, caller user.Info, responder proxy.ErrorResponder) {
	location := &url.URL{
		Scheme:   "https",
		Host:     addr,
		Path:     "/apis/" + proxiesv1alpha1.GroupName + "/" + proxiesv1alpha1.SchemeGroupVersion.Version + "/sockets/" + id + "/proxy/" + strings.TrimPrefix(path, "/"),
		RawQuery: req.URL.RawQuery,
	}
	req.Header.Del("Authorization")
	for k := range req.Header {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), "Impersonate-") {
			req.Header.Del(k)
		}
	}
	transport.SetAuthProxyHeaders(req, caller.GetName(), caller.GetUID(), caller.GetGroups(), caller.GetExtra())
	req.Header.Set(ForwardedHeader, f.leases.Identity())
	h := proxy.NewUpgradeAwareHandler(location, f.transport, false, false, responder)
	h.UseLocationHost = true
	h.ServeHTTP(w, req)
}

// CloseIdle closes pooled connections to other replicas.
func (f *Forwarder) CloseIdle() { f.transport.CloseIdleConnections() }
