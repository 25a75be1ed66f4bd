package apps

import (
	"encoding/json"
	"fmt"
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
