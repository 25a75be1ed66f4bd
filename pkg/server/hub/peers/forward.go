package peers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
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
				if ctx.Err() != nil {
					// The caller went away: says nothing of the peer.
					return nil, err
				}
				leases.Unreachable(addr)
				err = &unreachableError{addr: addr, err: err}
				if failed, ok := ctx.Value(dialFailureKey{}).(*dialFailure); ok {
					failed.set(err)
				}
				return nil, err
			}
			return conn, nil
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

// ErrPeerUnreachable says the replica a Lease named could not be dialed:
// nothing was sent to it and nothing was written to the caller.
var ErrPeerUnreachable = errors.New("the hub replica holding the tunnel is unreachable")

// unreachableError is a failed dial to the peer at addr.
type unreachableError struct {
	addr string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("%v (%s): %v", ErrPeerUnreachable, e.addr, e.err)
}

func (e *unreachableError) Unwrap() []error { return []error{ErrPeerUnreachable, e.err} }

// dialFailure records, through the request's context, that a dial for it
// failed: the proxy reports it wrapped in ways errors.Is cannot see through
// ("error dialing backend: %v" for upgrades).
type dialFailure struct {
	mu  sync.Mutex
	err error
}

type dialFailureKey struct{}

func (d *dialFailure) set(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}

func (d *dialFailure) get() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// unreachableResponder keeps a failed dial to the peer from the caller (the
// forwarder's caller answers it, or tries elsewhere) and passes any other
// error on.
type unreachableResponder struct {
	proxy.ErrorResponder
	dial *dialFailure
	err  error
}

func (r *unreachableResponder) Error(w http.ResponseWriter, req *http.Request, err error) {
	if failed := r.dial.get(); failed != nil {
		r.err = failed
		return
	}
	r.ErrorResponder.Error(w, req, err)
}

// Forward proxies req (for sockets/<id>/proxy/<path>) to the replica at addr
// as caller: every identity header the caller sent is replaced by caller's
// X-Remote-* headers, which the holder trusts only because this replica's
// peer certificate comes with them. Upgrades (exec, port-forward, watch)
// stream as on the holder. req itself is left as it came (a copy is sent).
//
// When addr cannot be dialed, Forward writes nothing, marks addr unreachable
// (Locate skips it until it renews a Lease) and returns an error wrapping
// ErrPeerUnreachable: the caller may locate the tunnel again (a request
// without a body can be sent again; the transport closed any body). Every
// other failure goes to responder, and Forward returns nil.
func (f *Forwarder) Forward(w http.ResponseWriter, req *http.Request, addr, id, path string, caller user.Info, responder proxy.ErrorResponder) error {
	failed := &dialFailure{}
	req = req.Clone(context.WithValue(req.Context(), dialFailureKey{}, failed))
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
	unreachable := &unreachableResponder{ErrorResponder: responder, dial: failed}
	h := proxy.NewUpgradeAwareHandler(location, f.transport, false, false, unreachable)
	h.UseLocationHost = true
	h.ServeHTTP(w, req)
	return unreachable.err
}

// CloseIdle closes pooled connections to other replicas.
func (f *Forwarder) CloseIdle() { f.transport.CloseIdleConnections() }
