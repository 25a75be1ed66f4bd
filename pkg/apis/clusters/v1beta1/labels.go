package v1beta1

// Labels and annotations that tie the objects of one child cluster together, as
// upstream Clusternet's README shows them; selectors and RBAC rely on the exact keys.
const (
	LabelClusterID       = "clusters.clusternet.io/cluster-id"
	LabelClusterName     = "clusters.clusternet.io/cluster-name"
	LabelRegisteredBy    = "clusters.clusternet.io/registered-by"
	LabelBootstrapping   = "clusters.clusternet.io/bootstrapping"
	LabelCreatedBy       = "clusternet.io/created-by"
	AnnotationAutoUpdate = "clusternet.io/autoupdate"

	// NamePrefix starts every per-cluster name the hub creates (CRR, ClusterRole,
	// dedicated namespace).
	NamePrefix = "clusternet-"
)
