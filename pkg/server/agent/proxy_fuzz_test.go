package agent

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/clusternet/clusternet/pkg/tunnel/wire"
)

// hostRecorder remembers every host the agent sent a request to or dialed.
type hostRecorder struct {
	mu    sync.Mutex
	hosts []string
}

func (r *hostRecorder) add(host string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts = append(r.hosts, host)
}

func (r *hostRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.hosts
	r.hosts = nil
	return out
}

type recordingRoundTripper struct {
	next http.RoundTripper
	rec  *hostRecorder
}

func (t recordingRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	t.rec.add(req.URL.Host)
	return t.next.RoundTrip(req)
}

// FuzzChildProxyAllowedHosts serves any proxied path, as any caller the hub
// may send, with the agent's real proxy towards a real child apiserver and
// one more allowed host. Invariants: the agent sends requests to, dials, and
// reaches only its own apiserver and its allowed hosts, whatever the path
// holds (.., encoded slashes, @, userinfo, ports, query or fragment
// characters); a path it refuses reaches nobody.
func FuzzChildProxyAllowedHosts(f *testing.F) {
	for _, p := range []string{
		"direct/api", "https/%s/api", "http/%s/api", "https/%s:443/api", "https/user@%s/api", "https/%s@evil.invalid/api",
		"https/evil.invalid/api", "http/evil.invalid%2F@%s/", "https/%s?/x", "https/%s#/x", "direct/../../https/evil.invalid/",
		"https/%s%2F..%2F/x", "https/[::1]:1/x", "https//x", "https/%s/../../evil.invalid/",
	} {
		for who := range uint8(4) {
			f.Add(p, who)
		}
	}
	rec := &hostRecorder{}
	reached := func(w http.ResponseWriter, r *http.Request) {
		rec.add("reached " + r.Host)
		w.WriteHeader(http.StatusOK)
	}
	child := httptest.NewTLSServer(http.HandlerFunc(reached))
	f.Cleanup(child.Close)
	other := httptest.NewServer(http.HandlerFunc(reached))
	f.Cleanup(other.Close)
	childURL, _ := url.Parse(child.URL)
	otherURL, _ := url.Parse(other.URL)
	allowed := []string{childURL.Host, otherURL.Host}

	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: child.Certificate().Raw})
	p, err := newChildProxy(&rest.Config{Host: child.URL, BearerToken: "agent-token", TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}},
		[]string{otherURL.Host}, true)
	if err != nil {
		f.Fatal(err)
	}
	p.own = recordingRoundTripper{next: p.own, rec: rec}
	dial := p.anon.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	p.anon.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		rec.add(addr)
		return dial(ctx, network, addr)
	}

	f.Fuzz(func(t *testing.T, path string, who uint8) {
		// %s in a seed stands for the other allowed host.
		path = strings.ReplaceAll(path, "%s", otherURL.Host)
		u := &url.URL{Scheme: "http", Host: "cluster-x", Path: "/" + path}
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			return
		}
		switch who % 4 {
		case 0:
			wire.SetIdentity(req.Header, wire.Identity{User: "alice", Groups: []string{"dev"}})
		case 1:
			wire.SetIdentity(req.Header, wire.Identity{Token: "child-token"})
		case 2:
			wire.SetIdentity(req.Header, wire.Identity{Agent: true})
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req)
		hosts := rec.take()
		if _, err := wire.ParseTarget(req.URL.Path); err != nil && len(hosts) > 0 {
			t.Fatalf("path %q, which the agent refuses, reached %v", path, hosts)
		}
		for _, h := range hosts {
			h = strings.TrimPrefix(h, "reached ")
			if !slices.Contains(allowed, h) {
				t.Fatalf("path %q (caller %d) made the agent reach %q, not one of %v (answer %d %s)", path, who%4, h, allowed, w.Code, w.Body)
			}
		}
	})
}
