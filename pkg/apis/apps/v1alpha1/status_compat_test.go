package v1alpha1

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

func TestSubscriptionStatusReadsEveryShape(t *testing.T) {
	cases := []struct {
		name, status string
		want         SubscriptionStatus
		wantErr      string
	}{{
		name:   "upstream's shape and this API's",
		status: `{"bindingClusters":["ns-a/a","ns-b/b"],"replicas":{"f":[1,2]},"replicasByCluster":{"f":{"ns-a/a":1,"ns-b/b":2}},"specHash":42,"specHashHex":"00ff"}`,
		want: SubscriptionStatus{BindingClusters: []string{"ns-a/a", "ns-b/b"}, BindingReplicas: map[string][]int32{"f": {1, 2}},
			Replicas: map[string]map[string]int32{"f": {"ns-a/a": 1, "ns-b/b": 2}}, SpecHashValue: 42, SpecHash: "00ff"},
	}, {
		name:   "stored by an earlier hub: hex specHash, replicas per cluster",
		status: `{"bindingClusters":["ns-a/a"],"replicas":{"f":{"ns-a/a":3}},"specHash":"a1b2c3d4e5f60718","desiredReleases":1}`,
		want: SubscriptionStatus{BindingClusters: []string{"ns-a/a"}, Replicas: map[string]map[string]int32{"f": {"ns-a/a": 3}},
			SpecHash: "a1b2c3d4e5f60718", DesiredReleases: 1},
	}, {
		name:   "nulls",
		status: `{"replicas":null,"specHash":null}`,
	}, {
		name:    "neither shape names upstream's",
		status:  `{"replicas":{"f":"x"}}`,
		wantErr: "[]int32",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sub Subscription
			err := utiljson.Unmarshal([]byte(`{"apiVersion":"apps.clusternet.io/v1alpha1","kind":"Subscription","status":`+tc.status+`}`), &sub)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, sub.Status); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			// What is written back is today's shape, and reads back the same.
			b, err := json.Marshal(sub.Status)
			if err != nil {
				t.Fatal(err)
			}
			var again SubscriptionStatus
			if err := json.Unmarshal(b, &again); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sub.Status, again); diff != "" {
				t.Errorf("round trip (-first +again):\n%s", diff)
			}
		})
	}
}
