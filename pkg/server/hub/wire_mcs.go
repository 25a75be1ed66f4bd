package hub

import (
	"context"

	"k8s.io/klog/v2"

	"github.com/clusternet/clusternet/pkg/features"
	"github.com/clusternet/clusternet/pkg/server/hub/mcs"
)

// startMultiClusterService runs the multi-cluster services controller
// (docs/mcs.md) in the leader: it writes in the parent only, so one replica
// is enough. With the gate off, one sweep removes what an earlier run left
// in dedicated namespaces (agents' RoleBindings, exported and imported
// slices, conflict reports), so that rights and endpoints follow the gate.
func startMultiClusterService(ctx context.Context, c *Context) error {
	if !c.FeatureGates.Enabled(features.MultiClusterService) {
		c.Go(func() {
			if err := mcs.CleanUp(ctx, c.Kube, c.Clusternet); err != nil {
				klog.FromContext(ctx).Error(err, "Removing what multi-cluster services left in dedicated namespaces")
			}
		})
		return nil
	}
	ctl, own, err := mcs.New(c.Kube, c.Informers)
	if err != nil {
		return err
	}
	own.Start(ctx.Done())
	c.Go(func() {
		defer own.Shutdown()
		ctl.Run(ctx, c.Workers)
	})
	return nil
}
