package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// OverridePolicy says when an override reaches Descriptions already rolled out.
// +kubebuilder:validation:Enum=ApplyNow;ApplyLater
type OverridePolicy string

// The override policies.
const (
	// ApplyNow regenerates the matching Descriptions at once.
	ApplyNow OverridePolicy = "ApplyNow"
	// ApplyLater waits for the next change of the Subscription or its feeds.
	ApplyLater OverridePolicy = "ApplyLater"
)

// OverrideType says how an override's value changes an object.
// +kubebuilder:validation:Enum=Helm;JSONPatch;MergePatch;FieldJSONPatch;FieldMergePatch
type OverrideType string

// The override types.
const (
	HelmType            OverrideType = "Helm"
	JSONPatchType       OverrideType = "JSONPatch"
	MergePatchType      OverrideType = "MergePatch"
	FieldJSONPatchType  OverrideType = "FieldJSONPatch"
	FieldMergePatchType OverrideType = "FieldMergePatch"
)

// OverrideConfig is one change to apply.
// +kubebuilder:validation:XValidation:rule="!(self.type in ['FieldJSONPatch', 'FieldMergePatch']) || has(self.fieldPath)",message="fieldPath is required for FieldJSONPatch and FieldMergePatch overrides"
type OverrideConfig struct {
	// Name describes the override, for humans and events.
	// +optional
	Name string `json:"name,omitempty"`

	// Type is Helm (values), JSONPatch, MergePatch, FieldJSONPatch or FieldMergePatch.
	Type OverrideType `json:"type"`

	// Value is the patch, or Helm values, as JSON or YAML text.
	// +kubebuilder:validation:MinLength=1
	Value string `json:"value"`

	// FieldPath is the field a Field* override patches, such as /data/config.yaml.
	// +optional
	FieldPath string `json:"fieldPath,omitempty"`

	// FieldFormat is the format of the field's text for Field* overrides.
	// +kubebuilder:validation:Enum=JSON;YAML
	// +kubebuilder:default=YAML
	// +optional
	FieldFormat string `json:"fieldFormat,omitempty"`

	// OverrideChart makes a Helm override patch the HelmChart itself, for
	// the clusters it selects, rather than its values (upstream
	// Clusternet): the value is a merge patch such as
	// {"spec": {"version": "0.2.0"}} that may change spec.repo, version,
	// createNamespace, timeoutSeconds, wait, atomic, skipCRDs, plainHTTP and
	// historyLimit, never spec.chart, targetNamespace or chartPullSecret, nor
	// spec.repo or plainHTTP of a HelmChart with a chartPullSecret. Only with
	// type Helm, on HelmChart feeds.
	// +optional
	OverrideChart bool `json:"overrideChart,omitempty"`
}

// OverrideSpec is shared by Localization and Globalization.
type OverrideSpec struct {
	// Priority orders overrides: lower numbers apply first, so higher ones win.
	// A pointer, so an explicit 0 is not mistaken for "unset" and defaulted to 500.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +kubebuilder:default=500
	// +optional
	Priority *int32 `json:"priority,omitempty"`

	// OverridePolicy is ApplyNow or ApplyLater.
	// +kubebuilder:default=ApplyLater
	// +optional
	OverridePolicy OverridePolicy `json:"overridePolicy,omitempty"`

	// Feed is the resource the overrides apply to.
	Feed Feed `json:"feed"`

	// Overrides apply in order.
	// +kubebuilder:validation:MinItems=1
	// +listType=atomic
	Overrides []OverrideConfig `json:"overrides"`
}

// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=loc,categories=clusternet
// +kubebuilder:printcolumn:name="PRIORITY",type=integer,JSONPath=".spec.priority"
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=".metadata.creationTimestamp"

// Localization overrides a feed for the one cluster whose dedicated namespace
// holds it.
type Localization struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec LocalizationSpec `json:"spec"`
}

// LocalizationSpec is an override for one cluster.
type LocalizationSpec struct {
	OverrideSpec `json:",inline"`
}

// +kubebuilder:object:root=true

// LocalizationList is a list of Localization.
type LocalizationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Localization `json:"items"`
}

// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=glob,categories=clusternet
// +kubebuilder:printcolumn:name="PRIORITY",type=integer,JSONPath=".spec.priority"
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=".metadata.creationTimestamp"

// Globalization overrides a feed for every cluster, or those its
// clusterAffinity selects. Globalizations apply before Localizations.
type Globalization struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec GlobalizationSpec `json:"spec"`
}

// GlobalizationSpec is an override for many clusters.
type GlobalizationSpec struct {
	OverrideSpec `json:",inline"`

	// ClusterAffinity limits the override to the clusters it selects; unset means all.
	// +optional
	ClusterAffinity *metav1.LabelSelector `json:"clusterAffinity,omitempty"`
}

// +kubebuilder:object:root=true

// GlobalizationList is a list of Globalization.
type GlobalizationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Globalization `json:"items"`
}
