package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HelmOptions are the chart coordinates and install options shared by
// HelmChart (what to install) and HelmRelease (what is installed in one cluster).
type HelmOptions struct {
	// Repository is an http(s) chart repository URL or an oci:// registry reference.
	// +kubebuilder:validation:Pattern=`^(https?|oci)://.+`
	Repository string `json:"repo"`

	// Chart is the chart's name in the repository.
	// +kubebuilder:validation:MinLength=1
	Chart string `json:"chart"`

	// ChartVersion is the chart version; empty means the latest.
	// +optional
	ChartVersion string `json:"version,omitempty"`

	// TargetNamespace is where the release is installed in each child.
	// +kubebuilder:validation:MinLength=1
	TargetNamespace string `json:"targetNamespace"`

	// CreateNamespace creates TargetNamespace when it is missing.
	// +kubebuilder:default=true
	// +optional
	CreateNamespace *bool `json:"createNamespace,omitempty"`

	// TimeoutSeconds bounds install and upgrade.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=300
	// +optional
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`

	// Wait waits until the release's resources are ready.
	// +optional
	Wait bool `json:"wait,omitempty"`

	// Atomic rolls a failed install or upgrade back.
	// +optional
	Atomic bool `json:"atomic,omitempty"`

	// SkipCRDs does not install the chart's CRDs.
	// +optional
	SkipCRDs bool `json:"skipCRDs,omitempty"`

	// ChartPullSecret names a Secret with username and password keys: the
	// repository's credentials. It is read only from this object's own
	// namespace: chartPullSecret.namespace must be empty or equal to it (a
	// HelmChart naming another namespace is NotFound, saying so).
	// +optional
	ChartPullSecret *SecretReference `json:"chartPullSecret,omitempty"`

	// PlainHTTP talks plain HTTP to an OCI registry.
	// +optional
	PlainHTTP bool `json:"plainHTTP,omitempty"`

	// HistoryLimit caps the revisions kept per release; 0 keeps all (as Helm's
	// --history-max). A pointer, so that 0 is not defaulted to 5.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=5
	// +optional
	HistoryLimit *int32 `json:"historyLimit,omitempty"`

	// The Helm flags below are upstream Clusternet's. Accepted, not acted
	// on yet: the hub warns when one is true, and installs and upgrades as
	// if it were false.

	// UpgradeAtomic rolls a failed upgrade back (Atomic covers install and upgrade here).
	// +optional
	UpgradeAtomic bool `json:"upgradeAtomic,omitempty"`

	// WaitForJobs waits for the release's Jobs to complete too (upstream JSON name waitForJob).
	// +optional
	WaitForJobs bool `json:"waitForJob,omitempty"`

	// DisableHooks skips the chart's hooks.
	// +optional
	DisableHooks bool `json:"disableHooks,omitempty"`

	// Force forces resource updates through a replacement strategy.
	// +optional
	Force bool `json:"force,omitempty"`

	// Replace reuses the name of a deleted release still in the history.
	// +optional
	Replace bool `json:"replace,omitempty"`

	// ReplaceCRDs replaces the chart's CRDs before install and upgrade.
	// +optional
	ReplaceCRDs bool `json:"replaceCRDs,omitempty"`
}

// SecretReference names a Secret.
type SecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace of the Secret: empty or the namespace of the object that
	// refers to it (a Secret of another namespace is refused).
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// HelmChartPhase says whether the chart and version were found in the repository.
// +kubebuilder:validation:Enum=Found;NotFound
type HelmChartPhase string

// The HelmChart phases.
const (
	HelmChartFound    HelmChartPhase = "Found"
	HelmChartNotFound HelmChartPhase = "NotFound"
)

// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=chart,categories=clusternet
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="CHART",type=string,JSONPath=".spec.chart"
// +kubebuilder:printcolumn:name="VERSION",type=string,JSONPath=".spec.version"
// +kubebuilder:printcolumn:name="REPO",type=string,JSONPath=".spec.repo"
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=".metadata.creationTimestamp"

// HelmChart is a chart to install, used as a Subscription feed.
type HelmChart struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   HelmChartSpec   `json:"spec"`
	Status HelmChartStatus `json:"status,omitempty"`
}

// HelmChartSpec is the chart and how to install it.
type HelmChartSpec struct {
	HelmOptions `json:",inline"`
}

// HelmChartStatus says whether the chart exists.
type HelmChartStatus struct {
	// Phase is Found or NotFound.
	// +optional
	Phase HelmChartPhase `json:"phase,omitempty"`
	// Reason says why a chart was not found, with the fix.
	// +optional
	Reason string `json:"reason,omitempty"`
	// ObservedGeneration is the generation of the spec Phase is about: a
	// Found of an earlier spec says nothing of the current one.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// +kubebuilder:object:root=true

// HelmChartList is a list of HelmChart.
type HelmChartList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HelmChart `json:"items"`
}

// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=hr,categories=clusternet
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="CHART",type=string,JSONPath=".spec.chart"
// +kubebuilder:printcolumn:name="VERSION",type=string,JSONPath=".spec.version"
// +kubebuilder:printcolumn:name="REPO",type=string,JSONPath=".spec.repo"
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=".metadata.creationTimestamp"

// HelmRelease is one chart installed in one cluster, in that cluster's
// dedicated namespace.
type HelmRelease struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   HelmReleaseSpec   `json:"spec"`
	Status HelmReleaseStatus `json:"status,omitempty"`
}

// HelmReleaseSpec is the release to install.
type HelmReleaseSpec struct {
	HelmOptions `json:",inline"`

	// ReleaseName is the Helm release name in the child.
	// +kubebuilder:validation:MaxLength=53
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	ReleaseName *string `json:"releaseName,omitempty"`

	// Overrides are the merged Helm values, as JSON.
	// +optional
	Overrides []byte `json:"overrides,omitempty"`
}

// HelmReleaseStatus mirrors Helm's view of the release.
type HelmReleaseStatus struct {
	// Phase is Helm's release status: deployed, failed, pending-install, ...
	// +optional
	Phase string `json:"phase,omitempty"`
	// Version is the release revision.
	// +optional
	Version int `json:"version,omitempty"`
	// Description is Helm's last message about the release.
	// +optional
	Description string `json:"description,omitempty"`
	// Notes are the chart's rendered NOTES.txt.
	// +optional
	Notes string `json:"notes,omitempty"`
	// FirstDeployed and LastDeployed are when the release was first and
	// last deployed, as Helm prints them (upstream Clusternet). Accepted,
	// not filled by this hub's Helm deployer yet.
	// +optional
	FirstDeployed string `json:"firstDeployed,omitempty"`
	// +optional
	LastDeployed string `json:"lastDeployed,omitempty"`
	// ObservedGeneration is the spec generation this status describes: until
	// it reaches metadata.generation the release is not yet installed or
	// upgraded as the spec asks.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// +kubebuilder:object:root=true

// HelmReleaseList is a list of HelmRelease.
type HelmReleaseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HelmRelease `json:"items"`
}
