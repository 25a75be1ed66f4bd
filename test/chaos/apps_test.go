package chaos

import (
	"context"
	"encoding/base64"

	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

// pairState is where one application stands with one cluster.
type pairState int

const (
	// unbound: the Subscription does not bind the cluster (any more). While
	// draining, its Description may still exist and its objects be pruned.
	draining pairState = iota
	// sealed: unbound and its Description observed gone after the unbind
	// was written: from then on, nothing of it may be created or applied in
	// the cluster.
	sealed
	// binding: a write binding the cluster is in flight.
	binding
	// bound: the Subscription binds the cluster. Once armed (its
	// Description Success), the objects' uids must never change.
	bound
)

func (s pairState) String() string {
	return [...]string{"draining", "sealed", "binding", "bound"}[s]
}

// objKey names one object of an application in a child: "ConfigMap/app0-config".
type objKey string

type sealedObj struct {
	uid  types.UID
	hash string
}

// pair is an application's state with one cluster, as the invariants see it.
type pair struct {
	state pairState
	// unbindSeq is the model sequence once an unbind was written (0: not yet).
	unbindSeq int64
	// boundSeq and boundAt are when the binding was written.
	boundSeq int64
	boundAt  time.Time
	armed    bool
	uids     map[objKey]types.UID
	sealed   map[objKey]sealedObj
	// oldDescs are the uids of the Descriptions seen while the cluster was
	// unbound or in earlier bindings: arming waits for a new one.
	oldDescs, epochDescs map[types.UID]bool
}

// app is one generic application: a ConfigMap and a Deployment template,
// a Subscription binding some clusters, and optionally a Globalization
// (replicas, every cluster) and a Localization (the ConfigMap's value, one
// cluster).
type app struct {
	name     string
	exists   bool // the Subscription exists
	clusters map[int]bool
	replicas int32
	value    string
	glob     *int32
	loc      *locOverride
	dirty    bool // the last write did not go through: written again before anything else
	pairs    []*pair
}

type locOverride struct {
	cluster int
	value   string
}

func newApp(name string, children int) *app {
	a := &app{name: name, clusters: map[int]bool{}, replicas: 1, value: "v0"}
	for range children {
		a.pairs = append(a.pairs, &pair{state: sealed, sealed: map[objKey]sealedObj{}, oldDescs: map[types.UID]bool{}, epochDescs: map[types.UID]bool{}})
	}
	return a
}

func (a *app) bound(i int) bool { return a.exists && a.clusters[i] }

func (a *app) wantValue(i int) string {
	if a.loc != nil && a.loc.cluster == i {
		return a.loc.value
	}
	return a.value
}

func (a *app) wantReplicas() int32 {
	if a.glob != nil {
		return *a.glob
	}
	return a.replicas
}

const helmChartName = "chaoschart"

func helmVersion(i int) string { return fmt.Sprintf("1.0.%d", i%helmVersions) }

// helmApp is the Helm application: HelmChart default/chaoschart, bound to
// every cluster by Subscription default/chaos-helm, upgraded version by version.
type helmApp struct {
	version int
	dirty   bool
}

const helmSub = "chaos-helm"

var (
	shadowConfigMaps  = schema.GroupVersionResource{Group: "shadow", Version: "v1alpha1", Resource: "configmaps"}
	shadowDeployments = schema.GroupVersionResource{Group: "shadow", Version: "v1alpha1", Resource: "deployments"}
)

// --- writing the model to the parent ---

// upsert creates obj through r, or replaces the existing one.
func upsert(ctx context.Context, get func() (*unstructured.Unstructured, error), create, update func(*unstructured.Unstructured) error, obj *unstructured.Unstructured) error {
	live, err := get()
	if apierrors.IsNotFound(err) {
		return create(obj)
	}
	if err != nil {
		return err
	}
	obj.SetResourceVersion(live.GetResourceVersion())
	return update(obj)
}

func (w *world) writeTemplates(ctx context.Context, a *app) error {
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": a.name + "-config", "namespace": appNamespace},
		"data":     map[string]any{"value": a.value},
	}}
	deploy := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": a.name, "namespace": appNamespace},
		"spec": map[string]any{
			"replicas": int64(a.replicas),
			"selector": map[string]any{"matchLabels": map[string]any{"app": a.name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": a.name}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "registry.invalid/chaos:1"}}},
			},
		},
	}}
	for _, o := range []struct {
		gvr schema.GroupVersionResource
		obj *unstructured.Unstructured
	}{{shadowConfigMaps, cm}, {shadowDeployments, deploy}} {
		r := w.dyn.Resource(o.gvr).Namespace(appNamespace)
		err := upsert(ctx, func() (*unstructured.Unstructured, error) { return r.Get(ctx, o.obj.GetName(), metav1.GetOptions{}) },
			func(u *unstructured.Unstructured) error {
				_, err := r.Create(ctx, u, metav1.CreateOptions{})
				return err
			},
			func(u *unstructured.Unstructured) error {
				_, err := r.Update(ctx, u, metav1.UpdateOptions{})
				return err
			}, o.obj)
		if err != nil {
			return fmt.Errorf("template %s %s: %w", o.obj.GetKind(), o.obj.GetName(), err)
		}
	}
	return nil
}

func (w *world) writeOverrides(ctx context.Context, a *app, loc *locOverride, glob *int32) error {
	globs := w.cs.AppsV1alpha1().Globalizations()
	if glob == nil {
		if err := globs.Delete(ctx, a.name+"-glob", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	} else {
		patch := fmt.Sprintf(`[{"op":"replace","path":"/spec/replicas","value":%d}]`, *glob)
		g := &appsv1alpha1.Globalization{ObjectMeta: metav1.ObjectMeta{Name: a.name + "-glob"}}
		g.Spec.Priority = ptr.To[int32](900)
		g.Spec.OverridePolicy = appsv1alpha1.ApplyNow
		g.Spec.Feed = appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: appNamespace, Name: a.name}
		g.Spec.Overrides = []appsv1alpha1.OverrideConfig{{Name: "replicas", Type: appsv1alpha1.JSONPatchType, Value: patch}}
		live, err := globs.Get(ctx, g.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = globs.Create(ctx, g, metav1.CreateOptions{})
		case err == nil:
			live.Spec = g.Spec
			_, err = globs.Update(ctx, live, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("globalization %s: %w", g.Name, err)
		}
	}
	for i, c := range w.children {
		locs := w.cs.AppsV1alpha1().Localizations(c.Namespace)
		if loc == nil || loc.cluster != i {
			if err := locs.Delete(ctx, a.name+"-loc", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			continue
		}
		patch := fmt.Sprintf(`[{"op":"replace","path":"/data/value","value":%q}]`, loc.value)
		l := &appsv1alpha1.Localization{ObjectMeta: metav1.ObjectMeta{Name: a.name + "-loc", Namespace: c.Namespace}}
		l.Spec.Priority = ptr.To[int32](600)
		l.Spec.OverridePolicy = appsv1alpha1.ApplyNow
		l.Spec.Feed = appsv1alpha1.Feed{APIVersion: "v1", Kind: "ConfigMap", Namespace: appNamespace, Name: a.name + "-config"}
		l.Spec.Overrides = []appsv1alpha1.OverrideConfig{{Name: "value", Type: appsv1alpha1.JSONPatchType, Value: patch}}
		live, err := locs.Get(ctx, l.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = locs.Create(ctx, l, metav1.CreateOptions{})
		case err == nil:
			live.Spec = l.Spec
			_, err = locs.Update(ctx, live, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("localization %s/%s: %w", l.Namespace, l.Name, err)
		}
	}
	return nil
}

func (w *world) subscribers(clusters map[int]bool) []appsv1alpha1.Subscriber {
	var out []appsv1alpha1.Subscriber
	for i, c := range w.children {
		if clusters[i] {
			out = append(out, appsv1alpha1.Subscriber{ClusterAffinity: &metav1.LabelSelector{MatchLabels: map[string]string{clusterv1beta1.LabelClusterID: c.ID}}})
		}
	}
	return out
}

func (w *world) writeSubscription(ctx context.Context, name string, exists bool, subscribers []appsv1alpha1.Subscriber, feeds []appsv1alpha1.Feed) error {
	subs := w.cs.AppsV1alpha1().Subscriptions("default")
	if !exists {
		err := subs.Delete(ctx, name, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	live, err := subs.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s := &appsv1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
		s.Spec.Subscribers, s.Spec.Feeds = subscribers, feeds
		_, err = subs.Create(ctx, s, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if live.DeletionTimestamp != nil {
		return fmt.Errorf("subscription %s is still being deleted", name)
	}
	live.Spec.Subscribers, live.Spec.Feeds = subscribers, feeds
	_, err = subs.Update(ctx, live, metav1.UpdateOptions{})
	return err
}

func appFeeds(a *app) []appsv1alpha1.Feed {
	return []appsv1alpha1.Feed{
		{APIVersion: "v1", Kind: "ConfigMap", Namespace: appNamespace, Name: a.name + "-config"},
		{APIVersion: "apps/v1", Kind: "Deployment", Namespace: appNamespace, Name: a.name},
	}
}

// ensure writes an application's model to the parent in full: templates,
// overrides, Subscription. Pairs leaving the binding are marked unbound
// before the write, pairs joining it bound after it went through.
func (w *world) ensure(ctx context.Context, a *app, timeout time.Duration) error {
	w.mu.Lock()
	snapshot := *a
	clusters := map[int]bool{}
	for i := range a.clusters {
		if a.bound(i) {
			clusters[i] = true
		}
	}
	for i, p := range a.pairs {
		switch {
		case !clusters[i] && (p.state == bound || p.state == binding):
			w.unbindLocked(p)
		case clusters[i] && (p.state == draining || p.state == sealed):
			p.state = binding
		}
	}
	a.dirty = true
	w.mu.Unlock()

	err := w.retry(ctx, timeout, func(ctx context.Context) error {
		if err := w.writeTemplates(ctx, &snapshot); err != nil {
			return err
		}
		if err := w.writeOverrides(ctx, &snapshot, snapshot.loc, snapshot.glob); err != nil {
			return err
		}
		return w.writeSubscription(ctx, a.name, snapshot.exists, w.subscribers(clusters), appFeeds(&snapshot))
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.stats.writeFailures++
		return err
	}
	a.dirty = false
	w.seq++
	for i, p := range a.pairs {
		switch {
		case clusters[i] && p.state == binding:
			p.state, p.armed, p.boundSeq, p.boundAt = bound, false, w.seq, time.Now()
		case !clusters[i] && p.state == draining && p.unbindSeq == 0:
			p.unbindSeq = w.seq
		}
	}
	return nil
}

// unbindLocked starts a new unbound epoch of p.
func (w *world) unbindLocked(p *pair) {
	p.state, p.armed, p.uids, p.unbindSeq = draining, false, nil, 0
	for u := range p.epochDescs {
		p.oldDescs[u] = true
	}
	p.epochDescs = map[types.UID]bool{}
}

func (w *world) ensureHelm(ctx context.Context, timeout time.Duration) error {
	w.mu.Lock()
	version := helmVersion(w.helm.version)
	w.helm.dirty = true
	w.mu.Unlock()
	err := w.retry(ctx, timeout, func(ctx context.Context) error {
		charts := w.cs.AppsV1alpha1().HelmCharts("default")
		hc := &appsv1alpha1.HelmChart{ObjectMeta: metav1.ObjectMeta{Name: helmChartName, Namespace: "default"}}
		hc.Spec.Repository, hc.Spec.Chart, hc.Spec.ChartVersion, hc.Spec.TargetNamespace = w.repo.URL, helmChartName, version, appNamespace
		live, err := charts.Get(ctx, hc.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = charts.Create(ctx, hc, metav1.CreateOptions{})
		case err == nil:
			live.Spec = hc.Spec
			_, err = charts.Update(ctx, live, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("helmchart: %w", err)
		}
		all := map[int]bool{}
		for i := range w.children {
			all[i] = true
		}
		return w.writeSubscription(ctx, helmSub, true, w.subscribers(all),
			[]appsv1alpha1.Feed{{APIVersion: "apps.clusternet.io/v1alpha1", Kind: "HelmChart", Namespace: "default", Name: helmChartName}})
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.stats.writeFailures++
		return err
	}
	w.helm.dirty = false
	return nil
}

// --- the rollout driver ---

type op struct {
	name   string
	weight int
}

var ops = []op{
	{"update", 3}, {"scale", 3}, {"rebind", 2}, {"globalize", 1}, {"localize", 1}, {"delete", 1}, {"helm-upgrade", 1},
}

// drive runs rollouts until ctx ends: one operation at a time, each written
// in full (retried while faults make the parent or the hub unreachable).
func (w *world) drive(ctx context.Context, rng *rand.Rand) {
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	for ctx.Err() == nil {
		w.opLock.Lock()
		if err := w.flushDirty(ctx, 30*time.Second); err != nil {
			w.record("rollout: writing again what a fault refused: %v", err)
		}
		a := w.apps[rng.IntN(len(w.apps))]
		var what string
		if !a.exists {
			what = "create"
		} else {
			n := rng.IntN(total)
			for _, o := range ops {
				if n -= o.weight; n < 0 {
					what = o.name
					break
				}
			}
		}
		var err error
		if what == "helm-upgrade" {
			w.mu.Lock()
			w.helm.version++
			v := helmVersion(w.helm.version)
			w.mu.Unlock()
			err = w.ensureHelm(ctx, 30*time.Second)
			w.record("rollout: helm upgrade to %s: %v", v, errOrOK(err))
		} else {
			w.mu.Lock()
			desc := w.mutate(rng, a, what)
			w.mu.Unlock()
			err = w.ensure(ctx, a, 30*time.Second)
			w.record("rollout: %s %s: %s: %v", what, a.name, desc, errOrOK(err))
		}
		w.mu.Lock()
		w.stats.rollouts[what]++
		w.mu.Unlock()
		w.opLock.Unlock()
		// Pacing, not synchronization: rollouts arrive every 0.2–2 s.
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(200+rng.IntN(1800)) * time.Millisecond):
		}
	}
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return "FAILED (retried later): " + err.Error()
}

// mutate changes a's model as operation what says, and describes it.
func (w *world) mutate(rng *rand.Rand, a *app, what string) string {
	switch what {
	case "create":
		a.exists, a.clusters = true, pick(rng, len(w.children))
		a.replicas, a.value = int32(rng.IntN(3)+1), fmt.Sprintf("v%d", rng.IntN(1000))
		return fmt.Sprintf("clusters %v replicas %d value %s", keys(a.clusters), a.replicas, a.value)
	case "update":
		a.value = fmt.Sprintf("v%d", rng.IntN(1000))
		return "value " + a.value
	case "scale":
		a.replicas = int32(rng.IntN(4))
		return fmt.Sprintf("replicas %d", a.replicas)
	case "rebind":
		a.clusters = pick(rng, len(w.children))
		return fmt.Sprintf("clusters %v", keys(a.clusters))
	case "globalize":
		if a.glob != nil && rng.IntN(2) == 0 {
			a.glob = nil
			return "globalization removed"
		}
		a.glob = ptr.To(int32(rng.IntN(3) + 1))
		return fmt.Sprintf("globalization replicas %d", *a.glob)
	case "localize":
		if a.loc != nil && rng.IntN(2) == 0 {
			a.loc = nil
			return "localization removed"
		}
		a.loc = &locOverride{cluster: rng.IntN(len(w.children)), value: fmt.Sprintf("loc%d", rng.IntN(1000))}
		return fmt.Sprintf("localization in cluster %d value %s", a.loc.cluster, a.loc.value)
	case "delete":
		a.exists, a.glob, a.loc = false, nil, nil
		return "subscription deleted"
	}
	return ""
}

func keys(m map[int]bool) []int {
	return sortedKeys(m, func(a, b int) int { return a - b })
}

// flushDirty writes again every application whose last write failed.
func (w *world) flushDirty(ctx context.Context, timeout time.Duration) error {
	var errs []error
	for _, a := range w.apps {
		w.mu.Lock()
		dirty := a.dirty
		w.mu.Unlock()
		if dirty {
			if err := w.ensure(ctx, a, timeout); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", a.name, err))
			}
		}
	}
	w.mu.Lock()
	dirty := w.helm.dirty
	w.mu.Unlock()
	if dirty {
		if err := w.ensureHelm(ctx, timeout); err != nil {
			errs = append(errs, fmt.Errorf("helm: %w", err))
		}
	}
	return errors.Join(errs...)
}

func decodeBase64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.TrimSpace(s))
}
