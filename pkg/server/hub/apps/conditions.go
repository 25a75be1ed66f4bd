package apps

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusternet/clusternet/pkg/apps/render"
)

// Condition types of a Subscription (docs/distribution.md lists their reasons).
const (
	// ConditionFeedsResolved: every feed names something the parent serves
	// and that exists (reasons in package feeds).
	ConditionFeedsResolved = "FeedsResolved"
	// ConditionScheduled: the Subscription is bound to clusters, each with its Base.
	ConditionScheduled = "Scheduled"
	// ConditionRendered: every Base rendered into Descriptions (also a Base condition).
	ConditionRendered = "Rendered"
	// ConditionReady: every Description is deployed (phase Success).
	ConditionReady = "Ready"
)

// Condition reasons of this package (the others are in feeds, render and aggregate).
const (
	ReasonResolved               = "Resolved"
	ReasonScheduled              = "Scheduled"
	ReasonNoMatchingClusters     = "NoMatchingClusters"
	ReasonNoRoom                 = "NoRoom"
	ReasonInvalidClusterAffinity = "InvalidClusterAffinity"
	ReasonInvalidBindings        = "InvalidBindings"
	ReasonBaseNameConflict       = "BaseNameConflict"
	// ReasonTruncatedBindings: another scheduler binds the Subscription,
	// and status.bindingClusters is still the truncated list the hub
	// wrote (truncatedBindings).
	ReasonTruncatedBindings = "TruncatedBindings"
	ReasonRendered          = "Rendered"
	ReasonRendering         = "Rendering"
	ReasonFeedsNotResolved  = "FeedsNotResolved"
	ReasonNotScheduled      = "NotScheduled"
	ReasonOverrideFailed    = render.ReasonOverrideFailed
	ReasonRenderFailed      = render.ReasonRenderFailed
)

// setCondition sets c in conds and says whether that changed its status,
// reason or message (the moments worth an event).
func setCondition(conds *[]metav1.Condition, c metav1.Condition) bool {
	old := meta.FindStatusCondition(*conds, c.Type)
	changed := old == nil || old.Status != c.Status || old.Reason != c.Reason || old.Message != c.Message
	meta.SetStatusCondition(conds, c)
	return changed
}
