package hub

import (
	"context"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/deployer"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/server/hub/placement"
	"github.com/clusternet/clusternet/pkg/server/hub/sockets"
)

// startGenericPusher pushes Generic Descriptions into the children whose
// tunnels this replica holds and whose ManagedCluster says the hub pushes
// (sync mode Push or Dual, and the agent's AppPusher on). It acts in the
// child through the tunnel as the cluster's agent, with the clients of the
// replica's per-cluster registry (Context.clusterClients), which also stops its
// watches of a child when the cluster leaves or its tunnel goes down here.
// Every replica runs it; each acts only where it holds the tunnel, and looks
// again at a cluster's Descriptions when its tunnel comes or goes here or
// what its placement reads changes (placement.Changed).
func startGenericPusher(ctx context.Context, c *Context) error {
	clusters := c.Informers.Clusters().V1beta1().ManagedClusters()
	lister := clusters.Lister()
	// Pushes are bound to registrations (pushPlacement): a cluster is pushed
	// to only once its tunnel is up, which needs its approval, and the
	// tunnel coming up requeues its namespace.
	registrations := c.Registrations()
	clients, err := c.clusterClients(ctx)
	if err != nil {
		return err
	}
	ctl, err := deployer.NewController(deployer.Options{
		Name:         "generic-pusher",
		Parent:       c.Clusternet,
		Descriptions: c.Informers.Apps().V1alpha1().Descriptions(),
		Events:       c.Events,
		Place:        func(namespace string) deployer.Placement { return pushPlacement(lister, registrations, c, namespace) },
		Clients:      clients,
		Synced:       []cache.InformerSynced{clusters.Informer().HasSynced, registrations.HasSynced},
		Workers:      c.Workers,
	})
	if err != nil {
		return err
	}
	_, err = clusters.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if mc, ok := obj.(*clusterv1beta1.ManagedCluster); ok {
				ctl.EnqueueNamespace(mc.Namespace)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*clusterv1beta1.ManagedCluster)
			mc, ok2 := newObj.(*clusterv1beta1.ManagedCluster)
			if ok1 && ok2 && placement.Changed(old, mc) {
				ctl.EnqueueNamespace(mc.Namespace)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if mc, ok := obj.(*clusterv1beta1.ManagedCluster); ok {
				ctl.EnqueueNamespace(mc.Namespace)
			}
		},
	})
	if err != nil {
		return err
	}
	// The registry drops a cluster's clients when its tunnel goes down
	// here, and the deployer its watches with them.
	c.Transports.Tunnels().Watch(func(id string, up bool) {
		mcs, err := lister.List(labels.SelectorFromSet(labels.Set{clusterv1beta1.LabelClusterID: id}))
		if err != nil {
			return
		}
		for _, mc := range mcs {
			ctl.EnqueueNamespace(mc.Namespace)
		}
	})
	c.Go(func() { ctl.Run(ctx) })
	return nil
}

// pushPlacement is placement.Of for the generic deployer.
func pushPlacement(lister clusterlisters.ManagedClusterLister, registrations sockets.Registrations, c *Context, namespace string) deployer.Placement {
	return placement.Of(placement.Inputs{Clusters: lister, AdmittedInto: registrations.Namespace, TunnelHere: c.Transports.Tunnels().Has}, namespace)
}
