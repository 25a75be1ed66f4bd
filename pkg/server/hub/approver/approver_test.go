package approver

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
)

const id = "dc91021d-2361-4f6d-a404-7c33b9e01118"

func newCRR(name string) *clusterv1beta1.ClusterRegistrationRequest {
	return &clusterv1beta1.ClusterRegistrationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: clusterv1beta1.ClusterRegistrationRequestSpec{
			ClusterID: id, ClusterName: "edge-1", ClusterType: clusterv1beta1.EdgeCluster,
			SyncMode: clusterv1beta1.PullSyncMode, ClusterLabels: map[string]string{"env": "edge"},
		},
	}
}

type fixture struct {
	kube       *kubefake.Clientset
	clusternet *clusternetfake.Clientset
	c          *Controller
	// crrs is the informer's cache of requests.
	crrs cache.Indexer
}

// newFixture wires an approver to fake clientsets. The fakes do not honour
// generateName, so a reactor plays the API server's part.
func newFixture(t *testing.T, crr *clusterv1beta1.ClusterRegistrationRequest) *fixture {
	t.Helper()
	f := &fixture{kube: kubefake.NewClientset(), clusternet: clusternetfake.NewClientset(crr)}
	n := 0
	generateName := func(action clienttesting.Action) (bool, runtime.Object, error) {
		obj := action.(clienttesting.CreateAction).GetObject().(metav1.Object)
		if obj.GetName() == "" && obj.GetGenerateName() != "" {
			n++
			obj.SetName(fmt.Sprintf("%sx%04d", obj.GetGenerateName(), n))
		}
		return false, nil, nil
	}
	f.kube.PrependReactor("create", "*", generateName)
	f.clusternet.PrependReactor("create", "*", generateName)
	informers := externalversions.NewSharedInformerFactory(f.clusternet, 0)
	crrs := informers.Clusters().V1beta1().ClusterRegistrationRequests()
	c, err := New(f.kube, f.clusternet, crrs)
	if err != nil {
		t.Fatal(err)
	}
	f.crrs = crrs.Informer().GetIndexer()
	if err := f.crrs.Add(crr); err != nil {
		t.Fatal(err)
	}
	f.c = c
	return f
}

// fillToken does what kube-controller-manager's token controller does.
func (f *fixture) fillToken(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	s, err := f.kube.CoreV1().Secrets(ns).Get(ctx, agentTokenSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Data = map[string][]byte{corev1.ServiceAccountTokenKey: []byte("tok"), corev1.ServiceAccountRootCAKey: []byte("ca")}
	if _, err := f.kube.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestApproveCreatesScopedIdentity(t *testing.T) {
	ctx := context.Background()
	name := "clusternet-" + id
	f := newFixture(t, newCRR(name))

	// First sync: namespace, ManagedCluster, RBAC and a new ServiceAccount,
	// then a pause for kube-controller-manager's cache before the token Secret.
	requeue, err := f.c.sync(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if requeue == 0 {
		t.Fatal("approved before the ServiceAccount had a token")
	}
	if list, _ := f.kube.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); len(list.Items) != 0 {
		t.Fatalf("token Secret created with its brand-new ServiceAccount: %d secrets", len(list.Items))
	}
	// Second sync: the token Secret, not filled yet.
	if requeue, err = f.c.sync(ctx, name); err != nil || requeue == 0 {
		t.Fatalf("second sync: requeue %s, err %v; want a wait for the token controller", requeue, err)
	}
	nsList, _ := f.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if len(nsList.Items) != 1 {
		t.Fatalf("want 1 dedicated namespace, got %d", len(nsList.Items))
	}
	ns := nsList.Items[0].Name
	f.fillToken(t, ns)
	// Run twice more: the second run must find, not duplicate, everything.
	for range 2 {
		if _, err := f.c.sync(ctx, name); err != nil {
			t.Fatal(err)
		}
	}

	nsList, _ = f.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	mclsList, _ := f.clusternet.ClustersV1beta1().ManagedClusters(ns).List(ctx, metav1.ListOptions{})
	if len(nsList.Items) != 1 || len(mclsList.Items) != 1 {
		t.Fatalf("duplicates after re-runs: %d namespaces, %d ManagedClusters", len(nsList.Items), len(mclsList.Items))
	}
	mcls := mclsList.Items[0]
	if diff := cmp.Diff(map[string]string{
		clusterv1beta1.LabelClusterID: id, clusterv1beta1.LabelClusterName: "edge-1",
		clusterv1beta1.LabelCreatedBy: "clusternet-agent", "env": "edge",
	}, mcls.Labels); diff != "" {
		t.Errorf("ManagedCluster labels (-want +got):\n%s", diff)
	}
	if mcls.Name != "edge-1" || mcls.Spec.SyncMode != clusterv1beta1.PullSyncMode || mcls.Spec.ClusterType != clusterv1beta1.EdgeCluster {
		t.Errorf("ManagedCluster %s spec %+v", mcls.Name, mcls.Spec)
	}

	cr, err := f.kube.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantRules := []rbacv1.PolicyRule{
		{APIGroups: []string{"clusters.clusternet.io"}, Resources: []string{"clusterregistrationrequests"}, Verbs: []string{"create"}},
		{APIGroups: []string{"clusters.clusternet.io"}, Resources: []string{"clusterregistrationrequests"}, Verbs: []string{"get"}, ResourceNames: []string{name}},
		{APIGroups: []string{"proxies.clusternet.io"}, Resources: []string{"sockets"}, Verbs: []string{"*"}, ResourceNames: []string{id}},
	}
	if diff := cmp.Diff(wantRules, cr.Rules); diff != "" {
		t.Errorf("ClusterRole rules (-want +got):\n%s", diff)
	}
	role, err := f.kube.RbacV1().Roles(ns).Get(ctx, ManagedClusterRole, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}, role.Rules); diff != "" {
		t.Errorf("Role rules (-want +got):\n%s", diff)
	}
	for _, get := range []func() error{
		func() error {
			_, err := f.kube.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := f.kube.RbacV1().RoleBindings(ns).Get(ctx, ManagedClusterRole, metav1.GetOptions{})
			return err
		},
	} {
		if err := get(); err != nil {
			t.Error(err)
		}
	}

	got, err := f.clusternet.ClustersV1beta1().ClusterRegistrationRequests().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	approved := clusterv1beta1.RequestApproved
	want := clusterv1beta1.ClusterRegistrationRequestStatus{
		Result: &approved, Token: []byte("tok"), CACertificate: []byte("ca"), DedicatedNamespace: ns, ManagedClusterName: "edge-1",
	}
	if diff := cmp.Diff(want, got.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestDenyNameMismatch(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, newCRR("clusternet-someone-else"))
	if _, err := f.c.sync(ctx, "clusternet-someone-else"); err != nil {
		t.Fatal(err)
	}
	got, err := f.clusternet.ClustersV1beta1().ClusterRegistrationRequests().Get(ctx, "clusternet-someone-else", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Result == nil || *got.Status.Result != clusterv1beta1.RequestDenied {
		t.Fatalf("result = %v, want Denied", got.Status.Result)
	}
	want := `metadata.name "clusternet-someone-else" does not match spec.clusterId "` + id + `": a request must be named "clusternet-` + id + `"`
	if got.Status.ErrorMessage != want {
		t.Errorf("errorMessage = %q\nwant %q", got.Status.ErrorMessage, want)
	}
	if nsList, _ := f.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); len(nsList.Items) != 0 {
		t.Errorf("a denied request got %d namespaces", len(nsList.Items))
	}
}

// A deleted request's key comes through the loop too (Watch queues
// deletes): nothing is left to answer, and nothing is touched.
func TestDeletedRequest(t *testing.T) {
	ctx := context.Background()
	name := clusterv1beta1.NamePrefix + id
	f := newFixture(t, newCRR(name))
	if err := f.crrs.Delete(newCRR(name)); err != nil {
		t.Fatal(err)
	}
	requeue, err := f.c.sync(ctx, name)
	if requeue != 0 || err != nil {
		t.Errorf("sync of a deleted request: requeue %s, err %v; want 0, nil", requeue, err)
	}
	if actions := append(f.kube.Actions(), f.clusternet.Actions()...); len(actions) != 0 {
		t.Errorf("sync of a deleted request called the API server: %v", actions)
	}
}
