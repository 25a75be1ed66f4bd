package mcs

import (
	"context"
	"errors"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/kubernetes"

	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/mcs"
)

// CleanUp undoes, with the gate off (one sweep at start), what an earlier
// run with the gate on left in the parent: the agents' RoleBindings
// (RevokeAll), and in every approved dedicated namespace the exported and
// imported slices and the conflicts ConfigMap. Nothing outside dedicated
// namespaces is touched: a tenant's objects of those names are not the hub's.
func CleanUp(ctx context.Context, kube kubernetes.Interface, clusternet versioned.Interface) error {
	errs := []error{RevokeAll(ctx, kube)}
	crrs, err := clusternet.ClustersV1beta1().ClusterRegistrationRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	managed, err := labels.NewRequirement(discoveryv1.LabelManagedBy, selection.In, []string{mcs.ManagedByExport, mcs.ManagedByImport})
	if err != nil {
		return err
	}
	sel := labels.NewSelector().Add(*managed).String()
	for i := range crrs.Items {
		if !approved(&crrs.Items[i]) {
			continue
		}
		ns := crrs.Items[i].Status.DedicatedNamespace
		errs = append(errs, mcs.RemoveSlices(ctx, kube.DiscoveryV1(), ns, sel))
		errs = append(errs, ignoreNotFound(kube.CoreV1().ConfigMaps(ns).Delete(ctx, mcs.ConflictsConfigMap, metav1.DeleteOptions{})))
	}
	return errors.Join(errs...)
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
