package render

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/apps/override"
)

// BadAffinity is a Globalization left out because its clusterAffinity does
// not parse: it applies nowhere until fixed.
type BadAffinity struct {
	Globalization *appsv1alpha1.Globalization
	Err           error
}

// Overrides are the Globalizations selecting cluster (nil: a cluster whose
// labels are unknown, which only Globalizations without clusterAffinity
// select) and the Localizations given (those of the cluster's dedicated
// namespace), in the order they apply: Globalizations first; each by
// priority (lower first), then creation time, then name. Overrides being
// deleted count as gone. It lives here, not in the hub, so that the plugin
// (`kubectl clusternet diff`) orders them exactly as the hub renders.
func Overrides(globs []*appsv1alpha1.Globalization, locs []*appsv1alpha1.Localization, cluster *clusterv1beta1.ManagedCluster) ([]Override, []BadAffinity) {
	var bad []BadAffinity
	var gs []keyed
	for _, g := range globs {
		if g.DeletionTimestamp != nil {
			continue
		}
		if g.Spec.ClusterAffinity != nil {
			sel, err := metav1.LabelSelectorAsSelector(g.Spec.ClusterAffinity)
			if err != nil {
				bad = append(bad, BadAffinity{Globalization: g, Err: err})
				continue
			}
			if cluster == nil || !sel.Matches(labels.Set(cluster.Labels)) {
				continue
			}
		}
		gs = append(gs, keyed{
			k: override.Key{Priority: override.Priority(g.Spec.Priority), Created: g.CreationTimestamp.Time, Name: g.Name},
			ov: Override{Ref: Ref{Kind: "Globalization", Name: g.Name, UID: g.UID, Generation: g.Generation},
				Policy: policyOrDefault(g.Spec.OverridePolicy), Feed: g.Spec.Feed, Configs: g.Spec.Overrides},
		})
	}
	var ls []keyed
	for _, l := range locs {
		if l.DeletionTimestamp != nil {
			continue
		}
		ls = append(ls, keyed{
			k: override.Key{Priority: override.Priority(l.Spec.Priority), Created: l.CreationTimestamp.Time, Name: l.Name},
			ov: Override{Ref: Ref{Kind: "Localization", Namespace: l.Namespace, Name: l.Name, UID: l.UID, Generation: l.Generation},
				Policy: policyOrDefault(l.Spec.OverridePolicy), Feed: l.Spec.Feed, Configs: l.Spec.Overrides},
		})
	}
	return append(sortKeyed(gs), sortKeyed(ls)...), bad
}

type keyed struct {
	k  override.Key
	ov Override
}

func sortKeyed(items []keyed) []Override {
	slices.SortFunc(items, func(a, b keyed) int { return override.Compare(a.k, b.k) })
	out := make([]Override, 0, len(items))
	for _, it := range items {
		out = append(out, it.ov)
	}
	return out
}

// policyOrDefault is the override policy, ApplyLater when unset (the API's
// default, for objects written before it had one).
func policyOrDefault(p appsv1alpha1.OverridePolicy) appsv1alpha1.OverridePolicy {
	if p == "" {
		return appsv1alpha1.ApplyLater
	}
	return p
}
