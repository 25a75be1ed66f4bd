package apps

import (
	"encoding/json"
	"math"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// statusSlack is what the status builder leaves of MaxStatusBytes for
// what writeStatus sets after it: it may swap the Ready condition's
// message for the Scheduled or Rendered condition's, each a summary of at
// most three quotes of aggregate.MaxQuoteLength.
const statusSlack = 4 << 10

// statusBudget is the JSON size the status builder fits a status in. A
// variable only so that a test can reach the budget with a fleet the
// size of a unit test.
var statusBudget = appsv1alpha1.MaxStatusBytes - statusSlack

// cheapListing is the most clusters × feeds entries for which the status
// builder first builds the status listing every cluster: up to there that
// one build (one aggregation, JSON of at most ~700 KB) costs less than the
// two probes the estimate needs, and a fleet of a few dozen clusters of a
// few feeds, which fits, takes one build.
const cheapListing = 2000

// maxStatusBuilds bounds the builds of one status. Each build aggregates
// every Description of the Subscription (10,000 clusters × 20 feeds is
// 200,000 reports) and marshals the result to measure it, so the builder
// estimates rather than searches: the floor, a probe, the estimate, and
// a step or two down when the estimate overshoots (the size is close to
// linear in the clusters listed, not exactly: omitted counts and reasons
// vary). Past this many it keeps the largest listing that fitted.
const maxStatusBuilds = 8

// listing is a status built listing n clusters in every per-cluster list,
// the Ready condition it judges, and its size in JSON.
type listing struct {
	n, size int
	status  appsv1alpha1.SubscriptionStatus
	ready   metav1.Condition
}

// fitListing builds (with build) the status of total clusters listing as
// many as fit budget: all of them when they fit, never fewer than
// MinListedClusters (nor than total, when it is fewer), whatever the
// budget. perCluster is the entries one more cluster listed adds (one per
// feed), which tells whether listing all is cheap to try. The choice
// depends on the sizes of the builds only, so the same inputs list the
// same clusters at every write: the status does not flap.
func fitListing(total, perCluster, budget int, build func(n int) listing) listing {
	builds := 0
	measure := func(n int) listing {
		builds++
		return build(n)
	}
	floor := min(appsv1alpha1.MinListedClusters, total)
	var over *listing // the fewest clusters known not to fit
	if total <= floor || total*perCluster <= cheapListing {
		all := measure(total)
		if total <= floor || all.size <= budget {
			return all
		}
		over = &all
	}
	lo := measure(floor)
	if lo.size > budget {
		return lo
	}
	other := over // the point beside lo the size's slope is measured from
	if other == nil {
		probe := measure(min(2*floor, total))
		if probe.size > budget {
			over = &probe
		} else {
			lo, probe = probe, lo
		}
		other = &probe
	}
	for builds < maxStatusBuilds {
		upper := total
		if over != nil {
			upper = over.n - 1
		}
		n := min(largestFit(lo, *other, budget), upper)
		if n <= lo.n {
			return lo
		}
		b := measure(n)
		if b.size > budget {
			over, other = &b, &b
			continue
		}
		if over == nil {
			prev := lo
			other = &prev
		} else {
			other = over
		}
		lo = b
	}
	return lo
}

// largestFit is the most clusters a status may list within budget by the
// line through the sizes of a (which fits) and b (listing more clusters
// or fewer). A line that does not rise says nothing: no bound.
func largestFit(a, b listing, budget int) int {
	perCluster := float64(b.size-a.size) / float64(b.n-a.n)
	if a.n == b.n || perCluster <= 0 {
		return math.MaxInt
	}
	return a.n + int(float64(budget-a.size)/perCluster)
}

// statusSize is the JSON size of status once ready is set in it, as
// writeStatus will.
func statusSize(status *appsv1alpha1.SubscriptionStatus, ready metav1.Condition) int {
	withReady := *status
	withReady.Conditions = slices.Clone(status.Conditions)
	setCondition(&withReady.Conditions, ready)
	raw, err := json.Marshal(&withReady)
	if err != nil {
		// Plain data always marshals; were it not to, list the fewest.
		return math.MaxInt
	}
	return len(raw)
}
