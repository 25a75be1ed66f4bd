package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ClusterType says where a child cluster runs and who provisioned it.
// +kubebuilder:validation:Enum=EdgeClusterSelfProvisioned;EdgeCluster;CloudCluster;SelfProvisioned
type ClusterType string

// The cluster types a child may report.
const (
	EdgeClusterSelfProvisioned ClusterType = "EdgeClusterSelfProvisioned"
	EdgeCluster                ClusterType = "EdgeCluster"
	CloudCluster               ClusterType = "CloudCluster"
	SelfProvisioned            ClusterType = "SelfProvisioned"
)

// ClusterSyncMode says who applies applications to a child: the hub (Push),
// the agent (Pull), or either, switched by the agent's AppPusher gate (Dual).
// +kubebuilder:validation:Enum=Push;Pull;Dual
type ClusterSyncMode string

// The sync modes of upstream Clusternet's --cluster-sync-mode flag.
const (
	PushSyncMode ClusterSyncMode = "Push"
	PullSyncMode ClusterSyncMode = "Pull"
	DualSyncMode ClusterSyncMode = "Dual"
)

// ApprovedResult is the outcome of a registration request.
// +kubebuilder:validation:Enum=Pending;Approved;Denied;Failed
type ApprovedResult string

// The registration outcomes. This hub sets Pending, Approved and Denied;
// Failed is upstream Clusternet's, accepted as it is.
const (
	RequestPending  ApprovedResult = "Pending"
	RequestApproved ApprovedResult = "Approved"
	RequestDenied   ApprovedResult = "Denied"
	RequestFailed   ApprovedResult = "Failed"
)

// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=clsrr,categories=clusternet
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="CLUSTER ID",type=string,JSONPath=".spec.clusterId"
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=".status.result"
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=".metadata.creationTimestamp"

// ClusterRegistrationRequest is what an agent creates in the parent to ask that
// its cluster be managed. The hub answers in status with scoped credentials.
type ClusterRegistrationRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterRegistrationRequestSpec   `json:"spec"`
	Status ClusterRegistrationRequestStatus `json:"status,omitempty"`
}

// ClusterRegistrationRequestSpec is what the child says about itself.
type ClusterRegistrationRequestSpec struct {
	// ClusterID is the child's stable identity, kept by the agent across restarts.
	// +kubebuilder:validation:Format=uuid
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.clusterId is immutable"
	ClusterID types.UID `json:"clusterId"`

	// ClusterType says where the child runs.
	// +kubebuilder:default=EdgeClusterSelfProvisioned
	// +optional
	ClusterType ClusterType `json:"clusterType,omitempty"`

	// ClusterName is the ManagedCluster name the child asks for.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	ClusterName string `json:"clusterName,omitempty"`

	// ClusterNamespace asks for a specific dedicated namespace; empty lets the hub choose.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	ClusterNamespace string `json:"clusterNamespace,omitempty"`

	// SyncMode is the agent's --cluster-sync-mode.
	// +kubebuilder:default=Dual
	// +optional
	SyncMode ClusterSyncMode `json:"syncMode,omitempty"`

	// ClusterLabels are copied onto the ManagedCluster, for subscribers to select on.
	// +optional
	ClusterLabels map[string]string `json:"clusterLabels,omitempty"`

	// PublicKey is a PEM X25519 public key (PKIX) the agent generated and keeps
	// in its own cluster. The hub seals the credentials it hands out to this
	// key (status.sealedToken), so that no other holder of the bootstrap
	// token, which may read this request, can use them. Not in upstream
	// Clusternet: a request without it is denied.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	PublicKey []byte `json:"publicKey,omitempty"`
}

// ClusterRegistrationRequestStatus is the hub's answer.
type ClusterRegistrationRequestStatus struct {
	// Result is Pending until the hub approves or denies the request.
	// +optional
	Result *ApprovedResult `json:"result,omitempty"`

	// ErrorMessage says why a request was denied or could not be approved.
	// +optional
	ErrorMessage string `json:"errorMessage,omitempty"`

	// Token is upstream Clusternet's plain ServiceAccount token. This hub
	// never fills it: anyone holding the bootstrap token may read this
	// request, so the token is in SealedToken instead.
	// +optional
	Token []byte `json:"token,omitempty"`

	// SealedToken is a bound, expiring ServiceAccount token scoped to this
	// cluster's objects in the parent, sealed to spec.publicKey (package
	// pkg/seal, with the request's name as context). The hub renews it
	// before it expires; the agent reads the renewed one with its current
	// token.
	// +optional
	SealedToken []byte `json:"sealedToken,omitempty"`

	// TokenExpirationTimestamp is when the token in SealedToken expires.
	// +optional
	TokenExpirationTimestamp *metav1.Time `json:"tokenExpirationTimestamp,omitempty"`

	// CACertificate is the parent apiserver's CA bundle, to verify it with.
	// +optional
	CACertificate []byte `json:"caCertificate,omitempty"`

	// DedicatedNamespace holds this cluster's ManagedCluster and its workloads.
	// +optional
	DedicatedNamespace string `json:"dedicatedNamespace,omitempty"`

	// ManagedClusterName is the name of the ManagedCluster made for this request.
	// +optional
	ManagedClusterName string `json:"managedClusterName,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterRegistrationRequestList is a list of ClusterRegistrationRequest.
type ClusterRegistrationRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterRegistrationRequest `json:"items"`
}

// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=mcls,categories=clusternet
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="CLUSTER ID",type=string,JSONPath=".spec.clusterId"
// +kubebuilder:printcolumn:name="CLUSTER TYPE",type=string,JSONPath=".spec.clusterType",priority=1
// +kubebuilder:printcolumn:name="SYNC MODE",type=string,JSONPath=".spec.syncMode"
// +kubebuilder:printcolumn:name="KUBERNETES",type=string,JSONPath=".status.k8sVersion"
// +kubebuilder:printcolumn:name="READYZ",type=boolean,JSONPath=".status.readyz"
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=".metadata.creationTimestamp"

// ManagedCluster is a child cluster as the parent sees it: made by the hub when
// a registration is approved, kept up to date by the agent's heartbeats.
type ManagedCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ManagedClusterSpec   `json:"spec"`
	Status ManagedClusterStatus `json:"status,omitempty"`
}

// ManagedClusterSpec is what the parent decides about a child.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.clusterInitBaseName) || has(self.clusterInitBaseName)",message="spec.clusterInitBaseName is required once set"
type ManagedClusterSpec struct {
	// ClusterID is the child's stable identity.
	// +kubebuilder:validation:Format=uuid
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.clusterId is immutable"
	ClusterID types.UID `json:"clusterId"`

	// ClusterType says where the child runs.
	// +kubebuilder:default=EdgeClusterSelfProvisioned
	// +optional
	ClusterType ClusterType `json:"clusterType,omitempty"`

	// SyncMode says who applies applications to the child.
	// +kubebuilder:default=Dual
	// +optional
	SyncMode ClusterSyncMode `json:"syncMode,omitempty"`

	// Taints keep subscriptions off this cluster unless they tolerate them.
	// +optional
	Taints []corev1.Taint `json:"taints,omitempty"`

	// ClusterInitBaseName names a Base applied to the cluster before any
	// other (upstream Clusternet's cluster initialization). Accepted, not
	// acted on yet: the hub warns when it is set.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.clusterInitBaseName is immutable"
	// +optional
	ClusterInitBaseName string `json:"clusterInitBaseName,omitempty"`
}

// ManagedClusterStatus is what the agent reports at each heartbeat.
type ManagedClusterStatus struct {
	// LastObservedTime is when the agent last reported.
	// +optional
	LastObservedTime metav1.Time `json:"lastObservedTime,omitempty"`

	// K8sVersion is the child apiserver's git version.
	// +optional
	K8sVersion string `json:"k8sVersion,omitempty"`

	// Platform is the child apiserver's os/arch.
	// +optional
	Platform string `json:"platform,omitempty"`

	// APIServerURL is the child apiserver address the agent reaches.
	// +optional
	APIServerURL string `json:"apiserverURL,omitempty"`

	// Healthz, Livez and Readyz are the child apiserver's health checks.
	// +optional
	Healthz bool `json:"healthz"`
	// +optional
	Livez bool `json:"livez"`
	// +optional
	Readyz bool `json:"readyz"`

	// AppPusher says whether the agent lets the hub push applications to it.
	// +optional
	AppPusher bool `json:"appPusher"`

	// UseSocket says whether the agent holds a tunnel to the hub right now.
	// +optional
	UseSocket bool `json:"useSocket"`

	// AgentVersion is the version of the agent that reported.
	// +optional
	AgentVersion string `json:"agentVersion,omitempty"`

	// HeartbeatFrequencySeconds is the agent's --cluster-status-update-frequency;
	// the hub marks the cluster Ready=Unknown after three missed heartbeats.
	// +kubebuilder:validation:Minimum=1
	// +optional
	HeartbeatFrequencySeconds *int64 `json:"heartbeatFrequencySeconds,omitempty"`

	// ClusterCIDR and ServiceCIDR are the child's network ranges, when known.
	// +optional
	ClusterCIDR string `json:"clusterCIDR,omitempty"`
	// +optional
	ServiceCIDR string `json:"serviceCIDR,omitempty"`

	// Capacity and Allocatable sum the child's ready nodes.
	// +optional
	Capacity corev1.ResourceList `json:"capacity,omitempty"`
	// +optional
	Allocatable corev1.ResourceList `json:"allocatable,omitempty"`

	// Available is what the child can still take: per resource, each ready,
	// schedulable node's allocatable minus what its non-terminated pods
	// request, summed. Reported only by an agent whose Predictor gate is on
	// (then predictorEnabled is true); dynamic dividing then places new
	// replicas by it instead of by allocatable. Not upstream Clusternet's:
	// its predictor answers per request instead.
	// +optional
	Available corev1.ResourceList `json:"available,omitempty"`

	// NodeStatistics counts the child's nodes by readiness.
	// +optional
	NodeStatistics NodeStatistics `json:"nodeStatistics,omitempty"`

	// PodStatistics counts the child's pods.
	// +optional
	PodStatistics PodStatistics `json:"podStatistics,omitempty"`

	// Conditions carry Ready (and later ones) in the usual Kubernetes shape.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// The fields below are upstream Clusternet's. Accepted, not filled by
	// this agent, nor read by this hub, except predictorEnabled.

	// ResourceUsage is the CPU and memory in use in the child.
	// +optional
	ResourceUsage *ResourceUsage `json:"resourceUsage,omitempty"`

	// KubeQPS and KubeBurst are the client rate limits a deployer should
	// use towards the child.
	// +optional
	KubeQPS float32 `json:"kubeQPS,omitempty"`
	// +optional
	KubeBurst int32 `json:"kubeBurst,omitempty"`

	// PredictorEnabled says the agent's Predictor gate is on: it reports
	// available at each heartbeat (with no available, the child takes no
	// new replicas).
	// +optional
	PredictorEnabled bool `json:"predictorEnabled,omitempty"`
	// PredictorAddress and PredictorDirectAccess say where upstream
	// Clusternet's scheduler calls the child's predictor. This hub calls no
	// address an agent reports (docs/api.md): accepted, not filled, not read.
	// +optional
	PredictorAddress string `json:"predictorAddress,omitempty"`
	// +optional
	PredictorDirectAccess bool `json:"predictorDirectAccess,omitempty"`
}

// ResourceUsage is how much CPU and memory a cluster's workloads use.
type ResourceUsage struct {
	// CPUUsage is the CPU in use, Kubernetes' reservations excluded.
	// +optional
	CPUUsage *resource.Quantity `json:"cpuUsage,omitempty"`
	// MemoryUsage is the memory in use, Kubernetes' reservations excluded.
	// +optional
	MemoryUsage *resource.Quantity `json:"memoryUsage,omitempty"`
}

// NodeStatistics counts nodes by their Ready condition.
type NodeStatistics struct {
	// +kubebuilder:validation:Minimum=0
	// +optional
	ReadyNodes int32 `json:"readyNodes,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	NotReadyNodes int32 `json:"notReadyNodes,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	UnknownNodes int32 `json:"unknownNodes,omitempty"`
	// LostNodes are nodes whose Ready condition is missing altogether.
	// +kubebuilder:validation:Minimum=0
	// +optional
	LostNodes int32 `json:"lostNodes,omitempty"`
}

// PodStatistics counts pods.
type PodStatistics struct {
	// +kubebuilder:validation:Minimum=0
	// +optional
	RunningPods int32 `json:"runningPods,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	TotalPods int32 `json:"totalPods,omitempty"`
}

// ClusterReady is the condition type the hub keeps from heartbeats.
const ClusterReady = "Ready"

// +kubebuilder:object:root=true

// ManagedClusterList is a list of ManagedCluster.
type ManagedClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ManagedCluster `json:"items"`
}
