package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName={subs,sub},categories=clusternet
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="CLUSTERS",type=integer,JSONPath=".status.boundClusters",priority=1,description="How many clusters the Subscription is bound to."
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=".status.ready",priority=1,description="Bound clusters with every feed applied and available, of all bound clusters."
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=".metadata.creationTimestamp"

// Subscription says which resources (feeds) go to which clusters (subscribers),
// and how replicas are spread among them.
type Subscription struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SubscriptionSpec   `json:"spec"`
	Status SubscriptionStatus `json:"status,omitempty"`
}

// SchedulingStrategy says whether every matched cluster gets the whole
// application (Replication) or replicas are divided among them (Dividing).
// +kubebuilder:validation:Enum=Replication;Dividing
type SchedulingStrategy string

// The scheduling strategies.
const (
	ReplicaSchedulingStrategy  SchedulingStrategy = "Replication"
	DividingSchedulingStrategy SchedulingStrategy = "Dividing"
)

// DividingType says how Dividing spreads replicas: by the subscribers' static
// weights, or by what each cluster can take right now.
// +kubebuilder:validation:Enum=Static;Dynamic
type DividingType string

// The dividing types.
const (
	StaticReplicaDividingType  DividingType = "Static"
	DynamicReplicaDividingType DividingType = "Dynamic"
)

// DynamicDividingStrategy says how dynamic dividing ranks clusters.
// +kubebuilder:validation:Enum=Spread;Binpack
type DynamicDividingStrategy string

// The dynamic dividing strategies.
const (
	SpreadDividingStrategy  DynamicDividingStrategy = "Spread"
	BinpackDividingStrategy DynamicDividingStrategy = "Binpack"
)

// SubscriptionSpec is the desired distribution.
// +kubebuilder:validation:XValidation:rule="self.schedulingStrategy != 'Dividing' || has(self.dividingScheduling)",message="spec.dividingScheduling is required when spec.schedulingStrategy is Dividing"
// +kubebuilder:validation:XValidation:rule="!has(self.schedulingBySubGroup) || !self.schedulingBySubGroup || self.subscribers.all(s, has(s.subGroupStrategy))",message="spec.subscribers[].subGroupStrategy is required on every subscriber when spec.schedulingBySubGroup is true: set subGroupStrategy.minClusters on each subscriber, or set spec.schedulingBySubGroup to false"
type SubscriptionSpec struct {
	// SchedulerName picks the scheduler that binds this subscription.
	// +kubebuilder:default=default
	// +optional
	SchedulerName string `json:"schedulerName,omitempty"`

	// SchedulingStrategy is Replication (every cluster gets everything) or Dividing.
	// +kubebuilder:default=Replication
	// +optional
	SchedulingStrategy SchedulingStrategy `json:"schedulingStrategy,omitempty"`

	// DividingScheduling configures Dividing.
	// +optional
	DividingScheduling *DividingScheduling `json:"dividingScheduling,omitempty"`

	// SchedulingBySubGroup makes the clusters each subscriber matches (and
	// whose taints are tolerated) one subgroup, as upstream Clusternet does:
	// the scheduler binds subscribers[].subGroupStrategy.minClusters of each
	// subgroup, the best first (clusters already bound before any other),
	// and the union of those is the binding; dividing then splits replicas
	// among them. Every subscriber needs a subGroupStrategy then.
	// +optional
	SchedulingBySubGroup *bool `json:"schedulingBySubGroup,omitempty"`

	// Priority orders subscriptions in the scheduler's queue; higher goes
	// first (unset is 0). With dynamic dividing, a higher one may take the
	// room lower ones hold (PreemptionPolicy).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Priority *int32 `json:"priority,omitempty"`

	// PreemptionPolicy says whether this subscription, when it divides
	// replicas dynamically, may take the room Subscriptions of lower
	// priority hold in a cluster (their replicas then move elsewhere).
	// Unset means PreemptLowerPriority, as upstream Clusternet.
	// +optional
	PreemptionPolicy *PreemptionPolicy `json:"preemptionPolicy,omitempty"`

	// Subscribers select the clusters to deploy to.
	// +kubebuilder:validation:MinItems=1
	// +listType=atomic
	Subscribers []Subscriber `json:"subscribers"`

	// ClusterTolerations let this subscription land on clusters with matching
	// ManagedCluster spec.taints.
	// +listType=atomic
	// +optional
	ClusterTolerations []corev1.Toleration `json:"clusterTolerations,omitempty"`

	// Feeds are the resources to deploy, by name or by label selector.
	// +kubebuilder:validation:MinItems=1
	// +listType=atomic
	Feeds []Feed `json:"feeds"`
}

// PreemptionPolicy says whether a subscription may preempt ones of lower priority.
// +kubebuilder:validation:Enum=PreemptLowerPriority;PreemptNever
type PreemptionPolicy string

// The preemption policies.
const (
	PreemptLowerPriority PreemptionPolicy = "PreemptLowerPriority"
	PreemptNever         PreemptionPolicy = "PreemptNever"
)

// DividingScheduling configures how replicas are divided.
// +kubebuilder:validation:XValidation:rule="self.type != 'Dynamic' || has(self.dynamicDividing)",message="dividingScheduling.dynamicDividing is required when dividingScheduling.type is Dynamic"
type DividingScheduling struct {
	// Type is Static (by subscriber weight) or Dynamic (by cluster capacity).
	// +kubebuilder:default=Static
	// +optional
	Type DividingType `json:"type,omitempty"`

	// DynamicDividing configures Dynamic.
	// +optional
	DynamicDividing *DynamicDividing `json:"dynamicDividing,omitempty"`
}

// DynamicDividing configures dynamic dividing.
// +kubebuilder:validation:XValidation:rule="!has(self.minClusters) || !has(self.maxClusters) || self.minClusters <= self.maxClusters",message="dynamicDividing.minClusters must not exceed dynamicDividing.maxClusters"
type DynamicDividing struct {
	// Strategy is Spread (even out) or Binpack (fill few clusters).
	// +kubebuilder:default=Spread
	// +optional
	Strategy DynamicDividingStrategy `json:"strategy,omitempty"`

	// PreferredClusters are tried first. Each is a label selector over
	// ManagedClusters. Upstream Clusternet gives this field another shape
	// (weighted node selector terms), which is refused here: see
	// docs/api.md, "Conflicts with upstream".
	// +optional
	PreferredClusters []metav1.LabelSelector `json:"preferredClusters,omitempty"`

	// TopologySpreadConstraints spread replicas over topology domains of
	// clusters (upstream Clusternet). Accepted, not acted on yet: the hub
	// warns when it is set.
	// +listType=atomic
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`

	// MinClusters and MaxClusters bound how many clusters get replicas.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MinClusters *int32 `json:"minClusters,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxClusters *int32 `json:"maxClusters,omitempty"`
}

// Subscriber selects clusters by their labels.
type Subscriber struct {
	// ClusterAffinity selects ManagedClusters by label.
	ClusterAffinity *metav1.LabelSelector `json:"clusterAffinity"`

	// Weight is this subscriber's share under static dividing.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Weight int32 `json:"weight,omitempty"`

	// SubGroupStrategy says how many of the clusters this subscriber
	// matches to bind when spec.schedulingBySubGroup is true, and is
	// required then. Without spec.schedulingBySubGroup it is ignored, as
	// upstream Clusternet ignores it, and the Scheduled condition says so.
	// +optional
	SubGroupStrategy *SubGroupStrategy `json:"subGroupStrategy,omitempty"`
}

// SubGroupStrategy is how one subscriber's clusters are picked as a subgroup.
type SubGroupStrategy struct {
	// MinClusters is how many of the subgroup's clusters to bind; 0 binds
	// none of them. More than the subgroup holds binds all of them (as
	// upstream Clusternet does), and the Scheduled condition says so.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MinClusters int32 `json:"minClusters,omitempty"`
}

// Feed names one resource, or selects several of one kind by label.
// +kubebuilder:validation:XValidation:rule="has(self.name) != has(self.feedSelector)",message="a feed sets exactly one of name or feedSelector"
type Feed struct {
	// APIVersion of the resource, as in its manifest (v1, apps/v1, ...).
	// +kubebuilder:validation:MinLength=1
	APIVersion string `json:"apiVersion"`

	// Kind of the resource, as in its manifest.
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`

	// Namespace of the resource; empty for cluster-scoped kinds.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Name of the resource.
	// +kubebuilder:validation:MinLength=1
	// +optional
	Name string `json:"name,omitempty"`

	// FeedSelector selects resources of this kind by label instead of by name.
	// +optional
	FeedSelector *metav1.LabelSelector `json:"feedSelector,omitempty"`
}

// SubscriptionStatus reports where the subscription is bound and how each feed fares.
type SubscriptionStatus struct {
	// BindingClusters are the dedicated-namespace/name of the matched
	// clusters. The hub lists as many of them as fit the status in
	// MaxStatusBytes (all of them in a small or medium fleet, at least
	// MinListedClusters), the first in that order, and counts the rest in
	// bindingClustersOmitted:
	// boundClusters counts them all, and the Bases (one per bound cluster,
	// labelled with the Subscription) name them all. A scheduler named by
	// spec.schedulerName writes the whole list: the hub reads it as written.
	// +optional
	BindingClusters []string `json:"bindingClusters,omitempty"`

	// BindingClustersOmitted is how many bound clusters the hub left out
	// of bindingClusters to fit the status in MaxStatusBytes (replicas and
	// replicasByCluster are about the listed clusters only). While it is set, a
	// scheduler named by spec.schedulerName has not written its own list
	// yet: writing the whole bindingClusters drops it.
	// +kubebuilder:validation:Minimum=0
	// +optional
	BindingClustersOmitted int32 `json:"bindingClustersOmitted,omitempty"`

	// BindingReplicas is upstream Clusternet's status.replicas: per feed
	// key (<apiVersion>/<kind>/[<namespace>/]<name>), the replicas of each
	// cluster of bindingClusters, in that order (so as truncated as
	// bindingClusters: feedStatusSummary sums all clusters' replicas). A scheduler named by
	// spec.schedulerName may write it; BindingReplicasOf derives it from
	// Replicas.
	// +optional
	BindingReplicas map[string][]int32 `json:"replicas,omitempty"`

	// Replicas is the divided replica count per feed key per cluster
	// (<dedicated-namespace>/<name>), for the clusters bindingClusters
	// lists (each Base's apps.clusternet.io/replicas annotation holds its
	// cluster's share). Its JSON name is replicasByCluster:
	// status.replicas has upstream Clusternet's shape (BindingReplicas).
	// +optional
	Replicas map[string]map[string]int32 `json:"replicasByCluster,omitempty"`

	// SpecHashValue is upstream Clusternet's status.specHash: an integer
	// hash of the spec the status was computed for (SpecHashValueOf makes
	// one from a 64-bit hash).
	// +kubebuilder:validation:Minimum=0
	// +optional
	SpecHashValue int64 `json:"specHash,omitempty"`

	// SpecHash is the FNV-64a hash of the spec the status was computed for,
	// in hex. Its JSON name is specHashHex: status.specHash is an integer,
	// as upstream Clusternet has it (SpecHashValue).
	// +optional
	SpecHash string `json:"specHashHex,omitempty"`

	// BoundClusters is how many clusters bindingClusters names: the
	// CLUSTERS column of `kubectl get subscriptions` (a column cannot count
	// a list).
	// +optional
	BoundClusters int32 `json:"boundClusters"`

	// Ready is "<ready>/<bound>": of the bound clusters, how many have every
	// feed applied and available (as aggregatedStatuses reports them), of
	// boundClusters. The READY column of `kubectl get subscriptions`.
	// +optional
	Ready string `json:"ready,omitempty"`

	// DesiredReleases and CompletedReleases count Descriptions to roll out and done.
	// +optional
	DesiredReleases int `json:"desiredReleases,omitempty"`
	// +optional
	CompletedReleases int `json:"completedReleases,omitempty"`

	// AggregatedStatuses reports, per feed, whether it is applied and
	// available: summed over all bound clusters, and per cluster for as
	// many as bindingClusters lists (those where it is not, first).
	// +optional
	AggregatedStatuses []AggregatedStatus `json:"aggregatedStatuses,omitempty"`

	// Conditions explain scheduling and deployment problems, naming the feed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AggregatedStatus is one feed's status across clusters.
type AggregatedStatus struct {
	Feed `json:",inline"`

	// FeedStatusSummary sums the per-cluster statuses of all bound
	// clusters, listed in feedStatusDetails or not.
	// +optional
	FeedStatusSummary FeedStatus `json:"feedStatusSummary,omitempty"`

	// AvailableClusters counts the bound clusters where the feed is
	// applied and available, of all of them.
	// +kubebuilder:validation:Minimum=0
	// +optional
	AvailableClusters int32 `json:"availableClusters"`

	// FeedStatusDetails holds one entry per bound cluster, for as many
	// clusters as bindingClusters lists: the clusters where the feed is not applied and
	// available come first, in bindingClusters' order, then the others.
	// A cluster's Descriptions (<subscription>-generic, -helm in its
	// dedicated namespace) report on every feed there.
	// +optional
	FeedStatusDetails []FeedStatusPerCluster `json:"feedStatusDetails,omitempty"`

	// FeedStatusDetailsOmitted counts the bound clusters feedStatusDetails
	// leaves out.
	// +kubebuilder:validation:Minimum=0
	// +optional
	FeedStatusDetailsOmitted int32 `json:"feedStatusDetailsOmitted,omitempty"`
}

// MaxStatusBytes is the budget of a Subscription's status the hub writes
// (its JSON, conditions included): one entry per cluster per feed passed
// etcd's 1.5 MiB object limit at about 1,000 clusters of 10 feeds. The hub
// lists in every per-cluster list (bindingClusters, replicas,
// replicasByCluster and each feed's feedStatusDetails) the same number of
// clusters, as many as fit the budget: all of them while they fit (a fleet
// of a few dozen clusters and a few feeds sees every cluster), never fewer
// than MinListedClusters. The counts (boundClusters, ready,
// availableClusters) and feedStatusSummary are over all clusters; the
// per-cluster truth is in the Bases and Descriptions, one of each per
// cluster.
const MaxStatusBytes = 64 << 10

// MinListedClusters is the fewest clusters each per-cluster list of the
// status names when the fleet has that many, whatever the budget: the
// largest status of 20 feeds (every feed waiting in every cluster with a
// reason of MaxStatusReasonLength, names of 40 characters) listing 5 is
// 56 KiB, each more cluster costing about 6.5 KiB there.
const MinListedClusters = 5

// MaxStatusReasonLength caps each reason the hub copies from a
// Description into the status (feedStatusDetails[].reason, and each of
// the few a summary quotes): a deployer's message is the child's error,
// of any length, and the Description keeps it whole.
const MaxStatusReasonLength = 128

// FeedStatus is a feed's state in one cluster, or summed over all.
type FeedStatus struct {
	// Applied says the object exists in the child as rendered.
	// +optional
	Applied bool `json:"applied"`
	// Available says a workload's replicas are ready (always true for non-workloads once applied).
	// +optional
	Available bool `json:"available"`
	// Replicas, ReadyReplicas and AvailableReplicas mirror the workload's status.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// +optional
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`
	// Reason says why it is not applied or not available.
	// +optional
	Reason string `json:"reason,omitempty"`

	// ReplicaStatus is a workload's replica status in upstream Clusternet's
	// shape. Accepted, not filled by this hub yet: read replicas,
	// readyReplicas and availableReplicas above.
	// +optional
	ReplicaStatus *ReplicaStatus `json:"replicaStatus,omitempty"`
}

// ReplicaStatus is a workload's replica counts (Deployment, StatefulSet, Job...).
type ReplicaStatus struct {
	// ObservedGeneration is the generation the workload's controller saw.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Replicas is the number of non-terminated pods.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// UpdatedReplicas have the desired template.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas,omitempty"`
	// CurrentReplicas are of the current revision (StatefulSet).
	// +optional
	CurrentReplicas int32 `json:"currentReplicas,omitempty"`
	// ReadyReplicas have a Ready condition.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// AvailableReplicas have been ready for minReadySeconds.
	// +optional
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`
	// UnavailableReplicas are still needed for full capacity.
	// +optional
	UnavailableReplicas int32 `json:"unavailableReplicas,omitempty"`
	// Active, Succeeded and Failed count a Job's pods.
	// +optional
	Active int32 `json:"active,omitempty"`
	// +optional
	Succeeded int32 `json:"succeeded,omitempty"`
	// +optional
	Failed int32 `json:"failed,omitempty"`
}

// FeedStatusPerCluster is a feed's state in one named cluster.
type FeedStatusPerCluster struct {
	FeedStatus `json:",inline"`
	// ClusterID and ClusterName identify the cluster.
	ClusterID   string `json:"clusterId"`
	ClusterName string `json:"clusterName"`
}

// +kubebuilder:object:root=true

// SubscriptionList is a list of Subscription.
type SubscriptionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Subscription `json:"items"`
}

// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,categories=clusternet
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=".metadata.creationTimestamp"

// FeedInventory records, per feed of a Subscription, how many replicas it asks
// for and where they live in the object, so the scheduler can divide them.
type FeedInventory struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec FeedInventorySpec `json:"spec"`
}

// FeedInventorySpec lists the feeds in order.
type FeedInventorySpec struct {
	// +listType=atomic
	Feeds []FeedOrder `json:"feeds"`
}

// FeedOrder is one feed with its replica requirements.
type FeedOrder struct {
	Feed `json:",inline"`

	// DesiredReplicas is the feed's replica count; unset for kinds without replicas.
	// +kubebuilder:validation:Minimum=0
	// +optional
	DesiredReplicas *int32 `json:"desiredReplicas,omitempty"`

	// ReplicaJSONPath points at the replica field, such as /spec/replicas.
	// +optional
	ReplicaJSONPath string `json:"replicaJsonPath,omitempty"`

	// ReplicaRequirements is what one replica needs of a node (upstream
	// Clusternet). Accepted, not written or read by this hub yet: dynamic
	// dividing reads the requests from the template itself.
	// +optional
	ReplicaRequirements *ReplicaRequirements `json:"replicaRequirements,omitempty"`
}

// ReplicaRequirements is what one replica of a workload needs to be scheduled.
type ReplicaRequirements struct {
	// NodeSelector must match a node's labels.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations of the replica.
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// Affinity constraints of the replica.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// Resources the replica requests.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
}

// +kubebuilder:object:root=true

// FeedInventoryList is a list of FeedInventory.
type FeedInventoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FeedInventory `json:"items"`
}
