package framework

import (
	"context"
	"fmt"

	"github.com/clusternet/clusternet/test/testbed"
)

// AdminUser is the user of every testbed cluster's admin kubeconfig. Its
// group system:masters stays in the parent: the hub never forwards system:
// groups into a child (docs/tunnel.md, "Who the child sees").
const AdminUser = "kubernetes-admin"

// GrantParentAdmin lets the parent's admin act as cluster-admin in child
// through the proxy, the way a child's admin would decide it: a
// ClusterRoleBinding in the child, to the parent user's name.
func GrantParentAdmin(ctx context.Context, child *testbed.Cluster) error {
	return GrantInChild(ctx, child, "clusternet:parent-admin", "cluster-admin", "User", AdminUser)
}

// GrantInChild binds clusterRole in child to a subject (kind User or Group)
// as the parent's proxy forwards it, under the ClusterRoleBinding name.
func GrantInChild(ctx context.Context, child *testbed.Cluster, name, clusterRole, kind, subject string) error {
	binding := fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: %q}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: %q}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: %q, name: %q}]
`, name, clusterRole, kind, subject)
	return kubectl(ctx, child, binding, "apply", "-f", "-")
}
