package hub

import (
	"context"

	"github.com/clusternet/clusternet/pkg/server/hub/clusterapi"
)

// startClusterAPIDiscovery runs cluster-api discovery in the leader when
// --cluster-api-namespaces names namespaces: it acts in the discovered
// clusters through their kubeconfig Secrets, not through tunnels, so one
// replica is enough, and two would install twice.
func startClusterAPIDiscovery(ctx context.Context, c *Context) error {
	if !c.ClusterAPI.Enabled() {
		return nil
	}
	cfg, err := c.ClusterAPI.ManagementConfig(c.Config)
	if err != nil {
		return err
	}
	mgmt, err := clusterapi.NewManagement(cfg)
	if err != nil {
		return err
	}
	ctl, err := clusterapi.New(clusterapi.Config{
		Options:    c.ClusterAPI,
		Parent:     c.Config,
		Kube:       c.Kube,
		Clusternet: c.Clusternet,
		Informers:  c.Informers,
		Management: mgmt,
	})
	if err != nil {
		return err
	}
	c.Go(func() { ctl.Run(ctx, c.Workers) })
	return nil
}
