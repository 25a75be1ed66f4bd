package apps

import (
	"slices"

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

// conditionOrder is the order of a Subscription's conditions: the steps
// of its pipeline, so that the first one not True is where it stopped
// (docs/troubleshooting.md reads them so). Without it the order was that
// of their first write, and a Subscription whose feeds failed at first
// listed Ready before Scheduled for good.
var conditionOrder = map[string]int{ConditionFeedsResolved: 0, ConditionScheduled: 1, ConditionRendered: 2, ConditionReady: 3}

// inOrder is conds in conditionOrder, a copy; conditions of other types
// follow, as they were.
func inOrder(conds []metav1.Condition) []metav1.Condition {
	out := slices.Clone(conds)
	rank := func(c metav1.Condition) int {
		if r, ok := conditionOrder[c.Type]; ok {
			return r
		}
		return len(conditionOrder)
	}
	slices.SortStableFunc(out, func(a, b metav1.Condition) int { return rank(a) - rank(b) })
	return out
}

// setCondition sets c in conds and says whether that changed its status,
// reason or message (the moments worth an event).
func setCondition(conds *[]metav1.Condition, c metav1.Condition) bool {
	old := meta.FindStatusCondition(*conds, c.Type)
	changed := old == nil || old.Status != c.Status || old.Reason != c.Reason || old.Message != c.Message
	meta.SetStatusCondition(conds, c)
	return changed
}
