package v1alpha1_test

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// A Subscription that sends a Namespace and a Deployment template to every
// cluster labelled region=east, the clusters it selects, and the Manifest
// under which the hub stores the Deployment template. The fake clientset
// stands in for the parent; with a real one (versioned.NewForConfig) the
// calls are the same.
func Example() {
	ctx := context.Background()
	cluster := func(ns, name, region string) *clusterv1beta1.ManagedCluster {
		return &clusterv1beta1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, Labels: map[string]string{"region": region},
		}}
	}
	client := fake.NewClientset(
		cluster("clusternet-abcde", "clusternet-cluster-east1", "east"),
		cluster("clusternet-fghij", "clusternet-cluster-west1", "west"),
	)

	sub := &appsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1alpha1.SubscriptionSpec{
			Subscribers: []appsv1alpha1.Subscriber{{
				ClusterAffinity: &metav1.LabelSelector{MatchLabels: map[string]string{"region": "east"}},
			}},
			Feeds: []appsv1alpha1.Feed{
				{APIVersion: "v1", Kind: "Namespace", Name: "web"},
				{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "web", Name: "web"},
			},
		},
	}
	if _, err := client.AppsV1alpha1().Subscriptions("default").Create(ctx, sub, metav1.CreateOptions{}); err != nil {
		panic(err)
	}

	got, err := client.AppsV1alpha1().Subscriptions("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		panic(err)
	}
	selector, err := metav1.LabelSelectorAsSelector(got.Spec.Subscribers[0].ClusterAffinity)
	if err != nil {
		panic(err)
	}
	// The clusters it selects: the ManagedClusters of every namespace whose
	// labels match.
	clusters, err := client.ClustersV1beta1().ManagedClusters(metav1.NamespaceAll).List(ctx,
		metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		panic(err)
	}
	for _, mc := range clusters.Items {
		fmt.Printf("selects %s/%s (%s)\n", mc.Namespace, mc.Name, selector)
	}
	for _, f := range got.Spec.Feeds {
		fmt.Printf("feed: %s %s %s/%s\n", f.APIVersion, f.Kind, f.Namespace, f.Name)
	}
	fmt.Println("template web/web is Manifest clusternet-reserved/" + appsv1alpha1.ManifestName("apps", "Deployment", "web", "web"))
	// Output:
	// selects clusternet-abcde/clusternet-cluster-east1 (region=east)
	// feed: v1 Namespace /web
	// feed: apps/v1 Deployment web/web
	// template web/web is Manifest clusternet-reserved/deployment-web-web-5816ebdf7b8e733c7e53
}
