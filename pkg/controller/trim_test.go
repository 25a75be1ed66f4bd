package controller

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

func TestTrimManagedFields(t *testing.T) {
	managed := []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}
	typed := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"k": "v"}, ManagedFields: managed}, Data: map[string]string{"x": "y"}}
	u := &unstructured.Unstructured{}
	u.SetName("b")
	u.SetManagedFields(managed)
	u.Object["spec"] = map[string]any{"replicas": int64(2)}
	tombstone := cache.DeletedFinalStateUnknown{Key: "c"}

	got, err := TrimManagedFields(typed)
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"k": "v"}}, Data: map[string]string{"x": "y"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("typed object (-want +got):\n%s", diff)
	}
	got, err = TrimManagedFields(u)
	if err != nil {
		t.Fatal(err)
	}
	wantU := map[string]any{"metadata": map[string]any{"name": "b"}, "spec": map[string]any{"replicas": int64(2)}}
	if diff := cmp.Diff(wantU, got.(*unstructured.Unstructured).Object); diff != "" {
		t.Errorf("unstructured object (-want +got):\n%s", diff)
	}
	// What is not an object passes through untouched.
	if got, err := TrimManagedFields(tombstone); err != nil || got != tombstone {
		t.Errorf("tombstone: %v, %v", got, err)
	}
}
