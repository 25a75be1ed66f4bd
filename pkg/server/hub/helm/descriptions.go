package helm

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	appsinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/apps/v1alpha1"
	clusterinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/clusters/v1beta1"
	appslisters "github.com/clusternet/clusternet/pkg/generated/listers/apps/v1alpha1"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/helm"
)

var everything = labels.Everything()

// Event reasons on Descriptions, as the generic deployer's.
const (
	ReasonSuccessfullyDeployed = "SuccessfullyDeployed"
	ReasonFailedDeploying      = "FailedDeploying"
	// ReasonAgentInstalls says the cluster's agent, not the hub, installs
	// the releases: the cluster is in Pull mode, or in Push/Dual mode with
	// its AppPusher gate off (then it works as in Pull mode).
	ReasonAgentInstalls = "AgentInstalls"
)

// LabelPullSecretOf marks the copies of chart pull Secrets the hub makes in
// a cluster's dedicated namespace; its value is the HelmRelease's name.
const LabelPullSecretOf = "apps.clusternet.io/chart-pull-secret-of"

// descriptionKind is the owner reference kind of HelmReleases.
var descriptionKind = appsv1alpha1.SchemeGroupVersion.WithKind("Description")

// chartIndex indexes Helm Descriptions by the HelmCharts they refer to.
const chartIndex = "clusternet-helm-by-chart"

// Descriptions turns each Helm Description into one HelmRelease per chart in
// the same dedicated namespace, mirrors their status into the Description's,
// and on deletion waits until they (and so their releases) are gone.
type Descriptions struct {
	client  versioned.Interface
	kube    kubernetes.Interface
	descs   appslisters.DescriptionLister
	charts  appslisters.HelmChartLister
	hrs     appslisters.HelmReleaseLister
	mcls    clusterlisters.ManagedClusterLister
	indexer cache.Indexer
	events  record.EventRecorder
	loop    *controller.Loop

	mu sync.Mutex
	// installer remembers, per Description key (namespace/name), who
	// installs its releases as last announced in an event. It is keyed by
	// the queue's key, not the UID, so that a sync that finds the
	// Description gone (it may never pass through the finalizer path) can
	// forget it: the key is all such a sync knows.
	installer map[string]announced
}

// announced is what Descriptions.installer remembers of one Description:
// who installs the releases of the Description with that UID (a Description
// made again under the same name is announced anew).
type announced struct {
	uid types.UID
	who string
}

// NewDescriptions watches Descriptions, HelmCharts, HelmReleases and
// ManagedClusters through the informers.
func NewDescriptions(client versioned.Interface, kube kubernetes.Interface,
	descs appsinformers.DescriptionInformer, charts appsinformers.HelmChartInformer,
	hrs appsinformers.HelmReleaseInformer, mcls clusterinformers.ManagedClusterInformer,
	events record.EventRecorder) (*Descriptions, error) {
	d := &Descriptions{
		client:    client,
		kube:      kube,
		descs:     descs.Lister(),
		charts:    charts.Lister(),
		hrs:       hrs.Lister(),
		mcls:      mcls.Lister(),
		indexer:   descs.Informer().GetIndexer(),
		events:    events,
		installer: map[string]announced{},
	}
	if err := descs.Informer().AddIndexers(cache.Indexers{chartIndex: func(obj any) ([]string, error) {
		desc, ok := obj.(*appsv1alpha1.Description)
		if !ok || desc.Spec.Deployer != appsv1alpha1.DescriptionHelmDeployer {
			return nil, nil
		}
		keys := make([]string, 0, len(desc.Spec.Charts))
		for _, ref := range desc.Spec.Charts {
			keys = append(keys, ref.Namespace+"/"+ref.Name)
		}
		return keys, nil
	}}); err != nil {
		return nil, err
	}
	d.loop = controller.New("helm-descriptions", d.sync)
	if err := d.loop.Watch(descs.Informer(), func(obj any) []string {
		if desc, ok := obj.(*appsv1alpha1.Description); ok && desc.Spec.Deployer == appsv1alpha1.DescriptionHelmDeployer {
			return controller.OwnKey(obj)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := d.loop.Watch(hrs.Informer(), func(obj any) []string {
		hr, ok := obj.(*appsv1alpha1.HelmRelease)
		if !ok {
			return nil
		}
		if ref := metav1.GetControllerOf(hr); ref != nil && ref.Kind == descriptionKind.Kind && ref.APIVersion == descriptionKind.GroupVersion().String() {
			return []string{hr.Namespace + "/" + ref.Name}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := d.loop.Watch(charts.Informer(), func(obj any) []string {
		keys := controller.OwnKey(obj)
		if len(keys) == 0 {
			return nil
		}
		return d.keysIndexed(keys[0])
	}); err != nil {
		return nil, err
	}
	if err := d.loop.Watch(mcls.Informer(), func(obj any) []string {
		mc, ok := obj.(*clusterv1beta1.ManagedCluster)
		if !ok {
			return nil
		}
		descs, err := d.descs.Descriptions(mc.Namespace).List(everything)
		if err != nil {
			return nil
		}
		var keys []string
		for _, desc := range descs {
			if desc.Spec.Deployer == appsv1alpha1.DescriptionHelmDeployer {
				keys = append(keys, desc.Namespace+"/"+desc.Name)
			}
		}
		return keys
	}); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Descriptions) keysIndexed(chartKey string) []string {
	objs, err := d.indexer.ByIndex(chartIndex, chartKey)
	if err != nil {
		return nil
	}
	keys := make([]string, 0, len(objs))
	for _, obj := range objs {
		keys = append(keys, controller.OwnKey(obj)...)
	}
	return keys
}

// Run works until ctx ends.
func (d *Descriptions) Run(ctx context.Context, workers int) { d.loop.Run(ctx, workers) }

// NameFor is the name of the HelmRelease for chart ref of desc:
// <base>-<chart>, where base is the Description's name without "-helm"
// (the Subscription's, as its Base is named).
func NameFor(desc *appsv1alpha1.Description, ref appsv1alpha1.ChartReference) string {
	base := strings.TrimSuffix(desc.Name, appsv1alpha1.DescriptionHelmSuffix)
	return helm.ShortName(base+"-"+ref.Name, 253)
}

// PullSecretName is the name of the copy of a chart pull Secret made for
// HelmRelease hrName in the dedicated namespace.
func PullSecretName(hrName string) string {
	return helm.ShortName(hrName+"-chart-pull", 253)
}

func (d *Descriptions) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cached, err := d.descs.Descriptions(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// Gone without the finalizer path (removed with the finalizer, or
		// made without one): forget it here, or the map only grows.
		d.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if cached.Spec.Deployer != appsv1alpha1.DescriptionHelmDeployer {
		d.forget(key)
		return 0, nil
	}
	desc := cached.DeepCopy()
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithValues("description", klog.KObj(desc)))
	owned, err := d.owned(desc)
	if err != nil {
		return 0, err
	}
	if desc.DeletionTimestamp != nil {
		return 0, d.finalize(ctx, desc, owned)
	}

	cluster := d.cluster(ns)
	who := installer(cluster)
	d.announce(desc, cluster, who)

	states := make([]releaseState, 0, len(desc.Spec.Charts))
	wanted := map[string]bool{}
	clashes := nameClashes(desc)
	var again time.Duration
	for i, ref := range desc.Spec.Charts {
		hrName := NameFor(desc, ref)
		wanted[hrName] = true
		st := releaseState{Name: hrName, Chart: ref, HR: owned[hrName]}
		if clash, ok := clashes[hrName]; ok {
			// Writing the HelmRelease for one chart and then for the other
			// would upgrade the release back and forth forever: touch
			// neither (and keep an existing HelmRelease as it is).
			st.Failure = clash
		} else if err := d.ensure(ctx, desc, i, ref, &st); err != nil {
			return 0, err
		}
		if st.retry > 0 && (again == 0 || st.retry < again) {
			again = st.retry
		}
		states = append(states, st)
	}
	for hrName, hr := range owned {
		if wanted[hrName] || hr.DeletionTimestamp != nil {
			continue
		}
		if err := d.deleteRelease(ctx, hr); err != nil {
			return 0, err
		}
	}
	return again, d.updateStatus(ctx, desc, states, who)
}

// nameClashes finds the charts of desc that would share a HelmRelease
// (HelmCharts of the same name in different namespaces: the HelmRelease
// name has no namespace in it) and says, by HelmRelease name, why none of
// them is installed.
func nameClashes(desc *appsv1alpha1.Description) map[string]string {
	byName := map[string][]string{}
	var order []string
	for _, ref := range desc.Spec.Charts {
		name := NameFor(desc, ref)
		if _, ok := byName[name]; !ok {
			order = append(order, name)
		}
		byName[name] = append(byName[name], ref.Namespace+"/"+ref.Name)
	}
	out := map[string]string{}
	for _, name := range order {
		charts := byName[name]
		if len(charts) < 2 {
			continue
		}
		out[name] = fmt.Sprintf("HelmCharts %s would all be installed as HelmRelease %s/%s (HelmReleases are named <subscription>-<HelmChart name>), so none of them is installed or changed: "+
			"feed only one HelmChart of each name to a Subscription: rename all but one of them, or feed them from separate Subscriptions",
			strings.Join(charts, ", "), desc.Namespace, name)
	}
	return out
}

// chartOf is the index in desc.Spec.Charts of the one chart whose
// HelmRelease is named hrName, or why there is none.
func chartOf(desc *appsv1alpha1.Description, hrName string) (int, string) {
	if clash, ok := nameClashes(desc)[hrName]; ok {
		return -1, clash
	}
	for i, ref := range desc.Spec.Charts {
		if NameFor(desc, ref) == hrName {
			return i, ""
		}
	}
	return -1, fmt.Sprintf("Description %s/%s lists no HelmChart whose HelmRelease is named %s", desc.Namespace, desc.Name, hrName)
}

// owned lists the HelmReleases in desc's namespace that desc controls, by name.
func (d *Descriptions) owned(desc *appsv1alpha1.Description) (map[string]*appsv1alpha1.HelmRelease, error) {
	hrs, err := d.hrs.HelmReleases(desc.Namespace).List(everything)
	if err != nil {
		return nil, err
	}
	out := map[string]*appsv1alpha1.HelmRelease{}
	for _, hr := range hrs {
		if ref := metav1.GetControllerOf(hr); ref != nil && ref.UID == desc.UID {
			out[hr.Name] = hr
		}
	}
	return out, nil
}

// cluster is the ManagedCluster of a dedicated namespace, or nil.
func (d *Descriptions) cluster(ns string) *clusterv1beta1.ManagedCluster {
	mcs, err := d.mcls.ManagedClusters(ns).List(everything)
	if err != nil || len(mcs) == 0 {
		return nil
	}
	return mcs[0]
}

// installer says who installs releases in cluster, for status reasons.
func installer(mc *clusterv1beta1.ManagedCluster) string {
	switch {
	case mc == nil:
		return "the cluster's deployer (no ManagedCluster in this namespace)"
	case mc.HubPushes():
		return fmt.Sprintf("clusternet-hub (cluster %s, %s mode)", mc.Name, mc.Spec.SyncMode)
	case mc.Spec.SyncMode == clusterv1beta1.PullSyncMode:
		return fmt.Sprintf("the agent of cluster %s (Pull mode)", mc.Name)
	default:
		return fmt.Sprintf("the agent of cluster %s (%s mode with feature gate AppPusher off: the hub does not push to it, it works as in Pull mode)", mc.Name, mc.Spec.SyncMode)
	}
}

// announce records an event on desc when who installs its releases changes
// to (or starts as) the agent: the user sees who installs and why.
func (d *Descriptions) announce(desc *appsv1alpha1.Description, mc *clusterv1beta1.ManagedCluster, who string) {
	key := desc.Namespace + "/" + desc.Name
	d.mu.Lock()
	prev, seen := d.installer[key]
	d.installer[key] = announced{uid: desc.UID, who: who}
	d.mu.Unlock()
	if mc == nil || mc.HubPushes() || (seen && prev.uid == desc.UID && prev.who == who) {
		return
	}
	d.events.Eventf(desc, corev1.EventTypeNormal, ReasonAgentInstalls, "Releases of Description %s/%s are installed by %s", desc.Namespace, desc.Name, who)
}

// forget drops what is remembered of the Description with key
// (namespace/name).
func (d *Descriptions) forget(key string) {
	d.mu.Lock()
	delete(d.installer, key)
	d.mu.Unlock()
}

// releaseState is one chart of a Description: its HelmRelease, or why it
// cannot have one (yet).
type releaseState struct {
	Name  string
	Chart appsv1alpha1.ChartReference
	HR    *appsv1alpha1.HelmRelease
	// Failure or Pending say why the chart cannot be (or is not yet) installed.
	Failure, Pending string
	// retry, when positive, asks to look at the Description again then.
	retry time.Duration
}

// ensure creates or updates the HelmRelease for chart i of desc, or says
// in st why it cannot.
func (d *Descriptions) ensure(ctx context.Context, desc *appsv1alpha1.Description, i int, ref appsv1alpha1.ChartReference, st *releaseState) error {
	// The live HelmChart counts only for what the Description does not
	// carry: the whole spec in Descriptions of older hubs, the current
	// credentials of a chart pull Secret in any.
	var chart *appsv1alpha1.HelmChart
	if ref.Options == nil || ref.Options.ChartPullSecret != nil {
		var err error
		chart, err = d.charts.HelmCharts(ref.Namespace).Get(ref.Name)
		if apierrors.IsNotFound(err) {
			st.Failure = fmt.Sprintf("HelmChart %s/%s does not exist: create it, or remove it from the Subscription's feeds", ref.Namespace, ref.Name)
			return nil
		}
		if err != nil {
			return err
		}
	}
	if ref.Options == nil {
		// An unresolved or missing chart leaves an existing release alone: a
		// repository that is down for a while must not uninstall anything.
		switch chart.Status.Phase {
		case appsv1alpha1.HelmChartFound:
		case appsv1alpha1.HelmChartNotFound:
			st.Failure = fmt.Sprintf("HelmChart %s/%s is NotFound: %s", ref.Namespace, ref.Name, chart.Status.Reason)
			return nil
		default:
			st.Pending = fmt.Sprintf("waiting for HelmChart %s/%s to be resolved in its repository", ref.Namespace, ref.Name)
			return nil
		}
	}
	if st.HR != nil && st.HR.DeletionTimestamp != nil {
		st.Pending = fmt.Sprintf("waiting for the old HelmRelease %s/%s to be uninstalled", desc.Namespace, st.Name)
		return nil
	}
	if other, err := d.hrs.HelmReleases(desc.Namespace).Get(st.Name); err == nil && st.HR == nil {
		st.Failure = fmt.Sprintf("HelmRelease %s/%s exists and does not belong to Description %s: delete or rename it", other.Namespace, other.Name, desc.Name)
		return nil
	}

	want := DesiredRelease(desc, i, chart, st.Name)
	if want.Spec.ChartPullSecret != nil {
		if chart.Spec.ChartPullSecret == nil {
			st.Failure = fmt.Sprintf("HelmChart %s/%s no longer names the spec.chartPullSecret Description %s/%s was rendered with: waiting for the Subscription to render it again",
				chart.Namespace, chart.Name, desc.Namespace, desc.Name)
			return nil
		}
		failure, pending, err := d.mayCopyPullSecret(ctx, desc, chart)
		switch {
		case err != nil:
			return err
		case failure != "":
			st.Failure = failure
			return nil
		case pending != "":
			st.Pending, st.retry = pending, bindingRecheck
			return nil
		}
		if err := d.copyPullSecret(ctx, desc, chart, st.Name); err != nil {
			st.Failure = err.Error()
			return nil
		}
	}

	hrs := d.client.AppsV1alpha1().HelmReleases(desc.Namespace)
	if st.HR == nil {
		created, err := hrs.Create(ctx, want, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating HelmRelease %s/%s: %w", desc.Namespace, st.Name, err)
		}
		klog.FromContext(ctx).V(2).Info("Created HelmRelease", "helmRelease", klog.KObj(created))
		st.HR = created
		return nil
	}
	cur := st.HR
	// The release would stay behind in the old namespace or under the old
	// name: uninstall it (delete the HelmRelease) and install anew.
	if cur.Spec.TargetNamespace != want.Spec.TargetNamespace || helm.ReleaseName(cur) != helm.ReleaseName(want) {
		st.Pending = fmt.Sprintf("moving release %s/%s to %s/%s: uninstalling the old one first",
			cur.Spec.TargetNamespace, helm.ReleaseName(cur), want.Spec.TargetNamespace, helm.ReleaseName(want))
		return d.deleteRelease(ctx, cur)
	}
	if equality.Semantic.DeepEqual(cur.Spec, want.Spec) && equality.Semantic.DeepEqual(cur.Labels, want.Labels) &&
		controller.HasFinalizer(cur) {
		return nil
	}
	upd := cur.DeepCopy()
	upd.Spec = want.Spec
	upd.Labels = want.Labels
	controller.AddFinalizer(upd)
	updated, err := hrs.Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("updating HelmRelease %s/%s: %w", desc.Namespace, st.Name, err)
	}
	st.HR = updated
	return nil
}

// DesiredRelease is the HelmRelease named name for chart i of desc: the
// chart's options as desc carries them (live's, the HelmChart now, only for
// a Description of an older hub that carries none), so a release changes
// only when its Description does. Its chart pull Secret, when there is
// one, is the copy in desc's namespace (PullSecretName), never the chart's
// own.
func DesiredRelease(desc *appsv1alpha1.Description, i int, live *appsv1alpha1.HelmChart, name string) *appsv1alpha1.HelmRelease {
	opts := desc.Spec.Charts[i].Options
	if opts == nil {
		opts = &live.Spec.HelmOptions
	}
	hr := &appsv1alpha1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{
			Name:       name,
			Namespace:  desc.Namespace,
			Labels:     maps.Clone(desc.Labels),
			Finalizers: []string{appsv1alpha1.Finalizer},
		},
		Spec: appsv1alpha1.HelmReleaseSpec{HelmOptions: *opts.DeepCopy()},
	}
	ownerRef := metav1.NewControllerRef(desc, descriptionKind)
	ownerRef.BlockOwnerDeletion = ptr.To(false)
	hr.OwnerReferences = []metav1.OwnerReference{*ownerRef}
	if hr.Spec.ChartPullSecret != nil {
		hr.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: PullSecretName(name), Namespace: desc.Namespace}
	}
	hr.Spec.ReleaseName = ptr.To(helm.ShortName(name, 53))
	if i < len(desc.Spec.ChartRaw) && len(desc.Spec.ChartRaw[i]) > 0 {
		hr.Spec.Overrides = slices.Clone(desc.Spec.ChartRaw[i])
	}
	return hr
}

// bindingRecheck is how soon a Description waiting for its Subscription to
// list its cluster in status.bindingClusters is looked at again (the
// Subscription's status is written just after its Bases).
const bindingRecheck = 5 * time.Second

// mayCopyPullSecret says whether chart's pull Secret may be copied for
// desc: only for a Description of a Subscription (its labels, UID
// included) that feeds chart and is bound to desc's cluster. Anyone who may
// write in a dedicated namespace (the cluster's agent may write anything
// there) could otherwise write a Description naming any HelmChart and get
// its credentials copied where they can read them. failure says why not;
// pending, that the Subscription does not list the cluster yet.
func (d *Descriptions) mayCopyPullSecret(ctx context.Context, desc *appsv1alpha1.Description, chart *appsv1alpha1.HelmChart) (failure, pending string, err error) {
	deny := func(format string, args ...any) string {
		return fmt.Sprintf("HelmChart %s/%s: its spec.chartPullSecret is copied only for the Descriptions of a Subscription that feeds it to the cluster, and ", chart.Namespace, chart.Name) +
			fmt.Sprintf(format, args...)
	}
	name, ns, uid := desc.Labels[appsv1alpha1.LabelSubscriptionName], desc.Labels[appsv1alpha1.LabelSubscriptionNamespace], desc.Labels[appsv1alpha1.LabelSubscriptionUID]
	if name == "" || ns == "" {
		return deny("Description %s/%s has no %s and %s labels", desc.Namespace, desc.Name, appsv1alpha1.LabelSubscriptionName, appsv1alpha1.LabelSubscriptionNamespace), "", nil
	}
	sub, err := d.client.AppsV1alpha1().Subscriptions(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return deny("Subscription %s/%s (labels of Description %s/%s) does not exist", ns, name, desc.Namespace, desc.Name), "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("reading Subscription %s/%s of Description %s/%s: %w", ns, name, desc.Namespace, desc.Name, err)
	}
	if string(sub.UID) != uid {
		return deny("Subscription %s/%s has UID %q, not %q as label %s of Description %s/%s says", ns, name, sub.UID, uid, appsv1alpha1.LabelSubscriptionUID, desc.Namespace, desc.Name), "", nil
	}
	if !feedsChart(sub, chart) {
		return deny("Subscription %s/%s does not feed it", ns, name), "", nil
	}
	bound, err := d.boundIn(ctx, sub, desc.Namespace)
	if err != nil {
		return "", "", err
	}
	if !bound {
		return "", fmt.Sprintf("waiting for Subscription %s/%s to list the cluster of namespace %s in status.bindingClusters before copying the chart pull Secret of HelmChart %s/%s",
			ns, name, desc.Namespace, chart.Namespace, chart.Name), nil
	}
	return "", "", nil
}

// boundIn says whether sub is bound to the cluster of dedicated namespace
// ns: status.bindingClusters lists it or, when the hub truncated that list
// (status.bindingClustersOmitted), the Subscription's Base there (one per
// bound cluster) exists and is not being deleted.
func (d *Descriptions) boundIn(ctx context.Context, sub *appsv1alpha1.Subscription, ns string) (bool, error) {
	if slices.ContainsFunc(sub.Status.BindingClusters, func(c string) bool { return strings.HasPrefix(c, ns+"/") }) {
		return true, nil
	}
	if sub.Status.BindingClustersOmitted == 0 {
		return false, nil
	}
	base, err := d.client.AppsV1alpha1().Bases(ns).Get(ctx, sub.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading Base %s/%s of Subscription %s/%s: %w", ns, sub.Name, sub.Namespace, sub.Name, err)
	}
	return base.Labels[appsv1alpha1.LabelSubscriptionUID] == string(sub.UID) && base.DeletionTimestamp == nil, nil
}

// feedsChart says whether one of sub's feeds selects chart, by name or by
// feedSelector.
func feedsChart(sub *appsv1alpha1.Subscription, chart *appsv1alpha1.HelmChart) bool {
	for _, f := range sub.Spec.Feeds {
		if !feeds.IsChart(f) {
			continue
		}
		if f.Name != "" {
			if f.Name == chart.Name && f.Namespace == chart.Namespace {
				return true
			}
			continue
		}
		if f.FeedSelector == nil || (f.Namespace != "" && f.Namespace != chart.Namespace) {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(f.FeedSelector)
		if err == nil && sel.Matches(labels.Set(chart.Labels)) {
			return true
		}
	}
	return false
}

// copyPullSecret copies chart's pull Secret (username and password only),
// which is read only from chart's own namespace, into desc's dedicated
// namespace as PullSecretName(hrName), where the cluster's agent can read
// it in Pull mode (it reads nothing outside that namespace) and the hub's
// pusher reads it in Push mode. The HelmRelease refers to the copy;
// credentials never go into its spec.
func (d *Descriptions) copyPullSecret(ctx context.Context, desc *appsv1alpha1.Description, chart *appsv1alpha1.HelmChart, hrName string) error {
	src := chart.Spec.ChartPullSecret
	if err := helm.CheckPullSecretNamespace(src, "HelmChart", chart.Namespace); err != nil {
		return fmt.Errorf("HelmChart %s/%s: %w", chart.Namespace, chart.Name, err)
	}
	secret, err := d.kube.CoreV1().Secrets(chart.Namespace).Get(ctx, src.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("HelmChart %s/%s: spec.chartPullSecret %s/%s does not exist: create it with username and password keys", chart.Namespace, chart.Name, chart.Namespace, src.Name)
	}
	if err != nil {
		return fmt.Errorf("reading chart pull Secret %s/%s: %w", chart.Namespace, src.Name, err)
	}
	if _, err := helm.CredentialsFromSecret(secret); err != nil {
		return fmt.Errorf("HelmChart %s/%s: %w", chart.Namespace, chart.Name, err)
	}
	name := PullSecretName(hrName)
	ownerRef := metav1.NewControllerRef(desc, descriptionKind)
	ownerRef.BlockOwnerDeletion = ptr.To(false)
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       desc.Namespace,
			Labels:          map[string]string{LabelPullSecretOf: helm.ShortName(hrName, 63)},
			OwnerReferences: []metav1.OwnerReference{*ownerRef},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			helm.SecretUsernameKey: secret.Data[helm.SecretUsernameKey],
			helm.SecretPasswordKey: secret.Data[helm.SecretPasswordKey],
		},
	}
	secrets := d.kube.CoreV1().Secrets(desc.Namespace)
	cur, err := secrets.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = secrets.Create(ctx, want, metav1.CreateOptions{})
		return err
	case err != nil:
		return err
	case equality.Semantic.DeepEqual(cur.Data, want.Data) && equality.Semantic.DeepEqual(cur.OwnerReferences, want.OwnerReferences):
		return nil
	}
	// A copy left by an earlier Description of the same name is taken over:
	// its owner would have the garbage collector delete it under this
	// Description's release, and deleteRelease deletes only the copies of
	// the HelmRelease's own Description.
	cur.Data = want.Data
	cur.OwnerReferences = want.OwnerReferences
	if cur.Labels == nil {
		cur.Labels = map[string]string{}
	}
	maps.Copy(cur.Labels, want.Labels)
	_, err = secrets.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// deleteRelease deletes hr and then its chart pull Secret copy, each only
// while it is still the object this controller knows: both names are
// derived from the HelmRelease's name, so a newer HelmRelease of that name
// (a Description made again, a cache that lags) uses a copy of the same
// name, which must outlive the older HelmRelease.
func (d *Descriptions) deleteRelease(ctx context.Context, hr *appsv1alpha1.HelmRelease) error {
	err := d.client.AppsV1alpha1().HelmReleases(hr.Namespace).Delete(ctx, hr.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &hr.UID},
	})
	switch {
	case apierrors.IsConflict(err):
		// A newer HelmRelease (another UID) has the name: the copy is its
		// copy now. Its own Description deletes both when their time comes.
		klog.FromContext(ctx).V(2).Info("HelmRelease was replaced by a newer one, keeping it and its chart pull Secret copy", "helmRelease", klog.KObj(hr), "uid", hr.UID)
		return nil
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("deleting HelmRelease %s/%s: %w", hr.Namespace, hr.Name, err)
	case err == nil:
		klog.FromContext(ctx).V(2).Info("Deleted HelmRelease", "helmRelease", klog.KObj(hr))
	}
	return d.deletePullSecretCopy(ctx, hr)
}

// deletePullSecretCopy deletes the chart pull Secret copy of hr when the
// Description that controls hr controls it too, guarded by the copy's UID:
// a Conflict means a newer copy took the name between the read and the
// delete, and that one stays (no second, unguarded delete).
func (d *Descriptions) deletePullSecretCopy(ctx context.Context, hr *appsv1alpha1.HelmRelease) error {
	secrets := d.kube.CoreV1().Secrets(hr.Namespace)
	name := PullSecretName(hr.Name)
	secret, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading chart pull Secret copy %s/%s of HelmRelease %s: %w", hr.Namespace, name, hr.Name, err)
	}
	owner, secretOwner := metav1.GetControllerOf(hr), metav1.GetControllerOf(secret)
	if owner == nil || secretOwner == nil || owner.UID != secretOwner.UID {
		// Another Description's copy (or no one's): not hr's to delete.
		return nil
	}
	err = secrets.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &secret.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting chart pull Secret copy %s/%s of HelmRelease %s: %w", hr.Namespace, name, hr.Name, err)
	}
	return nil
}

// finalize deletes desc's HelmReleases and, once they are gone (their
// finalizers uninstall the releases), releases desc.
func (d *Descriptions) finalize(ctx context.Context, desc *appsv1alpha1.Description, owned map[string]*appsv1alpha1.HelmRelease) error {
	for _, hr := range owned {
		if hr.DeletionTimestamp == nil {
			if err := d.deleteRelease(ctx, hr); err != nil {
				return err
			}
		}
	}
	if len(owned) > 0 {
		// Deleting HelmReleases are reported as they go; their removal
		// queues desc again.
		names := slices.Sorted(maps.Keys(owned))
		reason := fmt.Sprintf("uninstalling releases of HelmReleases %s", strings.Join(names, ", "))
		if desc.Status.Phase != appsv1alpha1.DescriptionPhasePending || desc.Status.Reason != reason {
			desc.Status.Phase, desc.Status.Reason = appsv1alpha1.DescriptionPhasePending, reason
			if _, err := d.client.AppsV1alpha1().Descriptions(desc.Namespace).UpdateStatus(ctx, desc, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return err
			}
		}
		return nil
	}
	d.forget(desc.Namespace + "/" + desc.Name)
	i := slices.Index(desc.Finalizers, appsv1alpha1.Finalizer)
	if i < 0 {
		return nil
	}
	latest, err := d.client.AppsV1alpha1().Descriptions(desc.Namespace).Get(ctx, desc.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if i = slices.Index(latest.Finalizers, appsv1alpha1.Finalizer); i < 0 {
		return nil
	}
	latest.Finalizers = slices.Delete(latest.Finalizers, i, i+1)
	_, err = d.client.AppsV1alpha1().Descriptions(desc.Namespace).Update(ctx, latest, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (d *Descriptions) updateStatus(ctx context.Context, desc *appsv1alpha1.Description, states []releaseState, who string) error {
	st := DescriptionStatus(states, who)
	st.ObservedGeneration = desc.Generation
	if equality.Semantic.DeepEqual(desc.Status, st) {
		return nil
	}
	prev := desc.Status.Phase
	desc.Status = st
	if _, err := d.client.AppsV1alpha1().Descriptions(desc.Namespace).UpdateStatus(ctx, desc, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if st.Phase == prev {
		return nil
	}
	switch st.Phase {
	case appsv1alpha1.DescriptionPhaseSuccess:
		d.events.Eventf(desc, corev1.EventTypeNormal, ReasonSuccessfullyDeployed, "Description %s/%s is deployed successfully", desc.Namespace, desc.Name)
	case appsv1alpha1.DescriptionPhaseFailure:
		d.events.Event(desc, corev1.EventTypeWarning, ReasonFailedDeploying, st.Reason)
	}
	return nil
}

// DescriptionStatus is the status of a Helm Description whose charts are
// in states; who installs the releases is named while they are pending.
// Success when every release is deployed, Failure (with Helm's message)
// when one failed or a chart cannot be installed, Pending otherwise.
func DescriptionStatus(states []releaseState, who string) appsv1alpha1.DescriptionStatus {
	var failures, pending []string
	statuses := make([]appsv1alpha1.ManifestStatus, 0, len(states))
	for _, s := range states {
		ok, why := false, ""
		switch hr := s.HR; {
		case s.Failure != "":
			// Charts whose names clash share one reason: say it once.
			if !slices.Contains(failures, s.Failure) {
				failures = append(failures, s.Failure)
			}
			why = s.Failure
		case s.Pending != "":
			pending = append(pending, s.Pending)
			why = s.Pending
		case hr == nil:
			why = fmt.Sprintf("creating HelmRelease %s", s.Name)
			pending = append(pending, why)
		case hr.Status.ObservedGeneration < hr.Generation || hr.Status.Phase == "":
			verb := "install"
			if hr.Status.Version > 0 {
				verb = "upgrade"
			}
			why = fmt.Sprintf("HelmRelease %s: waiting for %s to %s release %s/%s", hr.Name, who, verb, hr.Spec.TargetNamespace, helm.ReleaseName(hr))
			pending = append(pending, why)
		case hr.Status.Phase == "deployed":
			ok = true
		case hr.Status.Phase == "failed":
			why = fmt.Sprintf("HelmRelease %s: release %s/%s failed: %s", hr.Name, hr.Spec.TargetNamespace, helm.ReleaseName(hr), hr.Status.Description)
			failures = append(failures, why)
		default:
			why = fmt.Sprintf("HelmRelease %s: release %s/%s is %s", hr.Name, hr.Spec.TargetNamespace, helm.ReleaseName(hr), hr.Status.Phase)
			if hr.Status.Description != "" {
				why += ": " + hr.Status.Description
			}
			pending = append(pending, why)
		}
		statuses = append(statuses, appsv1alpha1.ManifestStatus{
			Feed: appsv1alpha1.Feed{
				APIVersion: appsv1alpha1.SchemeGroupVersion.String(),
				Kind:       "HelmChart",
				Namespace:  s.Chart.Namespace,
				Name:       s.Chart.Name,
			},
			FeedStatus: appsv1alpha1.FeedStatus{Applied: ok, Available: ok, Reason: why},
		})
	}
	st := appsv1alpha1.DescriptionStatus{ManifestStatuses: statuses}
	switch {
	case len(failures) > 0:
		st.Phase, st.Reason = appsv1alpha1.DescriptionPhaseFailure, strings.Join(failures, "; ")
	case len(pending) > 0:
		st.Phase, st.Reason = appsv1alpha1.DescriptionPhasePending, strings.Join(pending, "; ")
	default:
		st.Phase = appsv1alpha1.DescriptionPhaseSuccess
	}
	return st
}
