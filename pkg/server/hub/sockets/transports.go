package sockets

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/clusternet/clusternet/pkg/tunnel"
	"github.com/clusternet/clusternet/pkg/tunnel/wire"
)

// dialWait is how long a request waits for a reconnecting agent before it fails.
const dialWait = 5 * time.Second

// Transports hands out one pooled HTTP transport per cluster whose
// connections are streams of that cluster's tunnel. Streams are reused across
// requests like TCP connections, so a request costs no new stream setup, let
// alone a new TLS handshake. The proxy and the hub's own clients share them.
type Transports struct {
	tunnels *tunnel.Registry

	mu         sync.Mutex
	transports map[string]*http.Transport
}

// NewTransports returns transports over the tunnels in tunnels.
func NewTransports(tunnels *tunnel.Registry) *Transports {
	return &Transports{tunnels: tunnels, transports: map[string]*http.Transport{}}
}

// Tunnels is the registry the transports dial through.
func (t *Transports) Tunnels() *tunnel.Registry { return t.tunnels }

// For returns cluster id's transport.
func (t *Transports) For(id string) *http.Transport {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr, ok := t.transports[id]; ok {
		return tr
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, dialWait)
			defer cancel()
			return t.tunnels.Dial(ctx, id)
		},
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		// Content encoding passes through untouched: the client asked for
		// what it asked for, and the child answers it.
		DisableCompression: true,
	}
	t.transports[id] = tr
	return tr
}

// CloseIdle closes every pooled stream.
func (t *Transports) CloseIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range t.transports {
		tr.CloseIdleConnections()
	}
}

// ChildConfig is a client configuration for cluster id's apiserver through
// its tunnel, acting as that cluster's agent (its own credentials, nobody
// impersonated). The hub uses it to push applications; an agent whose
// AppPusher gate is off refuses it. It dials only this hub's tunnels: call it
// in the replica that holds the cluster's tunnel (Tunnels().Has(id)).
func (t *Transports) ChildConfig(id string) *rest.Config {
	transport := t.For(id)
	return &rest.Config{
		// The agent reads the target from the path, as on the proxy path.
		Host: "http://cluster-" + id + "/direct",
		Transport: roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			req = req.Clone(req.Context())
			wire.SetIdentity(req.Header, wire.Identity{Agent: true})
			return transport.RoundTrip(req)
		}),
		QPS:   50,
		Burst: 100,
	}
}

// ClusterIDFromHost reads the cluster id back from a ChildConfig host.
func ClusterIDFromHost(host string) string {
	host = strings.TrimPrefix(host, "http://")
	host, _, _ = strings.Cut(host, "/")
	return strings.TrimPrefix(host, "cluster-")
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
