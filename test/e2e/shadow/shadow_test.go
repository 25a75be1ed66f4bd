package shadow

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// shadow returns the shadow API's resource for a plural name.
func shadow(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "shadow", Version: "v1alpha1", Resource: resource}
}

// env is one parent with the hub serving, and clients of it.
type env struct {
	parent     *testbed.Cluster
	cfg        *rest.Config
	kube       kubernetes.Interface
	dyn        dynamic.Interface
	clusternet versioned.Interface
	hub        interface{ LogTail(int64) string }
	// apiserverLogStart is where the parent's log stood when the first CRD
	// came, long after the hub's startup.
	apiserverLogStart int64
}

func (e *env) ctx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// example reads one of the seed's examples/applications files.
func example(t *testing.T, file string) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), "examples", "applications", file))
	if err != nil {
		t.Fatal(err)
	}
	return object(t, string(b))
}

// object parses one YAML or JSON object.
func object(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	return u
}

func mustJSON(t *testing.T, v interface{}) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// manifest reads the Manifest of a template straight from the parent.
func (e *env) manifest(t *testing.T, group, kind, namespace, name string) (*appsv1alpha1.Manifest, error) {
	t.Helper()
	return e.clusternet.AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace).Get(e.ctx(t),
		appsv1alpha1.ManifestName(group, kind, namespace, name), metav1.GetOptions{})
}

func TestShadowAPI(t *testing.T) {
	tb := testbed.ForTest(t, 0)
	parent := tb.Parent
	hub := e2eutil.SetUpParent(t, parent)
	cfg, err := parent.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{parent: parent, cfg: cfg, hub: hub}
	if e.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if e.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	e.clusternet = e2eutil.ClusternetClient(t, parent)

	t.Run("the seed's templates stay out of the parent's namespaces", e.testSeedTemplates)
	t.Run("kubectl get prints NAME and CREATED AT", e.testTable)
	t.Run("bad objects are refused with the parent's field errors", e.testRefused)
	t.Run("patches: strategic merge, merge and JSON", e.testPatches)
	t.Run("kubectl apply, replayed", e.testApplyReplay)
	t.Run("optimistic concurrency", e.testConflict)
	t.Run("dry runs persist nothing", e.testDryRun)
	t.Run("watch", e.testWatch)
	t.Run("delete and deletecollection", e.testDelete)
	t.Run("scale", e.testScale)
	t.Run("CRDs come and go", e.testCRDs)
	t.Run("templates need the real kind's permission", e.testRealKindPermission)
	t.Run("deleting a real namespace leaves its templates", e.testNamespaceDeletion)
	t.Run("the parent's aggregator is content with the hub", e.testAggregatorLog)
}

func (e *env) testSeedTemplates(t *testing.T) {
	ctx := e.ctx(t)
	defaultBefore, err := e.kube.AppsV1().Deployments(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, resource, namespace string
	}{
		{"02-namespace.yaml", "namespaces", ""},
		{"03-deployment.yaml", "deployments", "foo"},
		{"04-service.yaml", "services", "foo"},
	} {
		obj := example(t, tc.file)
		got, err := e.dyn.Resource(shadow(tc.resource)).Namespace(tc.namespace).Create(ctx, obj, metav1.CreateOptions{FieldValidation: "Strict"})
		if err != nil {
			t.Fatalf("creating the template of %s: %v", tc.file, err)
		}
		m, err := e.manifest(t, obj.GroupVersionKind().Group, obj.GetKind(), tc.namespace, obj.GetName())
		if err != nil {
			t.Fatalf("no Manifest for %s: %v", tc.file, err)
		}
		if got.GetUID() != m.UID || got.GetResourceVersion() != m.ResourceVersion {
			t.Errorf("%s: template uid/rv %s/%s, Manifest %s/%s", tc.file, got.GetUID(), got.GetResourceVersion(), m.UID, m.ResourceVersion)
		}
		want := map[string]string{
			appsv1alpha1.LabelConfigGroup: obj.GroupVersionKind().Group, appsv1alpha1.LabelConfigVersion: obj.GroupVersionKind().Version,
			appsv1alpha1.LabelConfigKind: obj.GetKind(), appsv1alpha1.LabelConfigNamespace: tc.namespace,
		}
		for k, v := range want {
			if m.Labels[k] != v {
				t.Errorf("%s: Manifest label %s=%q, want %q", tc.file, k, m.Labels[k], v)
			}
		}
		var template map[string]interface{}
		if err := json.Unmarshal(m.Template.Raw, &template); err != nil {
			t.Fatal(err)
		}
		written := map[string]interface{}{}
		_ = json.Unmarshal(mustJSON(t, obj.Object), &written)
		if tc.namespace != "" {
			written["metadata"].(map[string]interface{})["namespace"] = tc.namespace
		}
		if got, want := string(mustJSON(t, template)), string(mustJSON(t, written)); got != want {
			t.Errorf("%s: template\n%s\nwant it as written\n%s", tc.file, got, want)
		}
	}
	if _, err := e.kube.CoreV1().Namespaces().Get(ctx, "foo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace foo exists in the parent (err %v): templates must not create anything real", err)
	}
	defaultAfter, err := e.kube.AppsV1().Deployments(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := e.kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(defaultAfter.Items) != len(defaultBefore.Items) {
		t.Errorf("deployments in default: %d before, %d after", len(defaultBefore.Items), len(defaultAfter.Items))
	}
	for _, d := range all.Items {
		if d.Name == "my-nginx" {
			t.Errorf("a real Deployment %s/%s exists in the parent", d.Namespace, d.Name)
		}
	}
	if ns := e2eutil.MustKubectl(t, e.parent, "", "get", "ns", "-o", "name"); strings.Contains(ns, "namespace/foo") {
		t.Errorf("kubectl get ns lists foo:\n%s", ns)
	}
	// Some kinds allow names no Manifest name can hold.
	role := object(t, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"system:shadow-Test"},
		"rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get"]}]}`)
	if _, err := e.dyn.Resource(shadow("clusterroles")).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("a ClusterRole template named system:shadow-Test: %v", err)
	}
	if got, err := e.dyn.Resource(shadow("clusterroles")).Get(ctx, "system:shadow-Test", metav1.GetOptions{}); err != nil || got.GetName() != "system:shadow-Test" {
		t.Errorf("reading it back: %v", err)
	}
	if _, err := e.kube.RbacV1().ClusterRoles().Get(ctx, "system:shadow-Test", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a real ClusterRole system:shadow-Test exists (err %v)", err)
	}
}

func (e *env) testTable(t *testing.T) {
	for _, tc := range []struct {
		args []string
		name string
	}{
		{[]string{"get", "deployments.v1alpha1.shadow", "-n", "foo"}, "my-nginx"},
		{[]string{"get", "services.v1alpha1.shadow", "-n", "foo"}, "my-nginx-svc"},
		{[]string{"get", "namespaces.v1alpha1.shadow"}, "foo"},
	} {
		rows := e2eutil.Table(e2eutil.MustKubectl(t, e.parent, "", tc.args...))
		if len(rows) != 2 || len(rows[0]) != 2 || rows[0][0] != "NAME" || rows[0][1] != "CREATED AT" || rows[1][0] != tc.name ||
			!regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(rows[1][1]) {
			t.Errorf("kubectl %s printed %q, want NAME / CREATED AT and one row for %s", strings.Join(tc.args, " "), rows, tc.name)
		}
	}
	// The same through a REST client asking for a Table, as kubectl does.
	rc, err := rest.RESTClientFor(tableConfig(e.cfg))
	if err != nil {
		t.Fatal(err)
	}
	b, err := rc.Get().AbsPath("/apis/shadow/v1alpha1/namespaces/foo/deployments").
		SetHeader("Accept", "application/json;as=Table;g=meta.k8s.io;v=v1").DoRaw(e.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(b, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.ColumnDefinitions) != 2 || table.ColumnDefinitions[0].Name != "Name" || table.ColumnDefinitions[1].Name != "Created At" ||
		len(table.Rows) != 1 || table.Rows[0].Cells[0] != "my-nginx" {
		t.Errorf("Table = %s", b)
	}
	raw := e2eutil.MustKubectl(t, e.parent, "", "get", "--raw", "/apis/shadow/v1alpha1")
	var list metav1.APIResourceList
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		t.Fatal(err)
	}
	found := map[string]metav1.APIResource{}
	for _, r := range list.APIResources {
		found[r.Name] = r
	}
	if d := found["deployments"]; d.Kind != "Deployment" || d.Group != "apps" || d.Version != "v1" || !d.Namespaced || len(d.ShortNames) != 0 {
		t.Errorf("discovery of deployments = %+v", d)
	}
	for _, absent := range []string{"manifests", "subscriptions", "apiservices", "tokenreviews", "pods/log", "deployments/status"} {
		if _, ok := found[absent]; ok {
			t.Errorf("the shadow API serves %s", absent)
		}
	}
	if _, ok := found["deployments/scale"]; !ok {
		t.Error("the shadow API does not list deployments/scale")
	}
	// A plain kubectl still means the real kind by its short name, and says
	// nothing about the shadow group.
	out, errOut, err := e2eutil.Kubectl(t, e.parent, "", "get", "deploy", "-A", "-o", "name")
	if err != nil || strings.Contains(out, "my-nginx") || errOut != "" {
		t.Errorf("kubectl get deploy in the parent: err=%v, stdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
}

func tableConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &schema.GroupVersion{Group: "shadow", Version: "v1alpha1"}
	c.APIPath = "/apis"
	c.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
	return c
}

func (e *env) testRefused(t *testing.T) {
	ctx := e.ctx(t)
	for _, tc := range []struct {
		name, object string
		opts         metav1.CreateOptions
		check        func(error) bool
		want         string
	}{
		{"negative replicas", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"bad","namespace":"foo"},
			"spec":{"replicas":-1,"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}`,
			metav1.CreateOptions{}, apierrors.IsInvalid, "spec.replicas: Invalid value: -1: must be greater than or equal to 0"},
		{"missing selector", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"bad","namespace":"foo"},
			"spec":{"template":{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}`,
			metav1.CreateOptions{}, apierrors.IsInvalid, "spec.selector: Required value"},
		{"unknown field, strict", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"bad","namespace":"foo"},
			"spec":{"replicaz":1,"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}`,
			metav1.CreateOptions{FieldValidation: "Strict"}, apierrors.IsBadRequest, `unknown field "spec.replicaz"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.dyn.Resource(shadow("deployments")).Namespace("foo").Create(ctx, object(t, tc.object), tc.opts)
			if err == nil || !tc.check(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("create = %v, want an error with %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "bad") && apierrors.IsInvalid(err) {
				t.Errorf("the error does not name the template: %v", err)
			}
			if strings.Contains(err.Error(), appsv1alpha1.ReservedNamespace) || strings.Contains(err.Error(), "anifest") {
				t.Errorf("the error names the hub's machinery: %v", err)
			}
			if _, err := e.manifest(t, "apps", "Deployment", "foo", "bad"); !apierrors.IsNotFound(err) {
				t.Errorf("a refused template was stored (get: %v)", err)
			}
		})
	}
}

func (e *env) testPatches(t *testing.T) {
	ctx := e.ctx(t)
	deploys := e.dyn.Resource(shadow("deployments")).Namespace("foo")
	sidecar := `{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}`
	got, err := deploys.Patch(ctx, "my-nginx", types.StrategicMergePatchType, []byte(sidecar), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := containerNames(got); strings.Join(n, ",") != "sidecar,nginx" {
		t.Errorf("after a strategic merge patch: containers %v, want sidecar and nginx merged by name", n)
	}
	got, err = deploys.Patch(ctx, "my-nginx", types.MergePatchType, []byte(`{"metadata":{"labels":{"patched":"merge"}},`+sidecar[1:]), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := containerNames(got); strings.Join(n, ",") != "sidecar" || got.GetLabels()["patched"] != "merge" {
		t.Errorf("after a merge patch: containers %v labels %v, want the list replaced", n, got.GetLabels())
	}
	got, err = deploys.Patch(ctx, "my-nginx", types.JSONPatchType,
		[]byte(`[{"op":"replace","path":"/spec/template/spec/containers/0","value":{"name":"nginx","image":"nginx:1.14.2","ports":[{"containerPort":80}]}}]`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := containerNames(got); strings.Join(n, ",") != "nginx" {
		t.Errorf("after a JSON patch: containers %v", n)
	}
	m, err := e.manifest(t, "apps", "Deployment", "foo", "my-nginx")
	if err != nil {
		t.Fatal(err)
	}
	if m.Labels["patched"] != "merge" || m.ResourceVersion != got.GetResourceVersion() || m.Generation != got.GetGeneration() {
		t.Errorf("Manifest after patches: labels %v rv %s gen %d; template rv %s gen %d", m.Labels, m.ResourceVersion, m.Generation,
			got.GetResourceVersion(), got.GetGeneration())
	}
}

func containerNames(u *unstructured.Unstructured) []string {
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	var out []string
	for _, c := range containers {
		out = append(out, c.(map[string]interface{})["name"].(string))
	}
	return out
}

// testApplyReplay makes the requests kubectl apply makes (client side):
// GET, then POST with the last-applied annotation; a second apply GETs and
// sends a three-way strategic merge patch.
func (e *env) testApplyReplay(t *testing.T) {
	ctx := e.ctx(t)
	const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"
	deploys := e.dyn.Resource(shadow("deployments")).Namespace("foo")
	applied := object(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: applied, namespace: foo, labels: {clusternet-app: multi-cluster-nginx}}
spec:
  replicas: 2
  selector: {matchLabels: {app: applied}}
  template:
    metadata: {labels: {app: applied}}
    spec:
      containers: [{name: nginx, image: "nginx:1.14.2", ports: [{containerPort: 80}]}]
`)
	annotated := func(u *unstructured.Unstructured) *unstructured.Unstructured {
		c := u.DeepCopy()
		c.SetAnnotations(map[string]string{lastApplied: string(mustJSON(t, u.Object))})
		return c
	}
	if _, err := deploys.Get(ctx, "applied", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("GET before the first apply: %v", err)
	}
	if _, err := deploys.Create(ctx, annotated(applied), metav1.CreateOptions{FieldManager: "kubectl-client-side-apply", FieldValidation: "Strict"}); err != nil {
		t.Fatal(err)
	}

	second := applied.DeepCopy()
	unstructured.RemoveNestedField(second.Object, "spec", "replicas")
	_ = unstructured.SetNestedSlice(second.Object, []interface{}{
		map[string]interface{}{"name": "nginx", "image": "nginx:1.21", "ports": []interface{}{map[string]interface{}{"containerPort": int64(80)}}},
		map[string]interface{}{"name": "sidecar", "image": "busybox"},
	}, "spec", "template", "spec", "containers")
	current, err := deploys.Get(ctx, "applied", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := strategicpatch.NewPatchMetaFromStruct(&appsv1.Deployment{})
	if err != nil {
		t.Fatal(err)
	}
	patch, err := strategicpatch.CreateThreeWayMergePatch([]byte(current.GetAnnotations()[lastApplied]),
		mustJSON(t, annotated(second).Object), mustJSON(t, current.Object), meta, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := deploys.Patch(ctx, "applied", types.StrategicMergePatchType, patch,
		metav1.PatchOptions{FieldManager: "kubectl-client-side-apply", FieldValidation: "Strict"})
	if err != nil {
		t.Fatalf("second apply: %v\npatch %s", err, patch)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(got.Object, "spec", "replicas"); found {
		t.Error("replicas, left out of the second apply, is still set")
	}
	if n := containerNames(got); strings.Join(n, ",") != "nginx,sidecar" {
		t.Errorf("containers after the second apply = %v", n)
	}
	if got.GetAnnotations()[lastApplied] != string(mustJSON(t, second.Object)) {
		t.Errorf("last-applied not updated: %s", got.GetAnnotations()[lastApplied])
	}
	// A third apply of the same file changes nothing.
	patch, err = strategicpatch.CreateThreeWayMergePatch([]byte(got.GetAnnotations()[lastApplied]),
		mustJSON(t, annotated(second).Object), mustJSON(t, got.Object), meta, true)
	if err != nil {
		t.Fatal(err)
	}
	if string(patch) != "{}" {
		t.Errorf("a repeated apply computes patch %s, want {}", patch)
	}
}

func (e *env) testConflict(t *testing.T) {
	ctx := e.ctx(t)
	deploys := e.dyn.Resource(shadow("deployments")).Namespace("foo")
	current, err := deploys.Get(ctx, "my-nginx", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := current.DeepCopy()
	_ = unstructured.SetNestedField(first.Object, int64(4), "spec", "replicas")
	if _, err := deploys.Update(ctx, first, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stale := current.DeepCopy()
	_ = unstructured.SetNestedField(stale.Object, int64(5), "spec", "replicas")
	_, err = deploys.Update(ctx, stale, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), `deployments.apps "my-nginx"`) {
		t.Errorf("update with a stale resourceVersion = %v, want 409 Conflict naming deployments.apps \"my-nginx\"", err)
	}
}

func (e *env) testDryRun(t *testing.T) {
	ctx := e.ctx(t)
	cms := e.dyn.Resource(shadow("configmaps")).Namespace("foo")
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	if _, err := cms.Create(ctx, object(t, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dry"},"data":{"a":"b"}}`), dry); err != nil {
		t.Fatal(err)
	}
	if _, err := e.manifest(t, "", "ConfigMap", "foo", "dry"); !apierrors.IsNotFound(err) {
		t.Errorf("dry-run create stored a template (get: %v)", err)
	}
	before, err := e.manifest(t, "apps", "Deployment", "foo", "my-nginx")
	if err != nil {
		t.Fatal(err)
	}
	deploys := e.dyn.Resource(shadow("deployments")).Namespace("foo")
	if _, err := deploys.Patch(ctx, "my-nginx", types.MergePatchType, []byte(`{"spec":{"replicas":9}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if err := deploys.Delete(ctx, "my-nginx", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	after, err := e.manifest(t, "apps", "Deployment", "foo", "my-nginx")
	if err != nil || after.ResourceVersion != before.ResourceVersion {
		t.Errorf("dry runs changed the template: %v, rv %s then %s", err, before.ResourceVersion, after.ResourceVersion)
	}
}

func (e *env) testWatch(t *testing.T) {
	ctx := e.ctx(t)
	cms := e.dyn.Resource(shadow("configmaps")).Namespace("foo")
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=watched", ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := cms.Create(ctx, object(t, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other"}}`), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, object(t, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"watched"},"data":{"a":"1"}}`), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Patch(ctx, "watched", types.MergePatchType, []byte(`{"data":{"a":"2"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "watched", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %v", got)
			}
			u := ev.Object.(*unstructured.Unstructured)
			a, _, _ := unstructured.NestedString(u.Object, "data", "a")
			got = append(got, fmt.Sprintf("%s %s %s %s", ev.Type, u.GetKind(), u.GetName(), a))
		case <-ctx.Done():
			t.Fatalf("events so far %v: %v", got, ctx.Err())
		}
	}
	want := []string{"ADDED ConfigMap watched 1", "MODIFIED ConfigMap watched 2", "DELETED ConfigMap watched 2"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events %q, want %q", got, want)
	}
	// Watching from the list's resourceVersion replays what happened since.
	replay, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Stop()
	ev := <-replay.ResultChan()
	if ev.Type != watch.Added || ev.Object.(*unstructured.Unstructured).GetName() != "other" {
		t.Errorf("first replayed event = %s %v", ev.Type, ev.Object)
	}
}

func (e *env) testDelete(t *testing.T) {
	ctx := e.ctx(t)
	cms := e.dyn.Resource(shadow("configmaps")).Namespace("foo")
	for _, name := range []string{"del-a", "del-b", "keep"} {
		tier := "temp"
		if name == "keep" {
			tier = "keep"
		}
		if _, err := cms.Create(ctx, object(t, fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"labels":{"tier":%q}}}`, name, tier)),
			metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cms.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "tier=temp"}); err != nil {
		t.Fatal(err)
	}
	list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "tier"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].GetName() != "keep" {
		t.Errorf("after deletecollection: %d templates", len(list.Items))
	}
	if err := cms.Delete(ctx, "keep", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "keep", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete = %v", err)
	}
	// The real kubectl deletes and waits as with any object.
	if _, err := cms.Create(ctx, object(t, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kubectl-deletes"}}`), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	out := e2eutil.MustKubectl(t, e.parent, "", "delete", "configmaps.v1alpha1.shadow", "kubectl-deletes", "-n", "foo", "--wait", "--timeout=30s")
	if !strings.Contains(out, `"kubectl-deletes" deleted`) {
		t.Errorf("kubectl delete printed %q", out)
	}
}

func (e *env) testScale(t *testing.T) {
	ctx := e.ctx(t)
	deploys := e.dyn.Resource(shadow("deployments")).Namespace("foo")
	scale, err := deploys.Get(ctx, "my-nginx", metav1.GetOptions{}, "scale")
	if err != nil {
		t.Fatal(err)
	}
	if scale.GetKind() != "Scale" || scale.GetAPIVersion() != "autoscaling/v1" {
		t.Fatalf("scale is %s %s", scale.GetAPIVersion(), scale.GetKind())
	}
	if sel, _, _ := unstructured.NestedString(scale.Object, "status", "selector"); sel != "app=nginx" {
		t.Errorf("scale selector %q", sel)
	}
	_ = unstructured.SetNestedField(scale.Object, int64(6), "spec", "replicas")
	if _, err := deploys.Update(ctx, scale, metav1.UpdateOptions{}, "scale"); err != nil {
		t.Fatal(err)
	}
	replicas := func() int64 {
		t.Helper()
		d, err := deploys.Get(ctx, "my-nginx", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
		return r
	}
	if r := replicas(); r != 6 {
		t.Errorf("replicas after a scale update = %d, want 6", r)
	}
	// The real kubectl scale finds the scale subresource through discovery.
	e2eutil.MustKubectl(t, e.parent, "", "scale", "deployments.v1alpha1.shadow", "my-nginx", "-n", "foo", "--replicas=2")
	if r := replicas(); r != 2 {
		t.Errorf("replicas after kubectl scale = %d, want 2", r)
	}
}

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        scale: {specReplicasPath: .spec.size, statusReplicasPath: .status.size}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer, minimum: 0}
            status:
              type: object
              properties:
                size: {type: integer}
`

func (e *env) testCRDs(t *testing.T) {
	ctx := e.ctx(t)
	if fi, err := os.Stat(e.parent.Process("kube-apiserver").Log); err == nil {
		e.apiserverLogStart = fi.Size()
	}
	start := time.Now()
	e2eutil.MustKubectl(t, e.parent, widgetCRD, "apply", "-f", "-")
	var served time.Duration
	e2eutil.WaitFor(t, 30*time.Second, "widgets served by the shadow API", func(context.Context) (bool, string) {
		out, _, err := e2eutil.Kubectl(t, e.parent, "", "get", "--raw", "/apis/shadow/v1alpha1")
		served = time.Since(start)
		return err == nil && strings.Contains(out, `"name":"widgets"`), out
	})
	widgets := e.dyn.Resource(shadow("widgets")).Namespace("foo")
	if _, err := widgets.Create(ctx, object(t, `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":1}}`), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := widgets.Create(ctx, object(t, `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"bad"},"spec":{"size":-1}}`), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.size") {
		t.Errorf("an invalid Widget = %v, want the CRD schema's field error", err)
	}
	if _, err := widgets.Patch(ctx, "w", types.StrategicMergePatchType, []byte(`{"spec":{"size":2}}`), metav1.PatchOptions{}); !apierrors.IsUnsupportedMediaType(err) {
		t.Errorf("strategic merge patch of a CRD = %v, want 415 as for real CRDs", err)
	}
	if _, err := widgets.Patch(ctx, "w", types.MergePatchType, []byte(`{"spec":{"size":3}}`), metav1.PatchOptions{FieldValidation: "Strict"}, "scale"); !apierrors.IsBadRequest(err) {
		t.Errorf("a strict merge patch of Scale.spec.size = %v, want BadRequest: Scale has spec.replicas", err)
	}
	if _, err := widgets.Patch(ctx, "w", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{}, "scale"); err != nil {
		t.Fatal(err)
	}
	w, err := widgets.Get(ctx, "w", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if size, _, _ := unstructured.NestedInt64(w.Object, "spec", "size"); size != 3 {
		t.Errorf("widget size after scaling = %d, want 3 (the CRD's specReplicasPath)", size)
	}
	// The parent's aggregated discovery follows: a plain kubectl finds them.
	var aggregated time.Duration
	e2eutil.WaitFor(t, 70*time.Second, "kubectl to resolve widgets.v1alpha1.shadow", func(context.Context) (bool, string) {
		out, errOut, err := e2eutil.Kubectl(t, e.parent, "", "get", "widgets.v1alpha1.shadow", "-n", "foo", "-o", "name")
		aggregated = time.Since(start)
		return err == nil && strings.Contains(out, "w"), out + errOut
	})
	t.Logf("CRD applied: served by the shadow API after %v, in the parent's aggregated discovery after %v", served.Round(time.Millisecond), aggregated.Round(time.Millisecond))

	start = time.Now()
	e2eutil.MustKubectl(t, e.parent, "", "delete", "crd", "widgets.example.com", "--wait")
	e2eutil.WaitFor(t, 30*time.Second, "widgets gone from the shadow API", func(context.Context) (bool, string) {
		out, _, err := e2eutil.Kubectl(t, e.parent, "", "get", "--raw", "/apis/shadow/v1alpha1")
		return err == nil && !strings.Contains(out, `"name":"widgets"`), ""
	})
	t.Logf("CRD deleted: gone from the shadow API after %v", time.Since(start).Round(time.Millisecond))
	if _, err := widgets.Get(ctx, "w", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get of a widget template after its CRD went away = %v, want NotFound", err)
	}
	// The template itself stays, for when the kind comes back.
	if _, err := e.manifest(t, "example.com", "Widget", "foo", "w"); err != nil {
		t.Errorf("the Manifest of the widget template: %v", err)
	}
}

func (e *env) testRealKindPermission(t *testing.T) {
	e2eutil.MustKubectl(t, e.parent, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: shadow-configmaps-only}
rules:
  - apiGroups: ["shadow"]
    resources: ["*"]
    verbs: ["*"]
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: shadow-configmaps-only}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: shadow-configmaps-only}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
`, "apply", "-f", "-")
	cm := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bobs"}}`
	e2eutil.WaitFor(t, 30*time.Second, "bob may write ConfigMap templates", func(context.Context) (bool, string) {
		out, errOut, err := e2eutil.Kubectl(t, e.parent, cm, "create", "--raw", "/apis/shadow/v1alpha1/namespaces/foo/configmaps", "-f", "-", "--as=bob")
		return err == nil, out + errOut
	})
	secret := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"bobs"},"stringData":{"k":"v"}}`
	_, errOut, err := e2eutil.Kubectl(t, e.parent, secret, "create", "--raw", "/apis/shadow/v1alpha1/namespaces/foo/secrets", "-f", "-", "--as=bob")
	if err == nil || !strings.Contains(errOut, `a template needs the permission its real object needs: user "bob" cannot create secrets in namespace "foo"`) {
		t.Errorf("bob writing a Secret template: %v %s", err, errOut)
	}
	if _, err := e.manifest(t, "", "Secret", "foo", "bobs"); !apierrors.IsNotFound(err) {
		t.Errorf("bob's Secret template was stored (get: %v)", err)
	}

	// Editors of a namespace write templates there, through the aggregated
	// roles of deploy/hub/rbac.yaml, and nowhere else.
	e2eutil.MustKubectl(t, e.parent, "", "create", "namespace", "team")
	e2eutil.MustKubectl(t, e.parent, "", "create", "rolebinding", "carol-edit", "-n", "team", "--clusterrole=edit", "--user=carol")
	e2eutil.WaitFor(t, 30*time.Second, "carol may write templates in team", func(context.Context) (bool, string) {
		out, errOut, err := e2eutil.Kubectl(t, e.parent, cm, "create", "--raw", "/apis/shadow/v1alpha1/namespaces/team/configmaps", "-f", "-", "--as=carol")
		return err == nil, out + errOut
	})
	if _, errOut, err := e2eutil.Kubectl(t, e.parent, secret, "create", "--raw", "/apis/shadow/v1alpha1/namespaces/team/secrets", "-f", "-", "--as=carol"); err != nil {
		t.Errorf("carol, an editor of team, writing a Secret template there: %v %s", err, errOut)
	}
	if _, errOut, err := e2eutil.Kubectl(t, e.parent, cm, "create", "--raw", "/apis/shadow/v1alpha1/namespaces/foo/configmaps", "-f", "-", "--as=carol"); err == nil ||
		!strings.Contains(errOut, "Forbidden") {
		t.Errorf("carol writing a template in foo: %v %s, want Forbidden", err, errOut)
	}
}

// TestNamespaceTemplatesWithoutRealKindChecks: with
// --shadow-authorize-real-kind=false, RBAC on group shadow alone decides,
// and the parent authorizes /namespaces/team/namespaces/prod as a request
// in team. An editor of team must not reach the Namespace template prod
// through it (which children would receive, say, privileged): the route
// does not exist, as in kube-apiserver.
func TestNamespaceTemplatesWithoutRealKindChecks(t *testing.T) {
	tb := testbed.ForTest(t, 0)
	e2eutil.SetUpParent(t, tb.Parent, "--shadow-authorize-real-kind=false")
	cfg, err := tb.Parent.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prod, err := dyn.Resource(shadow("namespaces")).Create(ctx,
		object(t, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"prod","labels":{"pod-security.kubernetes.io/enforce":"restricted"}}}`),
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e2eutil.MustKubectl(t, tb.Parent, "", "create", "namespace", "team")
	e2eutil.MustKubectl(t, tb.Parent, "", "create", "rolebinding", "carol-edit", "-n", "team", "--clusterrole=edit", "--user=carol")
	cm := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`
	e2eutil.WaitFor(t, 30*time.Second, "carol may write templates in team", func(context.Context) (bool, string) {
		out, errOut, err := e2eutil.Kubectl(t, tb.Parent, cm, "create", "--raw", "/apis/shadow/v1alpha1/namespaces/team/configmaps", "-f", "-", "--as=carol")
		return err == nil, out + errOut
	})

	asCarol := rest.CopyConfig(cfg)
	asCarol.Impersonate = rest.ImpersonationConfig{UserName: "carol"}
	carol, err := kubernetes.NewForConfig(asCarol)
	if err != nil {
		t.Fatal(err)
	}
	const prodThroughTeam = "/apis/shadow/v1alpha1/namespaces/team/namespaces/prod"
	for _, tc := range []struct {
		method, path, body string
	}{
		{"GET", prodThroughTeam, ""},
		{"GET", "/apis/shadow/v1alpha1/namespaces/team/namespaces", ""},
		{"PATCH", prodThroughTeam, `{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`},
		{"PUT", prodThroughTeam, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"prod","labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`},
		{"DELETE", prodThroughTeam, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req := carol.CoreV1().RESTClient().Verb(tc.method).AbsPath(tc.path)
			if tc.body != "" {
				req = req.Body([]byte(tc.body)).SetHeader("Content-Type", "application/json")
				if tc.method == "PATCH" {
					req = req.SetHeader("Content-Type", string(types.MergePatchType))
				}
			}
			if err := req.Do(ctx).Error(); !apierrors.IsNotFound(err) {
				t.Errorf("carol, an editor of team, %s %s: %v, want NotFound", tc.method, tc.path, err)
			}
		})
	}
	after, err := dyn.Resource(shadow("namespaces")).Get(ctx, "prod", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Namespace template prod: %v", err)
	}
	if after.GetResourceVersion() != prod.GetResourceVersion() || after.GetLabels()["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("the Namespace template prod changed: rv %s (was %s), labels %v", after.GetResourceVersion(), prod.GetResourceVersion(), after.GetLabels())
	}
}

func (e *env) testNamespaceDeletion(t *testing.T) {
	ctx := e.ctx(t)
	if _, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "real"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dyn.Resource(shadow("configmaps")).Namespace("real").Create(ctx,
		object(t, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"survivor"}}`), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e2eutil.MustKubectl(t, e.parent, "", "delete", "namespace", "real", "--wait", "--timeout=60s")
	if _, err := e.dyn.Resource(shadow("configmaps")).Namespace("real").Get(ctx, "survivor", metav1.GetOptions{}); err != nil {
		t.Errorf("the template in namespace real after the real namespace was deleted: %v", err)
	}
}

// testAggregatorLog checks the parent's aggregator after CRDs came and went
// (each change updates the shadow APIService): what it logged about the
// shadow APIService since, and that the aggregated OpenAPI still holds the
// hub's proxies.clusternet.io and has no trouble with the shadow API.
func (e *env) testAggregatorLog(t *testing.T) {
	b, err := os.ReadFile(e.parent.Process("kube-apiserver").Log)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b[e.apiserverLogStart:]), "\n") {
		if strings.HasPrefix(line, "E") && strings.Contains(line, "v1alpha1.shadow") {
			t.Errorf("the parent's apiserver logged about the shadow APIService: %s", line)
		}
	}
	root := e2eutil.MustKubectl(t, e.parent, "", "get", "--raw", "/openapi/v3")
	if !strings.Contains(root, `"apis/proxies.clusternet.io/v1alpha1"`) {
		t.Errorf("the parent's OpenAPI v3 lacks the hub's proxies.clusternet.io: %.300s", root)
	}
	spec := e2eutil.MustKubectl(t, e.parent, "", "get", "--raw", "/openapi/v3/apis/proxies.clusternet.io/v1alpha1")
	if !strings.Contains(spec, "/apis/proxies.clusternet.io/v1alpha1/sockets/{name}") {
		t.Errorf("the hub's OpenAPI v3 through the parent: %.300s", spec)
	}
	if v2 := e2eutil.MustKubectl(t, e.parent, "", "get", "--raw", "/openapi/v2"); !strings.Contains(v2, "proxies.clusternet.io") {
		t.Error("the parent's OpenAPI v2 lacks the hub's proxies.clusternet.io")
	}
	for _, line := range strings.Split(e.hub.LogTail(1<<20), "\n") {
		if strings.HasPrefix(line, "E") {
			t.Logf("hub error log: %s", line)
		}
	}
}
