package registration

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// answeringParent serves reads of one request as the apiserver does: from
// its cache for resourceVersion "0", where the request is missing for the
// first notFoundFor reads (the cache has not seen it yet), and from etcd
// otherwise, where it is missing if gone.
type answeringParent struct {
	*fake.Clientset
	mu          sync.Mutex
	versions    []string // of every read
	notFoundFor int
	gone        bool
}

func newAnsweringParent(answer *clusterv1beta1.ClusterRegistrationRequest, notFoundFor int, gone bool) *answeringParent {
	p := &answeringParent{Clientset: fake.NewClientset(answer), notFoundFor: notFoundFor, gone: gone}
	p.PrependReactor("get", "clusterregistrationrequests", func(a clienttesting.Action) (bool, runtime.Object, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		rv := a.(clienttesting.GetActionImpl).GetOptions.ResourceVersion
		p.versions = append(p.versions, rv)
		notFound := apierrors.NewNotFound(clusterv1beta1.Resource("clusterregistrationrequests"), answer.Name)
		if rv == "0" && len(p.versions) <= p.notFoundFor || rv == "" && p.gone {
			return true, nil, notFound
		}
		return false, nil, nil
	})
	return p
}

func (p *answeringParent) reads(rv string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.versions {
		if v == rv {
			n++
		}
	}
	return n
}

func request(result clusterv1beta1.ApprovedResult, message string, token []byte) *clusterv1beta1.ClusterRegistrationRequest {
	return &clusterv1beta1.ClusterRegistrationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "clusternet-0c5f"},
		Status:     clusterv1beta1.ClusterRegistrationRequestStatus{Result: &result, ErrorMessage: message, SealedToken: token},
	}
}

func await(p *answeringParent, pending func(*clusterv1beta1.ClusterRegistrationRequest), patience, grace time.Duration) (*clusterv1beta1.ClusterRegistrationRequest, error) {
	return awaitAnswer(context.Background(), p.ClustersV1beta1().ClusterRegistrationRequests(), "clusternet-0c5f", pending, patience, grace)
}

// A waiting agent reads its request from the parent's cache, where a request
// made a moment ago may not be yet: not finding it is waited out, and etcd
// is not read.
func TestAwaitAnswerReadsFromTheCacheAndWaitsOutNotFound(t *testing.T) {
	p := newAnsweringParent(request(clusterv1beta1.RequestApproved, "", []byte("sealed")), 2, false)
	got, err := await(p, nil, 10*time.Second, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Status.SealedToken) != "sealed" {
		t.Errorf("returned %+v, want the approved request", got.Status)
	}
	if n, all := p.reads("0"), len(p.versions); n != 3 || all != 3 {
		t.Errorf("%d reads, %d of them from the cache; want 3 from the cache (two not found, then the answer)", all, n)
	}
}

// Missing from the cache for longer than the grace: one read from etcd
// tells a deleted request (said at once, not after the whole wait) from a
// cache that is behind (the wait goes on, from etcd).
func TestAwaitAnswerAsksEtcdWhenTheCacheKeepsMissingIt(t *testing.T) {
	t.Run("deleted", func(t *testing.T) {
		p := newAnsweringParent(request(clusterv1beta1.RequestPending, "", nil), 1<<30, true)
		start := time.Now()
		_, err := await(p, nil, time.Minute, 300*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "it was deleted in the parent while the agent waited") {
			t.Fatalf("error %v, want one saying the request was deleted", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("said after %s, want soon after the 300ms grace", took)
		}
		if n := p.reads(""); n != 1 {
			t.Errorf("%d reads from etcd, want 1", n)
		}
	})
	t.Run("the cache is behind", func(t *testing.T) {
		p := newAnsweringParent(request(clusterv1beta1.RequestApproved, "", []byte("sealed")), 1<<30, false)
		got, err := await(p, nil, time.Minute, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Status.SealedToken) != "sealed" {
			t.Errorf("returned %+v, want the approved request etcd holds", got.Status)
		}
	})
}

func TestAwaitAnswerEnds(t *testing.T) {
	tests := []struct {
		name        string
		request     *clusterv1beta1.ClusterRegistrationRequest
		wantErr     string
		wantPending bool
	}{
		{name: "denied", request: request(clusterv1beta1.RequestDenied, `spec.clusterName "edge" is taken`, nil),
			wantErr: `the hub denied it: spec.clusterName "edge" is taken`},
		{name: "pending until the deadline, with the hub's word", request: request(clusterv1beta1.RequestPending, "waiting for an admin", nil),
			wantErr: "not answered within 400ms; the hub said: waiting for an admin", wantPending: true},
		{name: "approved but no token yet", request: request(clusterv1beta1.RequestApproved, "", nil),
			wantErr: "not answered within 400ms: is clusternet-hub running in the parent?", wantPending: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newAnsweringParent(tc.request, 0, false)
			pending := 0
			_, err := await(p, func(*clusterv1beta1.ClusterRegistrationRequest) { pending++ }, 400*time.Millisecond, time.Minute)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
			if (pending > 0) != tc.wantPending {
				t.Errorf("pending told %d times, want it told: %t", pending, tc.wantPending)
			}
		})
	}
}

// A read the parent refuses ends the wait with the parent's error, which
// the agent explains (a rejected bootstrap token, say).
func TestAwaitAnswerReturnsARefusedRead(t *testing.T) {
	p := newAnsweringParent(request(clusterv1beta1.RequestPending, "", nil), 0, false)
	p.PrependReactor("get", "clusterregistrationrequests", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewUnauthorized("token expired")
	})
	_, err := await(p, nil, time.Minute, time.Minute)
	if !apierrors.IsUnauthorized(err) {
		t.Fatalf("error %v, want the parent's 401 (wrapped)", err)
	}
}
