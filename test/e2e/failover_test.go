package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/apps/render"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/server/hub/apps"
	"github.com/clusternet/clusternet/pkg/server/hub/lifecycle"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// failoverGrace is the hub's --cluster-failover-grace-period in
// TestFailover; the agents' heartbeat is RegisterChildren's (heartbeat),
// three of which missed make Ready Unknown.
const failoverGrace = 10 * time.Second

// TestFailover is issue 15's acceptance: three children, a Dynamic
// Subscription of 6 replicas (2 on each) and a Replication one; child 0's
// agent is killed. Within the grace period plus 10 s of the hub marking it
// Ready Unknown (the bound; heartbeat detection comes before it,
// docs/failover.md), its replicas run in the other two (6 in all), while
// child 0's Base, Descriptions and objects stay as they were and its
// Replication Base stays bound, untouched; its agent cannot lift the taint
// nor write the hub's records. The agent back (and Ready for the grace
// period), the taint goes, child 0's Deployment is the one it had, and the
// Dynamic Subscription settles as its strategy says: the room the others
// have holds what they took, so nothing moves back, and child 0's stale
// copy is scaled to nothing.
func TestFailover(t *testing.T) {
	tb := testbed.ForTest(t, 3)
	parent := tb.Parent
	setUpParent(t, parent, "--feature-gates=FailOver=true", "--cluster-failover-grace-period="+failoverGrace.String())
	children := e2eutil.RegisterChildren(t, parent, tb.Children, nil)
	cs := clusternetClient(t, parent)
	waitForHubCPUs(t, parent, cs, children, 32, 32, 32)
	waitForIdle(t, cs, children...) // the probes' pods gone: each child's room whole
	lost, c1, c2 := children[0], key(children[1]), key(children[2])

	createAppRequesting(t, parent, "failover", 6, "1")
	mustKubectl(t, parent, strings.ReplaceAll(incrementalSubscription, "incremental", "failover"), "apply", "-f", "-")
	waitForDivision(t, cs, children, "failover", map[string]int32{key(lost): 2, c1: 2, c2: 2}, "bound to 3 clusters")
	createAppRequesting(t, parent, "everywhere", 1, "100m")
	mustKubectl(t, parent, `apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: everywhere, namespace: default}
spec:
  subscribers:
    - clusterAffinity: {matchExpressions: [{key: clusters.clusternet.io/cluster-id, operator: Exists}]}
  schedulingStrategy: Replication
  feeds:
    - {apiVersion: v1, kind: Namespace, name: everywhere}
    - {apiVersion: apps/v1, kind: Deployment, namespace: everywhere, name: web}
`, "apply", "-f", "-")
	all := []string{key(children[0]), c1, c2}
	slices.Sort(all)
	waitForBindings(t, cs, "everywhere", all)
	token := agentToken(t, lost)
	// What must survive the outage untouched: child 0's Deployment (not
	// deleted and made again) and its Replication Base.
	deployUID := childUID(t, lost, "failover")
	everywhereUID := baseUID(t, cs, lost, "everywhere")

	if err := lost.Agent.Kill(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	unknownAt := waitForReadyUnknown(t, cs, lost, lifecycle.MissedHeartbeats*heartbeat+30*time.Second)
	// The bound, from when the hub marks the cluster Ready Unknown
	// (its lastTransitionTime, which the hub wrote on its clock).
	within := time.Until(unknownAt.Add(failoverGrace + 10*time.Second))
	waitFor(t, within, "child 0's replicas running in children 1 and 2 within the grace period plus 10 s of Ready Unknown", func(context.Context) (bool, string) {
		n, why := readyReplicas(t, children[1:], "failover")
		return n == 6, why
	})
	t.Logf("replicas running elsewhere %s after Ready Unknown, %s after the agent stopped (grace %s, heartbeat %s)",
		time.Since(unknownAt).Round(100*time.Millisecond), time.Since(stopped).Round(100*time.Millisecond), failoverGrace, heartbeat)

	t.Run("the lost cluster is tainted and keeps its objects", func(t *testing.T) {
		m, err := cs.ClustersV1beta1().ManagedClusters(lost.Namespace).Get(context.Background(), lost.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !clusterv1beta1.HasFailoverTaint(m.Spec.Taints) || m.Annotations[lifecycle.AnnotationFailoverTaint] == "" {
			t.Errorf("taints %v, annotations %v: want the hub's %s:NoSchedule", m.Spec.Taints, m.Annotations, clusterv1beta1.TaintClusterUnschedulable)
		}
		// The round marks it after it writes the Bases the replicas moved
		// to, so the mark can follow the rollout there.
		var b *appsv1alpha1.Base
		waitFor(t, 30*time.Second, "child 0's Base marked "+apps.AnnotationFailedOver, func(ctx context.Context) (bool, string) {
			got, err := cs.AppsV1alpha1().Bases(lost.Namespace).Get(ctx, "failover", metav1.GetOptions{})
			if err != nil {
				return false, fmt.Sprintf("child 0's Base of the Dynamic Subscription: %v, want it kept", err)
			}
			b = got
			return b.DeletionTimestamp != nil || b.Annotations[apps.AnnotationFailedOver] != "", fmt.Sprint(b.Annotations)
		})
		if b.DeletionTimestamp != nil || b.Annotations[apps.AnnotationFailedOver] == "" || !strings.Contains(b.Annotations[render.AnnotationReplicas], `"replicas":2`) {
			t.Errorf("child 0's Base: deleting %t, annotations %v; want it kept, marked %s, with its 2 replicas", b.DeletionTimestamp != nil, b.Annotations, apps.AnnotationFailedOver)
		}
		d, err := cs.AppsV1alpha1().Descriptions(lost.Namespace).Get(context.Background(), "failover-generic", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("child 0's Description: %v, want it kept", err)
		}
		if n := deploymentReplicas(t, d); d.DeletionTimestamp != nil || n != 2 {
			t.Errorf("child 0's Description: deleting %t, Deployment replicas %d; want it kept with its 2", d.DeletionTimestamp != nil, n)
		}
		wantEvent(t, parent, "Subscription", "failover", "FailedOver",
			"Normal|FailedOver|clusternet-hub|1|cluster "+key(lost)+" is tainted "+clusterv1beta1.TaintClusterUnschedulable)
		checkReplicationUntouched(t, parent, cs, lost, everywhereUID, all)
	})

	t.Run("its agent cannot lift the taint", func(t *testing.T) {
		agent := agentClient(t, parent, token)
		ctx := context.Background()
		for _, tc := range []struct{ name, patch, rule string }{
			{"drop spec.taints", `{"spec":{"taints":null}}`, "its spec, finalizers and owners are the parent's users' and clusternet-hub's to change"},
			{"drop the hub's record of its taint", `{"metadata":{"annotations":{"` + lifecycle.AnnotationFailoverTaint + `":null}}}`,
				"of its ManagedCluster's annotations it may change only clusters.clusternet.io/aggregated-node-labels"},
			// The hub's clock for the grace period: an agent moving it
			// would skip the grace period or the stabilisation.
			{"move when the hub saw it not Ready", `{"metadata":{"annotations":{"` + lifecycle.AnnotationNotReadySince + `":"2000-01-01T00:00:00Z"}}}`,
				"of its ManagedCluster's annotations it may change only clusters.clusternet.io/aggregated-node-labels"},
			{"claim it Ready long since", `{"metadata":{"annotations":{"` + lifecycle.AnnotationReadySince + `":"2000-01-01T00:00:00Z"}}}`,
				"of its ManagedCluster's annotations it may change only clusters.clusternet.io/aggregated-node-labels"},
		} {
			_, err := agent.ClustersV1beta1().ManagedClusters(lost.Namespace).Patch(ctx, lost.Name, types.MergePatchType, []byte(tc.patch), metav1.PatchOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.rule) {
				t.Errorf("%s as the agent: %v, want refused naming %q", tc.name, err, tc.rule)
			}
		}
	})

	restarted, err := lost.Agent.Restart()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restarted.Stop(10 * time.Second) })
	waitFor(t, 60*time.Second, "the failover taint gone", func(ctx context.Context) (bool, string) {
		m, err := cs.ClustersV1beta1().ManagedClusters(lost.Namespace).Get(ctx, lost.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return !clusterv1beta1.HasFailoverTaint(m.Spec.Taints) && m.Annotations[lifecycle.AnnotationFailoverTaint] == "", fmt.Sprintf("taints %v", m.Spec.Taints)
	})
	// Children 1 and 2 have room for what they took (3 each): Dynamic
	// dividing moves nothing back. Spread binds child 0 again, as any
	// cluster with room, with none of them: its stale copy scaled to 0.
	waitForDivision(t, cs, children, "failover", map[string]int32{key(lost): 0, c1: 3, c2: 3}, "bound to 3 clusters")
	wantEvent(t, parent, "Subscription", "failover", "FailedBack",
		"Normal|FailedBack|clusternet-hub|1|cluster "+key(lost)+" is back and bound again: it runs apps/v1/Deployment/failover/web 0 (it ran apps/v1/Deployment/failover/web 2 before it failed over)")
	if got := childUID(t, lost, "failover"); got != deployUID {
		t.Errorf("child 0's Deployment UID %s, want %s: it was deleted and made again", got, deployUID)
	}
	checkReplicationUntouched(t, parent, cs, lost, everywhereUID, all)
}

// childUID is the UID of Deployment web of namespace ns in c.
func childUID(t *testing.T, c *e2eutil.Child, ns string) string {
	t.Helper()
	out, found := e2eutil.ChildGet(t, c.Cluster, "deployment", "web", "-n", ns, "-o", "jsonpath={.metadata.uid}")
	if !found || out == "" {
		t.Fatalf("Deployment %s/web in %s: not found", ns, key(c))
	}
	return out
}

// baseUID is the UID of c's Base of Subscription name.
func baseUID(t *testing.T, cs versioned.Interface, c *e2eutil.Child, name string) types.UID {
	t.Helper()
	b, err := cs.AppsV1alpha1().Bases(c.Namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b.UID
}

// checkReplicationUntouched asserts that the Replication Subscription
// kept lost bound throughout: bound to all, its Base in lost's namespace
// the one it had (uid), and never an Unbound event.
func checkReplicationUntouched(t *testing.T, parent *testbed.Cluster, cs versioned.Interface, lost *e2eutil.Child, uid types.UID, all []string) {
	t.Helper()
	waitForBindings(t, cs, "everywhere", all)
	if got := baseUID(t, cs, lost, "everywhere"); got != uid {
		t.Errorf("the Replication Base in %s has UID %s, want %s: it was deleted and made again", lost.Namespace, got, uid)
	}
	if got := e2eutil.Events(t, parent, "default", "Subscription", "everywhere", "Unbound"); len(got) > 0 {
		t.Errorf("Unbound events of the Replication Subscription %q, want none", got)
	}
}

// waitForReadyUnknown waits until the hub marks c Ready Unknown and
// returns when it did (the condition's lastTransitionTime, the hub's).
func waitForReadyUnknown(t *testing.T, cs versioned.Interface, c *e2eutil.Child, within time.Duration) time.Time {
	t.Helper()
	var at time.Time
	waitFor(t, within, "the hub marking "+key(c)+" Ready Unknown", func(ctx context.Context) (bool, string) {
		m, err := cs.ClustersV1beta1().ManagedClusters(c.Namespace).Get(ctx, c.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := meta.FindStatusCondition(m.Status.Conditions, clusterv1beta1.ClusterReady)
		if ready == nil || ready.Status != metav1.ConditionUnknown {
			return false, fmt.Sprintf("Ready %v", ready)
		}
		at = ready.LastTransitionTime.Time
		return true, ""
	})
	return at
}

// deploymentReplicas is spec.replicas of the Deployment a Description
// carries, -1 when it carries none.
func deploymentReplicas(t *testing.T, d *appsv1alpha1.Description) int64 {
	t.Helper()
	for _, r := range d.Spec.Raw {
		var obj struct {
			Kind string `json:"kind"`
			Spec struct {
				Replicas int64 `json:"replicas"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(r.Raw, &obj); err != nil {
			t.Fatalf("Description %s/%s: %v", d.Namespace, d.Name, err)
		}
		if obj.Kind == "Deployment" {
			return obj.Spec.Replicas
		}
	}
	return -1
}

// waitForBindings waits until Subscription name (in default) is bound to
// exactly want (sorted keys).
func waitForBindings(t *testing.T, cs versioned.Interface, name string, want []string) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%s bound to %v", name, want), func(ctx context.Context) (bool, string) {
		s, err := cs.AppsV1alpha1().Subscriptions("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(s.Status.BindingClusters, want), fmt.Sprintf("bindingClusters %v", s.Status.BindingClusters)
	})
}

// readyReplicas sums the ready replicas of Deployment web of namespace ns
// in children.
func readyReplicas(t *testing.T, children []*e2eutil.Child, ns string) (int, string) {
	t.Helper()
	sum, parts := 0, []string{}
	for _, c := range children {
		out, _ := e2eutil.ChildGet(t, c.Cluster, "deployment", "web", "-n", ns, "-o", "jsonpath={.status.readyReplicas}")
		n, _ := strconv.Atoi(out)
		sum += n
		parts = append(parts, fmt.Sprintf("%s: %d", key(c), n))
	}
	return sum, strings.Join(parts, ", ")
}

// agentToken is the token c's agent holds for the parent, read where the
// agent keeps it (its credentials Secret in the child).
func agentToken(t *testing.T, c *e2eutil.Child) string {
	t.Helper()
	kcs, err := c.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	s, err := kcs.CoreV1().Secrets("clusternet-system").Get(context.Background(), "clusternet-agent-credentials", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(s.Data[corev1.ServiceAccountTokenKey])
}

// agentClient is a Clusternet client of parent acting with an agent's token.
func agentClient(t *testing.T, parent *testbed.Cluster, token string) versioned.Interface {
	t.Helper()
	cfg, err := parent.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.BearerToken, cfg.CertData, cfg.KeyData = token, nil, nil
	cfg.CertFile, cfg.KeyFile = "", ""
	cs, err := versioned.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
