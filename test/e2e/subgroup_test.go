package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestSchedulingBySubGroup: three registered clusters in two regions
// (children 0 and 1 east, child 2 west), Subscriptions with
// schedulingBySubGroup and minClusters 1 per region, as upstream Clusternet
// documents them (examples/scheduling-group). Each Deployment's replicas ask
// for 8 CPUs; child 1 has two 32-CPU nodes, the others one, so they hold 8,
// 4 and 4 replicas by their allocatable resources.
//
//   - Replication binds the east cluster first by <namespace>/<name> and the
//     west one, each running all 6 replicas, and nothing else;
//   - Static (weights east 2, west 1) binds the same two, with 4 and 2;
//   - Dynamic (Spread) binds the east cluster holding more (child 1) and the
//     west one, dividing 6 by capacity (8:4) into 4 and 2; child 0 then
//     grows to hold the most, and a reschedule (the Deployment scaled to 9)
//     keeps child 1, dividing 9 into 6 and 3;
//   - a subgroup smaller than its minClusters is bound whole, the Scheduled
//     condition saying so; a subscriber without subGroupStrategy is refused.
func TestSchedulingBySubGroup(t *testing.T) {
	ctx := context.Background()
	tb := testbed.ForTest(t, 3)
	parent := tb.Parent
	setUpParent(t, parent)
	// Before the agent starts, so its first report counts both nodes.
	addNode(t, tb.Children[1], tb.Children[1].Name+"-node-extra-1")
	children := e2eutil.RegisterChildren(t, parent, tb.Children, nil)
	cs := clusternetClient(t, parent)
	for i, r := range []string{"east", "east", "west"} {
		mustKubectl(t, parent, "", "label", "mcls", "-n", children[i].Namespace, children[i].Name, "region="+r)
	}
	// The first division sticks (bound clusters stay picked, dynamic
	// dividing moves only the difference): the hub must see every child's
	// CPUs before the Subscriptions come.
	waitForHubCPUs(t, parent, cs, children, 32, 64, 32)
	waitForIdle(t, cs, children...) // the probes' pods gone: each child's room whole

	key := func(c *e2eutil.Child) string { return c.Namespace + "/" + c.Name }
	firstEast, west := min(key(children[0]), key(children[1])), key(children[2])
	childOf := map[string]*e2eutil.Child{}
	for _, c := range children {
		childOf[key(c)] = c
	}

	// wantPlaced waits until sub is bound to exactly the clusters of want,
	// its status divides the Deployment as want says (when divided), and
	// each child runs the Deployment with its share, the others none of it.
	wantPlaced := func(t *testing.T, sub, ns string, divided bool, want map[string]int32) {
		t.Helper()
		wantBindings := slices.Sorted(maps.Keys(want))
		feedKey := "apps/v1/Deployment/" + ns + "/web"
		waitFor(t, 90*time.Second, sub+" bound and divided", func(context.Context) (bool, string) {
			s, err := cs.AppsV1alpha1().Subscriptions("default").Get(ctx, sub, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			var replicas map[string]int32
			if divided {
				replicas = s.Status.Replicas[feedKey]
			}
			sched := meta.FindStatusCondition(s.Status.Conditions, "Scheduled")
			ok := sched != nil && sched.Status == metav1.ConditionTrue && cmp.Equal(wantBindings, s.Status.BindingClusters) &&
				(!divided || cmp.Equal(want, replicas))
			return ok, fmt.Sprintf("bindingClusters %v replicasByCluster[%s] %v Scheduled %+v; want %v", s.Status.BindingClusters, feedKey, replicas, sched, want)
		})
		waitFor(t, 90*time.Second, sub+"'s Deployment in each child", func(context.Context) (bool, string) {
			got := map[string]int32{}
			for k, c := range childOf {
				out, found := e2eutil.ChildGet(t, c.Cluster, "deployment", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}")
				if !found {
					continue
				}
				var n int32
				if _, err := fmt.Sscan(out, &n); err != nil {
					return false, fmt.Sprintf("%s: spec.replicas %q", k, out)
				}
				got[k] = n
			}
			return cmp.Equal(want, got), fmt.Sprintf("replicas per cluster %v, want %v", got, want)
		})
	}

	t.Run("replication: one cluster per region, each with the whole Deployment", func(t *testing.T) {
		createApp(t, parent, "sg-replication", 6)
		mustKubectl(t, parent, subgroupSubscription("sg-replication", replicationYAML, false, subgroup{"east", 1, 0}, subgroup{"west", 1, 0}), "apply", "-f", "-")
		wantPlaced(t, "sg-replication", "sg-replication", false, map[string]int32{firstEast: 6, west: 6})
	})

	t.Run("static: the region weights divide the replicas among the picks", func(t *testing.T) {
		createApp(t, parent, "sg-static", 6)
		mustKubectl(t, parent, subgroupSubscription("sg-static", staticYAML, false, subgroup{"east", 1, 2}, subgroup{"west", 1, 1}), "apply", "-f", "-")
		wantPlaced(t, "sg-static", "sg-static", true, map[string]int32{firstEast: 4, west: 2})
	})

	// Dynamic dividing counts the room other Subscriptions take: the ones
	// above go first, so that it sees every child's whole room.
	settle(t, parent, cs, children, "sg-replication", "sg-static")
	ok := t.Run("dynamic: the east cluster holding more, replicas by capacity", func(t *testing.T) {
		createApp(t, parent, "sg-dynamic", 6)
		mustKubectl(t, parent, subgroupSubscription("sg-dynamic", dynamicYAML, false, subgroup{"east", 1, 0}, subgroup{"west", 1, 0}), "apply", "-f", "-")
		wantPlaced(t, "sg-dynamic", "sg-dynamic", true, map[string]int32{key(children[1]): 4, west: 2})
	})
	if ok {
		t.Run("dynamic: a reschedule keeps the bound east cluster though another now holds more", func(t *testing.T) {
			addNode(t, tb.Children[0], tb.Children[0].Name+"-node-extra-1")
			addNode(t, tb.Children[0], tb.Children[0].Name+"-node-extra-2")
			waitForHubCPUs(t, parent, cs, children[:1], 96) // 12 replicas: picked afresh, it would win
			createApp(t, parent, "sg-dynamic", 9)
			wantPlaced(t, "sg-dynamic", "sg-dynamic", true, map[string]int32{key(children[1]): 6, west: 3})
		})
	}

	t.Run("a subgroup smaller than minClusters is bound whole, and Scheduled says so", func(t *testing.T) {
		e2eutil.CreateTemplate(t, parent, "apiVersion: v1\nkind: Namespace\nmetadata: {name: sg-short}\n")
		sub := subgroupSubscription("sg-short", replicationYAML, true, subgroup{"east", 1, 0}, subgroup{"west", 2, 0})
		mustKubectl(t, parent, sub, "apply", "-f", "-")
		want := "bound to 2 clusters; spec.subscribers[1].subGroupStrategy.minClusters is 2 but its subgroup (the clusters matching spec.subscribers[1].clusterAffinity whose taints are tolerated) holds only 1: the subgroup is bound whole, as upstream Clusternet does; add matching clusters or lower minClusters"
		waitFor(t, 60*time.Second, "sg-short bound to both regions' clusters", func(context.Context) (bool, string) {
			s, err := cs.AppsV1alpha1().Subscriptions("default").Get(ctx, "sg-short", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			sched := meta.FindStatusCondition(s.Status.Conditions, "Scheduled")
			wantBindings := []string{firstEast, west}
			slices.Sort(wantBindings)
			return sched != nil && sched.Status == metav1.ConditionTrue && sched.Message == want && cmp.Equal(wantBindings, s.Status.BindingClusters),
				fmt.Sprintf("bindingClusters %v Scheduled %+v", s.Status.BindingClusters, sched)
		})
	})

	t.Run("a subscriber without subGroupStrategy is refused, naming the field and the fix", func(t *testing.T) {
		sub := subgroupSubscription("sg-refused", replicationYAML, true, subgroup{"east", -1, 0}, subgroup{"west", 1, 0})
		_, errOut, err := kubectl(t, parent, sub, "apply", "-f", "-")
		want := `spec: Invalid value: spec.subscribers[].subGroupStrategy is required on every subscriber when spec.schedulingBySubGroup is true: set subGroupStrategy.minClusters on each subscriber, or set spec.schedulingBySubGroup to false`
		if err == nil || !strings.Contains(errOut, want) {
			t.Errorf("kubectl apply: %v, stderr:\n%s\nwant it refused with %q", err, errOut, want)
		}
		if _, err := cs.AppsV1alpha1().Subscriptions("default").Get(ctx, "sg-refused", metav1.GetOptions{}); err == nil {
			t.Error("the refused Subscription was stored")
		}
	})
}

// The spec fields of each scheduling strategy, as YAML lines under spec.
const (
	replicationYAML = "schedulingStrategy: Replication"
	staticYAML      = "schedulingStrategy: Dividing\n  dividingScheduling: {type: Static}"
	dynamicYAML     = "schedulingStrategy: Dividing\n  dividingScheduling: {type: Dynamic, dynamicDividing: {strategy: Spread}}"
)

// subgroup is a subscriber selecting one region. minClusters < 0 leaves
// subGroupStrategy out.
type subgroup struct {
	region              string
	minClusters, weight int
}

// subgroupSubscription is a Subscription with schedulingBySubGroup of
// namespace name and, unless namespaceOnly, Deployment web in it.
func subgroupSubscription(name, scheduling string, namespaceOnly bool, groups ...subgroup) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: apps.clusternet.io/v1alpha1\nkind: Subscription\nmetadata: {name: %s, namespace: default}\nspec:\n  %s\n  schedulingBySubGroup: true\n  subscribers:\n", name, scheduling)
	for _, g := range groups {
		fmt.Fprintf(&b, "    - clusterAffinity: {matchLabels: {region: %s}}\n      weight: %d\n", g.region, g.weight)
		if g.minClusters >= 0 {
			fmt.Fprintf(&b, "      subGroupStrategy: {minClusters: %d}\n", g.minClusters)
		}
	}
	fmt.Fprintf(&b, "  feeds:\n    - {apiVersion: v1, kind: Namespace, name: %s}\n", name)
	if !namespaceOnly {
		fmt.Fprintf(&b, "    - {apiVersion: apps/v1, kind: Deployment, namespace: %s, name: web}\n", name)
	}
	return b.String()
}

// createApp stores (or updates) the templates of namespace ns and
// Deployment web in it, whose replicas each request 8 CPUs.
func createApp(t *testing.T, parent *testbed.Cluster, ns string, replicas int) {
	t.Helper()
	createAppRequesting(t, parent, ns, replicas, "8")
}

// createAppRequesting is createApp with replicas that each request cpus.
func createAppRequesting(t *testing.T, parent *testbed.Cluster, ns string, replicas int, cpus string) {
	t.Helper()
	e2eutil.CreateTemplate(t, parent, e2eutil.WebApp(ns, replicas, fmt.Sprintf(`resources: {requests: {cpu: %q}}`, cpus)))
}

// addNode adds a kwok node of the testbed's size (32 CPUs) to c. Its
// status is written with it: kwok keeps allocatable resources it finds.
func addNode(t *testing.T, c *testbed.Cluster, name string) {
	t.Helper()
	kcs, err := c.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	size := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110")}
	_, err = kcs.CoreV1().Nodes().Create(context.Background(), &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
		Status: corev1.NodeStatus{Capacity: size, Allocatable: size},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// waitForCPUs waits until c's agent reports cpus allocatable CPUs, which
// dynamic dividing reads: in the API, which the hub may not have yet
// (waitForHubCPUs).
func waitForCPUs(t *testing.T, cs versioned.Interface, c *e2eutil.Child, cpus string) {
	t.Helper()
	waitFor(t, 60*time.Second, c.Name+" reporting "+cpus+" allocatable CPUs", func(ctx context.Context) (bool, string) {
		m, err := cs.ClustersV1beta1().ManagedClusters(c.Namespace).Get(ctx, c.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		got := m.Status.Allocatable[corev1.ResourceCPU]
		return got.String() == cpus, "allocatable cpu " + got.String()
	})
}

// probes numbers the capacity probes: their names never repeat.
var probes atomic.Int32

// waitForHubCPUs waits until the hub schedules with cpus[i] allocatable
// CPUs for children[i]. waitForCPUs sees what the agents reported to the
// API; the hub schedules from its informer cache, which may not have it
// yet, and what it divides then may stay so (dynamic dividing moves only
// the difference). So a probe Subscription per child, over that child
// alone, asks for one replica of 8 CPUs more than cpus[i] hold: at each
// round its Scheduled condition says how many the chosen cluster holds,
// from the capacity the hub sees. The probes are deleted once they show
// it.
func waitForHubCPUs(t *testing.T, parent *testbed.Cluster, cs versioned.Interface, children []*e2eutil.Child, cpus ...int) {
	t.Helper()
	if len(cpus) != len(children) {
		t.Fatalf("waitForHubCPUs: %d CPU counts for %d children", len(cpus), len(children))
	}
	names := make([]string, len(children))
	for i, c := range children {
		waitForCPUs(t, cs, c, strconv.Itoa(cpus[i]))
		names[i] = fmt.Sprintf("capacity-probe-%d", probes.Add(1))
		createApp(t, parent, names[i], cpus[i]/8+1)
		mustKubectl(t, parent, fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: %[1]s, namespace: default}
spec:
  subscribers:
    - clusterAffinity: {matchLabels: {clusters.clusternet.io/cluster-id: %[2]s}}
  schedulingStrategy: Dividing
  dividingScheduling: {type: Dynamic, dynamicDividing: {strategy: Spread}}
  feeds:
    - {apiVersion: v1, kind: Namespace, name: %[1]s}
    - {apiVersion: apps/v1, kind: Deployment, namespace: %[1]s, name: web}
`, names[i], c.ID), "apply", "-f", "-")
	}
	for i, c := range children {
		hold := cpus[i] / 8
		want := fmt.Sprintf("apps/v1/Deployment/%s/web asks for %d replicas but the 1 chosen clusters hold %d by their allocatable resources", names[i], hold+1, hold)
		waitFor(t, 60*time.Second, fmt.Sprintf("the hub scheduling with %d CPUs in %s", cpus[i], c.Name), func(ctx context.Context) (bool, string) {
			s, err := cs.AppsV1alpha1().Subscriptions("default").Get(ctx, names[i], metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			sched := meta.FindStatusCondition(s.Status.Conditions, "Scheduled")
			return sched != nil && sched.Status == metav1.ConditionTrue && strings.Contains(sched.Message, want),
				fmt.Sprintf("probe %s: Scheduled %+v; want it to say %q", names[i], sched, want)
		})
		mustKubectl(t, parent, "", "delete", "subscription", names[i], "-n", "default", "--wait=false")
	}
}
