package shadow

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// optimisticLockMsg is the generic registry's message for a stale
// resourceVersion, so clients that match on it (kubectl retries) still do.
const optimisticLockMsg = "the object has been modified; please apply your changes to the latest version and try again"

// serverFields are the metadata fields the server sets. A template never
// keeps them: what the shadow API returns comes from its Manifest.
var serverFields = []string{
	"uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
	"selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
}

// cleanTemplate removes from u what a template does not hold: the fields a
// server sets, and status when the parent serves it as a subresource.
func (r *resource) cleanTemplate(u *unstructured.Unstructured) {
	for _, f := range serverFields {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	if r.hasStatus {
		delete(u.Object, "status")
	}
}

// templateNamespace is the namespace a template lives in: the request's for
// namespaced kinds, none for the others.
func (r *resource) templateNamespace(requestNamespace string) string {
	if r.namespaced {
		return requestNamespace
	}
	return ""
}

// manifestName is the name of the Manifest holding the template name in
// namespace.
func (r *resource) manifestName(namespace, name string) string {
	return appsv1alpha1.ManifestName(r.gvr.Group, r.kind, namespace, name)
}

// configLabels say which template a Manifest holds.
func (r *resource) configLabels(version, namespace string) map[string]string {
	return map[string]string{
		appsv1alpha1.LabelConfigGroup:     r.gvr.Group,
		appsv1alpha1.LabelConfigVersion:   version,
		appsv1alpha1.LabelConfigKind:      r.kind,
		appsv1alpha1.LabelConfigNamespace: namespace,
	}
}

// isConfigLabel is true for the keys configLabels sets.
func isConfigLabel(key string) bool {
	switch key {
	case appsv1alpha1.LabelConfigGroup, appsv1alpha1.LabelConfigVersion, appsv1alpha1.LabelConfigKind, appsv1alpha1.LabelConfigNamespace:
		return true
	}
	return false
}

// fillManifest puts template u into m: its name, namespace, labels (the
// template's own, so label selectors run in the parent, then the config
// labels) and the template itself.
func (r *resource) fillManifest(m *appsv1alpha1.Manifest, u *unstructured.Unstructured) error {
	raw, err := json.Marshal(u.Object)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("encoding the template: %v", err))
	}
	m.Name = r.manifestName(u.GetNamespace(), u.GetName())
	m.Namespace = appsv1alpha1.ReservedNamespace
	m.Labels = map[string]string{}
	for k, v := range u.GetLabels() {
		m.Labels[k] = v
	}
	for k, v := range r.configLabels(u.GroupVersionKind().Version, u.GetNamespace()) {
		m.Labels[k] = v
	}
	m.Template = runtime.RawExtension{Raw: raw}
	return nil
}

// objectFrom is the template a Manifest holds, with the metadata the server
// keeps (uid, resourceVersion, creationTimestamp, generation, deletion)
// taken from the Manifest.
func objectFrom(m *appsv1alpha1.Manifest) (*unstructured.Unstructured, error) {
	raw := m.Template.Raw
	if raw == nil && m.Template.Object != nil {
		var err error
		if raw, err = json.Marshal(m.Template.Object); err != nil {
			return nil, err
		}
	}
	content := map[string]interface{}{}
	if err := utiljson.Unmarshal(raw, &content); err != nil {
		return nil, fmt.Errorf("manifest %s/%s holds no valid template: %w", m.Namespace, m.Name, err)
	}
	u := &unstructured.Unstructured{Object: content}
	if u.GetKind() == "" || u.GetAPIVersion() == "" {
		return nil, fmt.Errorf("manifest %s/%s holds a template without apiVersion and kind", m.Namespace, m.Name)
	}
	u.SetUID(m.UID)
	u.SetResourceVersion(m.ResourceVersion)
	u.SetCreationTimestamp(m.CreationTimestamp)
	u.SetGeneration(m.Generation)
	if m.DeletionTimestamp != nil {
		u.SetDeletionTimestamp(m.DeletionTimestamp)
		u.SetDeletionGracePeriodSeconds(m.DeletionGracePeriodSeconds)
	}
	return u, nil
}

// mapError turns an error about the Manifest holding template name into
// one about the template, so clients read their own kind and name.
func (r *resource) mapError(err error, name string) error {
	var status apierrors.APIStatus
	if err == nil || !errors.As(err, &status) {
		return err
	}
	gr := r.groupResource()
	switch {
	case apierrors.IsNotFound(err):
		return apierrors.NewNotFound(gr, name)
	case apierrors.IsAlreadyExists(err):
		return apierrors.NewAlreadyExists(gr, name)
	case apierrors.IsConflict(err):
		return apierrors.NewConflict(gr, name, errors.New(optimisticLockMsg))
	case apierrors.IsInvalid(err):
		return r.invalid(name, status.Status(), "template.")
	case apierrors.IsForbidden(err):
		return apierrors.NewInternalError(fmt.Errorf("clusternet-hub may not keep templates in namespace %q of the parent: %w",
			appsv1alpha1.ReservedNamespace, err))
	}
	// Anything else (timeouts, throttling) keeps its code and reason, but
	// names the template instead of its Manifest.
	st := status.Status()
	manifests := appsv1alpha1.Resource("manifests").String()
	st.Message = strings.ReplaceAll(st.Message, manifests, gr.String())
	if st.Details != nil {
		d := *st.Details
		if d.Name != "" && name != "" {
			st.Message = strings.ReplaceAll(st.Message, `"`+d.Name+`"`, `"`+name+`"`)
		}
		d.Group, d.Kind, d.Name = gr.Group, gr.Resource, name
		st.Details = &d
	}
	return &apierrors.StatusError{ErrStatus: st}
}

// invalid restates an Invalid status about the template name: field paths
// lose prefix (the template's place inside what was validated).
func (r *resource) invalid(name string, st metav1.Status, prefix string) error {
	causes := []metav1.StatusCause{}
	var details []string
	if st.Details != nil {
		for _, c := range st.Details.Causes {
			c.Field = strings.TrimPrefix(c.Field, prefix)
			causes = append(causes, c)
			if c.Field != "" {
				details = append(details, c.Field+": "+c.Message)
			} else {
				details = append(details, c.Message)
			}
		}
	}
	gk := r.groupKind()
	msg := fmt.Sprintf("%s %q is invalid", gk.String(), name)
	if len(details) > 0 {
		msg += ": " + strings.Join(details, ", ")
	} else if st.Message != "" {
		msg += ": " + st.Message
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    st.Code,
		Reason:  metav1.StatusReasonInvalid,
		Message: msg,
		Details: &metav1.StatusDetails{Group: gk.Group, Kind: gk.Kind, Name: name, Causes: causes},
	}}
}
