package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	clusterinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/clusters/v1beta1"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
)

const (
	// AnnotationFailoverTaint on a ManagedCluster records that its
	// clusterv1beta1.TaintClusterUnschedulable is the hub's own (its value:
	// when the hub added it). Only such a taint is removed when the cluster
	// is Ready again: one an admin put there stays until the admin removes
	// it.
	AnnotationFailoverTaint = "clusters.clusternet.io/failover-taint"
	// AnnotationNotReadySince is when the hub first saw the cluster's Ready
	// condition other than True, on the hub's clock: the grace period counts
	// from it. Not from Ready's lastTransitionTime, which the agent writes:
	// an agent that backdated it would skip the grace period (or, across
	// the fleet, make everything reschedule at once).
	AnnotationNotReadySince = "clusters.clusternet.io/failover-not-ready-since"
	// AnnotationReadySince is when the hub first saw the Ready condition of
	// a cluster it tainted True again, on the hub's clock: the taint goes
	// once Ready has stayed True for the grace period from it, so that one
	// good report from a flapping cluster does not bring Subscriptions back
	// to it.
	//
	// An agent can write none of these three (the
	// clusternet-agent-reports-status-only admission policy lets it change
	// only clusters.clusternet.io/aggregated-node-labels).
	AnnotationReadySince = "clusters.clusternet.io/failover-ready-since"
	// DefaultFailoverGracePeriod is --cluster-failover-grace-period's default.
	DefaultFailoverGracePeriod = 5 * time.Minute
)

// Failover taints the clusters that have not been Ready for longer than
// the grace period (feature gate FailOver), and removes its taint when they
// have been Ready again for as long. Both periods count from the hub's own
// observations on its own clock (AnnotationNotReadySince,
// AnnotationReadySince), so a cluster that flaps faster than the grace
// period is never tainted, and one that is tainted stays so until it is
// steadily back. It writes the ManagedCluster's spec and annotations only;
// the lifecycle controller writes its status.
type Failover struct {
	*controller.Loop
	clusternet versioned.Interface
	lister     clusterlisters.ManagedClusterLister
	clock      clock.PassiveClock
	// grace is the grace period; 0 means the gate is off: no cluster is
	// tainted, and the taints an earlier run with the gate on added go.
	grace time.Duration
}

// NewFailover returns the failover controller, fed by the ManagedCluster
// informer. grace 0 only removes the hub's taints (the gate is off).
func NewFailover(clusternet versioned.Interface, mcls clusterinformers.ManagedClusterInformer, clk clock.PassiveClock, grace time.Duration) (*Failover, error) {
	f := &Failover{clusternet: clusternet, lister: mcls.Lister(), clock: clk, grace: grace}
	f.Loop = controller.New("cluster-failover", f.sync)
	return f, f.Watch(mcls.Informer(), nil)
}

// step is what one look at a cluster decides.
type step struct {
	// upd is the cluster to write, nil when nothing changes.
	upd *clusterv1beta1.ManagedCluster
	// left is how long until the next decision is due (0: none).
	left time.Duration
	// what is logged when upd is written; empty for bookkeeping only.
	what string
}

// decide is what the hub does with m at now. A cluster that never reported
// has no Ready condition and is not tainted: nothing was placed there on
// the strength of it. Not Ready (Unknown: heartbeats stopped; False: the
// agent reports its apiserver failing) is first recorded, then tainted
// once it has lasted grace; Ready again is first recorded, then untainted
// once it has lasted grace. A TaintClusterUnschedulable the hub did not
// add (no AnnotationFailoverTaint) is an admin's: never removed, and the
// hub adds none beside it.
func decide(m *clusterv1beta1.ManagedCluster, now time.Time, grace time.Duration) step {
	_, ours := m.Annotations[AnnotationFailoverTaint]
	tainted := clusterv1beta1.HasFailoverTaint(m.Spec.Taints)
	if grace <= 0 {
		// The gate is off: the hub's taint and records go, the cluster lost or not.
		return forget(m, ours, "Gate FailOver off: failover taint removed")
	}
	if tainted && !ours {
		return forget(m, false, "") // an admin's taint: theirs to remove
	}
	ready := meta.FindStatusCondition(m.Status.Conditions, clusterv1beta1.ClusterReady)
	if ready == nil {
		return forget(m, ours, "Cluster never reported: failover taint removed")
	}
	up := ready.Status == metav1.ConditionTrue
	switch {
	case !tainted && up:
		return forget(m, false, "") // healthy: no record kept
	case !tainted:
		since, upd := observed(m, AnnotationNotReadySince, AnnotationReadySince, now)
		if left := since.Add(grace).Sub(now); left > 0 {
			return step{upd: upd, left: left}
		}
		return step{upd: taint(orCopy(upd, m), ready, now), what: "Cluster failed over: tainted unschedulable"}
	case !up:
		// Tainted and not Ready: any Ready stretch ended before it lasted.
		_, upd := observed(m, AnnotationNotReadySince, AnnotationReadySince, now)
		return step{upd: upd}
	default:
		since, upd := observed(m, AnnotationReadySince, "", now)
		if left := since.Add(grace).Sub(now); left > 0 {
			return step{upd: upd, left: left}
		}
		return forget(m, true, "Cluster back: Ready for the grace period, failover taint removed")
	}
}

// observed is when the hub first saw the state key records (now when it
// has no record of it yet, or one it cannot read) and, when that record
// is new or clear (the record of the opposite state) must go, m updated.
func observed(m *clusterv1beta1.ManagedCluster, key, clear string, now time.Time) (time.Time, *clusterv1beta1.ManagedCluster) {
	_, stale := m.Annotations[clear]
	if since, err := time.Parse(time.RFC3339, m.Annotations[key]); err == nil {
		if !stale {
			return since, nil
		}
		upd := m.DeepCopy()
		delete(upd.Annotations, clear)
		return since, upd
	}
	upd := m.DeepCopy()
	if upd.Annotations == nil {
		upd.Annotations = map[string]string{}
	}
	delete(upd.Annotations, clear)
	upd.Annotations[key] = now.UTC().Format(time.RFC3339)
	return now, upd
}

// forget is m with the hub's failover records removed and, with untaint,
// its failover taint too (the caller knows it is the hub's); the record
// that the taint is the hub's goes with it, or when the taint is gone
// already (an admin removed it). No update when nothing changes.
func forget(m *clusterv1beta1.ManagedCluster, untaint bool, what string) step {
	tainted := clusterv1beta1.HasFailoverTaint(m.Spec.Taints)
	upd := m.DeepCopy()
	delete(upd.Annotations, AnnotationNotReadySince)
	delete(upd.Annotations, AnnotationReadySince)
	if untaint || !tainted {
		delete(upd.Annotations, AnnotationFailoverTaint)
	}
	if !untaint || !tainted {
		if len(upd.Annotations) == len(m.Annotations) {
			return step{}
		}
		return step{upd: upd}
	}
	upd.Spec.Taints = slices.DeleteFunc(upd.Spec.Taints, clusterv1beta1.IsFailoverTaint)
	if len(upd.Spec.Taints) == 0 {
		upd.Spec.Taints = nil
	}
	return step{upd: upd, what: what}
}

// taint adds the hub's failover taint to upd (a copy), recording it as the
// hub's.
func taint(upd *clusterv1beta1.ManagedCluster, ready *metav1.Condition, now time.Time) *clusterv1beta1.ManagedCluster {
	reason := "NotReady"
	if ready.Reason != "" {
		reason = ready.Reason // upstream's value: why Ready is not True
	}
	upd.Spec.Taints = append(upd.Spec.Taints, corev1.Taint{Key: clusterv1beta1.TaintClusterUnschedulable, Value: reason, Effect: corev1.TaintEffectNoSchedule})
	if upd.Annotations == nil {
		upd.Annotations = map[string]string{}
	}
	upd.Annotations[AnnotationFailoverTaint] = now.UTC().Format(time.RFC3339)
	return upd
}

func orCopy(upd, m *clusterv1beta1.ManagedCluster) *clusterv1beta1.ManagedCluster {
	if upd != nil {
		return upd
	}
	return m.DeepCopy()
}

// sync returns how long until the cluster's grace or stabilisation period
// ends, when one has begun and not ended.
func (f *Failover) sync(ctx context.Context, key string) (time.Duration, error) {
	m, err := cached(f.lister, key)
	if m == nil || err != nil || m.DeletionTimestamp != nil {
		return 0, err
	}
	st := decide(m, f.clock.Now(), f.grace)
	if st.upd == nil {
		return st.left, nil
	}
	if _, err := f.clusternet.ClustersV1beta1().ManagedClusters(m.Namespace).Update(ctx, st.upd, metav1.UpdateOptions{}); err != nil {
		return 0, fmt.Errorf("updating ManagedCluster %s/%s's failover taint and records: %w", m.Namespace, m.Name, err)
	}
	if st.what != "" {
		klog.FromContext(ctx).Info(st.what, "cluster", klog.KObj(m), "grace", f.grace, "taint", clusterv1beta1.TaintClusterUnschedulable)
	}
	return st.left, nil
}
