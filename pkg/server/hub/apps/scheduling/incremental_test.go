package scheduling

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// cpus is a cluster holding n one-CPU replicas.
func cpus(key, n string) Cluster {
	return withAlloc(cluster(key), n, "64Gi", "110")
}

type split3 = map[string]map[string]int32

// moves counts, over every workload, the replicas added to and removed
// from clusters between two divisions.
func moves(from, to split3) (added, removed int32) {
	for wl := range sets.KeySet(from).Union(sets.KeySet(to)) {
		for c := range sets.KeySet(from[wl]).Union(sets.KeySet(to[wl])) {
			if d := to[wl][c] - from[wl][c]; d > 0 {
				added += d
			} else {
				removed -= d
			}
		}
	}
	return added, removed
}

// placed is the Result binding the clusters that replicas gives shares
// to (a share of 0 too), in order.
func placed(replicas split3) Result {
	bound := sets.New[string]()
	for _, shares := range replicas {
		bound.Insert(slices.Collect(maps.Keys(shares))...)
	}
	return Result{Bindings: sets.List(bound), Replicas: replicas}
}

// boundOf is the clusters prev gives shares to.
func boundOf(prev split3) sets.Set[string] {
	return sets.New(placed(prev).Bindings...)
}

// checkIncremental schedules in, a round starting from the division in
// force (in.Previous), and checks that it gives want, adding wantAdded
// replicas and removing wantRemoved; that from nothing the same round
// gives fresh (unless nil); and that the result is a fixed point: the next
// round, starting from it with nothing else changed, moves nothing (nor
// preempts anything: a preemption is the decision that placed more).
func checkIncremental(t *testing.T, in Input, want Result, wantAdded, wantRemoved int32, fresh split3) {
	t.Helper()
	got, err := Schedule(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty(), ignoreFits); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	checkFits(t, got)
	if added, removed := moves(in.Previous, got.Replicas); added != wantAdded || removed != wantRemoved {
		t.Errorf("%d replicas added and %d removed, want %d and %d", added, removed, wantAdded, wantRemoved)
	}
	if fresh != nil {
		fromNothing := in
		fromNothing.Previous = nil
		gotFresh, err := Schedule(fromNothing)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(fresh, gotFresh.Replicas, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("from nothing (-want +got):\n%s", diff)
		}
	}
	again, err := Schedule(Input{Spec: in.Spec, Clusters: in.Clusters, Bound: sets.New(got.Bindings...), Workloads: in.Workloads, Previous: got.Replicas})
	if err != nil {
		t.Fatal(err)
	}
	next := got
	next.Preempts = nil
	if diff := cmp.Diff(next, again, cmpopts.EquateEmpty(), ignoreFits); diff != "" {
		t.Errorf("next round (-this +next):\n%s", diff)
	}
}

// checkFits checks that what takes room in res is its replicas, but for
// those short of capacity: a part of the replicas, less somewhere only
// when res is Short.
func checkFits(t *testing.T, res Result) {
	t.Helper()
	less := false
	for wl, shares := range res.Replicas {
		for c, n := range shares {
			f, ok := res.Fits[wl][c]
			if !ok || f > n || f < 0 {
				t.Errorf("%s on %s: %d replicas, %d (%v) of them fit", wl, c, n, f, ok)
			}
			less = less || f < n
		}
	}
	if less && !res.Short {
		t.Error("some replicas do not fit, and the result is not Short")
	}
}

// TestDynamicIncremental schedules a round with the division in force
// (prev, on clusters bound before) and checks that only the difference
// moves. Each case also says what today's division from nothing (fresh)
// gives for the same round: where it differs from want, a scheduler that
// recomputed from capacity would fail the case.
func TestDynamicIncremental(t *testing.T) {
	spread := dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil)
	binpackSpec := dyn(appsv1alpha1.BinpackDividingStrategy, nil, nil)
	a10, b3, c1 := cpus("ns-a/a", "10"), cpus("ns-b/b", "3"), cpus("ns-c/c", "1")
	a4, b4, c4 := cpus("ns-a/a", "4"), cpus("ns-b/b", "4"), cpus("ns-c/c", "4")
	tests := []struct {
		name     string
		spec     *appsv1alpha1.SubscriptionSpec
		clusters []Cluster
		prev     split3
		// bound defaults to the clusters of prev.
		bound []string
		wls   []Workload
		want  Result
		// wantAdded and wantRemoved count the replicas that move.
		wantAdded, wantRemoved int32
		fresh                  split3
	}{{
		name:      "spread 6 to 8: the 2 new replicas are added, the 6 running stay",
		spec:      spread,
		clusters:  []Cluster{a10, b3, c1},
		prev:      split3{"w": {"ns-a/a": 4, "ns-b/b": 1, "ns-c/c": 1}}, // today's 6
		wls:       []Workload{workload("w", 8, "1")},
		want:      placed(split3{"w": {"ns-a/a": 6, "ns-b/b": 1, "ns-c/c": 1}}),
		wantAdded: 2,
		fresh:     split3{"w": {"ns-a/a": 6, "ns-b/b": 2, "ns-c/c": 0}}, // moves c's replica to b
	}, {
		name:        "spread 8 to 6: 2 removed from the clusters over their fair share, nothing added",
		spec:        spread,
		clusters:    []Cluster{a10, b3, c1},
		prev:        split3{"w": {"ns-a/a": 6, "ns-b/b": 2, "ns-c/c": 0}}, // today's 8
		wls:         []Workload{workload("w", 6, "1")},
		want:        placed(split3{"w": {"ns-a/a": 5, "ns-b/b": 1, "ns-c/c": 0}}), // fair 4,1,1: a and b 2 and 1 over
		wantRemoved: 2,
		fresh:       split3{"w": {"ns-a/a": 4, "ns-b/b": 1, "ns-c/c": 1}}, // starts one on c
	}, {
		name:     "a share recorded on a cluster that is not bound (its Base is gone) does not count",
		spec:     spread,
		clusters: []Cluster{cpus("ns-a/a", "8"), b4, c4},
		prev:     split3{"w": {"ns-a/a": 1, "ns-b/b": 3, "ns-c/c": 2}},
		bound:    []string{"ns-a/a", "ns-b/b"},
		wls:      []Workload{workload("w", 6, "1")},
		// c's 2 are placed again by capacity left: a 7, b 1, c 4.
		want:        placed(split3{"w": {"ns-a/a": 2, "ns-b/b": 3, "ns-c/c": 1}}),
		wantAdded:   1, // a gets 1 of c's 2
		wantRemoved: 1,
		fresh:       split3{"w": {"ns-a/a": 3, "ns-b/b": 2, "ns-c/c": 1}},
	}, {
		name:     "capacity growth on one cluster moves nothing that runs",
		spec:     spread,
		clusters: []Cluster{cpus("ns-a/a", "40"), b4, c4},
		prev:     split3{"w": {"ns-a/a": 2, "ns-b/b": 2, "ns-c/c": 2}},
		wls:      []Workload{workload("w", 6, "1")},
		want:     placed(split3{"w": {"ns-a/a": 2, "ns-b/b": 2, "ns-c/c": 2}}),
		fresh:    split3{"w": {"ns-a/a": 5, "ns-b/b": 1, "ns-c/c": 0}},
	}, {
		name:     "capacity growth: the next scale-up goes where capacity is left",
		spec:     spread,
		clusters: []Cluster{cpus("ns-a/a", "40"), b4, c4},
		prev:     split3{"w": {"ns-a/a": 2, "ns-b/b": 2, "ns-c/c": 2}},
		wls:      []Workload{workload("w", 9, "1")},
		// room a 38, b 2, c 2: 3 by room.
		want:      placed(split3{"w": {"ns-a/a": 5, "ns-b/b": 2, "ns-c/c": 2}}),
		wantAdded: 3,
		fresh:     split3{"w": {"ns-a/a": 7, "ns-b/b": 1, "ns-c/c": 1}},
	}, {
		name:     "a cluster whose capacity shrank below what it holds gives up only the excess, to the room left",
		spec:     spread,
		clusters: []Cluster{a4, cpus("ns-b/b", "1"), c4},
		prev:     split3{"w": {"ns-a/a": 2, "ns-b/b": 2, "ns-c/c": 2}},
		wls:      []Workload{workload("w", 6, "1")},
		// b's 1 over goes to a (room a 2, c 2: the tie to the first).
		want:        placed(split3{"w": {"ns-a/a": 3, "ns-b/b": 1, "ns-c/c": 2}}),
		wantAdded:   1,
		wantRemoved: 1,
		fresh:       split3{"w": {"ns-a/a": 3, "ns-b/b": 0, "ns-c/c": 3}},
	}, {
		name:     "a cluster over its capacity keeps what no other cluster has room for",
		spec:     spread,
		clusters: []Cluster{cpus("ns-a/a", "3"), cpus("ns-b/b", "1")},
		prev:     split3{"w": {"ns-a/a": 2, "ns-b/b": 3}},
		wls:      []Workload{workload("w", 5, "1")},
		// b is 2 over, a has room for 1: 1 moves, 1 stays short.
		want: Result{Bindings: []string{"ns-a/a", "ns-b/b"}, Replicas: split3{"w": {"ns-a/a": 3, "ns-b/b": 2}}, Short: true,
			Warnings: []string{"w asks for 5 replicas but the 2 chosen clusters hold 4 by their allocatable resources: the rest are spread over them anyway"}},
		wantAdded:   1,
		wantRemoved: 1,
	}, {
		name:        "a cluster whose capacity shrank is the first to give up replicas on a scale-down",
		spec:        spread,
		clusters:    []Cluster{a4, cpus("ns-b/b", "1"), c4},
		prev:        split3{"w": {"ns-a/a": 2, "ns-b/b": 2, "ns-c/c": 2}},
		wls:         []Workload{workload("w", 4, "1")},
		want:        placed(split3{"w": {"ns-a/a": 2, "ns-b/b": 0, "ns-c/c": 2}}),
		wantRemoved: 2,
	}, {
		name:     "a cluster that shrank to nothing keeps what it holds, still bound",
		spec:     spread,
		clusters: []Cluster{a4, {Key: "ns-b/b"}, c4},
		prev:     split3{"w": {"ns-a/a": 2, "ns-b/b": 2, "ns-c/c": 2}},
		wls:      []Workload{workload("w", 6, "1")},
		want:     placed(split3{"w": {"ns-a/a": 2, "ns-b/b": 2, "ns-c/c": 2}}),
		fresh:    split3{"w": {"ns-a/a": 3, "ns-c/c": 3}},
	}, {
		name:     "spread: a new cluster joins; nothing moves until the replicas change",
		spec:     spread,
		clusters: []Cluster{a4, b4, cpus("ns-d/d", "8")},
		prev:     split3{"w": {"ns-a/a": 3, "ns-b/b": 3}},
		wls:      []Workload{workload("w", 6, "1")},
		want:     placed(split3{"w": {"ns-a/a": 3, "ns-b/b": 3, "ns-d/d": 0}}),
		fresh:    split3{"w": {"ns-a/a": 2, "ns-b/b": 1, "ns-d/d": 3}},
	}, {
		name: "a workload new to the Subscription is divided by the room the held one leaves, which stays as it is",
		spec: spread,
		clusters: []Cluster{
			withAlloc(cluster("ns-a/a"), "10", "10Gi", "110"), withAlloc(cluster("ns-b/b"), "3", "3Gi", "110"), withAlloc(cluster("ns-c/c"), "1", "1Gi", "110")},
		prev: split3{"w": {"ns-a/a": 2, "ns-b/b": 2, "ns-c/c": 1}},
		wls:  []Workload{workload("w", 5, "1"), workload("x", 6, "1")},
		want: placed(split3{
			"w": {"ns-a/a": 2, "ns-b/b": 2, "ns-c/c": 1},
			"x": {"ns-a/a": 5, "ns-b/b": 1, "ns-c/c": 0}, // by the room w leaves: a 8, b 1, c 0
		}),
		wantAdded: 6,
		fresh:     split3{"w": {"ns-a/a": 4, "ns-b/b": 1, "ns-c/c": 0}, "x": {"ns-a/a": 4, "ns-b/b": 1, "ns-c/c": 1}},
	}, {
		name:      "binpack 6 to 8: a new best cluster gets the 2 new replicas, the 6 running stay",
		spec:      binpackSpec,
		clusters:  []Cluster{cpus("ns-a/a", "5"), cpus("ns-c/c", "4"), cpus("ns-p/p", "10")},
		prev:      split3{"w": {"ns-a/a": 3, "ns-c/c": 3}},
		wls:       []Workload{workload("w", 8, "1")},
		want:      placed(split3{"w": {"ns-a/a": 3, "ns-c/c": 3, "ns-p/p": 2}}),
		wantAdded: 2,
		fresh:     split3{"w": {"ns-p/p": 8}},
	}, {
		name:     "binpack 6 to 8: the room left fills in rank order",
		spec:     binpackSpec,
		clusters: []Cluster{cpus("ns-a/a", "5"), cpus("ns-b/b", "3"), cpus("ns-c/c", "4")},
		prev:     split3{"w": {"ns-a/a": 4, "ns-b/b": 2}}, // before c joined
		wls:      []Workload{workload("w", 8, "1")},
		// rank a 5, c 4, b 3: a's 1 left, then c.
		want:      placed(split3{"w": {"ns-a/a": 5, "ns-b/b": 2, "ns-c/c": 1}}),
		wantAdded: 2,
		fresh:     split3{"w": {"ns-a/a": 5, "ns-c/c": 3}},
	}, {
		name:     "binpack 8 to 6: removed from the last ranked over their fair share, nothing added",
		spec:     binpackSpec,
		clusters: []Cluster{cpus("ns-a/a", "5"), cpus("ns-c/c", "4"), cpus("ns-p/p", "10")},
		prev:     split3{"w": {"ns-a/a": 3, "ns-c/c": 3, "ns-p/p": 2}},
		wls:      []Workload{workload("w", 6, "1")},
		// fair p 6: a and c 3 over each, the tie taken from c, ranked last.
		want:        placed(split3{"w": {"ns-a/a": 2, "ns-c/c": 2, "ns-p/p": 2}}),
		wantRemoved: 2,
		fresh:       split3{"w": {"ns-p/p": 6}},
	}, {
		name:     "binpack: a cluster a scale-down empties is unbound",
		spec:     binpackSpec,
		clusters: []Cluster{cpus("ns-a/a", "2"), cpus("ns-c/c", "1"), cpus("ns-p/p", "3")},
		prev:     split3{"w": {"ns-a/a": 1, "ns-c/c": 2, "ns-p/p": 2}},
		wls:      []Workload{workload("w", 3, "1")},
		// fair p 3: a 1 and c 2 over, 2 taken in proportion.
		want:        placed(split3{"w": {"ns-c/c": 1, "ns-p/p": 2}}),
		wantRemoved: 2,
		fresh:       split3{"w": {"ns-p/p": 3}},
	}, {
		name:        "binpack: a cluster leaving has its replicas filled in rank order",
		spec:        binpackSpec,
		clusters:    []Cluster{cpus("ns-a/a", "5"), cpus("ns-p/p", "10")},
		prev:        split3{"w": {"ns-a/a": 3, "ns-c/c": 3}},
		wls:         []Workload{workload("w", 6, "1")},
		want:        placed(split3{"w": {"ns-a/a": 3, "ns-p/p": 3}}),
		wantAdded:   3,
		wantRemoved: 3,
		fresh:       split3{"w": {"ns-p/p": 6}},
	}, {
		name:     "replicas that do not fit: the difference is still added, in proportion to capacity, with a warning",
		spec:     spread,
		clusters: []Cluster{cpus("ns-a/a", "2"), cpus("ns-b/b", "1")},
		prev:     split3{"w": {"ns-b/b": 2}}, // b holds more than it can now
		wls:      []Workload{workload("w", 6, "1")},
		// room a 2 (b none), then 2 more by capacity 2:1.
		want: Result{Bindings: []string{"ns-a/a", "ns-b/b"}, Replicas: split3{"w": {"ns-a/a": 3, "ns-b/b": 3}},
			Warnings: []string{"w asks for 6 replicas but the 2 chosen clusters hold 3 by their allocatable resources: the rest are spread over them anyway"}, Short: true},
		wantAdded: 4,
		fresh:     split3{"w": {"ns-a/a": 4, "ns-b/b": 2}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bound := boundOf(tc.prev)
			if tc.bound != nil {
				bound = sets.New(tc.bound...)
			}
			checkIncremental(t, Input{Spec: tc.spec, Clusters: tc.clusters, Bound: bound, Workloads: tc.wls, Previous: tc.prev},
				tc.want, tc.wantAdded, tc.wantRemoved, tc.fresh)
		})
	}
}

// TestDynamicIncrementalClusterLeaves: a cluster leaving the division
// under spread, in each way it can, loses its replicas, placed again where
// capacity is left; the rest stay. Here c's 2 go by the room of a (7) and
// b (1), where today's division from nothing would move a's and b's too.
func TestDynamicIncrementalClusterLeaves(t *testing.T) {
	a8, b4, c4 := cpus("ns-a/a", "8"), cpus("ns-b/b", "4"), cpus("ns-c/c", "4")
	prev := split3{"w": {"ns-a/a": 1, "ns-b/b": 3, "ns-c/c": 2}}
	tests := []struct {
		name     string
		spec     *appsv1alpha1.SubscriptionSpec
		clusters []Cluster
	}{
		{"tainted NoExecute", dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil), []Cluster{a8, b4, withTaint(c4, "gone", corev1.TaintEffectNoExecute)}},
		{"deleted", dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil), []Cluster{a8, b4}},
		{"maxClusters lowered below the holders drops the last ranked", dyn(appsv1alpha1.SpreadDividingStrategy, nil, ptr.To[int32](2)), []Cluster{a8, b4, c4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Spec: tc.spec, Clusters: tc.clusters, Bound: boundOf(prev), Workloads: []Workload{workload("w", 6, "1")}, Previous: prev}
			checkIncremental(t, in, placed(split3{"w": {"ns-a/a": 3, "ns-b/b": 3}}), 2, 2, split3{"w": {"ns-a/a": 4, "ns-b/b": 2}})
		})
	}
}

// TestDynamicIncrementalRounds runs the acceptance scenario round after
// round, each starting from the last: 6, then 8 (only 2 placements
// change), then back to 6 (2 removed, nothing else moves).
func TestDynamicIncrementalRounds(t *testing.T) {
	clusters := []Cluster{cpus("ns-a/a", "10"), cpus("ns-b/b", "3"), cpus("ns-c/c", "1")}
	for _, strategy := range []appsv1alpha1.DynamicDividingStrategy{appsv1alpha1.SpreadDividingStrategy, appsv1alpha1.BinpackDividingStrategy} {
		t.Run(string(strategy), func(t *testing.T) {
			spec := dyn(strategy, nil, nil)
			var prev Result
			for i, r := range []struct {
				replicas               int32
				wantAdded, wantRemoved int32
			}{{6, 6, 0}, {8, 2, 0}, {6, 0, 2}, {6, 0, 0}, {13, 7, 0}, {1, 0, 12}} {
				got, err := Schedule(Input{Spec: spec, Clusters: clusters, Bound: sets.New(prev.Bindings...),
					Workloads: []Workload{workload("w", r.replicas, "1")}, Previous: prev.Replicas})
				if err != nil {
					t.Fatal(err)
				}
				if added, removed := moves(prev.Replicas, got.Replicas); added != r.wantAdded || removed != r.wantRemoved {
					t.Errorf("round %d (%d replicas): %v to %v adds %d and removes %d, want %d and %d",
						i, r.replicas, prev.Replicas["w"], got.Replicas["w"], added, removed, r.wantAdded, r.wantRemoved)
				}
				var sum int32
				for _, n := range got.Replicas["w"] {
					sum += n
				}
				if sum != r.replicas {
					t.Errorf("round %d: %v sums to %d, want %d", i, got.Replicas["w"], sum, r.replicas)
				}
				prev = got
			}
		})
	}
}

// TestSplit checks split over a grid of small inputs, capacities below
// zero and below what is held included: the total is always divided
// whole; a scale-up or an unchanged total takes nothing that fits its
// cluster, a scale-down adds nothing beyond a cluster's capacity; what is
// added is at most the scale-up and the excess over capacity that room
// takes; afterwards no cluster is over its capacity while another has
// room, and the next round with the same input moves nothing; from
// nothing it is today's division.
func TestSplit(t *testing.T) {
	caps := [][]int64{{0, 0, 0}, {4, 2, 1}, {1, 3, 0}, {5, 5, 5}, {0, 7, 2}, {-2, 3, 1}, {-1, -1, 4}}
	var kepts [][]int32
	for x := range int32(4) {
		for y := range int32(4) {
			for z := range int32(3) {
				kepts = append(kepts, []int32{x, y, z})
			}
		}
	}
	for _, strategy := range []appsv1alpha1.DynamicDividingStrategy{appsv1alpha1.SpreadDividingStrategy, appsv1alpha1.BinpackDividingStrategy} {
		for _, cs := range caps {
			for _, kept := range kepts {
				var held, room, excess int64
				for i, n := range kept {
					held += int64(n)
					room += max(cs[i]-int64(n), 0)
					excess += max(int64(n)-max(cs[i], 0), 0)
				}
				for total := range int32(14) {
					got := split(total, cs, kept, strategy)
					checkSplit(t, fmt.Sprintf("%s split(%d, %v, %v) = %v", strategy, total, cs, kept, got), total, cs, kept, got, held, room, excess)
					if again := split(total, cs, got, strategy); !slices.Equal(again, got) {
						t.Errorf("%s split(%d, %v, %v) = %v, and from it %v: the next round moved replicas", strategy, total, cs, kept, got, again)
					}
				}
			}
		}
		for _, cs := range caps {
			for total := range int32(14) {
				want := divide(total, cs)
				if strategy == appsv1alpha1.BinpackDividingStrategy {
					want = binpack(total, cs)
				}
				if got := split(total, cs, make([]int32, len(cs)), strategy); !slices.Equal(got, want) {
					t.Errorf("%s split(%d, %v) from nothing = %v, want today's %v", strategy, total, cs, got, want)
				}
			}
		}
	}
}

// checkSplit checks one split (what is the result got of) against the
// properties TestSplit lists.
func checkSplit(t *testing.T, what string, total int32, caps []int64, kept, got []int32, held, room, excess int64) {
	t.Helper()
	var sum, added int64
	over, roomLeft := false, false
	for i, n := range got {
		sum += int64(n)
		added += max(int64(n)-int64(kept[i]), 0)
		c := max(caps[i], 0)
		fitting := min(int64(kept[i]), c)
		switch {
		case int64(total) >= held && int64(n) < fitting:
			t.Errorf("%s: cluster %d lost replicas that fit it", what, i)
		case int64(total) <= held && int64(n) > max(int64(kept[i]), c):
			t.Errorf("%s: a scale-down added to cluster %d beyond its capacity", what, i)
		case int64(total) > held && int64(total)-held <= room && int64(n) > max(c, int64(kept[i])):
			t.Errorf("%s: cluster %d given more than its room while the rest fit", what, i)
		}
		over = over || int64(n) > c
		roomLeft = roomLeft || int64(n) < c
	}
	if sum != int64(total) {
		t.Errorf("%s sums to %d", what, sum)
	}
	if added > max(int64(total)-held, 0)+excess {
		t.Errorf("%s adds %d replicas: more than the scale-up (%d) and the excess over capacity (%d)", what, added, max(int64(total)-held, 0), excess)
	}
	if over && roomLeft {
		t.Errorf("%s leaves a cluster over its capacity beside one with room", what)
	}
}

// TestDynamicHugePrevious: shares in force summing past MaxInt32 (in a
// status another scheduler wrote, or anyone allowed to write
// subscriptions/status) still give the workload exactly its replicas, as
// a scale-down from them: worked out in int32, their difference from the
// total would wrap, and every share would be kept.
func TestDynamicHugePrevious(t *testing.T) {
	const huge = math.MaxInt32
	clusters := []Cluster{cpus("ns-a/a", "4"), cpus("ns-b/b", "4"), cpus("ns-c/c", "2")}
	tests := []struct {
		name     string
		strategy appsv1alpha1.DynamicDividingStrategy
		prev     map[string]int32
		want     map[string]int32
	}{{
		name:     "spread: two shares of MaxInt32 come down to the fair shares, c's capacity unused",
		strategy: appsv1alpha1.SpreadDividingStrategy,
		prev:     map[string]int32{"ns-a/a": huge, "ns-b/b": huge},
		want:     map[string]int32{"ns-a/a": 3, "ns-b/b": 3, "ns-c/c": 0},
	}, {
		name:     "spread: three shares of MaxInt32, the fair shares by capacity 4:4:2",
		strategy: appsv1alpha1.SpreadDividingStrategy,
		prev:     map[string]int32{"ns-a/a": huge, "ns-b/b": huge, "ns-c/c": huge},
		want:     map[string]int32{"ns-a/a": 3, "ns-b/b": 2, "ns-c/c": 1},
	}, {
		name:     "spread: the huge shares are cut, the small one kept",
		strategy: appsv1alpha1.SpreadDividingStrategy,
		prev:     map[string]int32{"ns-a/a": huge, "ns-b/b": huge, "ns-c/c": 1},
		want:     map[string]int32{"ns-a/a": 3, "ns-b/b": 2, "ns-c/c": 1},
	}, {
		name:     "binpack: two shares of MaxInt32 come down to a filled and the rest",
		strategy: appsv1alpha1.BinpackDividingStrategy,
		prev:     map[string]int32{"ns-a/a": huge, "ns-b/b": huge},
		want:     map[string]int32{"ns-a/a": 4, "ns-b/b": 2},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Schedule(Input{Spec: dyn(tc.strategy, nil, nil), Clusters: clusters, Bound: sets.KeySet(tc.prev),
				Workloads: []Workload{workload("w", 6, "1")}, Previous: split3{"w": tc.prev}})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.Replicas["w"]); diff != "" {
				t.Errorf("replicas (-want +got):\n%s", diff)
			}
		})
	}
}

// TestApportionLarge: totals and weights whose products overflow int64 are
// divided exactly (the products are worked out in 128 bits), and weights
// summing past MaxInt64 still divide the total whole, in proportion.
func TestApportionLarge(t *testing.T) {
	const m = math.MaxInt64
	tests := []struct {
		name    string
		total   int64
		weights []int64
		want    []int64
	}{
		{"products of 2^80", 1 << 40, []int64{1 << 40, 3 << 40}, []int64{1 << 38, 3 << 38}},
		{"MaxInt64 halved, the odd one to the first", m, []int64{1, 1}, []int64{m/2 + 1, m / 2}},
		{"weights summing past MaxInt64", 10, []int64{m, m, m}, []int64{4, 3, 3}},
		{"weights summing past MaxInt64 beside a small one", 6, []int64{m, m, 3}, []int64{3, 3, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, apportion(tc.total, tc.weights)); diff != "" {
				t.Errorf("apportion(%d, %v) (-want +got):\n%s", tc.total, tc.weights, diff)
			}
		})
	}
}

// TestStaticIgnoresPrevious: static dividing is a function of the
// weights alone.
func TestStaticIgnoresPrevious(t *testing.T) {
	spec := static(appsv1alpha1.Subscriber{ClusterAffinity: sel("zone", "1"), Weight: 1}, appsv1alpha1.Subscriber{ClusterAffinity: sel("zone", "2"), Weight: 2})
	clusters := []Cluster{cluster("ns-a/a", "zone", "1"), cluster("ns-b/b", "zone", "2")}
	got, err := Schedule(Input{Spec: spec, Clusters: clusters, Bound: sets.New("ns-a/a", "ns-b/b"), Workloads: []Workload{workload("w", 9, "")},
		Previous: split3{"w": {"ns-a/a": 7, "ns-b/b": 0}}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(split3{"w": {"ns-a/a": 3, "ns-b/b": 6}}, got.Replicas); diff != "" {
		t.Errorf("replicas (-want +got):\n%s", diff)
	}
}
