// Package scheduling decides which clusters a Subscription is bound to and,
// when it divides replicas, how many each cluster runs. It is pure: the
// controller gives it the clusters and the workloads, it returns bindings.
package scheduling

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

// Cluster is a ManagedCluster as scheduling sees it.
type Cluster struct {
	// Key is "<dedicated-namespace>/<name>", as in status.bindingClusters.
	Key         string
	Labels      map[string]string
	Taints      []corev1.Taint
	Allocatable corev1.ResourceList
	// Available is status.available, non-nil exactly when the cluster
	// reports status.predictorEnabled: Dynamic dividing then takes, per
	// resource, the smaller of it and the hub's book (room.go). A resource
	// it leaves out has nothing available.
	Available corev1.ResourceList
	// Others is what the other Subscriptions placed on the cluster (the
	// hub's book: Book.Room).
	Others Usage
	// Preemptible is the part of Others this Subscription may take: what
	// Subscriptions of lower priority that divide dynamically placed, set
	// only when this one may preempt them.
	Preemptible Usage
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
	// keeps new Subscriptions off a cluster, not the ones already there
	// (but see FailOver).
	Bound sets.Set[string]
	// FailOver (the hub's feature gate) makes the failover taint
	// (clusterv1beta1.TaintClusterUnschedulable, NoSchedule) unbind a cluster from
	// Subscriptions that divide replicas, so that they are placed on
	// healthy clusters; Replication keeps it bound as any NoSchedule taint
	// does (tolerated).
	FailOver bool
	// Kept are the clusters this Subscription failed over from whose Base
	// was kept as it was (not in Bound: their replicas run elsewhere).
	// Their taints count as a bound cluster's, so that while the failover
	// taint stays they are reported in Result.FailedOver round after round,
	// and once it goes they are bound again like any cluster that was.
	Kept      sets.Set[string]
	Workloads []Workload
	// Previous[workload key][cluster key] is the division in force before
	// this round (what the Bases say each cluster runs). Dynamic dividing
	// moves only what differs from it; a share counts only on a cluster in
	// Bound that is still a candidate. Static dividing ignores it: weights
	// alone decide.
	Previous map[string]map[string]int32
}

// Result is where the Subscription goes.
type Result struct {
	// Bindings are the bound clusters' keys, sorted.
	Bindings []string
	// Replicas[workload key][cluster key] is each bound cluster's share, set
	// only when replicas are divided.
	Replicas map[string]map[string]int32
	// Warnings say where the result falls short of the request (not enough
	// capacity, a subgroup smaller than its minClusters) or ignores part of it.
	Warnings []string
	// Short says that some replicas do not fit (Dynamic dividing only):
	// placed beyond what their cluster holds, or, when no cluster has room
	// for one, not placed at all. Room freed elsewhere may take them.
	Short bool
	// Preempts[cluster key] is, per resource, the room this round takes
	// from Subscriptions of lower priority there (room.preempted): set only
	// by Dynamic dividing that may preempt, on clusters where it placed
	// more than it held.
	Preempts map[string]Usage
	// Fits[workload key][cluster key] is the part of Replicas within the
	// cluster's capacity (Dynamic dividing only): what takes room there.
	// The rest waits for room (it would be Pending in the child), so the
	// book does not count it: replicas spread anyway where they do not fit
	// push no other Subscription out.
	Fits map[string]map[string]int32
	// FailedOver are the keys of the bound clusters this round unbinds only
	// because of the failover exception (Input.FailOver, tolerated),
	// sorted: their replicas are placed on healthy clusters, and what
	// becomes of their Bases is the caller's to decide. A cluster dropped
	// for any other reason (its labels or the subscribers no longer match,
	// another taint) is not in it, tainted or not.
	FailedOver []string
}

// Schedule binds the Subscription. Errors are bad input, naming the field.
func Schedule(in Input) (Result, error) {
	selectors, err := subscriberSelectors(in.Spec)
	if err != nil {
		return Result{}, err
	}
	candidates, weights, failedOver := match(in, selectors)
	var res Result
	switch {
	case bySubGroup(in.Spec):
		if res, err = scheduleBySubGroup(in, selectors, candidates, weights); err != nil {
			return Result{}, err
		}
	case dynamicDividing(in.Spec) != nil:
		if res, err = dynamic(in, candidates); err != nil {
			return Result{}, err
		}
		res.Warnings = append(ignoredSubGroupStrategies(in.Spec), res.Warnings...)
	default:
		res = bind(in, candidates, weights)
		res.Warnings = append(ignoredSubGroupStrategies(in.Spec), res.Warnings...)
	}
	res.FailedOver = failedOver
	return res, nil
}

// bind binds every one of clusters and, when dividing statically, divides
// the replicas by the weights.
func bind(in Input, clusters []Cluster, weights map[string]int32) Result {
	if in.Spec.SchedulingStrategy != appsv1alpha1.DividingSchedulingStrategy {
		return Result{Bindings: keys(clusters)}
	}
	res := Result{Bindings: keys(clusters), Replicas: map[string]map[string]int32{}}
	w := make([]int64, len(clusters))
	for i, c := range clusters {
		w[i] = int64(weights[c.Key])
	}
	for _, wl := range in.Workloads {
		res.Replicas[wl.Key] = share(clusters, divide(wl.Replicas, w))
	}
	return res
}

// DividesDynamically says whether the Subscription divides replicas
// dynamically: only then does Input.Previous count.
func DividesDynamically(spec *appsv1alpha1.SubscriptionSpec) bool {
	return dynamicDividing(spec) != nil
}

// dynamicDividing is the dynamic dividing configuration, nil unless the
// Subscription divides replicas dynamically.
func dynamicDividing(spec *appsv1alpha1.SubscriptionSpec) *appsv1alpha1.DynamicDividing {
	if spec.SchedulingStrategy != appsv1alpha1.DividingSchedulingStrategy || spec.DividingScheduling == nil ||
		spec.DividingScheduling.Type != appsv1alpha1.DynamicReplicaDividingType {
		return nil
	}
	if spec.DividingScheduling.DynamicDividing == nil {
		return &appsv1alpha1.DynamicDividing{}
	}
	return spec.DividingScheduling.DynamicDividing
}

// Selector says whether a subscriber of spec selects a cluster of some
// labels (its taints aside); a selector that does not parse selects
// nothing. The selectors are parsed once, for many clusters.
func Selector(spec *appsv1alpha1.SubscriptionSpec) func(ls map[string]string) bool {
	selectors, err := subscriberSelectors(spec)
	return func(ls map[string]string) bool {
		return err == nil && slices.ContainsFunc(selectors, func(s labels.Selector) bool { return s.Matches(labels.Set(ls)) })
	}
}

// subscriberSelectors parses each subscriber's clusterAffinity; a
// subscriber without one selects nothing.
func subscriberSelectors(spec *appsv1alpha1.SubscriptionSpec) ([]labels.Selector, error) {
	selectors := make([]labels.Selector, len(spec.Subscribers))
	for i, sub := range spec.Subscribers {
		if sub.ClusterAffinity == nil {
			selectors[i] = labels.Nothing()
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(sub.ClusterAffinity)
		if err != nil {
			return nil, fmt.Errorf("spec.subscribers[%d].clusterAffinity: %w: fix the selector", i, err)
		}
		selectors[i] = sel
	}
	return selectors, nil
}

// match returns the clusters some subscriber selects and whose taints the
// Subscription tolerates, sorted by key, with each one's static weight (the
// weight of the first subscriber selecting it), and the selected bound
// clusters the failover exception alone keeps off (Result.FailedOver).
func match(in Input, selectors []labels.Selector) ([]Cluster, map[string]int32, []string) {
	weights := map[string]int32{}
	var out []Cluster
	var failedOver []string
	for _, c := range in.Clusters {
		idx := slices.IndexFunc(selectors, func(s labels.Selector) bool { return s.Matches(labels.Set(c.Labels)) })
		if idx < 0 {
			continue
		}
		switch tolerated(in.Spec, c, in.Bound.Has(c.Key) || in.Kept.Has(c.Key), in.FailOver) {
		case keptOff:
			continue
		case failedOverOff:
			failedOver = append(failedOver, c.Key)
			continue
		}
		weights[c.Key] = in.Spec.Subscribers[idx].Weight
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Cluster) int { return cmp.Compare(a.Key, b.Key) })
	slices.Sort(failedOver)
	return out, weights, failedOver
}

// verdict is what a cluster's taints say about a Subscription there.
type verdict int

const (
	allowed verdict = iota
	// keptOff: a taint the Subscription does not tolerate keeps it off.
	keptOff
	// failedOverOff: only the failover exception keeps it off (Result.FailedOver).
	failedOverOff
)

// tolerated applies the Kubernetes taint effects to a cluster: NoExecute
// keeps it off (and unbinds it), NoSchedule keeps new Subscriptions off but
// leaves a bound one there, PreferNoSchedule does not keep anything off.
// The one exception, with failOver: the failover taint unbinds a cluster
// from a Subscription that divides replicas (its replicas are what a lost
// cluster no longer runs, and healthy clusters can), and keeps it bound to
// one that replicates (a copy everywhere: nowhere else to move it). This
// is the one place that decides which taints keep which Subscription off,
// and whether the failover exception is why.
func tolerated(spec *appsv1alpha1.SubscriptionSpec, c Cluster, bound, failOver bool) verdict {
	exception := failOver && spec.SchedulingStrategy == appsv1alpha1.DividingSchedulingStrategy
	out := allowed
	for i := range c.Taints {
		taint := &c.Taints[i]
		switch {
		case taint.Effect == corev1.TaintEffectPreferNoSchedule,
			slices.ContainsFunc(spec.ClusterTolerations, func(t corev1.Toleration) bool {
				return t.ToleratesTaint(klog.Background(), taint, true)
			}):
		case taint.Effect == corev1.TaintEffectNoSchedule && bound:
			if exception && clusterv1beta1.IsFailoverTaint(*taint) {
				out = failedOverOff
			}
		default:
			return keptOff
		}
	}
	return out
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
	for i, n := range apportion(int64(total), weights) {
		out[i] = int32(n) // at most total
	}
	return out
}

// apportion is divide for an int64 total. Each total*weight is worked out
// in 128 bits, so that no product overflows however large both are.
func apportion(total int64, weights []int64) []int64 {
	out := make([]int64, len(weights))
	if len(weights) == 0 || total <= 0 {
		return out
	}
	sum, fits := int64(0), true
	for _, w := range weights {
		if w > 0 {
			fits = fits && sum <= math.MaxInt64-w
			sum += w
		}
	}
	if !fits {
		// Weights summing past MaxInt64 (capacities are what agents
		// report) count each divided by their number: those sum below it.
		scaled := make([]int64, len(weights))
		sum = 0
		for i, w := range weights {
			scaled[i] = max(w, 0) / int64(len(weights))
			sum += scaled[i]
		}
		weights = scaled
	}
	if sum == 0 {
		weights = slices.Repeat([]int64{1}, len(weights))
		sum = int64(len(weights))
	}
	type rem struct {
		i int
		r uint64
	}
	rems := make([]rem, len(weights))
	given := int64(0)
	for i, w := range weights {
		hi, lo := bits.Mul64(uint64(total), uint64(max(w, 0)))
		// hi < sum, or Div64 panics: total < 2^64 and w <= sum.
		q, r := bits.Div64(hi, lo, uint64(sum))
		out[i] = int64(q) // at most total
		given += int64(q)
		rems[i] = rem{i: i, r: r}
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for k := 0; given < total; k++ {
		out[rems[k%len(rems)].i]++
		given++
	}
	return out
}

// capacities is what dynamic dividing knows of the candidates: how many
// replicas of each workload each one holds, and how they rank.
type capacities struct {
	// caps[workload key][cluster key] is how many replicas the cluster holds.
	caps map[string]map[string]int64
	// score sums a cluster's capacity over the workloads, each capped at
	// the workload's replicas: holding more than is asked is no better.
	score map[string]int64
	// rank is the index of the first preferredClusters selector matching
	// the cluster, len(preferredClusters) if none does.
	rank map[string]int
	// held[workload key][cluster key] is the share in force on a bound
	// candidate (Input.Previous): dividing starts from it.
	held map[string]map[string]int32
	// rs are the resources weighed; rooms[i] what candidate keys[i] has
	// for the Subscription (room.go).
	rs    resources
	keys  []string
	rooms []room
	// scratch is a buffer of len(rs.names).
	scratch []int64
}

func measure(in Input, candidates []Cluster, dd *appsv1alpha1.DynamicDividing) (*capacities, error) {
	preferred := make([]labels.Selector, len(dd.PreferredClusters))
	for i := range dd.PreferredClusters {
		sel, err := metav1.LabelSelectorAsSelector(&dd.PreferredClusters[i])
		if err != nil {
			return nil, fmt.Errorf("spec.dividingScheduling.dynamicDividing.preferredClusters[%d]: %w: fix the selector", i, err)
		}
		preferred[i] = sel
	}
	m := &capacities{caps: make(map[string]map[string]int64, len(in.Workloads)),
		score: make(map[string]int64, len(candidates)), rank: make(map[string]int, len(candidates)),
		held: held(in, candidates), rs: resourcesOf(in.Workloads), keys: keys(candidates)}
	for _, wl := range in.Workloads {
		m.caps[wl.Key] = make(map[string]int64, len(candidates))
	}
	shares := make([]int32, len(in.Workloads))
	m.rooms = rooms(len(candidates), len(m.rs.names))
	m.scratch = make([]int64, len(m.rs.names))
	for i := range candidates {
		c := &candidates[i]
		m.rank[c.Key] = len(preferred)
		if i := slices.IndexFunc(preferred, func(s labels.Selector) bool { return s.Matches(labels.Set(c.Labels)) }); i >= 0 {
			m.rank[c.Key] = i
		}
		for w, wl := range in.Workloads {
			shares[w] = m.held[wl.Key][c.Key]
		}
		rm := &m.rooms[i]
		m.rs.usage(rm.own, shares)
		rm.measure(c, m.rs)
		for w, wl := range in.Workloads {
			// capacity(w, c) = held(w, c) + floor(free(c) / request(w)).
			n := addSat(int64(shares[w]), rm.fits(m.rs.req[w]))
			m.caps[wl.Key][c.Key] = n
			m.score[c.Key] += min(n, int64(wl.Replicas))
		}
	}
	return m, nil
}

// preempts is Result.Preempts of replicas, the division this round made.
func (m *capacities) preempts(workloads []Workload, replicas map[string]map[string]int32) map[string]Usage {
	var out map[string]Usage
	shares := make([]int32, len(workloads))
	for i, key := range m.keys {
		rm := &m.rooms[i]
		if !rm.mayPreempt() {
			continue
		}
		for w, wl := range workloads {
			shares[w] = replicas[wl.Key][key]
		}
		m.rs.usage(m.scratch, shares)
		for r, n := range rm.preempted(m.scratch) {
			if n <= 0 {
				continue
			}
			if out == nil {
				out = map[string]Usage{}
			}
			if out[key] == nil {
				out[key] = Usage{}
			}
			out[key][m.rs.names[r]] = n
		}
	}
	return out
}

// compare orders clusters best first: preferred, then holding more, then by key.
func (m *capacities) compare(a, b Cluster) int {
	if c := cmp.Compare(m.rank[a.Key], m.rank[b.Key]); c != 0 {
		return c
	}
	if c := cmp.Compare(m.score[b.Key], m.score[a.Key]); c != 0 {
		return c
	}
	return cmp.Compare(a.Key, b.Key)
}

// sorted is clusters in compare's order. It sorts their indices by
// their rank and score read once, not the clusters themselves: a round
// sorts a thousand of them, and moving those structs and looking their
// keys up at each comparison was most of its time.
func (m *capacities) sorted(clusters []Cluster) []Cluster {
	idx := make([]int, len(clusters))
	rank := make([]int, len(clusters))
	score := make([]int64, len(clusters))
	for i, c := range clusters {
		idx[i], rank[i], score[i] = i, m.rank[c.Key], m.score[c.Key]
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(rank[a], rank[b]), cmp.Compare(score[b], score[a]), cmp.Compare(clusters[a].Key, clusters[b].Key))
	})
	out := make([]Cluster, len(clusters))
	for i, j := range idx {
		out[i] = clusters[j]
	}
	return out
}

// divide binds clusters (best first, as binpack fills them in that order)
// and divides each workload among them by capacity, moving only what
// differs from the shares they hold.
func (m *capacities) divide(workloads []Workload, clusters []Cluster, strategy appsv1alpha1.DynamicDividingStrategy) Result {
	res := Result{Replicas: map[string]map[string]int32{}, Fits: map[string]map[string]int32{}}
	for _, wl := range workloads {
		cs := make([]int64, len(clusters))
		kept := make([]int32, len(clusters))
		var total int64
		for j, c := range clusters {
			cs[j] = m.caps[wl.Key][c.Key]
			kept[j] = m.held[wl.Key][c.Key]
			total = addSat(total, max(cs[j], 0))
		}
		n := split(wl.Replicas, cs, kept, strategy)
		fits := make(map[string]int32, len(clusters))
		var fit int64
		for j, c := range clusters {
			fits[c.Key] = int32(min(int64(n[j]), max(cs[j], 0)))
			fit += int64(fits[c.Key])
		}
		res.Fits[wl.Key] = fits
		if len(clusters) == 0 {
			res.Replicas[wl.Key] = map[string]int32{}
			continue // not short of room: short of clusters (dynamic says which)
		}
		res.Short = res.Short || fit < int64(wl.Replicas)
		if total < int64(wl.Replicas) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s asks for %d replicas but the %d chosen clusters hold %d by their allocatable resources: the rest are spread over them anyway",
				wl.Key, wl.Replicas, len(clusters), total))
		}
		res.Replicas[wl.Key] = share(clusters, n)
	}
	res.Bindings = keys(clusters)
	slices.Sort(res.Bindings)
	return res
}

// dynamic divides by capacity from the division in force: the clusters a
// division from nothing would bind share each workload's change with
// those holding its replicas already, so that a change moves only the
// difference (incremental.go).
func dynamic(in Input, candidates []Cluster) (Result, error) {
	dd := dynamicDividing(in.Spec)
	m, err := measure(in, candidates, dd)
	if err != nil {
		return Result{}, err
	}
	order := m.sorted(candidates)
	minC, maxC := 0, len(order)
	if dd.MinClusters != nil {
		minC = int(*dd.MinClusters)
	}
	if dd.MaxClusters != nil {
		maxC = max(min(maxC, int(*dd.MaxClusters)), 0)
	}
	fresh := m.choose(in.Workloads, order, dd.Strategy, minC, maxC)
	res := unbindEmptied(m.divide(in.Workloads, m.withHolders(fresh, order, maxC), dd.Strategy), fresh)
	res.Preempts = m.preempts(in.Workloads, res.Replicas)
	if len(res.Bindings) == 0 && len(candidates) > 0 {
		// Clusters match, none has room for a replica: none is placed, as
		// a pod no node has room for waits, and the Subscription is
		// scheduled again when room frees on one of them.
		for _, wl := range in.Workloads {
			if wl.Replicas > 0 {
				res.Short = true
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s asks for %d replicas but none of the %d clusters it may use has room for one: none is placed until room frees",
					wl.Key, wl.Replicas, len(candidates)))
			}
		}
	}
	return res, nil
}

// choose is the clusters a division from nothing binds, in rank order:
// Spread those that can hold something, Binpack as few as it fills,
// clamped to minC..maxC.
func (m *capacities) choose(workloads []Workload, order []Cluster, strategy appsv1alpha1.DynamicDividingStrategy, minC, maxC int) []Cluster {
	clamp := func(n int) int { return min(max(n, minC), maxC) }
	switch {
	case len(workloads) == 0:
		return order[:clamp(len(order))]
	case strategy == appsv1alpha1.BinpackDividingStrategy:
		used := sets.New[string]()
		for _, wl := range workloads {
			left := int64(wl.Replicas)
			for _, c := range order[:maxC] {
				if left <= 0 {
					break
				}
				if n := m.caps[wl.Key][c.Key]; n > 0 {
					used.Insert(c.Key)
					left -= n
				}
			}
		}
		var chosen []Cluster
		for _, c := range order[:maxC] {
			if used.Has(c.Key) || used.Len() < minC {
				chosen = append(chosen, c)
				used.Insert(c.Key)
			}
		}
		return chosen
	default: // Spread
		n := 0
		for _, c := range order {
			if m.score[c.Key] > 0 {
				n++
			}
		}
		return order[:clamp(n)]
	}
}

// binpack fills clusters in order up to their capacity; what does not fit
// is divided over them in proportion to capacity.
func binpack(total int32, caps []int64) []int32 {
	return fill(total, caps, caps)
}
