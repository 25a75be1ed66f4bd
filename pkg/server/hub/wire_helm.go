package hub

import (
	"context"

	"k8s.io/utils/clock"

	"github.com/clusternet/clusternet/pkg/helm"
	hubhelm "github.com/clusternet/clusternet/pkg/server/hub/helm"
)

// chartSource is a chart Source bounded by the hub's --chart-repository-*
// flags: allowed hosts, the metadata deny and size limits.
func chartSource(c *Context) (*helm.Source, error) {
	opts := c.ChartRepositories
	if opts == nil {
		opts = helm.NewRepositoryOptions("clusternet-hub")
	}
	return opts.NewSource()
}

// startHelm runs the parent-side Helm controllers (leader only): the
// HelmChart resolver, and Helm Descriptions to HelmReleases with their
// status mirrored back.
func startHelm(ctx context.Context, c *Context) error {
	apps := c.Informers.Apps().V1alpha1()
	source, err := chartSource(c)
	if err != nil {
		return err
	}
	resolver, err := hubhelm.NewResolver(c.Clusternet, c.Kube, apps.HelmCharts(), source, c.Events, clock.RealClock{})
	if err != nil {
		return err
	}
	descriptions, err := hubhelm.NewDescriptions(c.Clusternet, c.Kube, apps.Descriptions(), apps.HelmCharts(),
		apps.HelmReleases(), c.Informers.Clusters().V1beta1().ManagedClusters(), c.Events)
	if err != nil {
		return err
	}
	c.Go(func() { resolver.Run(ctx, c.Workers) })
	c.Go(func() { descriptions.Run(ctx, c.Workers) })
	return nil
}

// startHelmPusher applies HelmReleases to the clusters the hub pushes to
// whose tunnel this replica holds (every replica runs it), with the
// clients of the replica's per-cluster registry, which the generic pusher
// shares (Context.clusterClients).
func startHelmPusher(ctx context.Context, c *Context) error {
	source, err := chartSource(c)
	if err != nil {
		return err
	}
	clients, err := c.clusterClients(ctx)
	if err != nil {
		return err
	}
	pusher, err := hubhelm.NewPusher(c.Clusternet, c.Kube, c.Informers.Apps().V1alpha1().HelmReleases(),
		c.Informers.Clusters().V1beta1().ManagedClusters(), c.Transports.Tunnels(), clients,
		c.Registrations().Namespace, source, c.Events)
	if err != nil {
		return err
	}
	c.Go(func() { pusher.Run(ctx, c.Workers) })
	return nil
}
