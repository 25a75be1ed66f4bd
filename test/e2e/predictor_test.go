package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// predictorWait is how long status.available may take to follow a change in
// the child: a few of the testbed agents' 2 s heartbeats.
const predictorWait = 30 * time.Second

// TestPredictor: the testbed's agents run with the Predictor gate on
// (framework.AgentChartValues, the agent chart's featureGates), so a child's
// ManagedCluster reports status.predictorEnabled and status.available; pods
// that kube-scheduler binds to the child's kwok nodes lower it by what they
// request within a few heartbeats, deleting them gives it back, and
// cordoning every node leaves nothing available.
func TestPredictor(t *testing.T) {
	ctx := context.Background()
	tb := testbed.ForTest(t, 1)
	parent := tb.Parent
	setUpParent(t, parent)
	child := e2eutil.RegisterChildren(t, parent, tb.Children, nil)[0]
	cs := clusternetClient(t, parent)
	kcs, err := child.Clientset()
	if err != nil {
		t.Fatal(err)
	}

	var baseline corev1.ResourceList
	waitFor(t, predictorWait, child.Name+" reporting predictorEnabled and available", func(ctx context.Context) (bool, string) {
		enabled, available, err := prediction(ctx, cs, child)
		if err != nil {
			return false, err.Error()
		}
		baseline = available
		_, cpu := available[corev1.ResourceCPU]
		_, pods := available[corev1.ResourcePods]
		return enabled && cpu && pods, fmt.Sprintf("predictorEnabled %t, available %v", enabled, available)
	})
	t.Run("a child without pods has its allocatable available", func(t *testing.T) {
		pods, err := kcs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) > 0 {
			t.Fatalf("%s runs %d pods before the test: this check wants a testbed child without pods", child.Name, len(pods.Items))
		}
		m, err := cs.ClustersV1beta1().ManagedClusters(child.Namespace).Get(ctx, child.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := differences(m.Status.Allocatable, baseline); diff != "" {
			t.Errorf("available is not allocatable: %s", diff)
		}
	})

	const replicas = 3
	perPod := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3"), corev1.ResourceMemory: resource.MustParse("5Gi")}
	t.Run("pods bound in the child lower available by their requests", func(t *testing.T) {
		names := make([]string, replicas)
		for i := range names {
			names[i] = fmt.Sprintf("predictor-%d", i)
			createRequestingPod(t, kcs, names[i], perPod)
		}
		waitFor(t, predictorWait, "kube-scheduler binding the pods", func(ctx context.Context) (bool, string) {
			for _, name := range names {
				p, err := kcs.CoreV1().Pods(metav1.NamespaceDefault).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				if p.Spec.NodeName == "" {
					return false, "pod " + name + " not bound yet"
				}
			}
			return true, ""
		})
		want := minus(baseline, corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("9"),
			corev1.ResourceMemory: resource.MustParse("15Gi"),
			corev1.ResourcePods:   *resource.NewQuantity(replicas, resource.DecimalSI),
		})
		waitForAvailable(t, cs, child, want)

		for _, name := range names {
			if err := kcs.CoreV1().Pods(metav1.NamespaceDefault).Delete(ctx, name, *metav1.NewDeleteOptions(0)); err != nil {
				t.Fatal(err)
			}
		}
		waitForAvailable(t, cs, child, baseline)
	})

	t.Run("cordoned nodes take nothing: nothing available", func(t *testing.T) {
		nodes, err := kcs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cordon := func(unschedulable bool) {
			t.Helper()
			patch := fmt.Appendf(nil, `{"spec":{"unschedulable":%t}}`, unschedulable)
			for _, n := range nodes.Items {
				if _, err := kcs.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		cordon(true)
		t.Cleanup(func() { cordon(false) })
		waitForAvailable(t, cs, child, corev1.ResourceList{})
		cordon(false)
		waitForAvailable(t, cs, child, baseline)
	})
}

// prediction is what child's ManagedCluster says about its predictor.
func prediction(ctx context.Context, cs versioned.Interface, child *e2eutil.Child) (bool, corev1.ResourceList, error) {
	m, err := cs.ClustersV1beta1().ManagedClusters(child.Namespace).Get(ctx, child.Name, metav1.GetOptions{})
	if err != nil {
		return false, nil, err
	}
	return m.Status.PredictorEnabled, m.Status.Available, nil
}

// waitForAvailable waits until child's ManagedCluster, predictor enabled,
// reports exactly want available.
func waitForAvailable(t *testing.T, cs versioned.Interface, child *e2eutil.Child, want corev1.ResourceList) {
	t.Helper()
	waitFor(t, predictorWait, fmt.Sprintf("%s reporting available %v", child.Name, want), func(ctx context.Context) (bool, string) {
		enabled, available, err := prediction(ctx, cs, child)
		if err != nil {
			return false, err.Error()
		}
		diff := differences(want, available)
		return enabled && diff == "", fmt.Sprintf("predictorEnabled %t, available %v: %s", enabled, available, diff)
	})
}

// createRequestingPod creates a pod in child's default namespace whose one
// container requests requests; the test deletes it when it ends if it is
// still there.
func createRequestingPod(t *testing.T, kcs kubernetes.Interface, name string, requests corev1.ResourceList) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.example/app:1", Resources: corev1.ResourceRequirements{Requests: requests},
		}}},
	}
	if _, err := kcs.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kcs.CoreV1().Pods(pod.Namespace).Delete(context.Background(), name, *metav1.NewDeleteOptions(0))
	})
}

// minus is list less sub, per resource of list.
func minus(list, sub corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, q := range list {
		q = q.DeepCopy()
		if s, ok := sub[name]; ok {
			q.Sub(s)
		}
		out[name] = q
	}
	return out
}

// differences names each resource whose quantity differs between want and
// got, by value ("" when none does).
func differences(want, got corev1.ResourceList) string {
	var diff string
	for name, w := range want {
		if g, ok := got[name]; !ok || g.Cmp(w) != 0 {
			diff += fmt.Sprintf(" %s: want %s, got %s;", name, w.String(), g.String())
		}
	}
	for name, g := range got {
		if _, ok := want[name]; !ok {
			diff += fmt.Sprintf(" %s: want none, got %s;", name, g.String())
		}
	}
	return diff
}
