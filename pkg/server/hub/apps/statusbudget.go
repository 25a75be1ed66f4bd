package apps

import (
	"encoding/json"
	"math"
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

// maxStatusBuilds bounds the builds of one status. Each build aggregates
// every Description of the Subscription (10,000 clusters × 20 feeds is
// 200,000 reports) and marshals the result to measure it, so the builder
// estimates rather than searches: the floor, a probe, the estimate, and
// a step or two down when the estimate overshoots (the size is close to
// linear in the clusters listed, not exactly: omitted counts and reasons
// vary). Past this many it keeps the largest listing that fitted.
const maxStatusBuilds = 8

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
	if total <= floor || cheapToListAll(total, perCluster) {
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
// every cluster it lists (one more adds an entry to every per-cluster
// list, which outweighs the digit an omitted count loses), so when hint
// fits and one more does not, hint is the listing the search ends at
// (TestFitListingFewBuilds): two builds instead of the search. A hint that
// is wrong or unknown costs those two builds and the search as before,
// which reuses them.
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
