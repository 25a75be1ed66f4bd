package apps

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/apps/render"
	"github.com/clusternet/clusternet/pkg/server/hub/apps/scheduling"
)

// Failover (feature gate FailOver, docs/failover.md). The hub taints a
// cluster that has not been Ready for longer than the grace period
// (lifecycle.Failover); scheduling then places the replicas of the
// Subscriptions that divide them on healthy clusters (scheduling.tolerated
// decides, and reports the clusters it unbound for that reason alone in
// Result.FailedOver). What this file decides is what happens to the lost
// cluster's Base, and how the Subscriptions come back to it.

const (
	// ReasonFailedOver is the event on a Subscription whose replicas left a
	// failed-over cluster.
	ReasonFailedOver = "FailedOver"
	// ReasonFailedBack is the event on a Subscription when a cluster it
	// failed over from is back and scheduled again.
	ReasonFailedBack = "FailedBack"

	// AnnotationFailoverDelete set to "true" on a Subscription opts in to
	// deleting its Base (and so its Descriptions, and the objects in the
	// child once its agent is back) on a cluster it fails over from. Unset,
	// the Base and Descriptions stay as they were, so an agent that comes
	// back does not delete what runs before the new placement is decided.
	AnnotationFailoverDelete = "apps.clusternet.io/failover-delete"

	// AnnotationFailedOver on a Base (the hub's; its value is when) marks
	// it kept on a failed-over cluster: its replicas run elsewhere now, so
	// its cluster is not bound and its share is not in force (inForce), and
	// the next round that binds the cluster again or unbinds it says so
	// (ReasonFailedBack).
	AnnotationFailedOver = "apps.clusternet.io/failed-over"

	// failbackSpacing is the pace at which the Subscriptions that may place
	// replicas on a returning cluster are queued (10 a second, however many
	// clusters come back at once): a fleet whose network comes back does
	// not reschedule everything at the same moment.
	failbackSpacing = 100 * time.Millisecond
)

// optsInToDelete says whether sub asked for its Bases on failed-over
// clusters to be deleted (AnnotationFailoverDelete).
func optsInToDelete(sub *appsv1alpha1.Subscription) bool {
	return sub.Annotations[AnnotationFailoverDelete] == "true"
}

// keptFailedOver says whether b is a Base kept on a failed-over cluster.
func keptFailedOver(b *appsv1alpha1.Base) bool {
	_, ok := b.Annotations[AnnotationFailedOver]
	return ok
}

// failedOverIn says whether this round's scheduling unbound the cluster of
// dedicated namespace ns only because it is failed over
// (scheduling.Result.FailedOver): the decision is scheduling's, taken
// here as it is. A failed-over cluster that the round drops for another
// reason (the subscribers no longer select it) is unbound as any other.
func (pl *placement) failedOverIn(ns string) bool {
	return slices.ContainsFunc(pl.FailedOver, func(ck string) bool { return strings.HasPrefix(ck, ns+"/") })
}

// keepFailedOver handles a Base that scheduling no longer binds because
// its cluster is failed over: unless sub opts in to deleting, it is kept
// as it is, marked (AnnotationFailedOver), and the move announced once. It
// says whether the Base stays; false leaves it to be deleted like any
// other.
func (c *Controller) keepFailedOver(ctx context.Context, sub *appsv1alpha1.Subscription, b *appsv1alpha1.Base, pl *placement) (bool, error) {
	if !pl.failedOverIn(b.Namespace) {
		return false, nil
	}
	m := pl.clusterIn(b.Namespace)
	ck := m.Namespace + "/" + m.Name
	keep := !optsInToDelete(sub)
	announced := keptFailedOver(b) && (keep || b.Annotations[AnnotationFailoverDelete] == "true")
	if announced {
		return keep, nil
	}
	// Marked first, deleted or not: the update carries the cached
	// resourceVersion, so of two rounds that both saw the Base unmarked
	// (the cache a moment behind) only one succeeds and announces. A Base
	// to delete also gets AnnotationFailoverDelete, its record that the
	// deletion was announced.
	upd := b.DeepCopy()
	if upd.Annotations == nil {
		upd.Annotations = map[string]string{}
	}
	if !keep {
		upd.Annotations[AnnotationFailoverDelete] = "true"
	}
	if keptFailedOver(b) {
		// Kept when it failed over (announced then); the opt-in came
		// later, and is why it goes now.
		if err := c.markFailedOver(ctx, upd, ck); err != nil {
			return false, err
		}
		c.events.Eventf(sub, corev1.EventTypeNormal, ReasonFailedOver,
			"cluster %s is still failed over and annotation %s=true is set now: deleting Base %s/%s, kept as it was since it failed over, and its Descriptions",
			ck, AnnotationFailoverDelete, b.Namespace, b.Name)
		return false, nil
	}
	upd.Annotations[AnnotationFailedOver] = time.Now().UTC().Format(time.RFC3339)
	if err := c.markFailedOver(ctx, upd, ck); err != nil {
		return false, err
	}
	klog.FromContext(ctx).Info("Failed over", "subscription", klog.KObj(sub), "cluster", ck, "base", klog.KObj(b), "deleting", !keep)
	what := fmt.Sprintf("Base %s/%s and its Descriptions stay as they were until it is back (annotation %s=true deletes them)", b.Namespace, b.Name, AnnotationFailoverDelete)
	if !keep {
		what = fmt.Sprintf("annotation %s=true: deleting Base %s/%s and its Descriptions", AnnotationFailoverDelete, b.Namespace, b.Name)
	}
	c.events.Eventf(sub, corev1.EventTypeNormal, ReasonFailedOver,
		"cluster %s is tainted %s (not Ready for longer than the failover grace period): its replicas (%s) are placed on healthy clusters (%s); %s",
		ck, clusterv1beta1.TaintClusterUnschedulable, describeShares(sharesOn(b)), describePlacement(pl.Replicas), what)
	return keep, nil
}

// markFailedOver writes upd, a Base on failed-over cluster ck with its
// failover records.
func (c *Controller) markFailedOver(ctx context.Context, upd *appsv1alpha1.Base, ck string) error {
	if _, err := c.client.AppsV1alpha1().Bases(upd.Namespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("marking Base %s/%s failed over (cluster %s): %w", upd.Namespace, upd.Name, ck, err)
	}
	return nil
}

// clusterIn is the cluster of dedicated namespace ns as the round that
// made pl saw it (nil if none): what it decides about a cluster's Base
// follows what scheduling saw of the cluster, not a later look at the
// cache, where the cluster may have come back meanwhile.
func (pl *placement) clusterIn(ns string) *clusterv1beta1.ManagedCluster {
	for ck, m := range pl.clusters {
		if strings.HasPrefix(ck, ns+"/") {
			return m
		}
	}
	return nil
}

// announceFailback records, when a Base kept on a failed-over cluster is
// bound again (have: as it was before the write that took its mark away,
// nil when this round's write took none away), why, and what its cluster
// runs now.
func (c *Controller) announceFailback(sub *appsv1alpha1.Subscription, have *appsv1alpha1.Base, ck string, pl *placement) {
	if have == nil || !keptFailedOver(have) {
		return
	}
	m := pl.clusters[ck]
	tainted := m != nil && clusterv1beta1.HasFailoverTaint(m.Spec.Taints)
	if tainted && c.failOver {
		return // bound again while failed over (a toleration added): not back
	}
	now := map[string]int32{}
	for feed, perCluster := range pl.Replicas {
		now[feed] = perCluster[ck]
	}
	why := "is back and bound again"
	if tainted {
		// A restart with the gate off: the taint is an ordinary NoSchedule
		// one, which leaves a bound cluster bound.
		why = fmt.Sprintf("is still tainted %s, but feature gate FailOver is off: bound again as before it failed over", clusterv1beta1.TaintClusterUnschedulable)
	}
	c.events.Eventf(sub, corev1.EventTypeNormal, ReasonFailedBack,
		"cluster %s %s: it runs %s (it ran %s before it failed over); placement now %s",
		ck, why, describeShares(now), describeShares(sharesOn(have)), describePlacement(pl.Replicas))
}

// announceUnbound records why the round unbinds b's cluster when failover
// is the reason or what b was kept for, and says whether it did; false
// leaves the ordinary Unbound event to the caller.
func (c *Controller) announceUnbound(sub *appsv1alpha1.Subscription, b *appsv1alpha1.Base, pl *placement) bool {
	if pl.failedOverIn(b.Namespace) {
		return true // opted in to deleting: keepFailedOver announced it
	}
	m := pl.clusterIn(b.Namespace)
	if !keptFailedOver(b) || m == nil || clusterv1beta1.HasFailoverTaint(m.Spec.Taints) || !scheduling.Selector(&sub.Spec)(m.Labels) {
		return false // not back: whatever unbinds it now is the ordinary reason
	}
	c.events.Eventf(sub, corev1.EventTypeNormal, ReasonFailedBack,
		"cluster %s/%s is back; it ran %s before it failed over, and the scheduling strategy keeps the replicas where they moved (%s): deleting Base %s/%s and its Descriptions",
		m.Namespace, m.Name, describeShares(sharesOn(b)), describePlacement(pl.Replicas), b.Namespace, b.Name)
	return true
}

// sharesOn is what b says its cluster runs, by feed.
func sharesOn(b *appsv1alpha1.Base) map[string]int32 {
	rs, _ := render.DecodeReplicas(b.Annotations[render.AnnotationReplicas])
	out := make(map[string]int32, len(rs))
	for _, r := range rs {
		out[r.Feed] = r.Replicas
	}
	return out
}

// describeShares is "<feed> <n>, ..." in feed order; "no divided
// replicas" when there are none.
func describeShares(shares map[string]int32) string {
	if len(shares) == 0 {
		return "no divided replicas"
	}
	parts := make([]string, 0, len(shares))
	for _, feed := range slices.Sorted(maps.Keys(shares)) {
		parts = append(parts, fmt.Sprintf("%s %d", feed, shares[feed]))
	}
	return strings.Join(parts, ", ")
}

// describePlacement is "<feed>: <cluster> <n>, ...; ..." in key order,
// clusters with no replica left out.
func describePlacement(replicas map[string]map[string]int32) string {
	if len(replicas) == 0 {
		return "no divided replicas"
	}
	var parts []string
	for _, feed := range slices.Sorted(maps.Keys(replicas)) {
		var on []string
		for _, ck := range slices.Sorted(maps.Keys(replicas[feed])) {
			if n := replicas[feed][ck]; n > 0 {
				on = append(on, fmt.Sprintf("%s %d", ck, n))
			}
		}
		if len(on) == 0 {
			on = []string{"none placed"}
		}
		parts = append(parts, feed+": "+strings.Join(on, ", "))
	}
	return strings.Join(parts, "; ")
}

// failback paces the Subscriptions queued for returning clusters
// (failbackSpacing apart, across clusters). A Subscription already waiting
// keeps its slot: K clusters back at once that all concern it queue it
// once, and take one slot.
type failback struct {
	mu      sync.Mutex
	next    time.Time
	spacing time.Duration
	// pending are the queued Subscriptions by key, with when they are due.
	pending map[string]time.Time
}

// slot is how long key waits, and false when it is queued already and
// has not come due (it keeps that slot; nothing to add).
func (f *failback) slot(key string, now time.Time) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.next.After(now) {
		f.pending = nil // every slot handed out has come due
	}
	if at, ok := f.pending[key]; ok && !at.Before(now) {
		return 0, false
	}
	at := now
	if f.next.After(at) {
		at = f.next
	}
	f.next = at.Add(f.spacing)
	if f.pending == nil {
		f.pending = map[string]time.Time{}
	}
	f.pending[key] = at
	return at.Sub(now), true
}

// mayMoveTo says whether a round of sub may change something on a cluster
// the failover taint has just left: with a Base there (hasBase), only one
// that divides replicas, or whose bindings another scheduler writes, may
// (a Replication Base stayed bound throughout: nothing to move); without
// one, any that selects the cluster may bind it now (selected).
func mayMoveTo(sub *appsv1alpha1.Subscription, hasBase, selected bool) bool {
	if hasBase {
		return sub.Spec.SchedulingStrategy == appsv1alpha1.DividingSchedulingStrategy || external(sub)
	}
	return selected
}

// failedBack queues, paced, the Subscriptions that may place replicas on
// m, a cluster the failover taint has just left (mayMoveTo).
func (c *Controller) failedBack(m *clusterv1beta1.ManagedCluster) {
	subs, err := c.subs.List(labels.Everything())
	if err != nil {
		return
	}
	bases, err := c.bases.Bases(m.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	withBase := map[string]bool{}
	for _, b := range bases {
		withBase[b.Labels[appsv1alpha1.LabelSubscriptionUID]] = true
	}
	slices.SortFunc(subs, func(a, b *appsv1alpha1.Subscription) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	now := time.Now()
	for _, sub := range subs {
		if !mayMoveTo(sub, withBase[string(sub.UID)], scheduling.Selector(&sub.Spec)(m.Labels)) {
			continue
		}
		k := sub.Namespace + "/" + sub.Name
		c.plans.invalidate(k)
		if d, ok := c.failback.slot(k, now); ok {
			c.subLoop.AddAfter(k, d)
		}
	}
}

// onlyFailoverTaintLeft says whether the only change from o to n is that
// the failover taint went: the cluster is back, and the Subscriptions that
// may use it are queued paced (failedBack) rather than all at once.
func onlyFailoverTaintLeft(o, n *clusterv1beta1.ManagedCluster) bool {
	if o == nil || n == nil || !clusterv1beta1.HasFailoverTaint(o.Spec.Taints) || clusterv1beta1.HasFailoverTaint(n.Spec.Taints) {
		return false
	}
	others := func(ts []corev1.Taint) []corev1.Taint {
		return slices.DeleteFunc(slices.Clone(ts), clusterv1beta1.IsFailoverTaint)
	}
	return apiequality.Semantic.DeepEqual(o.Labels, n.Labels) &&
		apiequality.Semantic.DeepEqual(others(o.Spec.Taints), others(n.Spec.Taints)) &&
		o.Spec.ClusterID == n.Spec.ClusterID &&
		(o.DeletionTimestamp == nil) == (n.DeletionTimestamp == nil)
}
