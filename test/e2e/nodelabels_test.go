package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/server/agent"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestNodeFeatureLabels: agents copy the node labels under
// --label-aggregate-prefix that at least --label-aggregate-threshold of their
// worker nodes carry onto their ManagedCluster, Subscriptions select
// clusters by them, and the labels go when the nodes lose them; labels the
// agent did not add stay. The agent's own token may change those labels and
// no other (the hub chart's ValidatingAdmissionPolicy).
func TestNodeFeatureLabels(t *testing.T) {
	const (
		gpu     = "feature.node.kubernetes.io/gpu"
		avx     = "feature.node.kubernetes.io/cpu-avx512" // set by an admin, not by the agent
		owned   = agent.AnnotationAggregatedNodeLabels
		subName = "gpu-only"
	)
	ctx := context.Background()
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	setUpParent(t, parent)

	// child1 gets two more kwok nodes: three workers in all.
	for i := 1; i <= 2; i++ {
		mustKubectl(t, tb.Children[0], fmt.Sprintf(`
apiVersion: v1
kind: Node
metadata:
  name: %s-node-extra-%d
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {type: kwok, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
`, tb.Children[0].Name, i), "apply", "-f", "-")
	}
	nodeNames := strings.Fields(mustKubectl(t, tb.Children[0], "", "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"))
	if len(nodeNames) != 3 {
		t.Fatalf("child1 has nodes %v, want 3", nodeNames)
	}

	children := e2eutil.RegisterChildren(t, parent, tb.Children, func(int) []string {
		return []string{"--label-aggregate-prefix=feature.node.kubernetes.io/", "--label-aggregate-threshold=0.5"}
	})
	gpuChild, other := children[0], children[1]
	cs := clusternetClient(t, parent)
	mc := func(c *e2eutil.Child) *clusterv1beta1.ManagedCluster {
		got, err := cs.ClustersV1beta1().ManagedClusters(c.Namespace).Get(ctx, c.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// An admin's label under the same prefix, which no node carries: the
	// agent must leave it alone throughout.
	mustKubectl(t, parent, "", "label", "mcls", "-n", gpuChild.Namespace, gpuChild.Name, avx+"=true")

	mustKubectl(t, gpuChild.Cluster, "", "label", "node", nodeNames[0], nodeNames[1], gpu+"=true")
	waitFor(t, 30*time.Second, "child1's ManagedCluster labeled "+gpu+"=true by its agent", func(context.Context) (bool, string) {
		m := mc(gpuChild)
		return m.Labels[gpu] == "true" && m.Annotations[owned] == gpu, fmt.Sprintf("labels %v annotations %v", m.Labels, m.Annotations)
	})

	t.Run("only labels held by enough nodes, and only the agent's are owned", func(t *testing.T) {
		m := mc(gpuChild)
		if m.Labels[avx] != "true" || m.Labels[clusterv1beta1.LabelClusterID] != gpuChild.ID {
			t.Errorf("labels %v: the admin's %s and the registration's cluster id must stay", m.Labels, avx)
		}
		if got := mc(other); got.Labels[gpu] != "" || got.Annotations[owned] != "" {
			t.Errorf("child2 (no GPU nodes) has labels %v annotations %v", got.Labels, got.Annotations)
		}
	})

	sub := fmt.Sprintf(`
apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: %s, namespace: default}
spec:
  subscribers:
    - clusterAffinity: {matchLabels: {%s: "true"}}
  feeds:
    - {apiVersion: v1, kind: Namespace, name: gpu-workloads}
`, subName, gpu)
	e2eutil.CreateTemplate(t, parent, "apiVersion: v1\nkind: Namespace\nmetadata: {name: gpu-workloads}\n")
	mustKubectl(t, parent, sub, "apply", "-f", "-")
	bindings := func() []string {
		s, err := cs.AppsV1alpha1().Subscriptions("default").Get(ctx, subName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Status.BindingClusters
	}
	t.Run("a Subscription selecting the label binds only that cluster", func(t *testing.T) {
		want := []string{gpuChild.Namespace + "/" + gpuChild.Name}
		waitFor(t, 30*time.Second, "Subscription "+subName+" bound to child1 only", func(context.Context) (bool, string) {
			got := bindings()
			return cmp.Equal(want, got), fmt.Sprintf("bindingClusters %v, want %v", got, want)
		})
		descs, err := cs.AppsV1alpha1().Descriptions("").List(ctx, metav1.ListOptions{LabelSelector: appsv1alpha1.LabelSubscriptionName + "=" + subName})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range descs.Items {
			if d.Namespace != gpuChild.Namespace {
				t.Errorf("Description %s/%s for a cluster without GPUs", d.Namespace, d.Name)
			}
		}
	})

	creds, err := gpuChild.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := creds.CoreV1().Secrets("clusternet-system").Get(ctx, agent.CredentialsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	asAgent, err := versioned.NewForConfig(&rest.Config{Host: parent.URL, BearerToken: string(secret.Data["token"]),
		TLSClientConfig: rest.TLSClientConfig{CAFile: parent.CAFile}})
	if err != nil {
		t.Fatal(err)
	}
	patch := func(c *e2eutil.Child, p string) error {
		_, err := asAgent.ClustersV1beta1().ManagedClusters(c.Namespace).Patch(ctx, c.Name, types.MergePatchType, []byte(p), metav1.PatchOptions{})
		return err
	}
	t.Run("the agent's token may change labels under the prefixes", func(t *testing.T) {
		if err := patch(gpuChild, `{"metadata":{"labels":{"feature.node.kubernetes.io/probe":"1"}}}`); err != nil {
			t.Fatalf("adding a label under feature.node.kubernetes.io/ as the agent: %v", err)
		}
		if err := patch(gpuChild, `{"metadata":{"labels":{"feature.node.kubernetes.io/probe":null}}}`); err != nil {
			t.Fatalf("removing it as the agent: %v", err)
		}
	})
	for _, tc := range []struct {
		name, patch string
		child       *e2eutil.Child
		want        string
	}{
		{"move its cluster into other Subscriptions", `{"metadata":{"labels":{"env":"prod"}}}`, gpuChild,
			"is a cluster agent: it may update only the status of its ManagedCluster (managedclusters/status) and its labels under node.clusternet.io/, feature.node.kubernetes.io/ (the node labels it aggregates), not env"},
		{"change its cluster id label", fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, clusterv1beta1.LabelClusterID), gpuChild,
			"and its labels under node.clusternet.io/, feature.node.kubernetes.io/ (the node labels it aggregates), not " + clusterv1beta1.LabelClusterID},
		{"hide a prefixed label among allowed changes", `{"metadata":{"labels":{"feature.node.kubernetes.io/x":"1","team":"a"}}}`, gpuChild,
			"(the node labels it aggregates), not team"},
		{"write another annotation", `{"metadata":{"annotations":{"note":"x"}}}`, gpuChild,
			"of its ManagedCluster's annotations it may change only " + owned},
		{"change its sync mode", `{"spec":{"syncMode":"Push"}}`, gpuChild,
			"its spec, finalizers and owners are the parent's users' and clusternet-hub's to change"},
		{"label another cluster", `{"metadata":{"labels":{"feature.node.kubernetes.io/gpu":"true"}}}`, other,
			`cannot patch resource "managedclusters"`},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			err := patch(tc.child, tc.patch)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("patch %s as child1's agent: %v, want a refusal containing %q", tc.patch, err, tc.want)
			}
		})
	}

	t.Run("below the threshold the label goes, and so does the binding", func(t *testing.T) {
		mustKubectl(t, gpuChild.Cluster, "", "label", "node", nodeNames[1], gpu+"-") // 1 of 3 now
		waitFor(t, 30*time.Second, "child1's ManagedCluster without "+gpu, func(context.Context) (bool, string) {
			m := mc(gpuChild)
			_, has := m.Labels[gpu]
			_, annotated := m.Annotations[owned]
			return !has && !annotated, fmt.Sprintf("labels %v annotations %v", m.Labels, m.Annotations)
		})
		m := mc(gpuChild)
		if m.Labels[avx] != "true" || m.Labels[clusterv1beta1.LabelClusterID] != gpuChild.ID {
			t.Errorf("labels %v: the admin's %s and the cluster id must stay", m.Labels, avx)
		}
		waitFor(t, 30*time.Second, "Subscription "+subName+" bound to no cluster", func(context.Context) (bool, string) {
			got := bindings()
			return len(got) == 0, fmt.Sprintf("bindingClusters %v", got)
		})
	})

	t.Run("the label disappearing from every node removes it too", func(t *testing.T) {
		mustKubectl(t, gpuChild.Cluster, "", "label", "node", nodeNames[1], nodeNames[2], gpu+"=true")
		waitFor(t, 30*time.Second, "labeled again (2 of 3)", func(context.Context) (bool, string) {
			m := mc(gpuChild)
			return m.Labels[gpu] == "true", fmt.Sprintf("labels %v", m.Labels)
		})
		mustKubectl(t, gpuChild.Cluster, "", "label", "node", "--all", gpu+"-")
		waitFor(t, 30*time.Second, "the label gone", func(context.Context) (bool, string) {
			m := mc(gpuChild)
			_, has := m.Labels[gpu]
			return !has && m.Labels[avx] == "true", fmt.Sprintf("labels %v", m.Labels)
		})
	})
}
