package agent

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// availableResources is what the child can still take, for the Predictor
// gate's status.available: per resource, each node that takes new pods
// (takesNewPods) contributes its allocatable minus what the pods bound to
// it request (podRequests), at least 0, and the contributions are summed.
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
		addResources(available, remaining(nodes[i].Status.Allocatable, used[nodes[i].Name]))
	}
	return available
}

// takesNewPods says whether the scheduler may place a new replica on n: its
// Ready condition is True, it is not cordoned, and no taint keeps pods
// without a toleration off it. Replicas are not assumed to tolerate
// anything; PreferNoSchedule only steers.
func takesNewPods(n *corev1.Node) bool {
	if c := nodeReadyCondition(n); c == nil || c.Status != corev1.ConditionTrue {
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

// requestsByNode sums, per spec.nodeName, what the pods bound there request,
// one "pods" each. Pods not bound yet hold nothing on any node; Succeeded
// and Failed pods have given their resources back (the scheduler does not
// count them either).
func requestsByNode(pods []corev1.Pod) map[string]corev1.ResourceList {
	used := map[string]corev1.ResourceList{}
	for i := range pods {
		p := &pods[i]
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if used[p.Spec.NodeName] == nil {
			used[p.Spec.NodeName] = corev1.ResourceList{}
		}
		addResources(used[p.Spec.NodeName], podRequests(p))
	}
	return used
}

// podRequests is what p holds on its node, as kube-scheduler counts it:
// Kubernetes' effective request (the sum of the containers or the largest
// init container, whichever is more, sidecars included; pod-level requests
// where set; plus the pod overhead), the larger of spec and status while a
// resize is in progress, and one of "pods".
func podRequests(p *corev1.Pod) corev1.ResourceList {
	reqs := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{
		// InPlacePodVerticalScaling is on by default in every Kubernetes
		// version this agent supports, so the scheduler counts a resizing
		// pod by its larger size: so does this.
		UseStatusResources: true,
	})
	reqs[corev1.ResourcePods] = *resource.NewQuantity(1, resource.DecimalSI)
	return reqs
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
