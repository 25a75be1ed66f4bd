package hub

import (
	"context"

	"k8s.io/utils/clock"

	"github.com/clusternet/clusternet/pkg/features"
	"github.com/clusternet/clusternet/pkg/server/hub/lifecycle"
)

// startFailover runs the failover taint controller in the leader: with the
// gate FailOver on, it taints the clusters not Ready for longer than
// --cluster-failover-grace-period (docs/failover.md); off, it runs with no
// grace period, which only removes the taints an earlier run with the gate
// on added, so that turning the gate off (a restart) leaves no cluster
// failed over.
func startFailover(ctx context.Context, c *Context) error {
	grace := c.FailoverGracePeriod
	if !c.FeatureGates.Enabled(features.FailOver) {
		grace = 0
	}
	ctl, err := lifecycle.NewFailover(c.Clusternet, c.Informers.Clusters().V1beta1().ManagedClusters(), clock.RealClock{}, grace)
	if err != nil {
		return err
	}
	c.Go(func() { ctl.Run(ctx, c.Workers) })
	return nil
}
