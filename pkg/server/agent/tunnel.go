package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
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

// socketURL is where this cluster's tunnel opens: its socket's tunnel
// subresource, or with legacy the bare socket of hubs older than it.
func (a *Agent) socketURL(legacy bool) string {
	path := proxiesv1alpha1.TunnelPath(string(a.clusterID))
	if legacy {
		path = proxiesv1alpha1.SocketPath(string(a.clusterID))
	}
	return "wss://" + strings.TrimPrefix(strings.TrimSuffix(a.parentURL, "/"), "https://") + path
}

// serveTunnel opens the websocket through the parent apiserver (which checks
// this cluster's RBAC for its socket) and serves the hub's streams until the
// tunnel closes.
func (a *Agent) serveTunnel(ctx context.Context, handler http.Handler) error {
	ws, err := a.dialTunnel(ctx)
	if err != nil {
		return err
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

// dialTunnel opens the websocket at the tunnel subresource, and at the bare
// socket when the parent refuses the subresource as unknown (a hub older than
// it) or forbidden (RBAC the hub made for an agent older than it, until the
// hub's approver updates it): both are checked the same way by the parent and
// the hub, so the fallback opens nothing the agent could not open before.
func (a *Agent) dialTunnel(ctx context.Context) (*websocket.Conn, error) {
	tlsConfig, err := rest.TLSConfigFor(a.credentialsConfig())
	if err != nil {
		return nil, err
	}
	dial := func(legacy bool) (*websocket.Conn, int, error) {
		url := a.socketURL(legacy)
		ws, resp, err := tunnel.Dialer(tlsConfig).DialContext(ctx, url, http.Header{"Authorization": {"Bearer " + a.token.get()}})
		if err == nil {
			return ws, 0, nil
		}
		if resp == nil {
			return nil, 0, fmt.Errorf("opening the tunnel at %s: %w", url, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		_ = resp.Body.Close()
		return nil, resp.StatusCode, fmt.Errorf("opening the tunnel at %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	ws, status, err := dial(false)
	if status != http.StatusNotFound && status != http.StatusForbidden {
		return ws, err
	}
	ws, _, legacyErr := dial(true)
	if legacyErr != nil {
		return nil, fmt.Errorf("%w; and at the bare socket of older hubs: %w", err, legacyErr)
	}
	klog.FromContext(ctx).Info("The hub or this cluster's RBAC predates the tunnel subresource; opened the bare socket, which holds a seat of the parent's API Priority and Fairness while it lasts", "refused", err.Error())
	return ws, nil
}

// setTunnelUp records the tunnel state and reports it at once.
func (a *Agent) setTunnelUp(up bool) {
	a.tunnelUp.Store(up)
	metrics.TunnelChanged(string(a.clusterID), up)
	a.askForReport()
}
