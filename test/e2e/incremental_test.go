package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestDynamicDividingIncremental: three registered children, each with one
// 32-CPU node, and a Dynamic (Spread) Subscription of a Deployment whose
// replicas ask for 24 CPUs, so each child holds 1. Only the difference
// moves:
//
//   - 6 replicas divide into 2, 2 and 2, more than the children hold, as
//     the Scheduled condition says;
//   - child 0 grows to hold 4: the replicas children 1 and 2 hold beyond
//     their room (one each: they can never run there) move to child 0's new
//     room, and nothing else does: 4, 1, 1. The Scheduled condition no
//     longer says the replicas do not fit;
//   - scaled to 8: the 2 new replicas go where room is left, to child 0
//     (it runs beyond its room, as the condition says), the 6 placed stay:
//     6, 1, 1;
//   - scaled back to 6: 2 removed from where they do not fit: 4, 1, 1.
func TestDynamicDividingIncremental(t *testing.T) {
	tb := testbed.ForTest(t, 3)
	parent := tb.Parent
	setUpParent(t, parent)
	children := e2eutil.RegisterChildren(t, parent, tb.Children, nil)
	cs := clusternetClient(t, parent)
	// The first division sticks: the hub must see every child's CPUs first,
	// and all of them available (the probes' pods gone): a round that saw
	// some children still full divided by that, and only the difference
	// moves after.
	waitForHubCPUs(t, parent, cs, children, 32, 32, 32)
	waitForIdle(t, cs, children...)
	divided := func(n0, n1, n2 int32) map[string]int32 {
		out := map[string]int32{}
		for i, n := range []int32{n0, n1, n2} {
			out[children[i].Namespace+"/"+children[i].Name] = n
		}
		return out
	}
	scheduled := func(replicas, hold int) string {
		msg := "bound to 3 clusters"
		if hold < replicas {
			msg += fmt.Sprintf("; apps/v1/Deployment/incremental/web asks for %d replicas but the 3 chosen clusters hold %d by their allocatable resources: the rest are spread over them anyway", replicas, hold)
		}
		return msg
	}

	createAppRequesting(t, parent, "incremental", 6, "24")
	mustKubectl(t, parent, incrementalSubscription, "apply", "-f", "-")
	waitForDivision(t, cs, children, "incremental", divided(2, 2, 2), scheduled(6, 3))

	addNode(t, tb.Children[0], tb.Children[0].Name+"-node-extra-1")
	addNode(t, tb.Children[0], tb.Children[0].Name+"-node-extra-2")
	waitForCPUs(t, cs, children[0], "96")
	// Only a round that saw child 0's 96 CPUs drops the warning, and it
	// writes the division it made in the same status: after it, scaling is
	// divided with them too.
	waitForDivision(t, cs, children, "incremental", divided(4, 1, 1), scheduled(6, 6))

	createAppRequesting(t, parent, "incremental", 8, "24")
	waitForDivision(t, cs, children, "incremental", divided(6, 1, 1), scheduled(8, 6))

	createAppRequesting(t, parent, "incremental", 6, "24")
	waitForDivision(t, cs, children, "incremental", divided(4, 1, 1), scheduled(6, 6))
}

// incrementalSubscription divides Deployment incremental/web dynamically
// over every registered cluster.
const incrementalSubscription = `apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: incremental, namespace: default}
spec:
  subscribers:
    - clusterAffinity: {matchExpressions: [{key: clusters.clusternet.io/cluster-id, operator: Exists}]}
  schedulingStrategy: Dividing
  dividingScheduling: {type: Dynamic, dynamicDividing: {strategy: Spread}}
  feeds:
    - {apiVersion: v1, kind: Namespace, name: incremental}
    - {apiVersion: apps/v1, kind: Deployment, namespace: incremental, name: web}
`

// waitForDivision waits until Subscription name (in default) records want
// as the division of Deployment web in namespace name, with the Scheduled
// condition's message scheduled (both written by the same round), and each
// child runs it with its share.
func waitForDivision(t *testing.T, cs versioned.Interface, children []*e2eutil.Child, name string, want map[string]int32, scheduled string) {
	t.Helper()
	feedKey := "apps/v1/Deployment/" + name + "/web"
	waitFor(t, 90*time.Second, fmt.Sprintf("%s divided as %v, Scheduled %q", name, want, scheduled), func(ctx context.Context) (bool, string) {
		s, err := cs.AppsV1alpha1().Subscriptions("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		got := s.Status.Replicas[feedKey]
		sched := meta.FindStatusCondition(s.Status.Conditions, "Scheduled")
		ok := cmp.Equal(want, got) && sched != nil && sched.Status == metav1.ConditionTrue && sched.Message == scheduled
		return ok, fmt.Sprintf("status.replicasByCluster[%s] %v, Scheduled %+v", feedKey, got, sched)
	})
	waitFor(t, 90*time.Second, fmt.Sprintf("%s's Deployment in each child as %v", name, want), func(context.Context) (bool, string) {
		got := map[string]int32{}
		for _, c := range children {
			out, found := e2eutil.ChildGet(t, c.Cluster, "deployment", "web", "-n", name, "-o", "jsonpath={.spec.replicas}")
			if !found {
				continue
			}
			var n int32
			if _, err := fmt.Sscan(out, &n); err != nil {
				return false, fmt.Sprintf("%s/%s: spec.replicas %q", c.Namespace, c.Name, out)
			}
			got[c.Namespace+"/"+c.Name] = n
		}
		return cmp.Equal(want, got), fmt.Sprintf("replicas per cluster %v", got)
	})
}
