package cli

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
)

// subscriptionReader reads one Subscription and what was made for it from
// the parent, with the caller's own credentials. Bases and Descriptions live
// in the clusters' dedicated namespaces: they are listed in all namespaces
// at once when the caller may, and otherwise namespace by namespace, so
// read access to the namespaces involved is enough.
type subscriptionReader struct {
	client          versioned.Interface
	namespace, name string
}

// ownedSelector selects what the hub made for a Subscription of this
// namespace and name (the uid is checked by ownedBy: a Subscription
// deleted and created again under the same name gets a new one).
func (r subscriptionReader) ownedSelector() string {
	return labels.Set{
		appsv1alpha1.LabelSubscriptionName:      r.name,
		appsv1alpha1.LabelSubscriptionNamespace: r.namespace,
	}.String()
}

// getSubscription reads the Subscription; a missing one is an error
// naming it and its namespace.
func (r subscriptionReader) getSubscription(ctx context.Context) (*appsv1alpha1.Subscription, error) {
	sub, err := r.client.AppsV1alpha1().Subscriptions(r.namespace).Get(ctx, r.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("subscription %q not found in namespace %q: list them with `kubectl clusternet get subs -n %s`, or pick another namespace with -n",
			r.name, r.namespace, r.namespace)
	case err != nil:
		return nil, explainRead("get", "subscriptions", r.namespace, "", err)
	}
	return sub, nil
}

// read lists the Subscription, its Bases and its Descriptions once.
func (r subscriptionReader) read(ctx context.Context) (subscriptionData, error) {
	sub, err := r.getSubscription(ctx)
	if err != nil {
		return subscriptionData{}, err
	}
	return r.readOwned(ctx, sub)
}

// readOwned lists the Bases and Descriptions made for sub.
func (r subscriptionReader) readOwned(ctx context.Context, sub *appsv1alpha1.Subscription) (subscriptionData, error) {
	clusters := boundClusters(sub)
	opts := metav1.ListOptions{LabelSelector: r.ownedSelector()}
	bases, err := listEverywhere(ctx, "bases", clusters, func(ctx context.Context, ns string) ([]*appsv1alpha1.Base, error) {
		list, err := r.client.AppsV1alpha1().Bases(ns).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		return pointers(list.Items), nil
	})
	if err != nil {
		return subscriptionData{}, err
	}
	descs, err := listEverywhere(ctx, "descriptions", clusters, func(ctx context.Context, ns string) ([]*appsv1alpha1.Description, error) {
		list, err := r.client.AppsV1alpha1().Descriptions(ns).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		return pointers(list.Items), nil
	})
	if err != nil {
		return subscriptionData{}, err
	}
	names, err := r.clusterNames(ctx, sub)
	if err != nil {
		return subscriptionData{}, err
	}
	return subscriptionData{Sub: sub, Bases: bases, Descriptions: descs, ClusterNames: names}, nil
}

// clusterNames are the ManagedClusters' names by dedicated namespace, read
// only when sub's status.bindingClusters is truncated: the Bases of the
// clusters it leaves out do not name them. A caller who may not list
// ManagedClusters sees those clusters by their dedicated namespace.
func (r subscriptionReader) clusterNames(ctx context.Context, sub *appsv1alpha1.Subscription) (map[string]string, error) {
	if sub.Status.BindingClustersOmitted == 0 {
		return nil, nil
	}
	list, err := r.client.ClustersV1beta1().ManagedClusters(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("listing the parent's ManagedClusters to name the clusters status.bindingClusters of Subscription %s/%s leaves out: %w", sub.Namespace, sub.Name, err)
	}
	out := make(map[string]string, len(list.Items))
	for _, m := range list.Items {
		out[m.Namespace] = m.Name
	}
	return out, nil
}

func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// listEverywhere lists resource in all namespaces, or, when the caller may
// not, in the dedicated namespace of each cluster.
func listEverywhere[T any](ctx context.Context, resource string, clusters []clusterProgress, list func(context.Context, string) ([]T, error)) ([]T, error) {
	all, err := list(ctx, metav1.NamespaceAll)
	switch {
	case err == nil:
		return all, nil
	case !apierrors.IsForbidden(err):
		return nil, explainRead("list", resource, metav1.NamespaceAll, "", err)
	}
	var out []T
	for _, c := range clusters {
		items, err := list(ctx, c.Namespace)
		if err != nil {
			return nil, explainRead("list", resource, c.Namespace, c.Name, err)
		}
		out = append(out, items...)
	}
	return out, nil
}

// mayListEverywhere says whether the caller may list resource in all
// namespaces (a Forbidden answer says no; other errors are errors).
func mayListEverywhere(ctx context.Context, resource string, list func(context.Context, string, metav1.ListOptions) error) (bool, error) {
	err := list(ctx, metav1.NamespaceAll, metav1.ListOptions{Limit: 1})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsForbidden(err):
		return false, nil
	default:
		return false, explainRead("list", resource, metav1.NamespaceAll, "", err)
	}
}

// explainRead turns a failed read into what the caller lacks and where:
// resource (of Clusternet's apps group) in namespace ("" for all
// namespaces), the dedicated namespace of cluster when that is set.
func explainRead(verb, resource, namespace, cluster string, err error) error {
	where := "in all namespaces"
	canI := fmt.Sprintf("kubectl auth can-i %s %s.%s -A", verb, resource, appsv1alpha1.GroupName)
	if namespace != "" {
		where = fmt.Sprintf("in namespace %q", namespace)
		canI = fmt.Sprintf("kubectl auth can-i %s %s.%s -n %s", verb, resource, appsv1alpha1.GroupName, namespace)
	}
	if cluster != "" {
		where += fmt.Sprintf(" (the dedicated namespace of cluster %s)", cluster)
	}
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("you may not %s %s.%s %s of the parent: ask a parent admin for get, list and watch on them there (check with `%s`): %w",
			verb, resource, appsv1alpha1.GroupName, where, canI, err)
	}
	return fmt.Errorf("reading %s.%s %s of the parent: %w", resource, appsv1alpha1.GroupName, where, err)
}
