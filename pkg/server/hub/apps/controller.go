// Package apps is the hub's application distribution: it schedules each
// Subscription onto clusters (a Base per cluster, in the cluster's dedicated
// namespace), renders each Base into Descriptions with the Globalizations and
// Localizations in force, and sums the Descriptions' statuses back into the
// Subscription. The deployers (push and pull) apply Descriptions to
// children; see docs/distribution.md.
package apps

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	appslisters "github.com/clusternet/clusternet/pkg/generated/listers/apps/v1alpha1"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/server/hub/apps/scheduling"
	"github.com/clusternet/clusternet/pkg/throttle"
)

// Mapper resolves kinds of the parent; Reset forgets what it discovered (a
// CRD installed after the hub started).
type Mapper interface {
	meta.RESTMapper
	Reset()
}

// Options are what the controller is built from.
type Options struct {
	Clusternet versioned.Interface
	Informers  externalversions.SharedInformerFactory
	Mapper     Mapper
	// Events records events from component clusternet-hub.
	Events record.EventRecorder
	// FailOver is the hub's feature gate: the failover taint moves the
	// replicas of dividing Subscriptions to healthy clusters (failover.go).
	FailOver bool
}

// Index names, prefixed: the informers are shared with other controllers.
const (
	indexSubscriptionsByFeedKind = "apps.distribution/subscription-feed-kind"
	indexSubscriptionsByName     = "apps.distribution/subscription-name"
	indexBasesBySubscription     = "apps.distribution/base-subscription"
	indexBasesByFeedObject       = "apps.distribution/base-feed-object"
	indexBasesByFeedKind         = "apps.distribution/base-feed-kind"
	indexDescsBySubscription     = "apps.distribution/description-subscription"
	indexManifestsByKind         = "apps.distribution/manifest-kind"
)

// Controller runs two loops: subscriptions (scheduling, Bases, status) and
// bases (Descriptions).
type Controller struct {
	client versioned.Interface
	mapper Mapper
	events record.EventRecorder

	subs      appslisters.SubscriptionLister
	subIndex  cache.Indexer
	bases     appslisters.BaseLister
	baseIndex cache.Indexer
	descs     appslisters.DescriptionLister
	descIndex cache.Indexer
	manifests appslisters.ManifestLister
	manIndex  cache.Indexer
	charts    appslisters.HelmChartLister
	locs      appslisters.LocalizationLister
	globs     appslisters.GlobalizationLister
	inventory appslisters.FeedInventoryLister
	clusters  clusterlisters.ManagedClusterLister
	subLoop   *controller.Loop
	baseLoop  *controller.Loop
	// mapperResets throttles, to one per resetEvery, the rediscoveries a
	// kind the parent does not serve causes.
	mapperResets throttle.Interval
	resetEvery   time.Duration
	// plans keeps what resolving, scheduling and applying the Bases of each
	// Subscription concluded, until one of their inputs changes.
	plans *plans
	// listings is where each Subscription's status listing was last.
	listings listingHints
	runs     stageRuns
	// book is what every Subscription placed on every cluster
	// (placements.go); deciding makes one round's reading of it, deciding
	// and recording one step.
	book     *scheduling.Book
	deciding sync.Mutex
	// synced are the informers the loops read: Run fills the book once
	// they are.
	synced []cache.InformerSynced
	// failOver is Options.FailOver; failback paces the Subscriptions
	// queued when a cluster is back (failover.go).
	failOver bool
	failback failback
	// baseStatus is the last status written to each Base, descCreates the
	// Descriptions created and not cached yet (base.go).
	baseStatus  statusWrites
	descCreates recentCreates
	// statusSettle is how long a Subscription whose reports changed waits
	// before its status is written (statusChanged).
	statusSettle time.Duration
	// basesAtOnce is how many Bases one round writes at a time
	// (applyBasesAtOnce).
	basesAtOnce int
}

// defaultStatusSettle is statusSettle: short beside a rollout's own time
// (a child applies and starts a Deployment in seconds), long enough that
// the reports of many clusters land in one write.
const defaultStatusSettle = time.Second

// New builds the controller and registers its handlers and indexes on the
// shared informers (call before they start).
func New(o Options) (*Controller, error) {
	apps := o.Informers.Apps().V1alpha1()
	subInf, baseInf, descInf := apps.Subscriptions(), apps.Bases(), apps.Descriptions()
	manInf, chartInf := apps.Manifests(), apps.HelmCharts()
	locInf, globInf, invInf := apps.Localizations(), apps.Globalizations(), apps.FeedInventories()
	mclsInf := o.Informers.Clusters().V1beta1().ManagedClusters()

	c := &Controller{
		client: o.Clusternet, mapper: o.Mapper, events: o.Events,
		subs: subInf.Lister(), subIndex: subInf.Informer().GetIndexer(),
		bases: baseInf.Lister(), baseIndex: baseInf.Informer().GetIndexer(),
		descs: descInf.Lister(), descIndex: descInf.Informer().GetIndexer(),
		manifests: manInf.Lister(), manIndex: manInf.Informer().GetIndexer(),
		charts: chartInf.Lister(), locs: locInf.Lister(), globs: globInf.Lister(),
		inventory: invInf.Lister(), clusters: mclsInf.Lister(),
		resetEvery: 10 * time.Second, plans: newPlans(), book: scheduling.NewBook(),
		failOver: o.FailOver, failback: failback{spacing: failbackSpacing},
		statusSettle: defaultStatusSettle, basesAtOnce: defaultBasesAtOnce,
	}
	// Keys come from several informers (a template change reaches the
	// Subscriptions and Bases that use it), so the loops are fed by the
	// handlers below. Subscriptions are handed out by priority.
	c.subLoop = controller.New("subscriptions", c.syncSubscription, controller.Ordered(newByPriority(c.priorityOfKey)))
	c.baseLoop = controller.New("bases", c.syncBase)

	indexes := []struct {
		inf     cache.SharedIndexInformer
		indexes cache.Indexers
	}{
		{subInf.Informer(), cache.Indexers{indexSubscriptionsByFeedKind: subscriptionFeedKinds, indexSubscriptionsByName: subscriptionName}},
		{baseInf.Informer(), cache.Indexers{
			indexBasesBySubscription: bySubscriptionLabels,
			indexBasesByFeedObject:   baseFeedObjects,
			indexBasesByFeedKind:     baseFeedKinds,
		}},
		{descInf.Informer(), cache.Indexers{indexDescsBySubscription: bySubscriptionLabels}},
		{manInf.Informer(), cache.Indexers{indexManifestsByKind: manifestKind}},
	}
	for _, ix := range indexes {
		if err := ix.inf.AddIndexers(ix.indexes); err != nil {
			return nil, fmt.Errorf("adding indexes: %w", err)
		}
	}

	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{subInf.Informer(), funcs(c.onSubscription)},
		{baseInf.Informer(), funcs(c.onBase)},
		{descInf.Informer(), funcs(c.onDescription)},
		{manInf.Informer(), funcs(c.onManifest)},
		{chartInf.Informer(), funcs(c.onHelmChart)},
		{locInf.Informer(), funcs(c.onLocalization)},
		{globInf.Informer(), funcs(c.onGlobalization)},
		{invInf.Informer(), funcs(c.onFeedInventory)},
		{mclsInf.Informer(), funcs(c.onManagedCluster)},
	}
	for _, h := range handlers {
		reg, err := h.inf.AddEventHandler(h.h)
		if err != nil {
			return nil, err
		}
		// Both loops read all these caches.
		c.subLoop.WaitFor(reg.HasSynced)
		c.baseLoop.WaitFor(reg.HasSynced)
		c.synced = append(c.synced, reg.HasSynced)
	}
	return c, nil
}

// Run fills the book once the caches are synced, then runs both loops with
// workers each until ctx ends, and returns once they stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	c.rebuildBook()
	var wg sync.WaitGroup
	for _, l := range []*controller.Loop{c.subLoop, c.baseLoop} {
		wg.Go(func() { l.Run(ctx, workers) })
	}
	wg.Wait()
}

// funcs calls on(old, new) for adds (old nil), updates and deletes (new nil).
func funcs(on func(old, cur any)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { on(nil, obj) },
		UpdateFunc: on,
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			on(obj, nil)
		},
	}
}

// Index functions.

func subscriptionFeedKinds(obj any) ([]string, error) {
	sub, ok := obj.(*appsv1alpha1.Subscription)
	if !ok {
		return nil, nil
	}
	ks := sets.New[string]()
	for _, f := range sub.Spec.Feeds {
		ks.Insert(feeds.KindKey(feeds.Group(f.APIVersion), f.Kind))
	}
	return sets.List(ks), nil
}

func subscriptionKeyOf(o metav1.Object) string {
	ls := o.GetLabels()
	ns, name := ls[appsv1alpha1.LabelSubscriptionNamespace], ls[appsv1alpha1.LabelSubscriptionName]
	if ns == "" || name == "" {
		return ""
	}
	return ns + "/" + name
}

func bySubscriptionLabels(obj any) ([]string, error) {
	o, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil
	}
	if k := subscriptionKeyOf(o); k != "" {
		return []string{k}, nil
	}
	return nil, nil
}

func baseFeedObjects(obj any) ([]string, error) {
	b, ok := obj.(*appsv1alpha1.Base)
	if !ok {
		return nil, nil
	}
	out := make([]string, 0, len(b.Spec.Feeds))
	for _, f := range b.Spec.Feeds {
		out = append(out, feeds.ObjectKey(feeds.Group(f.APIVersion), f.Kind, f.Namespace, f.Name))
	}
	return out, nil
}

func baseFeedKinds(obj any) ([]string, error) {
	b, ok := obj.(*appsv1alpha1.Base)
	if !ok {
		return nil, nil
	}
	ks := sets.New[string]()
	for _, f := range b.Spec.Feeds {
		ks.Insert(feeds.KindKey(feeds.Group(f.APIVersion), f.Kind))
	}
	return sets.List(ks), nil
}

func manifestKind(obj any) ([]string, error) {
	m, ok := obj.(*appsv1alpha1.Manifest)
	if !ok || m.Namespace != appsv1alpha1.ReservedNamespace {
		return nil, nil
	}
	return []string{feeds.KindKey(m.Labels[appsv1alpha1.LabelConfigGroup], m.Labels[appsv1alpha1.LabelConfigKind])}, nil
}

// Handlers: each maps a change to the Subscriptions and Bases it concerns.

func key(obj any) string {
	k, _ := cache.MetaNamespaceKeyFunc(obj)
	return k
}

// onlyStatusChanged says whether an update touched nothing but status and
// bookkeeping: the controller wrote it, no need to look again.
func onlyStatusChanged(old, cur any) bool {
	if old == nil || cur == nil {
		return false
	}
	strip := func(obj any) any {
		switch o := obj.(type) {
		case *appsv1alpha1.Subscription:
			c := o.DeepCopy()
			c.Status, c.ResourceVersion, c.ManagedFields = appsv1alpha1.SubscriptionStatus{}, "", nil
			return c
		case *appsv1alpha1.Base:
			c := o.DeepCopy()
			c.Status, c.ResourceVersion, c.ManagedFields = appsv1alpha1.BaseStatus{}, "", nil
			return c
		}
		return obj
	}
	return apiequality.Semantic.DeepEqual(strip(old), strip(cur))
}

func (c *Controller) onSubscription(old, cur any) {
	obj := cur
	if obj == nil {
		obj = old
	}
	if onlyStatusChanged(old, cur) {
		o, n := old.(*appsv1alpha1.Subscription), cur.(*appsv1alpha1.Subscription)
		// Bindings from another scheduler (spec.schedulerName) are status.
		if !external(n) ||
			(apiequality.Semantic.DeepEqual(o.Status.BindingClusters, n.Status.BindingClusters) && apiequality.Semantic.DeepEqual(o.Status.Replicas, n.Status.Replicas) &&
				apiequality.Semantic.DeepEqual(o.Status.BindingReplicas, n.Status.BindingReplicas)) {
			return
		}
	}
	c.inputsChanged(key(obj))
}

// inputsChanged queues a Subscription because something its feed
// resolution, scheduling or Bases depend on changed: all its stages run
// again. Handlers say which of these two a change is, and nowhere else
// decides it.
func (c *Controller) inputsChanged(key string) {
	c.plans.invalidate(key)
	c.subLoop.Add(key)
}

// statusChanged queues a Subscription because only what its status sums
// changed (a Description's report, a Base's Rendered condition): its plan
// stands, and only its status is written again. It is queued statusSettle
// later, not at once: a rollout's reports come in bursts (every cluster's
// Descriptions, each in a few steps), and the workqueue keeps one waiting
// key at its earliest time, so a burst costs the parent one status write per
// statusSettle instead of one per report. Input changes (inputsChanged) are
// never delayed: one queues the key at once, and the sync it runs writes
// the status too.
func (c *Controller) statusChanged(key string) {
	c.subLoop.AddAfter(key, c.statusSettle)
}

func (c *Controller) onBase(old, cur any) {
	obj := cur
	if obj == nil {
		obj = old
	}
	o, ok := obj.(*appsv1alpha1.Base)
	if !ok {
		return
	}
	statusOnly := onlyStatusChanged(old, cur)
	if k := subscriptionKeyOf(o); k != "" {
		if statusOnly {
			c.statusChanged(k) // its Rendered condition
		} else {
			// Bound or not (scheduling keeps a NoSchedule-tainted cluster
			// that has a Base), and a Base to restore or make again.
			c.inputsChanged(k)
		}
	}
	if cur == nil {
		// A Base is named after its Subscription, so a Subscription of the
		// same name in another namespace may have been refused this name
		// (BaseNameConflict): it may take it now.
		c.enqueueSubsByIndex(indexSubscriptionsByName, o.Name)
	}
	if !statusOnly {
		c.baseLoop.Add(key(o))
	}
}

func subscriptionName(obj any) ([]string, error) {
	if s, ok := obj.(*appsv1alpha1.Subscription); ok {
		return []string{s.Name}, nil
	}
	return nil, nil
}

func (c *Controller) onDescription(old, cur any) {
	obj := cur
	if obj == nil {
		obj = old
	}
	d, ok := obj.(*appsv1alpha1.Description)
	if !ok {
		return
	}
	if k := subscriptionKeyOf(d); k != "" {
		c.statusChanged(k) // its spec is the Base loop's; its report is status
	}
	if descReportOnly(old, cur) {
		return // nothing the Base loop renders or restores changed
	}
	if base, ok := baseNameOf(d.Name); ok {
		c.baseLoop.Add(d.Namespace + "/" + base)
	}
}

// descReportOnly says whether an update of a Description changed only its
// status (a deployer's report): its spec, labels, annotations, owners,
// finalizers and deletion are what its Base's sync reads.
func descReportOnly(old, cur any) bool {
	o, ok1 := old.(*appsv1alpha1.Description)
	n, ok2 := cur.(*appsv1alpha1.Description)
	if !ok1 || !ok2 {
		return false
	}
	return o.UID == n.UID && o.Generation == n.Generation &&
		(o.DeletionTimestamp == nil) == (n.DeletionTimestamp == nil) &&
		apiequality.Semantic.DeepEqual(o.Labels, n.Labels) &&
		apiequality.Semantic.DeepEqual(o.Annotations, n.Annotations) &&
		apiequality.Semantic.DeepEqual(o.OwnerReferences, n.OwnerReferences) &&
		apiequality.Semantic.DeepEqual(o.Finalizers, n.Finalizers)
}

// baseNameOf is the Base a Description is rendered from, by its name.
func baseNameOf(desc string) (string, bool) {
	for _, s := range []string{appsv1alpha1.DescriptionGenericSuffix, appsv1alpha1.DescriptionHelmSuffix} {
		if b, ok := strings.CutSuffix(desc, s); ok && b != "" {
			return b, true
		}
	}
	return "", false
}

// enqueueSubsByIndex queues the Subscriptions whose feeds may name what
// changed (a template, a HelmChart): an input of their feed resolution.
func (c *Controller) enqueueSubsByIndex(index, value string) {
	objs, err := c.subIndex.ByIndex(index, value)
	if err != nil {
		return
	}
	for _, o := range objs {
		c.inputsChanged(key(o))
	}
}

func (c *Controller) enqueueBasesByIndex(index, value string) {
	objs, err := c.baseIndex.ByIndex(index, value)
	if err != nil {
		return
	}
	for _, o := range objs {
		c.baseLoop.Add(key(o))
	}
}

func (c *Controller) enqueueBasesInNamespace(ns string) {
	objs, err := c.baseIndex.ByIndex(cache.NamespaceIndex, ns)
	if err != nil {
		return
	}
	for _, o := range objs {
		c.baseLoop.Add(key(o))
	}
}

// enqueueAllSubscriptions queues every Subscription because an input of
// everyone's scheduling changed (a cluster).
func (c *Controller) enqueueAllSubscriptions() {
	for _, k := range c.subIndex.ListKeys() {
		c.inputsChanged(k)
	}
}

func (c *Controller) onManifest(old, cur any) {
	for _, obj := range []any{old, cur} {
		m, ok := obj.(*appsv1alpha1.Manifest)
		if !ok || m.Namespace != appsv1alpha1.ReservedNamespace {
			continue
		}
		group, kind := m.Labels[appsv1alpha1.LabelConfigGroup], m.Labels[appsv1alpha1.LabelConfigKind]
		c.enqueueSubsByIndex(indexSubscriptionsByFeedKind, feeds.KindKey(group, kind))
		if tmpl, err := feeds.Template(m); err == nil {
			c.enqueueBasesByIndex(indexBasesByFeedObject, feeds.ObjectKey(group, kind, tmpl.GetNamespace(), tmpl.GetName()))
		}
	}
}

func (c *Controller) onHelmChart(old, cur any) {
	if o, ok1 := old.(*appsv1alpha1.HelmChart); ok1 {
		if n, ok2 := cur.(*appsv1alpha1.HelmChart); ok2 && o.Generation == n.Generation &&
			o.Status == n.Status && apiequality.Semantic.DeepEqual(o.Labels, n.Labels) {
			return
		}
	}
	for _, obj := range []any{old, cur} {
		ch, ok := obj.(*appsv1alpha1.HelmChart)
		if !ok {
			continue
		}
		c.enqueueSubsByIndex(indexSubscriptionsByFeedKind, feeds.KindKey(feeds.HelmChartGroup, feeds.HelmChartKind))
		c.enqueueBasesByIndex(indexBasesByFeedObject, feeds.ObjectKey(feeds.HelmChartGroup, feeds.HelmChartKind, ch.Namespace, ch.Name))
	}
}

func (c *Controller) onLocalization(old, cur any) {
	for _, obj := range []any{old, cur} {
		if l, ok := obj.(*appsv1alpha1.Localization); ok {
			c.enqueueBasesInNamespace(l.Namespace)
		}
	}
}

func (c *Controller) onGlobalization(old, cur any) {
	for _, obj := range []any{old, cur} {
		g, ok := obj.(*appsv1alpha1.Globalization)
		if !ok {
			continue
		}
		f := g.Spec.Feed
		if f.Name != "" {
			c.enqueueBasesByIndex(indexBasesByFeedObject, feeds.ObjectKey(feeds.Group(f.APIVersion), f.Kind, f.Namespace, f.Name))
		} else {
			c.enqueueBasesByIndex(indexBasesByFeedKind, feeds.KindKey(feeds.Group(f.APIVersion), f.Kind))
		}
	}
}

func (c *Controller) onFeedInventory(old, cur any) {
	if old != nil && cur != nil {
		if o, n := old.(*appsv1alpha1.FeedInventory), cur.(*appsv1alpha1.FeedInventory); apiequality.Semantic.DeepEqual(o.Spec, n.Spec) {
			return
		}
	}
	obj := cur
	if obj == nil {
		obj = old
	}
	c.inputsChanged(key(obj)) // named after its Subscription: restore it
}

// onManagedCluster reacts to what scheduling and overrides read: labels,
// taints, the cluster id, the cluster coming or going (every Subscription
// and the cluster's Bases again), and its capacity (status.allocatable,
// and status.available with status.predictorEnabled: only the Dynamic
// Subscriptions whose replicas the change may move, roomChanged). This is
// the one place that decides which cluster changes make Subscriptions
// schedule again (their plans are dropped). Heartbeats (status
// timestamps, readiness) change none of that: a cluster that goes NotReady
// keeps its applications until the failover taint says otherwise; when
// that taint goes, the Subscriptions that may use the cluster again are
// queued paced (failedBack).
func (c *Controller) onManagedCluster(old, cur any) {
	o, _ := old.(*clusterv1beta1.ManagedCluster)
	n, _ := cur.(*clusterv1beta1.ManagedCluster)
	if onlyFailoverTaintLeft(o, n) {
		c.failedBack(n)
		c.enqueueBasesInNamespace(n.Namespace)
		return
	}
	if o != nil && n != nil &&
		apiequality.Semantic.DeepEqual(o.Labels, n.Labels) &&
		apiequality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) &&
		o.Spec.ClusterID == n.Spec.ClusterID &&
		(o.DeletionTimestamp == nil) == (n.DeletionTimestamp == nil) {
		// roomChanged takes where usage grew (room shrank) and where it
		// shrank (room grew).
		grew, shrank := roomMoved(&o.Status, &n.Status)
		var fuller, freer []string
		ck := n.Namespace + "/" + n.Name
		if shrank {
			fuller = []string{ck}
		}
		if grew {
			freer = []string{ck}
		}
		if grew || shrank {
			c.roomChanged("", fuller, freer)
		}
		return
	}
	c.enqueueAllSubscriptions()
	for _, m := range []*clusterv1beta1.ManagedCluster{o, n} {
		if m != nil {
			c.enqueueBasesInNamespace(m.Namespace)
		}
	}
}

// roomMoved says whether a cluster's room may have grown or shrunk between
// two of its statuses (both, when resources moved both ways): a report that
// only shrank it cannot make room for a Subscription that is short, and one
// that only grew it cannot push anyone out, so neither re-queues those
// (agents report status.available whenever pods come and go).
func roomMoved(o, n *clusterv1beta1.ManagedClusterStatus) (grew, shrank bool) {
	if o.PredictorEnabled != n.PredictorEnabled {
		// The predictor's figure starts or stops counting: either way.
		return true, true
	}
	compare := func(a, b corev1.ResourceList) {
		for name, q := range b {
			if was, ok := a[name]; !ok || q.Cmp(was) > 0 {
				grew = true
			} else if q.Cmp(was) < 0 {
				shrank = true
			}
		}
		for name := range a {
			if _, ok := b[name]; !ok {
				shrank = true // a resource no longer reported counts as none
			}
		}
	}
	compare(o.Allocatable, n.Allocatable)
	if n.PredictorEnabled {
		compare(o.Available, n.Available)
	}
	return grew, shrank
}
