package shadow

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// authorizeRealKind checks that the caller may do verb on the real kind the
// template stands for, in the template's namespace in the parent: a
// template of a Secret needs the permissions a Secret needs. The parent
// has already authorized the request on group shadow. a is nil when the
// hub runs with --shadow-authorize-real-kind=false. name is what RBAC sees
// (none for create and collections); the error names objectName.
func (r *resource) authorizeRealKind(ctx context.Context, a authorizer.UnconditionalAuthorizer, verb, subresource, namespace, name, objectName string) error {
	if a == nil {
		return nil
	}
	user, ok := request.UserFrom(ctx)
	if !ok {
		return apierrors.NewUnauthorized("no user on the request")
	}
	attrs := authorizer.AttributesRecord{
		User:            user,
		Verb:            verb,
		Namespace:       namespace,
		APIGroup:        r.gvr.Group,
		APIVersion:      r.gvr.Version,
		Resource:        r.gvr.Resource,
		Subresource:     subresource,
		Name:            name,
		ResourceRequest: true,
	}
	decision, reason, err := a.Authorize(ctx, attrs)
	if decision == authorizer.DecisionAllow {
		return nil
	}
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("authorizing %s on %s in the parent: %w", verb, r.groupResource(), err))
	}
	what := r.groupResource().String()
	if subresource != "" {
		what += "/" + subresource
	}
	where := "at cluster scope"
	if namespace != "" {
		where = fmt.Sprintf("in namespace %q", namespace)
	}
	msg := fmt.Sprintf("a template needs the permission its real object needs: user %q cannot %s %s %s in the parent; "+
		"ask for that permission (or run the hub with --shadow-authorize-real-kind=false)", user.GetName(), verb, what, where)
	if reason != "" {
		msg += ": " + reason
	}
	return apierrors.NewForbidden(r.groupResource(), objectName, fmt.Errorf("%s", msg))
}
