package shadow

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// lastApplied is kubectl's client-side apply annotation: a copy of the
// whole object as last applied.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// trimCRD is the CRD informer's transform: it keeps what the shadow API
// reads of a CRD (its group, plural, versions with served and the scale
// subresource, conditions, deletion) and drops the rest's big parts before
// they enter the cache: each version's OpenAPI schema, managedFields and
// kubectl's last-applied copy. A CRD's schema is most of its size, and a
// cached unstructured object holds it as maps of maps, several times its
// JSON size: Clusternet's own CRDs alone were megabytes of the hub's heap.
func trimCRD(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	u.SetManagedFields(nil)
	if annotations := u.GetAnnotations(); annotations[lastApplied] != "" {
		delete(annotations, lastApplied)
		u.SetAnnotations(annotations)
	}
	versions, found, err := unstructured.NestedSlice(u.Object, "spec", "versions")
	if !found || err != nil {
		return u, nil
	}
	for _, v := range versions {
		if m, ok := v.(map[string]any); ok {
			delete(m, "schema")
		}
	}
	return u, unstructured.SetNestedSlice(u.Object, versions, "spec", "versions")
}
