package apps

import (
	"encoding/json"
	"math"
	"math/bits"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/server/hub/apps/aggregate"
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

// secantBuilds bounds the builds of the estimate: listing all (when cheap),
// the floor, a probe and secant steps, each through two sizes measured
// (the size is close to linear in the clusters listed, not exactly:
// omitted counts and reasons vary, and the clusters not available, listed
// first, carry longer details than the others). On sizes that near linear
// the estimate lands next to the largest fit within a few builds; past
// this many it has met sizes it does not model well, and bisection is the
// surer step.
const secantBuilds = 8

// maxStatusBuilds bounds the builds of one status of total clusters
// (fitListing). They are cheap: the Descriptions are aggregated once per
// status and each build cuts a listing from that aggregation and marshals
// at most about twice the budget (summedStatusFrom). Finding the largest
// fit exactly costs, past the estimate, at most one doubling per bit of
// total (only when no listing has overflowed yet) and one halving of the
// gap per bit: secantBuilds + 2 × log2(total). It is a bound the search
// meets by construction, not a cut-off: a search cut short would list
// fewer clusters than fit, and then the listing would depend on how the
// search went (from which hint), not on the sizes alone.
func maxStatusBuilds(total int) int {
	return secantBuilds + 2*bits.Len(uint(max(total, 0)))
}

// cheapToListAll says the status builder first tries listing all total
// clusters (cheapListing).
func cheapToListAll(total, perCluster int) bool {
	return total*perCluster <= cheapListing
}

// listing is a status built listing n clusters in every per-cluster list,
// the Ready condition it judges, and its size in JSON.
type listing struct {
	n, size int
	status  appsv1alpha1.SubscriptionStatus
	ready   metav1.Condition
}

// fitListing builds (with build) the status of total clusters listing the
// most that fit budget: all of them when they fit, never fewer than
// MinListedClusters (nor than total, when it is fewer), whatever the
// budget. perCluster is the entries one more cluster listed adds (one per
// feed), which tells whether listing all is cheap to try.
//
// The answer is the largest n whose build fits, found exactly, so it
// depends on the sizes only: the same inputs list the same clusters at
// every write, on every replica of the hub, whatever hint a search started
// from (fitListingFrom), and the status does not flap. The search rests
// on sizes growing with n (setListed): one more cluster listed adds to each
// feed's feedStatusDetails an entry of at least minDetailBytes (67 bytes)
// and to bindingClusters its key; the omitted counts lose at most a digit
// or, at the last cluster, their fields (29 bytes a feed, 27 for
// bindingClustersOmitted); the conditions and counts do not depend on n.
// With at least one feed (spec.feeds has MinItems 1) each cluster adds
// more than it removes (TestStatusSizeGrowsWithListing).
func fitListing(total, perCluster, budget int, build func(n int) listing) listing {
	builds := 0
	measure := func(n int) listing {
		builds++
		return build(n)
	}
	floor := min(appsv1alpha1.MinListedClusters, total)
	// over is the fewest clusters known not to fit; total+1 (never built)
	// until a listing overflows: there is no more to list.
	over := listing{n: total + 1}
	if total <= floor || cheapToListAll(total, perCluster) {
		all := measure(total)
		if total <= floor || all.size <= budget {
			return all
		}
		over = all
	}
	fit := measure(floor) // the most clusters known to fit
	if fit.size > budget {
		return fit
	}
	overflowed := func() bool { return over.n <= total }
	// The estimate is the line through the sizes of the two latest builds.
	prev, last := over, fit
	if !overflowed() {
		probe := measure(min(2*floor, total))
		prev, last = fit, probe
		if probe.size > budget {
			over = probe
		} else {
			fit = probe
		}
	}
	for fit.n+1 < over.n {
		var n int
		switch {
		case builds < secantBuilds:
			n = largestFit(last, prev, budget)
		case !overflowed():
			// Doubling stays within what an estimate may reach
			// (listableClusters), unlike a midpoint towards total.
			n = 2 * fit.n
		default:
			n = fit.n + (over.n-fit.n)/2
		}
		// Each build narrows the gap: an estimate at or past either end
		// tries the listing next to it, which ends the search when the
		// estimate was right.
		b := measure(max(fit.n+1, min(n, over.n-1)))
		prev, last = last, b
		if b.size > budget {
			over = b
			continue
		}
		fit = b
	}
	return fit
}

// aggregateStatuses is the one aggregation of a status build: a variable
// only so that a test can count them.
var aggregateStatuses = aggregate.Aggregate

// summedStatusFrom is summedStatus starting its search at hint, the
// clusters the Subscription's status listed last (0: none known); it also
// returns the clusters it lists, the hint of the next build. It aggregates
// the Descriptions once, listing as many clusters as any listing it may
// try (listableClusters), and cuts each listing it tries from that: 10,000
// clusters × 20 feeds are folded once, not at every try.
func summedStatusFrom(status *appsv1alpha1.SubscriptionStatus, p *plan, descs []*appsv1alpha1.Description, baseName string, hint int) (metav1.Condition, int) {
	total, perCluster := max(len(p.clusters), len(p.bound)), max(len(p.feeds), 1)
	in := aggregate.Input{Feeds: p.feeds, Clusters: p.clusters, Descriptions: descs, BaseName: baseName,
		Listed: listableClusters(total, perCluster, len(p.feeds), statusBudget)}
	agg := aggregateStatuses(in)
	best := fitListingFrom(total, perCluster, statusBudget, hint, func(n int) listing {
		if n > in.Listed {
			// Past the bound (no estimate goes there, see
			// listableClusters): aggregate again, exactly.
			in.Listed = total
			agg = aggregateStatuses(in)
		}
		s := *status
		ready := setListed(&s, p, agg, n)
		return listing{n: n, size: statusSize(&s, ready), status: s, ready: ready}
	})
	*status = best.status
	return best.ready, best.n
}

// listableClusters is the most clusters the status builder may try to
// list, of total, in a status of budget bytes of nFeeds feeds. Listing one
// more cluster adds an entry of at least minDetailBytes to every feed's
// feedStatusDetails, so no more than budget / (nFeeds × minDetailBytes)
// fit; the builder's estimates, lines through two sizes it measured, reach
// at most about twice that. When it first tries listing all
// (cheapToListAll), or with no feeds (no lists to bound), it is all.
func listableClusters(total, perCluster, nFeeds, budget int) int {
	if nFeeds == 0 || cheapToListAll(total, perCluster) {
		return total
	}
	fit := budget / (nFeeds * minDetailBytes)
	return min(total, 2*(fit+appsv1alpha1.MinListedClusters))
}

// minDetailBytes is the JSON size of the smallest feedStatusDetails entry,
// its comma included.
var minDetailBytes = func() int {
	raw, _ := json.Marshal(appsv1alpha1.FeedStatusPerCluster{})
	return len(raw) + 1
}()

// fitListingFrom is fitListing starting at hint, the clusters the
// Subscription's status listed last. The size of a status grows with
// every cluster it lists (fitListing), so when hint fits and one more does
// not, hint is the largest listing that fits, the one the search finds
// (TestFitListingIsTheLargestFit): two builds instead of the search. A
// hint only saves builds, it never changes the listing. A hint that is
// wrong or unknown costs those two builds and the search as before, which
// reuses them.
func fitListingFrom(total, perCluster, budget, hint int, build func(n int) listing) listing {
	built := map[int]listing{}
	once := func(n int) listing {
		if l, ok := built[n]; ok {
			return l
		}
		l := build(n)
		built[n] = l
		return l
	}
	if hint >= min(appsv1alpha1.MinListedClusters, total) && hint < total {
		if at := once(hint); at.size <= budget && once(hint+1).size > budget {
			return at
		}
	}
	return fitListing(total, perCluster, budget, once)
}

// listingHints remembers how many clusters the status of each Subscription
// (by uid) listed last: the next build of its status starts there
// (fitListingFrom). It holds at most maxListingHints Subscriptions and
// forgets them all past that: a forgotten hint costs a search, nothing
// else.
type listingHints struct {
	mu sync.Mutex
	m  map[types.UID]int
}

const maxListingHints = 10000

func (h *listingHints) get(uid types.UID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[uid]
}

func (h *listingHints) put(uid types.UID, listed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) >= maxListingHints {
		h.m = map[types.UID]int{}
	}
	h.m[uid] = listed
}

// largestFit is the most clusters a status may list within budget by the
// line through the sizes of a and b, two listings measured (either may
// fit): where the line crosses budget, rounded down. A line that does not
// rise says nothing: no bound.
func largestFit(a, b listing, budget int) int {
	perCluster := float64(b.size-a.size) / float64(b.n-a.n)
	if a.n == b.n || perCluster <= 0 {
		return math.MaxInt
	}
	n := math.Floor(float64(a.n) + float64(budget-a.size)/perCluster)
	// Within what a float counts exactly (and an int holds), far past
	// any listing either way.
	return int(max(-1<<53, min(n, 1<<53)))
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
