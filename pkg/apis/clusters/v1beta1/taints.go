package v1beta1

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// TaintClusterUnschedulable is the taint the hub puts, with effect
// NoSchedule, on a cluster whose Ready condition has not been True for
// longer than the failover grace period (feature gate FailOver,
// docs/failover.md). Upstream Clusternet's key (its known package) and
// effect, so that a Subscription's clusterTolerations written for upstream
// tolerate it here too. It lives with the API, not in the controller that
// writes it, because scheduling and the apps controller read it too.
const TaintClusterUnschedulable = "clusters.clusternet.io/unschedulable"

// IsFailoverTaint says whether t is TaintClusterUnschedulable with effect
// NoSchedule.
func IsFailoverTaint(t corev1.Taint) bool {
	return t.Key == TaintClusterUnschedulable && t.Effect == corev1.TaintEffectNoSchedule
}

// HasFailoverTaint says whether taints hold the failover taint, whoever put
// it there (an admin draining a cluster by hand gets the same moves): the
// one place that tells a failed-over cluster.
func HasFailoverTaint(taints []corev1.Taint) bool {
	return slices.ContainsFunc(taints, IsFailoverTaint)
}
