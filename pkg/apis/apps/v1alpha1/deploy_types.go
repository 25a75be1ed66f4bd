package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,categories=clusternet
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=".metadata.creationTimestamp"

// Base is one Subscription's feeds bound to one cluster, in that cluster's
// dedicated namespace, before overrides are applied.
type Base struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BaseSpec `json:"spec"`
	// Status says whether the Base's Descriptions are rendered from it.
	// +optional
	Status BaseStatus `json:"status,omitempty"`
}

// BaseSpec lists the feeds, resolved to names.
type BaseSpec struct {
	// +listType=atomic
	Feeds []Feed `json:"feeds"`
}

// BaseStatus is the outcome of rendering a Base into Descriptions.
type BaseStatus struct {
	// Conditions: Rendered is True once the Descriptions match the Base, its
	// templates and the overrides in force; False names the feed or override
	// that failed and the fix, while the Descriptions stay as they were.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true

// BaseList is a list of Base.
type BaseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Base `json:"items"`
}

// DescriptionDeployer says what applies a Description: plain objects (Generic)
// or Helm releases (Helm).
// +kubebuilder:validation:Enum=Generic;Helm
type DescriptionDeployer string

// The deployers.
const (
	DescriptionGenericDeployer DescriptionDeployer = "Generic"
	DescriptionHelmDeployer    DescriptionDeployer = "Helm"
)

// DescriptionPhase is where a Description's rollout stands.
// +kubebuilder:validation:Enum=Pending;Success;Failure;Installing;Upgrading;Uninstalling;Superseded;Unknown
type DescriptionPhase string

// The Description phases. This hub's deployers set Pending, Success and
// Failure; the others are upstream Clusternet's, accepted as they are.
const (
	DescriptionPhasePending      DescriptionPhase = "Pending"
	DescriptionPhaseSuccess      DescriptionPhase = "Success"
	DescriptionPhaseFailure      DescriptionPhase = "Failure"
	DescriptionPhaseInstalling   DescriptionPhase = "Installing"
	DescriptionPhaseUpgrading    DescriptionPhase = "Upgrading"
	DescriptionPhaseUninstalling DescriptionPhase = "Uninstalling"
	DescriptionPhaseSuperseded   DescriptionPhase = "Superseded"
	DescriptionPhaseUnknown      DescriptionPhase = "Unknown"
)

// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=desc,categories=clusternet
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="DEPLOYER",type=string,JSONPath=".spec.deployer"
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=".metadata.creationTimestamp"

// Description is the final, overridden set of resources for one cluster.
type Description struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DescriptionSpec   `json:"spec"`
	Status DescriptionStatus `json:"status,omitempty"`
}

// DescriptionSpec holds either raw objects (Generic) or chart references (Helm).
// +kubebuilder:validation:XValidation:rule="self.deployer != 'Generic' || (has(self.raw) && !has(self.charts))",message="a Generic description sets spec.raw and not spec.charts"
// +kubebuilder:validation:XValidation:rule="self.deployer != 'Helm' || (has(self.charts) && !has(self.raw))",message="a Helm description sets spec.charts and not spec.raw"
type DescriptionSpec struct {
	// Deployer is Generic or Helm.
	Deployer DescriptionDeployer `json:"deployer"`

	// Raw holds the rendered objects for the Generic deployer. The hub writes
	// them after validating each against its real type, so the schema keeps them whole.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +listType=atomic
	// +optional
	Raw []runtime.RawExtension `json:"raw,omitempty"`

	// Charts refer to the HelmCharts to install with the Helm deployer.
	// +listType=atomic
	// +optional
	Charts []ChartReference `json:"charts,omitempty"`

	// ChartRaw holds the values overrides for each chart, in Charts' order.
	// +listType=atomic
	// +optional
	ChartRaw [][]byte `json:"chartRaw,omitempty"`
}

// ChartReference names a HelmChart.
type ChartReference struct {
	// +kubebuilder:validation:MinLength=1
	Namespace string `json:"namespace"`
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Options are the HelmChart's spec as the hub rendered this Description
	// (its repository, chart, version, target namespace...). The cluster's
	// HelmRelease is made from them, not from the HelmChart as it is now: a
	// HelmChart edited later (or left pointing at a repository that is down)
	// reaches a cluster only once it is resolved and rendered again, like
	// any other feed. Empty in Descriptions of older hubs.
	// +optional
	Options *HelmOptions `json:"options,omitempty"`
}

// DescriptionStatus is the outcome of deploying a Description.
type DescriptionStatus struct {
	// Phase is Pending, Success or Failure.
	// +optional
	Phase DescriptionPhase `json:"phase,omitempty"`

	// Reason says why a Description failed, naming the object and the fix.
	// +optional
	Reason string `json:"reason,omitempty"`

	// ManifestStatuses report each object's state in the child.
	// +optional
	ManifestStatuses []ManifestStatus `json:"manifestStatuses,omitempty"`

	// ObservedGeneration is the metadata.generation of the spec that Phase,
	// Reason and ManifestStatuses were computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ManifestStatus is one deployed object's state in the child.
type ManifestStatus struct {
	Feed `json:",inline"`
	// +optional
	FeedStatus `json:",inline"`

	// ObservedStatus is the object's own status as found in the child
	// (upstream Clusternet). Accepted, not filled by this hub's deployers
	// yet: read the fields of FeedStatus.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	// +optional
	ObservedStatus *runtime.RawExtension `json:"observedStatus,omitempty"`
}

// +kubebuilder:object:root=true

// DescriptionList is a list of Description.
type DescriptionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Description `json:"items"`
}

// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,categories=clusternet
// +kubebuilder:printcolumn:name="KIND",type=string,JSONPath=".template.kind"
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=".metadata.creationTimestamp"

// Manifest stores one template that `kubectl clusternet apply` wrote through the
// shadow API. Nothing runs it in the parent; Subscriptions select it as a feed.
type Manifest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Template is the object as the user wrote it.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:EmbeddedResource
	Template runtime.RawExtension `json:"template"`
}

// +kubebuilder:object:root=true

// ManifestList is a list of Manifest.
type ManifestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Manifest `json:"items"`
}
