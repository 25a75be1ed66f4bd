package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/apps/render"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
)

// annotationSubscriptionGeneration is the generation of the Subscription a
// Base was last written from (docs/distribution.md, "Bases"), as the hub's
// rendering (pkg/apps/render, which the plugin links too) names it.
const annotationSubscriptionGeneration = render.AnnotationSubscriptionGeneration

// renderedCluster is what one bound cluster gets, as its Descriptions say.
type renderedCluster struct {
	cluster clusterProgress
	// stale says why the documents may not be those of the Subscription's
	// current generation; empty when they are.
	stale string
	docs  []renderedDoc
}

// renderedDoc is one object a cluster gets; values are the Helm values of
// a HelmRelease, shown readable beside its spec.overrides.
type renderedDoc struct {
	obj    *unstructured.Unstructured
	values []byte
}

// renderCluster reads the objects of cluster c from its Descriptions
// (descs: every Description made for p's Subscription) and says whether
// they are rendered from the Subscription's current generation.
func renderCluster(ctx context.Context, p subscriptionProgress, c clusterProgress, descs []*appsv1alpha1.Description, charts chartReader) (renderedCluster, error) {
	rc := renderedCluster{cluster: c, stale: subscriptionStaleness(p, c)}
	baseName := p.Sub.Name
	var wanted []string
	if c.Base != nil {
		baseName = c.Base.Name
		wanted = descriptionNames(c.Base)
	}
	for _, suffix := range []string{appsv1alpha1.DescriptionGenericSuffix, appsv1alpha1.DescriptionHelmSuffix} {
		name := baseName + suffix
		d := ownedDescription(descs, p.Sub, c.Namespace, name)
		isWanted := c.Base != nil && slices.Contains(wanted, name)
		switch {
		case d == nil && isWanted:
			rc.addStale(fmt.Sprintf("Description %s/%s is not rendered yet", c.Namespace, name))
			continue
		case d == nil:
			continue
		case c.Base != nil && !isWanted:
			rc.addStale(fmt.Sprintf("Description %s/%s is no longer wanted by its Base and not deleted yet", d.Namespace, d.Name))
		case d.DeletionTimestamp != nil:
			rc.addStale(fmt.Sprintf("Description %s/%s is being deleted", d.Namespace, d.Name))
		}
		docs, err := descriptionDocs(ctx, d, charts)
		if err != nil {
			return rc, err
		}
		rc.docs = append(rc.docs, docs...)
	}
	return rc, nil
}

func (rc *renderedCluster) addStale(why string) {
	if rc.stale == "" {
		rc.stale = why
	}
}

// subscriptionStaleness says why c's Descriptions may be of an earlier
// generation of the Subscription: the hub has not scheduled the current one,
// not written c's Base from it, or not rendered that Base (or rendering it
// failed, and the Descriptions stay as they were). Empty when they are
// current as far as the parent tells.
func subscriptionStaleness(p subscriptionProgress, c clusterProgress) string {
	if p.Waiting != "" {
		return p.Waiting
	}
	if c.Base == nil {
		return c.Message
	}
	if s, ok := c.Base.Annotations[annotationSubscriptionGeneration]; ok {
		if g, err := strconv.ParseInt(s, 10, 64); err == nil && g < p.Sub.Generation {
			return fmt.Sprintf("Base %s/%s was written from generation %d of the Subscription", c.Base.Namespace, c.Base.Name, g)
		}
	}
	return c.Message
}

// ownedDescription is Description namespace/name when it was made for sub.
func ownedDescription(descs []*appsv1alpha1.Description, sub *appsv1alpha1.Subscription, namespace, name string) *appsv1alpha1.Description {
	for _, d := range descs {
		if d.Namespace == namespace && d.Name == name && ownedBy(d, sub) {
			return d
		}
	}
	return nil
}

// descriptionDocs are the objects a Description holds: spec.raw as the
// Generic deployer applies them, or a HelmRelease per chart.
func descriptionDocs(ctx context.Context, d *appsv1alpha1.Description, charts chartReader) ([]renderedDoc, error) {
	var out []renderedDoc
	for i, raw := range d.Spec.Raw {
		// Decoded as the apiserver decodes objects: numbers stay integers.
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw.Raw); err != nil {
			return nil, fmt.Errorf("spec.raw[%d] of Description %s/%s is not an object: %w", i, d.Namespace, d.Name, err)
		}
		out = append(out, renderedDoc{obj: obj})
	}
	for i := range d.Spec.Charts {
		doc, err := helmReleaseDoc(ctx, d, i, charts)
		if err != nil {
			return nil, err
		}
		out = append(out, doc)
	}
	return out, nil
}

// helmReleaseDoc is the HelmRelease the hub makes from chart i of a Helm
// Description, named <subscription>-<chart> in the cluster's dedicated
// namespace: the chart options and values the Description carries.
// spec.releaseName is left to its default (that name, shortened for Helm).
func helmReleaseDoc(ctx context.Context, d *appsv1alpha1.Description, i int, charts chartReader) (renderedDoc, error) {
	ref := d.Spec.Charts[i]
	opts := ref.Options
	if opts == nil {
		// Written by an older hub: the hub uses the HelmChart as it is now.
		chart, err := charts.get(ctx, ref.Namespace, ref.Name)
		if err != nil {
			return renderedDoc{}, fmt.Errorf("spec.charts[%d] of Description %s/%s carries no options (an older hub wrote it; the HelmChart as it is now is installed): %w",
				i, d.Namespace, d.Name, err)
		}
		opts = &chart.Spec.HelmOptions
	}
	hr := &appsv1alpha1.HelmRelease{
		TypeMeta: metav1.TypeMeta{APIVersion: appsv1alpha1.SchemeGroupVersion.String(), Kind: "HelmRelease"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      strings.TrimSuffix(d.Name, appsv1alpha1.DescriptionHelmSuffix) + "-" + ref.Name,
			Namespace: d.Namespace,
			Labels:    d.Labels,
		},
		Spec: appsv1alpha1.HelmReleaseSpec{HelmOptions: *opts.DeepCopy()},
	}
	var values []byte
	if i < len(d.Spec.ChartRaw) && len(d.Spec.ChartRaw[i]) > 0 {
		values = d.Spec.ChartRaw[i]
		hr.Spec.Overrides = values
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(hr)
	if err != nil {
		return renderedDoc{}, err
	}
	// What the API server would fill in is not what the hub renders.
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u, "status")
	return renderedDoc{obj: &unstructured.Unstructured{Object: u}, values: values}, nil
}

// chartReader reads HelmCharts, for Descriptions of older hubs that carry
// no chart options.
type chartReader struct {
	client versioned.Interface
}

func (r chartReader) get(ctx context.Context, namespace, name string) (*appsv1alpha1.HelmChart, error) {
	chart, err := r.client.AppsV1alpha1().HelmCharts(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, explainRead("get", "helmcharts", namespace, "", err)
	}
	return chart, err
}

// printRendered prints the documents of every cluster: YAML documents
// (after a "# cluster: <name>" line when several clusters are printed), or
// one JSON List (whose items name their cluster in annotations when
// several are printed).
func printRendered(w io.Writer, clusters []renderedCluster, format string, several bool) error {
	if format == "json" {
		return printRenderedList(w, clusters, several)
	}
	first := true
	for _, rc := range clusters {
		for _, doc := range rc.docs {
			var buf bytes.Buffer
			if !first {
				buf.WriteString("---\n")
			}
			first = false
			if several {
				fmt.Fprintf(&buf, "# cluster: %s\n", rc.cluster.Name)
			}
			if err := writeValuesComment(&buf, doc.values); err != nil {
				return err
			}
			if err := (&printers.YAMLPrinter{}).PrintObj(doc.obj, &buf); err != nil {
				return err
			}
			if _, err := w.Write(buf.Bytes()); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeValuesComment shows a HelmRelease's values (spec.overrides, which
// YAML shows as base64) as YAML comment lines.
func writeValuesComment(w *bytes.Buffer, values []byte) error {
	if len(values) == 0 {
		return nil
	}
	y, err := yaml.JSONToYAML(values)
	if err != nil {
		return fmt.Errorf("the Helm values of a HelmRelease are not JSON: %w", err)
	}
	w.WriteString("# Helm values (spec.overrides):\n")
	for _, line := range strings.Split(strings.TrimRight(string(y), "\n"), "\n") {
		w.WriteString("#   " + line + "\n")
	}
	return nil
}

func printRenderedList(w io.Writer, clusters []renderedCluster, several bool) error {
	list := &unstructured.UnstructuredList{Object: map[string]interface{}{
		"apiVersion": "v1", "kind": "List", "metadata": map[string]interface{}{"resourceVersion": ""},
	}}
	for _, rc := range clusters {
		for _, doc := range rc.docs {
			u := doc.obj
			if several {
				u = u.DeepCopy()
				annotations := u.GetAnnotations()
				if annotations == nil {
					annotations = map[string]string{}
				}
				annotations[AnnotationClusterName] = rc.cluster.Name
				annotations[AnnotationClusterID] = rc.cluster.ID
				u.SetAnnotations(annotations)
			}
			list.Items = append(list.Items, *u)
		}
	}
	return (&printers.JSONPrinter{}).PrintObj(list, w)
}
