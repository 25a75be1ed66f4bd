package sockets

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/tunnel"
	"github.com/clusternet/clusternet/pkg/tunnel/wire"
)

// atAgent is what the agent's end of a tunnel received.
type atAgent struct {
	path, query, host string
	id                wire.Identity
}

// FuzzProxyPath sends a request for sockets/c1/proxy/<path> through the
// hub's proxy and a real tunnel (yamux over net.Pipe) to a server standing
// for the agent. Invariants: the hub refuses (400) exactly the paths
// wire.ParseTarget refuses; for the others the agent reads the same target
// the hub accepted, the caller's query and nothing else as the query, the
// cluster's own host, and the identity the hub set, not one the caller sent.
func FuzzProxyPath(f *testing.F) {
	for _, p := range []string{
		"direct/api", "direct/api/v1/namespaces/default/pods", "direct", "https/10.0.0.1:6443/healthz",
		"http/kubernetes.default.svc/readyz", "https/[::1]:443/x", "ftp/x", "https/", "",
		"direct/../../etc/passwd", "direct/a%2Fb", "direct/a?b=c", "direct/a#frag", "https/user@evil.com/api",
		"direct/%", "direct/ spaces /", "direct//double", "direct/\x00", "/direct/api",
	} {
		f.Add(p)
	}

	hubEnd, agentEnd := net.Pipe()
	hubSession, err := tunnel.Server(hubEnd)
	if err != nil {
		f.Fatal(err)
	}
	agentSession, err := tunnel.Client(agentEnd)
	if err != nil {
		f.Fatal(err)
	}
	received := make(chan atAgent, 1)
	agent := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received <- atAgent{path: r.URL.Path, query: r.URL.RawQuery, host: r.Host, id: wire.TakeIdentity(r.Header)}
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = agent.Serve(agentSession) }()
	f.Cleanup(func() { _ = agent.Close(); _ = hubSession.Close(); _ = agentSession.Close() })
	registry := tunnel.NewRegistry()
	registry.Add("c1", hubSession)
	transports := NewTransports(registry, DefaultMaxRequestsPerCluster)
	f.Cleanup(transports.CloseIdle)
	proxy := NewProxyREST(transports, Clusters{Synced: func() bool { return false }}, nil)
	ctx := request.WithUser(context.Background(), &user.DefaultInfo{Name: "alice", Groups: []string{"dev"}})

	f.Fuzz(func(t *testing.T, path string) {
		want, parseErr := wire.ParseTarget(path)
		responder := &errorResponder{}
		h, err := proxy.Connect(ctx, "c1", &proxiesv1alpha1.SocketProxyOptions{Path: path}, responder)
		if parseErr != nil {
			if !apierrors.IsBadRequest(err) {
				t.Fatalf("Connect(%q) = %v, want 400 Bad Request: %v", path, err, parseErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("Connect(%q): %v", path, err)
		}
		req := httptest.NewRequest(http.MethodGet, "/apis/proxies.clusternet.io/v1alpha1/sockets/c1/proxy/x?watch=true", nil)
		req.Header.Set("Impersonate-User", "system:admin")
		req.Header.Set("X-Clusternet-Agent", "self")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if responder.err != nil || rec.Code != http.StatusOK {
			t.Fatalf("proxying %q: %d %s (%v)", path, rec.Code, rec.Body, responder.err)
		}
		var got atAgent
		select {
		case got = <-received:
		default:
			t.Fatalf("proxying %q answered 200 without reaching the agent", path)
		}
		target, err := wire.ParseTarget(got.path)
		if err != nil {
			t.Fatalf("the hub accepted %q but the agent reads path %q and refuses it: %v", path, got.path, err)
		}
		if diff := cmp.Diff(want, target); diff != "" {
			t.Fatalf("hub and agent read %q as different targets (-hub +agent):\n%s", path, diff)
		}
		if got.query != "watch=true" {
			t.Fatalf("path %q reached the agent with query %q, want the caller's watch=true", path, got.query)
		}
		if got.host != "cluster-c1" {
			t.Fatalf("path %q reached the agent for host %q", path, got.host)
		}
		if wantID := (wire.Identity{User: "alice", Groups: []string{"dev"}}); !cmp.Equal(wantID, got.id) {
			t.Fatalf("the agent read identity %+v, want %+v", got.id, wantID)
		}
	})
}
