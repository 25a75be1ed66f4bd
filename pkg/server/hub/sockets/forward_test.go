package sockets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/server/hub/certs"
	"github.com/clusternet/clusternet/pkg/server/hub/peers"
	"github.com/clusternet/clusternet/pkg/tunnel"
)

// fakeForwarder finds tunnels at addr (or nowhere) and records forwards.
// Holders in dead cannot be dialed: Locate skips them once tried, as
// peers.Leases does.
type fakeForwarder struct {
	addr      string
	err       error
	dead      map[string]bool
	next      string // where the tunnel went once a dead holder was tried
	tried     bool
	forwarded []string
}

func (f *fakeForwarder) Locate(context.Context, string) (string, error) {
	if f.tried && f.dead[f.addr] {
		if f.next == "" && f.err == nil {
			return "", errors.New("cluster c1: no tunnel in any hub replica")
		}
		return f.next, f.err
	}
	return f.addr, f.err
}

func (f *fakeForwarder) Forward(w http.ResponseWriter, _ *http.Request, addr, id, path string, caller user.Info, _ proxy.ErrorResponder) error {
	f.forwarded = append(f.forwarded, addr+" "+id+" "+path+" as "+caller.GetName())
	if f.dead[addr] {
		f.tried = true
		return fmt.Errorf("%w (%s): connection refused", peers.ErrPeerUnreachable, addr)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func TestProxyForwardsToTheHolder(t *testing.T) {
	ctx := request.WithUser(context.Background(), &user.DefaultInfo{Name: "alice", Groups: []string{"dev"}})
	for _, tc := range []struct {
		name          string
		forwarder     fakeForwarder
		forwardedFrom string // the request came from another replica
		body          string
		wantForwarded []string
		wantErr       func(error) bool
	}{
		{name: "tunnel at another replica: forwarded as the caller", forwarder: fakeForwarder{addr: "10.0.0.2:6443"},
			wantForwarded: []string{"10.0.0.2:6443 c1 direct/api as alice"}},
		{name: "no replica holds it: 503 naming the cluster", forwarder: fakeForwarder{err: errors.New("cluster c1: no tunnel in any hub replica")},
			wantErr: apierrors.IsServiceUnavailable},
		{name: "holder died and the tunnel moved to another replica: forwarded there",
			forwarder:     fakeForwarder{addr: "10.0.0.2:6443", dead: map[string]bool{"10.0.0.2:6443": true}, next: "10.0.0.3:6443"},
			wantForwarded: []string{"10.0.0.2:6443 c1 direct/api as alice", "10.0.0.3:6443 c1 direct/api as alice"}},
		{name: "holder died and no replica took the tunnel over: 503 to retry",
			forwarder:     fakeForwarder{addr: "10.0.0.2:6443", dead: map[string]bool{"10.0.0.2:6443": true}},
			wantForwarded: []string{"10.0.0.2:6443 c1 direct/api as alice"}, wantErr: isPeerUnreachable},
		{name: "holder died and the tunnel moved, but the request had a body: 503 to retry",
			forwarder:     fakeForwarder{addr: "10.0.0.2:6443", dead: map[string]bool{"10.0.0.2:6443": true}, next: "10.0.0.3:6443"},
			body:          "{}",
			wantForwarded: []string{"10.0.0.2:6443 c1 direct/api as alice"}, wantErr: isPeerUnreachable},
		{name: "every holder it finds is dead: tried a bounded number of times",
			forwarder: fakeForwarder{addr: "10.0.0.2:6443", dead: map[string]bool{"10.0.0.2:6443": true, "10.0.0.3:6443": true, "10.0.0.4:6443": true},
				next: "10.0.0.3:6443"},
			wantForwarded: []string{"10.0.0.2:6443 c1 direct/api as alice", "10.0.0.3:6443 c1 direct/api as alice"}, wantErr: isPeerUnreachable},
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
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := httptest.NewRequest(http.MethodGet, "/", body)
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

const unreachableMessage = "cluster c1: the hub replica holding its tunnel is unreachable (it may just have stopped) " +
	"and the tunnel has not come back to a live replica yet: retry in a moment, its agent reconnects within seconds"

// isPeerUnreachable is the answer for a holder that cannot be dialed: 503,
// retry in a second, naming the cluster but not the hub-internal address.
func isPeerUnreachable(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	s := status.Status()
	return s.Code == http.StatusServiceUnavailable && s.Reason == metav1.StatusReasonServiceUnavailable &&
		s.Message == unreachableMessage && s.Details != nil && s.Details.RetryAfterSeconds == 1
}

// TestForwardToADeadReplica forwards, through the real peers.Forwarder, to
// the address a Lease names where nothing listens any more (a replica just
// SIGKILLed): the caller gets a 503 Status to retry, not the dial error.
func TestForwardToADeadReplica(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	kube := fake.NewClientset(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "clusternet-system", Name: peers.LeasePrefix + "c1", Labels: map[string]string{peers.LabelSocket: "c1"},
			Annotations: map[string]string{peers.AnnotationAddress: dead}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("hub-b"), LeaseDurationSeconds: ptr.To(int32(15)),
			AcquireTime: &metav1.MicroTime{Time: now}, RenewTime: &metav1.MicroTime{Time: now}},
	})
	tunnels := tunnel.NewRegistry()
	leases := peers.NewLeases(peers.Options{Kube: kube, Namespace: "clusternet-system", Identity: "hub-a", Address: "127.0.0.1:1"}, tunnels)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { leases.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	ca, err := certs.NewCA("test-peer-ca", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	peerTLS, err := peers.NewTLS(ca)
	if err != nil {
		t.Fatal(err)
	}
	fwd := peers.NewForwarder(leases, peerTLS)
	defer fwd.CloseIdle()

	r := NewProxyREST(NewTransports(tunnels, 4), Clusters{Synced: func() bool { return false }}, nil).ForwardTo(fwd)
	responder := &errorResponder{}
	h, err := r.Connect(request.WithUser(context.Background(), &user.DefaultInfo{Name: "alice"}), "c1",
		&proxiesv1alpha1.SocketProxyOptions{Path: "direct/api"}, responder)
	if err != nil {
		t.Fatal(err)
	}
	// No replica takes the tunnel over: end the wait for one early.
	reqCtx, reqCancel := context.WithTimeout(context.Background(), time.Second)
	defer reqCancel()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(reqCtx))
	if !isPeerUnreachable(responder.err) {
		t.Fatalf("error %#v\nwant a 503 Status with Retry-After 1 and message %q", responder.err, unreachableMessage)
	}
	if w.Body.Len() != 0 {
		t.Errorf("something was written besides the Status: %q", w.Body.String())
	}
}
