// Package v1alpha1 holds the apps.clusternet.io/v1alpha1 API, the kinds that
// say what goes to which child clusters and report how it went. All of them
// live in the parent cluster.
//
// What to deploy:
//
//   - templates: ordinary kinds (Deployment, Service, ...) written through
//     the shadow API (package github.com/clusternet/clusternet/pkg/client/shadow)
//     and stored by the hub as a Manifest each, in namespace
//     clusternet-reserved (see ManifestName);
//   - HelmChart: a chart in an http(s) repository or an OCI registry, which
//     the hub looks up before installing it (status.phase Found or NotFound).
//
// Where it goes: a Subscription lists its feeds (templates and HelmCharts, by
// name or by label) and its subscribers (clusters, chosen by the labels of
// their ManagedClusters, package
// github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1), and how the
// replicas of a workload are shared among them (spec.schedulingStrategy:
// Replication or Dividing).
//
// How it differs per cluster: a Globalization (cluster-scoped) changes a feed
// for the clusters its clusterAffinity selects, a Localization (in one
// cluster's dedicated namespace) for that cluster; both with JSON patches,
// merge patches, or Helm values.
//
// What each cluster receives, written by the hub in the cluster's dedicated
// namespace: a Base per Subscription, a Description per deployer (the
// rendered objects, with status.phase Pending, Success or Failure and a
// reason), and a HelmRelease per chart (Helm's status of the release in the
// child).
//
// Clients: the typed clientset is
// github.com/clusternet/clusternet/pkg/generated/clientset/versioned
// (AppsV1alpha1()), with informers and listers beside it and a fake
// clientset (versioned/fake) for tests. The user guide is docs/distribution.md
// and docs/helm.md in the repository.
//
// +kubebuilder:object:generate=true
// +groupName=apps.clusternet.io
package v1alpha1
