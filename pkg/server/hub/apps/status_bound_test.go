package apps

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/util/retry"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
	"github.com/clusternet/clusternet/pkg/server/hub/apps/aggregate"
)

// fleet is a plan bound to n clusters with long-ish names (dedicated
// namespaces clusternet-xxxxx, names of 40 characters, uuids), dividing
// the replicas of nFeeds Deployments of long names among them, and one
// generic Description per cluster reporting on every feed: done, except
// where notReady says which feeds are not, with a reason of 300 bytes (a
// child's error, which the Description keeps whole).
func fleet(n, nFeeds int, notReady func(cluster, feed int) bool) (*plan, []*appsv1alpha1.Description) {
	p := &plan{specHash: "0123456789abcdef", specHashValue: 81985529216486895, replicas: map[string]map[string]int32{}}
	for f := range nFeeds {
		p.feeds = append(p.feeds, appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment",
			Namespace: "payments-eu-west-production", Name: fmt.Sprintf("checkout-frontend-with-a-long-name-%05d", f)})
	}
	reason := strings.Repeat("0/3 replicas available: pod has unbound immediate PersistentVolumeClaims; ", 4)
	var descs []*appsv1alpha1.Description
	for i := range n {
		c := aggregate.Cluster{Namespace: fmt.Sprintf("clusternet-%05d", i), Name: fmt.Sprintf("edge-cluster-of-the-northern-fleet-%05d", i),
			ID: fmt.Sprintf("%08d-1111-2222-3333-444444444444", i)}
		ck := c.Namespace + "/" + c.Name
		p.clusters, p.bound = append(p.clusters, c), append(p.bound, ck)
		d := &appsv1alpha1.Description{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: "app" + appsv1alpha1.DescriptionGenericSuffix},
			Status: appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess}}
		for f, feed := range p.feeds {
			st := appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}
			if notReady(i, f) {
				st = appsv1alpha1.FeedStatus{Applied: true, Replicas: 3, Reason: reason}
				d.Status.Phase = appsv1alpha1.DescriptionPhasePending
			}
			d.Status.ManifestStatuses = append(d.Status.ManifestStatuses, appsv1alpha1.ManifestStatus{Feed: feed, FeedStatus: st})
			k := feeds.Key(feed)
			if p.replicas[k] == nil {
				p.replicas[k] = map[string]int32{}
			}
			p.replicas[k][ck] = 3
		}
		descs = append(descs, d)
	}
	p.boundSet = sets.New(p.bound...)
	return p, descs
}

// TestStatusBoundedAt10000Clusters: the status of a Subscription of 20
// feeds bound to 10,000 clusters, as writeStatus sums it, stays under 64
// KiB; its counts and summaries are over all 10,000 clusters, and the
// clusters where a feed is not available are the ones it lists.
func TestStatusBoundedAt10000Clusters(t *testing.T) {
	const n, nFeeds = 10000, 20
	// Feed 0 is not available in clusters 9000-9019 (past any cap: listed
	// first anyway); feed 1 in cluster 4242 only; the others everywhere.
	notReady := func(cluster, feed int) bool {
		return (feed == 0 && cluster >= 9000 && cluster < 9020) || (feed == 1 && cluster == 4242)
	}
	p, descs := fleet(n, nFeeds, notReady)
	status := &appsv1alpha1.SubscriptionStatus{}
	ready := summedStatus(status, p, descs, "app")
	setCondition(&status.Conditions, ready)
	// The Rendered condition while every Base waits, the longest it gets.
	pending := make([]string, 0, n)
	for _, c := range p.clusters {
		pending = append(pending, c.Namespace)
	}
	setCondition(&status.Conditions, metav1.Condition{Type: ConditionRendered, Status: metav1.ConditionUnknown, Reason: ReasonRendering,
		Message: "rendering the Bases in " + aggregate.Summarize(pending)})
	checkSize(t, status, "20 feeds not available in 21 clusters")

	listed := len(status.BindingClusters)
	if status.BoundClusters != n || listed < appsv1alpha1.MinListedClusters || listed >= n || int(status.BindingClustersOmitted) != n-listed {
		t.Errorf("boundClusters %d, bindingClusters %d entries, %d omitted; want %d, at least %d listed, the others omitted",
			status.BoundClusters, listed, status.BindingClustersOmitted, n, appsv1alpha1.MinListedClusters)
	}
	if want := fmt.Sprintf("%d/%d", n-21, n); status.Ready != want {
		t.Errorf("ready %q, want %q", status.Ready, want)
	}
	if status.DesiredReleases != n || status.CompletedReleases != n-21 {
		t.Errorf("releases %d of %d, want %d of %d", status.CompletedReleases, status.DesiredReleases, n-21, n)
	}
	for f, a := range status.AggregatedStatuses {
		var wantNotReady []string
		for i := range n {
			if notReady(i, f) && len(wantNotReady) < listed {
				wantNotReady = append(wantNotReady, p.clusters[i].Name)
			}
		}
		if a.FeedStatusSummary.Replicas != 3*n {
			t.Errorf("feed %d: summary counts %d replicas, want %d (all clusters')", f, a.FeedStatusSummary.Replicas, 3*n)
		}
		if want := int32(n - len(slices.DeleteFunc(seq(n), func(i int) bool { return !notReady(i, f) }))); a.AvailableClusters != want {
			t.Errorf("feed %d: availableClusters %d, want %d", f, a.AvailableClusters, want)
		}
		if got := int(a.FeedStatusDetailsOmitted) + len(a.FeedStatusDetails); got != n || len(a.FeedStatusDetails) != listed {
			t.Errorf("feed %d: %d details and %d omitted, want %d listed (as bindingClusters) of %d", f, len(a.FeedStatusDetails), a.FeedStatusDetailsOmitted, listed, n)
		}
		var listedNotReady []string
		for _, d := range a.FeedStatusDetails {
			if !d.Available {
				listedNotReady = append(listedNotReady, d.ClusterName)
			}
		}
		if diff := cmp.Diff(wantNotReady, listedNotReady); diff != "" {
			t.Errorf("feed %d: the clusters listed as not available (-want +got):\n%s", f, diff)
		}
		if len(wantNotReady) > 0 && a.FeedStatusDetails[0].Available {
			t.Errorf("feed %d: an available cluster is listed first", f)
		}
	}
	for _, c := range status.Conditions {
		if len(c.Message) > 1024 {
			t.Errorf("condition %s: message of %d bytes: %.200s...", c.Type, len(c.Message), c.Message)
		}
	}
}

// TestStatusBoundedWhenNothingIsAvailable: the largest status, where
// every feed waits in every cluster with a long reason, stays under 64 KiB
// and still lists MinListedClusters clusters.
func TestStatusBoundedWhenNothingIsAvailable(t *testing.T) {
	p, descs := fleet(10000, 20, func(int, int) bool { return true })
	status := &appsv1alpha1.SubscriptionStatus{}
	setCondition(&status.Conditions, summedStatus(status, p, descs, "app"))
	checkSize(t, status, "nothing available")
	if got := len(status.BindingClusters); got < appsv1alpha1.MinListedClusters {
		t.Errorf("bindingClusters lists %d clusters, want at least MinListedClusters (%d)", got, appsv1alpha1.MinListedClusters)
	}
	for f, a := range status.AggregatedStatuses {
		if len(a.FeedStatusDetails) != len(status.BindingClusters) {
			t.Errorf("feed %d lists %d clusters, bindingClusters %d: one number for all lists", f, len(a.FeedStatusDetails), len(status.BindingClusters))
		}
	}
}

// checkSize fails when status is over 64 KiB of JSON.
func checkSize(t *testing.T, status *appsv1alpha1.SubscriptionStatus, what string) {
	t.Helper()
	raw, err := json.Marshal(status)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status of %d clusters, %s: %d bytes of JSON, listing %d clusters", status.BoundClusters, what, len(raw), len(status.BindingClusters))
	if len(raw) > appsv1alpha1.MaxStatusBytes {
		t.Errorf("status is %d bytes of JSON, over MaxStatusBytes (%d)", len(raw), appsv1alpha1.MaxStatusBytes)
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// TestSmallFleetListsEveryCluster: a fleet of 12 clusters and 3 feeds
// fits the budget whole: every list names every cluster, sorted by key
// (the plan's order is the scheduler's), with the division in both shapes,
// and nothing is omitted, as before the status had a budget.
func TestSmallFleetListsEveryCluster(t *testing.T) {
	const n = 12
	p, descs := fleet(n, 3, func(cluster, _ int) bool { return cluster == n-1 })
	slices.Reverse(p.bound)
	status := &appsv1alpha1.SubscriptionStatus{}
	summedStatus(status, p, descs, "app")
	wantListed := slices.Sorted(slices.Values(p.bound))
	if diff := cmp.Diff(wantListed, status.BindingClusters); diff != "" {
		t.Errorf("bindingClusters (-want +got):\n%s", diff)
	}
	if status.BindingClustersOmitted != 0 || status.BoundClusters != n {
		t.Errorf("bindingClustersOmitted %d, boundClusters %d; want 0, %d", status.BindingClustersOmitted, status.BoundClusters, n)
	}
	for _, f := range p.feeds {
		key := feeds.Key(f)
		if got := status.BindingReplicas[key]; len(got) != n {
			t.Errorf("status.replicas[%s] has %d counts for %d bindingClusters", key, len(got), n)
		}
		if got := slices.Sorted(maps.Keys(status.Replicas[key])); !cmp.Equal(wantListed, got) {
			t.Errorf("replicasByCluster[%s] is about %v, want %v", key, got, wantListed)
		}
	}
	for f, a := range status.AggregatedStatuses {
		if len(a.FeedStatusDetails) != n || a.FeedStatusDetailsOmitted != 0 || a.AvailableClusters != n-1 {
			t.Errorf("feed %d: %d details, %d omitted, %d available; want %d, 0, %d", f, len(a.FeedStatusDetails), a.FeedStatusDetailsOmitted, a.AvailableClusters, n, n-1)
		}
		// The last cluster, the one not available, is listed first.
		if got, want := a.FeedStatusDetails[0].ClusterName, p.clusters[n-1].Name; got != want || a.FeedStatusDetails[0].Available {
			t.Errorf("feed %d: first detail is %s (available %t), want %s, not available", f, got, a.FeedStatusDetails[0].Available, want)
		}
	}
}

// withBudget sets statusBudget for the test.
func withBudget(t *testing.T, budget int) {
	old := statusBudget
	statusBudget = budget
	t.Cleanup(func() { statusBudget = old })
}

// TestStatusListingAtTheBudget: a status whose whole listing is exactly
// the budget lists every cluster; one byte less and it lists the most
// clusters that fit, one more would not; a budget nothing fits lists
// MinListedClusters.
func TestStatusListingAtTheBudget(t *testing.T) {
	const n = 12
	p, descs := fleet(n, 3, func(cluster, feed int) bool { return cluster%3 == feed })
	sized := func(listed int) int {
		s := &appsv1alpha1.SubscriptionStatus{}
		return statusSize(s, listedStatus(s, p, descs, "app", listed))
	}
	whole := sized(n)
	for _, tc := range []struct {
		name   string
		budget int
		want   int
	}{
		{"exactly the whole", whole, n},
		{"one byte under the whole", whole - 1, -1},
		{"nothing fits", 1, appsv1alpha1.MinListedClusters},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withBudget(t, tc.budget)
			status := &appsv1alpha1.SubscriptionStatus{}
			ready := summedStatus(status, p, descs, "app")
			listed := len(status.BindingClusters)
			if tc.want >= 0 {
				if listed != tc.want {
					t.Errorf("budget %d lists %d clusters, want %d", tc.budget, listed, tc.want)
				}
				return
			}
			if size := statusSize(status, ready); size > tc.budget || listed < appsv1alpha1.MinListedClusters || listed >= n {
				t.Errorf("budget %d lists %d clusters in %d bytes", tc.budget, listed, size)
			}
			if next := sized(listed + 1); next <= tc.budget {
				t.Errorf("budget %d lists %d clusters, and %d would fit (%d bytes)", tc.budget, listed, listed+1, next)
			}
		})
	}
}

// TestStatusListingIsDeterministic: the same inputs list the same
// clusters at every write (the status does not flap), on the estimate's
// path (a fleet too large to try listing all).
func TestStatusListingIsDeterministic(t *testing.T) {
	p, descs := fleet(3000, 5, func(cluster, feed int) bool { return cluster%7 == feed })
	var first *appsv1alpha1.SubscriptionStatus
	for range 2 {
		status := &appsv1alpha1.SubscriptionStatus{}
		summedStatus(status, p, descs, "app")
		checkSize(t, status, "some not available")
		if first == nil {
			first = status
			continue
		}
		if diff := cmp.Diff(first, status); diff != "" {
			t.Errorf("the same inputs gave another status (-first +second):\n%s", diff)
		}
	}
	if listed := len(first.BindingClusters); listed <= 2*appsv1alpha1.MinListedClusters || listed >= 3000 {
		t.Errorf("lists %d of 3000 clusters: want more than the probes, fewer than all", listed)
	}
}

// TestFitListingFewBuilds: on sizes linear in the clusters listed, and on
// sizes that grow faster or slower past the probes, fitListing builds few
// times and lists the most clusters that fit. A fleet that far from linear
// costs a step or two more. Each count includes the listing one past the
// answer, which shows that it is the largest that fits.
func TestFitListingFewBuilds(t *testing.T) {
	const total, budget = 10000, 60000
	for _, tc := range []struct {
		name      string
		size      func(n int) int
		maxBuilds int
	}{
		{"linear", func(n int) int { return 2000 + 700*n }, 4},
		{"convex", func(n int) int { return 2000 + 700*n + 3*n*n }, 6},
		{"concave", func(n int) int { return 2000 + 1500*n - 8*min(n, 60)*n }, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			builds := 0
			got := fitListing(total, 20, budget, func(n int) listing {
				builds++
				return listing{n: n, size: tc.size(n)}
			})
			if got.size != tc.size(got.n) || got.size > budget || tc.size(got.n+1) <= budget {
				t.Errorf("lists %d clusters of %d bytes; %d would be %d bytes, budget %d", got.n, got.size, got.n+1, tc.size(got.n+1), budget)
			}
			if builds > tc.maxBuilds {
				t.Errorf("%d builds, want at most %d", builds, tc.maxBuilds)
			}
		})
	}
}

// TestTruncatedStatusUnbindsNothing: bound to more clusters than the status
// lists, the hub keeps every one of them through another round, rebuilds
// its book from the Bases, and, once another scheduler owns the
// Subscription, does not take the list it truncated for that scheduler's
// choice: it says so, naming the field and the cap, and binds what the
// scheduler then lists whole.
func TestTruncatedStatusUnbindsNothing(t *testing.T) {
	// A budget nothing fits: the status lists MinListedClusters.
	withBudget(t, 1)
	n := appsv1alpha1.MinListedClusters + 2
	objs := []runtime.Object{template(nsJSON), template(svcJSON), subscription("wide", nsFeed)}
	var keys []string
	for i := range n {
		ns, name := fmt.Sprintf("clusternet-w%04d", i), fmt.Sprintf("edge-%d", i)
		objs = append(objs, cluster(ns, name, fmt.Sprintf("%08d-0000-0000-0000-000000000000", i), "env", "demo"))
		keys = append(keys, ns+"/"+name)
	}
	h := start(t, objs...)
	allBound := func(what string) {
		t.Helper()
		h.eventually(what, func() (bool, string) {
			var missing []string
			for _, ck := range keys {
				ns, _, _ := strings.Cut(ck, "/")
				if b := h.base(ns, "wide"); b == nil || b.DeletionTimestamp != nil {
					missing = append(missing, ns)
				}
			}
			return len(missing) == 0, fmt.Sprintf("no live Base in %v", missing)
		})
	}
	allBound("a Base in every cluster")
	h.eventually("a truncated status", func() (bool, string) {
		st := h.sub("wide").Status
		return st.BoundClusters == int32(n) && st.BindingClustersOmitted == 2 && len(st.BindingClusters) == appsv1alpha1.MinListedClusters,
			fmt.Sprintf("boundClusters %d, %d listed, %d omitted", st.BoundClusters, len(st.BindingClusters), st.BindingClustersOmitted)
	})

	// Another round, for a new spec: nothing is unbound.
	h.updateSub("wide", func(s *appsv1alpha1.Subscription) { s.Spec.Feeds = append(s.Spec.Feeds, svcFeed) })
	h.eventually("the new spec scheduled", func() (bool, string) {
		s := h.sub("wide")
		c := cond(s.Status.Conditions, ConditionScheduled)
		return c.ObservedGeneration == s.Generation && c.Status == metav1.ConditionTrue, fmt.Sprintf("%+v", c)
	})
	allBound("every Base kept")
	if ev := h.events.matching("Unbound"); len(ev) > 0 {
		t.Errorf("clusters unbound: %v", ev)
	}
	// After a restart, the book is filled from the Bases, not the list.
	cached, err := h.ctl.subs.Subscriptions("default").Get("wide")
	if err != nil {
		t.Fatal(err)
	}
	if placed, _ := h.ctl.placedOf(cached); !cmp.Equal(keys, placed) {
		t.Errorf("placedOf = %v, want every bound cluster %v", placed, keys)
	}

	// Another scheduler takes over: the hub's truncated list is not its choice.
	h.updateSub("wide", func(s *appsv1alpha1.Subscription) { s.Spec.SchedulerName = "my-scheduler" })
	h.eventually("the truncated list refused", func() (bool, string) {
		c := cond(h.sub("wide").Status.Conditions, ConditionScheduled)
		return c.Reason == ReasonTruncatedBindings && strings.Contains(c.Message, "status.bindingClustersOmitted counts 2 more") &&
			strings.Contains(c.Message, fmt.Sprintf("truncated to fit the status in %d bytes (MaxStatusBytes)", appsv1alpha1.MaxStatusBytes)), fmt.Sprintf("%+v", c)
	})
	allBound("every Base kept while the scheduler has not written")
	// The scheduler writes its whole list, as a typed client of upstream's
	// API does (no bindingClustersOmitted): every cluster it lists is bound.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := h.sub("wide")
		cur.Status.BindingClusters, cur.Status.BindingClustersOmitted = keys, 0
		_, err := h.cs.AppsV1alpha1().Subscriptions("default").UpdateStatus(h.ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	h.eventually("the scheduler's list bound", func() (bool, string) {
		st := h.sub("wide").Status
		c := cond(st.Conditions, ConditionScheduled)
		return c.Status == metav1.ConditionTrue && len(st.BindingClusters) == n && st.BoundClusters == int32(n), fmt.Sprintf("%+v, %d listed", c, len(st.BindingClusters))
	})
	allBound("every Base the scheduler lists")
	if ev := h.events.matching("Unbound"); len(ev) > 0 {
		t.Errorf("clusters unbound: %v", ev)
	}
}
