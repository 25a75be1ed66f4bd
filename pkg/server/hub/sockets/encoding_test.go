package sockets

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/tunnel"
	"github.com/clusternet/clusternet/pkg/tunnel/tunneltest"
)

// TestProxyForwardsTheCallersEncoding: through the hub's proxy and a real
// tunnel, the agent gets exactly the Accept-Encoding the caller sent, and
// identity when it sent none (no transport on the way may then ask for gzip
// nobody asked for, issue 16); a gzipped answer reaches the caller as the
// agent sent it, neither decompressed nor compressed again.
func TestProxyForwardsTheCallersEncoding(t *testing.T) {
	payload := strings.Repeat("abcdefghij", 1000)
	compressed := tunneltest.Gzipped(payload)
	received := make(chan string, 1)
	hubSession, agentSession := tunneltest.Pipe(t)
	agent := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received <- r.Header.Get("Accept-Encoding")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(compressed)
			return
		}
		_, _ = io.WriteString(w, payload)
	})}
	go func() { _ = agent.Serve(agentSession) }()
	t.Cleanup(func() { _ = agent.Close() })
	registry := tunnel.NewRegistry()
	registry.Add("c1", hubSession)
	transports := NewTransports(registry, DefaultMaxRequestsPerCluster)
	t.Cleanup(transports.CloseIdle)
	proxy := NewProxyREST(transports, Clusters{Synced: func() bool { return false }}, nil)
	ctx := request.WithUser(context.Background(), &user.DefaultInfo{Name: "alice", Groups: []string{"dev"}})

	for _, tc := range []struct {
		name, sent, wantReceived, wantContentEncoding string
		wantBody                                      []byte
	}{
		{name: "none", wantReceived: "identity", wantBody: []byte(payload)},
		{name: "identity", sent: "identity", wantReceived: "identity", wantBody: []byte(payload)},
		{name: "gzip", sent: "gzip", wantReceived: "gzip", wantContentEncoding: "gzip", wantBody: compressed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			responder := &errorResponder{}
			h, err := proxy.Connect(ctx, "c1", &proxiesv1alpha1.SocketProxyOptions{Path: "direct/api"}, responder)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/apis/proxies.clusternet.io/v1alpha1/sockets/c1/proxy/direct/api", nil)
			if tc.sent != "" {
				req.Header.Set("Accept-Encoding", tc.sent)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if responder.err != nil || rec.Code != http.StatusOK {
				t.Fatalf("%d %s (%v), want 200", rec.Code, rec.Body, responder.err)
			}
			if got := <-received; got != tc.wantReceived {
				t.Errorf("Accept-Encoding at the agent %q, want %q", got, tc.wantReceived)
			}
			if ce := rec.Header().Get("Content-Encoding"); ce != tc.wantContentEncoding {
				t.Errorf("Content-Encoding to the caller %q, want %q", ce, tc.wantContentEncoding)
			}
			if !bytes.Equal(rec.Body.Bytes(), tc.wantBody) {
				t.Errorf("the body reached the caller changed: %d bytes, want the agent's %d", rec.Body.Len(), len(tc.wantBody))
			}
		})
	}
}
