package helm

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/deployer"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	appsinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/apps/v1alpha1"
	clusterinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/clusters/v1beta1"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/helm"
	"github.com/clusternet/clusternet/pkg/server/hub/placement"
)

// Tunnels are the agents' tunnels this hub replica holds.
type Tunnels interface {
	Has(id string) bool
	Watch(f func(id string, up bool))
}

// Clusters hands out the Helm clients of the clusters this replica reaches.
// The hub passes its per-cluster registry (pkg/server/hub/clusterclients),
// which owns them: it builds them when a cluster is first needed, shares
// their transport and discovery with the deployer, and drops them when the
// cluster leaves or its tunnel leaves this replica. The pusher keeps none
// of its own, so it holds nothing of a cluster that left; it knows the
// registry only by this interface, so the import goes one way.
type Clusters interface {
	Helm(id string) (*helm.Cluster, error)
}

// Pusher applies HelmReleases to the clusters the hub pushes to
// (clusterv1beta1.HubPushes), from the replica that holds each cluster's
// tunnel, acting in the child as its agent through that tunnel.
type Pusher struct {
	*helm.ReleaseController
	targets *tunnelTargets
}

// NewPusher watches HelmReleases and ManagedClusters; clusters hands out
// the clients reaching a cluster through its tunnel. It applies only the
// HelmReleases MadeByHub accepts.
func NewPusher(client versioned.Interface, kube kubernetes.Interface, hrs appsinformers.HelmReleaseInformer,
	mcls clusterinformers.ManagedClusterInformer, tunnels Tunnels, clusters Clusters,
	admittedInto func(clusterID string) string, source *helm.Source, events record.EventRecorder) (*Pusher, error) {
	targets := &tunnelTargets{mcls: mcls.Lister(), tunnels: tunnels, clusters: clusters, admittedInto: admittedInto}
	// Applier: only the replica holding a cluster's tunnel reaches the
	// child, so a release another replica left pending there can no
	// longer be finished by it, and is recovered at once.
	const component = "clusternet-hub"
	rc, err := helm.NewReleaseController(component, client, kube, hrs, &helm.Releaser{Source: source, Applier: component}, targets, events)
	if err != nil {
		return nil, err
	}
	// The hub acts in the child as its agent and reads parent Secrets as
	// itself: it applies only the HelmReleases it made, as it makes them.
	rc.Verifier = MadeByHub{Client: client}
	// A ManagedCluster that comes, goes or changes what placement reads of
	// it (placement.Changed: AppPusher switched, sync mode) may change who
	// applies its releases; its agent's heartbeats and other status reports
	// do not, and requeueing on them would read every release's Helm
	// storage in the child every few seconds.
	if err := rc.Watch(mcls.Informer(), func(obj any) []string {
		if mc, ok := obj.(*clusterv1beta1.ManagedCluster); ok {
			return rc.KeysIn(mc.Namespace)
		}
		return nil
	}, controller.IgnoreUpdates(func(old, cur any) bool {
		o, ok1 := old.(*clusterv1beta1.ManagedCluster)
		c, ok2 := cur.(*clusterv1beta1.ManagedCluster)
		return ok1 && ok2 && !placement.Changed(o, c)
	})); err != nil {
		return nil, err
	}
	p := &Pusher{ReleaseController: rc, targets: targets}
	// A tunnel coming up here: this replica applies that cluster's releases
	// now. (Going down, the registry drops the cluster's clients.)
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
	mcls     clusterlisters.ManagedClusterLister
	tunnels  Tunnels
	clusters Clusters
	// admittedInto is the dedicated namespace the hub admitted a cluster
	// into (its registration): only that namespace's releases go to it.
	admittedInto func(clusterID string) string
}

func (t *tunnelTargets) Target(hr *appsv1alpha1.HelmRelease) (*helm.Cluster, helm.TargetState, string) {
	p := placement.Of(placement.Inputs{Clusters: t.mcls, AdmittedInto: t.admittedInto, TunnelHere: t.tunnels.Has}, hr.Namespace)
	switch p.Decision {
	case deployer.Gone:
		return nil, helm.TargetGone, p.Why
	case deployer.Skip:
		return nil, helm.TargetSkip, p.Why
	}
	// An action in flight keeps the Cluster it got; the next one asks again
	// and, after the cluster left or its tunnel went down, gets new clients.
	c, err := t.clusters.Helm(p.ClusterID)
	if err != nil {
		// It left between placement and now: its departure requeues it.
		return nil, helm.TargetSkip, err.Error()
	}
	return c, helm.TargetAct, ""
}

// MadeByHub accepts only the HelmReleases the hub's Helm Description
// controller made, exactly as it makes them now from their Description
// (DesiredRelease), which carries the HelmChart's spec as rendered. The cluster's agent may write anything in its
// dedicated namespace, owner references and labels included, so neither is
// proof on its own: what cannot be forged is the spec the hub derives
// itself from an object whose spec the agent cannot write and whose UID it
// cannot choose (the Description). A spec that differs in anything (a
// repository, a chart pull Secret other than the copy the hub made in the
// dedicated namespace, ...) is refused until the controller rewrites it.
// Descriptions (and HelmCharts, for older Descriptions) are read from the
// API, not a cache.
type MadeByHub struct {
	Client versioned.Interface
}

var _ helm.Verifier = MadeByHub{}

// Verify implements helm.Verifier.
func (v MadeByHub) Verify(ctx context.Context, hr *appsv1alpha1.HelmRelease) (string, error) {
	ref := metav1.GetControllerOf(hr)
	if ref == nil || ref.Kind != descriptionKind.Kind || ref.APIVersion != descriptionKind.GroupVersion().String() {
		return "it has no controller owner reference to a Description: the hub applies only the HelmReleases it makes from Helm Descriptions", nil
	}
	desc, err := v.Client.AppsV1alpha1().Descriptions(hr.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Sprintf("its owner Description %s/%s does not exist", hr.Namespace, ref.Name), nil
	}
	if err != nil {
		return "", fmt.Errorf("reading Description %s/%s, owner of HelmRelease %s/%s: %w", hr.Namespace, ref.Name, hr.Namespace, hr.Name, err)
	}
	if desc.UID != ref.UID {
		return fmt.Sprintf("its owner reference names Description %s/%s with UID %s, but that Description's UID is %s", hr.Namespace, ref.Name, ref.UID, desc.UID), nil
	}
	if desc.Spec.Deployer != appsv1alpha1.DescriptionHelmDeployer {
		return fmt.Sprintf("its owner Description %s/%s is not a Helm Description (deployer %q)", desc.Namespace, desc.Name, desc.Spec.Deployer), nil
	}
	if hr.DeletionTimestamp != nil {
		// Uninstalling reads no Secret and reaches no repository; the spec
		// of a HelmRelease being deleted may be an older one (a chart no
		// longer listed, a release moving), so its owner is what is checked.
		return "", nil
	}
	if desc.DeletionTimestamp != nil {
		return fmt.Sprintf("its Description %s/%s is being deleted: its releases are uninstalled, not applied", desc.Namespace, desc.Name), nil
	}
	i, why := chartOf(desc, hr.Name)
	if why != "" {
		return why, nil
	}
	cref := desc.Spec.Charts[i]
	var chart *appsv1alpha1.HelmChart
	if cref.Options == nil { // a Description of an older hub: its chart's spec is the HelmChart's
		chart, err = v.Client.AppsV1alpha1().HelmCharts(cref.Namespace).Get(ctx, cref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("HelmChart %s/%s of Description %s/%s does not exist", cref.Namespace, cref.Name, desc.Namespace, desc.Name), nil
		}
		if err != nil {
			return "", fmt.Errorf("reading HelmChart %s/%s of Description %s/%s: %w", cref.Namespace, cref.Name, desc.Namespace, desc.Name, err)
		}
	}
	want := DesiredRelease(desc, i, chart, hr.Name)
	differ, err := specDiff(want.Spec, hr.Spec)
	if err != nil {
		return "", err
	}
	if len(differ) > 0 {
		return fmt.Sprintf("its spec is not what the hub makes from Description %s/%s for HelmChart %s/%s (%s differ): the hub applies only the HelmReleases it makes, as it makes them (its Helm Description controller writes this one again)",
			desc.Namespace, desc.Name, cref.Namespace, cref.Name, strings.Join(differ, ", ")), nil
	}
	return "", nil
}

// specDiff names the fields in which two HelmRelease specs differ, as
// they are written in JSON (so that a nil and an empty value are equal, as
// the API stores them).
func specDiff(a, b appsv1alpha1.HelmReleaseSpec) ([]string, error) {
	fields := func(spec appsv1alpha1.HelmReleaseSpec) (map[string]any, error) {
		raw, err := json.Marshal(spec)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		return m, json.Unmarshal(raw, &m)
	}
	ma, err := fields(a)
	if err != nil {
		return nil, err
	}
	mb, err := fields(b)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(ma)) {
		if !reflect.DeepEqual(ma[k], mb[k]) {
			out = append(out, "spec."+k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(mb)) {
		if _, ok := ma[k]; !ok {
			out = append(out, "spec."+k)
		}
	}
	slices.Sort(out)
	return out, nil
}
