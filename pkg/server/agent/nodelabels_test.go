package agent

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

const (
	gpu  = "feature.node.kubernetes.io/gpu"
	avx  = "feature.node.kubernetes.io/cpu-avx512"
	nfd  = "feature.node.kubernetes.io/"
	zone = "topology.example.com/zone"
)

// labeledNode is a worker node with labels k1, v1, k2, v2, ...
func labeledNode(kv ...string) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"kubernetes.io/hostname": "n"}}}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Labels[kv[i]] = kv[i+1]
	}
	return n
}

func TestLabelAggregationFlags(t *testing.T) {
	tests := []struct {
		name           string
		args           []string
		wantPrefixes   []string
		wantThreshold  float64
		wantErr        string
		wantErrAlsoHas string
	}{
		{name: "upstream's defaults", wantPrefixes: []string{"node.clusternet.io/"}, wantThreshold: 0.8},
		{name: "repeated", args: []string{"--label-aggregate-prefix=feature.node.kubernetes.io/", "--label-aggregate-prefix=node.clusternet.io/gpu-"},
			wantPrefixes: []string{"feature.node.kubernetes.io/", "node.clusternet.io/gpu-"}, wantThreshold: 0.8},
		{name: "comma list and a threshold", args: []string{"--label-aggregate-prefix=feature.node.kubernetes.io/,example.com/", "--label-aggregate-threshold=0.5"},
			wantPrefixes: []string{"feature.node.kubernetes.io/", "example.com/"}, wantThreshold: 0.5},
		{name: "empty turns it off", args: []string{"--label-aggregate-prefix="}, wantPrefixes: []string{}, wantThreshold: 0.8},
		{name: "threshold 1: every worker", args: []string{"--label-aggregate-threshold=1"}, wantPrefixes: []string{"node.clusternet.io/"}, wantThreshold: 1},
		{name: "threshold 0", args: []string{"--label-aggregate-threshold=0"},
			wantErr: `--label-aggregate-threshold 0: must be more than 0 and at most 1 (the share of worker nodes that must carry a label), e.g. 0.8`},
		{name: "threshold above 1", args: []string{"--label-aggregate-threshold=1.5"},
			wantErr: `--label-aggregate-threshold 1.5: must be more than 0 and at most 1`},
		{name: "negative threshold", args: []string{"--label-aggregate-threshold=-0.2"},
			wantErr: `--label-aggregate-threshold -0.2: must be more than 0 and at most 1`},
		{name: "NaN threshold", args: []string{"--label-aggregate-threshold=NaN"},
			wantErr: `--label-aggregate-threshold NaN: must be more than 0 and at most 1`},
		{name: "prefix without a domain", args: []string{"--label-aggregate-prefix=gpu"},
			wantErr: `--label-aggregate-prefix "gpu": a prefix starts with a label domain and its slash, e.g. feature.node.kubernetes.io/ or node.clusternet.io/gpu-`},
		{name: "prefix with an empty domain", args: []string{"--label-aggregate-prefix=/gpu"},
			wantErr: `--label-aggregate-prefix "/gpu": a prefix starts with a label domain and its slash`},
		{name: "empty prefix in a list", args: []string{"--label-aggregate-prefix=example.com/,,node.clusternet.io/"},
			wantErr: `--label-aggregate-prefix "": a prefix starts with a label domain and its slash`},
		{name: "domain not a DNS subdomain", args: []string{"--label-aggregate-prefix=Feature_Node/"},
			wantErr: `--label-aggregate-prefix "Feature_Node/": domain "Feature_Node": a lowercase RFC 1123 subdomain`},
		{name: "name part that cannot start a name", args: []string{"--label-aggregate-prefix=example.com/-gpu"},
			wantErr: `--label-aggregate-prefix "example.com/-gpu": "-gpu" does not start a valid label name`},
		{name: "a second slash", args: []string{"--label-aggregate-prefix=example.com/a/"},
			wantErr: `--label-aggregate-prefix "example.com/a/": "a/" does not start a valid label name`},
		{name: "Clusternet's own labels", args: []string{"--label-aggregate-prefix=clusters.clusternet.io/"},
			wantErr: `--label-aggregate-prefix "clusters.clusternet.io/": labels under "clusters.clusternet.io/" are reserved for Clusternet and Kubernetes: pick a prefix of another domain, e.g. node.clusternet.io/`},
		{name: "part of a reserved domain", args: []string{"--label-aggregate-prefix=kubernetes.io/arch"},
			wantErr: `--label-aggregate-prefix "kubernetes.io/arch": labels under "kubernetes.io/" are reserved`},
		{name: "every bad value is named", args: []string{"--label-aggregate-prefix=k8s.io/,gpu", "--label-aggregate-threshold=2"},
			wantErr: `--label-aggregate-prefix "k8s.io/": labels under "k8s.io/" are reserved`, wantErrAlsoHas: `--label-aggregate-prefix "gpu"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
			for _, f := range o.Flags().FlagSets {
				fs.AddFlagSet(f)
			}
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.wantErrAlsoHas) {
					t.Fatalf("error = %v, want one containing %q and %q", err, tc.wantErr, tc.wantErrAlsoHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tc.wantPrefixes, o.LabelAggregatePrefixes); diff != "" {
				t.Errorf("prefixes (-want +got):\n%s", diff)
			}
			if o.LabelAggregateThreshold != tc.wantThreshold {
				t.Errorf("threshold %v, want %v", o.LabelAggregateThreshold, tc.wantThreshold)
			}
		})
	}
}

func TestAggregateNodeLabels(t *testing.T) {
	controlPlane := labeledNode("node-role.kubernetes.io/control-plane", "", gpu, "false")
	master := labeledNode("node-role.kubernetes.io/master", "", gpu, "false")
	tests := []struct {
		name      string
		nodes     []corev1.Node
		prefixes  []string
		threshold float64
		want      map[string]string
	}{
		{name: "2 of 3 at 0.5", threshold: 0.5, prefixes: []string{nfd},
			nodes: []corev1.Node{labeledNode(gpu, "true"), labeledNode(gpu, "true"), labeledNode()},
			want:  map[string]string{gpu: "true"}},
		{name: "2 of 3 at upstream's 0.8", threshold: 0.8, prefixes: []string{nfd},
			nodes: []corev1.Node{labeledNode(gpu, "true"), labeledNode(gpu, "true"), labeledNode()},
			want:  map[string]string{}},
		{name: "exactly the threshold counts: 4 of 5 at 0.8", threshold: 0.8, prefixes: []string{nfd},
			nodes: []corev1.Node{labeledNode(gpu, "true"), labeledNode(gpu, "true"), labeledNode(gpu, "true"), labeledNode(gpu, "true"), labeledNode()},
			want:  map[string]string{gpu: "true"}},
		{name: "exactly the threshold counts: 7 of 10 at 0.7", threshold: 0.7, prefixes: []string{nfd},
			nodes: append(repeat(labeledNode(gpu, "true"), 7), repeat(labeledNode(), 3)...),
			want:  map[string]string{gpu: "true"}},
		{name: "just under: 6 of 10 at 0.7", threshold: 0.7, prefixes: []string{nfd},
			nodes: append(repeat(labeledNode(gpu, "true"), 6), repeat(labeledNode(), 4)...),
			want:  map[string]string{}},
		{name: "threshold 1 needs every worker", threshold: 1, prefixes: []string{nfd},
			nodes: []corev1.Node{labeledNode(gpu, "true", avx, "true"), labeledNode(gpu, "true")},
			want:  map[string]string{gpu: "true"}},
		{name: "only labels under the prefixes", threshold: 0.5, prefixes: []string{nfd},
			nodes: []corev1.Node{labeledNode(gpu, "true", zone, "a", "kubernetes.io/arch", "amd64")},
			want:  map[string]string{gpu: "true"}},
		{name: "several prefixes", threshold: 0.5, prefixes: []string{nfd, "topology.example.com/"},
			nodes: []corev1.Node{labeledNode(gpu, "true", zone, "a"), labeledNode(zone, "a")},
			want:  map[string]string{gpu: "true", zone: "a"}},
		{name: "a prefix into the name", threshold: 0.5, prefixes: []string{"feature.node.kubernetes.io/cpu-"},
			nodes: []corev1.Node{labeledNode(gpu, "true", avx, "true")},
			want:  map[string]string{avx: "true"}},
		{name: "the most common value counts, not each value", threshold: 0.6, prefixes: []string{"topology.example.com/"},
			nodes: []corev1.Node{labeledNode(zone, "a"), labeledNode(zone, "a"), labeledNode(zone, "b")},
			want:  map[string]string{zone: "a"}},
		{name: "a key carried by enough nodes with different values is not common", threshold: 0.6, prefixes: []string{"topology.example.com/"},
			nodes: []corev1.Node{labeledNode(zone, "a"), labeledNode(zone, "b"), labeledNode(zone, "c")},
			want:  map[string]string{}},
		{name: "a tie picks the smaller value, every time", threshold: 0.5, prefixes: []string{"topology.example.com/"},
			nodes: []corev1.Node{labeledNode(zone, "b"), labeledNode(zone, "a"), labeledNode(zone, "b"), labeledNode(zone, "a")},
			want:  map[string]string{zone: "a"}},
		{name: "an empty value is a value", threshold: 1, prefixes: []string{nfd},
			nodes: []corev1.Node{labeledNode(gpu, ""), labeledNode(gpu, "")},
			want:  map[string]string{gpu: ""}},
		{name: "control-plane nodes do not count", threshold: 1, prefixes: []string{nfd},
			nodes: []corev1.Node{controlPlane, master, labeledNode(gpu, "true"), labeledNode(gpu, "true")},
			want:  map[string]string{gpu: "true"}},
		{name: "readiness does not matter", threshold: 1, prefixes: []string{nfd},
			nodes: []corev1.Node{withReady(labeledNode(gpu, "true"), corev1.ConditionFalse), withReady(labeledNode(gpu, "true"), corev1.ConditionTrue)},
			want:  map[string]string{gpu: "true"}},
		{name: "only control-plane nodes: nothing", threshold: 0.5, prefixes: []string{nfd},
			nodes: []corev1.Node{controlPlane}, want: map[string]string{}},
		{name: "no nodes: nothing", threshold: 0.5, prefixes: []string{nfd}, nodes: []corev1.Node{}, want: map[string]string{}},
		{name: "no prefixes: off", threshold: 0.5, nodes: []corev1.Node{labeledNode(gpu, "true")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := aggregateNodeLabels(tc.nodes, tc.prefixes, tc.threshold)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("aggregated labels (-want +got):\n%s", diff)
			}
		})
	}
}

func repeat(n corev1.Node, times int) []corev1.Node {
	out := make([]corev1.Node, times)
	for i := range out {
		out[i] = *n.DeepCopy()
	}
	return out
}

func withReady(n corev1.Node, s corev1.ConditionStatus) corev1.Node {
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: s}}
	return n
}

// labelsPlus is a copy of base with the key/value pairs kv set.
func labelsPlus(base map[string]string, kv ...string) map[string]string {
	m := maps.Clone(base)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestPlanNodeLabels(t *testing.T) {
	registered := map[string]string{clusterv1beta1.LabelClusterID: "id", clusterv1beta1.LabelClusterName: "edge-1"}
	with := func(kv ...string) map[string]string { return labelsPlus(registered, kv...) }
	tests := []struct {
		name   string
		labels map[string]string
		owned  string
		want   map[string]string
		plan   nodeLabelChanges
	}{
		{name: "nothing wanted, nothing owned", labels: with(), plan: nodeLabelChanges{Set: map[string]string{}}},
		{name: "a new label is added and owned", labels: with(), want: map[string]string{gpu: "true"},
			plan: nodeLabelChanges{Set: map[string]string{gpu: "true"}, Owned: gpu}},
		{name: "owned and as wanted: no change", labels: with(gpu, "true"), owned: gpu, want: map[string]string{gpu: "true"},
			plan: nodeLabelChanges{Set: map[string]string{}, Owned: gpu}},
		{name: "owned with another value: corrected", labels: with(gpu, "false"), owned: gpu, want: map[string]string{gpu: "true"},
			plan: nodeLabelChanges{Set: map[string]string{gpu: "true"}, Owned: gpu}},
		{name: "owned, no longer wanted: removed and disowned", labels: with(gpu, "true", avx, "true"), owned: avx + "," + gpu, want: map[string]string{avx: "true"},
			plan: nodeLabelChanges{Set: map[string]string{}, Remove: []string{gpu}, Owned: avx}},
		{name: "the last owned label goes, and the annotation with it", labels: with(gpu, "true"), owned: gpu,
			plan: nodeLabelChanges{Set: map[string]string{}, Remove: []string{gpu}, Owned: ""}},
		{name: "a user's label, same value: left alone, not owned", labels: with(gpu, "true"), want: map[string]string{gpu: "true"},
			plan: nodeLabelChanges{Set: map[string]string{}}},
		{name: "a user's label, other value: left alone, not owned", labels: with(gpu, "false"), want: map[string]string{gpu: "true"},
			plan: nodeLabelChanges{Set: map[string]string{}}},
		{name: "a user's label the nodes do not carry: never removed", labels: with(gpu, "true"),
			plan: nodeLabelChanges{Set: map[string]string{}}},
		{name: "an owned label a user removed is added again while wanted", labels: with(), owned: gpu, want: map[string]string{gpu: "true"},
			plan: nodeLabelChanges{Set: map[string]string{gpu: "true"}, Owned: gpu}},
		{name: "an owned label a user removed is forgotten once unwanted", labels: with(), owned: gpu,
			plan: nodeLabelChanges{Set: map[string]string{}, Owned: ""}},
		{name: "owned keys outside the prefixes are neither touched nor forgotten", labels: with("old.example.com/x", "1"), owned: "old.example.com/x",
			plan: nodeLabelChanges{Set: map[string]string{}, Owned: "old.example.com/x"}},
		{name: "a reserved key listed as owned is never removed", labels: with(), owned: clusterv1beta1.LabelClusterID + ", " + gpu,
			plan: nodeLabelChanges{Set: map[string]string{}, Owned: clusterv1beta1.LabelClusterID}},
		{name: "mixed", labels: with(gpu, "true", avx, "false", "feature.node.kubernetes.io/stale", "x"), owned: "feature.node.kubernetes.io/stale,feature.node.kubernetes.io/gone",
			want: map[string]string{gpu: "true", avx: "true", "feature.node.kubernetes.io/new": "1"},
			plan: nodeLabelChanges{Set: map[string]string{"feature.node.kubernetes.io/new": "1"}, Remove: []string{"feature.node.kubernetes.io/stale"},
				Owned: "feature.node.kubernetes.io/new"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := planNodeLabels(tc.labels, tc.owned, tc.want, []string{nfd})
			if diff := cmp.Diff(tc.plan, got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

// nodeLabelAgent is an agent registered as ManagedCluster ns/edge-1 in a
// fake parent holding mc.
func nodeLabelAgent(t *testing.T, mc *clusterv1beta1.ManagedCluster, prefixes []string, threshold float64) (*Agent, *clusternetfake.Clientset) {
	t.Helper()
	parent := clusternetfake.NewClientset(mc)
	o := NewOptions()
	o.LabelAggregatePrefixes, o.LabelAggregateThreshold = prefixes, threshold
	return &Agent{opts: o, parent: parent, creds: &Credentials{DedicatedNamespace: mc.Namespace, ManagedClusterName: mc.Name}}, parent
}

func managedCluster(labels, annotations map[string]string) *clusterv1beta1.ManagedCluster {
	return &clusterv1beta1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "clusternet-abcde", Name: "edge-1", Labels: labels, Annotations: annotations}}
}

func TestSyncNodeLabels(t *testing.T) {
	ctx := context.Background()
	registered := map[string]string{clusterv1beta1.LabelClusterID: "id", "env": "edge", avx: "user"}
	a, parent := nodeLabelAgent(t, managedCluster(registered, map[string]string{"note": "kept"}), []string{nfd}, 0.5)
	get := func() *clusterv1beta1.ManagedCluster {
		t.Helper()
		mc, err := parent.ClustersV1beta1().ManagedClusters("clusternet-abcde").Get(ctx, "edge-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return mc
	}
	expect := func(wantLabels map[string]string, wantOwned string) {
		t.Helper()
		mc := get()
		if diff := cmp.Diff(wantLabels, mc.Labels); diff != "" {
			t.Errorf("labels (-want +got):\n%s", diff)
		}
		want := map[string]string{"note": "kept"}
		if wantOwned != "" {
			want[AnnotationAggregatedNodeLabels] = wantOwned
		}
		if diff := cmp.Diff(want, mc.Annotations); diff != "" {
			t.Errorf("annotations (-want +got):\n%s", diff)
		}
	}
	plus := func(kv ...string) map[string]string { return labelsPlus(registered, kv...) }
	patches := func() int {
		n := 0
		for _, act := range parent.Actions() {
			if act.GetVerb() == "patch" {
				n++
			}
		}
		return n
	}

	// 2 of 3 nodes have a GPU, all 3 AVX-512 (but a user set that label).
	nodes := []corev1.Node{labeledNode(gpu, "true", avx, "true"), labeledNode(gpu, "true", avx, "true"), labeledNode(avx, "true")}
	a.syncNodeLabels(ctx, nodes)
	expect(plus(gpu, "true"), gpu)

	t.Run("nothing changed: no write", func(t *testing.T) {
		before := patches()
		a.syncNodeLabels(ctx, nodes)
		if got := patches(); got != before {
			t.Errorf("%d patches for no change", got-before)
		}
	})
	t.Run("below the threshold: removed, the user's label kept", func(t *testing.T) {
		a.syncNodeLabels(ctx, []corev1.Node{labeledNode(gpu, "true"), labeledNode(), labeledNode(), labeledNode()})
		expect(plus(), "")
	})
	t.Run("back above it", func(t *testing.T) {
		a.syncNodeLabels(ctx, nodes)
		expect(plus(gpu, "true"), gpu)
	})
	t.Run("the label gone from every node: removed", func(t *testing.T) {
		a.syncNodeLabels(ctx, []corev1.Node{labeledNode(), labeledNode()})
		expect(plus(), "")
	})
	t.Run("no nodes at all: nothing left", func(t *testing.T) {
		a.syncNodeLabels(ctx, nodes)
		a.syncNodeLabels(ctx, []corev1.Node{})
		expect(plus(), "")
	})
	t.Run("a conflict is retried on a fresh read", func(t *testing.T) {
		conflicts := 0
		parent.PrependReactor("patch", "managedclusters", func(clienttesting.Action) (bool, runtime.Object, error) {
			if conflicts++; conflicts == 1 {
				return true, nil, apierrors.NewConflict(schema.GroupResource{Group: clusterv1beta1.GroupName, Resource: "managedclusters"}, "edge-1", errors.New("changed"))
			}
			return false, nil, nil
		})
		a.syncNodeLabels(ctx, nodes)
		expect(plus(gpu, "true"), gpu)
		if conflicts != 2 {
			t.Errorf("%d patches, want a conflict and a retry", conflicts)
		}
	})
	t.Run("every patch is conditional on the version read", func(t *testing.T) {
		for _, act := range parent.Actions() {
			if p, ok := act.(clienttesting.PatchAction); ok && !strings.Contains(string(p.GetPatch()), `"resourceVersion":`) {
				t.Errorf("patch without a resourceVersion: %s", p.GetPatch())
			}
		}
	})
	t.Run("turned off: nothing read or written", func(t *testing.T) {
		off, parent := nodeLabelAgent(t, managedCluster(plus(gpu, "true"), map[string]string{AnnotationAggregatedNodeLabels: gpu}), nil, 0.5)
		off.syncNodeLabels(ctx, nil)
		if n := len(parent.Actions()); n != 0 {
			t.Errorf("%d calls to the parent, want none: %v", n, parent.Actions())
		}
	})
}

func TestMergePatch(t *testing.T) {
	got, err := nodeLabelChanges{Set: map[string]string{gpu: "true"}, Remove: []string{avx}, Owned: gpu}.mergePatch("42")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"metadata":{"annotations":{"clusters.clusternet.io/aggregated-node-labels":"feature.node.kubernetes.io/gpu"},` +
		`"labels":{"feature.node.kubernetes.io/cpu-avx512":null,"feature.node.kubernetes.io/gpu":"true"},"resourceVersion":"42"}}`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("patch (-want +got):\n%s", diff)
	}
	got, _ = nodeLabelChanges{Remove: []string{gpu}}.mergePatch("43")
	if !strings.Contains(string(got), `"annotations":{"clusters.clusternet.io/aggregated-node-labels":null}`) {
		t.Errorf("owning nothing must remove the annotation: %s", got)
	}
}
