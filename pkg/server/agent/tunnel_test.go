package agent

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusternet/clusternet/pkg/registration"
	"github.com/clusternet/clusternet/pkg/tunnel"
)

// fakeParent answers the tunnel subresource with subresourceStatus (0: it
// upgrades) and upgrades the bare socket unless legacyStatus says otherwise,
// recording the paths it was asked for.
type fakeParent struct {
	subresourceStatus, legacyStatus int

	mu    sync.Mutex
	paths []string
}

func (p *fakeParent) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p.mu.Lock()
	p.paths = append(p.paths, req.URL.Path)
	p.mu.Unlock()
	if req.Header.Get("Authorization") != "Bearer agent-token" {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	status := p.legacyStatus
	if strings.HasSuffix(req.URL.Path, "/portforward") {
		status = p.subresourceStatus
	}
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	ws, err := tunnel.Upgrader.Upgrade(w, req, nil)
	if err == nil {
		_ = ws.Close()
	}
}

func (p *fakeParent) asked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paths...)
}

func TestDialTunnel(t *testing.T) {
	const (
		subresource = "/apis/proxies.clusternet.io/v1alpha1/sockets/c1/portforward"
		bare        = "/apis/proxies.clusternet.io/v1alpha1/sockets/c1"
	)
	for _, tc := range []struct {
		name                string
		subresource, legacy int
		wantPaths           []string
		wantErr             []string
		opened              bool
	}{
		{name: "a current hub: the subresource only", wantPaths: []string{subresource}, opened: true},
		{name: "a hub older than the subresource: the bare socket", subresource: http.StatusNotFound,
			wantPaths: []string{subresource, bare}, opened: true},
		{name: "RBAC made for an older agent: the bare socket", subresource: http.StatusForbidden,
			wantPaths: []string{subresource, bare}, opened: true},
		{name: "any other refusal: no fallback", subresource: http.StatusUnauthorized,
			wantPaths: []string{subresource}, wantErr: []string{subresource, "401"}},
		{name: "both refused: both named", subresource: http.StatusForbidden, legacy: http.StatusForbidden,
			wantPaths: []string{subresource, bare}, wantErr: []string{subresource, bare, "403", "older hubs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := &fakeParent{subresourceStatus: tc.subresource, legacyStatus: tc.legacy}
			srv := httptest.NewTLSServer(parent)
			defer srv.Close()
			a := &Agent{parentURL: srv.URL, clusterID: "c1", creds: &Credentials{}}
			a.trust.set(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
			a.token.set("agent-token", time.Now().Add(time.Hour), time.Time{})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ws, err := a.dialTunnel(ctx)
			if ws != nil {
				_ = ws.Close()
			}
			if tc.opened != (err == nil) {
				t.Fatalf("dialTunnel: %v, want opened=%v", err, tc.opened)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			if got := parent.asked(); strings.Join(got, " ") != strings.Join(tc.wantPaths, " ") {
				t.Errorf("asked the parent for %v, want %v", got, tc.wantPaths)
			}
		})
	}
}

// The first report waits for the tunnel, so one status write says the
// cluster is up with its tunnel, not one saying it is down and another,
// kicked at once, saying it is up; but not for long when the hub cannot
// be reached.
func TestFirstReportWaitsForTheTunnel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name    string
		upAfter time.Duration // <0: never
	}{
		{name: "up during the wait", upAfter: 50 * time.Millisecond},
		{name: "up before it began", upAfter: 0},
		{name: "never up", upAfter: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Agent{clusterID: "c1", kick: make(chan struct{}, 1)}
			switch {
			case tc.upAfter == 0:
				a.setTunnelUp(true)
			case tc.upAfter > 0:
				time.AfterFunc(tc.upAfter, func() { a.setTunnelUp(true) })
			}
			patience := 5 * time.Second
			if tc.upAfter < 0 {
				patience = 100 * time.Millisecond
			}
			start := time.Now()
			registration.AwaitTunnel(ctx, a.tunnelUp.Load, a.kick, patience)
			waited := time.Since(start)
			if tc.upAfter >= 0 {
				if !a.tunnelUp.Load() || waited >= patience {
					t.Fatalf("returned after %v with the tunnel up %t, want as soon as it came up", waited, a.tunnelUp.Load())
				}
				if len(a.kick) != 0 {
					t.Error("the tunnel's kick is still queued: the heartbeat loop would write the first report again at once")
				}
				return
			}
			if waited < patience {
				t.Errorf("returned after %v without a tunnel, want the whole %v", waited, patience)
			}
			a.setTunnelUp(true)
			if len(a.kick) != 1 {
				t.Error("a tunnel up after the first report queued no heartbeat to say so")
			}
		})
	}
}
