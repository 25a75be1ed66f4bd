package apps

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// writesIn counts the writes in actions by "verb resource[/subresource]
// namespace".
func writesIn(actions []clienttesting.Action) map[string]int {
	out := map[string]int{}
	for _, a := range actions {
		switch a.GetVerb() {
		case "get", "list", "watch":
			continue
		}
		k := a.GetVerb() + " " + a.GetResource().Resource
		if s := a.GetSubresource(); s != "" {
			k += "/" + s
		}
		out[k+" "+a.GetNamespace()]++
	}
	return out
}

// Rendering a new Base costs its cluster's namespace its Rendered
// condition, written once, and per Description a create: no status write
// (the deployer's first report says Pending), no update that changes nothing, no request that only conflicts
// with the hub's own last write (the Descriptions' creations bring the Base
// back before the cache has caught up), and no event for a first render.
// (The Base's creation is the subscriptions loop's, not counted here.)
func TestRenderWritesPerCluster(t *testing.T) {
	h := start(t, seedObjects(subscription("app-demo", chartFeed, nsFeed, svcFeed, deploySel))...)
	for _, ns := range []string{nsA, nsB} {
		h.pending(ns, "app-demo-generic")
		h.pending(ns, "app-demo-helm")
		h.eventually("Base "+ns+" Rendered", func() (bool, string) {
			b := h.base(ns, "app-demo")
			return b != nil && cond(b.Status.Conditions, ConditionRendered).Status == metav1.ConditionTrue, fmt.Sprintf("%+v", b)
		})
	}
	h.eventually("status: rolling out", func() (bool, string) {
		s := h.sub("app-demo")
		return s.Status.Ready == "0/2" && s.Status.DesiredReleases == 4, fmt.Sprintf("%+v", s.Status)
	})
	got := writesIn(h.cs.Actions())
	for _, ns := range []string{nsA, nsB} {
		want := map[string]int{"update bases/status": 1, "create descriptions": 2}
		perNS := map[string]int{}
		for _, what := range []string{"update bases/status", "create descriptions", "update descriptions/status", "update bases", "update descriptions"} {
			if n := got[what+" "+ns]; n > 0 {
				perNS[what] = n
			}
		}
		if diff := cmp.Diff(want, perNS); diff != "" {
			t.Errorf("writes in %s (-want +got):\n%s\nall writes: %v", ns, diff, got)
		}
	}
	if evs := h.events.matching("Description ", " Rendered"); len(evs) > 0 {
		t.Errorf("events for first renders: %q, want none", evs)
	}
	// Binding is one event for the round, naming the clusters, not one per
	// cluster (a parent write each).
	bound := h.events.matching("Subscription default/app-demo", " Bound")
	if len(bound) != 1 || !strings.Contains(bound[0], "bound to 2 more clusters") || !strings.Contains(bound[0], nsA) || !strings.Contains(bound[0], nsB) {
		t.Errorf("Bound events %q, want one for both clusters", bound)
	}
}

// Deployers' reports arriving one after the other make one write of the
// Subscription's status, statusSettle after the first, not one each.
func TestReportsBurstIsOneStatusWrite(t *testing.T) {
	h := newHarness(t, seedObjects(subscription("app-demo", chartFeed, nsFeed, svcFeed, deploySel))...)
	// The reports below take milliseconds, and under -race on a loaded
	// machine well under a second: a settle time far above that keeps the
	// burst inside one.
	h.statusSettle = 5 * time.Second
	h.run()
	for _, ns := range []string{nsA, nsB} {
		h.pending(ns, "app-demo-generic")
		h.pending(ns, "app-demo-helm")
	}
	pendingAt := time.Now()
	h.eventually("status: rolling out", func() (bool, string) {
		s := h.sub("app-demo")
		return s.Status.Ready == "0/2" && s.Status.DesiredReleases == 4, fmt.Sprintf("%+v", s.Status)
	})
	// The Pending reports queued the Subscription statusSettle later: let
	// that sync run before the burst, or it lands in the middle of it and
	// writes what it sees then (a real second write, but of the rollout's
	// start, not of the burst).
	time.Sleep(time.Until(pendingAt.Add(h.statusSettle + 2*time.Second)))
	applied := appsv1alpha1.FeedStatus{Applied: true, Available: true}
	for _, ns := range []string{nsA, nsB} {
		for _, d := range []struct {
			name  string
			feeds []appsv1alpha1.Feed
		}{{"app-demo-generic", []appsv1alpha1.Feed{nsFeed, svcFeed, deployFeed}}, {"app-demo-helm", []appsv1alpha1.Feed{chartFeed}}} {
			var statuses []appsv1alpha1.ManifestStatus
			for _, f := range d.feeds {
				statuses = append(statuses, appsv1alpha1.ManifestStatus{Feed: f, FeedStatus: applied})
			}
			h.reportSuccess(ns, d.name, statuses...)
			// The hub has heard of it before the next one comes.
			h.eventually("the hub's cache of "+ns+"/"+d.name, func() (bool, string) {
				got, err := h.ctl.descs.Descriptions(ns).Get(d.name)
				return err == nil && got.Status.Phase == appsv1alpha1.DescriptionPhaseSuccess, fmt.Sprint(err)
			})
		}
	}
	h.eventually("Ready", func() (bool, string) {
		s := h.sub("app-demo")
		return cond(s.Status.Conditions, ConditionReady).Status == metav1.ConditionTrue, fmt.Sprintf("%+v", s.Status)
	})
	// Writes made before the reports (the rollout's start) count none.
	var withReports []string
	for _, a := range h.cs.Actions() {
		if a.GetVerb() == "update" && a.GetResource().Resource == "subscriptions" && a.GetSubresource() == "status" {
			if s := a.(clienttesting.UpdateAction).GetObject().(*appsv1alpha1.Subscription); s.Status.CompletedReleases > 0 {
				withReports = append(withReports, fmt.Sprintf("%d/%d", s.Status.CompletedReleases, s.Status.DesiredReleases))
			}
		}
	}
	if diff := cmp.Diff([]string{"4/4"}, withReports); diff != "" {
		t.Errorf("completed releases in each write of the Subscription's status after 4 reports (-want +got):\n%s", diff)
	}
}

func TestDescReportOnly(t *testing.T) {
	d := &appsv1alpha1.Description{ObjectMeta: metav1.ObjectMeta{Name: "app-generic", Namespace: nsA, UID: "u", Generation: 1,
		Labels: map[string]string{appsv1alpha1.LabelSubscriptionName: "app"}, Finalizers: []string{appsv1alpha1.Finalizer}}}
	for _, tc := range []struct {
		name   string
		change func(*appsv1alpha1.Description)
		want   bool
	}{
		{"a report", func(d *appsv1alpha1.Description) { d.Status.Phase = appsv1alpha1.DescriptionPhaseSuccess }, true},
		{"a new spec", func(d *appsv1alpha1.Description) { d.Generation++ }, false},
		{"deleted", func(d *appsv1alpha1.Description) { now := metav1.Now(); d.DeletionTimestamp = &now }, false},
		{"labels edited", func(d *appsv1alpha1.Description) { d.Labels = nil }, false},
		{"hash annotation edited", func(d *appsv1alpha1.Description) { d.Annotations = map[string]string{"x": "y"} }, false},
		{"finalizer removed", func(d *appsv1alpha1.Description) { d.Finalizers = nil }, false},
		{"made again", func(d *appsv1alpha1.Description) { d.UID = "v" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := d.DeepCopy()
			tc.change(cur)
			if got := descReportOnly(d, cur); got != tc.want {
				t.Errorf("descReportOnly = %v, want %v", got, tc.want)
			}
		})
	}
	if descReportOnly(nil, d) || descReportOnly(d, nil) {
		t.Error("an add or a delete counted as a report")
	}
}

// A Description the hub created is not created again while the cache has
// not shown it, for at most createLag, after which the Base's sync is to
// look again (the Description may have gone before the cache saw it).
func TestRecentCreatesPending(t *testing.T) {
	var r recentCreates
	if got := r.pending("ns/a-generic", false); got != 0 {
		t.Errorf("a key never created: pending %v, want 0", got)
	}
	r.add("ns/a-generic")
	if got := r.pending("ns/a-generic", false); got <= 0 || got > createLag {
		t.Errorf("just created, not cached: pending %v, want in (0, %v]", got, createLag)
	}
	if got := r.pending("ns/a-generic", true); got != 0 {
		t.Errorf("cached: pending %v, want 0", got)
	}
	if got := r.pending("ns/a-generic", false); got != 0 {
		t.Errorf("after the cache showed it, gone again: pending %v, want 0 (create it again)", got)
	}
	r.add("ns/b-generic")
	r.at["ns/b-generic"] = time.Now().Add(-createLag)
	if got := r.pending("ns/b-generic", false); got != 0 {
		t.Errorf("created createLag ago, never cached: pending %v, want 0 (look again)", got)
	}
}

// A Subscription being deleted reads its Bases live only once its cache
// holds none of them: every Base's deletion brings it back, and a live read
// of all its Bases each time cost a fleet's deletion a read of a thousand
// Bases a thousand times.
func TestFinalizeReadsBasesLiveOnlyAtTheEnd(t *testing.T) {
	h := start(t, seedObjects(subscription("app", nsFeed))...)
	h.pending(nsA, "app-generic")
	h.pending(nsB, "app-generic")
	uid := h.sub("app").UID
	var mu sync.Mutex
	var cachedAtList []int
	h.cs.PrependReactor("list", "bases", func(clienttesting.Action) (bool, runtime.Object, error) {
		n := 0
		for _, ns := range []string{nsA, nsB} {
			if b, err := h.ctl.bases.Bases(ns).Get("app"); err == nil && b.Labels[appsv1alpha1.LabelSubscriptionUID] == string(uid) {
				n++
			}
		}
		mu.Lock()
		cachedAtList = append(cachedAtList, n)
		mu.Unlock()
		return false, nil, nil
	})
	if err := h.cs.AppsV1alpha1().Subscriptions("default").Delete(h.ctx, "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.deployerCleans(nsA, "app-generic")
	h.deployerCleans(nsB, "app-generic")
	h.eventually("the Subscription gone", func() (bool, string) { return h.sub("app") == nil, "still there" })
	mu.Lock()
	defer mu.Unlock()
	if len(cachedAtList) == 0 {
		t.Fatal("the Bases were never read live: a Base not cached yet could be left behind")
	}
	for _, n := range cachedAtList {
		if n > 0 {
			t.Errorf("Bases read live while the cache held %d of them (cached at each live read: %v), want live reads only once the cache holds none", n, cachedAtList)
			break
		}
	}
}

// A round in which one Base's write fails still writes and announces the
// others (they are in place by the next round, which would not announce
// them), and the next round binds the one that failed.
func TestPartlyFailedRoundAnnouncesWhatItBound(t *testing.T) {
	h := newHarness(t, seedObjects(subscription("app", nsFeed))...)
	var failed atomic.Bool
	h.cs.PrependReactor("create", "bases", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == nsB && failed.CompareAndSwap(false, true) {
			return true, nil, errors.New("injected: the parent did not answer")
		}
		return false, nil, nil
	})
	h.run()
	h.pending(nsA, "app-generic")
	h.pending(nsB, "app-generic")
	if !failed.Load() {
		t.Fatal("the injected failure never happened")
	}
	// A round announces what it bound after its writes, so the second
	// Description can be seen before the second Bound event is recorded.
	var bound []string
	h.eventually("two Bound events", func() (bool, string) {
		bound = h.events.matching("Subscription default/app", " Bound")
		return len(bound) >= 2, fmt.Sprint(bound)
	})
	if len(bound) != 2 || !strings.Contains(bound[0], "bound to 1 more cluster: created Base app in namespace "+nsA) ||
		!strings.Contains(bound[1], "bound to 1 more cluster: created Base app in namespace "+nsB) {
		t.Errorf("Bound events %q, want %s's in the round that failed %s's, then %s's", bound, nsA, nsB, nsB)
	}
}
