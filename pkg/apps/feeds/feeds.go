// Package feeds resolves a Subscription's feeds to the objects they name:
// templates the shadow API stored as Manifests, and the parent's own
// HelmCharts. It says, per feed, what is wrong and how to fix it.
package feeds

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// Reasons a feed does not resolve; they are the Subscription's FeedsResolved
// condition reasons.
const (
	// ReasonKindNotServed: the parent serves no such apiVersion and kind.
	ReasonKindNotServed = "FeedKindNotServed"
	// ReasonKindNotAllowed: Clusternet's own kinds (other than HelmChart) are not feeds.
	ReasonKindNotAllowed = "FeedKindNotAllowed"
	// ReasonNamespaceInvalid: a namespace on a cluster-scoped kind, or none on a namespaced one.
	ReasonNamespaceInvalid = "FeedNamespaceInvalid"
	// ReasonSelectorInvalid: the feedSelector does not parse.
	ReasonSelectorInvalid = "FeedSelectorInvalid"
	// ReasonNotFound: no template (or HelmChart) by that name, or none the selector matches.
	ReasonNotFound = "FeedNotFound"
	// ReasonChartNotFound: the HelmChart says its chart or version is not in the repository.
	ReasonChartNotFound = "HelmChartNotFound"
	// ReasonChartNotResolved: the hub has not looked the HelmChart up yet.
	ReasonChartNotResolved = "HelmChartNotResolved"
)

// HelmChartGroup and HelmChartKind identify HelmChart feeds, read from the
// parent's real HelmCharts rather than from templates.
const (
	HelmChartGroup = appsv1alpha1.GroupName
	HelmChartKind  = "HelmChart"
)

// Error is one feed that does not resolve.
type Error struct {
	// Index is the feed's position in spec.feeds.
	Index   int
	Reason  string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("spec.feeds[%d]: %s", e.Index, e.Message) }

// Source reads what feeds name. Implementations read informer caches.
type Source interface {
	// Manifest is the Manifest named name in the reserved namespace.
	Manifest(name string) (*appsv1alpha1.Manifest, error)
	// Manifests are the Manifests holding templates of group and kind.
	Manifests(group, kind string) ([]*appsv1alpha1.Manifest, error)
	// HelmChart is one HelmChart; HelmCharts those in namespace ("" for all).
	HelmChart(namespace, name string) (*appsv1alpha1.HelmChart, error)
	HelmCharts(namespace string) ([]*appsv1alpha1.HelmChart, error)
}

// Resolved is one feed resolved to one object.
type Resolved struct {
	// Feed is named (no selector) and carries the apiVersion the
	// Subscription wrote, the kind as the parent spells it.
	Feed appsv1alpha1.Feed
	// Index is the position in spec.feeds of the feed it came from.
	Index int
	// Template is the stripped template (nil for HelmCharts).
	Template *unstructured.Unstructured
	// Chart is the HelmChart of a HelmChart feed.
	Chart *appsv1alpha1.HelmChart
}

// IsChart says whether f is a HelmChart feed.
func IsChart(f appsv1alpha1.Feed) bool {
	return Group(f.APIVersion) == HelmChartGroup && f.Kind == HelmChartKind
}

// Group is the API group of apiVersion ("" for the core group).
func Group(apiVersion string) string {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return apiVersion
	}
	return gv.Group
}

// Key names a resolved feed in status.replicas, FeedInventory order and
// Base annotations: <apiVersion>/<kind>/<namespace>/<name>, without the
// namespace for cluster-scoped kinds.
func Key(f appsv1alpha1.Feed) string {
	if f.Namespace == "" {
		return f.APIVersion + "/" + f.Kind + "/" + f.Name
	}
	return f.APIVersion + "/" + f.Kind + "/" + f.Namespace + "/" + f.Name
}

// ObjectKey names the object a feed selects whatever version it is written
// in: <group>/<kind>/<namespace>/<name>. Indexes use it.
func ObjectKey(group, kind, namespace, name string) string {
	return group + "/" + kind + "/" + namespace + "/" + name
}

// KindKey is <group>/<kind>, for indexes of feeds by kind.
func KindKey(group, kind string) string { return group + "/" + kind }

// Describe names a feed for messages: `apps/v1 Deployment "foo/my-nginx"`.
func Describe(f appsv1alpha1.Feed) string {
	name := f.Name
	if f.Namespace != "" {
		name = f.Namespace + "/" + f.Name
	}
	return fmt.Sprintf("%s %s %q", f.APIVersion, f.Kind, name)
}

// Resolve resolves feeds in order. Selectors expand to every matching object,
// sorted by namespace and name; an object named twice appears once, where
// first named. It returns every feed that does not resolve, not only the first.
func Resolve(feeds []appsv1alpha1.Feed, src Source, mapper meta.RESTMapper) ([]Resolved, []*Error) {
	var out []Resolved
	var errs []*Error
	seen := map[string]bool{}
	add := func(r Resolved) {
		k := ObjectKey(Group(r.Feed.APIVersion), r.Feed.Kind, r.Feed.Namespace, r.Feed.Name)
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	for i, f := range feeds {
		rs, err := resolveOne(i, f, src, mapper)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range rs {
			add(r)
		}
	}
	return out, errs
}

func resolveOne(i int, f appsv1alpha1.Feed, src Source, mapper meta.RESTMapper) ([]Resolved, *Error) {
	fail := func(reason, format string, args ...any) *Error {
		return &Error{Index: i, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	gv, err := schema.ParseGroupVersion(f.APIVersion)
	if err != nil {
		return nil, fail(ReasonKindNotServed, "apiVersion %q does not parse: %v: write it as <group>/<version>, or v1 for the core group", f.APIVersion, err)
	}
	if f.Name != "" && f.FeedSelector != nil {
		return nil, fail(ReasonSelectorInvalid, "sets both name and feedSelector: keep one")
	}
	if f.Name == "" && f.FeedSelector == nil {
		return nil, fail(ReasonSelectorInvalid, "sets neither name nor feedSelector: set one")
	}
	var sel labels.Selector
	if f.FeedSelector != nil {
		if sel, err = metav1.LabelSelectorAsSelector(f.FeedSelector); err != nil {
			return nil, fail(ReasonSelectorInvalid, "feedSelector: %v: fix the selector", err)
		}
	}
	if gv.Group == HelmChartGroup {
		if f.Kind != HelmChartKind {
			return nil, fail(ReasonKindNotAllowed, "kind %q of %s is Clusternet's own: of its kinds, only HelmChart can be a feed", f.Kind, f.APIVersion)
		}
		return resolveCharts(i, f, sel, src)
	}
	if strings.HasSuffix(gv.Group, "clusternet.io") || gv.Group == "shadow" {
		return nil, fail(ReasonKindNotAllowed, "%s %s is Clusternet's own kind: it cannot be a feed", f.APIVersion, f.Kind)
	}
	mapping, err := mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: f.Kind}, gv.Version)
	if err != nil {
		if !meta.IsNoMatchError(err) {
			return nil, fail(ReasonKindNotServed, "looking up %s %s in the parent: %v", f.APIVersion, f.Kind, err)
		}
		return nil, fail(ReasonKindNotServed, "%s", notServed(f, gv, mapper, i))
	}
	kind := mapping.GroupVersionKind.Kind
	namespaced := mapping.Scope.Name() == meta.RESTScopeNameNamespace
	if f.Name != "" {
		switch {
		case namespaced && f.Namespace == "":
			return nil, fail(ReasonNamespaceInvalid, "%s %s is namespaced: set spec.feeds[%d].namespace to the namespace of %q", f.APIVersion, kind, i, f.Name)
		case !namespaced && f.Namespace != "":
			return nil, fail(ReasonNamespaceInvalid, "%s %s is cluster-scoped: remove spec.feeds[%d].namespace (%q)", f.APIVersion, kind, i, f.Namespace)
		}
		named := f
		named.Kind = kind
		m, err := src.Manifest(appsv1alpha1.ManifestName(gv.Group, kind, f.Namespace, f.Name))
		if apierrors.IsNotFound(err) {
			return nil, fail(ReasonNotFound, "%s has no template: create it with `kubectl clusternet apply -f <file>` (templates live in the shadow API), or fix the feed", Describe(named))
		}
		if err != nil {
			return nil, fail(ReasonNotFound, "reading the template of %s: %v", Describe(named), err)
		}
		tmpl, err := Template(m)
		if err != nil {
			return nil, fail(ReasonNotFound, "the template of %s in Manifest %s/%s: %v: apply it again", Describe(named), m.Namespace, m.Name, err)
		}
		// A Manifest is trusted only for the template it says it holds (a
		// Manifest written by hand under another template's name is not it).
		if !holds(tmpl, gv.Group, kind, f.Namespace, f.Name) {
			return nil, fail(ReasonNotFound, "%s has no template: Manifest %s/%s holds %s %s/%s instead: apply the template again with `kubectl clusternet apply`",
				Describe(named), m.Namespace, m.Name, tmpl.GetKind(), tmpl.GetNamespace(), tmpl.GetName())
		}
		return []Resolved{{Feed: named, Index: i, Template: tmpl}}, nil
	}
	if !namespaced && f.Namespace != "" {
		return nil, fail(ReasonNamespaceInvalid, "%s %s is cluster-scoped: remove spec.feeds[%d].namespace (%q)", f.APIVersion, kind, i, f.Namespace)
	}
	ms, err := src.Manifests(gv.Group, kind)
	if err != nil {
		return nil, fail(ReasonNotFound, "listing templates of %s %s: %v", f.APIVersion, kind, err)
	}
	var out []Resolved
	for _, m := range ms {
		tmpl, err := Template(m)
		if err != nil || !holds(tmpl, gv.Group, kind, tmpl.GetNamespace(), tmpl.GetName()) {
			continue // not readable, or not of this kind: it cannot match
		}
		if f.Namespace != "" && tmpl.GetNamespace() != f.Namespace {
			continue
		}
		if !sel.Matches(labels.Set(tmpl.GetLabels())) {
			continue
		}
		out = append(out, Resolved{Feed: appsv1alpha1.Feed{APIVersion: f.APIVersion, Kind: kind, Namespace: tmpl.GetNamespace(), Name: tmpl.GetName()}, Index: i, Template: tmpl})
	}
	if len(out) == 0 {
		where := "any namespace"
		if f.Namespace != "" {
			where = "namespace " + f.Namespace
		}
		return nil, fail(ReasonNotFound, "feedSelector %q matches no template of %s %s in %s: label a template to match, or fix the selector", sel.String(), f.APIVersion, kind, where)
	}
	slices.SortFunc(out, func(a, b Resolved) int {
		return cmp.Or(cmp.Compare(a.Feed.Namespace, b.Feed.Namespace), cmp.Compare(a.Feed.Name, b.Feed.Name))
	})
	return out, nil
}

// TemplateOf is the template Manifest m holds for feed f, or an error when m
// holds another object: Manifest names carry a short hash, so a name alone
// does not prove which template a Manifest is (another user may have made a
// template whose Manifest name collides), and rendering must not ship it.
func TemplateOf(m *appsv1alpha1.Manifest, f appsv1alpha1.Feed) (*unstructured.Unstructured, error) {
	tmpl, err := Template(m)
	if err != nil {
		return nil, err
	}
	if !holds(tmpl, Group(f.APIVersion), f.Kind, f.Namespace, f.Name) {
		return nil, fmt.Errorf("Manifest %s/%s holds %s %s/%s, not the template of %s: apply the template again with `kubectl clusternet apply`",
			m.Namespace, m.Name, tmpl.GetKind(), tmpl.GetNamespace(), tmpl.GetName(), Describe(f))
	}
	return tmpl, nil
}

// holds says whether tmpl is the object of group and kind named namespace/name.
func holds(tmpl *unstructured.Unstructured, group, kind, namespace, name string) bool {
	gvk := tmpl.GroupVersionKind()
	return gvk.Group == group && gvk.Kind == kind && tmpl.GetNamespace() == namespace && tmpl.GetName() == name
}

// notServed explains a kind the parent does not serve and suggests the
// apiVersion (or spelling) that it does serve.
func notServed(f appsv1alpha1.Feed, gv schema.GroupVersion, mapper meta.RESTMapper, i int) string {
	msg := fmt.Sprintf("the parent does not serve kind %q in apiVersion %q", f.Kind, f.APIVersion)
	// Same group and kind in another version?
	if m, err := mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: f.Kind}); err == nil {
		v := m.GroupVersionKind.GroupVersion().String()
		return fmt.Sprintf("%s: %s is served as apiVersion %q: set spec.feeds[%d].apiVersion to %q", msg, f.Kind, v, i, v)
	}
	// The kind elsewhere, or spelled another way?
	gvks, err := mapper.KindsFor(schema.GroupVersionResource{Resource: strings.ToLower(f.Kind)})
	if err == nil && len(gvks) > 0 {
		got := gvks[0]
		v := got.GroupVersion().String()
		if got.Kind != f.Kind && got.Group == gv.Group {
			return fmt.Sprintf("%s: it is spelled %q: set spec.feeds[%d].kind to %q", msg, got.Kind, i, got.Kind)
		}
		fix := fmt.Sprintf("set spec.feeds[%d].apiVersion to %q", i, v)
		if got.Kind != f.Kind {
			fix += fmt.Sprintf(" and kind to %q", got.Kind)
		}
		return fmt.Sprintf("%s: %s is served as apiVersion %q: %s", msg, got.Kind, v, fix)
	}
	return msg + ": check the kind and apiVersion (`kubectl api-resources`), or install the CRD that serves it"
}

func resolveCharts(i int, f appsv1alpha1.Feed, sel labels.Selector, src Source) ([]Resolved, *Error) {
	fail := func(reason, format string, args ...any) *Error {
		return &Error{Index: i, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	var charts []*appsv1alpha1.HelmChart
	if f.Name != "" {
		if f.Namespace == "" {
			return nil, fail(ReasonNamespaceInvalid, "HelmChart is namespaced: set spec.feeds[%d].namespace to the namespace of HelmChart %q", i, f.Name)
		}
		c, err := src.HelmChart(f.Namespace, f.Name)
		if apierrors.IsNotFound(err) {
			return nil, fail(ReasonNotFound, "HelmChart %s/%s does not exist: create it (kubectl apply -f <helmchart.yaml>), or fix the feed", f.Namespace, f.Name)
		}
		if err != nil {
			return nil, fail(ReasonNotFound, "reading HelmChart %s/%s: %v", f.Namespace, f.Name, err)
		}
		charts = []*appsv1alpha1.HelmChart{c}
	} else {
		all, err := src.HelmCharts(f.Namespace)
		if err != nil {
			return nil, fail(ReasonNotFound, "listing HelmCharts: %v", err)
		}
		for _, c := range all {
			if sel.Matches(labels.Set(c.Labels)) {
				charts = append(charts, c)
			}
		}
		if len(charts) == 0 {
			return nil, fail(ReasonNotFound, "feedSelector %q matches no HelmChart: label one to match, or fix the selector", sel.String())
		}
		slices.SortFunc(charts, func(a, b *appsv1alpha1.HelmChart) int {
			return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
		})
	}
	out := make([]Resolved, 0, len(charts))
	for _, c := range charts {
		if reason, msg := ChartProblem(c); reason != "" {
			return nil, fail(reason, "%s", msg)
		}
		out = append(out, Resolved{Feed: appsv1alpha1.Feed{APIVersion: f.APIVersion, Kind: HelmChartKind, Namespace: c.Namespace, Name: c.Name}, Index: i, Chart: c})
	}
	return out, nil
}

// ChartProblem says why chart cannot be rendered as it is now (reason
// ReasonChartNotFound or ReasonChartNotResolved, with a message naming the
// fix), or nothing when its repository has it. The phase counts only for
// the generation it was found for: an edited HelmChart is not resolved
// until the hub has looked its new spec up.
func ChartProblem(c *appsv1alpha1.HelmChart) (reason, message string) {
	switch {
	case c.Status.ObservedGeneration != c.Generation:
		return ReasonChartNotResolved, fmt.Sprintf("HelmChart %s/%s has not been looked up in its repository since it last changed (status.observedGeneration %d, generation %d): waiting for it",
			c.Namespace, c.Name, c.Status.ObservedGeneration, c.Generation)
	case c.Status.Phase == appsv1alpha1.HelmChartFound:
		return "", ""
	case c.Status.Phase == appsv1alpha1.HelmChartNotFound:
		why := c.Status.Reason
		if why == "" {
			why = "the chart or its version is not in the repository"
		}
		return ReasonChartNotFound, fmt.Sprintf("HelmChart %s/%s: %s: fix spec.chart, spec.version or spec.repo of the HelmChart", c.Namespace, c.Name, why)
	default:
		return ReasonChartNotResolved, fmt.Sprintf("HelmChart %s/%s has not been looked up in its repository yet (status.phase is empty): waiting for it", c.Namespace, c.Name)
	}
}

// Template is a Manifest's template, stripped of what the parent's API
// server added to it.
func Template(m *appsv1alpha1.Manifest) (*unstructured.Unstructured, error) {
	if len(m.Template.Raw) == 0 {
		return nil, errors.New("the template is empty")
	}
	obj := &unstructured.Unstructured{}
	if err := utiljson.Unmarshal(m.Template.Raw, &obj.Object); err != nil {
		return nil, fmt.Errorf("the template is not a JSON object: %w", err)
	}
	if obj.Object == nil {
		return nil, errors.New("the template is not a JSON object")
	}
	Strip(obj)
	return obj, nil
}

// Strip removes what a parent's API server writes into an object and what
// must not reach a child: identity and bookkeeping of the parent's copy,
// and status.
func Strip(obj *unstructured.Unstructured) {
	for _, f := range []string{"uid", "resourceVersion", "creationTimestamp", "managedFields", "generation",
		"selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences"} {
		unstructured.RemoveNestedField(obj.Object, "metadata", f)
	}
	if ann := obj.GetAnnotations(); ann != nil {
		delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
		if len(ann) == 0 {
			unstructured.RemoveNestedField(obj.Object, "metadata", "annotations")
		} else {
			obj.SetAnnotations(ann)
		}
	}
	if ls := obj.GetLabels(); ls != nil && len(ls) == 0 {
		unstructured.RemoveNestedField(obj.Object, "metadata", "labels")
	}
	delete(obj.Object, "status")
}
