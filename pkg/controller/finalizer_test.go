package controller

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

func TestFinalizer(t *testing.T) {
	cached := make([]string, 1, 4) // room to grow in place
	cached[0] = "other"
	obj := &metav1.ObjectMeta{Finalizers: cached}
	if !AddFinalizer(obj) || AddFinalizer(obj) {
		t.Fatal("AddFinalizer: want a change once, then none")
	}
	if diff := cmp.Diff([]string{"other", appsv1alpha1.Finalizer}, obj.Finalizers); diff != "" {
		t.Errorf("after AddFinalizer (-want +got):\n%s", diff)
	}
	if got := cached[:2][1]; got != "" {
		t.Errorf("the shared backing array was written: %q", got)
	}
	if !HasFinalizer(obj) {
		t.Error("HasFinalizer false after AddFinalizer")
	}
	if !RemoveFinalizer(obj) || RemoveFinalizer(obj) {
		t.Fatal("RemoveFinalizer: want a change once, then none")
	}
	if diff := cmp.Diff([]string{"other"}, obj.Finalizers); diff != "" {
		t.Errorf("after RemoveFinalizer (-want +got):\n%s", diff)
	}
}
