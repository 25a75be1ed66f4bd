package agent

import (
	"bytes"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/rest"

	"github.com/clusternet/clusternet/pkg/tunnel/tunneltest"
	"github.com/clusternet/clusternet/pkg/tunnel/wire"
)

func TestChildProxyImpersonatesWhatTheHubSent(t *testing.T) {
	var got http.Header
	child := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.WriteHeader(http.StatusOK)
	}))
	defer child.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: child.Certificate().Raw})
	p, err := newChildProxy(&rest.Config{Host: child.URL, BearerToken: "agent-token", TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		id         wire.Identity
		wantStatus int
		wantBody   string
		wantHeader http.Header // identity headers the child receives
	}{{
		name:       "a parent user, as the hub mapped it",
		id:         wire.Identity{User: "alice", Groups: []string{"dev", "clusternet:cluster-admins"}},
		wantStatus: http.StatusOK,
		wantHeader: http.Header{"Authorization": {"Bearer agent-token"}, "Impersonate-User": {"alice"}, "Impersonate-Group": {"dev", "clusternet:cluster-admins"}},
	}, {
		name:       "system:masters is refused even if a hub sends it",
		id:         wire.Identity{User: "kubernetes-admin", Groups: []string{"dev", "system:masters"}},
		wantStatus: http.StatusForbidden,
		wantBody:   `does not impersonate group "system:masters" for parent user "kubernetes-admin"`,
	}, {
		name:       "no identity at all",
		id:         wire.Identity{},
		wantStatus: http.StatusForbidden,
		wantBody:   "the hub sent no caller identity",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			req := httptest.NewRequest(http.MethodGet, "http://cluster-x/direct/api", nil)
			wire.SetIdentity(req.Header, tc.id)
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Fatalf("status %d %q, want %d containing %q", rec.Code, rec.Body.String(), tc.wantStatus, tc.wantBody)
			}
			if tc.wantHeader == nil {
				if got != nil {
					t.Errorf("a refused request reached the child with %v", got)
				}
				return
			}
			identity := http.Header{}
			for k, v := range got {
				if k == "Authorization" || strings.HasPrefix(k, "Impersonate-") {
					identity[k] = v
				}
			}
			if diff := cmp.Diff(tc.wantHeader, identity); diff != "" {
				t.Errorf("identity headers at the child (-want +got):\n%s", diff)
			}
		})
	}
}

// TestChildProxyForwardsTheCallersEncoding: the target gets exactly the
// Accept-Encoding the hub sent, identity when it sent none (so no transport
// on the way asks for gzip nobody asked for, issue 16), and a gzipped answer
// reaches the hub as the target sent it.
func TestChildProxyForwardsTheCallersEncoding(t *testing.T) {
	payload := strings.Repeat("abcdefghij", 1000)
	compressed := tunneltest.Gzipped(payload)
	var mu sync.Mutex
	var received []string
	target := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received = append(received, r.Header.Get("Accept-Encoding"))
		mu.Unlock()
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(compressed)
			return
		}
		_, _ = io.WriteString(w, payload)
	})
	child := httptest.NewTLSServer(target)
	defer child.Close()
	plain := httptest.NewServer(target)
	defer plain.Close()
	plainHost := strings.TrimPrefix(plain.URL, "http://")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: child.Certificate().Raw})
	p, err := newChildProxy(&rest.Config{Host: child.URL, BearerToken: "agent-token", TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}}, []string{plainHost}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/direct/api", "/http/" + plainHost + "/x"} {
		for _, tc := range []struct {
			sent, wantReceived, wantContentEncoding string
			wantBody                                []byte
		}{
			{sent: "", wantReceived: "identity", wantBody: []byte(payload)},
			{sent: "identity", wantReceived: "identity", wantBody: []byte(payload)},
			{sent: "gzip", wantReceived: "gzip", wantContentEncoding: "gzip", wantBody: compressed},
		} {
			t.Run(path+" sent "+tc.sent, func(t *testing.T) {
				mu.Lock()
				received = nil
				mu.Unlock()
				req := httptest.NewRequest(http.MethodGet, "http://cluster-x"+path, nil)
				if tc.sent != "" {
					req.Header.Set("Accept-Encoding", tc.sent)
				}
				wire.SetIdentity(req.Header, wire.Identity{User: "alice"})
				rec := httptest.NewRecorder()
				p.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d %q, want 200", rec.Code, rec.Body)
				}
				mu.Lock()
				got := slices.Clone(received)
				mu.Unlock()
				if diff := cmp.Diff([]string{tc.wantReceived}, got); diff != "" {
					t.Errorf("Accept-Encoding at the target (-want +got):\n%s", diff)
				}
				if ce := rec.Header().Get("Content-Encoding"); ce != tc.wantContentEncoding {
					t.Errorf("Content-Encoding to the hub %q, want %q", ce, tc.wantContentEncoding)
				}
				if !bytes.Equal(rec.Body.Bytes(), tc.wantBody) {
					t.Errorf("the body reached the hub changed: %d bytes, want the target's %d", rec.Body.Len(), len(tc.wantBody))
				}
			})
		}
	}
}
