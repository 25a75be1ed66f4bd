package clusterapi

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
)

// deregister removes cluster id's registration from the parent, as
// docs/install.md ("Deregister a cluster", steps 3 and 4) does by hand,
// without the steps that need the agent: the Cluster is being torn down and
// nobody can reach it. Its ClusterRegistrationRequest goes first, so that
// the approver makes nothing of it again; then its dedicated namespace,
// which takes the ManagedCluster, its Descriptions and the agent's
// ServiceAccount (and so revokes the agent's token at once); then its
// cluster-wide RBAC. Each is deleted by the name or label the approver gave
// it, and what is gone already is fine: deregister is called again until it
// returns nil. It reports whether it deleted anything.
func deregister(ctx context.Context, kube kubernetes.Interface, clusternet versioned.Interface, id string) (bool, error) {
	name := clusterv1beta1.NamePrefix + id
	deleted := false
	ignoreGone := func(err error) error {
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			deleted = true
		}
		return err
	}
	if err := ignoreGone(clusternet.ClustersV1beta1().ClusterRegistrationRequests().Delete(ctx, name, metav1.DeleteOptions{})); err != nil {
		return false, fmt.Errorf("deleting ClusterRegistrationRequest %s: %w", name, err)
	}
	namespaces, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{clusterv1beta1.LabelClusterID: id}).String(),
	})
	if err != nil {
		return deleted, fmt.Errorf("finding the dedicated namespace of cluster %s: %w", id, err)
	}
	var errs []error
	for _, ns := range namespaces.Items {
		if ns.DeletionTimestamp != nil {
			continue
		}
		if err := ignoreGone(kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})); err != nil {
			errs = append(errs, fmt.Errorf("deleting namespace %s: %w", ns.Name, err))
		}
	}
	if err := ignoreGone(kube.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})); err != nil {
		errs = append(errs, fmt.Errorf("deleting ClusterRoleBinding %s: %w", name, err))
	}
	if err := ignoreGone(kube.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})); err != nil {
		errs = append(errs, fmt.Errorf("deleting ClusterRole %s: %w", name, err))
	}
	return deleted, errors.Join(errs...)
}
