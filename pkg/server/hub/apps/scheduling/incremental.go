package scheduling

import (
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/util/sets"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// Dynamic dividing is incremental, as upstream Clusternet's dynamic
// assigner means it to be (it divides only the deviation between the
// desired replicas and those in status.replicas): replicas that run stay
// where they run, and a round moves only the difference. A division from
// nothing is the special case where nothing is held.

// held is the division in force that dynamic dividing starts from: each
// current workload's previous shares on candidates bound before this
// round. A cluster that is no longer a candidate (unbound, tainted
// NoExecute, deleted) or no longer bound holds nothing: its replicas are
// placed again like new ones.
func held(in Input, candidates []Cluster) map[string]map[string]int32 {
	out := map[string]map[string]int32{}
	for _, wl := range in.Workloads {
		for _, c := range candidates {
			n := in.Previous[wl.Key][c.Key]
			if n <= 0 || !in.Bound.Has(c.Key) {
				continue
			}
			if out[wl.Key] == nil {
				out[wl.Key] = map[string]int32{}
			}
			out[wl.Key][c.Key] = n
		}
	}
	return out
}

// holds says whether the cluster holds replicas of some workload.
func (m *capacities) holds(key string) bool {
	for _, shares := range m.held {
		if shares[key] > 0 {
			return true
		}
	}
	return false
}

// withHolders adds to fresh, the clusters a division from nothing would
// bind, those holding replicas already, so that no running replica moves
// only because another cluster now ranks higher or its own capacity
// shrank. maxClusters still bounds them, holders first: it drops the last
// ranked of fresh, and drops holders (the last ranked, their replicas
// placed again) only when lowered below their number. The result is in
// rank order.
func (m *capacities) withHolders(fresh, order []Cluster, maxC int) []Cluster {
	in := sets.New(keys(fresh)...)
	var out []Cluster
	for _, c := range order {
		if m.holds(c.Key) {
			out = append(out, c)
		}
	}
	for _, c := range order {
		if in.Has(c.Key) && !m.holds(c.Key) {
			out = append(out, c)
		}
	}
	return m.sorted(out[:min(len(out), maxC)])
}

// unbindEmptied drops the clusters bound only for what they held and left
// with nothing (a scale-down took it all), so that the result is what the
// next round, starting from it, binds again.
func unbindEmptied(res Result, fresh []Cluster) Result {
	keep := sets.New(keys(fresh)...)
	for _, shares := range res.Replicas {
		for k, n := range shares {
			if n > 0 {
				keep.Insert(k)
			}
		}
	}
	res.Bindings = slices.DeleteFunc(res.Bindings, func(k string) bool { return !keep.Has(k) })
	for _, division := range []map[string]map[string]int32{res.Replicas, res.Fits} {
		for _, shares := range division {
			maps.DeleteFunc(shares, func(k string, _ int32) bool { return !keep.Has(k) })
		}
	}
	return res
}

// split divides total over clusters (best first) of capacities caps,
// starting from kept, what each holds: a scale-up only adds to what fits,
// a scale-down only removes, and an unchanged total moves nothing while
// every cluster holds what it has. A cluster whose capacity fell below
// what it holds (another Subscription, a preemption or the cluster's own
// pods took the room, or it shrank) then gives up its excess, and only
// that, to the clusters with room left (relieve); what finds no room
// stays where it is, short of capacity. What is kept may sum past
// MaxInt32 (shares in a status another scheduler wrote, or anyone allowed
// to write subscriptions/status): the difference stays an int64, so that
// it cannot wrap.
func split(total int32, caps []int64, kept []int32, strategy appsv1alpha1.DynamicDividingStrategy) []int32 {
	var sum int64
	for _, n := range kept {
		sum += int64(n)
	}
	var out []int32
	switch {
	case int64(total) > sum:
		out = scaleUp(int32(int64(total)-sum), caps, kept, strategy) // at most total
	case int64(total) < sum:
		out = scaleDown(total, sum-int64(total), caps, kept, strategy)
	default:
		out = slices.Clone(kept)
	}
	return relieve(out, caps, strategy)
}

// relieve moves the replicas shares puts beyond their cluster's capacity
// into the room the others have left: Spread in proportion to that room,
// Binpack filling it in rank order, taken from the clusters over in
// proportion to how far over they are (ties from the cluster ranked
// last). It moves at most what the room takes, so that replicas do not
// move from one full cluster to another; afterwards either no cluster is
// over or none has room, and the next round moves nothing.
func relieve(shares []int32, caps []int64, strategy appsv1alpha1.DynamicDividingStrategy) []int32 {
	excess := make([]int64, len(shares))
	room := make([]int64, len(shares))
	var over, free int64
	for i, n := range shares {
		c := max(caps[i], 0)
		// Reversed, so that apportion's ties (to the earlier entry) fall
		// on the cluster ranked last, as in scaleDown.
		excess[len(shares)-1-i] = max(int64(n)-c, 0)
		room[i] = max(c-int64(n), 0)
		over = addSat(over, excess[len(shares)-1-i])
		free = addSat(free, room[i])
	}
	move := min(over, free)
	if move == 0 {
		return shares
	}
	// move is at most the total (shares sum to it), an int32; neither
	// apportion nor divide and fill give a cluster more than its weight
	// when they divide no more than the weights sum to: no share goes
	// below zero, none past its capacity.
	take := apportion(move, excess)
	var give []int32
	if strategy == appsv1alpha1.BinpackDividingStrategy {
		give = fill(int32(move), room, room)
	} else {
		give = divide(int32(move), room)
	}
	out := slices.Clone(shares)
	for i := range out {
		out[i] += give[i] - int32(take[len(shares)-1-i])
	}
	return out
}

// scaleUp adds by replicas where capacity is left, as a division from
// nothing would place them: Spread in proportion to the capacity left,
// Binpack filling it in rank order. What does not fit is divided in
// proportion to capacity, as from nothing.
func scaleUp(by int32, caps []int64, kept []int32, strategy appsv1alpha1.DynamicDividingStrategy) []int32 {
	room := make([]int64, len(caps))
	for i := range caps {
		room[i] = max(caps[i]-int64(kept[i]), 0)
	}
	var add []int32
	if strategy == appsv1alpha1.BinpackDividingStrategy {
		add = fill(by, room, caps)
	} else {
		add = spread(by, room, caps)
	}
	out := slices.Clone(kept)
	for i := range out {
		out[i] += add[i]
	}
	return out
}

// scaleDown removes by replicas from the clusters holding more than their
// fair share, the division of total from nothing, in proportion to how
// far over it they are; ties take from the cluster ranked last. Nothing
// is added anywhere. A cluster whose capacity shrank, or that ranks below
// a newcomer, is over its fair share and gives up replicas first.
func scaleDown(total int32, by int64, caps []int64, kept []int32, strategy appsv1alpha1.DynamicDividingStrategy) []int32 {
	var fair []int32
	if strategy == appsv1alpha1.BinpackDividingStrategy {
		fair = binpack(total, caps)
	} else {
		fair = divide(total, caps)
	}
	// Reversed, so that divide's ties (to the earlier entry) fall on the
	// cluster ranked last.
	over := make([]int64, len(kept))
	for i := range kept {
		over[len(kept)-1-i] = max(int64(kept[i])-int64(fair[i]), 0)
	}
	// The over sum to by at least (they exceed fair shares summing to total
	// by what kept exceeds total), so no cut exceeds its cluster's over:
	// each fits in an int32, and no share goes below zero.
	cut := apportion(by, over)
	out := slices.Clone(kept)
	for i := range out {
		out[i] -= int32(cut[len(kept)-1-i])
	}
	return out
}

// spread divides total in proportion to room while it fits, and what does
// not fit in proportion to weights. With room = weights it is divide.
func spread(total int32, room, weights []int64) []int32 {
	var sum int64
	for _, r := range room {
		sum += r
	}
	if int64(total) <= sum {
		return divide(total, room)
	}
	out := divide(int32(int64(total)-sum), weights)
	for i := range out {
		out[i] += int32(room[i])
	}
	return out
}

// fill takes room in order; what does not fit is divided in proportion to
// weights. A negative room (a capacity below zero) takes nothing.
func fill(total int32, room, weights []int64) []int32 {
	out := make([]int32, len(room))
	left := int64(total)
	for i, r := range room {
		take := min(max(r, 0), left)
		out[i] = int32(take)
		left -= take
	}
	if left > 0 {
		for i, n := range divide(int32(left), weights) {
			out[i] += n
		}
	}
	return out
}
