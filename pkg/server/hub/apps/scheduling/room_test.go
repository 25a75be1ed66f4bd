package scheduling

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// cpuUsage is what n one-CPU replicas take: n CPUs and n pods.
func cpuUsage(n int64) Usage {
	return Usage{corev1.ResourceCPU: n * 1000, corev1.ResourcePods: n * 1000}
}

// TestCapacity: what a cluster can take of a workload is what the
// Subscription holds there plus what the free room takes, the free room
// being the smaller of the book (allocatable minus the others' and its own
// placements) and status.available, the room of lower-priority
// Subscriptions added back when it may preempt them.
func TestCapacity(t *testing.T) {
	c := withAlloc(cluster("ns-c/c"), "8", "64Gi", "110")
	tests := []struct {
		name string
		c    Cluster
		// held and heldX are the shares of w and of another workload x of
		// the Subscription (one CPU each) on c.
		held, heldX int32
		wl          Workload
		want        int64
	}{{
		name: "allocatable alone when nothing is placed",
		c:    c,
		wl:   workload("w", 1, "1"),
		want: 8,
	}, {
		name: "the book takes off what the others placed",
		c:    withOthers(c, cpuUsage(3), nil),
		wl:   workload("w", 1, "1"),
		want: 5,
	}, {
		name: "its own held replicas count once: held plus what is left",
		c:    withOthers(c, cpuUsage(3), nil),
		held: 4,
		wl:   workload("w", 1, "1"),
		want: 5, // 4 + (8 - 3 - 4)
	}, {
		name:  "another workload of the Subscription takes its share of the room",
		c:     c,
		heldX: 2,
		wl:    workload("w", 1, "1"),
		want:  6,
	}, {
		name: "available below the book wins; it counts the held replicas already",
		c:    withAvailable(c, "2", "100"),
		held: 3,
		wl:   workload("w", 1, "1"),
		want: 5, // 3 + min(8 - 3, 2)
	}, {
		name: "the book below available wins",
		c:    withAvailable(withOthers(c, cpuUsage(6), nil), "7", "100"),
		wl:   workload("w", 1, "1"),
		want: 2,
	}, {
		name: "a resource available leaves out has none of it: nothing new, nothing pushed out",
		c:    func() Cluster { c := c; c.Available = corev1.ResourceList{}; return c }(),
		held: 2,
		wl:   workload("w", 1, "1"),
		want: 2,
	}, {
		name: "negative free: the capacity falls below what is held",
		c:    withOthers(withAlloc(c, "4", "64Gi", "110"), cpuUsage(3), nil),
		held: 3,
		wl:   workload("w", 1, "1"),
		want: 1, // 3 + (4 - 3 - 3)
	}, {
		name: "negative free rounds down",
		c:    withAlloc(c, "32", "64Gi", "110"),
		held: 2,
		wl:   workload("w", 1, "24"),
		want: 1, // 2 + floor((32 - 48) / 24)
	}, {
		name: "the room of lower-priority Subscriptions is free to one that may preempt them, on both terms",
		c:    withAvailable(withOthers(c, cpuUsage(8), cpuUsage(6)), "0", "0"),
		wl:   workload("w", 1, "1"),
		want: 6,
	}, {
		name: "pods bound when nothing else is requested",
		c:    withOthers(withAlloc(c, "8", "64Gi", "10"), Usage{corev1.ResourcePods: 7000}, nil),
		wl:   workload("w", 1, ""),
		want: 3,
	}, {
		name: "a resource allocatable leaves out: nothing new, what is held stays",
		c:    Cluster{Key: "ns-c/c", Allocatable: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}},
		held: 2,
		wl:   workload("w", 1, "1"),
		want: 2,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wls := []Workload{tc.wl, workload("x", 1, "1")}
			in := Input{Spec: dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil), Clusters: []Cluster{tc.c}, Bound: sets.New(tc.c.Key),
				Workloads: wls, Previous: split3{"w": {tc.c.Key: tc.held}, "x": {tc.c.Key: tc.heldX}}}
			m, err := measure(in, in.Clusters, dynamicDividing(in.Spec))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.caps["w"][tc.c.Key]; got != tc.want {
				t.Errorf("capacity %d, want %d", got, tc.want)
			}
		})
	}
}

// TestArithmetic: the sums and products of the book saturate at the int64
// bounds instead of wrapping (shares in force come from objects anyone
// allowed may fill with anything), and division rounds down.
func TestArithmetic(t *testing.T) {
	const m = math.MaxInt64
	tests := []struct {
		name      string
		got, want int64
	}{
		{"product past MaxInt64", mulSat(math.MaxInt32, 1e10), m},
		{"product in range", mulSat(3, 1e9), 3e9},
		{"product of a negative", mulSat(-3, 5), 0},
		{"sum past MaxInt64", addSat(m, 1), m},
		{"sum below MinInt64", addSat(math.MinInt64, -1), math.MinInt64},
		{"negative quotient rounds down", floorDiv(-16, 24), -1},
		{"exact negative quotient", floorDiv(-48, 24), -2},
		{"positive quotient rounds down", floorDiv(47, 24), 1},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}

func withOthers(c Cluster, others, preemptible Usage) Cluster {
	c.Others, c.Preemptible = others, preemptible
	return c
}

func withAvailable(c Cluster, cpu, pods string) Cluster {
	c.Available = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourcePods: resource.MustParse(pods)}
	return c
}

// TestPreemption: a Subscription that may preempt places replicas in the
// room of lower-priority ones (Cluster.Preemptible, which the book fills
// only then) and says how much it takes (Result.Preempts), once: keeping
// what it placed takes nothing new. The lower one, next scheduled, finds
// that room taken (Others) and moves what no longer fits to where room is
// left, or keeps it short of capacity; what still fits stays.
func TestPreemption(t *testing.T) {
	small, big := withAlloc(cluster("ns-a/small"), "4", "64Gi", "110"), withAlloc(cluster("ns-b/big"), "8", "64Gi", "110")
	tests := []struct {
		name     string
		spec     *appsv1alpha1.SubscriptionSpec
		clusters []Cluster
		prev     split3
		replicas int32
		want     Result
		// wantAdded and wantRemoved count the replicas that move.
		wantAdded, wantRemoved int32
		// wantFits, unless nil, is what of them takes room (Result.Fits).
		wantFits split3
	}{{
		name:     "may preempt: it takes the lower one's room, and says how much",
		spec:     dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil),
		clusters: []Cluster{withOthers(small, cpuUsage(4), cpuUsage(4))},
		replicas: 3,
		want: Result{Bindings: []string{"ns-a/small"}, Replicas: split3{"w": {"ns-a/small": 3}},
			Preempts: map[string]Usage{"ns-a/small": {corev1.ResourceCPU: 3000}}},
		wantAdded: 3,
	}, {
		name:      "may not preempt (PreemptNever, or the others of equal or higher priority: nothing preemptible): it goes where room is left",
		spec:      dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil),
		clusters:  []Cluster{withOthers(small, cpuUsage(4), nil), big},
		replicas:  3,
		want:      placed(split3{"w": {"ns-b/big": 3}}),
		wantAdded: 3,
	}, {
		name:     "may not preempt, and no room anywhere: none placed, waiting for room",
		spec:     dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil),
		clusters: []Cluster{withOthers(small, cpuUsage(4), nil)},
		replicas: 3,
		want: Result{Bindings: []string{}, Replicas: split3{"w": {}}, Short: true,
			Warnings: []string{"w asks for 3 replicas but none of the 1 clusters it may use has room for one: none is placed until room frees"}},
	}, {
		name:     "keeping what it placed in their room preempts nothing more",
		spec:     dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil),
		clusters: []Cluster{withOthers(small, cpuUsage(4), cpuUsage(4))},
		prev:     split3{"w": {"ns-a/small": 3}},
		replicas: 3,
		want:     placed(split3{"w": {"ns-a/small": 3}}),
	}, {
		name:        "the lower one next: what no longer fits moves to room, what fits stays",
		spec:        dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil),
		clusters:    []Cluster{withOthers(small, cpuUsage(3), nil), big},
		prev:        split3{"w": {"ns-a/small": 4, "ns-b/big": 0}},
		replicas:    4,
		want:        placed(split3{"w": {"ns-a/small": 1, "ns-b/big": 3}}),
		wantAdded:   3,
		wantRemoved: 3,
	}, {
		name:     "the lower one next, with no room elsewhere: it stays short of capacity",
		spec:     dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil),
		clusters: []Cluster{withOthers(small, cpuUsage(3), nil)},
		prev:     split3{"w": {"ns-a/small": 4}},
		replicas: 4,
		want: Result{Bindings: []string{"ns-a/small"}, Replicas: split3{"w": {"ns-a/small": 4}}, Short: true,
			Warnings: []string{"w asks for 4 replicas but the 1 chosen clusters hold 1 by their allocatable resources: the rest are spread over them anyway"}},
		// The 3 short of capacity take no room: they push nobody out.
		wantFits: split3{"w": {"ns-a/small": 1}},
	}, {
		name:     "capacity at or above what is held moves nothing, whatever the others placed",
		spec:     dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil),
		clusters: []Cluster{withOthers(small, cpuUsage(2), nil), big},
		prev:     split3{"w": {"ns-a/small": 2, "ns-b/big": 2}},
		replicas: 4,
		want:     placed(split3{"w": {"ns-a/small": 2, "ns-b/big": 2}}),
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Spec: tc.spec, Clusters: tc.clusters, Bound: boundOf(tc.prev), Workloads: []Workload{workload("w", tc.replicas, "1")}, Previous: tc.prev}
			checkIncremental(t, in, tc.want, tc.wantAdded, tc.wantRemoved, nil)
			if tc.wantFits == nil {
				return
			}
			got, _ := Schedule(in)
			if diff := cmp.Diff(tc.wantFits, got.Fits); diff != "" {
				t.Errorf("fits (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantFits, Fitting(Input{Clusters: tc.clusters, Bound: boundOf(tc.want.Replicas), Workloads: in.Workloads, Previous: tc.want.Replicas})); diff != "" {
				t.Errorf("fitting of the division in force (-want +got):\n%s", diff)
			}
		})
	}
}

// A Subscription asking for absurd amounts cannot saturate a cluster's
// ledger: when it leaves, what the others use is still counted.
func TestHugeUsageLeavesTheOthersCounted(t *testing.T) {
	small, huge := Usage{}, Usage{}
	small.AddReplicas(1, corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")})
	huge.AddReplicas(math.MaxInt32, corev1.ResourceList{corev1.ResourceCPU: *resource.NewQuantity(math.MaxInt64/1000, resource.DecimalSI)})
	total := Usage{}
	total.Add(small)
	total.Add(huge)
	total.Sub(huge)
	if got, want := total[corev1.ResourceCPU], small[corev1.ResourceCPU]; got != want {
		t.Errorf("cpu after the huge one left = %d milli, want %d", got, want)
	}
}
