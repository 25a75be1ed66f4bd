// Package capacity sums what a cluster's nodes offer and what its pods
// hold of them, as kube-scheduler counts it. It is pure (no clients), so
// the agent, which reports these sums in a ManagedCluster's status, and
// the plugin, which reads them from a child when the status lacks them,
// count the same way.
package capacity

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// Nodes sums capacity and allocatable over the nodes whose Ready condition
// is True: what the cluster can run right now (status.capacity and
// status.allocatable of a ManagedCluster).
func Nodes(nodes []corev1.Node) (capacity, allocatable corev1.ResourceList) {
	capacity, allocatable = corev1.ResourceList{}, corev1.ResourceList{}
	for i := range nodes {
		if !NodeReady(&nodes[i]) {
			continue
		}
		Add(capacity, nodes[i].Status.Capacity)
		Add(allocatable, nodes[i].Status.Allocatable)
	}
	return capacity, allocatable
}

// NodeReady says whether n's Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Holds says whether p holds resources on a node: it is bound to one and
// not terminated (Succeeded and Failed pods have given theirs back; the
// scheduler does not count them either).
func Holds(p *corev1.Pod) bool {
	return p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// Requested sums what the pods that hold resources (Holds) request, one
// "pods" each.
func Requested(pods []corev1.Pod) corev1.ResourceList {
	sum := corev1.ResourceList{}
	for i := range pods {
		if Holds(&pods[i]) {
			Add(sum, PodRequests(&pods[i]))
		}
	}
	return sum
}

// PodRequests is what p holds on its node, as kube-scheduler counts it:
// Kubernetes' effective request (the sum of the containers or the largest
// init container, whichever is more, sidecars included; pod-level requests
// where set; plus the pod overhead), the larger of spec and status while a
// resize is in progress, and one of "pods".
func PodRequests(p *corev1.Pod) corev1.ResourceList {
	reqs := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{
		// InPlacePodVerticalScaling is on by default in every Kubernetes
		// version Clusternet supports, so the scheduler counts a resizing
		// pod by its larger size: so does this.
		UseStatusResources: true,
	})
	reqs[corev1.ResourcePods] = *resource.NewQuantity(1, resource.DecimalSI)
	return reqs
}

// Add adds add to sum, per resource.
func Add(sum, add corev1.ResourceList) {
	for name, q := range add {
		total := sum[name]
		if total.Format == "" {
			total = resource.Quantity{Format: q.Format}
		}
		total.Add(q)
		sum[name] = total
	}
}
