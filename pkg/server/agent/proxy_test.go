package agent

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/rest"

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
