package scheduling

import (
	"math"
	"math/bits"
	"slices"

	corev1 "k8s.io/api/core/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// What a cluster can take, for Dynamic dividing. This file is the one
// place that decides it: for Subscription S, workload w and cluster c,
//
//	capacity(w, c) = held(w, c) + floor(free(c) / request(w))
//
// the smallest over the resources w requests and one pod, where free(c),
// per resource, is the smaller of
//
//   - the cluster's own report, status.available (only when it reports
//     status.predictorEnabled): what its ready, schedulable nodes have
//     left after the pods that run there, S's own included, so S's held
//     replicas are not taken off it again;
//   - the hub's book: status.allocatable minus what every other
//     Subscription placed there (decided, running or not) and minus S's own
//     held shares, so that two Subscriptions scheduled one after the other
//     do not both count the same room before any pod exists.
//
// When S may preempt (Dynamic dividing, spec.preemptionPolicy not
// PreemptNever) what Subscriptions of strictly lower priority that divide
// dynamically placed there is added back to both: their replicas move
// when they are next scheduled. free may be negative: then the capacity is
// below the held share, and split moves the excess to where there is room
// (incremental.go).

// Usage is what replicas take of a cluster: per resource, in milli-units;
// a pod counts 1000 under "pods". Sums saturate instead of wrapping: the
// shares in force come from Bases and statuses anyone allowed to write
// them may have filled with anything.
type Usage map[corev1.ResourceName]int64

// AddReplicas adds what n replicas, each requesting requests, take.
func (u Usage) AddReplicas(n int32, requests corev1.ResourceList) {
	if n <= 0 {
		return
	}
	for name, q := range requests {
		if v := q.MilliValue(); v > 0 {
			u[name] = min(addSat(u[name], mulSat(int64(n), v)), maxUsage)
		}
	}
	u[corev1.ResourcePods] = min(addSat(u[corev1.ResourcePods], mulSat(int64(n), 1000)), maxUsage)
}

// maxUsage bounds one Subscription's usage of a resource (2^52 milli-units,
// far beyond any cluster): a ledger's sums of thousands of them then never
// saturate, and a saturated sum could not be taken apart again when one
// Subscription leaves, losing the others' usage.
const maxUsage = int64(1) << 52

// Add adds v to u.
func (u Usage) Add(v Usage) {
	for name, n := range v {
		u[name] = addSat(u[name], n)
	}
}

// Sub takes v from u, dropping what comes to zero.
func (u Usage) Sub(v Usage) {
	for name, n := range v {
		if r := addSat(u[name], -n); r != 0 {
			u[name] = r
		} else {
			delete(u, name)
		}
	}
}

// positive says whether some resource is above zero.
func (u Usage) positive() bool {
	for _, n := range u {
		if n > 0 {
			return true
		}
	}
	return false
}

// Clone is a copy of u.
func (u Usage) Clone() Usage {
	out := make(Usage, len(u))
	for k, v := range u {
		out[k] = v
	}
	return out
}

// resources are the resources one round weighs: those some workload
// requests, and pods, in a fixed order; req[w][r] is what one replica of
// workload w requests of resource r, in milli-units.
type resources struct {
	names []corev1.ResourceName
	req   [][]int64
}

func resourcesOf(workloads []Workload) resources {
	names := []corev1.ResourceName{corev1.ResourcePods}
	for _, wl := range workloads {
		for name, q := range wl.Requests {
			if q.MilliValue() > 0 && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	out := resources{names: names, req: make([][]int64, len(workloads))}
	for i, wl := range workloads {
		out.req[i] = make([]int64, len(names))
		for r, name := range names {
			if name == corev1.ResourcePods {
				out.req[i][r] = 1000
			} else if q, ok := wl.Requests[name]; ok {
				out.req[i][r] = max(q.MilliValue(), 0)
			}
		}
	}
	return out
}

// usage sets into, per resource, what shares[w] replicas of each
// workload take.
func (rs resources) usage(into []int64, shares []int32) {
	clear(into)
	for w, n := range shares {
		if n <= 0 {
			continue
		}
		for r, req := range rs.req[w] {
			into[r] = addSat(into[r], mulSat(int64(n), req))
		}
	}
}

// room is what one cluster has for one Subscription this round, per
// resource of resources.
type room struct {
	// known is false for a resource the cluster does not report in
	// status.allocatable: it takes no new replica, and what is held there
	// stays (an unreported number is no reason to move anything).
	known []bool
	// base is allocatable minus what the other Subscriptions placed;
	// available is status.available when reported (hasAvailable).
	base, available []int64
	hasAvailable    []bool
	// preemptible is the part of what the others placed that this
	// Subscription may take (Cluster.Preemptible).
	preemptible []int64
	// own is what the Subscription's held shares take.
	own []int64
}

// rooms are the rooms of n clusters over resources of r kinds, sharing
// two allocations: a round measures a thousand clusters.
func rooms(n, r int) []room {
	ints, flags := make([]int64, 4*n*r), make([]bool, 2*n*r)
	out := make([]room, n)
	for i := range out {
		in, fl := ints[4*i*r:4*(i+1)*r], flags[2*i*r:2*(i+1)*r]
		out[i] = room{base: in[:r], available: in[r : 2*r], preemptible: in[2*r : 3*r], own: in[3*r:], known: fl[:r], hasAvailable: fl[r:]}
	}
	return out
}

// measure fills rm with what c has for the Subscription; rm.own is
// already set.
func (rm *room) measure(c *Cluster, rs resources) {
	for r, name := range rs.names {
		a, ok := c.Allocatable[name]
		if !ok {
			continue
		}
		rm.known[r] = true
		rm.base[r] = addSat(a.MilliValue(), -c.Others[name])
		rm.preemptible[r] = max(c.Preemptible[name], 0)
		if c.Available != nil {
			// The agent leaves out a resource none of its schedulable nodes
			// has: none of it is available.
			av := c.Available[name]
			rm.available[r], rm.hasAvailable[r] = av.MilliValue(), true
		}
	}
}

// free is what resource r has left for the Subscription's new replicas,
// beyond what it holds, the lower-priority room it may take included:
// negative when what it holds no longer fits.
func (rm *room) free(r int) int64 {
	book := addSat(addSat(rm.base[r], -rm.own[r]), rm.preemptible[r])
	if !rm.hasAvailable[r] {
		return book
	}
	return min(book, addSat(rm.available[r], rm.preemptible[r]))
}

// fits is how many replicas requesting req (per resource of the round)
// the free room takes beyond those held: negative when the held ones no
// longer fit.
func (rm *room) fits(req []int64) int64 {
	out := int64(math.MaxInt64)
	for r, q := range req {
		if q <= 0 {
			continue
		}
		if !rm.known[r] {
			out = min(out, 0)
			continue
		}
		out = min(out, floorDiv(rm.free(r), q))
	}
	return out
}

// mayPreempt says whether some lower-priority room is there to take.
func (rm *room) mayPreempt() bool {
	return slices.ContainsFunc(rm.preemptible, func(n int64) bool { return n > 0 })
}

// preempted is, per resource, the room this round's placement takes from
// lower-priority Subscriptions: what placed (the usage of the new shares)
// needs beyond what the cluster has without theirs, at most what they
// hold. Zero everywhere when the Subscription did not grow there: it
// preempts only by a decision that places more.
func (rm *room) preempted(placed []int64) []int64 {
	grew := false
	for r := range placed {
		grew = grew || placed[r] > rm.own[r]
	}
	out := make([]int64, len(placed))
	if !grew {
		return out
	}
	for r := range placed {
		if !rm.known[r] || rm.preemptible[r] == 0 {
			continue
		}
		short := -addSat(rm.base[r], -placed[r])
		if rm.hasAvailable[r] {
			short = max(short, -addSat(rm.available[r], -addSat(placed[r], -rm.own[r])))
		}
		out[r] = min(max(short, 0), rm.preemptible[r])
	}
	return out
}

// floorDiv is a/b rounded down, for b > 0 (Go's / rounds towards zero).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// addSat is a+b, saturating at the int64 bounds.
func addSat(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// mulSat is a*b for a, b >= 0, saturating at MaxInt64.
func mulSat(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

// Fitting is, of the division in force (in.Previous on in.Bound), the part
// within each bound cluster's capacity (Result.Fits): what the book
// records of a Subscription that divides dynamically when it is read from
// the statuses rather than from a round (the controller's rebuild).
func Fitting(in Input) map[string]map[string]int32 {
	var bound []Cluster
	for _, c := range in.Clusters {
		if in.Bound.Has(c.Key) {
			bound = append(bound, c)
		}
	}
	m, _ := measure(in, bound, &appsv1alpha1.DynamicDividing{}) // no preferredClusters: no error
	out := make(map[string]map[string]int32, len(in.Workloads))
	for _, wl := range in.Workloads {
		out[wl.Key] = make(map[string]int32, len(bound))
		for _, c := range bound {
			out[wl.Key][c.Key] = int32(min(int64(m.held[wl.Key][c.Key]), max(m.caps[wl.Key][c.Key], 0)))
		}
	}
	return out
}
