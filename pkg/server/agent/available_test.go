package agent

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// resources is a ResourceList from name, quantity, name, quantity, ...
func resources(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

// equalQuantities compares quantities by value: 2500m and 2.5 are equal.
var equalQuantities = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

// schedulableNode is a Ready node with allocatable kv.
func schedulableNode(name string, kv ...string) corev1.Node {
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Allocatable: resources(kv...),
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
}

func withNodeReady(n corev1.Node, s corev1.ConditionStatus) corev1.Node {
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: s}}
	return n
}

func withTaint(n corev1.Node, effect corev1.TaintEffect) corev1.Node {
	n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "example.com/dedicated", Value: "x", Effect: effect})
	return n
}

// boundPod is a Running pod on node with one container per request list.
func boundPod(node string, containers ...corev1.ResourceList) corev1.Pod {
	p := corev1.Pod{Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	for _, r := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c" + string(rune('0'+len(p.Spec.Containers))), Resources: corev1.ResourceRequirements{Requests: r}})
	}
	return p
}

func withPhase(p corev1.Pod, phase corev1.PodPhase) corev1.Pod {
	p.Status.Phase = phase
	return p
}

func withInit(p corev1.Pod, r corev1.ResourceList) corev1.Pod {
	p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "init", Resources: corev1.ResourceRequirements{Requests: r}})
	return p
}

func TestAvailableResources(t *testing.T) {
	n1 := schedulableNode("n1", "cpu", "4", "memory", "8Gi", "pods", "10")
	n2 := schedulableNode("n2", "cpu", "2", "memory", "4Gi", "pods", "5")
	small := resources("cpu", "500m", "memory", "1Gi")
	tests := []struct {
		name  string
		nodes []corev1.Node
		pods  []corev1.Pod
		want  corev1.ResourceList
	}{
		{name: "an empty node: its allocatable",
			nodes: []corev1.Node{n1}, want: resources("cpu", "4", "memory", "8Gi", "pods", "10")},
		{name: "summed over nodes, each less what its own pods request",
			nodes: []corev1.Node{n1, n2}, pods: []corev1.Pod{boundPod("n1", small), boundPod("n1", small), boundPod("n2", small)},
			want: resources("cpu", "4500m", "memory", "9Gi", "pods", "12")},
		{name: "Succeeded and Failed pods hold nothing; Pending and Unknown ones bound to the node do",
			nodes: []corev1.Node{n1}, pods: []corev1.Pod{
				withPhase(boundPod("n1", small), corev1.PodSucceeded), withPhase(boundPod("n1", small), corev1.PodFailed),
				withPhase(boundPod("n1", small), corev1.PodPending), withPhase(boundPod("n1", small), corev1.PodUnknown),
			},
			want: resources("cpu", "3", "memory", "6Gi", "pods", "8")},
		{name: "pods not bound yet, or bound to a node not listed, hold nothing here",
			nodes: []corev1.Node{n1}, pods: []corev1.Pod{boundPod("", small), boundPod("gone", small)},
			want: resources("cpu", "4", "memory", "8Gi", "pods", "10")},
		{name: "only Ready nodes count",
			nodes: []corev1.Node{n1, withNodeReady(n2, corev1.ConditionFalse), withNodeReady(n2, corev1.ConditionUnknown), {ObjectMeta: n2.ObjectMeta, Status: corev1.NodeStatus{Allocatable: n2.Status.Allocatable}}},
			want:  resources("cpu", "4", "memory", "8Gi", "pods", "10")},
		{name: "a cordoned node takes no new replicas",
			nodes: []corev1.Node{n1, func() corev1.Node { n := n2; n.Spec.Unschedulable = true; return n }()},
			want:  resources("cpu", "4", "memory", "8Gi", "pods", "10")},
		{name: "NoSchedule and NoExecute taints keep replicas off; PreferNoSchedule only steers",
			nodes: []corev1.Node{withTaint(n1, corev1.TaintEffectNoSchedule), withTaint(n1, corev1.TaintEffectNoExecute), withTaint(n2, corev1.TaintEffectPreferNoSchedule)},
			want:  resources("cpu", "2", "memory", "4Gi", "pods", "5")},
		{name: "no node takes new pods: nothing available",
			nodes: []corev1.Node{withNodeReady(n1, corev1.ConditionFalse)}, want: corev1.ResourceList{}},
		{name: "containers' requests add up",
			nodes: []corev1.Node{n1}, pods: []corev1.Pod{boundPod("n1", resources("cpu", "1"), resources("cpu", "1500m", "memory", "1Gi"))},
			want: resources("cpu", "1500m", "memory", "7Gi", "pods", "9")},
		{name: "an init container larger than the containers is the pod's request",
			nodes: []corev1.Node{n1}, pods: []corev1.Pod{withInit(boundPod("n1", resources("cpu", "1", "memory", "1Gi")), resources("cpu", "3"))},
			want: resources("cpu", "1", "memory", "7Gi", "pods", "9")},
		{name: "an init container smaller than the containers adds nothing",
			nodes: []corev1.Node{n1}, pods: []corev1.Pod{withInit(boundPod("n1", resources("cpu", "1"), resources("cpu", "1")), resources("cpu", "1500m"))},
			want: resources("cpu", "2", "memory", "8Gi", "pods", "9")},
		{name: "the pod overhead is added",
			nodes: []corev1.Node{n1}, pods: []corev1.Pod{func() corev1.Pod {
				p := boundPod("n1", small)
				p.Spec.Overhead = resources("cpu", "250m", "memory", "512Mi")
				return p
			}()},
			want: resources("cpu", "3250m", "memory", "6656Mi", "pods", "9")},
		{name: "a pod resized down but not yet actuated holds its larger size",
			nodes: []corev1.Node{n1}, pods: []corev1.Pod{func() corev1.Pod {
				p := boundPod("n1", resources("cpu", "1"))
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c0", AllocatedResources: resources("cpu", "3")}}
				return p
			}()},
			want: resources("cpu", "1", "memory", "8Gi", "pods", "9")},
		{name: "a resource no schedulable node reports is absent, even when pods request it",
			nodes: []corev1.Node{n1, withTaint(schedulableNode("gpu", "nvidia.com/gpu", "8"), corev1.TaintEffectNoSchedule)},
			pods:  []corev1.Pod{boundPod("n1", resources("nvidia.com/gpu", "1"))},
			want:  resources("cpu", "4", "memory", "8Gi", "pods", "9")},
		{name: "a resource only some nodes report is theirs alone",
			nodes: []corev1.Node{n1, schedulableNode("gpu", "cpu", "1", "nvidia.com/gpu", "8")},
			pods:  []corev1.Pod{boundPod("gpu", resources("nvidia.com/gpu", "3"))},
			want:  resources("cpu", "5", "memory", "8Gi", "pods", "10", "nvidia.com/gpu", "5")},
		{name: "an over-committed node gives 0, never less, and takes nothing from the others",
			nodes: []corev1.Node{n1, n2}, pods: []corev1.Pod{boundPod("n2", resources("cpu", "3", "memory", "1Gi"))},
			want: resources("cpu", "4", "memory", "11Gi", "pods", "14")},
		{name: "more pods than allocatable pods: 0 pods",
			nodes: []corev1.Node{schedulableNode("tiny", "cpu", "4", "pods", "1")}, pods: []corev1.Pod{boundPod("tiny"), boundPod("tiny")},
			want: resources("cpu", "4", "pods", "0")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := availableResources(tc.nodes, tc.pods)
			if diff := cmp.Diff(tc.want, got, equalQuantities); diff != "" {
				t.Errorf("available (-want +got):\n%s", diff)
			}
			for name, q := range got {
				if q.Sign() < 0 {
					t.Errorf("available %s is negative: %s", name, q.String())
				}
			}
		})
	}
}

// predictorAgent is an agent registered as ManagedCluster ns/edge-1 in a
// fake parent holding mc, with its Predictor gate set to predictor.
func predictorAgent(t *testing.T, mc *clusterv1beta1.ManagedCluster, predictor bool) (*Agent, *clusternetfake.Clientset) {
	t.Helper()
	a, parent := nodeLabelAgent(t, mc, nil, DefaultLabelAggregateThreshold)
	if err := a.opts.FeatureGates.SetFromMap(map[string]bool{"Predictor": predictor}); err != nil {
		t.Fatal(err)
	}
	return a, parent
}

func TestPredict(t *testing.T) {
	nodes := []corev1.Node{schedulableNode("n1", "cpu", "4", "pods", "10")}
	pods := []corev1.Pod{boundPod("n1", resources("cpu", "1"))}
	tests := []struct {
		name        string
		predictor   bool
		nodes       []corev1.Node
		pods        []corev1.Pod
		wantEnabled bool
		want        corev1.ResourceList
	}{
		{name: "gate on", predictor: true, nodes: nodes, pods: pods, wantEnabled: true, want: resources("cpu", "3", "pods", "9")},
		{name: "gate on, no nodes: enabled, nothing available", predictor: true, nodes: []corev1.Node{}, pods: []corev1.Pod{},
			wantEnabled: true, want: corev1.ResourceList{}},
		{name: "gate off: neither field", nodes: nodes, pods: pods},
		{name: "listing nodes failed: no prediction this beat", predictor: true, pods: pods},
		{name: "listing pods failed: no prediction this beat", predictor: true, nodes: nodes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := predictorAgent(t, managedCluster(nil, nil), tc.predictor)
			var s clusterv1beta1.ManagedClusterStatus
			a.predict(&s, tc.nodes, tc.pods)
			if s.PredictorEnabled != tc.wantEnabled {
				t.Errorf("predictorEnabled %t, want %t", s.PredictorEnabled, tc.wantEnabled)
			}
			if diff := cmp.Diff(tc.want, s.Available, equalQuantities); diff != "" {
				t.Errorf("available (-want +got):\n%s", diff)
			}
		})
	}
}

// An agent whose Predictor gate went off must leave no status.available
// behind: the hub would go on placing replicas by its last answer.
func TestWriteStatusClearsPrediction(t *testing.T) {
	ctx := context.Background()
	mc := managedCluster(nil, nil)
	mc.Status = clusterv1beta1.ManagedClusterStatus{
		PredictorEnabled: true,
		Available:        resources("cpu", "3"),
		Conditions:       []metav1.Condition{{Type: "Example", Status: metav1.ConditionTrue, Reason: "Kept"}},
	}
	a, parent := predictorAgent(t, mc, false)
	s := clusterv1beta1.ManagedClusterStatus{Readyz: true}
	a.predict(&s, []corev1.Node{schedulableNode("n1", "cpu", "4")}, []corev1.Pod{})
	if err := a.writeStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := parent.ClustersV1beta1().ManagedClusters(mc.Namespace).Get(ctx, mc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.PredictorEnabled || got.Status.Available != nil {
		t.Errorf("status after a beat with the Predictor gate off: predictorEnabled %t, available %v; want neither", got.Status.PredictorEnabled, got.Status.Available)
	}
	if c := got.Status.Conditions; len(c) != 2 || c[0].Type != "Example" || c[1].Type != clusterv1beta1.ClusterReady {
		t.Errorf("conditions %+v: want Example kept and Ready added", c)
	}
}
