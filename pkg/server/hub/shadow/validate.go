package shadow

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/client-go/dynamic"
)

// validator checks a template against the parent's real type.
type validator interface {
	validate(ctx context.Context, r *resource, u *unstructured.Unstructured, fieldValidation string) error
}

// errReservedNamespaceMissing says the dry run found no namespace to run in.
var errReservedNamespaceMissing = errors.New("the reserved namespace is missing")

// dryRunValidator validates a template with a server-side dry-run create of
// the real kind in the parent. Namespaced templates are dry-run in namespace
// (the reserved one, which exists), since a template's own namespace often
// exists only in children; errors are mapped back to the template.
type dryRunValidator struct {
	client    dynamic.Interface
	namespace string
}

// dryRunFieldManager names the hub in the dry runs' managed fields.
const dryRunFieldManager = "clusternet-hub-shadow"

func (v *dryRunValidator) validate(ctx context.Context, r *resource, u *unstructured.Unstructured, fieldValidation string) error {
	gvr := u.GroupVersionKind().GroupVersion().WithResource(r.gvr.Resource)
	body := u.DeepCopy()
	namespace := ""
	if r.namespaced {
		namespace = v.namespace
		body.SetNamespace(namespace)
	}
	adjustForDryRun(r, body)
	_, err := v.client.Resource(gvr).Namespace(namespace).Create(ctx, body, metav1.CreateOptions{
		DryRun:          []string{metav1.DryRunAll},
		FieldValidation: fieldValidation,
		FieldManager:    dryRunFieldManager,
	})
	return dryRunError(ctx, r, u, namespace, err)
}

// adjustForDryRun drops what the parent would check against its own
// allocations, which a template leaves to each child: a Service's cluster
// IPs, IP families and node ports.
func adjustForDryRun(r *resource, u *unstructured.Unstructured) {
	if r.gvr.Group != "" || r.kind != "Service" {
		return
	}
	if ip, _, _ := unstructured.NestedString(u.Object, "spec", "clusterIP"); ip != "None" {
		unstructured.RemoveNestedField(u.Object, "spec", "clusterIP")
		unstructured.RemoveNestedField(u.Object, "spec", "clusterIPs")
	}
	unstructured.RemoveNestedField(u.Object, "spec", "ipFamilies")
	unstructured.RemoveNestedField(u.Object, "spec", "ipFamilyPolicy")
	unstructured.RemoveNestedField(u.Object, "spec", "healthCheckNodePort")
	ports, found, _ := unstructured.NestedSlice(u.Object, "spec", "ports")
	if !found {
		return
	}
	for _, p := range ports {
		if port, ok := p.(map[string]interface{}); ok {
			delete(port, "nodePort")
		}
	}
	_ = unstructured.SetNestedSlice(u.Object, ports, "spec", "ports")
}

// dryRunError decides what a dry run's outcome means for template u.
//   - AlreadyExists: the object validated (validation and admission run
//     before the existence check); the template does not exist in the parent.
//   - Forbidden by admission (not by RBAC): the parent's policies for the
//     namespace the dry run ran in, not the template's; children enforce
//     their own. Kept, with a warning. So is a webhook that cannot dry-run.
//   - Invalid and BadRequest are the parent's field errors: refused, the
//     dry-run namespace in messages replaced by the template's.
func dryRunError(ctx context.Context, r *resource, u *unstructured.Unstructured, dryRunNamespace string, err error) error {
	var status apierrors.APIStatus
	if err == nil || apierrors.IsAlreadyExists(err) {
		return nil
	}
	if !errors.As(err, &status) {
		return apierrors.NewInternalError(fmt.Errorf("validating %s %q in the parent: %w", r.groupKind(), u.GetName(), err))
	}
	st := status.Status()
	switch {
	case apierrors.IsNotFound(err) && st.Details != nil && st.Details.Kind == "namespaces":
		return errReservedNamespaceMissing
	case apierrors.IsForbidden(err) && !strings.Contains(st.Message, "cannot create resource"),
		apierrors.IsBadRequest(err) && strings.Contains(st.Message, "does not support dry run"):
		warning.AddWarning(ctx, "", fmt.Sprintf("%s %q: the parent's admission did not accept a dry run in namespace %q, "+
			"which is not where the template goes: %s; the template is kept, and each child applies its own admission",
			r.groupKind(), u.GetName(), dryRunNamespace, st.Message))
		return nil
	case apierrors.IsNotFound(err):
		return apierrors.NewBadRequest(fmt.Sprintf("the parent does not serve %s in version %q, so the template cannot be validated: %s",
			r.groupResource(), u.GroupVersionKind().Version, st.Message))
	}
	if dryRunNamespace != "" && u.GetNamespace() != dryRunNamespace {
		st = renameNamespace(st, dryRunNamespace, u.GetNamespace())
	}
	return &apierrors.StatusError{ErrStatus: st}
}

// renameNamespace puts the template's namespace back where a message names
// the one the dry run ran in.
func renameNamespace(st metav1.Status, from, to string) metav1.Status {
	replace := strings.NewReplacer(`"`+from+`"`, `"`+to+`"`, from+"/", to+"/", "namespace "+from, "namespace "+to)
	st.Message = replace.Replace(st.Message)
	if st.Details != nil {
		d := *st.Details
		d.Causes = append([]metav1.StatusCause(nil), d.Causes...)
		for i := range d.Causes {
			d.Causes[i].Message = replace.Replace(d.Causes[i].Message)
		}
		st.Details = &d
	}
	return st
}
