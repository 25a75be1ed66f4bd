package mcs

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/mcs"
)

var web = mcs.ServiceKey{Namespace: "default", Name: "web"}

func registration(id, ns string) *clusterv1beta1.ClusterRegistrationRequest {
	return &clusterv1beta1.ClusterRegistrationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: clusterv1beta1.NamePrefix + id},
		Spec:       clusterv1beta1.ClusterRegistrationRequestSpec{ClusterID: types.UID(id)},
		Status: clusterv1beta1.ClusterRegistrationRequestStatus{Result: ptr.To(clusterv1beta1.RequestApproved),
			DedicatedNamespace: ns},
	}
}

// distributed is a Description in ns, from a Subscription of namespace
// subNamespace, carrying a kind (ServiceImport, ServiceExport) of web.
func distributed(ns, subNamespace, kind string) *appsv1alpha1.Description {
	raw, _ := json.Marshal(map[string]any{"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": kind,
		"metadata": map[string]any{"namespace": "default", "name": "web"}})
	return &appsv1alpha1.Description{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sub-web-" + strings.ToLower(kind),
		Labels: map[string]string{appsv1alpha1.LabelSubscriptionNamespace: subNamespace}},
		Spec: appsv1alpha1.DescriptionSpec{Raw: []runtime.RawExtension{{Raw: raw}}}}
}

// importing is a Description in ns carrying a ServiceImport of web, as a
// Subscription of web's namespace distributes it.
func importing(ns string) *appsv1alpha1.Description {
	return distributed(ns, "default", "ServiceImport")
}

// serving is a Description in ns carrying a ServiceExport of web: the
// parent says that cluster serves web.
func serving(ns string) *appsv1alpha1.Description { return distributed(ns, "default", "ServiceExport") }

// exportedBy is an exported slice of web in ns, as an agent writes it,
// with extra labels the agent chose.
func exportedBy(ns, name string, created time.Time, typ mcsv1alpha1.ServiceImportType, extra map[string]string, ips ...string) *discoveryv1.EndpointSlice {
	child := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, AddressType: discoveryv1.AddressTypeIPv4}
	for _, ip := range ips {
		child.Endpoints = append(child.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}})
	}
	s := mcs.ExportedSlice(child, web, mcs.ExportedProperties{Type: typ}, ns)
	s.CreationTimestamp = metav1.NewTime(created)
	for k, v := range extra {
		s.Labels[k] = v
	}
	return s
}

// run builds the controller over objects, syncs web once, and returns
// the parent's client.
func run(t *testing.T, kubeObjects []runtime.Object, clusternetObjects ...runtime.Object) *fake.Clientset {
	t.Helper()
	kube, c := start(t, kubeObjects, clusternetObjects...)
	if _, err := c.syncService(context.Background(), web.String()); err != nil {
		t.Fatal(err)
	}
	return kube
}

// start builds the controller over objects with its caches synced.
func start(t *testing.T, kubeObjects []runtime.Object, clusternetObjects ...runtime.Object) (*fake.Clientset, *Controller) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	kube := fake.NewClientset(kubeObjects...)
	informers := externalversions.NewSharedInformerFactory(clusternetfake.NewClientset(clusternetObjects...), 0)
	c, own, err := New(kube, informers)
	if err != nil {
		t.Fatal(err)
	}
	informers.Start(ctx.Done())
	own.Start(ctx.Done())
	informers.WaitForCacheSync(ctx.Done())
	own.Slices.WaitForCacheSync(ctx.Done())
	own.ConfigMaps.WaitForCacheSync(ctx.Done())
	return kube, c
}

func importedIn(t *testing.T, kube *fake.Clientset, ns string) map[string][]string {
	t.Helper()
	list, err := kube.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{LabelSelector: discoveryv1.LabelManagedBy + "=" + mcs.ManagedByImport})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{} // source cluster -> addresses
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			got[s.Labels[mcsv1alpha1.LabelSourceCluster]] = append(got[s.Labels[mcsv1alpha1.LabelSourceCluster]], e.Addresses...)
		}
	}
	for _, v := range got {
		sort.Strings(v)
	}
	return got
}

func TestExportsAreAttributedByRegistration(t *testing.T) {
	now := time.Now()
	kube := run(t, []runtime.Object{
		// Cluster a exports web; its agent claims to be cluster b.
		exportedBy("ns-a", "default.web-1", now, mcsv1alpha1.ClusterSetIP, map[string]string{mcsv1alpha1.LabelSourceCluster: "b"}, "10.1.0.1", "10.1.0.2"),
		// A namespace no cluster was admitted into exports nothing.
		exportedBy("rogue", "default.web-1", now, mcsv1alpha1.ClusterSetIP, nil, "10.9.9.9"),
	}, registration("a", "ns-a"), registration("b", "ns-b"), importing("ns-b"), serving("ns-a"), serving("rogue"))

	if diff := cmp.Diff(map[string][]string{"a": {"10.1.0.1", "10.1.0.2"}}, importedIn(t, kube, "ns-b")); diff != "" {
		t.Errorf("cluster b's imported endpoints by source cluster (-want +got):\n%s", diff)
	}
	if got := importedIn(t, kube, "ns-a"); len(got) != 0 {
		t.Errorf("cluster a imports nothing (no ServiceImport was sent to it), got %v", got)
	}
	if got := importedIn(t, kube, "rogue"); len(got) != 0 {
		t.Errorf("the unregistered namespace got %v", got)
	}
}

func TestConflictsAreReportedToEveryExporter(t *testing.T) {
	now := time.Now()
	kube := run(t, []runtime.Object{
		exportedBy("ns-a", "default.web-1", now, mcsv1alpha1.ClusterSetIP, nil, "10.1.0.1"),
		exportedBy("ns-b", "default.web-1", now.Add(time.Minute), mcsv1alpha1.Headless, nil, "10.2.0.1"),
		// A report for a cluster that no longer exports web is withdrawn.
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns-c", Name: mcs.ConflictsConfigMap},
			Data: map[string]string{web.ExportKey(): `{"conflict":true}`, "other.svc": "{}"}},
	}, registration("a", "ns-a"), registration("b", "ns-b"), registration("c", "ns-c"), importing("ns-c"), serving("ns-a"), serving("ns-b"))

	for _, ns := range []string{"ns-a", "ns-b"} {
		cm, err := kube.CoreV1().ConfigMaps(ns).Get(context.Background(), mcs.ConflictsConfigMap, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
		var got mcs.Conflict
		if err := json.Unmarshal([]byte(cm.Data[web.ExportKey()]), &got); err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
		if !got.Conflict || got.Reason != mcsv1alpha1.ServiceExportReasonTypeConflict || got.Since == nil {
			t.Errorf("%s: %+v, want a TypeConflict with the export's first-seen time", ns, got)
		}
	}
	cm, err := kube.CoreV1().ConfigMaps("ns-c").Get(context.Background(), mcs.ConflictsConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"other.svc": "{}"}, cm.Data); diff != "" {
		t.Errorf("ns-c's report (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]string{"a": {"10.1.0.1"}, "b": {"10.2.0.1"}}, importedIn(t, kube, "ns-c")); diff != "" {
		t.Errorf("a conflict keeps every cluster's endpoints (-want +got):\n%s", diff)
	}
}

func TestUnexportedServiceLeavesNoImports(t *testing.T) {
	stale := mcs.ImportedSlice(exportedBy("ns-a", "default.web-1", time.Now(), mcsv1alpha1.ClusterSetIP, nil, "10.1.0.1"), web, "a", "ns-b")
	kube := run(t, []runtime.Object{stale}, registration("a", "ns-a"), registration("b", "ns-b"), importing("ns-b"))
	if got := importedIn(t, kube, "ns-b"); len(got) != 0 {
		t.Errorf("imported slices left after the export went: %v", got)
	}
}

func TestAgentBindings(t *testing.T) {
	ctx := context.Background()
	kube := run(t, nil, registration("a", "ns-a"))
	c := &Controller{kube: kube}
	if _, err := c.syncBinding(ctx, "ns-a"); err != nil {
		t.Fatal(err)
	}
	rb, err := kube.RbacV1().RoleBindings("ns-a").Get(ctx, AgentBinding, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rb.RoleRef.Kind != "ClusterRole" || rb.RoleRef.Name != AgentClusterRole ||
		len(rb.Subjects) != 1 || rb.Subjects[0].Name != "clusternet-agent" || rb.Subjects[0].Namespace != "ns-a" {
		t.Errorf("binding %+v %+v", rb.RoleRef, rb.Subjects)
	}
	if err := RevokeAll(ctx, kube); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, time.Second, true, func(ctx context.Context) (bool, error) {
		l, err := kube.RbacV1().RoleBindings("").List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 0, nil
	}); err != nil {
		t.Errorf("RevokeAll left bindings: %v", err)
	}
}

func TestExportsNeedTheParentsSayso(t *testing.T) {
	now := time.Now()
	kube := run(t, []runtime.Object{
		exportedBy("ns-a", "default.web-1", now, mcsv1alpha1.ClusterSetIP, nil, "10.1.0.1"),
		// b was sent no ServiceExport (nor Service) of web: its slices are
		// no export, and inject nothing into web's importers.
		exportedBy("ns-b", "default.web-1", now.Add(-time.Hour), mcsv1alpha1.ClusterSetIP, nil, "10.66.66.66"),
		// c was sent one, but by a Subscription of another namespace.
		exportedBy("ns-c", "default.web-1", now, mcsv1alpha1.ClusterSetIP, nil, "10.77.77.77"),
	}, registration("a", "ns-a"), registration("b", "ns-b"), registration("c", "ns-c"), registration("d", "ns-d"),
		serving("ns-a"), distributed("ns-c", "other", "ServiceExport"), importing("ns-d"))
	if diff := cmp.Diff(map[string][]string{"a": {"10.1.0.1"}}, importedIn(t, kube, "ns-d")); diff != "" {
		t.Errorf("cluster d's imported endpoints (-want +got):\n%s", diff)
	}
	if _, err := kube.CoreV1().ConfigMaps("ns-b").Get(context.Background(), mcs.ConflictsConfigMap, metav1.GetOptions{}); err == nil {
		t.Error("cluster b's unauthorised export got a conflict report")
	}
}

func TestImportsFollowTheSubscriptionsNamespace(t *testing.T) {
	// A namespace viewer may subscribe to the ServiceImport template of
	// web's namespace from a Subscription in their own namespace.
	kube := run(t, []runtime.Object{
		exportedBy("ns-a", "default.web-1", time.Now(), mcsv1alpha1.ClusterSetIP, nil, "10.1.0.1"),
	}, registration("a", "ns-a"), registration("b", "ns-b"), registration("c", "ns-c"),
		serving("ns-a"), distributed("ns-b", "viewer-ns", "ServiceImport"), importing("ns-c"))
	if got := importedIn(t, kube, "ns-b"); len(got) != 0 {
		t.Errorf("a Subscription of another namespace imported %v", got)
	}
	if got := importedIn(t, kube, "ns-c"); len(got["a"]) != 1 {
		t.Errorf("web's own namespace's Subscription imported %v", got)
	}
}

func TestWhatAnExportMakesTheHubCopyIsBounded(t *testing.T) {
	objs := []runtime.Object{}
	for i := range MaxSlicesPerExport + 1 {
		s := exportedBy("ns-a", fmt.Sprintf("default.web-%03d", i), time.Now(), mcsv1alpha1.ClusterSetIP, nil)
		for j := range 150 {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.%d.%d.1", i, j), "10.255.255.255"}})
		}
		objs = append(objs, s)
	}
	kube := run(t, objs, registration("a", "ns-a"), registration("b", "ns-b"), serving("ns-a"), importing("ns-b"))
	list, err := kube.DiscoveryV1().EndpointSlices("ns-b").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	endpoints := 0
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			endpoints++
			if len(e.Addresses) != 1 {
				t.Fatalf("endpoint with addresses %v, want the first only", e.Addresses)
			}
		}
	}
	if len(list.Items) > MaxSlicesPerExport || endpoints != MaxEndpointsPerExport {
		t.Errorf("%d slices with %d endpoints imported, want at most %d slices and %d endpoints", len(list.Items), endpoints, MaxSlicesPerExport, MaxEndpointsPerExport)
	}
	cm, err := kube.CoreV1().ConfigMaps("ns-a").Get(context.Background(), mcs.ConflictsConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if msg := cm.Data[web.ExportKey()]; !strings.Contains(msg, "slices beyond the first 100") || !strings.Contains(msg, "endpoints beyond") {
		t.Errorf("cluster a's report %s does not say what was left out", msg)
	}
}

func TestOnlyDedicatedNamespacesAreTheHubs(t *testing.T) {
	tenantCM := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: mcs.ConflictsConfigMap},
		Data: map[string]string{web.ExportKey(): "mine"}}
	tenantSlice := mcs.ImportedSlice(exportedBy("ns-a", "default.web-1", time.Now(), mcsv1alpha1.ClusterSetIP, nil, "10.1.0.1"), web, "a", "tenant")
	kube, c := start(t, []runtime.Object{tenantCM, tenantSlice}, registration("a", "ns-a"))
	if keys := append(c.sliceService(tenantSlice), c.reportedServices(tenantCM)...); len(keys) != 0 {
		t.Errorf("a tenant's objects queued %v", keys)
	}
	if _, err := c.syncService(context.Background(), web.String()); err != nil {
		t.Fatal(err)
	}
	cm, err := kube.CoreV1().ConfigMaps("tenant").Get(context.Background(), mcs.ConflictsConfigMap, metav1.GetOptions{})
	if err != nil || cm.Data[web.ExportKey()] != "mine" {
		t.Errorf("the tenant's ConfigMap: %v %v", cm, err)
	}
	if _, err := kube.DiscoveryV1().EndpointSlices("tenant").Get(context.Background(), tenantSlice.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the tenant's slice: %v", err)
	}
}

func TestAnExportKeepsItsAgeWhenItsOldestSliceIsReplaced(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	// a exported first; kube-controller-manager since replaced its slice,
	// so its slice is younger than b's. The hub recorded when it first saw a's.
	recorded, _ := json.Marshal(mcs.Conflict{Since: &metav1.Time{Time: now.Add(-time.Hour)}})
	kube := run(t, []runtime.Object{
		exportedBy("ns-a", "default.web-2", now, mcsv1alpha1.ClusterSetIP, nil, "10.1.0.1"),
		exportedBy("ns-b", "default.web-1", now.Add(-time.Minute), mcsv1alpha1.Headless, nil, "10.2.0.1"),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns-a", Name: mcs.ConflictsConfigMap},
			Data: map[string]string{web.ExportKey(): string(recorded)}},
	}, registration("a", "ns-a"), registration("b", "ns-b"), serving("ns-a"), serving("ns-b"))
	cm, err := kube.CoreV1().ConfigMaps("ns-b").Get(context.Background(), mcs.ConflictsConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if msg := cm.Data[web.ExportKey()]; !strings.Contains(msg, "cluster a holds the oldest export") {
		t.Errorf("b's report %s, want a to keep precedence", msg)
	}
}

func TestOnlyApprovalAndNamespaceChangesRequeue(t *testing.T) {
	old := registration("a", "ns-a")
	relabelled := old.DeepCopy()
	relabelled.Labels = map[string]string{"x": "y"}
	moved := old.DeepCopy()
	moved.Status.DedicatedNamespace = "ns-z"
	denied := old.DeepCopy()
	denied.Status.Result = ptr.To(clusterv1beta1.RequestDenied)
	if !sameRegistration(old, relabelled) || sameRegistration(old, moved) || sameRegistration(old, denied) {
		t.Error("sameRegistration: want true only for the relabelled request")
	}
}

func TestGateOffCleansUpDedicatedNamespacesOnly(t *testing.T) {
	ctx := context.Background()
	exported := exportedBy("ns-a", "default.web-1", time.Now(), mcsv1alpha1.ClusterSetIP, nil, "10.1.0.1")
	imported := mcs.ImportedSlice(exported, web, "b", "ns-a")
	tenant := mcs.ImportedSlice(exported, web, "b", "tenant")
	cm := func(ns string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: mcs.ConflictsConfigMap}}
	}
	kube := fake.NewClientset(exported, imported, tenant, cm("ns-a"), cm("tenant"))
	if err := CleanUp(ctx, kube, clusternetfake.NewClientset(registration("a", "ns-a"))); err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[string]int{"ns-a": 0, "tenant": 1} {
		l, err := kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != want {
			t.Errorf("%s: %d slices left (%v), want %d", ns, len(l.Items), err, want)
		}
		cms, err := kube.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(cms.Items) != want {
			t.Errorf("%s: %d conflict ConfigMaps left (%v), want %d", ns, len(cms.Items), err, want)
		}
	}
}
