package shadow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
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
	mname := r.manifestName("foo", "x")
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "apps.clusternet.io", Kind: "Manifest"}, mname,
		field.ErrorList{field.Invalid(field.NewPath("template", "metadata", "name"), "X", "must be lowercase")})
	status := func(code int32, reason metav1.StatusReason, msg string, causes ...string) error {
		st := metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg,
			Details: &metav1.StatusDetails{Name: mname, Group: manifests.Group, Kind: manifests.Resource}}
		for _, c := range causes {
			st.Details.Causes = append(st.Details.Causes, metav1.StatusCause{Message: c})
		}
		return &apierrors.StatusError{ErrStatus: st}
	}
	refused := `Internal error occurred: deployments.apps "x": the parent refused clusternet-hub access to the templates it keeps; ` +
		`an administrator of the parent finds why in the hub's log`
	for _, tc := range []struct {
		name       string
		err        error
		wantCode   int32
		wantMsg    string
		wantCauses []string
	}{
		{"not found", apierrors.NewNotFound(manifests, mname), http.StatusNotFound, `deployments.apps "x" not found`, nil},
		{"already exists", apierrors.NewAlreadyExists(manifests, mname), http.StatusConflict, `deployments.apps "x" already exists`, nil},
		{"conflict", apierrors.NewConflict(manifests, mname, errors.New("stale")), http.StatusConflict,
			`Operation cannot be fulfilled on deployments.apps "x": ` + optimisticLockMsg, nil},
		{"invalid", invalid, http.StatusUnprocessableEntity, `Deployment.apps "x" is invalid: metadata.name: Invalid value: "X": must be lowercase`,
			[]string{`Invalid value: "X": must be lowercase`}},
		{"forbidden: the hub's RBAC", apierrors.NewForbidden(manifests, mname, errors.New(`User "system:serviceaccount:clusternet-system:clusternet-hub" `+
			`cannot get resource "manifests" in API group "apps.clusternet.io" in the namespace "clusternet-reserved"`)),
			http.StatusInternalServerError, refused, []string{refused[len("Internal error occurred: "):]}},
		{"forbidden: the reserved namespace terminating", apierrors.NewForbidden(manifests, mname,
			errors.New("unable to create new content in namespace clusternet-reserved because it is being terminated")),
			http.StatusInternalServerError, refused, []string{refused[len("Internal error occurred: "):]}},
		{"other errors name the template", apierrors.NewServerTimeout(manifests, "get", 1), http.StatusInternalServerError,
			"The get operation against deployments.apps could not be completed at this time, please try again.", nil},
		{"the Manifest's quoted name becomes the template's", status(http.StatusGatewayTimeout, metav1.StatusReasonTimeout,
			fmt.Sprintf(`Timeout: request for manifests.apps.clusternet.io %q did not complete`, mname)),
			http.StatusGatewayTimeout, `Timeout: request for deployments.apps "x" did not complete`, nil},
		{"a message naming the reserved namespace is replaced", status(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			fmt.Sprintf(`manifests.apps.clusternet.io %q in namespace "clusternet-reserved": etcd leader changed`, mname), "clusternet-reserved is busy", "retry"),
			http.StatusServiceUnavailable, `deployments.apps "x": the parent answered ServiceUnavailable`, []string{"retry"}},
		{"a message naming the Manifest unquoted is replaced", status(http.StatusInternalServerError, "",
			"reading "+mname+" failed"), http.StatusInternalServerError, `deployments.apps "x": the parent answered Internal Server Error`, nil},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), http.StatusTooManyRequests, "slow down", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mapped := r.mapError(context.Background(), tc.err, "foo", "x")
			var status apierrors.APIStatus
			if !errors.As(mapped, &status) {
				t.Fatalf("not an API status: %v", mapped)
			}
			st := status.Status()
			if st.Code != tc.wantCode || st.Message != tc.wantMsg {
				t.Errorf("mapped to %d %q\nwant %d %q", st.Code, st.Message, tc.wantCode, tc.wantMsg)
			}
			var causes []string
			if st.Details != nil {
				for _, c := range st.Details.Causes {
					causes = append(causes, c.Message)
				}
			}
			if diff := cmp.Diff(tc.wantCauses, causes); diff != "" {
				t.Errorf("causes (-want +got):\n%s", diff)
			}
			assertNamesNoStorage(t, st, mname)
		})
	}
	if got := r.mapError(context.Background(), errors.New("plain"), "foo", "x"); got.Error() != "plain" {
		t.Errorf("a plain error became %v", got)
	}
}

// assertNamesNoStorage fails when a Status the client gets shows where
// templates are kept: a Manifest, its name, its group or the reserved
// namespace.
func assertNamesNoStorage(t *testing.T, st metav1.Status, manifestName string) {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, secret := range []string{appsv1alpha1.ReservedNamespace, appsv1alpha1.GroupName, "manifest", "Manifest", manifestName} {
		if secret != "" && strings.Contains(text, secret) {
			t.Errorf("the client's Status names %q: %s", secret, text)
		}
	}
}
