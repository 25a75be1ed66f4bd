package approver

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	proxiesv1alpha1 "github.com/clusternet/clusternet/pkg/apis/proxies/v1alpha1"
	"github.com/clusternet/clusternet/pkg/registration"
)

// AgentClusterRules are the agent's rights outside its dedicated namespace:
// reading its own registration (where the hub puts its renewed token) and
// opening its own tunnel socket. Nothing else: a compromised child gets no
// more than its own cluster's objects.
func AgentClusterRules(requestName, clusterID string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{clusterv1beta1.GroupName}, Resources: []string{"clusterregistrationrequests"}, Verbs: []string{"get"}, ResourceNames: []string{requestName}},
		// The tunnel is a websocket upgrade of a GET (connect verb get) of
		// sockets/<id>/portforward; the bare socket is where agents before
		// it open theirs (proxiesv1alpha1.TunnelSubresource says why).
		{APIGroups: []string{"proxies.clusternet.io"}, Resources: []string{"sockets", "sockets/" + proxiesv1alpha1.TunnelSubresource}, Verbs: []string{"get"}, ResourceNames: []string{clusterID}},
	}
}

// AgentNamespaceRules are exactly what the agent's loops use in its dedicated
// namespace: its ManagedCluster's status (heartbeat), spec (the sync mode it
// watches, by name) and the node labels it aggregates onto it (patch by name;
// the hub chart's ValidatingAdmissionPolicy clusternet-agent-reports-status-only
// lets an agent's patch change labels under the node-label prefixes and
// nothing else), the Descriptions and HelmReleases it pulls (their finalizers
// and status), the chart pull Secrets the hub copies there for its
// HelmReleases (get by name, never list), and events. No pods, workloads,
// RBAC, impersonation or Secrets listing: a compromised child can neither run
// anything in the parent nor read what it was not handed.
func AgentNamespaceRules(managedCluster string) []rbacv1.PolicyRule {
	apps := "apps.clusternet.io"
	return []rbacv1.PolicyRule{
		// list and watch by name need a metadata.name field selector.
		{APIGroups: []string{clusterv1beta1.GroupName}, Resources: []string{"managedclusters"}, Verbs: []string{"get", "list", "watch", "patch"}, ResourceNames: []string{managedCluster}},
		{APIGroups: []string{clusterv1beta1.GroupName}, Resources: []string{"managedclusters/status"}, Verbs: []string{"get", "update", "patch"}, ResourceNames: []string{managedCluster}},
		{APIGroups: []string{apps}, Resources: []string{"descriptions"}, Verbs: []string{"get", "list", "watch", "patch"}},
		{APIGroups: []string{apps}, Resources: []string{"descriptions/status"}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{apps}, Resources: []string{"helmreleases"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
		{APIGroups: []string{apps}, Resources: []string{"helmreleases/status"}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "update", "patch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "update", "patch"}},
	}
}

// ensureRBAC gives the agent's ServiceAccount its rights, and brings rules
// an earlier version granted (a wildcard Role) down to these. An admin who
// sets the autoupdate annotation to "false" on a role keeps their own rules.
func (c *Controller) ensureRBAC(ctx context.Context, crr *clusterv1beta1.ClusterRegistrationRequest, ns, managedCluster string) error {
	id := string(crr.Spec.ClusterID)
	name := clusterv1beta1.NamePrefix + id
	meta := func(namespace, n string) metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name: n, Namespace: namespace,
			Annotations: map[string]string{clusterv1beta1.AnnotationAutoUpdate: "true"},
			Labels: map[string]string{
				clusterv1beta1.LabelBootstrapping: "rbac-defaults",
				clusterv1beta1.LabelClusterID:     id,
				clusterv1beta1.LabelCreatedBy:     registration.CreatedByHub,
			},
		}
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: AgentServiceAccount, Namespace: ns}}

	sa := &corev1.ServiceAccount{ObjectMeta: meta(ns, AgentServiceAccount)}
	_, err := c.kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// A token that never expires must not outlive the upgrade to bound
	// tokens. Only a ServiceAccount an earlier version made can have one: a
	// token Secret outlives its ServiceAccount only until
	// kube-controller-manager deletes it, and it never authenticates as a
	// new ServiceAccount of the same name (the Secret names the old one's
	// UID). So a new cluster costs the parent no DELETE of nothing, and an
	// existing one a single DELETE per hub process, not one per renewal.
	if apierrors.IsAlreadyExists(err) {
		if _, gone := c.legacyGone.Load(ns); !gone {
			if err := c.kube.CoreV1().Secrets(ns).Delete(ctx, legacyTokenSecret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	c.legacyGone.Store(ns, true)
	clusterRoles := c.kube.RbacV1().ClusterRoles()
	if err := ensureRules(ctx, &rbacv1.ClusterRole{ObjectMeta: meta("", name), Rules: AgentClusterRules(name, id)},
		func(ctx context.Context, r *rbacv1.ClusterRole) (*rbacv1.ClusterRole, error) {
			return clusterRoles.Create(ctx, r, metav1.CreateOptions{})
		},
		func(ctx context.Context) (*rbacv1.ClusterRole, error) {
			return clusterRoles.Get(ctx, name, metav1.GetOptions{})
		},
		func(ctx context.Context, r *rbacv1.ClusterRole) (*rbacv1.ClusterRole, error) {
			return clusterRoles.Update(ctx, r, metav1.UpdateOptions{})
		},
		func(r *rbacv1.ClusterRole) *[]rbacv1.PolicyRule { return &r.Rules }); err != nil {
		return err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: meta("", name),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   subject,
	}
	if _, err := c.kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	role := &rbacv1.Role{ObjectMeta: meta(ns, ManagedClusterRole), Rules: AgentNamespaceRules(managedCluster)}
	delete(role.Labels, clusterv1beta1.LabelClusterID)
	roles := c.kube.RbacV1().Roles(ns)
	if err := ensureRules(ctx, role,
		func(ctx context.Context, r *rbacv1.Role) (*rbacv1.Role, error) {
			return roles.Create(ctx, r, metav1.CreateOptions{})
		},
		func(ctx context.Context) (*rbacv1.Role, error) {
			return roles.Get(ctx, ManagedClusterRole, metav1.GetOptions{})
		},
		func(ctx context.Context, r *rbacv1.Role) (*rbacv1.Role, error) {
			return roles.Update(ctx, r, metav1.UpdateOptions{})
		},
		func(r *rbacv1.Role) *[]rbacv1.PolicyRule { return &r.Rules }); err != nil {
		return err
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: meta(ns, ManagedClusterRole),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: ManagedClusterRole},
		Subjects:   subject,
	}
	if _, err := c.kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// ensureRules creates a role, or sets the rules of the existing one to want's
// unless an admin opted it out of updates.
func ensureRules[T metav1.Object](ctx context.Context, want T,
	create func(context.Context, T) (T, error), get func(context.Context) (T, error), update func(context.Context, T) (T, error),
	rules func(T) *[]rbacv1.PolicyRule) error {
	_, err := create(ctx, want)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	have, err := get(ctx)
	if err != nil {
		return err
	}
	if have.GetAnnotations()[clusterv1beta1.AnnotationAutoUpdate] == "false" || equality.Semantic.DeepEqual(*rules(have), *rules(want)) {
		return nil
	}
	*rules(have) = *rules(want)
	_, err = update(ctx, have)
	return err
}
