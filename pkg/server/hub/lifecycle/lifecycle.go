// Package lifecycle marks a ManagedCluster Ready=Unknown when its agent has
// missed three heartbeats in a row.
package lifecycle

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	clusterinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/clusters/v1beta1"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/metrics"
)

const (
	// MissedHeartbeats is how many heartbeats may be missed before Ready turns Unknown.
	MissedHeartbeats = 3
	// DefaultHeartbeatFrequency is the agent's default --cluster-status-update-frequency,
	// used when a cluster has not said its own.
	DefaultHeartbeatFrequency = 3 * time.Minute
	// ReasonHeartbeatMissed is the Ready condition's reason when heartbeats stop.
	ReasonHeartbeatMissed = "ClusterStatusUnknown"
)

// Controller watches ManagedClusters and schedules a check for the moment
// each one would go stale, so no timer ticks for healthy clusters.
type Controller struct {
	*controller.Loop
	clusternet versioned.Interface
	lister     clusterlisters.ManagedClusterLister
	clock      clock.PassiveClock
}

// New returns a lifecycle controller fed by the ManagedCluster informer.
func New(clusternet versioned.Interface, mcls clusterinformers.ManagedClusterInformer, clk clock.PassiveClock) (*Controller, error) {
	c := &Controller{clusternet: clusternet, lister: mcls.Lister(), clock: clk}
	c.Loop = controller.New("cluster-lifecycle", c.sync)
	// Deletes are queued too: sync finds nothing in the cache and does nothing.
	return c, c.Watch(mcls.Informer(), nil)
}

// Run works until ctx ends, reporting every cluster's heartbeat age
// (clusternet_lifecycle_heartbeat_age_seconds) meanwhile.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer metrics.SetHeartbeats(c.heartbeats)()
	c.Loop.Run(ctx, workers)
}

// heartbeats are the last reports of the clusters in the cache.
func (c *Controller) heartbeats() []metrics.Heartbeat {
	mcls, err := c.lister.List(labels.Everything())
	if err != nil {
		return nil
	}
	out := make([]metrics.Heartbeat, 0, len(mcls))
	for _, mc := range mcls {
		out = append(out, metrics.Heartbeat{Cluster: string(mc.Spec.ClusterID), Last: mc.Status.LastObservedTime.Time})
	}
	return out
}

// cached is the ManagedCluster of key in lister's cache, nil when there
// is none (deleted: nothing to do).
func cached(lister clusterlisters.ManagedClusterLister, key string) (*clusterv1beta1.ManagedCluster, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, err
	}
	mcls, err := lister.ManagedClusters(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return mcls, err
}

// sync returns how long until the cluster must be checked again.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	mcls, err := cached(c.lister, key)
	if mcls == nil || err != nil {
		return 0, err
	}
	ns := mcls.Namespace
	last := mcls.Status.LastObservedTime
	if last.IsZero() {
		return 0, nil // never reported: nothing to go stale yet
	}
	frequency := DefaultHeartbeatFrequency
	if f := mcls.Status.HeartbeatFrequencySeconds; f != nil && *f > 0 {
		frequency = time.Duration(*f) * time.Second
	}
	grace := MissedHeartbeats * frequency
	if left := last.Add(grace).Sub(c.clock.Now()); left > 0 {
		return left, nil
	}
	ready := meta.FindStatusCondition(mcls.Status.Conditions, clusterv1beta1.ClusterReady)
	if ready != nil && ready.Status == metav1.ConditionUnknown {
		return 0, nil
	}
	mcls = mcls.DeepCopy()
	meta.SetStatusCondition(&mcls.Status.Conditions, metav1.Condition{
		Type:               clusterv1beta1.ClusterReady,
		Status:             metav1.ConditionUnknown,
		Reason:             ReasonHeartbeatMissed,
		Message:            fmt.Sprintf("the agent has not reported since %s (%d heartbeats of %s missed)", last.UTC().Format(time.RFC3339), MissedHeartbeats, frequency),
		ObservedGeneration: mcls.Generation,
		LastTransitionTime: metav1.NewTime(c.clock.Now()),
	})
	// A silent cluster's last report cannot vouch for it any longer.
	mcls.Status.Readyz, mcls.Status.Healthz, mcls.Status.Livez = false, false, false
	if _, err := c.clusternet.ClustersV1beta1().ManagedClusters(ns).UpdateStatus(ctx, mcls, metav1.UpdateOptions{}); err != nil {
		return 0, err
	}
	klog.FromContext(ctx).Info("Cluster missed its heartbeats", "cluster", klog.KObj(mcls), "lastObservedTime", last.Time, "frequency", frequency)
	return 0, nil
}
