package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/clusternet/clusternet/pkg/metrics"
)

// caches are the informers the agent's readiness waits for, by name. A
// name expected but not added yet counts as not synced.
type caches struct {
	mu     sync.Mutex
	synced map[string]cache.InformerSynced
}

// expect has readiness wait for an informer named name that is not made yet.
func (c *caches) expect(name string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.synced == nil {
		c.synced = map[string]cache.InformerSynced{}
	}
	if _, ok := c.synced[name]; !ok {
		c.synced[name] = nil
	}
}

// add has readiness wait for synced until remove is called (its controller
// stopped).
func (c *caches) add(name string, synced cache.InformerSynced) (remove func()) {
	if c == nil {
		return func() {}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.synced == nil {
		c.synced = map[string]cache.InformerSynced{}
	}
	c.synced[name] = synced
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.synced, name)
	}
}

// check fails while an informer has not delivered its first list.
func (c *caches) check(*http.Request) error {
	c.mu.Lock()
	var waiting []string
	for name, synced := range c.synced {
		if synced == nil || !synced() {
			waiting = append(waiting, name)
		}
	}
	c.mu.Unlock()
	if len(waiting) > 0 {
		slices.Sort(waiting)
		return fmt.Errorf("informers not synced yet: %s", strings.Join(waiting, ", "))
	}
	return nil
}

// readyzChecks are what the agent's /readyz waits for: registered with the
// parent, its informers synced, its tunnel to the hub up. agent is nil
// until the agent is built.
func readyzChecks(agent *atomic.Pointer[Agent]) []healthz.HealthChecker {
	return []healthz.HealthChecker{
		healthz.NamedCheck("registered", func(*http.Request) error {
			if a := agent.Load(); a == nil || !a.registered.Load() {
				return errors.New("not registered with the parent yet")
			}
			return nil
		}),
		healthz.NamedCheck("informer-sync", func(r *http.Request) error {
			a := agent.Load()
			if a == nil {
				return errors.New("the agent is starting")
			}
			return a.caches.check(r)
		}),
		healthz.NamedCheck("tunnel", func(*http.Request) error {
			if a := agent.Load(); a == nil || !a.tunnelUp.Load() {
				return errors.New("the tunnel to the hub is down: reconnecting")
			}
			return nil
		}),
	}
}

// healthHandler serves /healthz and /livez (the process serves: ok while it
// registers or reconnects) and /readyz (readyzChecks), each with ?verbose
// and /<path>/<check> as Kubernetes components do.
func healthHandler(agent *atomic.Pointer[Agent]) http.Handler {
	mux := http.NewServeMux()
	healthz.InstallHandler(mux, healthz.PingHealthz)
	healthz.InstallLivezHandler(mux, healthz.PingHealthz)
	healthz.InstallReadyzHandler(mux, readyzChecks(agent)...)
	return mux
}

// metricsHandler serves /metrics.
func metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler())
	return mux
}

// profilingHandler serves Go's profiles under /debug/pprof/. Not
// /debug/pprof/cmdline: the agent's command line may hold its bootstrap
// token (--bootstrap-token).
func profilingHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/cmdline", http.NotFound)
	return mux
}

// serveProbes starts the health probe and metrics servers (an address of
// "0" turns one off) and, with --profiling, the profiling one, and stops
// them when ctx ends. It returns once they listen, so an address in use
// fails the start.
func (o *Options) serveProbes(ctx context.Context, agent *atomic.Pointer[Agent]) error {
	if err := serve(ctx, "--health-probe-bind-address", o.HealthProbeBindAddress, healthHandler(agent)); err != nil {
		return err
	}
	if err := serve(ctx, "--metrics-bind-address", o.MetricsBindAddress, metricsHandler()); err != nil {
		return err
	}
	if !o.Profiling {
		return nil
	}
	return serve(ctx, "--profiling-bind-address", o.ProfilingBindAddress, profilingHandler())
}

func serve(ctx context.Context, flag, addr string, handler http.Handler) error {
	if addr == "0" {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	logger := klog.FromContext(ctx)
	logger.Info("Serving", "flag", flag, "address", ln.Addr().String())
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "Server stopped", "flag", flag)
		}
	}()
	context.AfterFunc(ctx, func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	})
	return nil
}
