package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestPriorityAndPreemption: two registered children of one 32-CPU node
// each, child 0 labelled size=small; each Deployment's replicas ask for 8
// CPUs, so a child holds exactly 4. "high" (priority 10) asks for 4
// replicas on the small child only; "low" (priority 0) for 4 on any child,
// Binpack preferring the small one. Both want all of the small child:
//
//   - high created first: it takes the small child, low goes to the other;
//   - low created first fills the small child; high, which may preempt
//     (spec.preemptionPolicy unset), takes its room: low's replicas move to
//     the other child, with a Preempted event on low and a Preempting one on
//     high, once each;
//   - the same with PreemptNever: nothing is evicted, and high, finding no
//     room, places nothing (Scheduled False, NoRoom).
//
// The children run the agent's Predictor (the testbed's agents have the
// gate on): the hub weighs their status.available beside its book.
func TestPriorityAndPreemption(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	setUpParent(t, parent)
	children := e2eutil.RegisterChildren(t, parent, tb.Children, nil)
	cs := clusternetClient(t, parent)
	mustKubectl(t, parent, "", "label", "mcls", "-n", children[0].Namespace, children[0].Name, "size=small")
	waitForHubCPUs(t, parent, cs, children, 32, 32)
	waitForIdle(t, cs, children...)
	small, other := key(children[0]), key(children[1])

	t.Run("either order: the higher priority on the small child, the lower elsewhere", func(t *testing.T) {
		for _, first := range []string{"high", "low"} {
			t.Run(first+" first", func(t *testing.T) {
				high, low := "high-"+first, "low-"+first
				defer settle(t, parent, cs, children, high, low)
				for _, name := range []string{high, low} {
					createAppRequesting(t, parent, name, 4, "8")
				}
				subs := map[string]string{high: highSubscription(high, ""), low: lowSubscription(low)}
				order := []string{high, low}
				if first == "low" {
					order = []string{low, high}
				}
				mustKubectl(t, parent, subs[order[0]], "apply", "-f", "-")
				waitForDivision(t, cs, children, order[0], map[string]int32{small: 4}, "bound to 1 clusters")
				mustKubectl(t, parent, subs[order[1]], "apply", "-f", "-")
				waitForDivision(t, cs, children, high, map[string]int32{small: 4}, "bound to 1 clusters")
				waitForDivision(t, cs, children, low, map[string]int32{other: 4}, "bound to 1 clusters")
				if first == "high" {
					preempting, preempted := e2eutil.Events(t, parent, "default", "Subscription", high, "Preempting"), e2eutil.Events(t, parent, "default", "Subscription", low, "Preempted")
					if len(preempting)+len(preempted) > 0 {
						t.Errorf("preemption events though nothing was preempted: %q %q", preempting, preempted)
					}
					return
				}
				wantEvent(t, parent, "Subscription", high, "Preempting", "Normal|Preempting|clusternet-hub|1|placing replicas in the room of Subscriptions of lower priority than 10: on "+small+", Subscription default/"+low)
				wantEvent(t, parent, "Subscription", low, "Preempted", "Warning|Preempted|clusternet-hub|1|Subscription default/"+high+" (priority 10, above this one's 0) takes the room of this Subscription's replicas on "+small)
			})
		}
	})

	t.Run("PreemptNever: the lower one keeps the small child, the higher one waits for room", func(t *testing.T) {
		high, low := "high-never", "low-never"
		defer settle(t, parent, cs, children, high, low)
		for _, name := range []string{high, low} {
			createAppRequesting(t, parent, name, 4, "8")
		}
		mustKubectl(t, parent, lowSubscription(low), "apply", "-f", "-")
		waitForDivision(t, cs, children, low, map[string]int32{small: 4}, "bound to 1 clusters")
		mustKubectl(t, parent, highSubscription(high, "PreemptNever"), "apply", "-f", "-")
		want := "apps/v1/Deployment/" + high + "/web asks for 4 replicas but none of the 1 clusters it may use has room for one: none is placed until room frees"
		waitFor(t, 90*time.Second, high+" not placed for want of room", func(ctx context.Context) (bool, string) {
			s, err := cs.AppsV1alpha1().Subscriptions("default").Get(ctx, high, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			c := meta.FindStatusCondition(s.Status.Conditions, "Scheduled")
			return c != nil && c.Status == metav1.ConditionFalse && c.Reason == "NoRoom" && c.Message == want && len(s.Status.BindingClusters) == 0,
				fmt.Sprintf("bindingClusters %v, Scheduled %+v", s.Status.BindingClusters, c)
		})
		waitForDivision(t, cs, children, low, map[string]int32{small: 4}, "bound to 1 clusters")
		if ev := e2eutil.Events(t, parent, "default", "Subscription", low, "Preempted"); len(ev) > 0 {
			t.Errorf("low preempted by a PreemptNever Subscription: %q", ev)
		}
	})
}

// TestPredictorMovesNewReplicas: "Predictor: filling one child with pods
// moves new replicas of a Dynamic Subscription to the others; scaling a
// feed from 6 to 8 replicas changes only 2 placements". Two children of
// 32 CPUs, a Dynamic (Spread) Subscription of 6 replicas of 2 CPUs: 3 and
// 3. A pod created in child 0 itself, through its own kubeconfig, takes
// the 26 CPUs left there: the hub's book still sees them free, the
// child's status.available does not. Scaled to 8, the 2 new replicas go to
// child 1 and nothing else moves: 3 and 5.
func TestPredictorMovesNewReplicas(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	setUpParent(t, parent)
	children := e2eutil.RegisterChildren(t, parent, tb.Children, nil)
	cs := clusternetClient(t, parent)
	waitForHubCPUs(t, parent, cs, children, 32, 32)
	waitForIdle(t, cs, children...)
	c0, c1 := key(children[0]), key(children[1])

	createAppRequesting(t, parent, "predicted", 6, "2")
	mustKubectl(t, parent, strings.ReplaceAll(incrementalSubscription, "incremental", "predicted"), "apply", "-f", "-")
	waitForDivision(t, cs, children, "predicted", map[string]int32{c0: 3, c1: 3}, "bound to 2 clusters")
	waitForAvailableCPU(t, cs, children[0], "26")

	kcs, err := children[0].Clientset()
	if err != nil {
		t.Fatal(err)
	}
	createRequestingPod(t, kcs, "filler", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("26")})
	waitForAvailableCPU(t, cs, children[0], "0")
	// The hub schedules from its informer cache: a probe over child 0
	// alone says when the hub sees it full (its book alone would give the
	// probe 13 replicas there).
	createAppRequesting(t, parent, "fill-probe", 1, "2")
	mustKubectl(t, parent, fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: fill-probe, namespace: default}
spec:
  subscribers:
    - clusterAffinity: {matchLabels: {clusters.clusternet.io/cluster-id: %s}}
  schedulingStrategy: Dividing
  dividingScheduling: {type: Dynamic, dynamicDividing: {strategy: Spread}}
  feeds:
    - {apiVersion: v1, kind: Namespace, name: fill-probe}
    - {apiVersion: apps/v1, kind: Deployment, namespace: fill-probe, name: web}
`, children[0].ID), "apply", "-f", "-")
	waitFor(t, 60*time.Second, "the hub seeing child 0 full", func(ctx context.Context) (bool, string) {
		s, err := cs.AppsV1alpha1().Subscriptions("default").Get(ctx, "fill-probe", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(s.Status.Conditions, "Scheduled")
		return c != nil && c.Reason == "NoRoom", fmt.Sprintf("Scheduled %+v", c)
	})
	mustKubectl(t, parent, "", "delete", "subscription", "fill-probe", "-n", "default")

	createAppRequesting(t, parent, "predicted", 8, "2")
	waitForDivision(t, cs, children, "predicted", map[string]int32{c0: 3, c1: 5}, "bound to 2 clusters")
}

func key(c *e2eutil.Child) string { return c.Namespace + "/" + c.Name }

// highSubscription asks for Deployment web of namespace name on the small
// child only, at priority 10 (preemptionPolicy unless empty).
func highSubscription(name, preemptionPolicy string) string {
	policy := ""
	if preemptionPolicy != "" {
		policy = "\n  preemptionPolicy: " + preemptionPolicy
	}
	return fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: %[1]s, namespace: default}
spec:
  priority: 10%[2]s
  subscribers:
    - clusterAffinity: {matchLabels: {size: small}}
  schedulingStrategy: Dividing
  dividingScheduling: {type: Dynamic, dynamicDividing: {strategy: Spread}}
  feeds:
    - {apiVersion: v1, kind: Namespace, name: %[1]s}
    - {apiVersion: apps/v1, kind: Deployment, namespace: %[1]s, name: web}
`, name, policy)
}

// lowSubscription asks for Deployment web of namespace name on any child,
// at priority 0, Binpack preferring the small child.
func lowSubscription(name string) string {
	return fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: %[1]s, namespace: default}
spec:
  priority: 0
  subscribers:
    - clusterAffinity: {matchExpressions: [{key: clusters.clusternet.io/cluster-id, operator: Exists}]}
  schedulingStrategy: Dividing
  dividingScheduling:
    type: Dynamic
    dynamicDividing: {strategy: Binpack, preferredClusters: [{matchLabels: {size: small}}]}
  feeds:
    - {apiVersion: v1, kind: Namespace, name: %[1]s}
    - {apiVersion: apps/v1, kind: Deployment, namespace: %[1]s, name: web}
`, name)
}

// wantEvent checks that events (e2eutil.Events lines) are exactly one,
// starting with want.
func wantEvent(t *testing.T, parent *testbed.Cluster, kind, name, reason, want string) {
	t.Helper()
	// Events are sent in the background, after what a test waited for.
	var events []string
	waitFor(t, 30*time.Second, "a "+reason+" event on "+kind+" default/"+name, func(context.Context) (bool, string) {
		events = e2eutil.Events(t, parent, "default", kind, name, reason)
		return len(events) > 0, ""
	})
	if len(events) != 1 || !strings.HasPrefix(events[0], want) {
		t.Errorf("events %q, want one starting %q", events, want)
	}
}

// settle deletes the Subscriptions of names, waits until they are gone
// (their Bases, Descriptions and what they deployed in the children with
// them), and until the children have all their room available again, so
// that the next test starts with the room it expects.
func settle(t *testing.T, parent *testbed.Cluster, cs versioned.Interface, children []*e2eutil.Child, names ...string) {
	t.Helper()
	for _, name := range names {
		mustKubectl(t, parent, "", "delete", "subscription", name, "-n", "default", "--ignore-not-found", "--wait=false")
	}
	for _, name := range names {
		waitFor(t, 90*time.Second, "Subscription "+name+" gone", func(ctx context.Context) (bool, string) {
			_, err := cs.AppsV1alpha1().Subscriptions("default").Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
	}
	waitForIdle(t, cs, children...)
}

// waitForIdle waits until each child's agent reports all its allocatable
// resources available: no pod takes any room there.
func waitForIdle(t *testing.T, cs versioned.Interface, children ...*e2eutil.Child) {
	t.Helper()
	for _, c := range children {
		waitFor(t, 90*time.Second, c.Name+" idle", func(ctx context.Context) (bool, string) {
			m, err := cs.ClustersV1beta1().ManagedClusters(c.Namespace).Get(ctx, c.Name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			diff := differences(m.Status.Allocatable, m.Status.Available)
			return m.Status.PredictorEnabled && len(m.Status.Allocatable) > 0 && diff == "", fmt.Sprintf("predictorEnabled %t: %s", m.Status.PredictorEnabled, diff)
		})
	}
}

// waitForAvailableCPU waits until c's agent reports cpus available CPUs.
func waitForAvailableCPU(t *testing.T, cs versioned.Interface, c *e2eutil.Child, cpus string) {
	t.Helper()
	waitFor(t, predictorWait, fmt.Sprintf("%s reporting %s CPUs available", c.Name, cpus), func(ctx context.Context) (bool, string) {
		_, available, err := prediction(ctx, cs, c)
		if err != nil {
			return false, err.Error()
		}
		got := available[corev1.ResourceCPU]
		return got.Cmp(resource.MustParse(cpus)) == 0, "available cpu " + got.String()
	})
}
