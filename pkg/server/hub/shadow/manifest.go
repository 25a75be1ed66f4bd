package shadow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/klog/v2"

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
// server sets, status when the parent serves it as a subresource, and the
// hub's FeedInUseProtection note, which reads show from the Manifest (so
// that kubectl apply or edit of a held template does not store it, and
// children never receive it).
func (r *resource) cleanTemplate(u *unstructured.Unstructured) {
	for _, f := range serverFields {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	if r.hasStatus {
		delete(u.Object, "status")
	}
	if ann := u.GetAnnotations(); ann != nil {
		if _, ok := ann[appsv1alpha1.AnnotationFeedProtection]; ok {
			delete(ann, appsv1alpha1.AnnotationFeedProtection)
			if len(ann) == 0 {
				unstructured.RemoveNestedField(u.Object, "metadata", "annotations")
			} else {
				u.SetAnnotations(ann)
			}
		}
	}
}

// showProtection puts the hub's FeedInUseProtection note of Manifest m, if
// any, on template u: `kubectl get -o yaml` of a template whose deletion is
// held says who holds it, as upstream's shadow API shows it.
func showProtection(u *unstructured.Unstructured, m *appsv1alpha1.Manifest) {
	note, ok := m.Annotations[appsv1alpha1.AnnotationFeedProtection]
	if !ok {
		return
	}
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[appsv1alpha1.AnnotationFeedProtection] = note
	u.SetAnnotations(ann)
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
// keeps (uid, resourceVersion, creationTimestamp, generation, deletion) and
// the hub's FeedInUseProtection note taken from the Manifest. Its errors
// name neither: callers log the Manifest and tell the client about the
// template (unreadable).
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
		return nil, fmt.Errorf("the template is not a JSON object: %w", err)
	}
	u := &unstructured.Unstructured{Object: content}
	if u.GetKind() == "" || u.GetAPIVersion() == "" {
		return nil, errors.New("the template has no apiVersion or kind")
	}
	u.SetUID(m.UID)
	u.SetResourceVersion(m.ResourceVersion)
	u.SetCreationTimestamp(m.CreationTimestamp)
	u.SetGeneration(m.Generation)
	if m.DeletionTimestamp != nil {
		u.SetDeletionTimestamp(m.DeletionTimestamp)
		u.SetDeletionGracePeriodSeconds(m.DeletionGracePeriodSeconds)
	}
	showProtection(u, m)
	return u, nil
}

// what names template name of r for a message: `deployments.apps "x"`,
// or the resource alone for a collection.
func (r *resource) what(name string) string {
	if name == "" {
		return r.groupResource().String()
	}
	return fmt.Sprintf("%s %q", r.groupResource(), name)
}

// unreadable is the error for a template whose Manifest holds no valid
// template (someone wrote the Manifest by hand): it names the template,
// cause says what is wrong with it, and the Manifest goes to the hub's log.
func (r *resource) unreadable(ctx context.Context, m *appsv1alpha1.Manifest, name string, cause error) error {
	klog.FromContext(ctx).Error(cause, "A Manifest holds no valid template", "manifest", klog.KObj(m), "resource", r.groupResource(), "name", name)
	return apierrors.NewInternalError(fmt.Errorf("%s cannot be read: %w; delete it and create it again", r.what(name), cause))
}

// mapError turns an error about the Manifest holding template
// namespace/name (or about the Manifests of a collection, name empty) into
// one about the template, so clients read their own kind and name, never
// the Manifest or the reserved namespace.
func (r *resource) mapError(ctx context.Context, err error, namespace, name string) error {
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
		// The hub's own access to its Manifests: the parent's RBAC for
		// the hub, or the namespace holding them being deleted. Not the
		// client's to see in detail, and not the client's to fix.
		klog.FromContext(ctx).Error(err, "The parent refused the hub access to templates", "resource", gr, "name", name)
		return apierrors.NewInternalError(fmt.Errorf("%s: the parent refused clusternet-hub access to the templates it keeps; "+
			"an administrator of the parent finds why in the hub's log", r.what(name)))
	}
	// Anything else (timeouts, throttling) keeps its code and reason, but
	// names the template instead of its Manifest.
	manifestName := ""
	if name != "" {
		manifestName = r.manifestName(namespace, name)
	}
	return &apierrors.StatusError{ErrStatus: r.restate(status.Status(), manifestName, name)}
}

// restate turns a Status the parent gave about Manifest manifestName into
// one about template name of r (both empty for a collection): the same
// code and reason, the template's resource and name where the Manifest's
// were. A message that would still show the Manifest or the reserved
// namespace is replaced by one made of the template and the reason.
func (r *resource) restate(st metav1.Status, manifestName, name string) metav1.Status {
	gr := r.groupResource()
	pairs := []string{
		appsv1alpha1.Resource("manifests").String(), gr.String(),
		appsv1alpha1.SchemeGroupVersion.WithKind("Manifest").GroupKind().String(), r.groupKind().String(),
	}
	if manifestName != "" && name != "" {
		pairs = append(pairs, `"`+manifestName+`"`, `"`+name+`"`)
	}
	st.Message = strings.NewReplacer(pairs...).Replace(st.Message)
	if revealsStorage(st.Message, manifestName) {
		reason := string(st.Reason)
		if reason == "" {
			reason = http.StatusText(int(st.Code))
		}
		st.Message = fmt.Sprintf("%s: the parent answered %s", r.what(name), reason)
	}
	if st.Details != nil {
		d := *st.Details
		d.Group, d.Kind, d.Name = gr.Group, gr.Resource, name
		d.Causes = nil
		for _, c := range st.Details.Causes {
			if !revealsStorage(c.Message, manifestName) && !revealsStorage(c.Field, manifestName) {
				d.Causes = append(d.Causes, c)
			}
		}
		st.Details = &d
	}
	return st
}

// revealsStorage says whether text shows where templates are kept: the
// reserved namespace, Clusternet's apps group or a Manifest's name.
func revealsStorage(text, manifestName string) bool {
	return strings.Contains(text, appsv1alpha1.ReservedNamespace) || strings.Contains(text, appsv1alpha1.GroupName) ||
		(manifestName != "" && strings.Contains(text, manifestName))
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
