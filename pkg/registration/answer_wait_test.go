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

// answeringParent serves reads of one request: not found for the first
// notFoundFor reads (the cache has not seen it yet), then as answer has it.
type answeringParent struct {
	*fake.Clientset
	mu          sync.Mutex
	reads       int
	versions    []string
	notFoundFor int
}

func newAnsweringParent(answer *clusterv1beta1.ClusterRegistrationRequest, notFoundFor int) *answeringParent {
	p := &answeringParent{Clientset: fake.NewClientset(answer), notFoundFor: notFoundFor}
	p.PrependReactor("get", "clusterregistrationrequests", func(a clienttesting.Action) (bool, runtime.Object, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.reads++
		p.versions = append(p.versions, a.(clienttesting.GetActionImpl).GetOptions.ResourceVersion)
		if p.reads <= p.notFoundFor {
			return true, nil, apierrors.NewNotFound(clusterv1beta1.Resource("clusterregistrationrequests"), answer.Name)
		}
		return false, nil, nil
	})
	return p
}

func request(result clusterv1beta1.ApprovedResult, message string, token []byte) *clusterv1beta1.ClusterRegistrationRequest {
	return &clusterv1beta1.ClusterRegistrationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "clusternet-0c5f"},
		Status:     clusterv1beta1.ClusterRegistrationRequestStatus{Result: &result, ErrorMessage: message, SealedToken: token},
	}
}

// A waiting agent reads its request from the parent's cache, where a request
// made a moment ago may not be yet: not finding it is waited out.
func TestAwaitAnswerReadsFromTheCacheAndWaitsOutNotFound(t *testing.T) {
	p := newAnsweringParent(request(clusterv1beta1.RequestApproved, "", []byte("sealed")), 2)
	got, err := awaitAnswer(context.Background(), p.ClustersV1beta1().ClusterRegistrationRequests(), "clusternet-0c5f", nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Status.SealedToken) != "sealed" {
		t.Errorf("returned %+v, want the approved request", got.Status)
	}
	if p.reads != 3 {
		t.Errorf("%d reads, want 3 (two not found, then the answer)", p.reads)
	}
	for i, rv := range p.versions {
		if rv != "0" {
			t.Errorf("read %d with resourceVersion %q, want \"0\" (the apiserver's cache, not etcd)", i, rv)
		}
	}
}

func TestAwaitAnswerEnds(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		request     *clusterv1beta1.ClusterRegistrationRequest
		notFoundFor int
		wantErr     string
		wantPending bool
	}{
		{name: "denied", request: request(clusterv1beta1.RequestDenied, `spec.clusterName "edge" is taken`, nil),
			wantErr: `the hub denied it: spec.clusterName "edge" is taken`},
		{name: "pending until the deadline", request: request(clusterv1beta1.RequestPending, "waiting for an admin", nil),
			wantErr: "not answered within 400ms: is clusternet-hub running in the parent?", wantPending: true},
		{name: "approved but no token yet", request: request(clusterv1beta1.RequestApproved, "", nil),
			wantErr: "not answered within 400ms", wantPending: true},
		{name: "never in the parent", request: request(clusterv1beta1.RequestPending, "", nil), notFoundFor: 1 << 30,
			wantErr: "it is not in the parent (deleted since it was made?)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newAnsweringParent(tc.request, tc.notFoundFor)
			pending := 0
			_, err := awaitAnswer(ctx, p.ClustersV1beta1().ClusterRegistrationRequests(), "clusternet-0c5f",
				func(*clusterv1beta1.ClusterRegistrationRequest) { pending++ }, 400*time.Millisecond)
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
	p := newAnsweringParent(request(clusterv1beta1.RequestPending, "", nil), 0)
	p.PrependReactor("get", "clusterregistrationrequests", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewUnauthorized("token expired")
	})
	_, err := awaitAnswer(context.Background(), p.ClustersV1beta1().ClusterRegistrationRequests(), "clusternet-0c5f", nil, time.Minute)
	if !apierrors.IsUnauthorized(err) {
		t.Fatalf("error %v, want the parent's 401 (wrapped)", err)
	}
}
