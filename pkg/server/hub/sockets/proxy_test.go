package sockets

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/tools/cache"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/tunnel/wire"
)

func TestIdentityOf(t *testing.T) {
	for _, tc := range []struct {
		name    string
		user    user.Info
		want    wire.Identity
		wantErr string
	}{{
		name: "a parent user is impersonated",
		user: &user.DefaultInfo{Name: "alice", UID: "u1", Groups: []string{"dev", "system:authenticated"}, Extra: map[string][]string{"scopes": {"a"}}},
		want: wire.Identity{User: "alice", UID: "u1", Groups: []string{"dev", "system:authenticated"}, Extra: map[string][]string{"scopes": {"a"}}},
	}, {
		name: "the seed's token pass-through",
		user: &user.DefaultInfo{Name: "clusternet", Extra: map[string][]string{"clusternet-token": {"child-token"}}},
		want: wire.Identity{Token: "child-token"},
	}, {
		name: "the seed's certificate pass-through",
		user: &user.DefaultInfo{Name: "clusternet", Extra: map[string][]string{"clusternet-certificate": {"Y2VydA=="}, "clusternet-privatekey": {"a2V5"}}},
		want: wire.Identity{Certificate: "Y2VydA==", PrivateKey: "a2V5"},
	}, {
		// Anyone may impersonate "clusternet" (the seed's anonymous
		// kubeconfigs do): without credentials it must get nowhere.
		name:    "pass-through user without credentials is refused",
		user:    &user.DefaultInfo{Name: "clusternet", Groups: []string{"system:authenticated"}},
		wantErr: "carries none",
	}, {
		name:    "a certificate without its key is refused",
		user:    &user.DefaultInfo{Name: "clusternet", Extra: map[string][]string{"clusternet-certificate": {"Y2VydA=="}}},
		wantErr: "carries none",
	}, {
		name:    "an empty token is refused",
		user:    &user.DefaultInfo{Name: "clusternet", Extra: map[string][]string{"clusternet-token": {""}}},
		wantErr: "carries none",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := identityOf(tc.user)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("identityOf() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("identityOf() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClustersByImmutableID(t *testing.T) {
	informer := cache.NewSharedIndexInformer(&cache.ListWatch{}, &clusterv1beta1.ManagedCluster{}, 0, cache.Indexers{})
	if err := AddClusterIDIndex(informer); err != nil {
		t.Fatal(err)
	}
	mc := func(ns, id, label string) *clusterv1beta1.ManagedCluster {
		return &clusterv1beta1.ManagedCluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "c", Labels: map[string]string{clusterv1beta1.LabelClusterID: label}},
			Spec:       clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(id)},
		}
	}
	// Namespace b's agent relabelled its ManagedCluster with a's id: the
	// label lies, spec.clusterId does not.
	for _, obj := range []*clusterv1beta1.ManagedCluster{mc("clusternet-a", "id-a", "id-a"), mc("clusternet-b", "id-b", "id-a")} {
		if err := informer.GetIndexer().Add(obj); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Clusters{Indexer: informer.GetIndexer()}.WithID("id-a")
	if err != nil {
		t.Fatal(err)
	}
	var namespaces []string
	for _, c := range got {
		namespaces = append(namespaces, c.Namespace)
	}
	if diff := cmp.Diff([]string{"clusternet-a"}, namespaces); diff != "" {
		t.Errorf("clusters with id id-a (-want +got):\n%s", diff)
	}
}
