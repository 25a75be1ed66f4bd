package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
)

// TrimManagedFields is an informer transform (cache.TransformFunc) that
// drops metadata.managedFields before an object enters the cache, as
// kube-controller-manager's informers do: no controller reads them from a
// cache, and they are often the larger part of an object's metadata (one
// entry per field manager, each listing every field it set). An Update of
// an object read from such a cache keeps the stored managedFields, as the
// apiserver does for a request that omits them.
func TrimManagedFields(obj any) (any, error) {
	if accessor, err := meta.Accessor(obj); err == nil && accessor.GetManagedFields() != nil {
		accessor.SetManagedFields(nil)
	}
	return obj, nil
}
