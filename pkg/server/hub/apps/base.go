package apps

import (
	"bytes"
	"context"
	"errors"
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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/apps/render"
	"github.com/clusternet/clusternet/pkg/controller"
)

// deployerKinds are the two Descriptions a Base renders into.
var deployerKinds = []struct {
	suffix string
	chart  bool
	render func(render.Input) (*render.Rendered, error)
}{
	{appsv1alpha1.DescriptionGenericSuffix, false, render.Generic},
	{appsv1alpha1.DescriptionHelmSuffix, true, render.Helm},
}

// syncBase renders a Base into its Descriptions. A render that fails
// leaves the Description exactly as it was and says why on the Base.
func (c *Controller) syncBase(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	base, err := c.bases.Bases(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.baseStatus.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if base.DeletionTimestamp != nil {
		return 0, c.finalizeBase(ctx, base)
	}
	sub, err := c.subscriptionOf(ctx, base)
	if err != nil {
		return 0, err
	}
	if sub == nil {
		// Its Subscription is gone without cleaning up (its finalizer was
		// removed by hand): the Base goes too, and its Descriptions with it.
		klog.FromContext(ctx).Info("Deleting a Base whose Subscription is gone", "base", klog.KObj(base), "subscription", subscriptionKeyOf(base))
		err := c.client.AppsV1alpha1().Bases(ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &base.UID}})
		if apierrors.IsNotFound(err) {
			err = nil
		}
		return 0, err
	}
	if sub.DeletionTimestamp != nil {
		return 0, nil // the Subscription's finalizer deletes this Base
	}
	if upd := base.DeepCopy(); controller.AddFinalizer(upd) {
		if base, err = c.client.AppsV1alpha1().Bases(ns).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return 0, err
		}
	}
	mcls, err := c.clusterIn(ns)
	if err != nil {
		return 0, err
	}

	status := c.baseStatus.newest(key, base).DeepCopy()
	in, inErr := c.renderInput(ctx, base, sub, mcls)
	var failure error
	var pending []string
	var written []string
	var recheck time.Duration
	for _, dk := range deployerKinds {
		descName := base.Name + dk.suffix
		existing, err := c.descs.Descriptions(ns).Get(descName)
		if apierrors.IsNotFound(err) {
			existing = nil
		} else if err != nil {
			return 0, err
		}
		if wait := c.descCreates.pending(ns+"/"+descName, existing != nil); wait > 0 {
			// Created a moment ago, not cached yet: its event brings the
			// Base back here, rather than a create that only conflicts.
			// The look again when createLag is over is for the event that
			// never comes (deleted before the cache saw it).
			recheck = max(recheck, wait)
			continue
		}
		if existing != nil && !c.ownedBy(existing, base) {
			if existing.Labels[appsv1alpha1.LabelSubscriptionNamespace] == sub.Namespace && existing.Labels[appsv1alpha1.LabelSubscriptionName] == sub.Name {
				// Left by an earlier Subscription of the same name.
				if err := c.deleteDescription(ctx, existing); err != nil {
					return 0, err
				}
				continue
			}
			failure = errors.Join(failure, fmt.Errorf("the Description %s/%s exists and is not this Base's (its labels name Subscription %q): delete it, or rename the Subscription",
				ns, descName, subscriptionKeyOf(existing)))
			continue
		}
		if inErr != nil {
			continue // reported once, below
		}
		if !hasObjects(in, dk.chart) {
			if existing != nil {
				// The last feed of this kind was removed: its Description goes,
				// and its deployer removes what it applied.
				if err := c.deleteDescription(ctx, existing); err != nil {
					return 0, err
				}
			}
			continue
		}
		if existing != nil && existing.DeletionTimestamp != nil {
			// Being deleted (by hand, or the kind came back meanwhile): made
			// again once its deployer has cleaned up.
			if err := c.releaseIfClusterGone(ctx, existing); err != nil {
				return 0, err
			}
			continue
		}
		applicable, err := render.Applicable(in, dk.chart)
		if err != nil {
			failure = errors.Join(failure, err)
			continue
		}
		hash, refs := render.Recorded(existing)
		decision := render.Decide(existing != nil, hash, refs, render.InputsHash(in, dk.chart), applicable)
		if !decision.Regenerate {
			for _, p := range decision.Pending {
				pending = append(pending, p.String())
			}
			continue
		}
		out, err := dk.render(in)
		if err != nil {
			failure = errors.Join(failure, err)
			continue
		}
		if err := c.writeDescription(ctx, base, existing, descName, out, decision.Why); err != nil {
			return 0, err
		}
		written = append(written, descName)
	}

	if inErr != nil {
		failure = errors.Join(inErr, failure)
	}
	cond := metav1.Condition{Type: ConditionRendered, Status: metav1.ConditionTrue, Reason: ReasonRendered, ObservedGeneration: base.Generation,
		Message: "the Descriptions are up to date"}
	if len(pending) > 0 {
		cond.Message += fmt.Sprintf("; ApplyLater overrides not in force yet (they take effect at the next change of the Subscription or its feeds): %s", strings.Join(pending, ", "))
	}
	if failure != nil {
		cond.Status, cond.Reason = metav1.ConditionFalse, reasonOf(failure)
		cond.Message = strings.ReplaceAll(failure.Error(), "\n", "; ") + "; the Descriptions stay as they were"
	}
	if setCondition(&status.Conditions, cond) && failure != nil {
		c.events.Event(base, corev1.EventTypeWarning, cond.Reason, cond.Message)
		c.events.Eventf(sub, corev1.EventTypeWarning, cond.Reason, "cluster of namespace %s: %s", ns, cond.Message)
		for _, dk := range deployerKinds {
			if d, err := c.descs.Descriptions(ns).Get(base.Name + dk.suffix); err == nil {
				c.events.Event(d, corev1.EventTypeWarning, cond.Reason, cond.Message)
			}
		}
	}
	if len(written) > 0 {
		klog.FromContext(ctx).V(2).Info("Rendered", "base", klog.KObj(base), "descriptions", written)
	}
	if apiequality.Semantic.DeepEqual(&base.Status, status) || c.baseStatus.written(key, base, status) {
		return recheck, nil
	}
	upd := base.DeepCopy()
	upd.Status = *status
	if _, err = c.client.AppsV1alpha1().Bases(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return 0, err
	}
	c.baseStatus.remember(key, base, status)
	return recheck, nil
}

// recentCreates are the Descriptions this hub created that its cache had
// not shown yet, by key, with when. An entry older than createLag no longer
// counts (a Description deleted before the cache ever saw it is created
// again then).
type recentCreates struct {
	mu sync.Mutex
	at map[string]time.Time
}

// createLag bounds how long the cache may take to show a Description the
// hub created. Past it the Base's sync looks again and creates what is
// still missing: a cache later than that costs one create that finds the
// Description exists, and one deleted before the cache saw it is made
// again after createLag rather than at some unrelated event.
const createLag = 5 * time.Second

func (r *recentCreates) add(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = map[string]time.Time{}
	}
	r.at[key] = time.Now()
}

// pending is how much of createLag is left for key, created by this hub
// and not cached yet; 0 when it is not such a key. cached forgets it.
func (r *recentCreates) pending(key string, cached bool) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.at[key]
	if !ok {
		return 0
	}
	left := createLag - time.Since(at)
	if cached || left <= 0 {
		delete(r.at, key)
		return 0
	}
	return left
}

// statusWrites remembers the last status this hub wrote to each Base. The
// Descriptions a sync creates bring the Base back to the loop at once,
// often before the informer has the status that sync wrote: compared with
// the cached copy, the same status looks new, and writing it again over a
// stale resourceVersion is a request that only conflicts.
type statusWrites struct {
	mu sync.Mutex
	m  map[string]statusWrite
}

type statusWrite struct {
	uid types.UID
	// over is the resourceVersion the write replaced: while the cache
	// still holds it, the cache has not seen the write.
	over   string
	status *appsv1alpha1.BaseStatus
}

// newest is the status to start from: what this hub last wrote when the
// cached base has not seen it yet (so conditions keep their transition
// times and the comparison finds nothing new), else base's.
func (w *statusWrites) newest(key string, base *appsv1alpha1.Base) *appsv1alpha1.BaseStatus {
	if last, ok := w.ahead(key, base); ok {
		return last
	}
	return &base.Status
}

// written says status is what this hub last wrote over base as cached.
func (w *statusWrites) written(key string, base *appsv1alpha1.Base, status *appsv1alpha1.BaseStatus) bool {
	last, ok := w.ahead(key, base)
	return ok && apiequality.Semantic.DeepEqual(last, status)
}

// ahead is the status this hub last wrote over base as cached, if any.
func (w *statusWrites) ahead(key string, base *appsv1alpha1.Base) (*appsv1alpha1.BaseStatus, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	last, ok := w.m[key]
	if !ok || last.uid != base.UID || last.over != base.ResourceVersion {
		return nil, false
	}
	return last.status, true
}

func (w *statusWrites) remember(key string, base *appsv1alpha1.Base, status *appsv1alpha1.BaseStatus) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]statusWrite{}
	}
	w.m[key] = statusWrite{uid: base.UID, over: base.ResourceVersion, status: status}
}

func (w *statusWrites) forget(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}

func reasonOf(err error) string {
	var re *render.Error
	if errors.As(err, &re) {
		return re.Reason
	}
	return ReasonRenderFailed
}

func hasObjects(in render.Input, chart bool) bool {
	return slices.ContainsFunc(in.Objects, func(o render.Object) bool { return o.IsChart() == chart })
}

// subscriptionOf is the Base's Subscription, or nil when it no longer
// exists (checked live before saying so: the cache may lag).
func (c *Controller) subscriptionOf(ctx context.Context, base *appsv1alpha1.Base) (*appsv1alpha1.Subscription, error) {
	ns, name := base.Labels[appsv1alpha1.LabelSubscriptionNamespace], base.Labels[appsv1alpha1.LabelSubscriptionName]
	uid := base.Labels[appsv1alpha1.LabelSubscriptionUID]
	if ns == "" || name == "" {
		return nil, nil
	}
	sub, err := c.subs.Subscriptions(ns).Get(name)
	if err == nil && string(sub.UID) == uid {
		return sub, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	sub, err = c.client.AppsV1alpha1().Subscriptions(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	case string(sub.UID) != uid:
		return nil, nil
	}
	return sub, nil
}

// clusterIn is the ManagedCluster of a dedicated namespace, or nil.
func (c *Controller) clusterIn(ns string) (*clusterv1beta1.ManagedCluster, error) {
	ms, err := c.clusters.ManagedClusters(ns).List(labels.Everything())
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	slices.SortFunc(ms, func(a, b *clusterv1beta1.ManagedCluster) int { return strings.Compare(a.Name, b.Name) })
	return ms[0], nil
}

func (c *Controller) ownedBy(d *appsv1alpha1.Description, base *appsv1alpha1.Base) bool {
	return d.Labels[appsv1alpha1.LabelSubscriptionUID] == base.Labels[appsv1alpha1.LabelSubscriptionUID]
}

// renderInput reads what the Base names from the caches.
func (c *Controller) renderInput(ctx context.Context, base *appsv1alpha1.Base, sub *appsv1alpha1.Subscription, mcls *clusterv1beta1.ManagedCluster) (render.Input, error) {
	return render.InputOf(base, sub.UID, &source{c: c}, c.overridesFor(ctx, base.Namespace, mcls))
}

// overridesFor are the overrides that apply to the cluster, in order
// (render.Overrides decides); a Globalization whose clusterAffinity does
// not parse is logged and gets an event.
func (c *Controller) overridesFor(ctx context.Context, ns string, mcls *clusterv1beta1.ManagedCluster) []render.Override {
	globs, _ := c.globs.List(labels.Everything())
	locs, _ := c.locs.Localizations(ns).List(labels.Everything())
	out, bad := render.Overrides(globs, locs, mcls)
	for _, b := range bad {
		klog.FromContext(ctx).Info("Ignoring a Globalization with a bad clusterAffinity", "globalization", b.Globalization.Name, "err", b.Err)
		c.events.Eventf(b.Globalization, corev1.EventTypeWarning, ReasonInvalidClusterAffinity, "spec.clusterAffinity: %v: fix the selector; this Globalization applies nowhere until then", b.Err)
	}
	return out
}

// writeDescription creates or updates one Description with a rendered
// spec. A changed spec sets the Description's phase back to Pending, so
// the Subscription is not Ready on the strength of the last rollout; a new
// Description has no phase until its deployer picks it up.
func (c *Controller) writeDescription(ctx context.Context, base *appsv1alpha1.Base, existing *appsv1alpha1.Description, name string, r *render.Rendered, why string) error {
	client := c.client.AppsV1alpha1().Descriptions(base.Namespace)
	wantLabels := map[string]string{}
	for _, k := range []string{appsv1alpha1.LabelSubscriptionName, appsv1alpha1.LabelSubscriptionNamespace, appsv1alpha1.LabelSubscriptionUID, appsv1alpha1.LabelClusterID} {
		wantLabels[k] = base.Labels[k]
	}
	wantAnn := map[string]string{render.AnnotationInputsHash: r.InputsHash, render.AnnotationOverrides: render.EncodeRefs(r.Applied)}
	owner := *metav1.NewControllerRef(base, appsv1alpha1.SchemeGroupVersion.WithKind("Base"))
	owner.BlockOwnerDeletion = nil

	if existing == nil {
		d := &appsv1alpha1.Description{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: base.Namespace, Labels: wantLabels, Annotations: wantAnn,
				Finalizers: []string{appsv1alpha1.Finalizer}, OwnerReferences: []metav1.OwnerReference{owner},
			},
			Spec: r.Spec,
		}
		if _, err := client.Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return err // AlreadyExists included: the cache lags, look again
		}
		c.descCreates.add(base.Namespace + "/" + name)
		// No event: the Description's existence, its owner and its
		// inputs-hash annotation say as much, and an event per cluster per
		// Subscription is a parent write each. A render again says why.
		// No Pending either: a status nobody has written says "not picked
		// up by a deployer yet", and the deployer's first write (the list
		// of what it will apply) says Pending; a write of ours too would be
		// a second parent write per cluster per rollout with no news, and
		// would race that first write.
		return nil
	}
	upd := existing.DeepCopy()
	if upd.Labels == nil {
		upd.Labels = map[string]string{}
	}
	for k, v := range wantLabels {
		upd.Labels[k] = v
	}
	if upd.Annotations == nil {
		upd.Annotations = map[string]string{}
	}
	for k, v := range wantAnn {
		upd.Annotations[k] = v
	}
	controller.AddFinalizer(upd)
	if !slices.ContainsFunc(upd.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == base.UID }) {
		upd.OwnerReferences = append(upd.OwnerReferences, owner)
	}
	specChanged := !SpecEqual(existing.Spec, r.Spec)
	upd.Spec = r.Spec
	if !specChanged && apiequality.Semantic.DeepEqual(upd.ObjectMeta, existing.ObjectMeta) {
		return nil
	}
	updated, err := client.Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	if specChanged {
		c.setPending(ctx, updated)
		c.events.Eventf(updated, corev1.EventTypeNormal, "Rendered", "rendered again from Base %s/%s: %s", base.Namespace, base.Name, why)
	}
	return nil
}

// setPending marks a Description just (re)rendered as not deployed yet. A
// conflict means its deployer already reported on the new spec: keep that.
func (c *Controller) setPending(ctx context.Context, d *appsv1alpha1.Description) {
	upd := d.DeepCopy()
	upd.Status.Phase = appsv1alpha1.DescriptionPhasePending
	upd.Status.Reason = ""
	if _, err := c.client.AppsV1alpha1().Descriptions(d.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		klog.FromContext(ctx).Error(err, "Marking a Description Pending", "description", klog.KObj(d))
	}
}

// SpecEqual compares Description specs by meaning: objects and values as
// JSON, whatever their key order.
func SpecEqual(a, b appsv1alpha1.DescriptionSpec) bool {
	if a.Deployer != b.Deployer || len(a.Raw) != len(b.Raw) || len(a.ChartRaw) != len(b.ChartRaw) ||
		!apiequality.Semantic.DeepEqual(a.Charts, b.Charts) {
		return false
	}
	same := func(x, y []byte) bool {
		nx, err1 := render.Normalize(x)
		ny, err2 := render.Normalize(y)
		if err1 != nil || err2 != nil {
			return bytes.Equal(x, y)
		}
		return bytes.Equal(nx, ny)
	}
	for i := range a.Raw {
		if !same(a.Raw[i].Raw, b.Raw[i].Raw) {
			return false
		}
	}
	for i := range a.ChartRaw {
		if !same(a.ChartRaw[i], b.ChartRaw[i]) {
			return false
		}
	}
	return true
}

// deleteDescription deletes a Description; its deployer removes what it
// applied and then its finalizer (or the hub does, when the cluster is gone).
func (c *Controller) deleteDescription(ctx context.Context, d *appsv1alpha1.Description) error {
	if d.DeletionTimestamp != nil {
		return c.releaseIfClusterGone(ctx, d)
	}
	err := c.client.AppsV1alpha1().Descriptions(d.Namespace).Delete(ctx, d.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &d.UID}})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// releaseIfClusterGone removes the finalizer of a Description being
// deleted when its cluster is no longer registered: no deployer will ever
// clean that child, and deletion must not hang.
func (c *Controller) releaseIfClusterGone(ctx context.Context, d *appsv1alpha1.Description) error {
	if !controller.HasFinalizer(d) {
		return nil
	}
	if m, err := c.clusterIn(d.Namespace); err != nil || (m != nil && m.DeletionTimestamp == nil) {
		return err
	}
	// The cache says gone: make sure.
	live, err := c.client.ClustersV1beta1().ManagedClusters(d.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, m := range live.Items {
		if m.DeletionTimestamp == nil {
			return nil
		}
	}
	upd := d.DeepCopy()
	controller.RemoveFinalizer(upd)
	_, err = c.client.AppsV1alpha1().Descriptions(d.Namespace).Update(ctx, upd, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		klog.FromContext(ctx).Info("Released a Description of a cluster that is gone", "description", klog.KObj(d))
	}
	return err
}

// finalizeBase deletes the Base's Descriptions and lets the Base go once
// they are gone.
func (c *Controller) finalizeBase(ctx context.Context, base *appsv1alpha1.Base) error {
	if !controller.HasFinalizer(base) {
		return nil
	}
	left := false
	for _, dk := range deployerKinds {
		// Read live: a Description created a moment ago may not be cached yet.
		d, err := c.client.AppsV1alpha1().Descriptions(base.Namespace).Get(ctx, base.Name+dk.suffix, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if !c.ownedBy(d, base) {
			continue
		}
		left = true
		if err := c.deleteDescription(ctx, d); err != nil {
			return err
		}
	}
	if left {
		return nil // each Description's deletion brings the Base back here
	}
	upd := base.DeepCopy()
	controller.RemoveFinalizer(upd)
	if _, err := c.client.AppsV1alpha1().Bases(base.Namespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	klog.FromContext(ctx).Info("Base cleaned up", "base", klog.KObj(base))
	return nil
}
