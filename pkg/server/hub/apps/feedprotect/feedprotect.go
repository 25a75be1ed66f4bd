// Package feedprotect is the hub's FeedInUseProtection (upstream
// Clusternet's feature gate): a template (its Manifest) or a HelmChart that a
// Subscription uses as a feed carries the finalizer
// apps.clusternet.io/feed-protection, so that deleting it waits until no
// Subscription uses it. Objects no Subscription uses never carry it. See
// docs/feed-protection.md.
//
// Only Subscriptions of the object's own namespace hold it. A hold is a write
// on the object (its deletion waits), and who may create a Subscription in
// namespace A is no one namespace B trusted with its objects: the
// Subscription webhook only asks whether A's author may read what it names,
// and the owner of B could not release a hold from A. Kept namespace-local,
// whoever may delete B's object can see, and ask B's Subscription owners to
// drop, everything that holds it, as Kubernetes keeps owner references and
// PVC protection namespace-local.
package feedprotect

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	appslisters "github.com/clusternet/clusternet/pkg/generated/listers/apps/v1alpha1"
)

// ReasonFeedInUse is the reason of the Warning events on an object whose
// deletion is held and on each Subscription holding it.
const ReasonFeedInUse = "FeedInUse"

// Options are what the controller is built from.
type Options struct {
	Clusternet versioned.Interface
	Informers  externalversions.SharedInformerFactory
	// Events records events from component clusternet-hub.
	Events record.EventRecorder
}

// Controller keeps the finalizer on exactly the Manifests and HelmCharts
// some Subscription of their namespace uses, and removes it from an object
// being deleted once none does.
type Controller struct {
	client       versioned.Interface
	events       record.EventRecorder
	subs         appslisters.SubscriptionLister
	manifests    appslisters.ManifestLister
	charts       appslisters.HelmChartLister
	manifestLoop *controller.Loop
	chartLoop    *controller.Loop
}

// New builds the controller and registers its handlers on the shared
// informers (call before they start).
func New(o Options) (*Controller, error) {
	apps := o.Informers.Apps().V1alpha1()
	subInf, manInf, chartInf := apps.Subscriptions(), apps.Manifests(), apps.HelmCharts()
	c := &Controller{
		client:    o.Clusternet,
		events:    o.Events,
		subs:      subInf.Lister(),
		manifests: manInf.Lister(),
		charts:    chartInf.Lister(),
	}
	c.manifestLoop = controller.New("feed-protection-manifests", c.syncManifest)
	c.chartLoop = controller.New("feed-protection-helmcharts", c.syncChart)
	if err := c.manifestLoop.Watch(manInf.Informer(), templateKeys); err != nil {
		return nil, err
	}
	if err := c.chartLoop.Watch(chartInf.Informer(), nil); err != nil {
		return nil, err
	}
	reg, err := subInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.onSubscription(nil, obj) },
		UpdateFunc: c.onSubscription,
		DeleteFunc: func(obj any) { c.onSubscription(obj, nil) },
	})
	if err != nil {
		return nil, err
	}
	// Both loops decide from the Subscriptions, and each queues the other's
	// keys through onSubscription, which reads both object caches.
	for _, l := range []*controller.Loop{c.manifestLoop, c.chartLoop} {
		l.WaitFor(reg.HasSynced, manInf.Informer().HasSynced, chartInf.Informer().HasSynced)
	}
	return c, nil
}

// Run runs both loops with workers each until ctx ends, and returns once
// they stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for _, l := range []*controller.Loop{c.manifestLoop, c.chartLoop} {
		wg.Go(func() { l.Run(ctx, workers) })
	}
	wg.Wait()
}

// templateKeys queues the Manifests that hold templates: those of the
// reserved namespace.
func templateKeys(obj any) []string {
	m, ok := obj.(*appsv1alpha1.Manifest)
	if !ok || m.Namespace != appsv1alpha1.ReservedNamespace {
		return nil
	}
	return controller.OwnKey(m)
}

// onSubscription queues every object old or cur may have used or may use
// now. The Subscription's status, which the distribution controllers write
// all the time, changes nothing here.
func (c *Controller) onSubscription(old, cur any) {
	if tomb, ok := old.(cache.DeletedFinalStateUnknown); ok {
		old = tomb.Obj
	}
	o, _ := old.(*appsv1alpha1.Subscription)
	n, _ := cur.(*appsv1alpha1.Subscription)
	if o != nil && n != nil && o.UID == n.UID && (o.DeletionTimestamp == nil) == (n.DeletionTimestamp == nil) &&
		apiequality.Semantic.DeepEqual(o.Spec.Feeds, n.Spec.Feeds) {
		return
	}
	for _, sub := range []*appsv1alpha1.Subscription{o, n} {
		if sub != nil {
			c.enqueueUsedBy(sub)
		}
	}
}

// enqueueUsedBy queues the objects of sub's namespace its feeds may name or
// select; syncs decide.
func (c *Controller) enqueueUsedBy(sub *appsv1alpha1.Subscription) {
	for _, f := range sub.Spec.Feeds {
		if feeds.IsChart(f) {
			if f.Name != "" {
				if f.Namespace == sub.Namespace {
					c.chartLoop.Add(sub.Namespace + "/" + f.Name)
				}
				continue
			}
			charts, _ := c.charts.HelmCharts(sub.Namespace).List(labels.Everything())
			for _, ch := range charts {
				c.chartLoop.Add(ch.Namespace + "/" + ch.Name)
			}
			continue
		}
		group := feeds.Group(f.APIVersion)
		if f.Name != "" {
			if f.Namespace == sub.Namespace {
				c.manifestLoop.Add(appsv1alpha1.ReservedNamespace + "/" + appsv1alpha1.ManifestName(group, f.Kind, f.Namespace, f.Name))
			}
			continue
		}
		ms, _ := c.manifests.Manifests(appsv1alpha1.ReservedNamespace).List(labels.SelectorFromSet(labels.Set{
			appsv1alpha1.LabelConfigGroup: group, appsv1alpha1.LabelConfigKind: f.Kind, appsv1alpha1.LabelConfigNamespace: sub.Namespace,
		}))
		for _, m := range ms {
			c.manifestLoop.Add(m.Namespace + "/" + m.Name)
		}
	}
}

func (c *Controller) syncManifest(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	if ns != appsv1alpha1.ReservedNamespace {
		return 0, nil // no template: never the hub's to protect
	}
	m, err := c.manifests.Manifests(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	what, holders := c.templateHolders(m)
	return 0, c.reconcile(ctx, manifestTarget(c.client, m, what), holders)
}

// templateHolders names the template m holds and finds the Subscriptions
// using it. A Manifest that holds no readable template, or holds it under
// another template's name, is no feed (resolution refuses it too).
func (c *Controller) templateHolders(m *appsv1alpha1.Manifest) (string, []holder) {
	tmpl, err := feeds.Template(m)
	if err != nil {
		return fmt.Sprintf("the template in Manifest %s/%s", m.Namespace, m.Name), nil
	}
	gvk := tmpl.GroupVersionKind()
	ns, name := tmpl.GetNamespace(), tmpl.GetName()
	what := "the template of " + feeds.Describe(appsv1alpha1.Feed{APIVersion: tmpl.GetAPIVersion(), Kind: gvk.Kind, Namespace: ns, Name: name})
	if m.Name != appsv1alpha1.ManifestName(gvk.Group, gvk.Kind, ns, name) {
		return what, nil
	}
	return what, c.holders(ns, func(f appsv1alpha1.Feed) bool {
		return !feeds.IsChart(f) && feeds.Group(f.APIVersion) == gvk.Group && f.Kind == gvk.Kind && selects(f, ns, name, tmpl.GetLabels())
	})
}

func (c *Controller) syncChart(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	ch, err := c.charts.HelmCharts(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	holders := c.holders(ch.Namespace, func(f appsv1alpha1.Feed) bool {
		return feeds.IsChart(f) && selects(f, ch.Namespace, ch.Name, ch.Labels)
	})
	return 0, c.reconcile(ctx, chartTarget(c.client, ch), holders)
}

// selects says whether feed f names or selects the object namespace/name
// with labels lbls, as resolution reads a feed. A feed setting both or
// neither of name and feedSelector, or whose selector does not parse, does
// not resolve and selects nothing.
func selects(f appsv1alpha1.Feed, namespace, name string, lbls map[string]string) bool {
	switch {
	case f.Name != "" && f.FeedSelector == nil:
		return f.Namespace == namespace && f.Name == name
	case f.Name == "" && f.FeedSelector != nil:
		if f.Namespace != "" && f.Namespace != namespace {
			return false
		}
		sel, err := metav1.LabelSelectorAsSelector(f.FeedSelector)
		return err == nil && sel.Matches(labels.Set(lbls))
	}
	return false
}

// holder is a Subscription using an object, through spec.feeds[feeds[i]].
type holder struct {
	sub   *appsv1alpha1.Subscription
	feeds []int
}

// where names the feeds of h that use the object: "spec.feeds[0], spec.feeds[2]".
func (h holder) where() string {
	parts := make([]string, len(h.feeds))
	for i, f := range h.feeds {
		parts[i] = fmt.Sprintf("spec.feeds[%d]", f)
	}
	return strings.Join(parts, ", ")
}

// holders are the Subscriptions of namespace, not being deleted, with a feed
// that uses the object, sorted by name. A cluster-scoped template (no
// namespace) has none: no namespace's Subscriptions may hold what every
// namespace shares.
func (c *Controller) holders(namespace string, uses func(appsv1alpha1.Feed) bool) []holder {
	if namespace == "" {
		return nil
	}
	subs, _ := c.subs.Subscriptions(namespace).List(labels.Everything())
	var out []holder
	for _, sub := range subs {
		if sub.DeletionTimestamp != nil {
			continue // its Bases are going; it distributes nothing new
		}
		var idx []int
		for i, f := range sub.Spec.Feeds {
			if uses(f) {
				idx = append(idx, i)
			}
		}
		if len(idx) > 0 {
			out = append(out, holder{sub: sub, feeds: idx})
		}
	}
	slices.SortFunc(out, func(a, b holder) int { return strings.Compare(a.sub.Name, b.sub.Name) })
	return out
}

// target is one Manifest or HelmChart to reconcile.
type target struct {
	obj interface {
		metav1.Object
		runtime.Object
	}
	// what names it in messages: `the template of apps/v1 Deployment "foo/my-nginx"`.
	what string
	// patch merge-patches it.
	patch func(ctx context.Context, data []byte) error
}

func manifestTarget(client versioned.Interface, m *appsv1alpha1.Manifest, what string) target {
	return target{obj: m, what: what, patch: func(ctx context.Context, data []byte) error {
		_, err := client.AppsV1alpha1().Manifests(m.Namespace).Patch(ctx, m.Name, types.MergePatchType, data, metav1.PatchOptions{})
		return err
	}}
}

func chartTarget(client versioned.Interface, ch *appsv1alpha1.HelmChart) target {
	return target{obj: ch, what: fmt.Sprintf("HelmChart %s/%s", ch.Namespace, ch.Name), patch: func(ctx context.Context, data []byte) error {
		_, err := client.AppsV1alpha1().HelmCharts(ch.Namespace).Patch(ctx, ch.Name, types.MergePatchType, data, metav1.PatchOptions{})
		return err
	}}
}

// reconcile brings t's finalizer and annotation to what holders ask:
// finalizer while in use; while being deleted and in use, the annotation
// naming the holders (and events when they change); neither once unused.
func (c *Controller) reconcile(ctx context.Context, t target, holders []holder) error {
	logger := klog.FromContext(ctx)
	finalizers := t.obj.GetFinalizers()
	has := slices.Contains(finalizers, appsv1alpha1.FeedProtectionFinalizer)
	note, noted := t.obj.GetAnnotations()[appsv1alpha1.AnnotationFeedProtection]
	deleting := t.obj.GetDeletionTimestamp() != nil
	switch {
	case len(holders) == 0:
		if !has && !noted {
			return nil
		}
		if err := write(ctx, t, without(finalizers), nil); err != nil {
			return err
		}
		if deleting {
			logger.Info("No Subscription uses it any more: its deletion completes", "object", t.what)
		}
		return nil
	case deleting:
		if !has {
			// Deleted before the hub protected it: the API server takes no
			// new finalizer on an object being deleted.
			return nil
		}
		msg := heldMessage(t.what, holders)
		if noted && note == msg {
			return nil
		}
		if err := write(ctx, t, finalizers, &msg); err != nil {
			return err
		}
		logger.Info("Deletion held while Subscriptions use it", "object", t.what, "subscriptions", len(holders))
		c.events.Event(t.obj, corev1.EventTypeWarning, ReasonFeedInUse, msg)
		for _, h := range holders {
			c.events.Eventf(h.sub, corev1.EventTypeWarning, ReasonFeedInUse,
				"%s is being deleted, and FeedInUseProtection holds it while this Subscription uses it (%s): "+
					"remove it from spec.feeds (drop the feed, or narrow its feedSelector) or delete this Subscription, and the deletion completes; until then it is still distributed",
				t.what, h.where())
		}
		return nil
	default:
		if has && !noted {
			return nil
		}
		if !has {
			finalizers = append(slices.Clone(finalizers), appsv1alpha1.FeedProtectionFinalizer)
		}
		return write(ctx, t, finalizers, nil)
	}
}

// heldMessage says which Subscriptions hold what and how to release it; it
// is the annotation on the object, its event, and what the shadow API says
// to a create of the same template.
func heldMessage(what string, holders []holder) string {
	parts := make([]string, len(holders))
	for i, h := range holders {
		parts[i] = fmt.Sprintf("Subscription %s/%s (%s)", h.sub.Namespace, h.sub.Name, h.where())
	}
	return fmt.Sprintf("%s is being deleted, and FeedInUseProtection holds it while Subscriptions use it as a feed: %s; "+
		"remove it from their spec.feeds or delete them, and the deletion completes", what, strings.Join(parts, ", "))
}

// without is finalizers without the feed-protection one.
func without(finalizers []string) []string {
	return slices.DeleteFunc(slices.Clone(finalizers), func(f string) bool { return f == appsv1alpha1.FeedProtectionFinalizer })
}

// write sets t's finalizers and its annotation (removed when note is nil)
// with a merge patch conditional on the resourceVersion read: a finalizer
// list written from a stale read could drop another writer's finalizer.
func write(ctx context.Context, t target, finalizers []string, note *string) error {
	var fin any = finalizers
	if len(finalizers) == 0 {
		fin = nil
	}
	var ann any
	if note != nil {
		ann = *note
	}
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": t.obj.GetResourceVersion(),
		"finalizers":      fin,
		"annotations":     map[string]any{appsv1alpha1.AnnotationFeedProtection: ann},
	}})
	if err != nil {
		return err
	}
	err = t.patch(ctx, data)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing the %s finalizer of %s: %w", appsv1alpha1.FeedProtectionFinalizer, t.what, err)
	}
	return nil
}
