package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

// Tuning shared by both ends.
const (
	// KeepAliveInterval is how often each end pings: a tunnel that dies
	// silently (a NAT drops it) is noticed within about two intervals.
	KeepAliveInterval = 10 * time.Second
	// streamWindow is each stream's receive window. A reader that stops
	// stalls its own sender once this much is in flight, and nobody else.
	streamWindow = 1 << 20
)

func config() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.KeepAliveInterval = KeepAliveInterval
	cfg.ConnectionWriteTimeout = 10 * time.Second
	cfg.MaxStreamWindowSize = streamWindow
	cfg.StreamOpenTimeout = 10 * time.Second
	cfg.LogOutput = io.Discard
	return cfg
}

// Server is the hub's end: it opens streams towards the agent.
func Server(conn net.Conn) (*yamux.Session, error) {
	return yamux.Server(conn, config())
}

// Client is the agent's end: it accepts the streams the hub opens.
func Client(conn net.Conn) (*yamux.Session, error) {
	return yamux.Client(conn, config())
}

// ErrNoTunnel says a cluster has no tunnel to this hub.
var ErrNoTunnel = errors.New("no tunnel")

// Registry holds the hub's live tunnels by cluster id.
type Registry struct {
	mu       sync.Mutex
	sessions map[string]*yamux.Session
	// arrived is closed and replaced whenever a tunnel is added, waking dialers
	// that wait for a reconnecting agent.
	arrived chan struct{}
	// watchers hear of every tunnel that comes up or goes down.
	watchers []func(id string, up bool)
}

// Watch calls f, outside the registry's lock, whenever a cluster's tunnel
// comes up or goes down here: controllers that act through tunnels requeue
// that cluster's work.
func (r *Registry) Watch(f func(id string, up bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watchers = append(r.watchers, f)
}

func (r *Registry) notify(id string, up bool, watchers []func(string, bool)) {
	for _, f := range watchers {
		f(id, up)
	}
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{sessions: map[string]*yamux.Session{}, arrived: make(chan struct{})}
}

// Add records id's tunnel, closing the one it replaces (an agent that
// reconnected before the hub noticed the old tunnel was dead).
func (r *Registry) Add(id string, s *yamux.Session) {
	r.mu.Lock()
	old := r.sessions[id]
	r.sessions[id] = s
	close(r.arrived)
	r.arrived = make(chan struct{})
	watchers := r.watchers
	r.mu.Unlock()
	if old != nil && old != s {
		_ = old.Close()
	}
	r.notify(id, true, watchers)
}

// Remove forgets id's tunnel if it is still s.
func (r *Registry) Remove(id string, s *yamux.Session) {
	r.mu.Lock()
	removed := r.sessions[id] == s
	if removed {
		delete(r.sessions, id)
	}
	watchers := r.watchers
	r.mu.Unlock()
	if removed {
		r.notify(id, false, watchers)
	}
}

// IDs lists the clusters with a live tunnel here.
func (r *Registry) IDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.sessions))
	for id, s := range r.sessions {
		if !s.IsClosed() {
			ids = append(ids, id)
		}
	}
	return ids
}

// Has reports whether id has a live tunnel.
func (r *Registry) Has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sessions[id]
	return s != nil && !s.IsClosed()
}

// Dial opens a stream to id's agent. If the tunnel is down it waits, until
// ctx ends, for the agent to reconnect: a request that arrives while an agent
// reconnects is delayed, not failed.
func (r *Registry) Dial(ctx context.Context, id string) (net.Conn, error) {
	for {
		r.mu.Lock()
		s, arrived := r.sessions[id], r.arrived
		r.mu.Unlock()
		if s != nil && !s.IsClosed() {
			stream, err := s.OpenStream()
			if err == nil {
				return stream, nil
			}
			if !s.IsClosed() {
				return nil, fmt.Errorf("opening a stream to cluster %s: %w", id, err)
			}
			r.Remove(id, s)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster %s: %w (is its agent running and connected?)", id, ErrNoTunnel)
		case <-arrived:
		}
	}
}

// Close closes id's tunnel here, if there is one: another hub replica holds
// a newer one, so this one is dead.
func (r *Registry) Close(id string) {
	r.mu.Lock()
	s := r.sessions[id]
	r.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
}
