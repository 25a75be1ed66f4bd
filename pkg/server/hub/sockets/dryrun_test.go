package sockets

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/tunnel"
)

// proxyToFakeChild returns a ProxyREST whose cluster c1 is the child
// server, and the request URIs that child got.
func proxyToFakeChild(t *testing.T) (*ProxyREST, *[]string) {
	var got []string
	child := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.RequestURI())
	}))
	t.Cleanup(child.Close)
	tr := NewTransports(tunnel.NewRegistry(), 10)
	tr.transports["c1"] = &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, child.Listener.Addr().String())
	}}
	return NewProxyREST(tr, Clusters{Synced: func() bool { return false }}, nil), &got
}

func TestProxyRenamesDryRunForTheChild(t *testing.T) {
	for _, tc := range []struct {
		name, query, want string
		confirmed         bool
	}{
		{
			name:      "the hub's parameter becomes dryRun",
			query:     "clusternet-dry-run=All&fieldManager=kubectl&force=true",
			want:      "/direct/apis/apps/v1/namespaces/a/deployments/web?dryRun=All&fieldManager=kubectl&force=true",
			confirmed: true,
		},
		{
			name:  "without it the query is forwarded byte for byte",
			query: "labelSelector=app%3Dx&watch=1",
			want:  "/direct/apis/apps/v1/namespaces/a/deployments/web?labelSelector=app%3Dx&watch=1",
		},
		{
			name:  "a value merely mentioning the name is not renamed",
			query: "labelSelector=clusternet-dry-run%3DAll",
			want:  "/direct/apis/apps/v1/namespaces/a/deployments/web?labelSelector=clusternet-dry-run%3DAll",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, got := proxyToFakeChild(t)
			ctx := request.WithUser(context.Background(), &user.DefaultInfo{Name: "alice"})
			responder := &errorResponder{}
			h, err := r.Connect(ctx, "c1", &proxiesv1alpha1.SocketProxyOptions{Path: "direct/apis/apps/v1/namespaces/a/deployments/web"}, responder)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPatch, "/apis/proxies.clusternet.io/v1alpha1/sockets/c1/proxy/direct/apis/apps/v1/namespaces/a/deployments/web?"+tc.query, nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if responder.err != nil {
				t.Fatal(responder.err)
			}
			if got := w.Header().Get(proxiesv1alpha1.DryRunHeader) != ""; got != tc.confirmed {
				t.Errorf("response header %s set: %v, want %v", proxiesv1alpha1.DryRunHeader, got, tc.confirmed)
			}
			if len(*got) != 1 || (*got)[0] != tc.want {
				t.Errorf("the child got %q, want [%q]", *got, tc.want)
			}
		})
	}
}

func TestProxyRefusesABadDryRunQuery(t *testing.T) {
	r, got := proxyToFakeChild(t)
	ctx := request.WithUser(context.Background(), &user.DefaultInfo{Name: "alice"})
	responder := &errorResponder{}
	h, err := r.Connect(ctx, "c1", &proxiesv1alpha1.SocketProxyOptions{Path: "direct/api"}, responder)
	if err != nil {
		t.Fatal(err)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPatch, "/x?clusternet-dry-run=All&x=%zz", nil))
	if !apierrors.IsBadRequest(responder.err) || len(*got) != 0 {
		t.Fatalf("error %v and the child got %q; want 400 Bad Request and nothing sent", responder.err, *got)
	}
}
