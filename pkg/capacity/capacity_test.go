package capacity

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func list(cpu, memory string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
}

func pod(node string, phase corev1.PodPhase, init, main corev1.ResourceList) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: main}}}},
		Status:     corev1.PodStatus{Phase: phase},
	}
	if init != nil {
		p.Spec.InitContainers = []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{Requests: init}}}
	}
	return p
}

func node(ready corev1.ConditionStatus, allocatable corev1.ResourceList) corev1.Node {
	return corev1.Node{Status: corev1.NodeStatus{Capacity: allocatable, Allocatable: allocatable,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}}}
}

func TestRequested(t *testing.T) {
	got := Requested([]corev1.Pod{
		pod("n1", corev1.PodRunning, nil, list("250m", "64Mi")),
		// The larger of the init container and the containers counts.
		pod("n1", corev1.PodPending, list("1", "32Mi"), list("500m", "64Mi")),
		// Neither unbound nor terminated pods hold anything.
		pod("", corev1.PodPending, nil, list("8", "8Gi")),
		pod("n1", corev1.PodSucceeded, nil, list("8", "8Gi")),
		pod("n1", corev1.PodFailed, nil, list("8", "8Gi")),
	})
	cpu, mem, pods := got[corev1.ResourceCPU], got[corev1.ResourceMemory], got[corev1.ResourcePods]
	if cpu.MilliValue() != 1250 || mem.Value() != 128<<20 || pods.Value() != 2 {
		t.Errorf("requested cpu %s memory %s pods %s, want 1250m, 128Mi, 2", cpu.String(), mem.String(), pods.String())
	}
}

func TestNodes(t *testing.T) {
	capacity, allocatable := Nodes([]corev1.Node{
		node(corev1.ConditionTrue, list("2", "1Gi")),
		node(corev1.ConditionTrue, list("2", "1Gi")),
		node(corev1.ConditionFalse, list("64", "64Gi")),
		node(corev1.ConditionUnknown, list("64", "64Gi")),
	})
	for name, l := range map[string]corev1.ResourceList{"capacity": capacity, "allocatable": allocatable} {
		if cpu, mem := l[corev1.ResourceCPU], l[corev1.ResourceMemory]; cpu.Value() != 4 || mem.Value() != 2<<30 {
			t.Errorf("%s cpu %s memory %s, want the Ready nodes' 4 and 2Gi", name, cpu.String(), mem.String())
		}
	}
}
