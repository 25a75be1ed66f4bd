package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/clusternet/clusternet/pkg/metrics"
	"github.com/clusternet/clusternet/pkg/tunnel"
)

// reconnectBackoff paces tunnel reconnects: fast first (a hub rolling
// restart is back in a second), jittered so a parent's agents do not all
// knock at once, and never more than about 2.6 s apart, so a parent that
// comes back finds its children again within seconds.
var reconnectBackoff = wait.Backoff{Duration: 100 * time.Millisecond, Factor: 1.6, Jitter: 0.3, Steps: 100, Cap: 2 * time.Second}

// runTunnel keeps the tunnel to the hub up until ctx ends.
func (a *Agent) runTunnel(ctx context.Context, handler http.Handler) {
	logger := klog.FromContext(ctx)
	backoff := reconnectBackoff
	for ctx.Err() == nil {
		start := time.Now()
		err := a.serveTunnel(ctx, handler)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = reconnectBackoff // it was up a while: this is a fresh failure
		}
		delay := backoff.Step()
		logger.Error(err, "Tunnel to the hub is down, reconnecting", "retryIn", delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

func (a *Agent) socketURL() string {
	return "wss://" + strings.TrimPrefix(strings.TrimSuffix(a.parentURL, "/"), "https://") +
		"/apis/proxies.clusternet.io/v1alpha1/sockets/" + string(a.clusterID)
}

// serveTunnel opens the websocket through the parent apiserver (which checks
// this cluster's RBAC for its socket) and serves the hub's streams until the
// tunnel closes.
func (a *Agent) serveTunnel(ctx context.Context, handler http.Handler) error {
	tlsConfig, err := rest.TLSConfigFor(a.credentialsConfig())
	if err != nil {
		return err
	}
	ws, resp, err := tunnel.Dialer(tlsConfig).DialContext(ctx, a.socketURL(), http.Header{"Authorization": {"Bearer " + a.token.get()}})
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			_ = resp.Body.Close()
			return fmt.Errorf("opening the tunnel at %s: %s: %s", a.socketURL(), resp.Status, strings.TrimSpace(string(body)))
		}
		return fmt.Errorf("opening the tunnel at %s: %w", a.socketURL(), err)
	}
	session, err := tunnel.Client(tunnel.NewConn(ws))
	if err != nil {
		_ = ws.Close()
		return err
	}
	klog.FromContext(ctx).Info("Tunnel up", "parent", a.parentURL)
	a.setTunnelUp(true)
	defer a.setTunnelUp(false)
	stop := context.AfterFunc(ctx, func() { _ = session.Close() })
	defer stop()
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	err = srv.Serve(session)
	_ = session.Close()
	if errors.Is(err, io.EOF) || err == nil {
		err = errors.New("the hub closed the tunnel")
	}
	return err
}

// setTunnelUp records the tunnel state and reports it at once.
func (a *Agent) setTunnelUp(up bool) {
	a.tunnelUp.Store(up)
	metrics.TunnelChanged(string(a.clusterID), up)
	select {
	case a.kick <- struct{}{}:
	default:
	}
}
