package scheduling

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// ignoreFits leaves Result.Fits out of comparisons: checkIncremental
// checks it against Replicas in every dynamic case, TestPreemption where
// it differs.
var ignoreFits = cmpopts.IgnoreFields(Result{}, "Fits")

// cluster builds a Cluster with labels given as k=v pairs.
func cluster(key string, kv ...string) Cluster {
	l := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return Cluster{Key: key, Labels: l, Allocatable: alloc("32", "64Gi", "110")}
}

func alloc(cpu, mem, pods string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem), corev1.ResourcePods: resource.MustParse(pods)}
}

func withAlloc(c Cluster, cpu, mem, pods string) Cluster {
	c.Allocatable = alloc(cpu, mem, pods)
	return c
}

func withTaint(c Cluster, key string, effect corev1.TaintEffect) Cluster {
	c.Taints = append(c.Taints, corev1.Taint{Key: key, Value: "true", Effect: effect})
	return c
}

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func workload(key string, replicas int32, cpu string) Workload {
	w := Workload{Key: key, Replicas: replicas}
	if cpu != "" {
		w.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
	}
	return w
}

func static(subs ...appsv1alpha1.Subscriber) *appsv1alpha1.SubscriptionSpec {
	return &appsv1alpha1.SubscriptionSpec{Subscribers: subs, SchedulingStrategy: appsv1alpha1.DividingSchedulingStrategy,
		DividingScheduling: &appsv1alpha1.DividingScheduling{Type: appsv1alpha1.StaticReplicaDividingType}}
}

func dyn(strategy appsv1alpha1.DynamicDividingStrategy, minC, maxC *int32, preferred ...metav1.LabelSelector) *appsv1alpha1.SubscriptionSpec {
	return &appsv1alpha1.SubscriptionSpec{Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: &metav1.LabelSelector{}}},
		SchedulingStrategy: appsv1alpha1.DividingSchedulingStrategy,
		DividingScheduling: &appsv1alpha1.DividingScheduling{Type: appsv1alpha1.DynamicReplicaDividingType,
			DynamicDividing: &appsv1alpha1.DynamicDividing{Strategy: strategy, MinClusters: minC, MaxClusters: maxC, PreferredClusters: preferred}}}
}

func TestSchedule(t *testing.T) {
	a, b, c := cluster("ns-a/a", "env", "prod", "zone", "1"), cluster("ns-b/b", "env", "prod", "zone", "2"), cluster("ns-c/c", "env", "dev")
	tolerateDedicated := []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
	tests := []struct {
		name     string
		spec     *appsv1alpha1.SubscriptionSpec
		clusters []Cluster
		bound    []string
		wls      []Workload
		want     Result
		wantErr  string
	}{{
		name:     "replication: every matched cluster, no replicas recorded",
		spec:     &appsv1alpha1.SubscriptionSpec{Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: sel("env", "prod")}}},
		clusters: []Cluster{c, b, a},
		wls:      []Workload{workload("w", 3, "")},
		want:     Result{Bindings: []string{"ns-a/a", "ns-b/b"}},
	}, {
		name:     "subscribers are a union; an empty selector matches all",
		spec:     &appsv1alpha1.SubscriptionSpec{Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: sel("zone", "1")}, {ClusterAffinity: sel("env", "dev")}}},
		clusters: []Cluster{a, b, c},
		want:     Result{Bindings: []string{"ns-a/a", "ns-c/c"}},
	}, {
		name:     "matchExpressions on cluster-id style labels",
		spec:     &appsv1alpha1.SubscriptionSpec{Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "zone", Operator: metav1.LabelSelectorOpIn, Values: []string{"1", "2"}}}}}}},
		clusters: []Cluster{a, b, c},
		want:     Result{Bindings: []string{"ns-a/a", "ns-b/b"}},
	}, {
		name:     "nothing matches",
		spec:     &appsv1alpha1.SubscriptionSpec{Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: sel("env", "staging")}}},
		clusters: []Cluster{a, b, c},
		want:     Result{Bindings: []string{}},
	}, {
		name:     "NoSchedule taint keeps a new subscription off",
		spec:     &appsv1alpha1.SubscriptionSpec{Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: sel("env", "prod")}}},
		clusters: []Cluster{withTaint(a, "dedicated", corev1.TaintEffectNoSchedule), b},
		want:     Result{Bindings: []string{"ns-b/b"}},
	}, {
		name:     "NoSchedule taint leaves a bound subscription in place",
		spec:     &appsv1alpha1.SubscriptionSpec{Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: sel("env", "prod")}}},
		clusters: []Cluster{withTaint(a, "dedicated", corev1.TaintEffectNoSchedule), b},
		bound:    []string{"ns-a/a"},
		want:     Result{Bindings: []string{"ns-a/a", "ns-b/b"}},
	}, {
		name:     "NoExecute taint unbinds",
		spec:     &appsv1alpha1.SubscriptionSpec{Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: sel("env", "prod")}}},
		clusters: []Cluster{withTaint(a, "dedicated", corev1.TaintEffectNoExecute), b},
		bound:    []string{"ns-a/a", "ns-b/b"},
		want:     Result{Bindings: []string{"ns-b/b"}},
	}, {
		name:     "tolerated taints",
		spec:     &appsv1alpha1.SubscriptionSpec{Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: sel("env", "prod")}}, ClusterTolerations: tolerateDedicated},
		clusters: []Cluster{withTaint(a, "dedicated", corev1.TaintEffectNoExecute), withTaint(b, "dedicated", corev1.TaintEffectNoSchedule)},
		want:     Result{Bindings: []string{"ns-a/a", "ns-b/b"}},
	}, {
		name:     "PreferNoSchedule does not keep anything off",
		spec:     &appsv1alpha1.SubscriptionSpec{Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: sel("env", "prod")}}},
		clusters: []Cluster{withTaint(a, "x", corev1.TaintEffectPreferNoSchedule)},
		want:     Result{Bindings: []string{"ns-a/a"}},
	}, {
		name:    "bad selector names the field",
		spec:    &appsv1alpha1.SubscriptionSpec{Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "Near"}}}}}},
		wantErr: `spec.subscribers[0].clusterAffinity: "Near" is not a valid label selector operator: fix the selector`,
	}, {
		name:     "static: by weight, remainder to the largest fraction",
		spec:     static(appsv1alpha1.Subscriber{ClusterAffinity: sel("zone", "1"), Weight: 1}, appsv1alpha1.Subscriber{ClusterAffinity: sel("zone", "2"), Weight: 2}),
		clusters: []Cluster{a, b, c},
		wls:      []Workload{workload("w", 10, ""), workload("x", 1, "")},
		want: Result{Bindings: []string{"ns-a/a", "ns-b/b"}, Replicas: map[string]map[string]int32{
			"w": {"ns-a/a": 3, "ns-b/b": 7}, // 3.33 + 6.67
			"x": {"ns-a/a": 0, "ns-b/b": 1},
		}},
	}, {
		name:     "static: equal remainders go to the first cluster by key",
		spec:     static(appsv1alpha1.Subscriber{ClusterAffinity: &metav1.LabelSelector{}, Weight: 1}),
		clusters: []Cluster{c, b, a},
		wls:      []Workload{workload("w", 4, "")},
		want: Result{Bindings: []string{"ns-a/a", "ns-b/b", "ns-c/c"}, Replicas: map[string]map[string]int32{
			"w": {"ns-a/a": 2, "ns-b/b": 1, "ns-c/c": 1},
		}},
	}, {
		name:     "static: all weights zero divide evenly; first matching subscriber's weight counts",
		spec:     static(appsv1alpha1.Subscriber{ClusterAffinity: sel("env", "prod")}, appsv1alpha1.Subscriber{ClusterAffinity: &metav1.LabelSelector{}, Weight: 0}),
		clusters: []Cluster{a, b},
		wls:      []Workload{workload("w", 3, "")},
		want: Result{Bindings: []string{"ns-a/a", "ns-b/b"}, Replicas: map[string]map[string]int32{
			"w": {"ns-a/a": 2, "ns-b/b": 1},
		}},
	}, {
		name:     "static: weight zero beside a weighted cluster gets none but stays bound",
		spec:     static(appsv1alpha1.Subscriber{ClusterAffinity: sel("zone", "1"), Weight: 0}, appsv1alpha1.Subscriber{ClusterAffinity: sel("zone", "2"), Weight: 5}),
		clusters: []Cluster{a, b},
		wls:      []Workload{workload("w", 3, "")},
		want: Result{Bindings: []string{"ns-a/a", "ns-b/b"}, Replicas: map[string]map[string]int32{
			"w": {"ns-a/a": 0, "ns-b/b": 3},
		}},
	}, {
		name:     "dynamic spread: in proportion to capacity",
		spec:     dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil),
		clusters: []Cluster{withAlloc(a, "3", "8Gi", "110"), withAlloc(b, "1", "8Gi", "110"), withAlloc(c, "0", "8Gi", "110")},
		wls:      []Workload{workload("w", 8, "500m")}, // a holds 6, b 2, c 0
		want: Result{Bindings: []string{"ns-a/a", "ns-b/b"}, Replicas: map[string]map[string]int32{
			"w": {"ns-a/a": 6, "ns-b/b": 2},
		}},
	}, {
		name:     "dynamic spread: pods bound capacity when nothing is requested",
		spec:     dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil),
		clusters: []Cluster{withAlloc(a, "1", "1Gi", "30"), withAlloc(b, "1", "1Gi", "10")},
		wls:      []Workload{workload("w", 4, "")},
		want: Result{Bindings: []string{"ns-a/a", "ns-b/b"}, Replicas: map[string]map[string]int32{
			"w": {"ns-a/a": 3, "ns-b/b": 1},
		}},
	}, {
		name:     "dynamic spread: maxClusters keeps the largest",
		spec:     dyn(appsv1alpha1.SpreadDividingStrategy, nil, ptr.To[int32](1)),
		clusters: []Cluster{withAlloc(a, "2", "8Gi", "110"), withAlloc(b, "4", "8Gi", "110")},
		wls:      []Workload{workload("w", 4, "1")},
		want: Result{Bindings: []string{"ns-b/b"}, Replicas: map[string]map[string]int32{
			"w": {"ns-b/b": 4},
		}},
	}, {
		name:     "dynamic spread: minClusters binds a cluster without capacity too",
		spec:     dyn(appsv1alpha1.SpreadDividingStrategy, ptr.To[int32](2), nil),
		clusters: []Cluster{withAlloc(a, "4", "8Gi", "110"), withAlloc(b, "0", "8Gi", "110")},
		wls:      []Workload{workload("w", 4, "1")},
		want: Result{Bindings: []string{"ns-a/a", "ns-b/b"}, Replicas: map[string]map[string]int32{
			"w": {"ns-a/a": 4, "ns-b/b": 0},
		}},
	}, {
		name:     "dynamic binpack: fill the largest first",
		spec:     dyn(appsv1alpha1.BinpackDividingStrategy, nil, nil),
		clusters: []Cluster{withAlloc(a, "2", "8Gi", "110"), withAlloc(b, "5", "8Gi", "110"), withAlloc(c, "3", "8Gi", "110")},
		wls:      []Workload{workload("w", 7, "1")},
		want: Result{Bindings: []string{"ns-b/b", "ns-c/c"}, Replicas: map[string]map[string]int32{
			"w": {"ns-b/b": 5, "ns-c/c": 2},
		}},
	}, {
		name:     "dynamic binpack: preferred clusters first",
		spec:     dyn(appsv1alpha1.BinpackDividingStrategy, nil, nil, *sel("zone", "1")),
		clusters: []Cluster{withAlloc(a, "2", "8Gi", "110"), withAlloc(b, "5", "8Gi", "110")},
		wls:      []Workload{workload("w", 4, "1")},
		want: Result{Bindings: []string{"ns-a/a", "ns-b/b"}, Replicas: map[string]map[string]int32{
			"w": {"ns-a/a": 2, "ns-b/b": 2},
		}},
	}, {
		name:     "dynamic: not enough capacity is spread anyway, with a warning",
		spec:     dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil),
		clusters: []Cluster{withAlloc(a, "1", "8Gi", "110"), withAlloc(b, "1", "8Gi", "110")},
		wls:      []Workload{workload("w", 5, "1")},
		want: Result{Bindings: []string{"ns-a/a", "ns-b/b"}, Replicas: map[string]map[string]int32{
			"w": {"ns-a/a": 3, "ns-b/b": 2},
		}, Warnings: []string{"w asks for 5 replicas but the 2 chosen clusters hold 2 by their allocatable resources: the rest are spread over them anyway"}, Short: true},
	}, {
		name:     "dynamic: a cluster reporting no allocatable holds nothing",
		spec:     dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil),
		clusters: []Cluster{{Key: "ns-z/z"}, withAlloc(a, "1", "8Gi", "110")},
		wls:      []Workload{workload("w", 1, "1")},
		want: Result{Bindings: []string{"ns-a/a"}, Replicas: map[string]map[string]int32{
			"w": {"ns-a/a": 1},
		}},
	}, {
		name:     "dynamic without workloads binds like replication, up to maxClusters",
		spec:     dyn(appsv1alpha1.SpreadDividingStrategy, nil, ptr.To[int32](2)),
		clusters: []Cluster{a, b, c},
		want:     Result{Bindings: []string{"ns-a/a", "ns-b/b"}, Replicas: map[string]map[string]int32{}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Schedule(Input{Spec: tc.spec, Clusters: tc.clusters, Bound: sets.New(tc.bound...), Workloads: tc.wls})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty(), ignoreFits); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDivide(t *testing.T) {
	tests := []struct {
		total   int32
		weights []int64
		want    []int32
	}{
		{total: 0, weights: []int64{1, 1}, want: []int32{0, 0}},
		{total: 5, weights: []int64{1, 1}, want: []int32{3, 2}},
		{total: 7, weights: []int64{1, 2, 4}, want: []int32{1, 2, 4}},
		{total: 10, weights: []int64{1, 1, 1}, want: []int32{4, 3, 3}},
		{total: 2, weights: []int64{1, 1, 1}, want: []int32{1, 1, 0}},
		{total: 3, weights: []int64{0, 0}, want: []int32{2, 1}},
		{total: 100, weights: []int64{1}, want: []int32{100}},
		{total: 3, weights: nil, want: []int32{}},
	}
	for _, tc := range tests {
		got := divide(tc.total, tc.weights)
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty(), ignoreFits); diff != "" {
			t.Errorf("divide(%d, %v) (-want +got):\n%s", tc.total, tc.weights, diff)
		}
		var sum int32
		for _, n := range got {
			sum += n
		}
		if len(tc.weights) > 0 && sum != tc.total {
			t.Errorf("divide(%d, %v) sums to %d", tc.total, tc.weights, sum)
		}
	}
}
