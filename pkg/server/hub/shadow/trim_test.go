package shadow

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

// TestTrimCRD: the cached CRD keeps what the shadow API reads (group,
// plural, versions served with their scale subresource, conditions) and
// loses its schemas, managedFields and kubectl's last-applied copy.
func TestTrimCRD(t *testing.T) {
	version := func(name string, schema bool) map[string]any {
		v := map[string]any{
			"name": name, "served": true, "storage": name == "v1",
			"subresources": map[string]any{"scale": map[string]any{"specReplicasPath": ".spec.replicas"}},
		}
		if schema {
			v["schema"] = map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "properties": map[string]any{"spec": map[string]any{"type": "object"}}}}
		}
		return v
	}
	crd := func(full bool) *unstructured.Unstructured {
		meta := map[string]any{"name": "widgets.example.com", "annotations": map[string]any{"team": "a"}}
		if full {
			meta["managedFields"] = []any{map[string]any{"manager": "kubectl", "operation": "Apply"}}
			meta["annotations"].(map[string]any)[lastApplied] = `{"kind":"CustomResourceDefinition"}`
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": meta,
			"spec": map[string]any{"group": "example.com", "names": map[string]any{"plural": "widgets"},
				"versions": []any{version("v1", full), version("v2", full)}},
			"status": map[string]any{"conditions": []any{map[string]any{"type": "Established", "status": "True"}}},
		}}
	}
	got, err := trimCRD(crd(true))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(crd(false).Object, got.(*unstructured.Unstructured).Object); diff != "" {
		t.Errorf("trimmed CRD (-want +got):\n%s", diff)
	}
	u := got.(*unstructured.Unstructured)
	if !crdEstablished(u) || !crdServed(u) {
		t.Errorf("the trimmed CRD is no longer established and served")
	}
	tombstone := cache.DeletedFinalStateUnknown{Key: "widgets.example.com"}
	if got, err := trimCRD(tombstone); err != nil || got != tombstone {
		t.Errorf("tombstone: %v, %v", got, err)
	}
}
