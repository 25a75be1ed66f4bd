package agent

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/helm"
)

// runHelmPuller installs, upgrades and uninstalls the HelmReleases of this
// cluster's dedicated namespace itself when the hub does not push to it:
// Pull mode, or Push/Dual with the AppPusher gate off. Chart pull
// credentials come from the Secrets the hub copies into the dedicated
// namespace (spec.chartPullSecret points at the copy).
func runHelmPuller(ctx context.Context, c *PullContext) error {
	if clusterv1beta1.HubPushes(c.SyncMode, c.AppPusher) {
		klog.FromContext(ctx).Info("Helm releases are pushed by the hub; not pulling", "syncMode", c.SyncMode, "appPusher", c.AppPusher)
		return nil
	}
	factory := externalversions.NewSharedInformerFactoryWithOptions(c.Parent, 0, externalversions.WithNamespace(c.Namespace))
	cluster := helm.NewCluster(c.ChildConfig)
	// Bounded by the agent's own --chart-repository-* flags: a HelmRelease
	// names its repository, and the agent must not fetch from the child's
	// metadata service or read an endless response for whoever wrote it.
	repos := c.ChartRepositories
	if repos == nil {
		repos = helm.NewRepositoryOptions("clusternet-agent")
	}
	source, err := repos.NewSource()
	if err != nil {
		return err
	}
	// Applier: one agent per cluster at a time (its Deployment recreates),
	// so a release an earlier agent process left pending is recovered at
	// once rather than after its timeout.
	const component = "clusternet-agent"
	ctl, err := helm.NewReleaseController(component, c.Parent, c.ParentKube,
		factory.Apps().V1alpha1().HelmReleases(), &helm.Releaser{Source: source, Applier: component},
		agentTarget{cluster: cluster, namespace: c.Namespace}, c.Events)
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	defer c.caches.add("helm-puller", factory.Apps().V1alpha1().HelmReleases().Informer().HasSynced)()
	ctl.Run(ctx, c.Workers)
	return nil
}

// agentTarget is this agent's own cluster, for the HelmReleases of its
// dedicated namespace.
type agentTarget struct {
	cluster   *helm.Cluster
	namespace string
}

func (t agentTarget) Target(hr *appsv1alpha1.HelmRelease) (*helm.Cluster, helm.TargetState, string) {
	if hr.Namespace != t.namespace {
		return nil, helm.TargetSkip, fmt.Sprintf("not in dedicated namespace %s", t.namespace)
	}
	return t.cluster, helm.TargetAct, ""
}
