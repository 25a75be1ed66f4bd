// Package scheduling decides which clusters a Subscription is bound to and,
// when it divides replicas, how many each cluster runs. It is pure: the
// controller gives it the clusters and the workloads, it returns bindings.
package scheduling

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// Cluster is a ManagedCluster as scheduling sees it.
type Cluster struct {
	// Key is "<dedicated-namespace>/<name>", as in status.bindingClusters.
	Key         string
	Labels      map[string]string
	Taints      []corev1.Taint
	Allocatable corev1.ResourceList
}

// Workload is a feed with replicas to divide.
type Workload struct {
	// Key names the feed in status.replicas.
	Key      string
	Replicas int32
	// Requests are what one replica asks for (summed over its containers).
	Requests corev1.ResourceList
}

// Input is one scheduling round of one Subscription.
type Input struct {
	Spec     *appsv1alpha1.SubscriptionSpec
	Clusters []Cluster
	// Bound are the clusters bound before this round: a NoSchedule taint
	// keeps new Subscriptions off a cluster, not the ones already there.
	Bound     sets.Set[string]
	Workloads []Workload
}

// Result is where the Subscription goes.
type Result struct {
	// Bindings are the bound clusters' keys, sorted.
	Bindings []string
	// Replicas[workload key][cluster key] is each bound cluster's share, set
	// only when replicas are divided.
	Replicas map[string]map[string]int32
	// Warnings say where the result falls short of the request (not enough capacity).
	Warnings []string
}

// Schedule binds the Subscription. Errors are bad input, naming the field.
func Schedule(in Input) (Result, error) {
	candidates, weights, err := match(in)
	if err != nil {
		return Result{}, err
	}
	spec := in.Spec
	if spec.SchedulingStrategy != appsv1alpha1.DividingSchedulingStrategy {
		return Result{Bindings: keys(candidates)}, nil
	}
	dividing := spec.DividingScheduling
	if dividing != nil && dividing.Type == appsv1alpha1.DynamicReplicaDividingType {
		return dynamic(in, candidates)
	}
	// Static: every matched cluster is bound; replicas follow the weights.
	res := Result{Bindings: keys(candidates), Replicas: map[string]map[string]int32{}}
	w := make([]int64, len(candidates))
	for i, c := range candidates {
		w[i] = int64(weights[c.Key])
	}
	for _, wl := range in.Workloads {
		res.Replicas[wl.Key] = share(candidates, divide(wl.Replicas, w))
	}
	return res, nil
}

// match returns the clusters some subscriber selects and whose taints the
// Subscription tolerates, sorted by key, with each one's static weight (the
// weight of the first subscriber selecting it).
func match(in Input) ([]Cluster, map[string]int32, error) {
	selectors := make([]labels.Selector, len(in.Spec.Subscribers))
	for i, sub := range in.Spec.Subscribers {
		if sub.ClusterAffinity == nil {
			selectors[i] = labels.Nothing()
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(sub.ClusterAffinity)
		if err != nil {
			return nil, nil, fmt.Errorf("spec.subscribers[%d].clusterAffinity: %w: fix the selector", i, err)
		}
		selectors[i] = sel
	}
	weights := map[string]int32{}
	var out []Cluster
	for _, c := range in.Clusters {
		idx := slices.IndexFunc(selectors, func(s labels.Selector) bool { return s.Matches(labels.Set(c.Labels)) })
		if idx < 0 || !tolerated(in.Spec.ClusterTolerations, c, in.Bound.Has(c.Key)) {
			continue
		}
		weights[c.Key] = in.Spec.Subscribers[idx].Weight
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Cluster) int { return cmp.Compare(a.Key, b.Key) })
	return out, weights, nil
}

// tolerated applies the Kubernetes taint effects to a cluster: NoExecute
// keeps it off (and unbinds it), NoSchedule keeps new Subscriptions off but
// leaves a bound one there, PreferNoSchedule does not keep anything off.
func tolerated(tolerations []corev1.Toleration, c Cluster, bound bool) bool {
	for i := range c.Taints {
		taint := &c.Taints[i]
		if taint.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if taint.Effect == corev1.TaintEffectNoSchedule && bound {
			continue
		}
		if !slices.ContainsFunc(tolerations, func(t corev1.Toleration) bool {
			return t.ToleratesTaint(klog.Background(), taint, true)
		}) {
			return false
		}
	}
	return true
}

func keys(clusters []Cluster) []string {
	out := make([]string, 0, len(clusters))
	for _, c := range clusters {
		out = append(out, c.Key)
	}
	return out
}

func share(clusters []Cluster, n []int32) map[string]int32 {
	out := make(map[string]int32, len(clusters))
	for i, c := range clusters {
		out[c.Key] = n[i]
	}
	return out
}

// divide splits total in proportion to weights by the largest remainder
// method; ties go to the earlier entry, so the result never depends on map
// order. All-zero weights split evenly.
func divide(total int32, weights []int64) []int32 {
	out := make([]int32, len(weights))
	if len(weights) == 0 || total <= 0 {
		return out
	}
	var sum int64
	for _, w := range weights {
		sum += max(w, 0)
	}
	if sum == 0 {
		weights = slices.Repeat([]int64{1}, len(weights))
		sum = int64(len(weights))
	}
	type rem struct {
		i int
		r int64
	}
	rems := make([]rem, len(weights))
	given := int32(0)
	for i, w := range weights {
		w = max(w, 0)
		q := int64(total) * w / sum
		out[i] = int32(q)
		given += int32(q)
		rems[i] = rem{i: i, r: int64(total) * w % sum}
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for k := 0; given < total; k++ {
		out[rems[k%len(rems)].i]++
		given++
	}
	return out
}

// capacity is how many replicas of wl a cluster's allocatable resources
// hold: the smallest ratio over the resources one replica requests and the
// pods it may run. A resource the cluster does not report holds none.
func capacity(c Cluster, wl Workload) int64 {
	limit := int64(math.MaxInt64)
	check := func(name corev1.ResourceName, perMilli int64) {
		have, ok := c.Allocatable[name]
		if !ok {
			limit = 0
			return
		}
		limit = min(limit, have.MilliValue()/perMilli)
	}
	for name, q := range wl.Requests {
		if q.MilliValue() > 0 {
			check(name, q.MilliValue())
		}
	}
	check(corev1.ResourcePods, 1000)
	return max(limit, 0)
}

func dynamic(in Input, candidates []Cluster) (Result, error) {
	dd := in.Spec.DividingScheduling.DynamicDividing
	if dd == nil {
		dd = &appsv1alpha1.DynamicDividing{}
	}
	preferred := make([]labels.Selector, len(dd.PreferredClusters))
	for i := range dd.PreferredClusters {
		sel, err := metav1.LabelSelectorAsSelector(&dd.PreferredClusters[i])
		if err != nil {
			return Result{}, fmt.Errorf("spec.dividingScheduling.dynamicDividing.preferredClusters[%d]: %w: fix the selector", i, err)
		}
		preferred[i] = sel
	}
	caps := make(map[string][]int64, len(in.Workloads)) // workload -> per candidate
	score := make(map[string]int64, len(candidates))
	rank := make(map[string]int, len(candidates))
	for _, c := range candidates {
		rank[c.Key] = len(preferred)
		if i := slices.IndexFunc(preferred, func(s labels.Selector) bool { return s.Matches(labels.Set(c.Labels)) }); i >= 0 {
			rank[c.Key] = i
		}
	}
	for _, wl := range in.Workloads {
		cs := make([]int64, len(candidates))
		for i, c := range candidates {
			cs[i] = capacity(c, wl)
			score[c.Key] += min(cs[i], int64(wl.Replicas))
		}
		caps[wl.Key] = cs
	}
	order := make([]int, len(candidates))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ca, cb := candidates[a], candidates[b]
		if c := cmp.Compare(rank[ca.Key], rank[cb.Key]); c != 0 {
			return c
		}
		if c := cmp.Compare(score[cb.Key], score[ca.Key]); c != 0 {
			return c
		}
		return cmp.Compare(ca.Key, cb.Key)
	})
	minC, maxC := 0, len(candidates)
	if dd.MinClusters != nil {
		minC = int(*dd.MinClusters)
	}
	if dd.MaxClusters != nil {
		maxC = min(maxC, int(*dd.MaxClusters))
	}
	clamp := func(n int) int { return min(max(n, minC), maxC) }

	var chosen []int // indexes into candidates, in rank order
	switch {
	case len(in.Workloads) == 0:
		chosen = order[:clamp(len(order))]
	case dd.Strategy == appsv1alpha1.BinpackDividingStrategy:
		used := sets.New[int]()
		for _, wl := range in.Workloads {
			left := int64(wl.Replicas)
			for _, i := range order[:maxC] {
				if left <= 0 {
					break
				}
				if caps[wl.Key][i] > 0 {
					used.Insert(i)
					left -= caps[wl.Key][i]
				}
			}
		}
		for _, i := range order[:maxC] {
			if used.Has(i) || used.Len() < minC {
				chosen = append(chosen, i)
				used.Insert(i)
			}
		}
	default: // Spread
		n := 0
		for _, c := range candidates {
			if score[c.Key] > 0 {
				n++
			}
		}
		chosen = order[:clamp(n)]
	}

	res := Result{Replicas: map[string]map[string]int32{}}
	bound := make([]Cluster, len(chosen))
	for j, i := range chosen {
		bound[j] = candidates[i]
	}
	for _, wl := range in.Workloads {
		cs := make([]int64, len(chosen))
		var total int64
		for j, i := range chosen {
			cs[j] = caps[wl.Key][i]
			total += cs[j]
		}
		var n []int32
		if dd.Strategy == appsv1alpha1.BinpackDividingStrategy {
			n = binpack(wl.Replicas, cs)
		} else {
			n = divide(wl.Replicas, cs)
		}
		if total < int64(wl.Replicas) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s asks for %d replicas but the %d chosen clusters hold %d by their allocatable resources: the rest are spread over them anyway",
				wl.Key, wl.Replicas, len(chosen), total))
		}
		res.Replicas[wl.Key] = share(bound, n)
	}
	res.Bindings = keys(bound)
	slices.Sort(res.Bindings)
	return res, nil
}

// binpack fills clusters in order up to their capacity; what does not fit
// is divided over them in proportion to capacity.
func binpack(total int32, caps []int64) []int32 {
	out := make([]int32, len(caps))
	left := int64(total)
	for i, c := range caps {
		take := min(c, left)
		out[i] = int32(take)
		left -= take
	}
	if left > 0 {
		for i, n := range divide(int32(left), caps) {
			out[i] += n
		}
	}
	return out
}
