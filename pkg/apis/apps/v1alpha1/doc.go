// Package v1alpha1 holds the apps.clusternet.io/v1alpha1 API: what to deploy
// (Manifest, HelmChart), where (Subscription), how it differs per cluster
// (Globalization, Localization), and what each cluster receives (Base,
// Description, HelmRelease).
//
// +kubebuilder:object:generate=true
// +groupName=apps.clusternet.io
package v1alpha1
