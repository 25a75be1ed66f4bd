package v1alpha1

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const deploy = "apps/v1/Deployment/qux/my-nginx"

var bindings = []string{"clusternet-5l82l/edge-1", "clusternet-dhxfs/edge-2", "clusternet-k2x9p/edge-3"}

func TestBindingReplicasOf(t *testing.T) {
	for _, tc := range []struct {
		name      string
		byCluster map[string]map[string]int32
		want      map[string][]int32
	}{
		{name: "none", byCluster: nil, want: nil},
		{
			name:      "in bindingClusters order, 0 for a cluster without a share",
			byCluster: map[string]map[string]int32{deploy: {"clusternet-k2x9p/edge-3": 1, "clusternet-5l82l/edge-1": 4}},
			want:      map[string][]int32{deploy: {4, 0, 1}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := BindingReplicasOf(bindings, tc.byCluster)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("BindingReplicasOf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReplicasByClusterOf(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas map[string][]int32
		want     map[string]map[string]int32
		wantErr  string
	}{
		{name: "none"},
		{
			name:     "by position in bindingClusters",
			replicas: map[string][]int32{deploy: {4, 0, 1}},
			want:     map[string]map[string]int32{deploy: {"clusternet-5l82l/edge-1": 4, "clusternet-dhxfs/edge-2": 0, "clusternet-k2x9p/edge-3": 1}},
		},
		{
			name:     "a count short",
			replicas: map[string][]int32{deploy: {4, 1}},
			wantErr:  `status.replicas["apps/v1/Deployment/qux/my-nginx"] has 2 counts for 3 bindingClusters: it needs one per binding cluster, in the order of status.bindingClusters`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReplicasByClusterOf(bindings, tc.replicas)
			if gotErr := errString(err); gotErr != tc.wantErr {
				t.Fatalf("error %q, want %q", gotErr, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ReplicasByClusterOf (-want +got):\n%s", diff)
			}
			if err == nil {
				if diff := cmp.Diff(tc.replicas, BindingReplicasOf(bindings, got)); diff != "" {
					t.Errorf("BindingReplicasOf does not give the counts back (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestSpecHashValueOf(t *testing.T) {
	for _, tc := range []struct {
		sum  uint64
		want int64
	}{
		{0, 0},
		{2868731431, 2868731431},
		{math.MaxUint64, math.MaxInt64},
		{1 << 63, 0},
	} {
		if got := SpecHashValueOf(tc.sum); got != tc.want {
			t.Errorf("SpecHashValueOf(%d) = %d, want %d", tc.sum, got, tc.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
