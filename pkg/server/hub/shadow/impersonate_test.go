package shadow

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/rest"
)

// seenRequest is what the fake parent saw of one dry run: who sent it and
// whom it asked to act as.
type seenRequest struct {
	Authorization string
	User, UID     string
	Groups        []string
	Extra         http.Header
	DryRun        string
}

// fakeParent is a TLS server standing in for the parent's apiserver: it
// accepts every dry-run create and records its identity headers and how
// many connections it was opened.
type fakeParent struct {
	server *httptest.Server
	conns  atomic.Int32
	mu     sync.Mutex
	seen   []seenRequest
}

func newFakeParent(t *testing.T) *fakeParent {
	t.Helper()
	p := &fakeParent{}
	p.server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		seen := seenRequest{
			Authorization: req.Header.Get("Authorization"),
			User:          req.Header.Get("Impersonate-User"),
			UID:           req.Header.Get("Impersonate-Uid"),
			Groups:        req.Header.Values("Impersonate-Group"),
			Extra:         http.Header{},
			DryRun:        req.URL.Query().Get("dryRun"),
		}
		for k, v := range req.Header {
			if len(k) > len("Impersonate-Extra-") && http.CanonicalHeaderKey(k[:len("Impersonate-Extra-")]) == "Impersonate-Extra-" {
				seen.Extra[k] = v
			}
		}
		p.mu.Lock()
		p.seen = append(p.seen, seen)
		p.mu.Unlock()
		body, _ := io.ReadAll(req.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body)
	}))
	p.server.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			p.conns.Add(1)
		}
	}
	p.server.StartTLS()
	t.Cleanup(p.server.Close)
	return p
}

// hubConfig is the hub's configuration of the fake parent: its own token.
func (p *fakeParent) hubConfig() *rest.Config {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.server.Certificate().Raw})
	return &rest.Config{Host: p.server.URL, BearerToken: "hub-token", TLSClientConfig: rest.TLSClientConfig{CAData: ca}, QPS: -1}
}

// TestDryRunActsAsTheRequestingUser sends dry runs through the hub's real
// client plumbing: the parent must see the hub's credentials acting as
// exactly the user the aggregator handed the hub, over one connection.
func TestDryRunActsAsTheRequestingUser(t *testing.T) {
	parent := newFakeParent(t)
	authors, err := newImpersonatingClients(parent.hubConfig())
	if err != nil {
		t.Fatal(err)
	}
	v := &dryRunValidator{authors: authors, namespace: "clusternet-reserved"}
	configmaps := buildResources(testParent(), nil)["configmaps"]
	for _, tc := range []struct {
		name   string
		author user.Info
		want   seenRequest
	}{
		{"a user with a name only", &user.DefaultInfo{Name: "alice"},
			seenRequest{Authorization: "Bearer hub-token", User: "alice", Extra: http.Header{}, DryRun: "All"}},
		{"groups, uid and extras exactly as given", &user.DefaultInfo{Name: "bob", UID: "b-42",
			Groups: []string{"team-a-editors", "system:authenticated"},
			Extra:  map[string][]string{"scopes": {"view", "edit"}, "example.com/tenant": {"t1"}}},
			seenRequest{Authorization: "Bearer hub-token", User: "bob", UID: "b-42", Groups: []string{"team-a-editors", "system:authenticated"},
				Extra:  http.Header{"Impersonate-Extra-Scopes": {"view", "edit"}, "Impersonate-Extra-Example.com%2ftenant": {"t1"}},
				DryRun: "All"}},
		{"a ServiceAccount token's user", &user.DefaultInfo{Name: "system:serviceaccount:team-a:ci", UID: "sa-uid",
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"},
			Extra:  map[string][]string{"authentication.kubernetes.io/credential-id": {"JTI=abc"}}},
			seenRequest{Authorization: "Bearer hub-token", User: "system:serviceaccount:team-a:ci", UID: "sa-uid",
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"},
				Extra:  http.Header{"Impersonate-Extra-Authentication.kubernetes.io%2fcredential-Id": {"JTI=abc"}}, DryRun: "All"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent.mu.Lock()
			parent.seen = nil
			parent.mu.Unlock()
			u := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "v1", "kind": "ConfigMap",
				"metadata": map[string]interface{}{"name": "c", "namespace": "team-a"}}}
			ctx := request.WithUser(context.Background(), tc.author)
			if err := v.validate(ctx, configmaps, u, ""); err != nil {
				t.Fatalf("validate: %v", err)
			}
			parent.mu.Lock()
			defer parent.mu.Unlock()
			if diff := cmp.Diff([]seenRequest{tc.want}, parent.seen); diff != "" {
				t.Errorf("what the parent saw (-want +got):\n%s", diff)
			}
		})
	}
	if n := parent.conns.Load(); n != 1 {
		t.Errorf("the dry runs of 3 users opened %d connections to the parent, want 1 (one shared transport)", n)
	}
}

func TestImpersonatingClientsRefuse(t *testing.T) {
	parent := newFakeParent(t)
	t.Run("a hub configuration that impersonates", func(t *testing.T) {
		cfg := parent.hubConfig()
		cfg.Impersonate.UserName = "someone"
		if _, err := newImpersonatingClients(cfg); !errors.Is(err, errHubImpersonates) {
			t.Errorf("newImpersonatingClients = %v, want errHubImpersonates", err)
		}
	})
	authors, err := newImpersonatingClients(parent.hubConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		author user.Info
	}{
		{"no user", nil},
		{"a user without a name", &user.DefaultInfo{Groups: []string{"system:masters"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := authors.forUser(tc.author); err == nil {
				t.Error("forUser gave a client for no author: it would act as the hub")
			}
		})
	}
	parent.mu.Lock()
	defer parent.mu.Unlock()
	if len(parent.seen) != 0 {
		t.Errorf("the parent saw %d requests", len(parent.seen))
	}
}

// BenchmarkForUser measures building a client per request.
func BenchmarkForUser(b *testing.B) {
	authors, err := newImpersonatingClients(&rest.Config{Host: "https://127.0.0.1:1", QPS: -1})
	if err != nil {
		b.Fatal(err)
	}
	u := &user.DefaultInfo{Name: "alice", Groups: []string{"g"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := authors.forUser(u); err != nil {
			b.Fatal(err)
		}
	}
}
