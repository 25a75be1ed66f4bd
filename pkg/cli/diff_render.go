package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
	"github.com/clusternet/clusternet/pkg/apps/render"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
)

// fileOverlay is a render.Reader that reads the objects of a file first and
// the parent's for the rest: what the hub would render once the file is
// applied.
type fileOverlay struct {
	manifests map[string]*appsv1alpha1.Manifest
	charts    map[string]*appsv1alpha1.HelmChart
	parent    render.Reader
}

// newFileOverlay lays objs (a file's objects) over parent: HelmCharts by
// namespace and name, every ordinary kind as the Manifest the shadow API
// would store it in. Clusternet's other kinds are not templates.
func newFileOverlay(objs []*unstructured.Unstructured, parent render.Reader) (*fileOverlay, error) {
	o := &fileOverlay{manifests: map[string]*appsv1alpha1.Manifest{}, charts: map[string]*appsv1alpha1.HelmChart{}, parent: parent}
	for _, obj := range objs {
		gvk := obj.GroupVersionKind()
		switch {
		case gvk.Group == appsv1alpha1.GroupName && gvk.Kind == "HelmChart":
			ch := &appsv1alpha1.HelmChart{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, ch); err != nil {
				return nil, fmt.Errorf("HelmChart %s/%s in the file: %w", obj.GetNamespace(), obj.GetName(), err)
			}
			o.charts[obj.GetNamespace()+"/"+obj.GetName()] = ch
		case isClusternetGroup(gvk.Group):
			continue
		default:
			raw, err := json.Marshal(obj.Object)
			if err != nil {
				return nil, err
			}
			name := appsv1alpha1.ManifestName(gvk.Group, gvk.Kind, obj.GetNamespace(), obj.GetName())
			o.manifests[name] = &appsv1alpha1.Manifest{
				ObjectMeta: metav1.ObjectMeta{Namespace: appsv1alpha1.ReservedNamespace, Name: name},
				Template:   runtime.RawExtension{Raw: raw},
			}
		}
	}
	return o, nil
}

// isClusternetGroup says whether group is one of Clusternet's own API
// groups (*.clusternet.io), whose objects are not templates.
func isClusternetGroup(group string) bool {
	return group == "clusternet.io" || strings.HasSuffix(group, ".clusternet.io")
}

func (o *fileOverlay) Manifest(name string) (*appsv1alpha1.Manifest, error) {
	if m, ok := o.manifests[name]; ok {
		return m, nil
	}
	return o.parent.Manifest(name)
}

func (o *fileOverlay) HelmChart(namespace, name string) (*appsv1alpha1.HelmChart, error) {
	if ch, ok := o.charts[namespace+"/"+name]; ok {
		return ch, nil
	}
	return o.parent.HelmChart(namespace, name)
}

// fileTemplates are the templates among objs (for finding the
// Subscriptions that feed them).
func fileTemplates(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, obj := range objs {
		if !isClusternetGroup(obj.GroupVersionKind().Group) || obj.GetKind() == "HelmChart" {
			out = append(out, obj)
		}
	}
	return out
}

// parentReader reads Manifests and HelmCharts from the parent.
type parentReader struct {
	ctx    context.Context
	client versioned.Interface
}

func (r parentReader) Manifest(name string) (*appsv1alpha1.Manifest, error) {
	return r.client.AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace).Get(r.ctx, name, metav1.GetOptions{})
}

func (r parentReader) HelmChart(namespace, name string) (*appsv1alpha1.HelmChart, error) {
	return r.client.AppsV1alpha1().HelmCharts(namespace).Get(r.ctx, name, metav1.GetOptions{})
}

// overridesOf reads the Globalizations, the Localizations of c's dedicated
// namespace and c's ManagedCluster, ordered as the hub applies them
// (render.Overrides).
func overridesOf(ctx context.Context, client versioned.Interface, c clusterProgress) ([]render.Override, error) {
	globs, err := client.AppsV1alpha1().Globalizations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, explainRead("list", "globalizations", "", c.Name, err)
	}
	locs, err := client.AppsV1alpha1().Localizations(c.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, explainRead("list", "localizations", c.Namespace, c.Name, err)
	}
	mcls, err := client.ClustersV1beta1().ManagedClusters(c.Namespace).Get(ctx, c.Name, metav1.GetOptions{})
	if err != nil {
		return nil, explainRead("get", "managedclusters", c.Namespace, c.Name, err)
	}
	out, _ := render.Overrides(pointers(globs.Items), pointers(locs.Items), mcls)
	return out, nil
}

// genericDescription is the Generic Description the hub would render for
// c's Base from r, or nil when the Base has no template feed. hasCharts
// says whether it also has HelmChart feeds (not diffed).
func genericDescription(ctx context.Context, client versioned.Interface, sub *appsv1alpha1.Subscription, c clusterProgress, r render.Reader) (desc *appsv1alpha1.Description, hasCharts bool, err error) {
	// Only the template feeds are read: a HelmChart is not diffed, so one
	// its repository has not answered for yet must not stop the diff of
	// the templates beside it.
	base := c.Base.DeepCopy()
	base.Spec.Feeds = nil
	for _, f := range c.Base.Spec.Feeds {
		if feeds.IsChart(f) {
			hasCharts = true
			continue
		}
		base.Spec.Feeds = append(base.Spec.Feeds, f)
	}
	if len(base.Spec.Feeds) == 0 {
		return nil, hasCharts, nil
	}
	overrides, err := overridesOf(ctx, client, c)
	if err != nil {
		return nil, hasCharts, err
	}
	in, err := render.InputOf(base, sub.UID, r, overrides)
	if err != nil {
		return nil, hasCharts, err
	}
	rendered, err := render.Generic(in)
	if err != nil || rendered == nil {
		return nil, hasCharts, err
	}
	return &appsv1alpha1.Description{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: c.Namespace,
			Name:      c.Base.Name + appsv1alpha1.DescriptionGenericSuffix,
			Labels: map[string]string{
				appsv1alpha1.LabelSubscriptionName:      sub.Name,
				appsv1alpha1.LabelSubscriptionNamespace: sub.Namespace,
			},
		},
		Spec: rendered.Spec,
	}, hasCharts, nil
}
