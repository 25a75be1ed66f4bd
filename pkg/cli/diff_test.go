package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/deployer"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// fakeDiffChild is a child cluster: live objects by key; a dry run returns
// the applied object with what the API server adds.
type fakeDiffChild struct {
	live    map[string]*unstructured.Unstructured
	dryRuns []string
}

func (c *fakeDiffChild) Namespaced(gvk schema.GroupVersionKind) (bool, error) {
	return gvk.Kind != "Namespace", nil
}

func (c *fakeDiffChild) Get(_ context.Context, r deployer.Ref) (*unstructured.Unstructured, error) {
	return c.live[r.Key()], nil
}

func (c *fakeDiffChild) DryRun(_ context.Context, o deployer.Object) (*unstructured.Unstructured, error) {
	c.dryRuns = append(c.dryRuns, o.Ref().String())
	return withServerNoise(o.Obj, "999"), nil
}

// withServerNoise is u as a child's API server returns it.
func withServerNoise(u *unstructured.Unstructured, rv string) *unstructured.Unstructured {
	u = u.DeepCopy()
	u.SetResourceVersion(rv)
	u.SetUID(types.UID("uid-" + rv))
	u.SetGeneration(7)
	u.SetCreationTimestamp(metaTime())
	u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: deployer.FieldManager, Operation: metav1.ManagedFieldsOperationApply}})
	u.Object["status"] = map[string]interface{}{"observedGeneration": int64(7)}
	return u
}

func manifestOf(t *testing.T, obj *unstructured.Unstructured) *appsv1alpha1.Manifest {
	t.Helper()
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		t.Fatal(err)
	}
	gvk := obj.GroupVersionKind()
	return &appsv1alpha1.Manifest{
		ObjectMeta: metav1.ObjectMeta{Namespace: appsv1alpha1.ReservedNamespace,
			Name: appsv1alpha1.ManifestName(gvk.Group, gvk.Kind, obj.GetNamespace(), obj.GetName())},
		Template: runtime.RawExtension{Raw: raw},
	}
}

// nginxImage is the template my-nginx in foo with image.
func nginxImage(image string) *unstructured.Unstructured {
	u := obj("apps/v1", "Deployment", "foo", "my-nginx")
	u.SetLabels(map[string]string{"clusternet-app": "multi-cluster-nginx"})
	_ = unstructured.SetNestedField(u.Object, int64(3), "spec", "replicas")
	_ = unstructured.SetNestedSlice(u.Object, []interface{}{map[string]interface{}{"name": "nginx", "image": image}},
		"spec", "template", "spec", "containers")
	return u
}

// replicas5 is child1's Localization: 5 replicas of my-nginx.
var replicas5 = &appsv1alpha1.Localization{
	ObjectMeta: metav1.ObjectMeta{Name: "nginx-local", Namespace: nsChild1, UID: "loc-uid", Generation: 1},
	Spec: appsv1alpha1.LocalizationSpec{OverrideSpec: appsv1alpha1.OverrideSpec{
		OverridePolicy: appsv1alpha1.ApplyNow,
		Feed:           feedDeployment,
		Overrides:      []appsv1alpha1.OverrideConfig{{Name: "replicas", Type: appsv1alpha1.MergePatchType, Value: `{"spec":{"replicas":5}}`}},
	}},
}

// diffParent is the parent of app-demo over child1 and child2 with the
// templates in Manifests; extra objects are added.
func diffParent(t *testing.T, extra ...runtime.Object) versioned.Interface {
	objs := []runtime.Object{
		testSubscription(), testBase(nsChild1, id1), testBase(nsChild2, id2),
		&clusterv1beta1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: "child1", Namespace: nsChild1},
			Spec: clusterv1beta1.ManagedClusterSpec{ClusterID: id1}},
		&clusterv1beta1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: "child2", Namespace: nsChild2},
			Spec: clusterv1beta1.ManagedClusterSpec{ClusterID: id2}},
		manifestOf(t, obj("v1", "Namespace", "", "foo")),
		manifestOf(t, nginxImage("nginx:1.25")),
	}
	return fake.NewSimpleClientset(append(objs, extra...)...)
}

// liveChildren are both children as the parent without the file renders
// them (as the deployer left them), with the API server's noise.
func liveChildren(t *testing.T, cs versioned.Interface) map[string]*fakeDiffChild {
	t.Helper()
	ctx := context.Background()
	sub, _ := cs.AppsV1alpha1().Subscriptions("default").Get(ctx, "app-demo", metav1.GetOptions{})
	data, err := subscriptionReader{client: cs, namespace: "default", name: "app-demo"}.readOwned(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	children := map[string]*fakeDiffChild{}
	for _, c := range evaluate(data).Clusters {
		overlay, _ := newFileOverlay(nil, parentReader{ctx: ctx, client: cs})
		desc, _, err := genericDescription(ctx, cs, sub, c, overlay)
		if err != nil {
			t.Fatal(err)
		}
		child := &fakeDiffChild{live: map[string]*unstructured.Unstructured{}}
		objs, err := deployer.Objects(desc, child.Namespaced)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			child.live[o.Ref().Key()] = withServerNoise(o.Marked(nil).Obj, "41")
		}
		children[c.ID] = child
	}
	return children
}

func runClusterDiff(t *testing.T, cs versioned.Interface, children map[string]*fakeDiffChild, clusters string, file ...*unstructured.Unstructured) (string, bool, error) {
	t.Helper()
	var out bytes.Buffer
	o := &clusterDiff{clusters: clusters, client: cs, IOStreams: genericiooptions.IOStreams{Out: &out, ErrOut: &out}}
	o.childOf = func(id string) (childDiffer, error) { return children[id], nil }
	ctx := context.Background()
	if err := o.pickClusters(ctx, func(ctx context.Context) ([]clusterv1beta1.ManagedCluster, error) {
		list, err := cs.ClustersV1beta1().ManagedClusters("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return list.Items, nil
	}); err != nil {
		return out.String(), false, err
	}
	changed, err := o.run(ctx, file)
	return out.String(), changed, err
}

// diffHeader is the start of my-nginx's diff in a cluster, down to spec.
func diffHeader(name, id, ns string) string {
	return "=== cluster " + name + " (" + id + ")\n" + `--- live/Deployment foo/my-nginx
+++ dry-run/Deployment foo/my-nginx
@@ -1,20 +1,20 @@
 apiVersion: apps/v1
 kind: Deployment
 metadata:
   annotations:
     apps.clusternet.io/created-by: ` + ns + `/app-demo-generic
   labels:
     apps.clusternet.io/description.name: app-demo-generic
     apps.clusternet.io/description.namespace: ` + ns + `
     apps.clusternet.io/subs.name: app-demo
     apps.clusternet.io/subs.namespace: default
     clusternet-app: multi-cluster-nginx
   name: my-nginx
   namespace: foo
 spec:
`
}

// diffTail is the rest of my-nginx's diff: the file's new image.
const diffTail = `   template:
     spec:
       containers:
-      - image: nginx:1.25
+      - image: nginx:1.27
         name: nginx
`

// The file's template reaches both clusters; the Localization made since
// the children were last written changes child1 only.
func TestClusterDiffShowsEachClustersChange(t *testing.T) {
	children := liveChildren(t, diffParent(t))
	cs := diffParent(t, replicas5)
	out, changed, err := runClusterDiff(t, cs, children, "all", nginxImage("nginx:1.27"))
	if err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Error("changed = false, want true")
	}
	want := diffHeader("child1", id1, nsChild1) + "-  replicas: 3\n+  replicas: 5\n" + diffTail +
		diffHeader("child2", id2, nsChild2) + "   replicas: 3\n" + diffTail
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	for _, noise := range []string{"resourceVersion", "managedFields", "uid:", "generation", "creationTimestamp", "status:", "observedGeneration", deployer.AnnotationAppliedHash} {
		if strings.Contains(out, noise) {
			t.Errorf("output shows %s:\n%s", noise, out)
		}
	}
	if strings.Contains(out, "Namespace") {
		t.Errorf("the unchanged Namespace is shown:\n%s", out)
	}
}

func TestClusterDiffNoChanges(t *testing.T) {
	cs := diffParent(t)
	children := liveChildren(t, cs)
	out, changed, err := runClusterDiff(t, cs, children, "child1", nginxImage("nginx:1.25"))
	if err != nil {
		t.Fatal(err)
	}
	want := "=== cluster child1 (" + id1 + ")\nno changes\n"
	if changed || out != want {
		t.Errorf("changed %v, output:\n%s\nwant:\n%s", changed, out, want)
	}
	if got := children[id2].dryRuns; len(got) != 0 {
		t.Errorf("child2, not picked by --clusters, got dry runs %v", got)
	}
}

func TestClusterDiffUnknownCluster(t *testing.T) {
	cs := diffParent(t)
	_, _, err := runClusterDiff(t, cs, liveChildren(t, cs), "child1,child9")
	if err == nil {
		t.Fatal("no error for an unknown cluster")
	}
	for _, want := range []string{`--clusters "child1,child9"`, `cluster "child9" not found`, "child2 (namespace " + nsChild2, `give "all"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// A Subscription of the parent that feeds nothing in the file is not diffed.
func TestClusterDiffOnlyConcernedSubscriptions(t *testing.T) {
	cs := diffParent(t)
	out, changed, err := runClusterDiff(t, cs, liveChildren(t, cs), "all", obj("v1", "ConfigMap", "bar", "other"))
	if err != nil || changed || out != "" {
		t.Errorf("changed %v, err %v, output %q; want nothing", changed, err, out)
	}
}

func TestFileOverlay(t *testing.T) {
	parent := fakeReader{
		manifests: map[string]*appsv1alpha1.Manifest{},
		charts:    map[string]*appsv1alpha1.HelmChart{"foo/redis": {ObjectMeta: metav1.ObjectMeta{Name: "redis", Namespace: "foo"}}},
	}
	ns := manifestOf(t, obj("v1", "Namespace", "", "foo"))
	parent.manifests[ns.Name] = ns
	oldNginx := manifestOf(t, nginxImage("nginx:1.25"))
	parent.manifests[oldNginx.Name] = oldNginx

	chart := obj(appsv1alpha1.SchemeGroupVersion.String(), "HelmChart", "foo", "mysql")
	sub := obj(appsv1alpha1.SchemeGroupVersion.String(), "Subscription", "foo", "app")
	o, err := newFileOverlay([]*unstructured.Unstructured{nginxImage("nginx:1.27"), chart, sub}, parent)
	if err != nil {
		t.Fatal(err)
	}
	m, err := o.Manifest(oldNginx.Name)
	if err != nil || !strings.Contains(string(m.Template.Raw), "nginx:1.27") {
		t.Errorf("Manifest of my-nginx = %v, %v; want the file's (nginx:1.27)", m, err)
	}
	if m, err := o.Manifest(ns.Name); err != nil || m != ns {
		t.Errorf("Manifest of Namespace foo = %v, %v; want the parent's", m, err)
	}
	if ch, err := o.HelmChart("foo", "mysql"); err != nil || ch.Name != "mysql" {
		t.Errorf("HelmChart foo/mysql = %v, %v; want the file's", ch, err)
	}
	if ch, err := o.HelmChart("foo", "redis"); err != nil || ch.Name != "redis" {
		t.Errorf("HelmChart foo/redis = %v, %v; want the parent's", ch, err)
	}
	subManifest := appsv1alpha1.ManifestName(appsv1alpha1.GroupName, "Subscription", "foo", "app")
	if _, err := o.Manifest(subManifest); !apierrors.IsNotFound(err) {
		t.Errorf("the file's Subscription was laid over as a template: %v", err)
	}
}

type fakeReader struct {
	manifests map[string]*appsv1alpha1.Manifest
	charts    map[string]*appsv1alpha1.HelmChart
}

func (r fakeReader) Manifest(name string) (*appsv1alpha1.Manifest, error) {
	if m, ok := r.manifests[name]; ok {
		return m, nil
	}
	return nil, apierrors.NewNotFound(appsv1alpha1.Resource("manifests"), name)
}

func (r fakeReader) HelmChart(namespace, name string) (*appsv1alpha1.HelmChart, error) {
	if ch, ok := r.charts[namespace+"/"+name]; ok {
		return ch, nil
	}
	return nil, apierrors.NewNotFound(appsv1alpha1.Resource("helmcharts"), name)
}

func TestStripChildNoise(t *testing.T) {
	u := withServerNoise(nginxImage("nginx:1.25"), "5")
	u.SetAnnotations(map[string]string{deployer.AnnotationAppliedHash: "abc"})
	got := stripChildNoise(u)
	if diff := cmp.Diff(nginxImage("nginx:1.25").Object, got.Object); diff != "" {
		t.Errorf("stripped (-want +got):\n%s", diff)
	}
	if u.GetResourceVersion() != "5" {
		t.Error("stripChildNoise changed its argument")
	}
	if stripChildNoise(nil) != nil {
		t.Error("nil is not nil")
	}
}

func TestWriteUnifiedDiff(t *testing.T) {
	var out bytes.Buffer
	changed, err := writeUnifiedDiff(&out, "a", "b", []string{"x", "y", "z"}, []string{"x", "Y", "z", "w"})
	want := "--- a\n+++ b\n@@ -1,3 +1,4 @@\n x\n-y\n+Y\n z\n+w\n"
	if err != nil || !changed || out.String() != want {
		t.Errorf("changed %v, err %v, got:\n%s\nwant:\n%s", changed, err, out.String(), want)
	}
	out.Reset()
	changed, err = writeUnifiedDiff(&out, "a", "b", nil, []string{"x"})
	if want := "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+x\n"; err != nil || !changed || out.String() != want {
		t.Errorf("a new object: changed %v, err %v, got:\n%s", changed, err, out.String())
	}
	out.Reset()
	if changed, _ := writeUnifiedDiff(&out, "a", "b", []string{"x"}, []string{"x"}); changed || out.Len() != 0 {
		t.Errorf("equal lines: changed %v, output %q", changed, out.String())
	}
}

func TestDiffCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{&ExitError{Code: 1}, 1},
		{&ExitError{Code: 2, Message: "error: x"}, 2},
		{errors.New("boom"), 2},
	} {
		if got, _ := diffCode(tc.err); got != tc.want {
			t.Errorf("diffCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// A HelmChart feed is not diffed, so one its repository has not answered
// for yet (status.phase empty) does not stop the templates beside it.
func TestGenericDescriptionSkipsChartFeeds(t *testing.T) {
	cs := diffParent(t)
	chartFeed := appsv1alpha1.Feed{APIVersion: appsv1alpha1.SchemeGroupVersion.String(), Kind: "HelmChart", Namespace: "default", Name: "mysql"}
	base := testBase(nsChild1, id1, func(b *appsv1alpha1.Base) { b.Spec.Feeds = append(b.Spec.Feeds, chartFeed) })
	reader := fakeReader{
		manifests: map[string]*appsv1alpha1.Manifest{},
		charts:    map[string]*appsv1alpha1.HelmChart{"default/mysql": {ObjectMeta: metav1.ObjectMeta{Name: "mysql", Namespace: "default"}}},
	}
	for _, tmpl := range []*unstructured.Unstructured{obj("v1", "Namespace", "", "foo"), nginxImage("nginx:1.25")} {
		m := manifestOf(t, tmpl)
		reader.manifests[m.Name] = m
	}
	c := clusterProgress{Name: "child1", Namespace: nsChild1, ID: id1, Base: base}
	desc, hasCharts, err := genericDescription(context.Background(), cs, testSubscription(), c, reader)
	if err != nil {
		t.Fatalf("genericDescription: %v", err)
	}
	if !hasCharts || desc == nil {
		t.Fatalf("hasCharts %v, Description %v; want true and the templates' Description", hasCharts, desc)
	}
	if n := len(desc.Spec.Raw); n != 2 {
		t.Errorf("the Description carries %d objects, want the 2 templates", n)
	}
}
