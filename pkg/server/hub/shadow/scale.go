package shadow

import (
	"context"
	"errors"
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/util/dryrun"
	"k8s.io/apiserver/pkg/warning"
)

// scaleGVK is what a scale subresource serves.
var scaleGVK = schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}

// scaleStorage serves a template's scale subresource: spec.replicas of the
// template (at the kind's replicas path) as an autoscaling/v1 Scale. A
// template runs nowhere in the parent, so status.replicas is 0.
type scaleStorage struct {
	t *templateStorage
}

var (
	_ rest.Getter  = &scaleStorage{}
	_ rest.Updater = &scaleStorage{}
)

// New is an empty Scale.
func (s *scaleStorage) New() runtime.Object {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(scaleGVK)
	return u
}

// Destroy releases nothing.
func (s *scaleStorage) Destroy() {}

func (s *scaleStorage) paths() *scalePaths { return s.t.r.scale }

// scaleOf is the Scale of template u.
func (s *scaleStorage) scaleOf(u *unstructured.Unstructured) *unstructured.Unstructured {
	p := s.paths()
	replicas := p.defaultReplicas
	if v, found, err := unstructured.NestedInt64(u.Object, p.replicas...); found && err == nil {
		replicas = v
	}
	sc := &unstructured.Unstructured{Object: map[string]interface{}{
		"spec":   map[string]interface{}{"replicas": replicas},
		"status": map[string]interface{}{"replicas": int64(0)},
	}}
	sc.SetGroupVersionKind(scaleGVK)
	sc.SetName(u.GetName())
	sc.SetNamespace(u.GetNamespace())
	sc.SetUID(u.GetUID())
	sc.SetResourceVersion(u.GetResourceVersion())
	sc.SetCreationTimestamp(u.GetCreationTimestamp())
	if p.selector != nil {
		if v, found, _ := unstructured.NestedFieldNoCopy(u.Object, p.selector...); found {
			if sel := selectorString(v); sel != "" {
				_ = unstructured.SetNestedField(sc.Object, sel, "status", "selector")
			}
		}
	}
	return sc
}

// Get returns the template's Scale.
func (s *scaleStorage) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	r := s.t.r
	namespace := r.templateNamespace(request.NamespaceValue(ctx))
	if err := r.authorizeRealKind(ctx, s.t.realKind, "get", "scale", namespace, name, name); err != nil {
		return nil, err
	}
	opts := metav1.GetOptions{}
	if options != nil {
		opts.ResourceVersion = options.ResourceVersion
	}
	_, u, err := s.t.current(ctx, namespace, name, opts)
	if err != nil {
		return nil, err
	}
	return s.scaleOf(u), nil
}

// Update sets the template's replicas from a Scale (a PUT or a patch),
// once the caller holds the real kind's permission for the scale
// subresource (checked before the template is read).
func (s *scaleStorage) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, _ rest.ValidateObjectFunc,
	updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	r := s.t.r
	if options == nil {
		options = &metav1.UpdateOptions{}
	}
	namespace := r.templateNamespace(request.NamespaceValue(ctx))
	if err := r.authorizeRealKind(ctx, s.t.realKind, verbOf(ctx, "update"), "scale", namespace, name, name); err != nil {
		return nil, false, err
	}
	for attempt := 1; ; attempt++ {
		m, tmpl, err := s.t.current(ctx, namespace, name, metav1.GetOptions{})
		if err != nil {
			return nil, false, err
		}
		old := s.scaleOf(tmpl)
		newObj, err := objInfo.UpdatedObject(ctx, old.DeepCopy())
		if err != nil {
			return nil, false, err
		}
		sc, ok := newObj.(*unstructured.Unstructured)
		if !ok || sc.GroupVersionKind() != scaleGVK {
			return nil, false, apierrors.NewBadRequest(fmt.Sprintf("the scale of %s %q must be an autoscaling/v1 Scale", r.groupResource(), name))
		}
		if err := s.t.checkPreconditions(objInfo.Preconditions(), m, name); err != nil {
			return nil, false, err
		}
		wantVersion := sc.GetResourceVersion()
		if wantVersion != "" && wantVersion != m.ResourceVersion {
			return nil, false, apierrors.NewConflict(r.groupResource(), name, errors.New(optimisticLockMsg))
		}
		if err := checkScaleFields(ctx, sc, options.FieldValidation); err != nil {
			return nil, false, err
		}
		replicas, found, err := unstructured.NestedInt64(sc.Object, "spec", "replicas")
		path := field.NewPath("spec", "replicas")
		switch {
		case err != nil:
			return nil, false, apierrors.NewInvalid(scaleGVK.GroupKind(), name, field.ErrorList{field.Invalid(path, sc.Object["spec"], "must be an integer")})
		case !found:
			return nil, false, apierrors.NewInvalid(scaleGVK.GroupKind(), name, field.ErrorList{field.Required(path, "")})
		case replicas < 0:
			return nil, false, apierrors.NewInvalid(scaleGVK.GroupKind(), name, field.ErrorList{field.Invalid(path, replicas, "must be greater than or equal to 0")})
		}
		if updateValidation != nil {
			if err := updateValidation(ctx, sc, old); err != nil {
				return nil, false, err
			}
		}
		if current, _, _ := unstructured.NestedInt64(old.Object, "spec", "replicas"); current == replicas {
			if _, set, _ := unstructured.NestedFieldNoCopy(tmpl.Object, r.scale.replicas...); set {
				return old, false, nil
			}
		}
		u := tmpl.DeepCopy()
		r.cleanTemplate(u)
		if err := unstructured.SetNestedField(u.Object, replicas, r.scale.replicas...); err != nil {
			return nil, false, apierrors.NewInternalError(fmt.Errorf("setting replicas of %s %q: %w", r.groupResource(), name, err))
		}
		if err := s.t.validate(ctx, u, options.FieldValidation); err != nil {
			return nil, false, err
		}
		if dryrun.IsDryRun(options.DryRun) {
			result := s.scaleOf(tmpl)
			_ = unstructured.SetNestedField(result.Object, replicas, "spec", "replicas")
			return result, false, nil
		}
		next := m.DeepCopy()
		if err := r.fillManifest(next, u); err != nil {
			return nil, false, err
		}
		updated, err := s.t.manifests.Update(ctx, next, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) && wantVersion == "" && attempt < maxUpdateAttempts {
			continue
		}
		if err != nil {
			return nil, false, r.mapError(ctx, err, namespace, name)
		}
		after, err := s.t.stored(ctx, updated, name)
		if err != nil {
			return nil, false, err
		}
		return s.scaleOf(after), false, nil
	}
}

// checkScaleFields holds a Scale to its schema as the real subresource does:
// unknown fields are refused (fieldValidation=Strict), reported as warnings
// (Warn, the default) or dropped silently (Ignore).
func checkScaleFields(ctx context.Context, sc *unstructured.Unstructured, fieldValidation string) error {
	if fieldValidation == metav1.FieldValidationIgnore {
		return nil
	}
	err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(sc.Object, &autoscalingv1.Scale{}, true)
	if err == nil {
		return nil
	}
	strict, ok := runtime.AsStrictDecodingError(err)
	if !ok {
		return apierrors.NewBadRequest(fmt.Sprintf("the scale of %q is not an autoscaling/v1 Scale: %v", sc.GetName(), err))
	}
	if fieldValidation == metav1.FieldValidationStrict {
		return apierrors.NewBadRequest(strict.Error())
	}
	for _, e := range strict.Errors() {
		warning.AddWarning(ctx, "", e.Error())
	}
	return nil
}
