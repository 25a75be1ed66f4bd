package hub

import (
	"context"

	"github.com/clusternet/clusternet/pkg/features"
	"github.com/clusternet/clusternet/pkg/server/hub/apps"
)

// startDistribution runs application distribution in the leader:
// Subscriptions scheduled onto clusters as Bases, Bases rendered into
// Descriptions with Globalizations and Localizations, and the Descriptions'
// statuses summed back into the Subscriptions (docs/distribution.md).
func startDistribution(ctx context.Context, c *Context) error {
	ctl, err := apps.New(apps.Options{Clusternet: c.Clusternet, Informers: c.Informers, Mapper: c.Mapper, Events: c.Events,
		FailOver: c.FeatureGates.Enabled(features.FailOver)})
	if err != nil {
		return err
	}
	c.Go(func() { ctl.Run(ctx, c.Workers) })
	return nil
}
