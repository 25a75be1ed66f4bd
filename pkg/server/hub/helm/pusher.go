package helm

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	appsinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/apps/v1alpha1"
	clusterinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/clusters/v1beta1"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/helm"
)

// Tunnels are the agents' tunnels this hub replica holds.
type Tunnels interface {
	Has(id string) bool
	Watch(f func(id string, up bool))
}

// Pusher applies HelmReleases to the clusters the hub pushes to
// (clusterv1beta1.HubPushes), from the replica that holds each cluster's
// tunnel, acting in the child as its agent through that tunnel.
type Pusher struct {
	*helm.ReleaseController
}

// NewPusher watches HelmReleases and ManagedClusters; childConfig(id)
// reaches cluster id through its tunnel.
func NewPusher(client versioned.Interface, kube kubernetes.Interface, hrs appsinformers.HelmReleaseInformer,
	mcls clusterinformers.ManagedClusterInformer, tunnels Tunnels, childConfig func(id string) *rest.Config,
	source *helm.Source, events record.EventRecorder) (*Pusher, error) {
	targets := &tunnelTargets{mcls: mcls.Lister(), tunnels: tunnels, childConfig: childConfig, clusters: map[string]*helm.Cluster{}}
	rc, err := helm.NewReleaseController("clusternet-hub", client, kube, hrs, &helm.Releaser{Source: source}, targets, events)
	if err != nil {
		return nil, err
	}
	p := &Pusher{ReleaseController: rc}
	// A ManagedCluster that changes (AppPusher switched, sync mode) may
	// change who applies its releases.
	if err := rc.Watch(mcls.Informer(), func(obj any) []string {
		if mc, ok := obj.(*clusterv1beta1.ManagedCluster); ok {
			return rc.KeysIn(mc.Namespace)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	tunnels.Watch(func(id string, up bool) {
		if !up {
			return
		}
		mcs, err := targets.mcls.List(everything)
		if err != nil {
			return
		}
		for _, mc := range mcs {
			if string(mc.Spec.ClusterID) == id {
				rc.Requeue(mc.Namespace)
			}
		}
	})
	return p, nil
}

// Run works until ctx ends.
func (p *Pusher) Run(ctx context.Context, workers int) { p.ReleaseController.Run(ctx, workers) }

// tunnelTargets picks, for a HelmRelease, its cluster when the hub pushes
// to it and this replica holds its tunnel.
type tunnelTargets struct {
	mcls        clusterlisters.ManagedClusterLister
	tunnels     Tunnels
	childConfig func(id string) *rest.Config

	mu       sync.Mutex
	clusters map[string]*helm.Cluster
}

func (t *tunnelTargets) Target(hr *appsv1alpha1.HelmRelease) (*helm.Cluster, helm.TargetState, string) {
	mcs, err := t.mcls.ManagedClusters(hr.Namespace).List(everything)
	if err != nil || len(mcs) == 0 {
		return nil, helm.TargetGone, fmt.Sprintf("no ManagedCluster in namespace %s", hr.Namespace)
	}
	mc := mcs[0]
	id := string(mc.Spec.ClusterID)
	if !clusterv1beta1.HubPushes(mc.Spec.SyncMode, mc.Status.AppPusher) {
		return nil, helm.TargetSkip, fmt.Sprintf("cluster %s's agent applies (sync mode %s, AppPusher %t)", mc.Name, mc.Spec.SyncMode, mc.Status.AppPusher)
	}
	if !t.tunnels.Has(id) {
		return nil, helm.TargetSkip, fmt.Sprintf("cluster %s's tunnel is not held by this replica", mc.Name)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.clusters[id]
	if !ok {
		c = helm.NewCluster(t.childConfig(id))
		t.clusters[id] = c
	}
	return c, helm.TargetAct, ""
}
