package scheduling

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// ReasonInvalidSubGroupStrategy is the Scheduled condition's reason when
// Schedule returns a *SubGroupError.
const ReasonInvalidSubGroupStrategy = "InvalidSubGroupStrategy"

// SubGroupError is a Schedule error in spec.subscribers[].subGroupStrategy.
type SubGroupError struct{ msg string }

func (e *SubGroupError) Error() string { return e.msg }

func bySubGroup(spec *appsv1alpha1.SubscriptionSpec) bool {
	return spec.SchedulingBySubGroup != nil && *spec.SchedulingBySubGroup
}

// ignoredSubGroupStrategies warns of subscribers' subGroupStrategy when
// spec.schedulingBySubGroup is not true: upstream Clusternet accepts and
// ignores them then, so refusing them would refuse its Subscriptions, but
// whoever wrote one most likely meant the subgroups to count.
func ignoredSubGroupStrategies(spec *appsv1alpha1.SubscriptionSpec) []string {
	var out []string
	for i, sub := range spec.Subscribers {
		if sub.SubGroupStrategy != nil {
			out = append(out, fmt.Sprintf("spec.subscribers[%d].subGroupStrategy is ignored: spec.schedulingBySubGroup is not true: set it to true to bind subGroupStrategy.minClusters of each subscriber's clusters, or remove subGroupStrategy", i))
		}
	}
	return out
}

// scheduleBySubGroup binds, of each subscriber's eligible clusters (its
// subgroup), the minClusters best, as upstream Clusternet does: the union
// of the picks is the binding, and replicas are then divided among the
// picked clusters as the scheduling strategy says. Subgroups are picked
// independently, so a cluster in two subgroups may count in both.
func scheduleBySubGroup(in Input, selectors []labels.Selector, candidates []Cluster, weights map[string]int32) (Result, error) {
	spec := in.Spec
	for i, sub := range spec.Subscribers {
		if sub.SubGroupStrategy == nil {
			return Result{}, &SubGroupError{fmt.Sprintf("spec.subscribers[%d].subGroupStrategy is unset: every subscriber needs one when spec.schedulingBySubGroup is true: set spec.subscribers[%d].subGroupStrategy.minClusters, or set spec.schedulingBySubGroup to false", i, i)}
		}
		if n := sub.SubGroupStrategy.MinClusters; n < 0 {
			return Result{}, &SubGroupError{fmt.Sprintf("spec.subscribers[%d].subGroupStrategy.minClusters: %q is negative: it is how many of the subscriber's clusters to bind: set it to 0 or more", i, strconv.Itoa(int(n)))}
		}
	}
	dd := dynamicDividing(spec)
	var m *capacities
	if dd != nil {
		var err error
		if m, err = measure(in, candidates, dd); err != nil {
			return Result{}, err
		}
	}
	better := func(a, b Cluster) int {
		// Bound clusters first: a reschedule (a label, a capacity, a new
		// cluster changing) must not move the Subscription off clusters
		// that are still eligible, which would redeploy it for nothing.
		if c := cmp.Compare(boolRank(!in.Bound.Has(a.Key)), boolRank(!in.Bound.Has(b.Key))); c != 0 {
			return c
		}
		// Upstream's TaintToleration score: a PreferNoSchedule taint the
		// Subscription does not tolerate makes a cluster a last resort.
		if c := cmp.Compare(preferNoSchedule(spec.ClusterTolerations, a), preferNoSchedule(spec.ClusterTolerations, b)); c != 0 {
			return c
		}
		if m != nil {
			return m.compare(a, b)
		}
		return cmp.Compare(a.Key, b.Key)
	}

	picked := sets.New[string]()
	var warnings []string
	for i, sub := range spec.Subscribers {
		var group []Cluster
		for _, c := range candidates {
			if selectors[i].Matches(labels.Set(c.Labels)) {
				group = append(group, c)
			}
		}
		n := int(sub.SubGroupStrategy.MinClusters)
		if len(group) < n {
			// Upstream binds what the subgroup has rather than nothing.
			warnings = append(warnings, fmt.Sprintf("spec.subscribers[%d].subGroupStrategy.minClusters is %d but its subgroup (the clusters matching spec.subscribers[%d].clusterAffinity whose taints are tolerated) holds only %d: the subgroup is bound whole, as upstream Clusternet does; add matching clusters or lower minClusters",
				i, n, i, len(group)))
			n = len(group)
		}
		slices.SortStableFunc(group, better)
		for _, c := range group[:n] {
			picked.Insert(c.Key)
		}
	}
	chosen := slices.DeleteFunc(slices.Clone(candidates), func(c Cluster) bool { return !picked.Has(c.Key) })

	// With subgroups the picks are the binding: dynamicDividing's
	// minClusters and maxClusters do not add or drop any.
	var res Result
	if m != nil {
		res = m.divide(in.Workloads, m.sorted(chosen), dd.Strategy)
		res.Preempts = m.preempts(in.Workloads, res.Replicas)
	} else {
		res = bind(in, chosen, weights)
	}
	res.Warnings = append(warnings, res.Warnings...)
	return res, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// preferNoSchedule counts c's PreferNoSchedule taints the tolerations do
// not tolerate.
func preferNoSchedule(tolerations []corev1.Toleration, c Cluster) int {
	n := 0
	for i := range c.Taints {
		taint := &c.Taints[i]
		if taint.Effect != corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if !slices.ContainsFunc(tolerations, func(t corev1.Toleration) bool {
			return t.ToleratesTaint(klog.Background(), taint, true)
		}) {
			n++
		}
	}
	return n
}
