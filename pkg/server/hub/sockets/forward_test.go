package sockets

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/server/hub/peers"
	"github.com/clusternet/clusternet/pkg/tunnel"
)

// fakeForwarder finds tunnels at addr (or nowhere) and records forwards.
type fakeForwarder struct {
	addr      string
	err       error
	forwarded []string
}

func (f *fakeForwarder) Locate(context.Context, string) (string, error) { return f.addr, f.err }

func (f *fakeForwarder) Forward(w http.ResponseWriter, _ *http.Request, addr, id, path string, caller user.Info, _ proxy.ErrorResponder) {
	f.forwarded = append(f.forwarded, addr+" "+id+" "+path+" as "+caller.GetName())
	w.WriteHeader(http.StatusOK)
}

func TestProxyForwardsToTheHolder(t *testing.T) {
	ctx := request.WithUser(context.Background(), &user.DefaultInfo{Name: "alice", Groups: []string{"dev"}})
	for _, tc := range []struct {
		name          string
		forwarder     fakeForwarder
		forwardedFrom string // the request came from another replica
		wantForwarded []string
		wantErr       func(error) bool
	}{
		{name: "tunnel at another replica: forwarded as the caller", forwarder: fakeForwarder{addr: "10.0.0.2:6443"},
			wantForwarded: []string{"10.0.0.2:6443 c1 direct/api as alice"}},
		{name: "no replica holds it: 503 naming the cluster", forwarder: fakeForwarder{err: errors.New("cluster c1: no tunnel in any hub replica")},
			wantErr: apierrors.IsServiceUnavailable},
		{name: "a forwarded request is never forwarded again", forwarder: fakeForwarder{addr: "10.0.0.3:6443"}, forwardedFrom: "hub-a",
			// served here: with no tunnel, the local dial fails after its wait
			wantErr: func(err error) bool { return err != nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTransports(tunnel.NewRegistry(), 4)
			f := tc.forwarder
			r := NewProxyREST(tr, Clusters{Synced: func() bool { return false }}, nil).ForwardTo(&f)
			responder := &errorResponder{}
			h, err := r.Connect(ctx, "c1", &proxiesv1alpha1.SocketProxyOptions{Path: "direct/api"}, responder)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.forwardedFrom != "" {
				req.Header.Set(peers.ForwardedHeader, tc.forwardedFrom)
				ctx, cancel := context.WithCancel(req.Context())
				cancel() // do not wait dialWait for a tunnel that never comes
				req = req.WithContext(ctx)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if diff := cmp.Diff(tc.wantForwarded, f.forwarded); diff != "" {
				t.Errorf("forwarded (-want +got):\n%s", diff)
			}
			if tc.wantErr == nil && responder.err != nil || tc.wantErr != nil && !tc.wantErr(responder.err) {
				t.Errorf("error %v", responder.err)
			}
		})
	}
}
