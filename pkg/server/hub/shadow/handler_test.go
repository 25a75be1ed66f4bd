package shadow

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

const (
	prefix   = "/apis/shadow/v1alpha1"
	asTable  = "application/json;as=Table;g=meta.k8s.io;v=v1"
	jsonType = "application/json"
)

type response struct {
	code   int
	body   []byte
	header http.Header
}

// do sends one request; headers come in name, value pairs.
func (ta *testAPI) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ta.server.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", jsonType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := ta.server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, body: b, header: resp.Header}
}

// must sends a request and fails the test unless it gets want.
func (ta *testAPI) must(t *testing.T, want int, method, path, body string, headers ...string) *unstructured.Unstructured {
	t.Helper()
	resp := ta.do(t, method, path, body, headers...)
	if resp.code != want {
		t.Fatalf("%s %s = %d, want %d: %s", method, path, resp.code, want, resp.body)
	}
	u := &unstructured.Unstructured{}
	if err := utiljson.Unmarshal(resp.body, &u.Object); err != nil {
		t.Fatalf("%s %s: %v\n%s", method, path, err, resp.body)
	}
	return u
}

func (r response) status(t *testing.T) metav1.Status {
	t.Helper()
	var s metav1.Status
	if err := json.Unmarshal(r.body, &s); err != nil || s.Kind != "Status" {
		t.Fatalf("not a Status (%v): %s", err, r.body)
	}
	return s
}

const (
	namespaceFoo = `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"foo"}}`
	deployment   = `{"apiVersion":"apps/v1","kind":"Deployment",
		"metadata":{"name":"my-nginx","namespace":"foo","labels":{"clusternet-app":"multi-cluster-nginx"},"uid":"from-elsewhere","resourceVersion":"7"},
		"spec":{"replicas":2,"selector":{"matchLabels":{"app":"nginx"}},
		  "template":{"metadata":{"labels":{"app":"nginx"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.14.2","ports":[{"containerPort":80}]}]}}},
		"status":{"replicas":2}}`
)

func deploymentNamed(name string, labels map[string]string) string {
	l, _ := json.Marshal(labels)
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q,"labels":%s},
		"spec":{"selector":{"matchLabels":{"app":%q}},"template":{"metadata":{"labels":{"app":%q}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}`,
		name, l, name, name)
}

func TestCreateStoresATemplateInAManifest(t *testing.T) {
	ta := newTestAPI(t)
	ns := ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces", namespaceFoo)
	if ns.GetName() != "foo" || ns.GetUID() == "" || ns.GetResourceVersion() == "" {
		t.Errorf("created Namespace = %v", ns.Object)
	}
	got := ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments", deployment)

	m := ta.storedManifest(t, "apps", "Deployment", "foo", "my-nginx")
	if m == nil {
		t.Fatal("no Manifest stored for the Deployment")
	}
	wantLabels := map[string]string{
		"clusternet-app":                  "multi-cluster-nginx",
		appsv1alpha1.LabelConfigGroup:     "apps",
		appsv1alpha1.LabelConfigVersion:   "v1",
		appsv1alpha1.LabelConfigKind:      "Deployment",
		appsv1alpha1.LabelConfigNamespace: "foo",
	}
	if diff := cmp.Diff(wantLabels, m.Labels); diff != "" {
		t.Errorf("Manifest labels (-want +got):\n%s", diff)
	}
	var template map[string]interface{}
	if err := json.Unmarshal(m.Template.Raw, &template); err != nil {
		t.Fatal(err)
	}
	wantTemplate := map[string]interface{}{}
	_ = json.Unmarshal([]byte(deployment), &wantTemplate)
	delete(wantTemplate, "status")
	meta := wantTemplate["metadata"].(map[string]interface{})
	delete(meta, "uid")
	delete(meta, "resourceVersion")
	if diff := cmp.Diff(wantTemplate, template); diff != "" {
		t.Errorf("template (-want +got):\n%s", diff)
	}

	// What the client sees comes from the Manifest.
	if got.GetUID() != m.UID || got.GetResourceVersion() != m.ResourceVersion || got.GetGeneration() != 1 ||
		!got.GetCreationTimestamp().Time.Equal(m.CreationTimestamp.Time) {
		t.Errorf("created object metadata = %v, want the Manifest's (uid %s, rv %s)", got.Object["metadata"], m.UID, m.ResourceVersion)
	}
	if _, hasStatus := got.Object["status"]; hasStatus {
		t.Error("the created template has a status")
	}
	read := ta.must(t, http.StatusOK, "GET", prefix+"/namespaces/foo/deployments/my-nginx", "")
	if diff := cmp.Diff(got.Object, read.Object); diff != "" {
		t.Errorf("GET differs from the create response (-create +get):\n%s", diff)
	}
	// The dry run saw the template in its own namespace.
	if n := len(ta.validator.calls); n != 2 || ta.validator.calls[1].GetNamespace() != "foo" {
		t.Errorf("validator calls = %d, last namespace %q", n, ta.validator.calls[n-1].GetNamespace())
	}
}

func TestTableShowsNameAndCreatedAt(t *testing.T) {
	ta := newTestAPI(t)
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments", deployment)
	resp := ta.do(t, "GET", prefix+"/namespaces/foo/deployments", "", "Accept", asTable)
	if resp.code != http.StatusOK {
		t.Fatalf("list as Table = %d: %s", resp.code, resp.body)
	}
	var table metav1.Table
	if err := json.Unmarshal(resp.body, &table); err != nil {
		t.Fatal(err)
	}
	var columns []string
	for _, c := range table.ColumnDefinitions {
		columns = append(columns, c.Name)
	}
	var rows [][]interface{}
	for _, r := range table.Rows {
		rows = append(rows, r.Cells)
	}
	if diff := cmp.Diff([]string{"Name", "Created At"}, columns); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]interface{}{{"my-nginx", "2021-08-07T08:50:56Z"}}, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestErrorsNameTheTemplate(t *testing.T) {
	ta := newTestAPI(t)
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments", deployment)
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		reason                   metav1.StatusReason
		message                  string
	}{
		{"already exists", "POST", prefix + "/namespaces/foo/deployments", deployment, http.StatusConflict, metav1.StatusReasonAlreadyExists,
			`deployments.apps "my-nginx" already exists`},
		{"not found", "GET", prefix + "/namespaces/foo/deployments/nope", "", http.StatusNotFound, metav1.StatusReasonNotFound,
			`deployments.apps "nope" not found`},
		{"same name, other namespace", "GET", prefix + "/namespaces/bar/deployments/my-nginx", "", http.StatusNotFound, metav1.StatusReasonNotFound,
			`deployments.apps "my-nginx" not found`},
		{"delete missing", "DELETE", prefix + "/namespaces/foo/deployments/nope", "", http.StatusNotFound, metav1.StatusReasonNotFound,
			`deployments.apps "nope" not found`},
		{"wrong kind", "POST", prefix + "/namespaces/foo/deployments", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`,
			http.StatusBadRequest, metav1.StatusReasonBadRequest, ""},
		{"status subresource", "GET", prefix + "/namespaces/foo/deployments/my-nginx/status", "", http.StatusNotFound, metav1.StatusReasonNotFound,
			`deployments.apps "my-nginx" has no "status" subresource as a template: templates serve only scale, and have no status`},
		{"unknown resource", "GET", prefix + "/namespaces/foo/manifests", "", http.StatusNotFound, metav1.StatusReasonNotFound, ""},
		{"cluster-scoped in a namespace", "GET", prefix + "/namespaces/foo/namespaces/x", "", http.StatusNotFound, metav1.StatusReasonNotFound, ""},
		{"bad namespace", "POST", prefix + "/namespaces/Foo_Bar/configmaps", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`,
			http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, ""},
		{"unsupported field selector", "GET", prefix + "/namespaces/foo/deployments?fieldSelector=spec.replicas%3D2", "", http.StatusBadRequest,
			metav1.StatusReasonBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := ta.do(t, tc.method, tc.path, tc.body)
			if resp.code != tc.code {
				t.Fatalf("%s %s = %d, want %d: %s", tc.method, tc.path, resp.code, tc.code, resp.body)
			}
			st := resp.status(t)
			if st.Reason != tc.reason || (tc.message != "" && st.Message != tc.message) {
				t.Errorf("status = %s %q, want %s %q", st.Reason, st.Message, tc.reason, tc.message)
			}
		})
	}
}

func TestRefusedTemplateIsNotStored(t *testing.T) {
	ta := newTestAPI(t)
	ta.validator.refuse = func(u *unstructured.Unstructured) error {
		return apierrors.NewInvalid(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind(), u.GetName(), nil)
	}
	resp := ta.do(t, "POST", prefix+"/namespaces/foo/deployments", deployment)
	if resp.code != http.StatusUnprocessableEntity {
		t.Fatalf("create = %d: %s", resp.code, resp.body)
	}
	if m := ta.storedManifest(t, "apps", "Deployment", "foo", "my-nginx"); m != nil {
		t.Errorf("a refused template was stored: %v", m)
	}
}

func TestPatches(t *testing.T) {
	sidecar := `{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}`
	for _, tc := range []struct {
		name, contentType, patch string
		wantContainers           []string
		wantReplicas             int64
	}{
		// Without $setElementOrder, patched items come first, as in any apiserver.
		{"strategic merge patch merges containers by name", "application/strategic-merge-patch+json", sidecar, []string{"sidecar", "nginx"}, 2},
		{"merge patch replaces the list", "application/merge-patch+json", sidecar, []string{"sidecar"}, 2},
		{"json patch", "application/json-patch+json", `[{"op":"replace","path":"/spec/replicas","value":5}]`, []string{"nginx"}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAPI(t)
			created := ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments", deployment)
			got := ta.must(t, http.StatusOK, "PATCH", prefix+"/namespaces/foo/deployments/my-nginx", tc.patch, "Content-Type", tc.contentType)
			containers, _, _ := unstructured.NestedSlice(got.Object, "spec", "template", "spec", "containers")
			var names []string
			for _, c := range containers {
				names = append(names, c.(map[string]interface{})["name"].(string))
			}
			if diff := cmp.Diff(tc.wantContainers, names); diff != "" {
				t.Errorf("containers (-want +got):\n%s", diff)
			}
			if r, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas"); r != tc.wantReplicas {
				t.Errorf("replicas = %d, want %d", r, tc.wantReplicas)
			}
			if got.GetResourceVersion() == created.GetResourceVersion() || got.GetGeneration() != 2 {
				t.Errorf("patched rv %s generation %d, created rv %s", got.GetResourceVersion(), got.GetGeneration(), created.GetResourceVersion())
			}
			m := ta.storedManifest(t, "apps", "Deployment", "foo", "my-nginx")
			if !strings.Contains(string(m.Template.Raw), `"name":"`+tc.wantContainers[0]+`"`) {
				t.Errorf("stored template not patched: %s", m.Template.Raw)
			}
		})
	}
}

func TestStrategicMergePatchIsForBuiltInKindsOnly(t *testing.T) {
	ta := newTestAPI(t)
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/widgets", `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":1}}`)
	resp := ta.do(t, "PATCH", prefix+"/namespaces/foo/widgets/w", `{"spec":{"size":2}}`, "Content-Type", "application/strategic-merge-patch+json")
	if resp.code != http.StatusUnsupportedMediaType {
		t.Errorf("strategic merge patch of a CRD = %d, want 415 as for real CRDs: %s", resp.code, resp.body)
	}
	got := ta.must(t, http.StatusOK, "PATCH", prefix+"/namespaces/foo/widgets/w", `{"spec":{"size":2}}`, "Content-Type", "application/merge-patch+json")
	if size, _, _ := unstructured.NestedInt64(got.Object, "spec", "size"); size != 2 {
		t.Errorf("merge-patched size = %d", size)
	}
}

// TestKubectlApplySequence replays client-side kubectl apply: GET (404),
// POST with the last-applied annotation, then a second apply's three-way
// strategic merge patch computed from that annotation.
func TestKubectlApplySequence(t *testing.T) {
	ta := newTestAPI(t)
	const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"
	path := prefix + "/namespaces/foo/deployments/my-nginx"
	if resp := ta.do(t, "GET", path, ""); resp.code != http.StatusNotFound {
		t.Fatalf("GET before the first apply = %d", resp.code)
	}
	first := map[string]interface{}{}
	_ = json.Unmarshal([]byte(deployment), &first)
	delete(first, "status")
	delete(first["metadata"].(map[string]interface{}), "uid")
	delete(first["metadata"].(map[string]interface{}), "resourceVersion")
	firstJSON, _ := json.Marshal(first)
	withAnnotation := func(obj map[string]interface{}, applied []byte) []byte {
		u := &unstructured.Unstructured{Object: obj}
		u = u.DeepCopy()
		u.SetAnnotations(map[string]string{lastApplied: string(applied)})
		b, _ := json.Marshal(u.Object)
		return b
	}
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments?fieldManager=kubectl-client-side-apply&fieldValidation=Strict",
		string(withAnnotation(first, firstJSON)))

	// The second apply: image changed, replicas left out (so removed), a port added.
	second := map[string]interface{}{}
	_ = json.Unmarshal(firstJSON, &second)
	spec := second["spec"].(map[string]interface{})
	delete(spec, "replicas")
	container := spec["template"].(map[string]interface{})["spec"].(map[string]interface{})["containers"].([]interface{})[0].(map[string]interface{})
	container["image"] = "nginx:1.21"
	container["ports"] = append(container["ports"].([]interface{}), map[string]interface{}{"containerPort": int64(443)})
	secondJSON, _ := json.Marshal(second)

	current := ta.must(t, http.StatusOK, "GET", path, "")
	currentJSON, _ := json.Marshal(current.Object)
	meta, err := strategicpatch.NewPatchMetaFromStruct(&appsv1.Deployment{})
	if err != nil {
		t.Fatal(err)
	}
	patch, err := strategicpatch.CreateThreeWayMergePatch(
		[]byte(current.GetAnnotations()[lastApplied]), withAnnotation(second, secondJSON), currentJSON, meta, true)
	if err != nil {
		t.Fatal(err)
	}
	got := ta.must(t, http.StatusOK, "PATCH", path+"?fieldManager=kubectl-client-side-apply&fieldValidation=Strict", string(patch),
		"Content-Type", string(types.StrategicMergePatchType))

	if _, found, _ := unstructured.NestedFieldNoCopy(got.Object, "spec", "replicas"); found {
		t.Error("replicas, left out of the second apply, is still set")
	}
	containers, _, _ := unstructured.NestedSlice(got.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]interface{})
	if c["image"] != "nginx:1.21" || len(c["ports"].([]interface{})) != 2 {
		t.Errorf("container after the second apply = %v", c)
	}
	if got.GetAnnotations()[lastApplied] != string(secondJSON) {
		t.Errorf("last-applied = %s, want %s", got.GetAnnotations()[lastApplied], secondJSON)
	}
	if got.GetLabels()["clusternet-app"] != "multi-cluster-nginx" {
		t.Errorf("labels = %v", got.GetLabels())
	}
}

func TestUpdateAndOptimisticConcurrency(t *testing.T) {
	ta := newTestAPI(t)
	path := prefix + "/namespaces/foo/deployments/my-nginx"
	created := ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments", deployment)

	unchanged, _ := json.Marshal(created.Object)
	same := ta.must(t, http.StatusOK, "PUT", path, string(unchanged))
	if same.GetResourceVersion() != created.GetResourceVersion() {
		t.Errorf("an update that changes nothing moved resourceVersion %s to %s", created.GetResourceVersion(), same.GetResourceVersion())
	}

	changed := created.DeepCopy()
	_ = unstructured.SetNestedField(changed.Object, int64(3), "spec", "replicas")
	body, _ := json.Marshal(changed.Object)
	updated := ta.must(t, http.StatusOK, "PUT", path, string(body))
	if r, _, _ := unstructured.NestedInt64(updated.Object, "spec", "replicas"); r != 3 || updated.GetResourceVersion() == created.GetResourceVersion() {
		t.Errorf("updated = replicas %d rv %s", r, updated.GetResourceVersion())
	}

	// The same body again carries the stale resourceVersion.
	_ = unstructured.SetNestedField(changed.Object, int64(4), "spec", "replicas")
	body, _ = json.Marshal(changed.Object)
	resp := ta.do(t, "PUT", path, string(body))
	if resp.code != http.StatusConflict {
		t.Fatalf("update with a stale resourceVersion = %d, want 409: %s", resp.code, resp.body)
	}
	want := `Operation cannot be fulfilled on deployments.apps "my-nginx": ` + optimisticLockMsg
	if st := resp.status(t); st.Reason != metav1.StatusReasonConflict || st.Message != want {
		t.Errorf("conflict = %s %q, want %q", st.Reason, st.Message, want)
	}

	// Without a resourceVersion, an update applies to the latest.
	unstructured.RemoveNestedField(changed.Object, "metadata", "resourceVersion")
	body, _ = json.Marshal(changed.Object)
	ta.must(t, http.StatusOK, "PUT", path, string(body))

	// A patch naming a stale resourceVersion is refused too.
	stale := fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"spec":{"replicas":9}}`, created.GetResourceVersion())
	if resp := ta.do(t, "PATCH", path, stale, "Content-Type", "application/merge-patch+json"); resp.code != http.StatusConflict {
		t.Errorf("patch with a stale resourceVersion = %d, want 409: %s", resp.code, resp.body)
	}
	if resp := ta.do(t, "PUT", prefix+"/namespaces/foo/deployments/other", strings.Replace(string(body), "my-nginx", "other", 1)); resp.code != http.StatusNotFound {
		t.Errorf("update of a missing template = %d, want 404 (no create on update): %s", resp.code, resp.body)
	}
}

func TestDryRunPersistsNothing(t *testing.T) {
	ta := newTestAPI(t)
	path := prefix + "/namespaces/foo/deployments/my-nginx"
	dry := ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments?dryRun=All", deployment)
	if dry.GetName() != "my-nginx" || ta.storedManifest(t, "apps", "Deployment", "foo", "my-nginx") != nil {
		t.Fatalf("dry-run create stored a Manifest or answered %v", dry.Object)
	}
	if len(ta.validator.calls) != 1 {
		t.Errorf("dry-run create validated %d times, want 1", len(ta.validator.calls))
	}
	created := ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments", deployment)
	if resp := ta.do(t, "POST", prefix+"/namespaces/foo/deployments?dryRun=All", deployment); resp.code != http.StatusConflict {
		t.Errorf("dry-run create of an existing template = %d, want 409 AlreadyExists", resp.code)
	}

	patched := ta.must(t, http.StatusOK, "PATCH", path+"?dryRun=All", `{"spec":{"replicas":7}}`, "Content-Type", "application/merge-patch+json")
	if r, _, _ := unstructured.NestedInt64(patched.Object, "spec", "replicas"); r != 7 {
		t.Errorf("dry-run patch answered replicas %d, want 7", r)
	}
	changed := created.DeepCopy()
	_ = unstructured.SetNestedField(changed.Object, int64(8), "spec", "replicas")
	body, _ := json.Marshal(changed.Object)
	ta.must(t, http.StatusOK, "PUT", path+"?dryRun=All", string(body))
	ta.must(t, http.StatusOK, "DELETE", path+"?dryRun=All", "")

	got := ta.must(t, http.StatusOK, "GET", path, "")
	if r, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas"); r != 2 || got.GetResourceVersion() != created.GetResourceVersion() {
		t.Errorf("after dry runs: replicas %d rv %s, want 2 and %s", r, got.GetResourceVersion(), created.GetResourceVersion())
	}
}

func TestDeleteAndDeleteCollection(t *testing.T) {
	ta := newTestAPI(t)
	for _, name := range []string{"a", "b", "c"} {
		labels := map[string]string{"tier": "web"}
		if name == "c" {
			labels["tier"] = "db"
		}
		ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments", deploymentNamed(name, labels))
	}
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/bar/deployments", deploymentNamed("a", map[string]string{"tier": "web"}))

	deleted := ta.must(t, http.StatusOK, "DELETE", prefix+"/namespaces/foo/deployments/a", `{"propagationPolicy":"Background"}`)
	if deleted.GetName() != "a" || deleted.GetUID() == "" {
		t.Errorf("delete answered %v", deleted.Object)
	}
	if resp := ta.do(t, "GET", prefix+"/namespaces/foo/deployments/a", ""); resp.code != http.StatusNotFound {
		t.Errorf("GET after delete = %d", resp.code)
	}
	stale := `{"preconditions":{"uid":"not-the-uid"}}`
	if resp := ta.do(t, "DELETE", prefix+"/namespaces/foo/deployments/b", stale); resp.code != http.StatusConflict {
		t.Errorf("delete with a wrong uid precondition = %d, want 409: %s", resp.code, resp.body)
	}

	list := ta.must(t, http.StatusOK, "DELETE", prefix+"/namespaces/foo/deployments?labelSelector=tier%3Dweb", "")
	items, _ := list.Object["items"].([]interface{})
	if len(items) != 1 {
		t.Errorf("deletecollection deleted %d templates, want 1 (b): %v", len(items), list.Object)
	}
	remaining := itemNames(t, ta.must(t, http.StatusOK, "GET", prefix+"/deployments", ""))
	if diff := cmp.Diff([]string{"bar/a", "foo/c"}, remaining); diff != "" {
		t.Errorf("remaining templates (-want +got):\n%s", diff)
	}
}

func itemNames(t *testing.T, list *unstructured.Unstructured) []string {
	t.Helper()
	var out []string
	items, _ := list.Object["items"].([]interface{})
	for _, i := range items {
		meta := i.(map[string]interface{})["metadata"].(map[string]interface{})
		ns, _ := meta["namespace"].(string)
		out = append(out, strings.TrimPrefix(ns+"/"+meta["name"].(string), "/"))
	}
	return out
}

func TestListSelectors(t *testing.T) {
	ta := newTestAPI(t)
	for _, ns := range []string{"foo", "bar"} {
		ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/"+ns+"/deployments", deploymentNamed("web", map[string]string{"tier": "web"}))
		ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/"+ns+"/deployments", deploymentNamed("db", map[string]string{"tier": "db"}))
	}
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces", namespaceFoo)
	for _, tc := range []struct {
		path string
		want []string
	}{
		{prefix + "/deployments", []string{"bar/db", "bar/web", "foo/db", "foo/web"}},
		{prefix + "/namespaces/foo/deployments", []string{"foo/db", "foo/web"}},
		{prefix + "/deployments?labelSelector=tier%3Dweb", []string{"bar/web", "foo/web"}},
		{prefix + "/deployments?labelSelector=tier%21%3Dweb", []string{"bar/db", "foo/db"}},
		{prefix + "/deployments?fieldSelector=metadata.name%3Dweb", []string{"bar/web", "foo/web"}},
		{prefix + "/deployments?fieldSelector=metadata.namespace%3Dbar", []string{"bar/db", "bar/web"}},
		{prefix + "/namespaces/foo/deployments?fieldSelector=metadata.name%3Ddb", []string{"foo/db"}},
		{prefix + "/deployments?fieldSelector=metadata.name%21%3Dweb,metadata.namespace%3Dfoo", []string{"foo/db"}},
		{prefix + "/namespaces", []string{"foo"}},
		{prefix + "/namespaces?fieldSelector=metadata.name%3Dfoo", []string{"foo"}},
		{prefix + "/configmaps", nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			list := ta.must(t, http.StatusOK, "GET", tc.path, "")
			if diff := cmp.Diff(tc.want, itemNames(t, list)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	list := ta.must(t, http.StatusOK, "GET", prefix+"/namespaces/foo/deployments", "")
	if list.GetKind() != "DeploymentList" || list.GetAPIVersion() != "apps/v1" || list.GetResourceVersion() == "" {
		t.Errorf("list is %s %s rv %q, want apps/v1 DeploymentList with a resourceVersion", list.GetAPIVersion(), list.GetKind(), list.GetResourceVersion())
	}
}

func TestWatch(t *testing.T) {
	ta := newTestAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ta.server.URL+prefix+"/namespaces/foo/deployments?watch=1&fieldSelector=metadata.name%3Dweb", nil)
	resp, err := ta.server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("watch = %d: %s", resp.StatusCode, b)
	}
	events := bufio.NewScanner(resp.Body)
	next := func() (string, *unstructured.Unstructured) {
		t.Helper()
		if !events.Scan() {
			t.Fatalf("watch ended: %v", events.Err())
		}
		var ev struct {
			Type   string
			Object map[string]interface{}
		}
		if err := json.Unmarshal(events.Bytes(), &ev); err != nil {
			t.Fatalf("%v: %s", err, events.Bytes())
		}
		return ev.Type, &unstructured.Unstructured{Object: ev.Object}
	}

	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments", deploymentNamed("other", nil))
	created := ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments", deploymentNamed("web", nil))
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/bar/deployments", deploymentNamed("web", nil))
	patched := ta.must(t, http.StatusOK, "PATCH", prefix+"/namespaces/foo/deployments/web", `{"spec":{"replicas":4}}`, "Content-Type", "application/merge-patch+json")
	ta.must(t, http.StatusOK, "DELETE", prefix+"/namespaces/foo/deployments/web", "")

	var got []string
	for _, want := range []*unstructured.Unstructured{created, patched, patched} {
		typ, obj := next()
		got = append(got, fmt.Sprintf("%s %s/%s", typ, obj.GetNamespace(), obj.GetName()))
		if obj.GetKind() != "Deployment" || obj.GetResourceVersion() < want.GetResourceVersion() {
			t.Errorf("%s event object %s rv %s, want a Deployment at rv >= %s", typ, obj.GetKind(), obj.GetResourceVersion(), want.GetResourceVersion())
		}
	}
	if diff := cmp.Diff([]string{"ADDED foo/web", "MODIFIED foo/web", "DELETED foo/web"}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestScaleSubresource(t *testing.T) {
	ta := newTestAPI(t)
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments", deployment)
	path := prefix + "/namespaces/foo/deployments/my-nginx/scale"

	scale := ta.must(t, http.StatusOK, "GET", path, "")
	want := map[string]interface{}{"replicas": int64(2)}
	if scale.GetAPIVersion() != "autoscaling/v1" || scale.GetKind() != "Scale" {
		t.Errorf("scale is %s %s", scale.GetAPIVersion(), scale.GetKind())
	}
	spec, _, _ := unstructured.NestedMap(scale.Object, "spec")
	if diff := cmp.Diff(want, normalizeInts(spec)); diff != "" {
		t.Errorf("scale spec (-want +got):\n%s", diff)
	}
	if sel, _, _ := unstructured.NestedString(scale.Object, "status", "selector"); sel != "app=nginx" {
		t.Errorf("scale selector = %q, want app=nginx", sel)
	}

	_ = unstructured.SetNestedField(scale.Object, int64(5), "spec", "replicas")
	body, _ := json.Marshal(scale.Object)
	updated := ta.must(t, http.StatusOK, "PUT", path, string(body))
	if r, _, _ := unstructured.NestedInt64(updated.Object, "spec", "replicas"); r != 5 {
		t.Errorf("scale after update = %d", r)
	}
	// kubectl scale sends a merge patch.
	ta.must(t, http.StatusOK, "PATCH", path, `{"spec":{"replicas":3}}`, "Content-Type", "application/merge-patch+json")
	tmpl := ta.must(t, http.StatusOK, "GET", prefix+"/namespaces/foo/deployments/my-nginx", "")
	if r, _, _ := unstructured.NestedInt64(tmpl.Object, "spec", "replicas"); r != 3 {
		t.Errorf("template replicas after scaling = %d, want 3", r)
	}
	if resp := ta.do(t, "PUT", path, string(body)); resp.code != http.StatusConflict {
		t.Errorf("scale update with a stale resourceVersion = %d, want 409", resp.code)
	}
	if resp := ta.do(t, "PATCH", path, `{"spec":{"replicas":-1}}`, "Content-Type", "application/merge-patch+json"); resp.code != http.StatusUnprocessableEntity {
		t.Errorf("scale to -1 = %d, want 422: %s", resp.code, resp.body)
	}
	if resp := ta.do(t, "PATCH", path+"?fieldValidation=Strict", `{"spec":{"size":3}}`, "Content-Type", "application/merge-patch+json"); resp.code != http.StatusBadRequest {
		t.Errorf("strict patch of an unknown Scale field = %d, want 400: %s", resp.code, resp.body)
	}
	if resp := ta.do(t, "PATCH", path, `{"spec":{"size":3}}`, "Content-Type", "application/merge-patch+json"); resp.code != http.StatusOK ||
		!strings.Contains(resp.header.Get("Warning"), "unknown field") || !strings.Contains(resp.header.Get("Warning"), "spec.size") {
		t.Errorf("patch of an unknown Scale field = %d with warning %q, want 200 and a warning", resp.code, resp.header.Get("Warning"))
	}
	if resp := ta.do(t, "GET", prefix+"/namespaces/foo/configmaps/x/scale", ""); resp.code != http.StatusNotFound {
		t.Errorf("scale of a kind without one = %d, want 404", resp.code)
	}

	// A CRD's scale follows its specReplicasPath.
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/widgets", `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":1}}`)
	ta.must(t, http.StatusOK, "PATCH", prefix+"/namespaces/foo/widgets/w/scale", `{"spec":{"replicas":4}}`, "Content-Type", "application/merge-patch+json")
	w := ta.must(t, http.StatusOK, "GET", prefix+"/namespaces/foo/widgets/w", "")
	if size, _, _ := unstructured.NestedInt64(w.Object, "spec", "size"); size != 4 {
		t.Errorf("widget size after scaling = %d, want 4", size)
	}
}

func normalizeInts(m map[string]interface{}) map[string]interface{} {
	for k, v := range m {
		if f, ok := v.(float64); ok {
			m[k] = int64(f)
		}
	}
	return m
}

func TestTemplatesKeepTheirVersion(t *testing.T) {
	ta := newTestAPI(t)
	v1 := `{"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"h"},
		"spec":{"scaleTargetRef":{"kind":"Deployment","name":"d"},"maxReplicas":3}}`
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/horizontalpodautoscalers", v1)
	got := ta.must(t, http.StatusOK, "GET", prefix+"/namespaces/foo/horizontalpodautoscalers/h", "")
	if got.GetAPIVersion() != "autoscaling/v1" {
		t.Errorf("template written in autoscaling/v1 reads as %s", got.GetAPIVersion())
	}
	if m := ta.storedManifest(t, "autoscaling", "HorizontalPodAutoscaler", "foo", "h"); m.Labels[appsv1alpha1.LabelConfigVersion] != "v1" {
		t.Errorf("version label = %q", m.Labels[appsv1alpha1.LabelConfigVersion])
	}
	ta.must(t, http.StatusOK, "PATCH", prefix+"/namespaces/foo/horizontalpodautoscalers/h", `{"spec":{"maxReplicas":5}}`,
		"Content-Type", "application/strategic-merge-patch+json")
	bad := strings.Replace(v1, "autoscaling/v1", "autoscaling/v9", 1)
	if resp := ta.do(t, "POST", prefix+"/namespaces/foo/horizontalpodautoscalers", bad); resp.code != http.StatusBadRequest {
		t.Errorf("a version the parent does not serve = %d, want 400: %s", resp.code, resp.body)
	}
}

func TestProtobufBodiesOfBuiltInKinds(t *testing.T) {
	ta := newTestAPI(t)
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"k": "v"}}
	var body bytes.Buffer
	if err := protobuf.NewSerializer(builtIn, builtIn).Encode(cm, &body); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, ta.server.URL+prefix+"/namespaces/foo/configmaps", &body)
	req.Header.Set("Content-Type", "application/vnd.kubernetes.protobuf")
	req.Header.Set("Accept", "application/vnd.kubernetes.protobuf, application/json")
	resp, err := ta.server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Content-Type") != jsonType {
		t.Fatalf("protobuf create = %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	m := ta.storedManifest(t, "", "ConfigMap", "foo", "settings")
	want := `{"apiVersion":"v1","data":{"k":"v"},"kind":"ConfigMap","metadata":{"name":"settings","namespace":"foo"}}`
	if m == nil || string(m.Template.Raw) != want {
		t.Errorf("stored template = %s, want %s", m.Template.Raw, want)
	}
}

func TestRealKindAuthorization(t *testing.T) {
	var seen []authorizer.Attributes
	ta := newTestAPI(t, withRealKind(authorizerFunc(func(a authorizer.Attributes) authorizer.Decision {
		seen = append(seen, a)
		if a.GetResource() == "secrets" {
			return authorizer.DecisionNoOpinion
		}
		return authorizer.DecisionAllow
	})))
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/configmaps", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`)
	resp := ta.do(t, "POST", prefix+"/namespaces/foo/secrets", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}`)
	if resp.code != http.StatusForbidden {
		t.Fatalf("create of a Secret template without Secret permission = %d: %s", resp.code, resp.body)
	}
	want := `secrets "s" is forbidden: a template needs the permission its real object needs: user "alice" cannot create secrets ` +
		`in namespace "foo" in the parent; ask for that permission (or run the hub with --shadow-authorize-real-kind=false)`
	if st := resp.status(t); st.Message != want {
		t.Errorf("message = %q\nwant %q", st.Message, want)
	}
	if resp := ta.do(t, "GET", prefix+"/secrets", ""); resp.code != http.StatusForbidden {
		t.Errorf("list of Secret templates = %d, want 403", resp.code)
	}
	got := seen[0]
	if got.GetVerb() != "create" || got.GetAPIGroup() != "" || got.GetResource() != "configmaps" || got.GetNamespace() != "foo" || got.GetUser().GetName() != "alice" {
		t.Errorf("first check = %s %s/%s in %q as %s", got.GetVerb(), got.GetAPIGroup(), got.GetResource(), got.GetNamespace(), got.GetUser().GetName())
	}
}

func TestDiscovery(t *testing.T) {
	ta := newTestAPI(t)
	group := ta.must(t, http.StatusOK, "GET", "/apis/shadow", "")
	if pv, _, _ := unstructured.NestedString(group.Object, "preferredVersion", "groupVersion"); group.GetKind() != "APIGroup" || pv != "shadow/v1alpha1" {
		t.Errorf("/apis/shadow = %v", group.Object)
	}

	resp := ta.do(t, "GET", prefix, "")
	if resp.code != http.StatusOK {
		t.Fatalf("GET %s = %d", prefix, resp.code)
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(resp.body, &list); err != nil {
		t.Fatal(err)
	}
	byName := map[string]metav1.APIResource{}
	for _, r := range list.APIResources {
		byName[r.Name] = r
	}
	wantDeployments := metav1.APIResource{Name: "deployments", SingularName: "deployment", Namespaced: true, Group: "apps", Version: "v1",
		Kind: "Deployment", Verbs: advertisedVerbs}
	if diff := cmp.Diff(wantDeployments, byName["deployments"]); diff != "" {
		t.Errorf("deployments (-want +got):\n%s", diff)
	}
	if s := byName["deployments/scale"]; s.Kind != "Scale" || s.Group != "autoscaling" {
		t.Errorf("deployments/scale = %+v", s)
	}
	if e := byName["events"]; e.Group != "" {
		t.Errorf("events served from group %q, want the core group (listed first)", e.Group)
	}
	if h := byName["horizontalpodautoscalers"]; h.Version != "v2" {
		t.Errorf("hpa served at %q, want the preferred v2", h.Version)
	}
	for _, absent := range []string{"manifests", "tokenreviews", "componentstatuses", "deployments/status", "namespaces/status"} {
		if _, ok := byName[absent]; ok {
			t.Errorf("%s is served; it should not be", absent)
		}
	}

	// The aggregator's request: gzipped, with an ETag it sends back.
	resp = ta.do(t, "GET", prefix, "", "Accept-Encoding", "gzip", "Accept", "application/json")
	if resp.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("not gzipped: %v", resp.header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(resp.body))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	var again metav1.APIResourceList
	if err := json.Unmarshal(unzipped, &again); err != nil || len(again.APIResources) != len(list.APIResources) {
		t.Errorf("gzipped discovery: %v, %d resources", err, len(again.APIResources))
	}
	if resp := ta.do(t, "GET", prefix, "", "If-None-Match", resp.header.Get("ETag")); resp.code != http.StatusNotModified {
		t.Errorf("GET with the ETag = %d, want 304", resp.code)
	}
	if yaml := ta.do(t, "GET", prefix, "", "Accept", "application/yaml"); yaml.code != http.StatusOK || !strings.Contains(string(yaml.body), "groupVersion: shadow/v1alpha1") {
		t.Errorf("YAML discovery = %d: %.200s", yaml.code, yaml.body)
	}
}

func TestNotReadyUntilDiscovered(t *testing.T) {
	ta := newTestAPI(t)
	ta.snapshot.Store(nil)
	for _, path := range []string{prefix, prefix + "/namespaces/foo/deployments"} {
		if resp := ta.do(t, "GET", path, ""); resp.code != http.StatusServiceUnavailable {
			t.Errorf("GET %s before discovery = %d, want 503", path, resp.code)
		}
	}
}

func TestFinalizedManifestShowsDeletion(t *testing.T) {
	ta := newTestAPI(t)
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/configmaps", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`)
	m := ta.storedManifest(t, "", "ConfigMap", "foo", "c")
	m.Finalizers = []string{appsv1alpha1.Finalizer}
	if _, err := ta.manifests.AppsV1alpha1().Manifests(m.Namespace).Update(context.Background(), m, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Like a real object with finalizers: 200 with the object marked.
	deleted := ta.must(t, http.StatusOK, "DELETE", prefix+"/namespaces/foo/configmaps/c", "")
	got := ta.must(t, http.StatusOK, "GET", prefix+"/namespaces/foo/configmaps/c", "")
	if deleted.GetDeletionTimestamp() == nil || got.GetDeletionTimestamp() == nil {
		t.Error("the template does not show its deletion")
	}
}
