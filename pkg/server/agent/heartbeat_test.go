package agent

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// checkVersions makes the fake parent check resourceVersions as the apiserver
// does: an update, or a patch that names a resourceVersion, of an object
// that changed since conflicts, and every write gets a new version.
func checkVersions(t *testing.T, parent *clusternetfake.Clientset) {
	t.Helper()
	conflict := func(name string) error {
		return apierrors.NewConflict(clusterv1beta1.Resource("managedclusters"), name, errors.New("the object has been modified"))
	}
	store := func(a clienttesting.Action, ns, name string) (*clusterv1beta1.ManagedCluster, error) {
		obj, err := parent.Tracker().Get(a.GetResource(), ns, name)
		if err != nil {
			return nil, err
		}
		return obj.(*clusterv1beta1.ManagedCluster), nil
	}
	write := func(a clienttesting.Action, mc *clusterv1beta1.ManagedCluster, rv string) (bool, runtime.Object, error) {
		n, _ := strconv.Atoi(rv)
		mc.ResourceVersion = strconv.Itoa(n + 1)
		return true, mc, parent.Tracker().Update(a.GetResource(), mc, mc.Namespace)
	}
	parent.PrependReactor("update", "managedclusters", func(a clienttesting.Action) (bool, runtime.Object, error) {
		in := a.(clienttesting.UpdateAction).GetObject().(*clusterv1beta1.ManagedCluster).DeepCopy()
		have, err := store(a, in.Namespace, in.Name)
		if err != nil {
			return true, nil, err
		}
		if in.ResourceVersion != have.ResourceVersion {
			return true, nil, conflict(in.Name)
		}
		return write(a, in, have.ResourceVersion)
	})
	parent.PrependReactor("patch", "managedclusters", func(a clienttesting.Action) (bool, runtime.Object, error) {
		p := a.(clienttesting.PatchAction)
		have, err := store(a, p.GetNamespace(), p.GetName())
		if err != nil {
			return true, nil, err
		}
		var pre struct {
			Metadata struct {
				ResourceVersion string `json:"resourceVersion"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(p.GetPatch(), &pre); err != nil {
			return true, nil, err
		}
		if pre.Metadata.ResourceVersion != "" && pre.Metadata.ResourceVersion != have.ResourceVersion {
			return true, nil, conflict(p.GetName())
		}
		before, err := json.Marshal(have)
		if err != nil {
			return true, nil, err
		}
		after, err := jsonpatch.MergePatch(before, p.GetPatch())
		if err != nil {
			return true, nil, err
		}
		out := &clusterv1beta1.ManagedCluster{}
		if err := json.Unmarshal(after, out); err != nil {
			return true, nil, err
		}
		return write(a, out, have.ResourceVersion)
	})
}

// requests counts the parent requests since the last call, by verb.
func requests(parent *clusternetfake.Clientset) map[string]int {
	n := map[string]int{}
	for _, a := range parent.Actions() {
		n[a.GetVerb()]++
	}
	parent.ClearActions()
	return n
}

// versionedLabelAgent is an agent copying node labels (feature.node.kubernetes.io/)
// to its ManagedCluster in a parent that checks resourceVersions.
func versionedLabelAgent(t *testing.T) (*Agent, *clusternetfake.Clientset, *clusterv1beta1.ManagedCluster) {
	t.Helper()
	mc := managedCluster(map[string]string{clusterv1beta1.LabelClusterID: "id"}, nil)
	mc.ResourceVersion = "10"
	a, parent := nodeLabelAgent(t, mc, []string{nfd}, 0.5)
	checkVersions(t, parent)
	return a, parent, mc
}

// labelByAnother is an admin labelling the ManagedCluster (team=edge-ops),
// between the agent's writes; the requests it makes are not counted.
func labelByAnother(t *testing.T, parent *clusternetfake.Clientset, mc *clusterv1beta1.ManagedCluster) {
	t.Helper()
	ctx := context.Background()
	mcs := parent.ClustersV1beta1().ManagedClusters(mc.Namespace)
	cur, err := mcs.Get(ctx, mc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Labels["team"] = "edge-ops"
	if _, err := mcs.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	requests(parent)
}

// A heartbeat with node labels to copy (on by default) costs the parent its
// status write and nothing more when no label changed: the label sync starts
// from the object the write returned, and the next write from the patch's.
// Before, each beat read the ManagedCluster twice.
func TestHeartbeatWithNodeLabelsCostsOneWrite(t *testing.T) {
	ctx := context.Background()
	a, parent, mc := versionedLabelAgent(t)
	beat := func(nodes []corev1.Node) {
		t.Helper()
		if err := a.writeStatus(ctx, clusterv1beta1.ManagedClusterStatus{Readyz: true}); err != nil {
			t.Fatal(err)
		}
		a.syncNodeLabels(ctx, nodes) // as heartbeat does, after the write
	}
	withGPU := []corev1.Node{labeledNode(gpu, "true")}

	beat(withGPU)
	if got := requests(parent); got["get"] != 1 || got["update"] != 1 || got["patch"] != 1 {
		t.Errorf("first beat, a label to copy: %v; want the one read, the status write and the label patch", got)
	}
	beat(withGPU)
	if got := requests(parent); got["get"] != 0 || got["update"] != 1 || got["patch"] != 0 {
		t.Errorf("second beat, nothing changed: %v; want only the status write", got)
	}
	// Someone else changes the ManagedCluster (an admin's label): the next
	// beat's write conflicts, reads and writes again; nothing is lost.
	other := parent.ClustersV1beta1().ManagedClusters(mc.Namespace)
	labelByAnother(t, parent, mc)
	beat(withGPU)
	if got := requests(parent); got["get"] != 1 || got["update"] != 2 || got["patch"] != 0 {
		t.Errorf("beat after another writer: %v; want a conflicting write, a read and the write again", got)
	}
	got, err := other.Get(ctx, mc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["team"] != "edge-ops" || got.Labels[gpu] != "true" || !got.Status.Readyz {
		t.Errorf("labels %v, readyz %t: want the admin's team label, the copied GPU label and the beat's status", got.Labels, got.Status.Readyz)
	}
}

// Someone else writes between the beat's status write and its label patch:
// the patch, made from the write's copy with its resourceVersion, conflicts,
// reads again and patches; the other writer's change and the label both
// stay, and the next beat starts from that read.
func TestLabelPatchAfterAnotherWriter(t *testing.T) {
	ctx := context.Background()
	a, parent, mc := versionedLabelAgent(t)
	if err := a.writeStatus(ctx, clusterv1beta1.ManagedClusterStatus{Readyz: true}); err != nil {
		t.Fatal(err)
	}
	other := parent.ClustersV1beta1().ManagedClusters(mc.Namespace)
	labelByAnother(t, parent, mc)
	a.syncNodeLabels(ctx, []corev1.Node{labeledNode(gpu, "true")})
	if got := requests(parent); got["patch"] != 2 || got["get"] != 1 {
		t.Errorf("label sync after another writer: %v; want a conflicting patch, a read and the patch again", got)
	}
	got, err := other.Get(ctx, mc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["team"] != "edge-ops" || got.Labels[gpu] != "true" {
		t.Errorf("labels %v: want the other writer's team label and the copied GPU label", got.Labels)
	}
	requests(parent)
	if err := a.writeStatus(ctx, clusterv1beta1.ManagedClusterStatus{Readyz: true}); err != nil {
		t.Fatal(err)
	}
	if got := requests(parent); got["get"] != 0 || got["update"] != 1 {
		t.Errorf("the beat after: %v; want only its status write", got)
	}
}
