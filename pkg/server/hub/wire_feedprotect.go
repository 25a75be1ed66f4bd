package hub

import (
	"context"

	"github.com/clusternet/clusternet/pkg/features"
	"github.com/clusternet/clusternet/pkg/server/hub/apps/feedprotect"
)

// startFeedProtection runs FeedInUseProtection in the leader: with the gate
// on, the controller keeping apps.clusternet.io/feed-protection on exactly
// the templates and HelmCharts a Subscription of their namespace uses; off,
// one sweep removing it wherever an earlier run left it, so that turning the
// gate off (a restart) leaves no deletion held. It does not need the
// Deployer gate: Subscriptions use their feeds whether or not this hub
// distributes them now.
func startFeedProtection(ctx context.Context, c *Context) error {
	if !c.FeatureGates.Enabled(features.FeedInUseProtection) {
		c.Go(func() { feedprotect.ReleaseAll(ctx, c.Clusternet) })
		return nil
	}
	ctl, err := feedprotect.New(feedprotect.Options{Clusternet: c.Clusternet, Informers: c.Informers, Events: c.Events})
	if err != nil {
		return err
	}
	c.Go(func() { ctl.Run(ctx, c.Workers) })
	return nil
}
