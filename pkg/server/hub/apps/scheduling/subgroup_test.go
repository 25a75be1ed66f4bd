package scheduling

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// region is a subscriber selecting region=r, picking minClusters of it.
func region(r string, minClusters, weight int32) appsv1alpha1.Subscriber {
	return appsv1alpha1.Subscriber{ClusterAffinity: sel("region", r), Weight: weight,
		SubGroupStrategy: &appsv1alpha1.SubGroupStrategy{MinClusters: minClusters}}
}

// bySubGroups turns spec's subscribers into subgroups.
func bySubGroups(spec *appsv1alpha1.SubscriptionSpec, subs ...appsv1alpha1.Subscriber) *appsv1alpha1.SubscriptionSpec {
	spec.SchedulingBySubGroup = ptr.To(true)
	spec.Subscribers = subs
	return spec
}

func replication() *appsv1alpha1.SubscriptionSpec {
	return &appsv1alpha1.SubscriptionSpec{SchedulingStrategy: appsv1alpha1.ReplicaSchedulingStrategy}
}

func withLabel(c Cluster, k, v string) Cluster {
	c.Labels = map[string]string{"region": c.Labels["region"], k: v}
	return c
}

// notEnough is the warning for subscriber i's subgroup holding fewer than minClusters.
func notEnough(i, minClusters, holds string) string {
	return "spec.subscribers[" + i + "].subGroupStrategy.minClusters is " + minClusters + " but its subgroup (the clusters matching spec.subscribers[" + i +
		"].clusterAffinity whose taints are tolerated) holds only " + holds + ": the subgroup is bound whole, as upstream Clusternet does; add matching clusters or lower minClusters"
}

func ignored(i string) string {
	return "spec.subscribers[" + i + "].subGroupStrategy is ignored: spec.schedulingBySubGroup is not true: set it to true to bind subGroupStrategy.minClusters of each subscriber's clusters, or remove subGroupStrategy"
}

// The acceptance layout: two clusters in the east, one (sometimes two) in
// the west. Capacities are in CPUs for one-CPU replicas: e2 holds the most.
var (
	e1 = withAlloc(cluster("ns-e1/e1", "region", "east"), "4", "64Gi", "110")
	e2 = withAlloc(cluster("ns-e2/e2", "region", "east"), "8", "64Gi", "110")
	w1 = withAlloc(cluster("ns-w1/w1", "region", "west"), "4", "64Gi", "110")
	w2 = withAlloc(cluster("ns-w2/w2", "region", "west"), "2", "64Gi", "110")
)

func TestScheduleBySubGroup(t *testing.T) {
	six := []Workload{workload("w", 6, "1")}
	tests := []struct {
		name     string
		spec     *appsv1alpha1.SubscriptionSpec
		clusters []Cluster
		bound    []string
		wls      []Workload
		want     Result
		wantErr  string
		// subGroupErr: the error is a *SubGroupError (its own condition reason).
		subGroupErr bool
	}{{
		name:     "replication: one cluster of each region, the first by key, each with the whole feed",
		spec:     bySubGroups(replication(), region("east", 1, 0), region("west", 1, 0)),
		clusters: []Cluster{e1, e2, w1},
		wls:      six,
		want:     Result{Bindings: []string{"ns-e1/e1", "ns-w1/w1"}},
	}, {
		name:     "replication: minClusters per subgroup",
		spec:     bySubGroups(replication(), region("east", 2, 0), region("west", 1, 0)),
		clusters: []Cluster{e1, e2, w1, w2},
		want:     Result{Bindings: []string{"ns-e1/e1", "ns-e2/e2", "ns-w1/w1"}},
	}, {
		name:     "replication: minClusters 0 binds none of its subgroup",
		spec:     bySubGroups(replication(), region("east", 0, 0), region("west", 1, 0)),
		clusters: []Cluster{e1, e2, w1},
		want:     Result{Bindings: []string{"ns-w1/w1"}},
	}, {
		name:     "static: weights apply among the picked clusters only",
		spec:     bySubGroups(static(), region("east", 1, 2), region("west", 1, 1)),
		clusters: []Cluster{e1, e2, w1},
		wls:      six,
		want: Result{Bindings: []string{"ns-e1/e1", "ns-w1/w1"}, Replicas: map[string]map[string]int32{
			"w": {"ns-e1/e1": 4, "ns-w1/w1": 2},
		}},
	}, {
		name: "static: a cluster in two subgroups is bound once, with the first matching subscriber's weight",
		spec: bySubGroups(static(),
			appsv1alpha1.Subscriber{ClusterAffinity: sel("tier", "gold"), Weight: 1, SubGroupStrategy: &appsv1alpha1.SubGroupStrategy{MinClusters: 1}},
			region("east", 2, 3)),
		clusters: []Cluster{withLabel(e1, "tier", "gold"), e2, w1},
		wls:      []Workload{workload("w", 8, "")},
		want: Result{Bindings: []string{"ns-e1/e1", "ns-e2/e2"}, Replicas: map[string]map[string]int32{
			"w": {"ns-e1/e1": 2, "ns-e2/e2": 6},
		}},
	}, {
		name:     "dynamic spread: each region's largest, replicas by capacity",
		spec:     bySubGroups(dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil), region("east", 1, 0), region("west", 1, 0)),
		clusters: []Cluster{e1, e2, w1, w2},
		wls:      six, // e2 holds 8, w1 4
		want: Result{Bindings: []string{"ns-e2/e2", "ns-w1/w1"}, Replicas: map[string]map[string]int32{
			"w": {"ns-e2/e2": 4, "ns-w1/w1": 2},
		}},
	}, {
		name:     "dynamic binpack: the picks are filled in rank order and all stay bound",
		spec:     bySubGroups(dyn(appsv1alpha1.BinpackDividingStrategy, nil, nil), region("east", 1, 0), region("west", 1, 0)),
		clusters: []Cluster{e1, e2, w1, w2},
		wls:      six,
		want: Result{Bindings: []string{"ns-e2/e2", "ns-w1/w1"}, Replicas: map[string]map[string]int32{
			"w": {"ns-e2/e2": 6, "ns-w1/w1": 0},
		}},
	}, {
		name: "dynamic: preferredClusters outrank capacity within a subgroup",
		spec: bySubGroups(dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil, *sel("zone", "a")),
			region("east", 1, 0), region("west", 1, 0)),
		clusters: []Cluster{withLabel(e1, "zone", "a"), e2, w1},
		wls:      six, // e1 and w1 hold 4 each
		want: Result{Bindings: []string{"ns-e1/e1", "ns-w1/w1"}, Replicas: map[string]map[string]int32{
			"w": {"ns-e1/e1": 3, "ns-w1/w1": 3},
		}},
	}, {
		name:     "dynamic: dynamicDividing's maxClusters drops no pick",
		spec:     bySubGroups(dyn(appsv1alpha1.SpreadDividingStrategy, nil, ptr.To[int32](1)), region("east", 1, 0), region("west", 1, 0)),
		clusters: []Cluster{e2, w1},
		wls:      six,
		want: Result{Bindings: []string{"ns-e2/e2", "ns-w1/w1"}, Replicas: map[string]map[string]int32{
			"w": {"ns-e2/e2": 4, "ns-w1/w1": 2},
		}},
	}, {
		name:     "dynamic: a subgroup's only cluster is picked however little it holds",
		spec:     bySubGroups(dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil), region("east", 1, 0), region("west", 1, 0)),
		clusters: []Cluster{e1, w2},
		wls:      six, // e1 holds 4, w2 2
		want: Result{Bindings: []string{"ns-e1/e1", "ns-w2/w2"}, Replicas: map[string]map[string]int32{
			"w": {"ns-e1/e1": 4, "ns-w2/w2": 2},
		}},
	}, {
		name:     "dynamic: not enough capacity among the picks is spread anyway, with a warning",
		spec:     bySubGroups(dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil), region("east", 1, 0), region("west", 1, 0)),
		clusters: []Cluster{e1, w2},
		wls:      []Workload{workload("w", 9, "1")},
		want: Result{Bindings: []string{"ns-e1/e1", "ns-w2/w2"}, Replicas: map[string]map[string]int32{
			"w": {"ns-e1/e1": 6, "ns-w2/w2": 3},
		}, Warnings: []string{"w asks for 9 replicas but the 2 chosen clusters hold 6 by their allocatable resources: the rest are spread over them anyway"}, Short: true},
	}, {
		name:     "stable: a bound cluster stays picked though another comes first by key",
		spec:     bySubGroups(replication(), region("east", 1, 0), region("west", 1, 0)),
		clusters: []Cluster{e1, e2, w1, w2},
		bound:    []string{"ns-e2/e2", "ns-w2/w2"},
		want:     Result{Bindings: []string{"ns-e2/e2", "ns-w2/w2"}},
	}, {
		name:     "stable: a bound cluster stays picked though another holds more",
		spec:     bySubGroups(dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil), region("east", 1, 0), region("west", 1, 0)),
		clusters: []Cluster{e1, e2, w1},
		bound:    []string{"ns-e1/e1", "ns-w1/w1"},
		wls:      six,
		want: Result{Bindings: []string{"ns-e1/e1", "ns-w1/w1"}, Replicas: map[string]map[string]int32{
			"w": {"ns-e1/e1": 3, "ns-w1/w1": 3},
		}},
	}, {
		name:     "stable: minClusters raised keeps the bound cluster and adds the next best",
		spec:     bySubGroups(replication(), region("east", 2, 0), region("west", 1, 0)),
		clusters: []Cluster{e1, e2, w1},
		bound:    []string{"ns-e2/e2", "ns-w1/w1"},
		want:     Result{Bindings: []string{"ns-e1/e1", "ns-e2/e2", "ns-w1/w1"}},
	}, {
		name:     "stable only while eligible: a bound cluster tainted NoExecute is replaced",
		spec:     bySubGroups(replication(), region("east", 1, 0), region("west", 1, 0)),
		clusters: []Cluster{withTaint(e1, "maintenance", corev1.TaintEffectNoExecute), e2, w1},
		bound:    []string{"ns-e1/e1", "ns-w1/w1"},
		want:     Result{Bindings: []string{"ns-e2/e2", "ns-w1/w1"}},
	}, {
		name:     "stable only while in the subgroup: a bound cluster relabelled out of it is replaced",
		spec:     bySubGroups(replication(), region("east", 1, 0), region("west", 1, 0)),
		clusters: []Cluster{cluster("ns-e1/e1", "region", "north"), e2, w1},
		bound:    []string{"ns-e1/e1", "ns-w1/w1"},
		want:     Result{Bindings: []string{"ns-e2/e2", "ns-w1/w1"}},
	}, {
		name:     "a NoSchedule taint keeps a bound cluster picked, as without subgroups",
		spec:     bySubGroups(replication(), region("east", 1, 0), region("west", 1, 0)),
		clusters: []Cluster{withTaint(e1, "dedicated", corev1.TaintEffectNoSchedule), e2, w1},
		bound:    []string{"ns-e1/e1", "ns-w1/w1"},
		want:     Result{Bindings: []string{"ns-e1/e1", "ns-w1/w1"}},
	}, {
		name:     "a PreferNoSchedule taint not tolerated makes a cluster the last pick",
		spec:     bySubGroups(replication(), region("east", 1, 0), region("west", 1, 0)),
		clusters: []Cluster{withTaint(e1, "spot", corev1.TaintEffectPreferNoSchedule), e2, w1},
		want:     Result{Bindings: []string{"ns-e2/e2", "ns-w1/w1"}},
	}, {
		name: "a tolerated PreferNoSchedule taint counts for nothing",
		spec: func() *appsv1alpha1.SubscriptionSpec {
			s := bySubGroups(replication(), region("east", 1, 0), region("west", 1, 0))
			s.ClusterTolerations = []corev1.Toleration{{Key: "spot", Operator: corev1.TolerationOpExists}}
			return s
		}(),
		clusters: []Cluster{withTaint(e1, "spot", corev1.TaintEffectPreferNoSchedule), e2, w1},
		want:     Result{Bindings: []string{"ns-e1/e1", "ns-w1/w1"}},
	}, {
		name:     "a subgroup smaller than minClusters is bound whole, with a warning naming it",
		spec:     bySubGroups(replication(), region("east", 3, 0), region("west", 1, 0)),
		clusters: []Cluster{e1, e2, w1},
		want:     Result{Bindings: []string{"ns-e1/e1", "ns-e2/e2", "ns-w1/w1"}, Warnings: []string{notEnough("0", "3", "2")}},
	}, {
		name:     "a cluster whose taints are not tolerated does not count toward its subgroup",
		spec:     bySubGroups(replication(), region("east", 1, 0), region("west", 2, 0)),
		clusters: []Cluster{e1, w1, withTaint(w2, "maintenance", corev1.TaintEffectNoExecute)},
		want:     Result{Bindings: []string{"ns-e1/e1", "ns-w1/w1"}, Warnings: []string{notEnough("1", "2", "1")}},
	}, {
		name:     "an empty subgroup binds nothing, with a warning; the others are bound",
		spec:     bySubGroups(replication(), region("east", 1, 0), region("north", 1, 0)),
		clusters: []Cluster{e1, e2, w1},
		want:     Result{Bindings: []string{"ns-e1/e1"}, Warnings: []string{notEnough("1", "1", "0")}},
	}, {
		name: "a subscriber without subGroupStrategy is refused, naming it",
		spec: bySubGroups(replication(), region("east", 1, 0),
			appsv1alpha1.Subscriber{ClusterAffinity: sel("region", "west")}),
		clusters:    []Cluster{e1, w1},
		wantErr:     "spec.subscribers[1].subGroupStrategy is unset: every subscriber needs one when spec.schedulingBySubGroup is true: set spec.subscribers[1].subGroupStrategy.minClusters, or set spec.schedulingBySubGroup to false",
		subGroupErr: true,
	}, {
		name:        "a negative minClusters is refused, naming the field and value",
		spec:        bySubGroups(replication(), region("east", 1, 0), region("west", -1, 0)),
		clusters:    []Cluster{e1, w1},
		wantErr:     `spec.subscribers[1].subGroupStrategy.minClusters: "-1" is negative: it is how many of the subscriber's clusters to bind: set it to 0 or more`,
		subGroupErr: true,
	}, {
		name: "a bad selector stays a clusterAffinity error",
		spec: bySubGroups(replication(), region("east", 1, 0), appsv1alpha1.Subscriber{
			ClusterAffinity:  &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "region", Operator: "Near"}}},
			SubGroupStrategy: &appsv1alpha1.SubGroupStrategy{MinClusters: 1}}),
		clusters: []Cluster{e1, w1},
		wantErr:  `spec.subscribers[1].clusterAffinity: "Near" is not a valid label selector operator: fix the selector`,
	}, {
		name: "subGroupStrategy without schedulingBySubGroup is ignored, as upstream, with a warning",
		spec: func() *appsv1alpha1.SubscriptionSpec {
			s := bySubGroups(replication(), region("east", 1, 0), region("west", 1, 0))
			s.SchedulingBySubGroup = nil
			return s
		}(),
		clusters: []Cluster{e1, e2, w1},
		want:     Result{Bindings: []string{"ns-e1/e1", "ns-e2/e2", "ns-w1/w1"}, Warnings: []string{ignored("0"), ignored("1")}},
	}, {
		name: "schedulingBySubGroup false is as unset",
		spec: func() *appsv1alpha1.SubscriptionSpec {
			s := bySubGroups(static(), region("east", 1, 1), appsv1alpha1.Subscriber{ClusterAffinity: sel("region", "west"), Weight: 1})
			s.SchedulingBySubGroup = ptr.To(false)
			return s
		}(),
		clusters: []Cluster{e1, e2, w1},
		wls:      []Workload{workload("w", 3, "")},
		want: Result{Bindings: []string{"ns-e1/e1", "ns-e2/e2", "ns-w1/w1"}, Replicas: map[string]map[string]int32{
			"w": {"ns-e1/e1": 1, "ns-e2/e2": 1, "ns-w1/w1": 1},
		}, Warnings: []string{ignored("0")}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The listing order of clusters must not matter.
			for _, clusters := range [][]Cluster{tc.clusters, reversed(tc.clusters)} {
				got, err := Schedule(Input{Spec: tc.spec, Clusters: clusters, Bound: sets.New(tc.bound...), Workloads: tc.wls})
				if tc.wantErr != "" {
					if err == nil || err.Error() != tc.wantErr {
						t.Fatalf("error = %v, want %q", err, tc.wantErr)
					}
					var sg *SubGroupError
					if errors.As(err, &sg) != tc.subGroupErr {
						t.Errorf("error is a *SubGroupError: %v, want %v", !tc.subGroupErr, tc.subGroupErr)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty(), ignoreFits); diff != "" {
					t.Errorf("clusters %v: result (-want +got):\n%s", keys(clusters), diff)
				}
			}
		})
	}
}

func reversed(in []Cluster) []Cluster {
	out := slices.Clone(in)
	slices.Reverse(out)
	return out
}

// TestSubGroupRescheduleKeepsBindings schedules, feeds the bindings back
// as the bound clusters (as the controller does from the Bases), and
// schedules again after the clusters change: the picks stay where they
// are while still eligible. The same second round without the bound
// clusters picks otherwise, so the test would catch a reshuffle.
func TestSubGroupRescheduleKeepsBindings(t *testing.T) {
	tests := []struct {
		name          string
		spec          *appsv1alpha1.SubscriptionSpec
		first, second []Cluster
		wls           []Workload
		// wantFirst is round one; wantKept round two with round one's
		// bindings bound; wantFresh round two from nothing.
		wantFirst, wantKept, wantFresh []string
	}{{
		name:      "replication: clusters first by key join",
		spec:      bySubGroups(replication(), region("east", 1, 0), region("west", 1, 0)),
		first:     []Cluster{e2, w2},
		second:    []Cluster{e1, e2, w1, w2},
		wantFirst: []string{"ns-e2/e2", "ns-w2/w2"},
		wantKept:  []string{"ns-e2/e2", "ns-w2/w2"},
		wantFresh: []string{"ns-e1/e1", "ns-w1/w1"},
	}, {
		name:      "dynamic: a larger cluster joins the east",
		spec:      bySubGroups(dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil), region("east", 1, 0), region("west", 1, 0)),
		first:     []Cluster{e1, w1},
		second:    []Cluster{e1, e2, w1},
		wls:       []Workload{workload("w", 6, "1")},
		wantFirst: []string{"ns-e1/e1", "ns-w1/w1"},
		wantKept:  []string{"ns-e1/e1", "ns-w1/w1"},
		wantFresh: []string{"ns-e2/e2", "ns-w1/w1"},
	}, {
		name:      "static: the bound east cluster gains a PreferNoSchedule taint",
		spec:      bySubGroups(static(), region("east", 1, 1), region("west", 1, 1)),
		first:     []Cluster{e1, e2, w1},
		second:    []Cluster{withTaint(e1, "spot", corev1.TaintEffectPreferNoSchedule), e2, w1},
		wls:       []Workload{workload("w", 2, "")},
		wantFirst: []string{"ns-e1/e1", "ns-w1/w1"},
		wantKept:  []string{"ns-e1/e1", "ns-w1/w1"},
		wantFresh: []string{"ns-e2/e2", "ns-w1/w1"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first, err := Schedule(Input{Spec: tc.spec, Clusters: tc.first, Bound: sets.New[string](), Workloads: tc.wls})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantFirst, first.Bindings); diff != "" {
				t.Fatalf("first round (-want +got):\n%s", diff)
			}
			kept, err := Schedule(Input{Spec: tc.spec, Clusters: tc.second, Bound: sets.New(first.Bindings...), Workloads: tc.wls})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantKept, kept.Bindings); diff != "" {
				t.Errorf("second round, first round's bindings bound (-want +got):\n%s", diff)
			}
			fresh, err := Schedule(Input{Spec: tc.spec, Clusters: tc.second, Bound: sets.New[string](), Workloads: tc.wls})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantFresh, fresh.Bindings); diff != "" {
				t.Errorf("second round from nothing (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSubGroupDynamicIncremental: with subgroups, dynamic dividing among
// the picks moves only the difference from the division in force, as
// without (TestDynamicIncremental); fresh is today's division from
// nothing of the same round, which would fail each case.
func TestSubGroupDynamicIncremental(t *testing.T) {
	spreadSpec := bySubGroups(dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil), region("east", 1, 0), region("west", 1, 0))
	binpackSpec := bySubGroups(dyn(appsv1alpha1.BinpackDividingStrategy, nil, nil), region("east", 1, 0), region("west", 1, 0))
	w1grown := withAlloc(w1, "12", "64Gi", "110")
	tests := []struct {
		name                   string
		spec                   *appsv1alpha1.SubscriptionSpec
		clusters               []Cluster
		prev                   split3
		replicas               int32
		want                   Result
		wantAdded, wantRemoved int32
		fresh                  split3
	}{{
		name:     "spread 6 to 8: the 2 new replicas go where capacity is left, the 6 running stay",
		spec:     spreadSpec,
		clusters: []Cluster{e1, e2, w1grown},
		prev:     split3{"w": {"ns-e1/e1": 3, "ns-w1/w1": 3}},
		replicas: 8,
		// The picks stay e1 and w1 (bound); room e1 1, w1 9.
		want:      placed(split3{"w": {"ns-e1/e1": 3, "ns-w1/w1": 5}}),
		wantAdded: 2,
		fresh:     split3{"w": {"ns-e1/e1": 2, "ns-w1/w1": 6}},
	}, {
		name:     "spread 9 to 6: 3 removed from the pick over its fair share, nothing added",
		spec:     spreadSpec,
		clusters: []Cluster{e2, w1grown},
		prev:     split3{"w": {"ns-e2/e2": 6, "ns-w1/w1": 3}},
		replicas: 6,
		// fair e2 2, w1 4 (capacity 8:12).
		want:        placed(split3{"w": {"ns-e2/e2": 3, "ns-w1/w1": 3}}),
		wantRemoved: 3,
		fresh:       split3{"w": {"ns-e2/e2": 2, "ns-w1/w1": 4}},
	}, {
		name:     "a pick leaving its subgroup: its replicas go to the new pick, the rest stay",
		spec:     spreadSpec,
		clusters: []Cluster{withAlloc(cluster("ns-e1/e1", "region", "north"), "4", "64Gi", "110"), e2, w1},
		prev:     split3{"w": {"ns-e1/e1": 3, "ns-w1/w1": 3}},
		replicas: 6,
		// e1's 3 by capacity left: e2 8, w1 1.
		want:        placed(split3{"w": {"ns-e2/e2": 3, "ns-w1/w1": 3}}),
		wantAdded:   3,
		wantRemoved: 3,
		fresh:       split3{"w": {"ns-e2/e2": 4, "ns-w1/w1": 2}},
	}, {
		name:     "binpack 6 to 8 after the filled pick shrank: the 2 new and the 2 it no longer holds go to the pick with room",
		spec:     binpackSpec,
		clusters: []Cluster{withAlloc(e2, "4", "64Gi", "110"), w1},
		prev:     split3{"w": {"ns-e2/e2": 6, "ns-w1/w1": 0}},
		replicas: 8,
		// e2 holds 4 now: its 2 over move, the 4 that fit stay.
		want:        placed(split3{"w": {"ns-e2/e2": 4, "ns-w1/w1": 4}}),
		wantAdded:   4,
		wantRemoved: 2,
		fresh:       split3{"w": {"ns-e2/e2": 4, "ns-w1/w1": 4}},
	}, {
		name:     "spread: a pick over its capacity keeps what finds no room elsewhere",
		spec:     spreadSpec,
		clusters: []Cluster{withAlloc(e2, "4", "64Gi", "110"), withAlloc(w1, "2", "64Gi", "110")},
		prev:     split3{"w": {"ns-e2/e2": 6, "ns-w1/w1": 1}},
		replicas: 7,
		// e2 is 2 over, w1 has room for 1: 1 moves, 1 stays short.
		want: Result{Bindings: []string{"ns-e2/e2", "ns-w1/w1"}, Replicas: split3{"w": {"ns-e2/e2": 5, "ns-w1/w1": 2}}, Short: true,
			Warnings: []string{"w asks for 7 replicas but the 2 chosen clusters hold 6 by their allocatable resources: the rest are spread over them anyway"}},
		wantAdded:   1,
		wantRemoved: 1,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Spec: tc.spec, Clusters: tc.clusters, Bound: boundOf(tc.prev), Workloads: []Workload{workload("w", tc.replicas, "1")}, Previous: tc.prev}
			checkIncremental(t, in, tc.want, tc.wantAdded, tc.wantRemoved, tc.fresh)
		})
	}
}
