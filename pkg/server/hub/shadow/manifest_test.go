package shadow

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// deploymentResource is apps/v1 deployments as discovery describes it.
func deploymentResource() *resource {
	return buildResources(testParent(), nil)["deployments"]
}

func TestCleanTemplate(t *testing.T) {
	obj := func(status bool) map[string]interface{} {
		o := map[string]interface{}{
			"apiVersion": "v1", "kind": "X",
			"metadata": map[string]interface{}{
				"name": "x", "namespace": "foo", "labels": map[string]interface{}{"a": "b"},
				"annotations": map[string]interface{}{"kubectl.kubernetes.io/last-applied-configuration": "{}"},
				"finalizers":  []interface{}{"f"}, "generateName": "x-",
				"uid": "u", "resourceVersion": "1", "creationTimestamp": "2021-08-07T08:50:56Z", "generation": int64(3),
				"managedFields": []interface{}{}, "selfLink": "/x", "deletionTimestamp": "2021-08-07T08:50:56Z", "deletionGracePeriodSeconds": int64(0),
			},
			"spec": map[string]interface{}{"k": "v"},
		}
		if status {
			o["status"] = map[string]interface{}{"phase": "Active"}
		}
		return o
	}
	kept := map[string]interface{}{
		"name": "x", "namespace": "foo", "labels": map[string]interface{}{"a": "b"},
		"annotations": map[string]interface{}{"kubectl.kubernetes.io/last-applied-configuration": "{}"},
		"finalizers":  []interface{}{"f"}, "generateName": "x-",
	}
	for _, tc := range []struct {
		name       string
		hasStatus  bool
		wantStatus bool
	}{
		{"status subresource: status dropped", true, false},
		{"no status subresource: status is data", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: obj(true)}
			(&resource{hasStatus: tc.hasStatus}).cleanTemplate(u)
			if diff := cmp.Diff(kept, u.Object["metadata"]); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
			if _, got := u.Object["status"]; got != tc.wantStatus {
				t.Errorf("status kept = %v, want %v", got, tc.wantStatus)
			}
		})
	}
}

func TestManifestRoundTrip(t *testing.T) {
	r := deploymentResource()
	u := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]interface{}{"name": "my-nginx", "namespace": "foo",
			"labels": map[string]interface{}{"app": "nginx", appsv1alpha1.LabelConfigKind: "Spoof"}},
		"spec": map[string]interface{}{"replicas": int64(2)},
	}}
	m := &appsv1alpha1.Manifest{}
	if err := r.fillManifest(m, u); err != nil {
		t.Fatal(err)
	}
	if m.Name != appsv1alpha1.ManifestName("apps", "Deployment", "foo", "my-nginx") || m.Namespace != appsv1alpha1.ReservedNamespace {
		t.Errorf("Manifest %s/%s", m.Namespace, m.Name)
	}
	wantLabels := map[string]string{
		"app": "nginx", appsv1alpha1.LabelConfigGroup: "apps", appsv1alpha1.LabelConfigVersion: "v1",
		appsv1alpha1.LabelConfigKind: "Deployment", appsv1alpha1.LabelConfigNamespace: "foo",
	}
	if diff := cmp.Diff(wantLabels, m.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}

	m.UID, m.ResourceVersion, m.Generation = "uid-1", "42", 3
	m.CreationTimestamp = metav1.Unix(1628326256, 0)
	got, err := objectFrom(m)
	if err != nil {
		t.Fatal(err)
	}
	want := u.DeepCopy()
	want.SetUID("uid-1")
	want.SetResourceVersion("42")
	want.SetGeneration(3)
	want.SetCreationTimestamp(metav1.Unix(1628326256, 0))
	if diff := cmp.Diff(want.Object, got.Object); diff != "" {
		t.Errorf("template read back (-want +got):\n%s", diff)
	}

	for _, bad := range []runtime.RawExtension{{Raw: []byte(`not json`)}, {Raw: []byte(`{"metadata":{"name":"x"}}`)}} {
		if _, err := objectFrom(&appsv1alpha1.Manifest{Template: bad}); err == nil {
			t.Errorf("objectFrom(%s) accepted a broken template", bad.Raw)
		}
	}
}

func TestMapError(t *testing.T) {
	r := deploymentResource()
	manifests := appsv1alpha1.Resource("manifests")
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "apps.clusternet.io", Kind: "Manifest"}, "deployment-foo-x-123",
		field.ErrorList{field.Invalid(field.NewPath("template", "metadata", "name"), "X", "must be lowercase")})
	for _, tc := range []struct {
		name     string
		err      error
		wantCode int32
		wantMsg  string
	}{
		{"not found", apierrors.NewNotFound(manifests, "deployment-foo-x-123"), http.StatusNotFound, `deployments.apps "x" not found`},
		{"already exists", apierrors.NewAlreadyExists(manifests, "deployment-foo-x-123"), http.StatusConflict, `deployments.apps "x" already exists`},
		{"conflict", apierrors.NewConflict(manifests, "deployment-foo-x-123", errors.New("stale")), http.StatusConflict,
			`Operation cannot be fulfilled on deployments.apps "x": ` + optimisticLockMsg},
		{"invalid", invalid, http.StatusUnprocessableEntity, `Deployment.apps "x" is invalid: metadata.name: Invalid value: "X": must be lowercase`},
		{"forbidden", apierrors.NewForbidden(manifests, "m", errors.New("no")), http.StatusInternalServerError, ""},
		{"other errors name the template", apierrors.NewServerTimeout(manifests, "get", 1), http.StatusInternalServerError,
			"The get operation against deployments.apps could not be completed at this time, please try again."},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), http.StatusTooManyRequests, "slow down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var status apierrors.APIStatus
			if !errors.As(r.mapError(tc.err, "x"), &status) {
				t.Fatalf("not an API status: %v", r.mapError(tc.err, "x"))
			}
			st := status.Status()
			if st.Code != tc.wantCode || (tc.wantMsg != "" && st.Message != tc.wantMsg) {
				t.Errorf("mapped to %d %q, want %d %q", st.Code, st.Message, tc.wantCode, tc.wantMsg)
			}
		})
	}
	if got := r.mapError(errors.New("plain"), "x"); got.Error() != "plain" {
		t.Errorf("a plain error became %v", got)
	}
}
