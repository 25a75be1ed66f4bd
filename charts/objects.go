package charts

import (
	"fmt"
	"slices"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Objects are the rendered objects, parsed, in the order `helm install`
// applies them (SortForInstall).
func (r Rendered) Objects() ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, doc := range r.Manifests() {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			return nil, fmt.Errorf("a rendered document does not parse: %w", err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		objs = append(objs, obj)
	}
	SortForInstall(objs)
	return objs, nil
}

// SortForInstall orders objs as `helm install` does (by kind: the
// Namespace, Secrets and RBAC before the Deployment that uses them), so
// that the agent's pod never starts before its registration Secret exists.
func SortForInstall(objs []*unstructured.Unstructured) {
	rank := func(kind string) int {
		if i := slices.Index(releaseutil.InstallOrder, kind); i >= 0 {
			return i
		}
		return len(releaseutil.InstallOrder)
	}
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int { return rank(a.GetKind()) - rank(b.GetKind()) })
}

// CRDs are the CustomResourceDefinitions of ch's crds/ folder, parsed:
// `helm install` applies them before the templates, and never updates or
// deletes them, which Render (templates only) leaves to its callers.
func CRDs(ch *chart.Chart) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, crd := range ch.CRDObjects() {
		for _, doc := range releaseutil.SplitManifests(string(crd.File.Data)) {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
				return nil, fmt.Errorf("chart %s: %s does not parse: %w", ch.Name(), crd.Filename, err)
			}
			if len(obj.Object) > 0 {
				objs = append(objs, obj)
			}
		}
	}
	return objs, nil
}
