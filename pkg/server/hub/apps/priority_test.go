package apps

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/server/hub/apps/scheduling"
)

// TestQueueByPriority: the subscriptions queue hands out the highest
// priority first, ties first come, first served; a key added again while
// it waits keeps its turn, or moves with its new priority; a key added
// while it is synced is handed out again only once done, then by its
// priority.
func TestQueueByPriority(t *testing.T) {
	var mu sync.Mutex
	prio := map[string]int32{"a": 0, "b": 5, "c": 5, "d": 10, "e": 5}
	q := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Queue: newByPriority(func(k string) int32 {
		mu.Lock()
		defer mu.Unlock()
		return prio[k]
	})})
	defer q.ShutDown()
	next := func() string {
		k, _ := q.Get()
		q.Done(k)
		return k
	}
	for _, k := range []string{"a", "b", "c", "d", "b"} {
		q.Add(k)
	}
	if got := next(); got != "d" {
		t.Errorf("first %q, want the highest priority, d", got)
	}
	mu.Lock()
	prio["a"] = 7
	mu.Unlock()
	q.Add("a") // waiting: moves up with its new priority
	busy, _ := q.Get()
	q.Add(busy) // being synced: waits until done
	q.Add("e")
	var got []string
	for range 2 {
		got = append(got, next())
	}
	q.Done(busy)
	for q.Len() > 0 {
		got = append(got, next())
	}
	// busy is a (priority 7 now); then b and c, first come, first served,
	// though a, of higher priority, was added again meanwhile: it was
	// being synced; once done, a before e.
	if diff := cmp.Diff([]string{"b", "c", "a", "e"}, got); busy != "a" || diff != "" {
		t.Errorf("handed out %q, then (-want +got):\n%s", busy, diff)
	}
}

// TestSubscriptionsScheduledByPriority: Subscriptions waiting together are
// scheduled in priority order (one worker: the order of their first
// writes), unset being the lowest.
func TestSubscriptionsScheduledByPriority(t *testing.T) {
	prios := map[string]*int32{"p-a": ptr.To[int32](1), "p-b": ptr.To[int32](7), "p-c": ptr.To[int32](3), "p-d": ptr.To[int32](10), "p-e": nil}
	objs := seedObjects()
	for _, name := range slices.Sorted(maps.Keys(prios)) {
		s := subscription(name, deployFeed)
		s.Spec.Priority = prios[name]
		objs = append(objs, s)
	}
	h := newHarness(t, objs...)
	h.workers = 1
	var mu sync.Mutex
	var order []string
	h.cs.PrependReactor("update", "subscriptions", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "" {
			name := a.(clienttesting.UpdateAction).GetObject().(*appsv1alpha1.Subscription).Name
			mu.Lock()
			if !slices.Contains(order, name) {
				order = append(order, name)
			}
			mu.Unlock()
		}
		return false, nil, nil
	})
	h.run()
	h.eventually("every Subscription synced", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == len(prios), fmt.Sprint(order)
	})
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"p-d", "p-b", "p-c", "p-a", "p-e"}, order); diff != "" {
		t.Errorf("first writes in order (-want +got):\n%s", diff)
	}
}

// Preemption fixtures: edge-a (size small) holds 3 pods, edge-b 20; low
// fills edge-a first (Binpack preferring it) with its 3 replicas; high
// asks for 2 replicas on edge-a only.
const highJSON = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web-high","namespace":"foo"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"high"}},"template":{"metadata":{"labels":{"app":"high"}},"spec":{"containers":[{"image":"nginx:1.25","name":"nginx"}]}}}}`

var highFeed = appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "web-high"}

func roomObjects(extra ...runtime.Object) []runtime.Object {
	a := cluster(nsA, "edge-a", idA, "env", "demo", "size", "small")
	a.Status.Allocatable[corev1.ResourcePods] = resource.MustParse("3")
	b := cluster(nsB, "edge-b", idB, "env", "demo")
	b.Status.Allocatable[corev1.ResourcePods] = resource.MustParse("20")
	return append([]runtime.Object{a, b, template(deployJSON), template(highJSON)}, extra...)
}

func lowSubscription() *appsv1alpha1.Subscription {
	s := dynamicSubscription("low")
	s.Spec.DividingScheduling.DynamicDividing = &appsv1alpha1.DynamicDividing{Strategy: appsv1alpha1.BinpackDividingStrategy,
		PreferredClusters: []metav1.LabelSelector{{MatchLabels: map[string]string{"size": "small"}}}}
	return s
}

func highSubscription(priority int32, policy *appsv1alpha1.PreemptionPolicy) *appsv1alpha1.Subscription {
	s := subscription("high", highFeed)
	s.Spec.Subscribers = []appsv1alpha1.Subscriber{{ClusterAffinity: &metav1.LabelSelector{MatchLabels: map[string]string{"size": "small"}}}}
	s.Spec.SchedulingStrategy = appsv1alpha1.DividingSchedulingStrategy
	s.Spec.DividingScheduling = &appsv1alpha1.DividingScheduling{Type: appsv1alpha1.DynamicReplicaDividingType,
		DynamicDividing: &appsv1alpha1.DynamicDividing{Strategy: appsv1alpha1.SpreadDividingStrategy}}
	s.Spec.Priority, s.Spec.PreemptionPolicy = ptr.To(priority), policy
	return s
}

// running is where the Descriptions of sub run its Deployment, by namespace:
// -1 where it has none.
func (h *harness) running(sub string) [2]int {
	return [2]int{replicasIn(h.desc(nsA, sub+"-generic")), replicasIn(h.desc(nsB, sub+"-generic"))}
}

// TestPreemption: low fills edge-a; high, created after it and asking for
// edge-a only, takes the room when it may preempt (priority above low's,
// spec.preemptionPolicy unset meaning PreemptLowerPriority): low is queued
// again without changing, and moves what no longer fits to edge-b, where
// room is left. One Preempting event on high and one Preempted on low
// say so, once: later rounds of either, which preempt nothing new, add
// none. With PreemptNever, or equal priority, low keeps edge-a and high,
// finding no room, places nothing: Scheduled False, reason NoRoom.
func TestPreemption(t *testing.T) {
	never := ptr.To(appsv1alpha1.PreemptNever)
	tests := []struct {
		name     string
		high     *appsv1alpha1.Subscription
		wantLow  [2]int
		wantHigh [2]int
		preempts bool
	}{
		{"higher priority, preemptionPolicy unset", highSubscription(10, nil), [2]int{1, 2}, [2]int{2, -1}, true},
		{"higher priority, PreemptLowerPriority", highSubscription(10, ptr.To(appsv1alpha1.PreemptLowerPriority)), [2]int{1, 2}, [2]int{2, -1}, true},
		{"higher priority, PreemptNever", highSubscription(10, never), [2]int{3, -1}, [2]int{-1, -1}, false},
		{"equal priority", highSubscription(0, nil), [2]int{3, -1}, [2]int{-1, -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, roomObjects(lowSubscription())...)
			h.eventually("low filling edge-a", func() (bool, string) {
				got := h.running("low")
				return got == [2]int{3, -1} && h.sub("low").Status.Replicas[deployKey][nsA+"/edge-a"] == 3, fmt.Sprint(got)
			})
			h.create(tc.high)
			wantScheduled := metav1.Condition{Type: ConditionScheduled, Status: metav1.ConditionTrue, Reason: ReasonScheduled, Message: "bound to 1 clusters"}
			if !tc.preempts {
				wantScheduled = metav1.Condition{Type: ConditionScheduled, Status: metav1.ConditionFalse, Reason: ReasonNoRoom,
					Message: "apps/v1/Deployment/foo/web-high asks for 2 replicas but none of the 1 clusters it may use has room for one: none is placed until room frees"}
			}
			h.eventually("high placed as it may, low where it fits", func() (bool, string) {
				low, high := h.running("low"), h.running("high")
				c := cond(h.sub("high").Status.Conditions, ConditionScheduled)
				c.LastTransitionTime, c.ObservedGeneration = metav1.Time{}, 0
				return low == tc.wantLow && high == tc.wantHigh && c == wantScheduled, fmt.Sprintf("low %v high %v, high's Scheduled %+v", low, high, c)
			})

			// A round of high that changes nothing it places, and one of
			// low: neither preempts anything new.
			h.updateSub("high", func(s *appsv1alpha1.Subscription) {
				s.Spec.ClusterTolerations = []corev1.Toleration{{Key: "maintenance", Operator: corev1.TolerationOpExists}}
			})
			h.updateSub("low", func(s *appsv1alpha1.Subscription) {
				s.Spec.ClusterTolerations = []corev1.Toleration{{Key: "maintenance", Operator: corev1.TolerationOpExists}}
			})
			for _, name := range []string{"high", "low"} {
				h.eventually(name+"'s round after the edit", func() (bool, string) {
					s := h.sub(name)
					return cond(s.Status.Conditions, ConditionScheduled).ObservedGeneration == s.Generation, fmt.Sprint(s.Status.Conditions)
				})
			}
			if low, high := h.running("low"), h.running("high"); low != tc.wantLow || high != tc.wantHigh {
				t.Errorf("after more rounds: low %v high %v, want %v and %v", low, high, tc.wantLow, tc.wantHigh)
			}

			preempting := h.events.matching("Subscription default/high", corev1.EventTypeNormal, ReasonPreempting)
			preempted := h.events.matching("Subscription default/low", corev1.EventTypeWarning, ReasonPreempted)
			if !tc.preempts {
				if len(preempting)+len(preempted) > 0 {
					t.Errorf("preemption events where none may preempt: %q %q", preempting, preempted)
				}
				return
			}
			want := []string{fmt.Sprintf("Subscription default/high Normal Preempting: placing replicas in the room of Subscriptions of lower priority than 10: on %s/edge-a, Subscription default/low; their replicas there move to clusters with room when they are next scheduled", nsA)}
			if diff := cmp.Diff(want, preempting); diff != "" {
				t.Errorf("Preempting events on high (-want +got):\n%s", diff)
			}
			want = []string{fmt.Sprintf("Subscription default/low Warning Preempted: Subscription default/high (priority 10, above this one's 0) takes the room of this Subscription's replicas on %s/edge-a: they move to clusters with room, or stay short of capacity where they are", nsA)}
			if diff := cmp.Diff(want, preempted); diff != "" {
				t.Errorf("Preempted events on low (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBookForgetsDeletedSubscription: a Subscription deleted leaves the
// book at once (its Bases are going), and the room it took is the
// others' again.
func TestBookForgetsDeletedSubscription(t *testing.T) {
	h := start(t, roomObjects(lowSubscription(), highSubscription(10, nil))...)
	h.eventually("both placed", func() (bool, string) {
		return h.running("high") == [2]int{2, -1} && h.running("low")[0] >= 0, fmt.Sprint(h.running("low"), h.running("high"))
	})
	if e, ok := h.ctl.book.Entry("default/high"); !ok || e.Priority != 10 || !e.Movable || !e.Preempts {
		t.Fatalf("high in the book: %+v (%v)", e, ok)
	}
	if err := h.cs.AppsV1alpha1().Subscriptions("default").Delete(h.ctx, "high", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("high out of the book", func() (bool, string) {
		_, ok := h.ctl.book.Entry("default/high")
		return !ok, "still there"
	})
	h.eventually("edge-a holding only low's replicas by the book", func() (bool, string) {
		others, _ := h.ctl.book.Room("default/other", nsA+"/edge-a", 0, false)
		low, _ := h.ctl.book.Entry("default/low")
		return cmp.Equal(low.On[nsA+"/edge-a"], others), fmt.Sprintf("others %v, low %v", others, low.On)
	})
}

// TestCapacityChangeRequeuesShortSubscriptions: a Dynamic Subscription
// whose replicas do not all fit is scheduled again when a cluster it
// selects gains room, and moves its excess there; a new one avoids a
// cluster whose predictor reports it full (status.available with
// status.predictorEnabled), though the book has room there.
func TestCapacityChangeRequeuesShortSubscriptions(t *testing.T) {
	objs := roomObjects(dynamicSubscription("dyn"))
	objs[1].(*clusterv1beta1.ManagedCluster).Status.Allocatable[corev1.ResourcePods] = resource.MustParse("1")
	h := start(t, objs...)
	h.eventually("3 over edge-a and edge-b, as they hold 3 and 1", func() (bool, string) {
		got := h.running("dyn")
		return got == [2]int{2, 1}, fmt.Sprint(got)
	})
	h.scaleTemplate(6)
	h.eventually("6 spread anyway, short of capacity", func() (bool, string) {
		got := h.running("dyn")
		c := cond(h.sub("dyn").Status.Conditions, ConditionScheduled)
		return got == [2]int{5, 1} && strings.Contains(c.Message, "asks for 6 replicas but the 2 chosen clusters hold 4"), fmt.Sprint(got, c.Message)
	})
	h.setEdgeBPods(10)
	h.eventually("edge-a's 2 over its capacity moved to edge-b's new room, nothing else", func() (bool, string) {
		got := h.running("dyn")
		c := cond(h.sub("dyn").Status.Conditions, ConditionScheduled)
		return got == [2]int{3, 3} && c.Message == "bound to 2 clusters", fmt.Sprintf("%v, Scheduled %q", got, c.Message)
	})

	h.editClusterStatus(nsA, "edge-a", func(s *clusterv1beta1.ManagedClusterStatus) {
		s.Allocatable[corev1.ResourcePods] = resource.MustParse("10")
	})
	h.editClusterStatus(nsB, "edge-b", func(s *clusterv1beta1.ManagedClusterStatus) {
		s.PredictorEnabled = true
		s.Available = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourcePods: resource.MustParse("0")}
	})
	s := highSubscription(0, nil)
	s.Spec.Subscribers[0].ClusterAffinity = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "demo"}}
	h.create(s)
	h.eventually("the new one on edge-a alone", func() (bool, string) {
		got := h.running("high")
		return got == [2]int{2, -1}, fmt.Sprint(got)
	})
}

// editClusterStatus edits the status of ManagedCluster ns/name and waits
// until the controller has it.
func (h *harness) editClusterStatus(ns, name string, edit func(*clusterv1beta1.ManagedClusterStatus)) {
	h.t.Helper()
	m, err := h.cs.ClustersV1beta1().ManagedClusters(ns).Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	edit(&m.Status)
	want := m.Status
	if _, err := h.cs.ClustersV1beta1().ManagedClusters(ns).UpdateStatus(h.ctx, m, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.eventually("the controller has "+name+"'s new status", func() (bool, string) {
		got, err := h.ctl.clusters.ManagedClusters(ns).Get(name)
		return err == nil && cmp.Equal(want, got.Status), "not yet"
	})
}

// TestRebuildBook: after a restart the book is filled from the statuses
// before any round runs: a Replication Subscription takes all its
// replicas on each binding cluster; Dynamic ones, taken in the order they
// were created, the part of their division that fits (a later one's
// replicas spread anyway on a full cluster take no room there).
func TestRebuildBook(t *testing.T) {
	at := func(s *appsv1alpha1.Subscription, minute int, bindings []string, replicas map[string]int32) *appsv1alpha1.Subscription {
		s.CreationTimestamp = metav1.Date(2026, 1, 1, 0, minute, 0, 0, time.UTC)
		s.Status.BindingClusters = bindings
		if replicas != nil {
			s.Status.Replicas = map[string]map[string]int32{deployKey: replicas}
		}
		return s
	}
	a, b := nsA+"/edge-a", nsB+"/edge-b"
	late := dynamicSubscription("late")
	objs := roomObjects(
		at(late, 2, []string{a, b}, map[string]int32{a: 2, b: 1}),
		at(lowSubscription(), 1, []string{a}, map[string]int32{a: 3}),
		at(subscription("rep", deployFeed), 3, []string{a, b}, nil),
	)
	h := newHarness(t, objs...)
	informers := externalversions.NewSharedInformerFactory(h.cs, 0)
	ctl, err := New(Options{Clusternet: h.cs, Informers: informers, Mapper: h.mapper, Events: h.events})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	informers.Start(ctx.Done())
	defer informers.Shutdown() // after cancel: it waits for the informers to stop
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), ctl.synced...) {
		t.Fatal("caches not synced")
	}
	ctl.rebuildBook()
	pods := func(n int64) scheduling.Usage { return scheduling.Usage{corev1.ResourcePods: n * 1000} }
	want := map[string]map[string]scheduling.Usage{
		"default/low":  {a: pods(3)},
		"default/late": {b: pods(1)}, // edge-a is full of low's
		"default/rep":  {a: pods(3), b: pods(3)},
	}
	for key, on := range want {
		e, ok := ctl.book.Entry(key)
		if diff := cmp.Diff(on, e.On, cmpopts.EquateEmpty()); !ok || diff != "" {
			t.Errorf("%s in the book (%v), placed (-want +got):\n%s", key, ok, diff)
		}
	}
}

// TestHeartbeatsScheduleNothing: a heartbeat (status timestamps) queues no
// Subscription, and neither does a capacity change that can move none of
// their replicas (more room where every replica fits): no scheduling
// round runs for them, only a report's status write.
func TestHeartbeatsScheduleNothing(t *testing.T) {
	h := start(t, dynamicObjects(dynamicSubscription("dyn"), subscription("rep", deployFeed))...)
	for _, name := range []string{"dyn", "rep"} {
		h.eventually(name+" scheduled", func() (bool, string) {
			s := h.sub(name)
			return s != nil && cond(s.Status.Conditions, ConditionScheduled).Status == metav1.ConditionTrue, fmt.Sprint(s)
		})
	}
	h.pending(nsA, "rep-generic")
	// Rounds the creations queued may still be running (a first round's
	// status write queues one more): count from when they have stopped.
	before := h.runs()
	for settled := time.Now(); time.Since(settled) < time.Second; time.Sleep(50 * time.Millisecond) {
		if now := h.runs(); now.Schedule != before.Schedule {
			before, settled = now, time.Now()
		}
	}
	h.editClusterStatus(nsA, "edge-a", func(s *clusterv1beta1.ManagedClusterStatus) {
		s.LastObservedTime = metav1.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)
	})
	h.editClusterStatus(nsB, "edge-b", func(s *clusterv1beta1.ManagedClusterStatus) {
		s.Allocatable[corev1.ResourcePods] = resource.MustParse("200")
		s.PredictorEnabled = true
		s.Available = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("150")}
	})
	// A report's status write, after both: what they queued has run by
	// the time it shows.
	h.reportSuccess(nsA, "rep-generic")
	h.eventually("the report summed", func() (bool, string) {
		s := h.sub("rep")
		return s.Status.CompletedReleases == 1, fmt.Sprintf("%d/%d", s.Status.CompletedReleases, s.Status.DesiredReleases)
	})
	if after := h.runs(); after.Schedule != before.Schedule {
		t.Errorf("scheduling ran %d more times after a heartbeat and more room", after.Schedule-before.Schedule)
	}
}

func TestRoomMoved(t *testing.T) {
	rl := func(kv ...string) corev1.ResourceList {
		out := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return out
	}
	st := func(predictor bool, alloc, avail corev1.ResourceList) *clusterv1beta1.ManagedClusterStatus {
		return &clusterv1beta1.ManagedClusterStatus{PredictorEnabled: predictor, Allocatable: alloc, Available: avail}
	}
	for _, tc := range []struct {
		name         string
		o, n         *clusterv1beta1.ManagedClusterStatus
		grew, shrank bool
	}{
		{"a heartbeat", st(true, rl("cpu", "4"), rl("cpu", "2")), st(true, rl("cpu", "4"), rl("cpu", "2")), false, false},
		{"pods came", st(true, rl("cpu", "4"), rl("cpu", "2")), st(true, rl("cpu", "4"), rl("cpu", "1")), false, true},
		{"pods went", st(true, rl("cpu", "4"), rl("cpu", "1")), st(true, rl("cpu", "4"), rl("cpu", "3")), true, false},
		{"both ways", st(true, rl("cpu", "4"), rl("cpu", "1", "memory", "2Gi")), st(true, rl("cpu", "4"), rl("cpu", "3", "memory", "1Gi")), true, true},
		{"a resource no longer reported", st(true, rl("cpu", "4"), rl("cpu", "1")), st(true, rl("cpu", "4"), rl()), false, true},
		{"a node joined", st(false, rl("cpu", "4"), nil), st(false, rl("cpu", "8"), nil), true, false},
		{"available unread without the predictor", st(false, rl("cpu", "4"), rl("cpu", "1")), st(false, rl("cpu", "4"), rl("cpu", "3")), false, false},
		{"the predictor turned on", st(false, rl("cpu", "4"), nil), st(true, rl("cpu", "4"), rl("cpu", "1")), true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			grew, shrank := roomMoved(tc.o, tc.n)
			if grew != tc.grew || shrank != tc.shrank {
				t.Errorf("roomMoved = grew %v, shrank %v; want %v, %v", grew, shrank, tc.grew, tc.shrank)
			}
		})
	}
}
