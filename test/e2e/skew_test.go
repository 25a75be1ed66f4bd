package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestSkew: a fleet mixing Kubernetes versions, as testbed.ForTest starts
// every fleet of two or more children: the parent and two children on
// KUBE_VERSION (v1.35), the last child on CHILD_SKEW_VERSION (v1.33).
//
//   - each apiserver serves the version the testbed says it runs, and each
//     ManagedCluster's status.k8sVersion is its child's: v1.33 for one;
//   - a Deployment replicated to all three becomes available in each, the
//     older child included, and the Subscription's status reads it back
//     from there.
func TestSkew(t *testing.T) {
	if testbed.ChildSkewVersion() == testbed.KubeVersion() {
		t.Skipf("CHILD_SKEW_VERSION is KUBE_VERSION (%s): the fleet runs one version", testbed.KubeVersion())
	}
	tb := testbed.ForTest(t, 3)
	parent := tb.Parent
	setUpParent(t, parent)
	children := e2eutil.RegisterChildren(t, parent, tb.Children, nil)
	cs := clusternetClient(t, parent)

	skew := skewChild(t, tb.Parent, children)
	for _, c := range append([]*testbed.Cluster{parent}, tb.Children...) {
		serverVersionIs(t, c)
	}
	for _, c := range children {
		waitFor(t, 30*time.Second, fmt.Sprintf("ManagedCluster of %s reporting Kubernetes %s", c.Cluster.Name, c.KubeVersion), func(ctx context.Context) (bool, string) {
			m, err := cs.ClustersV1beta1().ManagedClusters(c.Namespace).Get(ctx, c.Name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return m.Status.K8sVersion == c.KubeVersion, "status.k8sVersion " + m.Status.K8sVersion
		})
	}

	createApp(t, parent, "skew", 2)
	mustKubectl(t, parent, `apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: skew, namespace: default}
spec:
  subscribers:
    - clusterAffinity: {matchExpressions: [{key: clusters.clusternet.io/cluster-id, operator: Exists}]}
  schedulingStrategy: Replication
  feeds:
    - {apiVersion: v1, kind: Namespace, name: skew}
    - {apiVersion: apps/v1, kind: Deployment, namespace: skew, name: web}
`, "apply", "-f", "-")
	for _, c := range children {
		waitFor(t, 90*time.Second, "Deployment skew/web available in "+c.Cluster.Name+" ("+c.KubeVersion+")", func(context.Context) (bool, string) {
			out, _ := e2eutil.ChildGet(t, c.Cluster, "deployment", "web", "-n", "skew", "-o", "jsonpath={.status.availableReplicas}")
			return out == "2", "availableReplicas " + out
		})
	}
	waitFor(t, 60*time.Second, "the Subscription's status: Deployment skew/web available in "+skew.Cluster.Name, func(ctx context.Context) (bool, string) {
		s, err := cs.AppsV1alpha1().Subscriptions("default").Get(ctx, "skew", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, a := range s.Status.AggregatedStatuses {
			if a.Kind != "Deployment" {
				continue
			}
			for _, d := range a.FeedStatusDetails {
				if d.ClusterID == skew.ID {
					got := fmt.Sprintf("applied=%v available=%v %d/%d/%d", d.Applied, d.Available, d.Replicas, d.ReadyReplicas, d.AvailableReplicas)
					return got == "applied=true available=true 2/2/2", got
				}
			}
		}
		return false, fmt.Sprintf("no Deployment status for %s in %+v", skew.ID, s.Status.AggregatedStatuses)
	})
}

// skewChild returns the one child on CHILD_SKEW_VERSION, failing the test
// unless the parent and every other child run KUBE_VERSION.
func skewChild(t *testing.T, parent *testbed.Cluster, children []*e2eutil.Child) *e2eutil.Child {
	t.Helper()
	if parent.KubeVersion != testbed.KubeVersion() {
		t.Fatalf("parent runs Kubernetes %s, want %s", parent.KubeVersion, testbed.KubeVersion())
	}
	var skew *e2eutil.Child
	for _, c := range children {
		switch {
		case c.KubeVersion == testbed.ChildSkewVersion() && skew == nil:
			skew = c
		case c.KubeVersion != testbed.KubeVersion():
			t.Fatalf("%s runs Kubernetes %s: want one child on %s, the others on %s", c.Cluster.Name, c.KubeVersion, testbed.ChildSkewVersion(), testbed.KubeVersion())
		}
	}
	if skew == nil {
		t.Fatalf("no child runs Kubernetes %s", testbed.ChildSkewVersion())
	}
	return skew
}

// serverVersionIs checks that c's apiserver says it runs the version the
// testbed recorded: the binaries started are the version's own.
func serverVersionIs(t *testing.T, c *testbed.Cluster) {
	t.Helper()
	kcs, err := c.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	v, err := kcs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != c.KubeVersion {
		t.Errorf("%s's apiserver serves Kubernetes %s, the testbed recorded %s", c.Name, v.GitVersion, c.KubeVersion)
	}
}
