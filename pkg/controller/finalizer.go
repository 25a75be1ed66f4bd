package controller

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// HasFinalizer says whether obj carries Clusternet's finalizer.
func HasFinalizer(obj metav1.Object) bool {
	return slices.Contains(obj.GetFinalizers(), appsv1alpha1.Finalizer)
}

// AddFinalizer adds Clusternet's finalizer to obj unless it is there, and
// says whether obj changed (and so needs writing). The list is copied, never
// appended to in place: obj is often a deep copy whose slice still shares a
// backing array with the informer's cached object.
func AddFinalizer(obj metav1.Object) bool {
	if HasFinalizer(obj) {
		return false
	}
	obj.SetFinalizers(append(slices.Clone(obj.GetFinalizers()), appsv1alpha1.Finalizer))
	return true
}

// RemoveFinalizer removes Clusternet's finalizer from obj, and says whether
// obj changed.
func RemoveFinalizer(obj metav1.Object) bool {
	if !HasFinalizer(obj) {
		return false
	}
	obj.SetFinalizers(slices.DeleteFunc(slices.Clone(obj.GetFinalizers()), func(f string) bool { return f == appsv1alpha1.Finalizer }))
	return true
}
