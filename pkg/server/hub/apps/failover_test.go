package apps

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/server/hub/lifecycle"
)

// splitSubscription divides deployFeed's 3 replicas 1:1 over edge-a and
// edge-b by static weights: 2 and 1.
func splitSubscription(name string) *appsv1alpha1.Subscription {
	s := subscription(name, nsFeed, deployFeed)
	s.Spec.SchedulingStrategy = appsv1alpha1.DividingSchedulingStrategy
	s.Spec.DividingScheduling = &appsv1alpha1.DividingScheduling{Type: appsv1alpha1.StaticReplicaDividingType}
	s.Spec.Subscribers = []appsv1alpha1.Subscriber{
		{ClusterAffinity: &metav1.LabelSelector{MatchLabels: map[string]string{clusterv1beta1.LabelClusterName: "edge-a"}}, Weight: 1},
		{ClusterAffinity: &metav1.LabelSelector{MatchLabels: map[string]string{clusterv1beta1.LabelClusterName: "edge-b"}}, Weight: 1},
	}
	return s
}

// setEdgeBFailover adds (on) or removes the hub's failover taint on
// edge-b, as lifecycle.Failover does, and waits until the controller has it.
func (h *harness) setEdgeBFailover(on bool) {
	h.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		mb, err := h.cs.ClustersV1beta1().ManagedClusters(nsB).Get(h.ctx, "edge-b", metav1.GetOptions{})
		if err != nil {
			return err
		}
		mb.Spec.Taints, mb.Annotations = nil, nil
		if on {
			mb.Spec.Taints = []corev1.Taint{{Key: clusterv1beta1.TaintClusterUnschedulable, Value: "ClusterStatusUnknown", Effect: corev1.TaintEffectNoSchedule}}
			mb.Annotations = map[string]string{lifecycle.AnnotationFailoverTaint: "2026-12-06T19:00:00Z"}
		}
		_, err = h.cs.ClustersV1beta1().ManagedClusters(nsB).Update(h.ctx, mb, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.eventually("the controller has edge-b's taints", func() (bool, string) {
		m, err := h.ctl.clusters.ManagedClusters(nsB).Get("edge-b")
		return err == nil && clusterv1beta1.HasFailoverTaint(m.Spec.Taints) == on, fmt.Sprint(m.Spec.Taints)
	})
}

// settled waits until a round of split that began after now has applied
// its Bases: a plan is kept only by a round that began after the last
// change of its inputs (plans.put), and inputsChanged drops the last one.
func (h *harness) settled() {
	h.t.Helper()
	h.ctl.inputsChanged("default/split")
	h.eventually("a round of split made with the caches as they are", func() (bool, string) { return h.ctl.plans.get("default/split") != nil, "" })
}

func (h *harness) bindings(name string) []string { return h.sub(name).Status.BindingClusters }

const movedMessage = "cluster " + nsB + "/edge-b is tainted clusters.clusternet.io/unschedulable (not Ready for longer than the failover grace period): " +
	"its replicas (apps/v1/Deployment/foo/my-nginx 1) are placed on healthy clusters (apps/v1/Deployment/foo/my-nginx: " + nsA + "/edge-a 3)"

// A failed-over cluster loses the replicas of dividing Subscriptions that
// do not tolerate the taint, and keeps Replication ones; its Base stays
// unless the Subscription opts in to deleting it. With the gate off, the
// taint is an ordinary NoSchedule one: nothing bound moves.
func TestFailover(t *testing.T) {
	tests := []struct {
		name      string
		gateOff   bool
		edit      func(*appsv1alpha1.Subscription)
		wantMoved bool
		wantEvent string
		deleted   bool
	}{{
		name:      "replicas move, the Base stays as it was",
		wantMoved: true,
		wantEvent: movedMessage + "; Base " + nsB + "/split and its Descriptions stay as they were until it is back (annotation apps.clusternet.io/failover-delete=true deletes them)",
	}, {
		name: "opted in: the Base is deleted",
		edit: func(s *appsv1alpha1.Subscription) {
			s.Annotations = map[string]string{AnnotationFailoverDelete: "true"}
		},
		wantMoved: true,
		wantEvent: movedMessage + "; annotation apps.clusternet.io/failover-delete=true: deleting Base " + nsB + "/split and its Descriptions",
		deleted:   true,
	}, {
		name: "a Subscription tolerating the taint keeps the cluster",
		edit: func(s *appsv1alpha1.Subscription) {
			s.Spec.ClusterTolerations = []corev1.Toleration{{Key: clusterv1beta1.TaintClusterUnschedulable, Operator: corev1.TolerationOpExists}}
		},
	}, {
		name:    "gate off: an ordinary NoSchedule taint",
		gateOff: true,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			split := splitSubscription("split")
			if tc.edit != nil {
				tc.edit(split)
			}
			h := newHarness(t, seedObjects(split, subscription("copy", nsFeed))...)
			h.failOver = !tc.gateOff
			h.run()
			h.eventually("divided 2 and 1", func() (bool, string) {
				a, b := replicasIn(h.desc(nsA, "split-generic")), replicasIn(h.desc(nsB, "split-generic"))
				return a == 2 && b == 1, fmt.Sprint(a, b)
			})
			both := []string{nsA + "/edge-a", nsB + "/edge-b"}
			h.eventually("copy on both", func() (bool, string) { return cmp.Equal(both, h.bindings("copy")), fmt.Sprint(h.bindings("copy")) })

			h.setEdgeBFailover(true)
			h.settled()
			wantA, wantBindings := 2, both
			if tc.wantMoved {
				wantA, wantBindings = 3, []string{nsA + "/edge-a"}
			}
			h.eventually("split placed", func() (bool, string) {
				a := replicasIn(h.desc(nsA, "split-generic"))
				return a == wantA && cmp.Equal(wantBindings, h.bindings("split")), fmt.Sprintf("edge-a runs %d, bound to %v", a, h.bindings("split"))
			})
			if !cmp.Equal(both, h.bindings("copy")) {
				t.Errorf("Replication bound to %v, want both clusters still", h.bindings("copy"))
			}
			events := h.events.matching("Subscription default/split", ReasonFailedOver)
			switch {
			case tc.wantEvent == "" && len(events) > 0:
				t.Errorf("FailedOver events %q, want none", events)
			case tc.wantEvent != "" && !cmp.Equal(events, []string{"Subscription default/split Normal FailedOver: " + tc.wantEvent}):
				t.Errorf("FailedOver events %q, want one: %s", events, tc.wantEvent)
			}
			if unbound := h.events.matching("Subscription default/split", "Unbound"); len(unbound) > 0 {
				t.Errorf("Unbound events %q: a failed-over cluster is announced as such", unbound)
			}
			if tc.deleted {
				h.deployerCleans(nsB, "split-generic")
				h.eventually("edge-b's Base gone", func() (bool, string) { return h.base(nsB, "split") == nil, "" })
				return
			}
			// Kept as it was: still there, its share what it was.
			if b := replicasIn(h.desc(nsB, "split-generic")); b != 1 {
				t.Errorf("edge-b's Description says %d replicas, want its 1 as before", b)
			}
			_, marked := h.base(nsB, "split").Annotations[AnnotationFailedOver]
			if marked != tc.wantMoved {
				t.Errorf("edge-b's Base marked %s: %t, want %t", AnnotationFailedOver, marked, tc.wantMoved)
			}
		})
	}
}

// The cluster back, the Subscription is scheduled again as its strategy
// says (static weights: 2 and 1 again), its kept Base an ordinary one
// again, and the return announced.
func TestFailback(t *testing.T) {
	h := failOverEdgeB(t)
	h.setEdgeBFailover(false)
	h.eventually("divided 2 and 1 again", func() (bool, string) {
		a, b := replicasIn(h.desc(nsA, "split-generic")), replicasIn(h.desc(nsB, "split-generic"))
		_, marked := h.base(nsB, "split").Annotations[AnnotationFailedOver]
		return a == 2 && b == 1 && !marked, fmt.Sprint(a, b, marked)
	})
	want := "Subscription default/split Normal FailedBack: cluster " + nsB + "/edge-b is back and bound again: it runs apps/v1/Deployment/foo/my-nginx 1 " +
		"(it ran apps/v1/Deployment/foo/my-nginx 1 before it failed over); placement now apps/v1/Deployment/foo/my-nginx: " + nsA + "/edge-a 2, " + nsB + "/edge-b 1"
	if got := h.failedBackEvents(); !cmp.Equal(got, []string{want}) {
		t.Errorf("FailedBack events %q, want\n%s", got, want)
	}
}

// Subscriptions queued for returning clusters are spread failbackSpacing
// apart, across clusters, from the first one queued at once; one queued
// again before its slot comes (another cluster back, the same event seen
// twice) keeps its slot, so slots and delays count Subscriptions, not
// calls.
func TestFailbackPacing(t *testing.T) {
	const clusters, subs = 3, 4
	now := time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)
	f := failback{spacing: 100 * time.Millisecond}
	var delays []time.Duration
	for range clusters { // back at once
		for range 2 { // each cluster's return seen twice
			for s := range subs {
				if d, ok := f.slot(fmt.Sprintf("default/sub-%d", s), now); ok {
					delays = append(delays, d)
				}
			}
		}
	}
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	if !cmp.Equal(want, delays) {
		t.Errorf("%d clusters x %d Subscriptions, each twice: slots due at %v, want %v", clusters, subs, delays, want)
	}
	// Its slot come (its round may have run), a Subscription is queued
	// again, after the others.
	if d, ok := f.slot("default/sub-0", now.Add(150*time.Millisecond)); !ok || d != 250*time.Millisecond {
		t.Errorf("sub-0 after its slot: delay %s queued %t, want 250ms true", d, ok)
	}
	// Long after, at once again.
	if d, ok := f.slot("default/sub-1", now.Add(time.Minute)); !ok || d != 0 {
		t.Errorf("a minute later: delay %s queued %t, want 0 true", d, ok)
	}
}

// Only the Subscriptions a round may change something for are queued on
// a return.
func TestMayMoveTo(t *testing.T) {
	dividing := splitSubscription("split")
	replication := subscription("copy", nsFeed)
	ext := subscription("ext", nsFeed)
	ext.Spec.SchedulerName = "my-scheduler"
	tests := []struct {
		name              string
		sub               *appsv1alpha1.Subscription
		hasBase, selected bool
		want              bool
	}{
		{"dividing with a Base there (kept on failover)", dividing, true, true, true},
		{"another scheduler's, with a Base there", ext, true, true, true},
		{"replication with a Base there: bound throughout", replication, true, true, false},
		{"replication selecting it, no Base there: may bind it now", replication, false, true, true},
		{"dividing selecting it, no Base there", dividing, false, true, true},
		{"not selecting it, no Base there", dividing, false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mayMoveTo(tc.sub, tc.hasBase, tc.selected); got != tc.want {
				t.Errorf("mayMoveTo = %t, want %t", got, tc.want)
			}
		})
	}
}

// failOverEdgeB runs split divided 2 and 1, fails edge-b over, and waits
// until its Base is kept aside.
func failOverEdgeB(t *testing.T, objects ...runtime.Object) *harness {
	t.Helper()
	h := newHarness(t, seedObjects(append([]runtime.Object{splitSubscription("split")}, objects...)...)...)
	h.failOver = true
	h.run()
	h.eventually("divided 2 and 1", func() (bool, string) {
		a, b := replicasIn(h.desc(nsA, "split-generic")), replicasIn(h.desc(nsB, "split-generic"))
		return a == 2 && b == 1, fmt.Sprint(a, b)
	})
	h.setEdgeBFailover(true)
	h.eventually("edge-b's Base kept aside", func() (bool, string) {
		b := h.base(nsB, "split")
		_, marked := b.Annotations[AnnotationFailedOver]
		return marked && replicasIn(h.desc(nsA, "split-generic")) == 3, fmt.Sprint(b.Annotations)
	})
	return h
}

// The user's affinity edit drops a failed-over cluster: scheduling drops
// it for that reason, not the failover exception, so its kept Base is
// deleted as any unbound one, with no further FailedOver event.
func TestFailedOverClusterDroppedByAffinity(t *testing.T) {
	h := failOverEdgeB(t)
	h.updateSub("split", func(s *appsv1alpha1.Subscription) { s.Spec.Subscribers = s.Spec.Subscribers[:1] })
	h.deployerCleans(nsB, "split-generic")
	h.eventually("edge-b's Base gone", func() (bool, string) { return h.base(nsB, "split") == nil, "" })
	if got := h.events.matching("Subscription default/split", ReasonFailedOver); len(got) != 1 {
		t.Errorf("FailedOver events %q, want only the one when it failed over", got)
	}
	if got := h.events.matching(ReasonFailedBack); len(got) > 0 {
		t.Errorf("FailedBack events %q: the cluster is not back", got)
	}
	want := "Subscription default/split Normal Unbound: cluster " + nsB + " no longer matches: deleting Base " + nsB + "/split and its Descriptions"
	h.eventually("Unbound announced", func() (bool, string) {
		got := h.events.matching("Unbound")
		return len(got) > 0, fmt.Sprint(got)
	})
	// A round that began before the cache saw the deletion says it again.
	if got := h.events.matching("Unbound"); slices.ContainsFunc(got, func(e string) bool { return e != want }) {
		t.Errorf("Unbound events %q, want only\n%s", got, want)
	}
}

// Opting in to deleting after the Base was kept deletes it, and says so.
func TestFailoverOptInLater(t *testing.T) {
	h := failOverEdgeB(t)
	h.updateSub("split", func(s *appsv1alpha1.Subscription) {
		s.Annotations = map[string]string{AnnotationFailoverDelete: "true"}
	})
	h.deployerCleans(nsB, "split-generic")
	h.eventually("edge-b's Base gone", func() (bool, string) { return h.base(nsB, "split") == nil, "" })
	want := "Subscription default/split Normal FailedOver: cluster " + nsB + "/edge-b is still failed over and annotation apps.clusternet.io/failover-delete=true is set now: " +
		"deleting Base " + nsB + "/split, kept as it was since it failed over, and its Descriptions"
	if got := h.events.matching("is set now"); !cmp.Equal(got, []string{want}) {
		t.Errorf("events %q, want\n%s", got, want)
	}
	if got := h.events.matching("Unbound"); len(got) > 0 {
		t.Errorf("Unbound events %q: the opt-in is why", got)
	}
}

// With the gate off (a restart after a run with it on), a Base kept on a
// still-tainted cluster is bound again as before, its mark cleared: not
// deleted, and not announced as the cluster being back.
func TestFailoverGateOffKeptBase(t *testing.T) {
	h := newHarness(t, seedObjects(splitSubscription("split"))...)
	h.run()
	h.eventually("divided 2 and 1", func() (bool, string) {
		a, b := replicasIn(h.desc(nsA, "split-generic")), replicasIn(h.desc(nsB, "split-generic"))
		return a == 2 && b == 1, fmt.Sprint(a, b)
	})
	h.setEdgeBFailover(true)
	// What a run with the gate on left: the Base marked kept.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		b, err := h.cs.AppsV1alpha1().Bases(nsB).Get(h.ctx, "split", metav1.GetOptions{})
		if err != nil {
			return err
		}
		b.Annotations[AnnotationFailedOver] = "2026-12-06T19:00:00Z"
		_, err = h.cs.AppsV1alpha1().Bases(nsB).Update(h.ctx, b, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	h.eventually("the mark cleared", func() (bool, string) {
		b := h.base(nsB, "split")
		if b == nil {
			return false, "Base deleted"
		}
		_, marked := b.Annotations[AnnotationFailedOver]
		return !marked, fmt.Sprint(b.Annotations)
	})
	h.settled()
	if b := h.base(nsB, "split"); b == nil || b.DeletionTimestamp != nil {
		t.Fatalf("edge-b's Base deleted with the gate off")
	}
	if a, b := replicasIn(h.desc(nsA, "split-generic")), replicasIn(h.desc(nsB, "split-generic")); a != 2 || b != 1 {
		t.Errorf("divided %d and %d, want 2 and 1 as before", a, b)
	}
	if got := h.events.matching("is back"); len(got) > 0 {
		t.Errorf("events %q: edge-b is not back", got)
	}
	want := "Subscription default/split Normal FailedBack: cluster " + nsB + "/edge-b is still tainted clusters.clusternet.io/unschedulable, but feature gate FailOver is off: " +
		"bound again as before it failed over: it runs apps/v1/Deployment/foo/my-nginx 1 (it ran apps/v1/Deployment/foo/my-nginx 1 before it failed over); " +
		"placement now apps/v1/Deployment/foo/my-nginx: " + nsA + "/edge-a 2, " + nsB + "/edge-b 1"
	// Announced once, by the round whose write took the mark away: a round
	// that began before the cache showed the mark, or showed it gone, says
	// nothing.
	if got := h.failedBackEvents(); !cmp.Equal(got, []string{want}) {
		t.Errorf("FailedBack events %q, want\n%s", got, want)
	}
}

// failedBackEvents waits for a FailedBack event and returns them all. The
// round records it after its writes, so a test that saw the writes polls.
func (h *harness) failedBackEvents() []string {
	h.t.Helper()
	var got []string
	h.eventually("FailedBack announced", func() (bool, string) {
		got = h.events.matching(ReasonFailedBack)
		return len(got) > 0, ""
	})
	return got
}

// Only the failover taint going is a return: other changes to a cluster
// queue every Subscription as before.
func TestOnlyFailoverTaintLeft(t *testing.T) {
	failed := cluster(nsB, "edge-b", idB, "env", "demo")
	failed.Spec.Taints = []corev1.Taint{{Key: clusterv1beta1.TaintClusterUnschedulable, Effect: corev1.TaintEffectNoSchedule}, {Key: "dedicated", Effect: corev1.TaintEffectNoSchedule}}
	back := failed.DeepCopy()
	back.Spec.Taints = back.Spec.Taints[1:]
	relabelled := back.DeepCopy()
	relabelled.Labels["env"] = "prod"
	tests := []struct {
		name   string
		o, n   *clusterv1beta1.ManagedCluster
		expect bool
	}{
		{"the failover taint went", failed, back, true},
		{"it went and the labels changed", failed, relabelled, false},
		{"it came", back, failed, false},
		{"a new cluster", nil, back, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := onlyFailoverTaintLeft(tc.o, tc.n); got != tc.expect {
				t.Errorf("onlyFailoverTaintLeft = %t, want %t", got, tc.expect)
			}
		})
	}
}

// Dynamic dividing, the cluster back: the replicas stay where they moved,
// since edge-a has room for them; edge-b is bound again as any cluster
// with room is by Spread, with none of them, so its stale copy is scaled
// to nothing.
func TestFailbackDynamicMovesNothingBack(t *testing.T) {
	h := newHarness(t, seedObjects(dynamicSubscription("spread"))...)
	h.failOver = true
	h.run()
	h.eventually("divided 2 and 1", func() (bool, string) {
		a, b := replicasIn(h.desc(nsA, "spread-generic")), replicasIn(h.desc(nsB, "spread-generic"))
		return a == 2 && b == 1, fmt.Sprint(a, b)
	})
	h.setEdgeBFailover(true)
	h.eventually("3 on edge-a, edge-b's Description as it was, its Base marked in the controller's cache", func() (bool, string) {
		a, b := replicasIn(h.desc(nsA, "spread-generic")), replicasIn(h.desc(nsB, "spread-generic"))
		base, err := h.ctl.bases.Bases(nsB).Get("spread")
		return a == 3 && b == 1 && err == nil && keptFailedOver(base), fmt.Sprint(a, b, err)
	})
	h.setEdgeBFailover(false)
	h.eventually("3 and 0", func() (bool, string) {
		got := h.sub("spread").Status.Replicas[deployKey]
		return cmp.Equal(divided(3, 0), got) && replicasIn(h.desc(nsB, "spread-generic")) == 0, fmt.Sprint(got)
	})
	want := "Subscription default/spread Normal FailedBack: cluster " + nsB + "/edge-b is back and bound again: it runs apps/v1/Deployment/foo/my-nginx 0 " +
		"(it ran apps/v1/Deployment/foo/my-nginx 1 before it failed over); placement now apps/v1/Deployment/foo/my-nginx: " + nsA + "/edge-a 3"
	if got := h.failedBackEvents(); !cmp.Equal(got, []string{want}) {
		t.Errorf("FailedBack events %q, want %q", got, want)
	}
}
