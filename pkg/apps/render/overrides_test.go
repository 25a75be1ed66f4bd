package render

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

var created0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func globalization(name string, priority *int32, created time.Duration, affinity *metav1.LabelSelector) *appsv1alpha1.Globalization {
	return &appsv1alpha1.Globalization{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(created0.Add(created))},
		Spec:       appsv1alpha1.GlobalizationSpec{OverrideSpec: appsv1alpha1.OverrideSpec{Priority: priority}, ClusterAffinity: affinity},
	}
}

func localization(name string, priority *int32, created time.Duration) *appsv1alpha1.Localization {
	return &appsv1alpha1.Localization{
		ObjectMeta: metav1.ObjectMeta{Namespace: "clusternet-a", Name: name, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(created0.Add(created))},
		Spec:       appsv1alpha1.LocalizationSpec{OverrideSpec: appsv1alpha1.OverrideSpec{Priority: priority, OverridePolicy: appsv1alpha1.ApplyNow}},
	}
}

// names are the overrides as "Kind name", in order.
func names(ovs []Override) []string {
	var out []string
	for _, o := range ovs {
		out = append(out, o.String())
	}
	return out
}

func TestOverrides(t *testing.T) {
	edge := &clusterv1beta1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"region": "edge"}}}
	onEdge := &metav1.LabelSelector{MatchLabels: map[string]string{"region": "edge"}}
	badSelector := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "region", Operator: "Bogus"}}}
	deleted := globalization("deleted", nil, 0, nil)
	deleted.DeletionTimestamp = ptr.To(metav1.NewTime(created0))

	tests := []struct {
		name    string
		globs   []*appsv1alpha1.Globalization
		locs    []*appsv1alpha1.Localization
		cluster *clusterv1beta1.ManagedCluster
		want    []string
		wantBad []string
	}{{
		name: "globalizations before localizations, each by priority, creation, name",
		globs: []*appsv1alpha1.Globalization{globalization("high", ptr.To[int32](900), 0, nil), globalization("b-same", nil, time.Hour, nil),
			globalization("a-same", nil, time.Hour, nil), globalization("older", nil, 0, nil)},
		locs:    []*appsv1alpha1.Localization{localization("l-late", nil, time.Hour), localization("l-low", ptr.To[int32](1), 2*time.Hour)},
		cluster: edge,
		want: []string{"Globalization older", "Globalization a-same", "Globalization b-same", "Globalization high",
			"Localization clusternet-a/l-low", "Localization clusternet-a/l-late"},
	}, {
		name:    "clusterAffinity selects by the cluster's labels; an unknown cluster gets only unrestricted ones",
		globs:   []*appsv1alpha1.Globalization{globalization("edge-only", nil, 0, onEdge), globalization("all", nil, time.Hour, nil)},
		cluster: nil,
		want:    []string{"Globalization all"},
	}, {
		name:    "a matching clusterAffinity applies",
		globs:   []*appsv1alpha1.Globalization{globalization("edge-only", nil, 0, onEdge)},
		cluster: edge,
		want:    []string{"Globalization edge-only"},
	}, {
		name:    "deleted overrides and bad selectors are left out; bad selectors are reported",
		globs:   []*appsv1alpha1.Globalization{deleted, globalization("bad", nil, 0, badSelector)},
		cluster: edge,
		wantBad: []string{"bad"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, bad := Overrides(tc.globs, tc.locs, tc.cluster)
			if diff := cmp.Diff(tc.want, names(got)); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
			var gotBad []string
			for _, b := range bad {
				gotBad = append(gotBad, b.Globalization.Name)
			}
			if diff := cmp.Diff(tc.wantBad, gotBad); diff != "" {
				t.Errorf("bad affinities (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("policy defaults to ApplyLater", func(t *testing.T) {
		got, _ := Overrides([]*appsv1alpha1.Globalization{globalization("g", nil, 0, nil)}, []*appsv1alpha1.Localization{localization("l", nil, 0)}, nil)
		if got[0].Policy != appsv1alpha1.ApplyLater || got[1].Policy != appsv1alpha1.ApplyNow {
			t.Errorf("policies %s, %s; want ApplyLater (unset), ApplyNow (set)", got[0].Policy, got[1].Policy)
		}
	})
}
