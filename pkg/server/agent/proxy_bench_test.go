package agent

import (
	"context"
	"encoding/pem"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/yamux"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/rest"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/server/hub/sockets"
	"github.com/clusternet/clusternet/pkg/tunnel"
	"github.com/clusternet/clusternet/pkg/tunnel/tunneltest"
)

// BenchmarkProxyPath sends a 10 MB LIST-like answer of random letters from a
// TLS child through the agent's proxy, a tunnel over a TLS websocket and the
// hub's proxy, all in this process: run with -cpuprofile to see where our
// part of the proxy's cost goes (the parent apiserver is left out).
func BenchmarkProxyPath(b *testing.B) {
	const size = 10 << 20
	rng := rand.New(rand.NewPCG(1, 2))
	body := make([]byte, size)
	for i := range body {
		body[i] = 'a' + byte(rng.IntN(26))
	}
	client, url := proxyPath(b, body)
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		if n := getAll(b, client, url); n != size {
			b.Fatalf("read %d bytes, want %d", n, size)
		}
	}
}

// BenchmarkProxySmallGet: 100 concurrent small GETs through the same path.
func BenchmarkProxySmallGet(b *testing.B) {
	body := []byte(`{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"default"}}`)
	client, url := proxyPath(b, body)
	b.SetParallelism(50) // 2 CPUs: 100 goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if n := getAll(b, client, url); n != int64(len(body)) {
				b.Errorf("read %d bytes, want %d", n, len(body))
				return
			}
		}
	})
}

func getAll(b *testing.B, client *http.Client, url string) int64 {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return -1
	}
	n, err := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		b.Error(err)
	}
	return n
}

// proxyPath serves body from a TLS child through the agent's proxy, a tunnel
// and the hub's proxy, and returns a client and the URL to GET it.
func proxyPath(b *testing.B, body []byte) (*http.Client, string) {
	child := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		// Chunked, as an apiserver streams a list.
		for p := body; len(p) > 0; p = p[min(len(p), 32<<10):] {
			_, _ = w.Write(p[:min(len(p), 32<<10)])
		}
	}))
	child.EnableHTTP2 = true
	child.StartTLS()
	b.Cleanup(child.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: child.Certificate().Raw})
	p, err := newChildProxy(&rest.Config{Host: child.URL, BearerToken: "agent-token", TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}}, nil, true)
	if err != nil {
		b.Fatal(err)
	}

	// The tunnel: a websocket over TLS, as the agent opens it.
	registry := tunnel.NewRegistry()
	up := make(chan struct{})
	wsServer := httptest.NewTLSServer(tunneltest.HubHandler(func(s *yamux.Session) {
		registry.Add("c1", s)
		close(up)
	}))
	b.Cleanup(wsServer.Close)
	dialer := tunnel.Dialer(wsServer.Client().Transport.(*http.Transport).TLSClientConfig)
	ws, _, err := dialer.Dial("wss"+strings.TrimPrefix(wsServer.URL, "https"), nil)
	if err != nil {
		b.Fatal(err)
	}
	agentSession, err := tunnel.Client(tunnel.NewConn(ws))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = agentSession.Close() })
	go func() { _ = (&http.Server{Handler: p}).Serve(agentSession) }()
	<-up

	transports := sockets.NewTransports(registry, sockets.DefaultMaxRequestsPerCluster)
	b.Cleanup(transports.CloseIdle)
	proxy := sockets.NewProxyREST(transports, sockets.Clusters{Synced: func() bool { return false }}, nil)
	hub := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := request.WithUser(r.Context(), &user.DefaultInfo{Name: "alice"})
		h, err := proxy.Connect(ctx, "c1", &proxiesv1alpha1.SocketProxyOptions{Path: "direct/api/v1/configmaps"}, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	hub.EnableHTTP2 = true
	hub.StartTLS()
	b.Cleanup(hub.Close)
	client := hub.Client()
	client.Transport.(*http.Transport).DisableCompression = true
	return client, hub.URL + "/"
}
