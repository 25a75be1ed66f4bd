package apps

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/server/hub/apps/aggregate"
)

// budgetFleets are fleets on each path of the status builder: one that
// fits whole, one large enough to be estimated, the largest with a little
// or nothing available.
var budgetFleets = []struct {
	name         string
	clusters, nf int
	notReady     func(cluster, feed int) bool
}{
	{"12 clusters fit whole", 12, 3, func(cluster, feed int) bool { return cluster%3 == feed }},
	{"3000 clusters, some not available", 3000, 5, func(cluster, feed int) bool { return cluster%7 == feed }},
	{"10000 clusters, few not available", 10000, 20, func(cluster, feed int) bool { return feed == 0 && cluster%500 == 0 }},
	{"10000 clusters, nothing available", 10000, 20, func(int, int) bool { return true }},
}

// countAggregations counts the aggregations made until the test ends.
func countAggregations(t *testing.T) *int {
	n := 0
	old := aggregateStatuses
	aggregateStatuses = func(in aggregate.Input) aggregate.Output {
		n++
		return old(in)
	}
	t.Cleanup(func() { aggregateStatuses = old })
	return &n
}

// TestStatusBuildAggregatesOnce: however many listings the status builder
// tries, it folds the Descriptions once per status, hint or none.
func TestStatusBuildAggregatesOnce(t *testing.T) {
	for _, f := range budgetFleets {
		t.Run(f.name, func(t *testing.T) {
			p, descs := fleet(f.clusters, f.nf, f.notReady)
			passes := countAggregations(t)
			_, listed := summedStatusFrom(&appsv1alpha1.SubscriptionStatus{}, p, descs, "app", 0)
			if *passes != 1 {
				t.Errorf("%d aggregations for one status, want 1", *passes)
			}
			*passes = 0
			summedStatusFrom(&appsv1alpha1.SubscriptionStatus{}, p, descs, "app", listed)
			if *passes != 1 {
				t.Errorf("%d aggregations for one status from the last listing, want 1", *passes)
			}
		})
	}
}

// TestStatusListingCutFromOneAggregation: a listing of n clusters cut
// from the aggregation of all is, byte for byte, the one aggregated for n.
func TestStatusListingCutFromOneAggregation(t *testing.T) {
	const total = 12
	p, descs := fleet(total, 3, func(cluster, feed int) bool { return cluster%4 == feed })
	all := aggregate.Aggregate(aggregate.Input{Feeds: p.feeds, Clusters: p.clusters, Descriptions: descs, BaseName: "app", Listed: total})
	for n := range total + 2 {
		want, got := &appsv1alpha1.SubscriptionStatus{}, &appsv1alpha1.SubscriptionStatus{}
		wantReady, gotReady := listedStatus(want, p, descs, "app", n), setListed(got, p, all, n)
		if diff := cmp.Diff(jsonOf(t, want), jsonOf(t, got)); diff != "" || wantReady != gotReady {
			t.Errorf("listing %d: cut from all differs from aggregated for %d (-want +got):\n%s", n, n, diff)
		}
	}
}

// TestStatusFromAnyHint: the status is the same, byte for byte, whatever
// the builder was told the last listing was (right, off by one, out of
// range, none); a right hint costs two builds.
func TestStatusFromAnyHint(t *testing.T) {
	for _, f := range budgetFleets {
		t.Run(f.name, func(t *testing.T) {
			p, descs := fleet(f.clusters, f.nf, f.notReady)
			want := &appsv1alpha1.SubscriptionStatus{}
			_, n := summedStatusFrom(want, p, descs, "app", 0)
			hints := []int{-1, 1, appsv1alpha1.MinListedClusters, n - 1, n, n + 1, f.clusters - 1, f.clusters, f.clusters + 7}
			if f.clusters >= 10000 {
				hints = []int{n - 1, n} // each build folds 200,000 reports
			}
			for _, hint := range hints {
				got := &appsv1alpha1.SubscriptionStatus{}
				if _, listed := summedStatusFrom(got, p, descs, "app", hint); listed != n {
					t.Errorf("hint %d: lists %d clusters, want %d", hint, listed, n)
				}
				if diff := cmp.Diff(jsonOf(t, want), jsonOf(t, got)); diff != "" {
					t.Errorf("hint %d: another status (-no hint +hint):\n%s", hint, diff)
				}
			}
		})
	}
	builds := 0
	size := func(n int) int { return 2000 + 700*n }
	got := fitListingFrom(10000, 20, 60000, 82, func(n int) listing {
		builds++
		return listing{n: n, size: size(n)}
	})
	if got.n != 82 || builds != 2 {
		t.Errorf("from the right hint: lists %d clusters in %d builds, want 82 in 2", got.n, builds)
	}
}

func jsonOf(t *testing.T, status *appsv1alpha1.SubscriptionStatus) string {
	t.Helper()
	raw, err := json.Marshal(status)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// BenchmarkStatusAt10000Clusters: one status of a Subscription of 20
// feeds bound to 10,000 clusters, as writeStatus sums it: the first
// (no hint) and a later one (from the last listing).
func BenchmarkStatusAt10000Clusters(b *testing.B) {
	p, descs := fleet(10000, 20, func(cluster, feed int) bool { return feed == 0 && cluster%500 == 0 })
	_, last := summedStatusFrom(&appsv1alpha1.SubscriptionStatus{}, p, descs, "app", 0)
	for _, hint := range []int{0, last} {
		b.Run(fmt.Sprintf("hint=%d", hint), func(b *testing.B) {
			for range b.N {
				summedStatusFrom(&appsv1alpha1.SubscriptionStatus{}, p, descs, "app", hint)
			}
		})
	}
}

// sizeModel is a status's size listing n of total clusters: base bytes,
// plus, for each listed cluster, its detail in each of perCluster feeds
// (width[i] bytes, at least the smallest a detail can be), plus, while
// some are omitted, the omitted count's field in each feed and in
// bindingClusters, with its digits: sizes that grow with n, not linearly.
type sizeModel struct {
	base, perCluster int
	width            []int
	prefix           []int // prefix[n] is the widths of the first n clusters
}

func newSizeModel(base, perCluster int, width []int) sizeModel {
	prefix := make([]int, len(width)+1)
	for i, w := range width {
		prefix[i+1] = prefix[i] + w
	}
	return sizeModel{base: base, perCluster: perCluster, width: width, prefix: prefix}
}

func (m sizeModel) size(n int) int {
	size := m.base + m.perCluster*m.prefix[n]
	if omitted := len(m.width) - n; omitted > 0 {
		size += (m.perCluster + 1) * (len(`,"feedStatusDetailsOmitted":`) + len(strconv.Itoa(omitted)))
	}
	return size
}

// largestFitByBuilding is the listing fitListing is to find, by trying
// every one: the most clusters whose size fits budget; the floor when even
// that does not fit; all when total is at most the floor.
func (m sizeModel) largestFitByBuilding(budget int) int {
	total := len(m.width)
	floor := min(appsv1alpha1.MinListedClusters, total)
	want := floor
	for n := floor; n <= total; n++ {
		if m.size(n) <= budget {
			want = n
		}
	}
	return want
}

// widthShapes are the ways clusters' details differ in length.
var widthShapes = []struct {
	name  string
	width func(r *rand.Rand, i, total int) int
}{
	{"uniform", func(*rand.Rand, int, int) int { return 150 }},
	// The clusters not available come first, with a long reason.
	{"long reasons first", func(_ *rand.Rand, i, total int) int {
		if i < total/7+3 {
			return 450
		}
		return 90
	}},
	{"random widths", func(r *rand.Rand, _, _ int) int { return minDetailBytes + r.IntN(2000) }},
	{"a few much longer", func(r *rand.Rand, _, _ int) int {
		if r.IntN(30) == 0 {
			return 6000
		}
		return 100
	}},
	{"growing", func(_ *rand.Rand, i, _ int) int { return minDetailBytes + i/3 }},
	// Each shorter than the one before: every estimate falls short.
	{"ever shorter", func(_ *rand.Rand, i, _ int) int { return minDetailBytes + 40000/(i+1) }},
	{"long reasons last", func(_ *rand.Rand, i, total int) int {
		if i >= total/2 {
			return 900
		}
		return 80
	}},
}

// TestFitListingIsTheLargestFit: over many fleets (sizes, feeds, budgets,
// clusters of details of very different lengths), fitListing lists
// exactly the most clusters that fit, as building every listing would
// find, within maxStatusBuilds builds; and fitListingFrom lists the same,
// whatever hint it starts from: the status does not depend on the
// search's history.
func TestFitListingIsTheLargestFit(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	failures := 0
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		if failures++; failures >= 20 {
			t.Fatal("too many failures, stopping")
		}
	}
	for _, total := range []int{1, 2, 5, 6, 7, 11, 12, 40, 99, 100, 101, 400, 3000, 10000} {
		for _, perCluster := range []int{1, 3, 20} {
			for _, shape := range widthShapes {
				width := make([]int, total)
				for i := range width {
					width[i] = shape.width(r, i, total)
				}
				m := newSizeModel(2000+r.IntN(3000), perCluster, width)
				floor := min(appsv1alpha1.MinListedClusters, total)
				budgets := []int{1, m.size(floor), m.size(floor) - 1, m.size(total), m.size(total) - 1, 61440}
				for range 4 {
					k := floor + r.IntN(total-floor+1)
					budgets = append(budgets, m.size(k), m.size(k)-1, m.size(k)+1,
						m.size(floor)+r.IntN(m.size(total)-m.size(floor)+1))
				}
				for _, budget := range budgets {
					name := fmt.Sprintf("%d clusters, %d feeds, %s, budget %d", total, perCluster, shape.name, budget)
					want := m.largestFitByBuilding(budget)
					builds := 0
					build := func(n int) listing {
						builds++
						if n < 0 || n > total {
							t.Fatalf("%s: built a listing of %d clusters", name, n)
						}
						return listing{n: n, size: m.size(n)}
					}
					got := fitListing(total, perCluster, budget, build)
					if got.n != want || got.size != m.size(want) {
						fail("%s: lists %d clusters (%d bytes), want %d (%d bytes)", name, got.n, got.size, want, m.size(want))
					}
					if builds > maxStatusBuilds(total) {
						fail("%s: %d builds, more than maxStatusBuilds (%d)", name, builds, maxStatusBuilds(total))
					}
					for _, hint := range hintsFor(r, total, want) {
						if from := fitListingFrom(total, perCluster, budget, hint, build); from.n != got.n {
							fail("%s: from hint %d lists %d clusters, without a hint %d", name, hint, from.n, got.n)
						}
					}
				}
			}
		}
	}
}

// hintsFor are the hints TestFitListingIsTheLargestFit starts from: all
// of [0, total] when that is about a hundred; else those near the answer
// and the ends, and a sample of the others.
func hintsFor(r *rand.Rand, total, answer int) []int {
	if total <= 101 {
		return seq(total + 1)
	}
	hints := []int{0, 1, appsv1alpha1.MinListedClusters, total - 1, total}
	for d := -3; d <= 3; d++ {
		hints = append(hints, max(answer+d, 0))
	}
	for range 40 {
		hints = append(hints, r.IntN(total+1))
	}
	return hints
}

// TestStatusSizeGrowsWithListing: every cluster more a status lists makes
// it larger, on fleets of details of different lengths: the assumption
// fitListing's exact search rests on.
func TestStatusSizeGrowsWithListing(t *testing.T) {
	for _, f := range []struct {
		name     string
		notReady func(cluster, feed int) bool
	}{
		{"all available", func(int, int) bool { return false }},
		{"some not available", func(cluster, feed int) bool { return cluster%4 == feed }},
		{"one not available", func(cluster, feed int) bool { return cluster == 17 && feed == 0 }},
		{"nothing available", func(int, int) bool { return true }},
	} {
		t.Run(f.name, func(t *testing.T) {
			const total = 40
			p, descs := fleet(total, 3, f.notReady)
			agg := aggregate.Aggregate(aggregate.Input{Feeds: p.feeds, Clusters: p.clusters, Descriptions: descs, BaseName: "app", Listed: total})
			last := -1
			for n := range total + 1 {
				s := &appsv1alpha1.SubscriptionStatus{}
				size := statusSize(s, setListed(s, p, agg, n))
				if size <= last {
					t.Errorf("listing %d clusters: %d bytes, listing %d: %d bytes; want more", n, size, n-1, last)
				}
				last = size
			}
		})
	}
}
