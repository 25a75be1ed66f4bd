package shadow

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/dynamic"
)

// validator checks a template against the parent's real type.
type validator interface {
	validate(ctx context.Context, r *resource, u *unstructured.Unstructured, fieldValidation string) error
}

var (
	// errReservedNamespaceMissing says the dry run found no namespace to run in.
	errReservedNamespaceMissing = errors.New("the reserved namespace is missing")
	// errHubCannotImpersonate says the parent did not let the hub act as
	// the author: the hub's RBAC is an administrator's to fix.
	errHubCannotImpersonate = errors.New("the parent does not let the hub impersonate template authors")
)

// dryRunValidator validates a template with a server-side dry-run create of
// the real kind in the parent, as the template's author (the user of the
// request, impersonated): RBAC, including its escalation checks on
// RoleBindings, and admission (Pod Security, policies, webhooks) see who
// wrote the template, and their refusals are the template's. A namespaced
// template is dry-run in its own namespace; when that namespace does not
// exist in the parent (or is being deleted), in namespace (the reserved
// one), where the author's cluster-wide rights are the same as in a
// namespace that does not exist. Errors are mapped back to the template.
type dryRunValidator struct {
	authors   authorClients
	namespace string
}

// dryRunFieldManager names the hub in the dry runs' managed fields.
const dryRunFieldManager = "clusternet-hub-shadow"

func (v *dryRunValidator) validate(ctx context.Context, r *resource, u *unstructured.Unstructured, fieldValidation string) error {
	author, ok := request.UserFrom(ctx)
	if !ok || author.GetName() == "" {
		// A template nobody authored is never validated as the hub.
		return apierrors.NewUnauthorized(fmt.Sprintf("%s cannot be validated: the request names no user, and templates are validated as their author", r.what(u.GetName())))
	}
	if v.authors == nil {
		return apierrors.NewInternalError(fmt.Errorf("%s cannot be validated: the hub has no client to act as its author", r.what(u.GetName())))
	}
	client, err := v.authors.forUser(author)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("%s cannot be validated as %q: %w", r.what(u.GetName()), author.GetName(), err))
	}
	namespace := ""
	if r.namespaced {
		namespace = u.GetNamespace()
		if namespace == "" {
			namespace = v.namespace
		}
	}
	err = dryRunCreate(ctx, client, r, u, namespace, fieldValidation)
	if r.namespaced && namespace != v.namespace && namespaceUnusable(err, namespace) {
		// Templates are for children: their namespace need not exist in
		// the parent. The author already passed the parent's authorization
		// there (it comes before admission), which for a namespace that
		// does not exist is a cluster-wide grant.
		namespace = v.namespace
		err = dryRunCreate(ctx, client, r, u, namespace, fieldValidation)
	}
	return v.dryRunError(r, u, namespace, err)
}

// dryRunCreate creates u in namespace of the parent with dryRun=All.
func dryRunCreate(ctx context.Context, client dynamic.Interface, r *resource, u *unstructured.Unstructured, namespace, fieldValidation string) error {
	gvr := u.GroupVersionKind().GroupVersion().WithResource(r.gvr.Resource)
	body := u.DeepCopy()
	if r.namespaced {
		body.SetNamespace(namespace)
	}
	adjustForDryRun(r, body)
	_, err := client.Resource(gvr).Namespace(namespace).Create(ctx, body, metav1.CreateOptions{
		DryRun:          []string{metav1.DryRunAll},
		FieldValidation: fieldValidation,
		FieldManager:    dryRunFieldManager,
	})
	return err
}

// namespaceUnusable is true when the dry run was refused only because
// namespace does not exist in the parent or is being deleted.
func namespaceUnusable(err error, namespace string) bool {
	var status apierrors.APIStatus
	if err == nil || !errors.As(err, &status) {
		return false
	}
	st := status.Status()
	if st.Details == nil {
		return false
	}
	if apierrors.IsNotFound(err) {
		return st.Details.Kind == "namespaces" && st.Details.Name == namespace
	}
	if apierrors.IsForbidden(err) {
		for _, c := range st.Details.Causes {
			if c.Type == corev1.NamespaceTerminatingCause {
				return true
			}
		}
	}
	return false
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

// dryRunError decides what a dry run's outcome in dryRunNamespace means for
// template u. Every refusal is the template's: the parent's RBAC and
// admission judged its author, so their errors come back as the parent
// wrote them (Forbidden and Invalid name the rule), never as warnings.
//   - AlreadyExists: the object validated (authorization, validation and
//     admission all come before the existence check).
//   - The hub may not impersonate: an administrator's problem, said so.
//   - A webhook that cannot take part in a dry run: refused, since the
//     template cannot be checked against it.
//   - Messages naming the reserved namespace (when the dry run ran there)
//     are given back the template's.
func (v *dryRunValidator) dryRunError(r *resource, u *unstructured.Unstructured, dryRunNamespace string, err error) error {
	var status apierrors.APIStatus
	if err == nil || apierrors.IsAlreadyExists(err) {
		return nil
	}
	if !errors.As(err, &status) {
		return apierrors.NewInternalError(fmt.Errorf("validating %s %q in the parent: %w", r.groupKind(), u.GetName(), err))
	}
	st := status.Status()
	switch {
	case apierrors.IsNotFound(err) && st.Details != nil && st.Details.Kind == "namespaces" && dryRunNamespace == v.namespace:
		return errReservedNamespaceMissing
	case impersonationRefused(err, st):
		return fmt.Errorf("%w: %s", errHubCannotImpersonate, st.Message)
	case apierrors.IsBadRequest(err) && strings.Contains(st.Message, "does not support dry run"):
		return apierrors.NewBadRequest(fmt.Sprintf("%s cannot be validated: %s; templates are validated by a dry run as their author, "+
			"so an administrator of the parent must make that webhook support dry runs (sideEffects: None or NoneOnDryRun)",
			r.what(u.GetName()), st.Message))
	case apierrors.IsNotFound(err) && (st.Details == nil || st.Details.Kind != "namespaces"):
		return apierrors.NewBadRequest(fmt.Sprintf("the parent does not serve %s in version %q, so the template cannot be validated: %s",
			r.groupResource(), u.GroupVersionKind().Version, st.Message))
	}
	if dryRunNamespace != "" && u.GetNamespace() != dryRunNamespace {
		st = renameNamespace(st, dryRunNamespace, u.GetNamespace())
	}
	return &apierrors.StatusError{ErrStatus: st}
}

// impersonationResources are what the parent authorizes an impersonation on.
var impersonationResources = map[string]bool{"users": true, "groups": true, "uids": true, "serviceaccounts": true}

// impersonationRefused is true when the parent refused the hub's
// impersonation of the author, rather than the author's request.
func impersonationRefused(err error, st metav1.Status) bool {
	if !apierrors.IsForbidden(err) || st.Details == nil || !strings.Contains(st.Message, "cannot impersonate") {
		return false
	}
	return impersonationResources[st.Details.Kind] || strings.HasPrefix(st.Details.Kind, "userextras")
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
