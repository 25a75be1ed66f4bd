package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	appslisters "github.com/clusternet/clusternet/pkg/generated/listers/apps/v1alpha1"
)

// subsNamespace holds the benchmark's Subscriptions in the parent.
const subsNamespace = "scale"

// rollouts times Subscriptions to every cluster, watching their
// Descriptions and the Subscriptions themselves through informers.
type rollouts struct {
	cs      versioned.Interface
	kube    kubernetes.Interface
	dyn     dynamic.Interface
	who     parties
	prof    *profiler
	descs   appslisters.DescriptionLister
	subs    appslisters.SubscriptionLister
	changed chan struct{}
	// clusters is how many clusters every Subscription reaches.
	clusters int
}

// rollout is one Subscription's figures.
type rollout struct {
	// ready: from the Subscription's creation until every Description is
	// Success for its latest spec and the Subscription is Ready.
	ready, update, deleted time.Duration
	parent                 window
	hubCPU                 time.Duration
	// cpu is every party's CPU until Ready.
	cpu cpuSplit
	// renders counts, when the Subscription became Ready, its
	// Descriptions past generation 1 (rendered more than once although
	// nothing the user wrote changed) and why the hub said it rendered
	// them again (its Rendered events).
	renders renders
}

// renders are a rollout's Descriptions rendered more than once.
type renders struct {
	again int
	// why counts the reasons of the hub's Rendered events, by reason.
	why map[string]int
}

func newRollouts(ctx context.Context, cs versioned.Interface, kube kubernetes.Interface, dyn dynamic.Interface, who parties, prof *profiler, clusters int) (*rollouts, error) {
	r := &rollouts{cs: cs, kube: kube, dyn: dyn, who: who, prof: prof, changed: make(chan struct{}, 1), clusters: clusters}
	descFactory := externalversions.NewSharedInformerFactoryWithOptions(cs, 0, externalversions.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = appsv1alpha1.LabelSubscriptionNamespace + "=" + subsNamespace
	}))
	subsFactory := externalversions.NewSharedInformerFactoryWithOptions(cs, 0, externalversions.WithNamespace(subsNamespace))
	notify := func(any) {
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: notify, UpdateFunc: func(_, n any) { notify(n) }, DeleteFunc: notify}
	descs, subs := descFactory.Apps().V1alpha1().Descriptions(), subsFactory.Apps().V1alpha1().Subscriptions()
	if _, err := descs.Informer().AddEventHandler(handler); err != nil {
		return nil, err
	}
	if _, err := subs.Informer().AddEventHandler(handler); err != nil {
		return nil, err
	}
	r.descs, r.subs = descs.Lister(), subs.Lister()
	for _, f := range []externalversions.SharedInformerFactory{descFactory, subsFactory} {
		f.Start(ctx.Done())
		f.WaitForCacheSync(ctx.Done())
	}
	return r, nil
}

// waitFor waits until done holds of name's Descriptions, checking at every
// change, for at most limit.
func (r *rollouts) waitFor(ctx context.Context, name string, limit time.Duration, what string, done func([]*appsv1alpha1.Description) bool) error {
	deadline := time.After(limit)
	for {
		descs, err := r.descs.List(labels.SelectorFromSet(labels.Set{appsv1alpha1.LabelSubscriptionNamespace: subsNamespace, appsv1alpha1.LabelSubscriptionName: name}))
		if err != nil {
			return err
		}
		if done(descs) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("%s: not %s within %s: %s", name, what, limit, summarize(descs))
		case <-r.changed:
		case <-time.After(time.Second): // the Subscription's own status is read, not watched for every field
		}
	}
}

// successes counts the Descriptions Success for their latest spec, past
// generation floor (by name).
func successes(descs []*appsv1alpha1.Description, floor map[types.UID]int64) int {
	n := 0
	for _, d := range descs {
		if d.Status.Phase == appsv1alpha1.DescriptionPhaseSuccess && d.Status.ObservedGeneration == d.Generation && d.Generation > floor[d.UID] {
			n++
		}
	}
	return n
}

func summarize(descs []*appsv1alpha1.Description) string {
	phases := map[string]int{}
	var example []string
	for _, d := range descs {
		p := string(d.Status.Phase)
		if d.Status.ObservedGeneration != d.Generation {
			p += " (older generation)"
		}
		phases[p]++
		if d.Status.Phase != appsv1alpha1.DescriptionPhaseSuccess && len(example) < 3 {
			example = append(example, fmt.Sprintf("%s/%s: %s", d.Namespace, d.Name, d.Status.Reason))
		}
	}
	return fmt.Sprintf("%d Descriptions by phase %v; e.g. %s", len(descs), phases, strings.Join(example, "; "))
}

func (r *rollouts) subscriptionReady(name string) bool {
	s, err := r.subs.Subscriptions(subsNamespace).Get(name)
	if err != nil {
		return false
	}
	c := meta.FindStatusCondition(s.Status.Conditions, "Ready")
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == s.Generation
}

// run times one Subscription of a Deployment, a Service and a ConfigMap to
// every cluster: until all are Success and it is Ready, then an update of
// the Deployment's template until all are Success again, then its deletion
// until every Description and the Subscription are gone.
func (r *rollouts) run(ctx context.Context, name string, limit time.Duration) (rollout, error) {
	var out rollout
	if err := r.createTemplates(ctx, name); err != nil {
		return out, err
	}
	before, err := scrapeParent(ctx, r.kube)
	if err != nil {
		return out, err
	}
	cpu := r.who.snapshot()
	start := time.Now()
	sub := &appsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: subsNamespace},
		Spec: appsv1alpha1.SubscriptionSpec{
			Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: &metav1.LabelSelector{}}}, // every cluster
			Feeds: []appsv1alpha1.Feed{
				{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: name},
				{APIVersion: "v1", Kind: "Service", Namespace: "default", Name: name},
				{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: name},
			},
		},
	}
	if _, err := r.cs.AppsV1alpha1().Subscriptions(subsNamespace).Create(ctx, sub, metav1.CreateOptions{}); err != nil {
		return out, err
	}
	profiled := r.prof.cpu(ctx, name)
	defer profiled()
	err = r.waitFor(ctx, name, limit, "all Success and Ready", func(descs []*appsv1alpha1.Description) bool {
		return len(descs) == r.clusters && successes(descs, nil) == r.clusters && r.subscriptionReady(name)
	})
	if err != nil {
		// Renders again are a cause of a slow rollout worth naming.
		if x, rerr := r.rendersOf(ctx, name); rerr == nil {
			err = fmt.Errorf("%w; %s", err, x)
		}
		return out, err
	}
	out.ready = time.Since(start)
	out.cpu = cpu.until(r.who.snapshot())
	out.hubCPU = out.cpu.by[partyHub]
	r.prof.heap(ctx, name+"-ready")
	if out.renders, err = r.rendersOf(ctx, name); err != nil {
		return out, err
	}
	after, err := scrapeParent(ctx, r.kube)
	if err != nil {
		return out, err
	}
	out.parent = between(before, after)

	// Update: the Deployment's replicas, through the shadow API.
	descs, _ := r.descs.List(labels.SelectorFromSet(labels.Set{appsv1alpha1.LabelSubscriptionNamespace: subsNamespace, appsv1alpha1.LabelSubscriptionName: name}))
	floor := map[types.UID]int64{}
	for _, d := range descs {
		floor[d.UID] = d.Generation
	}
	start = time.Now()
	patch := []byte(`{"spec":{"replicas":3}}`)
	if _, err := r.dyn.Resource(shadow("deployments")).Namespace("default").Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return out, fmt.Errorf("updating the Deployment template %s: %w", name, err)
	}
	err = r.waitFor(ctx, name, limit, "all Success after the update", func(descs []*appsv1alpha1.Description) bool {
		return successes(descs, floor) == r.clusters
	})
	if err != nil {
		return out, err
	}
	out.update = time.Since(start)

	start = time.Now()
	if err := r.cs.AppsV1alpha1().Subscriptions(subsNamespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return out, err
	}
	// Until the Subscription itself is gone: its Bases' finalizers come
	// off after their Descriptions, and work left over would be counted in
	// the next rollout's window.
	err = r.waitFor(ctx, name, limit, "all gone after the deletion", func(descs []*appsv1alpha1.Description) bool {
		_, err := r.subs.Subscriptions(subsNamespace).Get(name)
		return len(descs) == 0 && apierrors.IsNotFound(err)
	})
	if err != nil {
		return out, err
	}
	out.deleted = time.Since(start)
	return out, r.deleteTemplates(ctx, name)
}

// rendersOf counts name's Descriptions rendered more than once and the
// reasons the hub gave in its Rendered events (one per render again:
// base.go's writeDescription), read from the parent.
func (r *rollouts) rendersOf(ctx context.Context, name string) (renders, error) {
	out := renders{why: map[string]int{}}
	descs, err := r.descs.List(labels.SelectorFromSet(labels.Set{appsv1alpha1.LabelSubscriptionNamespace: subsNamespace, appsv1alpha1.LabelSubscriptionName: name}))
	if err != nil {
		return out, err
	}
	mine := map[types.UID]bool{}
	for _, d := range descs {
		mine[d.UID] = true
		// The parent also moves the generation when it marks an object
		// with finalizers deleted: that is no render.
		if d.Generation > 1 && d.DeletionTimestamp == nil {
			out.again++
		}
	}
	events, err := r.kube.CoreV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "reason=Rendered,involvedObject.kind=Description"})
	if err != nil {
		return out, fmt.Errorf("the parent's Rendered events: %w", err)
	}
	for _, e := range events.Items {
		if !mine[e.InvolvedObject.UID] {
			continue
		}
		// "rendered again from Base <ns>/<name>: <why>": the why, without
		// the cluster it names.
		_, why, ok := strings.Cut(e.Message, ": ")
		if !ok {
			why = e.Message
		}
		out.why[why] += max(1, int(e.Count))
	}
	return out, nil
}

// String is how a run's renders print: the count and each reason.
func (x renders) String() string {
	s := fmt.Sprintf("%d Descriptions rendered more than once", x.again)
	for _, why := range slices.Sorted(maps.Keys(x.why)) {
		s += fmt.Sprintf("; %d× %q", x.why[why], why)
	}
	return s
}

func shadow(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "shadow", Version: "v1alpha1", Resource: resource}
}

// templates are name's ConfigMap, Service and Deployment, by shadow resource.
func templates(name string) map[string]map[string]any {
	labels := map[string]any{"app": name}
	return map[string]map[string]any{
		"configmaps": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name, "namespace": "default"},
			"data": map[string]any{"config.yaml": "replicas: 2\n"}},
		"services": {"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": name, "namespace": "default"},
			"spec": map[string]any{"selector": labels, "ports": []any{map[string]any{"port": int64(80)}}}},
		"deployments": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": name, "namespace": "default", "labels": labels},
			"spec": map[string]any{"replicas": int64(2), "selector": map[string]any{"matchLabels": labels},
				"template": map[string]any{"metadata": map[string]any{"labels": labels},
					"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": "nginx:1.14.2"}}}}}},
	}
}

// createTemplates writes name's templates through the shadow API, as
// `kubectl clusternet apply` does.
func (r *rollouts) createTemplates(ctx context.Context, name string) error {
	all := templates(name)
	for _, res := range slices.Sorted(maps.Keys(all)) {
		u := &unstructured.Unstructured{Object: all[res]}
		if _, err := r.dyn.Resource(shadow(res)).Namespace("default").Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("template %s %s through the shadow API: %w", res, name, err)
		}
	}
	return nil
}

func (r *rollouts) deleteTemplates(ctx context.Context, name string) error {
	for res := range templates(name) {
		if err := r.dyn.Resource(shadow(res)).Namespace("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}
