// Package registration holds what removes a child cluster's registration
// from the parent, through the parent's API alone, so that both the hub
// (cluster-api discovery) and the kubectl plugin (`unjoin`) do it the same
// way without the plugin linking any server package, and how an agent waits
// for the hub's answer (AwaitAnswer) and writes its heartbeats
// (StatusWriter), so that the agent and the scale benchmark's stand-in
// agents cost the parent alike.
package registration

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
)

// CreatedByHub is the clusternet.io/created-by label the hub's approver
// puts on what it makes for a cluster: Deregister deletes only what
// carries it, never a namespace or role of the same name or cluster id
// someone else made.
const CreatedByHub = "clusternet-hub"

// Deregister removes cluster id's registration from the parent, as
// docs/install.md ("Deregister a cluster", steps 3 and 4) does by hand.
// Its ClusterRegistrationRequest goes first, so that the approver makes
// nothing of it again; then its dedicated namespace, which takes the
// ManagedCluster, its Descriptions and the agent's ServiceAccount (and so
// revokes the agent's token at once); then its cluster-wide RBAC. Each is
// deleted by the name or label the approver gave it, and only when it
// carries the approver's label (CreatedByHub); what is gone
// already is fine: Deregister may be called again until it returns nil. It
// reports whether it deleted anything.
func Deregister(ctx context.Context, kube kubernetes.Interface, clusternet versioned.Interface, id string) (bool, error) {
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
	namespaces, err := DedicatedNamespaces(ctx, kube, id)
	if err != nil {
		return deleted, err
	}
	var errs []error
	for _, ns := range namespaces {
		if ns.DeletionTimestamp != nil {
			continue
		}
		if err := ignoreGone(kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})); err != nil {
			errs = append(errs, fmt.Errorf("deleting namespace %s: %w", ns.Name, err))
		}
	}
	bindings, roles := kube.RbacV1().ClusterRoleBindings(), kube.RbacV1().ClusterRoles()
	if err := ignoreGone(deleteIfHubs(ctx, name, bindings.Get, bindings.Delete)); err != nil {
		errs = append(errs, fmt.Errorf("deleting ClusterRoleBinding %s: %w", name, err))
	}
	if err := ignoreGone(deleteIfHubs(ctx, name, roles.Get, roles.Delete)); err != nil {
		errs = append(errs, fmt.Errorf("deleting ClusterRole %s: %w", name, err))
	}
	return deleted, errors.Join(errs...)
}

// deleteIfHubs deletes the object name when the hub made it (and only
// that version of it, by UID); one someone else made counts as gone.
func deleteIfHubs[T metav1.Object](ctx context.Context, name string,
	get func(context.Context, string, metav1.GetOptions) (T, error),
	del func(context.Context, string, metav1.DeleteOptions) error) error {
	obj, err := get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if obj.GetLabels()[clusterv1beta1.LabelCreatedBy] != CreatedByHub {
		return apierrors.NewNotFound(schema.GroupResource{}, name)
	}
	uid := obj.GetUID()
	return del(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
}

// DedicatedNamespaces are cluster id's namespaces in the parent that the
// hub's approver made (terminating ones included): what Deregister
// deletes, and what a caller waits for to be gone.
func DedicatedNamespaces(ctx context.Context, kube kubernetes.Interface, id string) ([]corev1.Namespace, error) {
	list, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{clusterv1beta1.LabelClusterID: id, clusterv1beta1.LabelCreatedBy: CreatedByHub}).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("finding the dedicated namespace of cluster %s: %w", id, err)
	}
	return list.Items, nil
}
