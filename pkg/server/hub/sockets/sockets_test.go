package sockets

import (
	"context"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/tools/cache"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/tunnel"
)

// A tunnel is the agent's of the namespace the hub admitted its cluster
// into, whatever ManagedCluster another namespace holds.
func TestSocketBoundToTheRegistration(t *testing.T) {
	const id = "dc91021d-2361-4f6d-a404-7c33b9e01118"
	informer := cache.NewSharedIndexInformer(&cache.ListWatch{}, &clusterv1beta1.ManagedCluster{}, 0, cache.Indexers{})
	if err := AddClusterIDIndex(informer); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"clusternet-real", "clusternet-forged"} {
		if err := informer.GetIndexer().Add(&clusterv1beta1.ManagedCluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "c"}, Spec: clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(id)},
		}); err != nil {
			t.Fatal(err)
		}
	}
	crrs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	approved := clusterv1beta1.RequestApproved
	if err := crrs.Add(&clusterv1beta1.ClusterRegistrationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + id},
		Spec:       clusterv1beta1.ClusterRegistrationRequestSpec{ClusterID: types.UID(id)},
		Status:     clusterv1beta1.ClusterRegistrationRequestStatus{Result: &approved, DedicatedNamespace: "clusternet-real"},
	}); err != nil {
		t.Fatal(err)
	}
	r := NewSocketREST(tunnel.NewRegistry(), Clusters{Indexer: informer.GetIndexer()},
		Registrations{Lister: clusterlisters.NewClusterRegistrationRequestLister(crrs)})
	for _, tc := range []struct {
		name, user, wantErr string
	}{
		{name: "the admitted namespace's agent", user: "system:serviceaccount:clusternet-real:clusternet-agent"},
		{name: "an agent of a namespace holding a ManagedCluster with that id", user: "system:serviceaccount:clusternet-forged:clusternet-agent",
			wantErr: `sockets.proxies.clusternet.io "` + id + `" is forbidden: user "system:serviceaccount:clusternet-forged:clusternet-agent" is not the agent of cluster ` + id +
				`: the hub admitted that cluster into namespace "clusternet-real" (ClusterRegistrationRequest clusternet-` + id + `), not clusternet-forged`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := request.WithUser(context.Background(), &user.DefaultInfo{Name: tc.user})
			_, err := r.Connect(ctx, id, nil, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !apierrors.IsForbidden(err) || err.Error() != tc.wantErr {
				t.Fatalf("error %v\nwant %s", err, tc.wantErr)
			}
		})
	}
}

// A cluster's agent opening its tunnel in a loop is refused after the
// burst, with when to retry; another cluster is not affected.
func TestTunnelOpensArePaced(t *testing.T) {
	ids := []string{"dc91021d-2361-4f6d-a404-7c33b9e01118", "0c4a7d2e-9f4b-4f6e-8a51-3c1f2b7d9e10"}
	informer := cache.NewSharedIndexInformer(&cache.ListWatch{}, &clusterv1beta1.ManagedCluster{}, 0, cache.Indexers{})
	if err := AddClusterIDIndex(informer); err != nil {
		t.Fatal(err)
	}
	crrs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	approved := clusterv1beta1.RequestApproved
	for i, id := range ids {
		ns := fmt.Sprintf("clusternet-%d", i)
		if err := informer.GetIndexer().Add(&clusterv1beta1.ManagedCluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "c"}, Spec: clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(id)},
		}); err != nil {
			t.Fatal(err)
		}
		if err := crrs.Add(&clusterv1beta1.ClusterRegistrationRequest{
			ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + id},
			Spec:       clusterv1beta1.ClusterRegistrationRequestSpec{ClusterID: types.UID(id)},
			Status:     clusterv1beta1.ClusterRegistrationRequestStatus{Result: &approved, DedicatedNamespace: ns},
		}); err != nil {
			t.Fatal(err)
		}
	}
	r := NewSocketREST(tunnel.NewRegistry(), Clusters{Indexer: informer.GetIndexer()},
		Registrations{Lister: clusterlisters.NewClusterRegistrationRequestLister(crrs)})
	connect := func(i int) error {
		ctx := request.WithUser(context.Background(), &user.DefaultInfo{Name: fmt.Sprintf("system:serviceaccount:clusternet-%d:clusternet-agent", i)})
		_, err := r.Connect(ctx, ids[i], nil, nil)
		return err
	}
	// Another cluster's agent trying this cluster's tunnel is refused for
	// who it is every time, and takes none of this cluster's opens.
	for range 2 * TunnelOpensBurst {
		ctx := request.WithUser(context.Background(), &user.DefaultInfo{Name: "system:serviceaccount:clusternet-1:clusternet-agent"})
		if _, err := r.Connect(ctx, ids[0], nil, nil); !apierrors.IsForbidden(err) {
			t.Fatalf("cluster 1's agent at cluster 0's tunnel: %v, want Forbidden", err)
		}
	}
	for n := range TunnelOpensBurst {
		if err := connect(0); err != nil {
			t.Fatalf("open %d of the burst refused: %v", n+1, err)
		}
	}
	err := connect(0)
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("open %d in a moment: %v, want 429", TunnelOpensBurst+1, err)
	}
	if after, ok := apierrors.SuggestsClientDelay(err); !ok || after < 1 {
		t.Errorf("the refusal suggests no retry delay: %v", err)
	}
	if err := connect(1); err != nil {
		t.Errorf("another cluster's agent was paced too: %v", err)
	}
}
