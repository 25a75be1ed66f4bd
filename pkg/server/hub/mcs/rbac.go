package mcs

import (
	"context"
	"errors"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/mcs"
	"github.com/clusternet/clusternet/pkg/server/hub/approver"
)

const (
	// AgentClusterRole is what an agent needs for multi-cluster services
	// in its dedicated namespace: EndpointSlices (it writes its exports
	// and reads the imports the hub writes there) and the conflicts
	// ConfigMap by name. The hub chart ships it (templates/rbac.yaml); the
	// hub binds it in each dedicated namespace while the gate is on, so
	// it grants nothing outside that namespace.
	AgentClusterRole = "clusternet:mcs-agent"
	// AgentBinding is that RoleBinding's name in each dedicated namespace.
	AgentBinding = mcs.AgentBinding
	// labelBinding marks the bindings this package makes, for RevokeAll.
	labelBinding = "mcs.clusternet.io/agent-binding"
)

// syncBinding binds AgentClusterRole to the agent of the cluster admitted
// into namespace ns.
func (c *Controller) syncBinding(ctx context.Context, ns string) (time.Duration, error) {
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: AgentBinding, Namespace: ns, Labels: map[string]string{
			labelBinding: "true", clusterv1beta1.LabelCreatedBy: "clusternet-hub",
		}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: AgentClusterRole},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: approver.AgentServiceAccount, Namespace: ns}},
	}
	_, err := c.kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) {
		return 0, nil // there already, or the namespace is gone with its cluster
	}
	return 0, err
}

// RevokeAll removes the bindings an earlier run with the gate on made, so
// that turning the gate off (a restart) leaves agents without these rights.
func RevokeAll(ctx context.Context, kube kubernetes.Interface) error {
	list, err := kube.RbacV1().RoleBindings(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: labelBinding + "=true"})
	if err != nil {
		return err
	}
	var errs []error
	for _, rb := range list.Items {
		if err := kube.RbacV1().RoleBindings(rb.Namespace).Delete(ctx, rb.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
