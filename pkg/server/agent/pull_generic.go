package agent

import (
	"context"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/deployer"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
)

// runGenericPuller applies the Generic Descriptions of this cluster's
// dedicated namespace into the child with the agent's own credentials, when
// the hub does not push here: sync mode Pull, or AppPusher off. Otherwise
// the hub pushes and it does nothing.
func runGenericPuller(ctx context.Context, c *PullContext) error {
	logger := klog.FromContext(ctx).WithValues("controller", "generic-puller")
	if clusterv1beta1.HubPushes(c.SyncMode, c.AppPusher) {
		logger.Info("The hub pushes Descriptions to this cluster; not pulling", "syncMode", c.SyncMode, "appPusher", c.AppPusher)
		return nil
	}
	informers := externalversions.NewSharedInformerFactoryWithOptions(c.Parent, 0, externalversions.WithNamespace(c.Namespace))
	ctl, err := deployer.NewController(deployer.Options{
		Name:         "generic-puller",
		Parent:       c.Parent,
		Descriptions: informers.Apps().V1alpha1().Descriptions(),
		Events:       c.Events,
		Place: deployer.OwnNamespace(c.Namespace, string(c.ClusterID), func() *rest.Config {
			cfg := rest.CopyConfig(c.ChildConfig)
			if cfg.QPS == 0 { // client-go's 5 per second would pace a rollout
				cfg.QPS, cfg.Burst = 50, 100
			}
			return cfg
		}),
		Workers: c.Workers,
	})
	if err != nil {
		return err
	}
	informers.Start(ctx.Done())
	defer informers.Shutdown()
	defer c.caches.add("generic-puller", informers.Apps().V1alpha1().Descriptions().Informer().HasSynced)()
	logger.Info("Pulling Descriptions", "namespace", c.Namespace, "syncMode", c.SyncMode, "appPusher", c.AppPusher)
	ctl.Run(klog.NewContext(ctx, logger))
	return nil
}
