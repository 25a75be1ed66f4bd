package agent

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/clusternet/clusternet/pkg/capacity"
)

// availableResources is what the child can still take, for the Predictor
// gate's status.available: per resource, each node that takes new pods
// (takesNewPods) contributes its allocatable minus what the pods bound to
// it request (capacity.PodRequests), at least 0, and the contributions are summed.
// Clamping per node matters: an over-committed node cannot lend another
// node's free room to a replica, so its excess must not cancel it out.
// A resource no such node reports is absent, and so is everything when no
// node takes new pods: a reader finds nothing available.
func availableResources(nodes []corev1.Node, pods []corev1.Pod) corev1.ResourceList {
	used := requestsByNode(pods)
	available := corev1.ResourceList{}
	for i := range nodes {
		if !takesNewPods(&nodes[i]) {
			continue
		}
		capacity.Add(available, remaining(nodes[i].Status.Allocatable, used[nodes[i].Name]))
	}
	return available
}

// takesNewPods says whether the scheduler may place a new replica on n: its
// Ready condition is True, it is not cordoned, and no taint keeps pods
// without a toleration off it. Replicas are not assumed to tolerate
// anything; PreferNoSchedule only steers.
func takesNewPods(n *corev1.Node) bool {
	if !capacity.NodeReady(n) {
		return false
	}
	if n.Spec.Unschedulable {
		return false
	}
	for _, taint := range n.Spec.Taints {
		if taint.Effect == corev1.TaintEffectNoSchedule || taint.Effect == corev1.TaintEffectNoExecute {
			return false
		}
	}
	return true
}

// requestsByNode sums, per spec.nodeName, what the pods that hold resources
// there (capacity.Holds) request, one "pods" each: pkg/capacity counts as
// kube-scheduler does, the same way the plugin's `top clusters` does.
func requestsByNode(pods []corev1.Pod) map[string]corev1.ResourceList {
	used := map[string]corev1.ResourceList{}
	for i := range pods {
		p := &pods[i]
		if !capacity.Holds(p) {
			continue
		}
		if used[p.Spec.NodeName] == nil {
			used[p.Spec.NodeName] = corev1.ResourceList{}
		}
		capacity.Add(used[p.Spec.NodeName], capacity.PodRequests(p))
	}
	return used
}

// remaining is allocatable minus used, per resource allocatable names, and
// never below 0.
func remaining(allocatable, used corev1.ResourceList) corev1.ResourceList {
	left := make(corev1.ResourceList, len(allocatable))
	for name, q := range allocatable {
		free := q.DeepCopy()
		if u, ok := used[name]; ok {
			free.Sub(u)
		}
		if free.Sign() < 0 {
			free = resource.Quantity{Format: q.Format}
		}
		left[name] = free
	}
	return left
}
