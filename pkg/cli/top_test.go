package cli

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

// topCluster builds a ManagedCluster as a heartbeat leaves it.
func topCluster(name, id string, ready metav1.ConditionStatus, tunnel bool, allocatable corev1.ResourceList) clusterv1beta1.ManagedCluster {
	mc := clusterv1beta1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "clusternet-" + name}}
	mc.Spec.ClusterID = types.UID(id)
	mc.Status.UseSocket = tunnel
	mc.Status.Allocatable = allocatable
	mc.Status.Capacity = allocatable
	mc.Status.Conditions = []metav1.Condition{{Type: clusterv1beta1.ClusterReady, Status: ready}}
	return mc
}

func resources(cpu, memory, pods string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for name, v := range map[corev1.ResourceName]string{corev1.ResourceCPU: cpu, corev1.ResourceMemory: memory, corev1.ResourcePods: pods} {
		if v != "" {
			l[name] = resource.MustParse(v)
		}
	}
	return l
}

func topPod(name, node string, phase corev1.PodPhase, cpu, memory string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c",
			Resources: corev1.ResourceRequirements{Requests: resources(cpu, memory, "")}}}},
		Status: corev1.PodStatus{Phase: phase},
	}
}

func readyNode(name string, allocatable corev1.ResourceList) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{
		Capacity: allocatable, Allocatable: allocatable,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
	}}
}

// fakeChild is a child read through a fake clientset, with node metrics
// served (usage non-nil), not served, or failing.
type fakeChild struct {
	kubeChild
	usage    corev1.ResourceList
	usageErr error
}

func (f fakeChild) NodeUsage(context.Context) (corev1.ResourceList, bool, error) {
	return f.usage, f.usage != nil, f.usageErr
}

func TestTopClusters(t *testing.T) {
	pods := []runtime.Object{
		topPod("a", "n1", corev1.PodRunning, "250m", "128Mi"),
		topPod("b", "n1", corev1.PodPending, "750m", "384Mi"),
		// Neither a terminated pod nor one not yet bound holds anything.
		topPod("done", "n1", corev1.PodSucceeded, "4", "4Gi"),
		topPod("unbound", "", corev1.PodPending, "4", "4Gi"),
	}
	alloc := resources("4", "8Gi", "110")
	for _, tc := range []struct {
		name     string
		clusters []clusterv1beta1.ManagedCluster
		children map[string]fakeChild
		args     TopClustersOptions
		wantOut  string
		wantErr  string
		stderr   string
	}{{
		name: "status, requests and usage",
		clusters: []clusterv1beta1.ManagedCluster{
			topCluster("child1", id1, metav1.ConditionTrue, true, alloc),
			topCluster("child2", id2, metav1.ConditionTrue, true, alloc),
		},
		children: map[string]fakeChild{
			id1: {kubeChild: kubeChild{fake.NewClientset(pods...)}, usage: resources("2", "1Gi", "")},
			id2: {kubeChild: kubeChild{fake.NewClientset()}},
		},
		wantOut: `NAME     READY   TUNNEL   CPU(ALLOC)   CPU(REQUESTS)   CPU(USAGE)    MEMORY(ALLOC)   MEMORY(REQUESTS)   MEMORY(USAGE)   PODS
child1   True    Up       4000m        1000m (25%)     2000m (50%)   8192Mi          512Mi (6%)         1024Mi (12%)    2/110
child2   True    Up       4000m        0m (0%)         <none>        8192Mi          0Mi (0%)           <none>          0/110
`,
	}, {
		name:     "a cluster whose tunnel is down is not asked",
		clusters: []clusterv1beta1.ManagedCluster{topCluster("child1", id1, metav1.ConditionUnknown, false, alloc)},
		children: map[string]fakeChild{},
		args:     TopClustersOptions{Output: "wide"},
		wantOut: `NAME     READY     TUNNEL   CPU(ALLOC)   CPU(REQUESTS)   CPU(USAGE)   MEMORY(ALLOC)   MEMORY(REQUESTS)   MEMORY(USAGE)   PODS            CPU(CAPACITY)   MEMORY(CAPACITY)
child1   Unknown   Down     4000m        <unknown>       <unknown>    8192Mi          <unknown>          <unknown>       <unknown>/110   4000m           8192Mi
`,
	}, {
		name:     "a status without allocatable is completed from the nodes",
		clusters: []clusterv1beta1.ManagedCluster{topCluster("child1", id1, metav1.ConditionTrue, true, nil)},
		children: map[string]fakeChild{
			id1: {kubeChild: kubeChild{fake.NewClientset(readyNode("n1", resources("2", "2Gi", "10")), readyNode("n2", resources("2", "2Gi", "10")))}},
		},
		args: TopClustersOptions{NoHeaders: true},
		wantOut: `child1   True   Up    4000m   0m (0%)   <none>   4096Mi   0Mi (0%)   <none>   0/20
`,
	}, {
		name:     "a child that fails is reported and fails the command",
		clusters: []clusterv1beta1.ManagedCluster{topCluster("child1", id1, metav1.ConditionTrue, true, alloc)},
		children: map[string]fakeChild{
			id1: {kubeChild: kubeChild{fake.NewClientset()}, usageErr: errors.New(`the server is currently unable to handle the request`)},
		},
		args: TopClustersOptions{Clusters: "child1", NoHeaders: true},
		wantOut: `child1   True   Up    4000m   0m (0%)   <unknown>   8192Mi   0Mi (0%)   <unknown>   0/110
`,
		stderr:  "error: cluster child1: reading node usage from its metrics API: the server is currently unable to handle the request\n",
		wantErr: "error: 1 of 1 clusters could not be read: child1",
	}, {
		name:     "an unknown cluster is refused with the known ones",
		clusters: []clusterv1beta1.ManagedCluster{topCluster("child1", id1, metav1.ConditionTrue, true, alloc)},
		args:     TopClustersOptions{Clusters: "nope"},
		wantErr:  `cluster "nope" not found: it is neither the name nor the cluster id of a ManagedCluster; known clusters: child1 (namespace clusternet-child1, id ` + id1 + `)`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			o := NewTopClustersOptions(genericiooptions.IOStreams{Out: &out, ErrOut: &errOut})
			if tc.args.Clusters != "" {
				o.Clusters = tc.args.Clusters
			}
			o.Output, o.NoHeaders = tc.args.Output, tc.args.NoHeaders
			o.list = func(context.Context) ([]clusterv1beta1.ManagedCluster, error) { return tc.clusters, nil }
			o.childFor = func(c Cluster) (childResources, error) {
				child, ok := tc.children[c.ID]
				if !ok {
					t.Errorf("cluster %s was asked", c)
					return nil, errors.New("not expected")
				}
				return child, nil
			}
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			checkRun(t, o.Run(context.Background()), &out, &errOut, tc.wantErr, tc.wantOut, tc.stderr)
		})
	}
}

func TestTopClustersValidate(t *testing.T) {
	o := NewTopClustersOptions(genericiooptions.IOStreams{})
	o.Output = "yaml"
	if got, want := errorText(o.Validate()), `--output "yaml": give wide or json, or leave it out for a table`; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}

func TestSumNodeUsage(t *testing.T) {
	got, served, err := sumNodeUsage([]byte(`{"kind":"NodeMetricsList","items":[{"usage":{"cpu":"250m","memory":"1Gi"}},{"usage":{"cpu":"1","memory":"512Mi"}}]}`))
	if err != nil || !served {
		t.Fatalf("served %v, error %v", served, err)
	}
	if cpu, mem := got[corev1.ResourceCPU], got[corev1.ResourceMemory]; cpu.MilliValue() != 1250 || mem.Value() != 1536*1024*1024 {
		t.Errorf("usage cpu %s memory %s, want 1250m and 1536Mi", cpu.String(), mem.String())
	}
	if _, _, err := sumNodeUsage([]byte(`{"items":[]}`)); err == nil {
		t.Error("no node metrics: no error")
	}
}

// checkRun compares what a command's Run returned and printed with what
// is wanted.
func checkRun(t *testing.T, err error, out, errOut *bytes.Buffer, wantErr, wantOut, wantStderr string) {
	t.Helper()
	if got := errorText(err); got != wantErr {
		t.Errorf("error %q, want %q", got, wantErr)
	}
	if diff := cmp.Diff(wantOut, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantStderr, errOut.String()); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
