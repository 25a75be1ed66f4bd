package sockets

import (
	"context"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/clusternet/clusternet/pkg/tunnel"
	"github.com/clusternet/clusternet/pkg/tunnel/wire"
)

// dialWait is how long a request waits for a reconnecting agent before it fails.
const dialWait = 5 * time.Second

// dropAfter is how long a cluster's tunnel stays down before its transport
// is dropped. A tunnel goes down for a moment whenever its agent
// reconnects, and requests then wait dialWait for it: the transport (its
// pool, its bound on streams) must outlive that. A cluster whose tunnel
// stays down this long has left (deleted, or moved to another replica); if
// it comes back, For builds a new transport.
const dropAfter = 2 * time.Minute

// Transports hands out one pooled HTTP transport per cluster whose
// connections are streams of that cluster's tunnel. Streams are reused across
// requests like TCP connections, so a request costs no new stream setup, let
// alone a new TLS handshake. The proxy and the hub's own clients share them.
type Transports struct {
	tunnels *tunnel.Registry
	// maxRequests bounds the requests in flight into one cluster, and so
	// the streams open in its tunnel and the bytes buffered for them (each
	// stream's window is bounded): one caller, or one slow child, cannot
	// make the hub hold an unbounded number of either.
	maxRequests int

	clock clock.WithDelayedExecution

	mu         sync.Mutex
	transports map[string]*http.Transport
	// drops holds, per cluster whose tunnel is down, the pending drop of
	// its transport; the tunnel coming back cancels it.
	drops map[string]*pendingDrop
	// inFlight counts requests per cluster; a cluster with none has no entry.
	inFlight map[string]int
}

// DefaultMaxRequestsPerCluster is --max-requests-per-cluster's default:
// room for hundreds of watches and exec sessions per cluster.
const DefaultMaxRequestsPerCluster = 512

// NewTransports returns transports over the tunnels in tunnels, with at most
// maxRequestsPerCluster requests in flight into each cluster.
func NewTransports(tunnels *tunnel.Registry, maxRequestsPerCluster int) *Transports {
	return newTransports(tunnels, maxRequestsPerCluster, clock.RealClock{})
}

func newTransports(tunnels *tunnel.Registry, maxRequestsPerCluster int, clk clock.WithDelayedExecution) *Transports {
	t := &Transports{tunnels: tunnels, maxRequests: maxRequestsPerCluster, clock: clk,
		transports: map[string]*http.Transport{}, inFlight: map[string]int{}, drops: map[string]*pendingDrop{}}
	tunnels.Watch(t.tunnelChanged)
	return t
}

type pendingDrop struct{ timer clock.Timer }

// tunnelChanged schedules the drop of cluster id's transport when its
// tunnel goes down, and cancels it when the tunnel comes back.
func (t *Transports) tunnelChanged(id string, up bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cancelDropLocked(id)
	if !up {
		t.scheduleDropLocked(id)
	}
}

// cancelDropLocked cancels the pending drop of id's transport. t.mu is held.
func (t *Transports) cancelDropLocked(id string) {
	if d, ok := t.drops[id]; ok {
		d.timer.Stop()
		delete(t.drops, id)
	}
}

// scheduleDropLocked drops id's transport in dropAfter. t.mu is held.
func (t *Transports) scheduleDropLocked(id string) {
	d := &pendingDrop{}
	d.timer = t.clock.AfterFunc(dropAfter, func() { t.drop(id, d) })
	t.drops[id] = d
}

// Forget drops cluster id's transport now, and closes its idle streams:
// the cluster left (its ManagedCluster or its registration is gone), so no
// reconnect is waited for. The hub's per-cluster registry
// (pkg/server/hub/clusterclients) calls it. Requests in flight keep the
// transport they hold until they end.
func (t *Transports) Forget(id string) {
	t.mu.Lock()
	t.cancelDropLocked(id)
	tr := t.transports[id]
	delete(t.transports, id)
	t.mu.Unlock()
	if tr != nil {
		tr.CloseIdleConnections()
	}
}

// Held lists the clusters a transport is held for, for tests and debugging.
func (t *Transports) Held() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Sorted(maps.Keys(t.transports))
}

// drop forgets cluster id's transport, if d is still its pending drop, and
// closes its idle streams. Requests still in flight keep the transport they
// hold until they end.
func (t *Transports) drop(id string, d *pendingDrop) {
	t.mu.Lock()
	if t.drops[id] != d {
		t.mu.Unlock()
		return
	}
	delete(t.drops, id)
	tr := t.transports[id]
	delete(t.transports, id)
	t.mu.Unlock()
	if tr != nil {
		tr.CloseIdleConnections()
	}
}

// Acquire takes one of cluster id's request slots; release gives it back.
// ok is false when all are taken: the caller must refuse the request (429)
// rather than queue it, since watches and exec sessions hold their slot for
// as long as they last.
func (t *Transports) Acquire(id string) (release func(), ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inFlight[id] >= t.maxRequests {
		return nil, false
	}
	t.inFlight[id]++
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			if t.inFlight[id]--; t.inFlight[id] <= 0 {
				delete(t.inFlight, id)
			}
		})
	}, true
}

// MaxRequests is the per-cluster bound Acquire enforces.
func (t *Transports) MaxRequests() int { return t.maxRequests }

// Tunnels is the registry the transports dial through.
func (t *Transports) Tunnels() *tunnel.Registry { return t.tunnels }

// For returns cluster id's transport, built on first use and dropped once
// the cluster's tunnel has been down for dropAfter.
func (t *Transports) For(id string) *http.Transport {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr, ok := t.transports[id]; ok {
		return tr
	}
	if _, pending := t.drops[id]; !pending && !t.tunnels.Has(id) {
		// Built while the tunnel is down (a request waiting for a
		// reconnect, or for a cluster that left): dropped like one whose
		// tunnel just went down, unless the tunnel comes (back) meanwhile.
		t.scheduleDropLocked(id)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, dialWait)
			defer cancel()
			return t.tunnels.Dial(ctx, id)
		},
		MaxIdleConnsPerHost: 256,
		// The hub's own clients (pushers) share the bound on streams.
		MaxConnsPerHost: t.maxRequests,
		IdleConnTimeout: 90 * time.Second,
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
// impersonated). The hub's per-cluster registry (clusterclients) builds the
// pushers' clients from it; an agent whose AppPusher gate is off refuses it. It dials only this hub's tunnels: call it
// in the replica that holds the cluster's tunnel (Tunnels().Has(id)).
func (t *Transports) ChildConfig(id string) *rest.Config {
	return &rest.Config{
		// The agent reads the target from the path, as on the proxy path.
		Host: "http://cluster-" + id + "/direct",
		Transport: roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			req = req.Clone(req.Context())
			wire.SetIdentity(req.Header, wire.Identity{Agent: true})
			// Looked up per request, not kept: a long-lived client must
			// not hold on to a transport dropped meanwhile.
			return t.For(id).RoundTrip(req)
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
