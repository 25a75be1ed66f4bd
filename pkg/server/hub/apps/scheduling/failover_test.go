package scheduling

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

// The failover taint on a bound cluster, with the gate on: Subscriptions
// that divide replicas (statically or dynamically) leave it, those that
// replicate keep it, those that tolerate the taint keep it. Without the
// gate it is a NoSchedule taint like any other. Unbound, it keeps
// everyone off that does not tolerate it.
func TestFailoverTaint(t *testing.T) {
	a, lost := cluster("ns-a/a", "env", "prod"), withTaint(cluster("ns-b/b", "env", "prod"), clusterv1beta1.TaintClusterUnschedulable, corev1.TaintEffectNoSchedule)
	weighted := static(appsv1alpha1.Subscriber{ClusterAffinity: sel("env", "prod"), Weight: 1})
	replication := &appsv1alpha1.SubscriptionSpec{Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: sel("env", "prod")}}}
	tolerating := static(appsv1alpha1.Subscriber{ClusterAffinity: sel("env", "prod"), Weight: 1})
	tolerating.ClusterTolerations = []corev1.Toleration{{Key: clusterv1beta1.TaintClusterUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	tests := []struct {
		name     string
		spec     *appsv1alpha1.SubscriptionSpec
		failOver bool
		bound    []string
		want     []string
		replicas map[string]int32
		// failedOver is Result.FailedOver: dropped only by the exception.
		failedOver []string
		// clusters are a and lost unless set.
		clusters []Cluster
	}{
		{name: "static weights: replicas leave the lost cluster", spec: weighted, failOver: true, bound: []string{"ns-a/a", "ns-b/b"},
			want: []string{"ns-a/a"}, replicas: map[string]int32{"ns-a/a": 4}, failedOver: []string{"ns-b/b"}},
		{name: "dynamic: replicas leave the lost cluster", spec: dyn(appsv1alpha1.SpreadDividingStrategy, nil, nil), failOver: true, bound: []string{"ns-a/a", "ns-b/b"},
			want: []string{"ns-a/a"}, replicas: map[string]int32{"ns-a/a": 4}, failedOver: []string{"ns-b/b"}},
		// The user's affinity edit drops the lost cluster: an ordinary
		// unbinding, though it is tainted.
		{name: "no longer selected: not failed over", spec: static(appsv1alpha1.Subscriber{ClusterAffinity: sel("zone", "x"), Weight: 1}),
			failOver: true, bound: []string{"ns-a/a", "ns-b/b"}, clusters: []Cluster{cluster("ns-a/a", "env", "prod", "zone", "x"), lost}, want: []string{"ns-a/a"}, replicas: map[string]int32{"ns-a/a": 4}},
		// Another taint keeps it off anyway: not the exception's doing.
		{name: "a NoExecute taint too: not failed over", spec: weighted, failOver: true, bound: []string{"ns-a/a", "ns-b/b"},
			clusters: []Cluster{a, withTaint(lost, "drain", corev1.TaintEffectNoExecute)}, want: []string{"ns-a/a"}, replicas: map[string]int32{"ns-a/a": 4}},
		{name: "replication keeps it bound", spec: replication, failOver: true, bound: []string{"ns-a/a", "ns-b/b"},
			want: []string{"ns-a/a", "ns-b/b"}},
		{name: "a toleration keeps it bound", spec: tolerating, failOver: true, bound: []string{"ns-a/a", "ns-b/b"},
			want: []string{"ns-a/a", "ns-b/b"}, replicas: map[string]int32{"ns-a/a": 2, "ns-b/b": 2}},
		{name: "gate off: an ordinary NoSchedule taint keeps what is bound", spec: weighted, bound: []string{"ns-a/a", "ns-b/b"},
			want: []string{"ns-a/a", "ns-b/b"}, replicas: map[string]int32{"ns-a/a": 2, "ns-b/b": 2}},
		{name: "not bound: nothing new goes there", spec: replication, failOver: true, bound: []string{"ns-a/a"},
			want: []string{"ns-a/a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clusters := tc.clusters
			if clusters == nil {
				clusters = []Cluster{a, lost}
			}
			in := Input{Spec: tc.spec, Clusters: clusters, Bound: sets.New(tc.bound...), FailOver: tc.failOver}
			if tc.spec.SchedulingStrategy == appsv1alpha1.DividingSchedulingStrategy {
				in.Workloads = []Workload{workload("w", 4, "1")}
			}
			res, err := Schedule(in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, res.Bindings); diff != "" {
				t.Errorf("bindings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.replicas, res.Replicas["w"]); tc.replicas != nil && diff != "" {
				t.Errorf("replicas (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.failedOver, res.FailedOver); diff != "" {
				t.Errorf("failed over (-want +got):\n%s", diff)
			}
		})
	}
}

// The cluster back (untainted, bound no longer: its Base was kept aside),
// Dynamic dividing from the division in force moves nothing that has
// room: Spread binds it again with none, Binpack leaves it unbound.
func TestFailbackDynamic(t *testing.T) {
	a, back := cluster("ns-a/a", "env", "prod"), cluster("ns-b/b", "env", "prod")
	for _, tc := range []struct {
		strategy appsv1alpha1.DynamicDividingStrategy
		want     []string
	}{
		{appsv1alpha1.SpreadDividingStrategy, []string{"ns-a/a", "ns-b/b"}},
		{appsv1alpha1.BinpackDividingStrategy, []string{"ns-a/a"}},
	} {
		t.Run(string(tc.strategy), func(t *testing.T) {
			in := Input{Spec: dyn(tc.strategy, nil, nil), Clusters: []Cluster{a, back}, Bound: sets.New("ns-a/a"), FailOver: true,
				Workloads: []Workload{workload("w", 4, "1")}, Previous: map[string]map[string]int32{"w": {"ns-a/a": 4}}}
			res, err := Schedule(in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, res.Bindings); diff != "" {
				t.Errorf("bindings (-want +got):\n%s", diff)
			}
			if got := res.Replicas["w"]["ns-a/a"]; got != 4 {
				t.Errorf("a keeps %d, want its 4", got)
			}
		})
	}
}
