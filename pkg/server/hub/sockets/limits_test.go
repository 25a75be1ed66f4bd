package sockets

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"

	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/tunnel"
)

func TestAcquireBoundsRequestsPerCluster(t *testing.T) {
	tr := NewTransports(tunnel.NewRegistry(), 2)
	r1, ok1 := tr.Acquire("a")
	r2, ok2 := tr.Acquire("a")
	_, ok3 := tr.Acquire("a")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("slots for a: %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := tr.Acquire("b"); !ok {
		t.Error("cluster a's requests took cluster b's slot")
	}
	r1()
	r1() // releasing twice gives back one slot, not two
	if _, ok := tr.Acquire("a"); !ok {
		t.Error("a released slot was not given back")
	}
	if _, ok := tr.Acquire("a"); ok {
		t.Error("a double release gave back two slots")
	}
	r2()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if n := tr.inFlight["a"]; n != 1 {
		t.Errorf("a has %d in flight, want 1", n)
	}
}

type errorResponder struct{ err error }

func (e *errorResponder) Object(int, runtime.Object) {}
func (e *errorResponder) Error(err error)            { e.err = err }

func TestProxyRefusesBeyondTheBound(t *testing.T) {
	tr := NewTransports(tunnel.NewRegistry(), 1)
	r := NewProxyREST(tr, Clusters{Synced: func() bool { return false }}, nil)
	ctx := request.WithUser(context.Background(), &user.DefaultInfo{Name: "alice", Groups: []string{"dev"}})
	release, _ := tr.Acquire("c1") // a watch holds the only slot
	defer release()
	responder := &errorResponder{}
	h, err := r.Connect(ctx, "c1", &proxiesv1alpha1.SocketProxyOptions{Path: "direct/api"}, responder)
	if err != nil {
		t.Fatal(err)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if !apierrors.IsTooManyRequests(responder.err) {
		t.Fatalf("error %v, want 429 Too Many Requests", responder.err)
	}
	want := "cluster c1 already has 1 requests in flight through its tunnel, the most this hub allows (--max-requests-per-cluster): retry later, or end idle watches and exec sessions"
	if got := responder.err.Error(); got != want {
		t.Errorf("error %q\nwant %q", got, want)
	}
}
