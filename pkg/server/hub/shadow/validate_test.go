package shadow

import (
	"context"
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
	"k8s.io/apiserver/pkg/warning"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
)

type recordedWarnings []string

func (w *recordedWarnings) AddWarning(_, text string) { *w = append(*w, text) }

func TestDryRunValidator(t *testing.T) {
	resources := buildResources(testParent(), nil)
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "my-nginx", field.ErrorList{
		field.Invalid(field.NewPath("spec", "replicas"), -1, "must be greater than or equal to 0"),
		field.Invalid(field.NewPath("metadata", "namespace"), "clusternet-reserved", `namespace "clusternet-reserved" is not allowed here`),
	})
	for _, tc := range []struct {
		name         string
		resource     string
		object       string
		parent       error
		wantCode     int32
		wantMsg      string
		wantWarnings int
		wantNS       string
	}{
		{"valid namespaced object: dry run in the reserved namespace", "deployments",
			`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"my-nginx","namespace":"foo"}}`, nil, 0, "", 0, "clusternet-reserved"},
		{"cluster-scoped object: no namespace", "namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"foo"}}`, nil, 0, "", 0, ""},
		{"exists in the parent: it validated", "namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"}}`,
			apierrors.NewAlreadyExists(schema.GroupResource{Resource: "namespaces"}, "default"), 0, "", 0, ""},
		{"field errors name the template's namespace", "deployments",
			`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"my-nginx","namespace":"foo"}}`, invalid, http.StatusUnprocessableEntity,
			`Deployment.apps "my-nginx" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, metadata.namespace: Invalid value: "foo": namespace "foo" is not allowed here]`,
			0, "clusternet-reserved"},
		{"admission in the dry-run namespace: a warning", "services", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"foo"}}`,
			apierrors.NewForbidden(schema.GroupResource{Resource: "services"}, "s", errors.New(`exceeded quota: q`)), 0, "", 1, "clusternet-reserved"},
		{"the hub lacks RBAC: an error", "services", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"foo"}}`,
			apierrors.NewForbidden(schema.GroupResource{Resource: "services"}, "", errors.New(`User "hub" cannot create resource "services"`)),
			http.StatusForbidden, "", 0, "clusternet-reserved"},
		{"strict field validation", "deployments", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","namespace":"foo"}}`,
			apierrors.NewBadRequest(`strict decoding error: unknown field "spec.foo"`), http.StatusBadRequest, `strict decoding error: unknown field "spec.foo"`, 0, "clusternet-reserved"},
		{"version not served", "deployments", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","namespace":"foo"}}`,
			apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "deployments"}, ""), http.StatusBadRequest, "", 0, "clusternet-reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
			var got clienttesting.CreateActionImpl
			client.PrependReactor("create", "*", func(action clienttesting.Action) (bool, runtime.Object, error) {
				got = action.(clienttesting.CreateActionImpl)
				if tc.parent != nil {
					return true, nil, tc.parent
				}
				return true, got.Object, nil
			})
			v := &dryRunValidator{client: client, namespace: "clusternet-reserved"}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON([]byte(tc.object)); err != nil {
				t.Fatal(err)
			}
			var warnings recordedWarnings
			ctx := warning.WithWarningRecorder(context.Background(), &warnings)
			err := v.validate(ctx, resources[tc.resource], u, metav1.FieldValidationStrict)

			var code int32
			var msg string
			var status apierrors.APIStatus
			if errors.As(err, &status) {
				code, msg = status.Status().Code, status.Status().Message
			} else if err != nil {
				t.Fatalf("not an API error: %v", err)
			}
			if code != tc.wantCode || (tc.wantMsg != "" && msg != tc.wantMsg) {
				t.Errorf("validate = %d %q\nwant %d %q", code, msg, tc.wantCode, tc.wantMsg)
			}
			if len(warnings) != tc.wantWarnings {
				t.Errorf("warnings = %q, want %d", warnings, tc.wantWarnings)
			}
			if got.Namespace != tc.wantNS || got.Object.(*unstructured.Unstructured).GetNamespace() != tc.wantNS {
				t.Errorf("dry run in namespace %q (object %q), want %q", got.Namespace, got.Object.(*unstructured.Unstructured).GetNamespace(), tc.wantNS)
			}
			if diff := cmp.Diff([]string{metav1.DryRunAll}, got.CreateOptions.DryRun); diff != "" || got.CreateOptions.FieldValidation != metav1.FieldValidationStrict {
				t.Errorf("options %+v: not a strict dry run", got.CreateOptions)
			}
			if u.GetNamespace() == "clusternet-reserved" {
				t.Error("the template itself was moved to the dry-run namespace")
			}
		})
	}
}

func TestDryRunReportsAMissingReservedNamespace(t *testing.T) {
	client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	client.PrependReactor("create", "*", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "clusternet-reserved")
	})
	v := &dryRunValidator{client: client, namespace: "clusternet-reserved"}
	u := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]interface{}{"name": "c"}}}
	if err := v.validate(context.Background(), buildResources(testParent(), nil)["configmaps"], u, ""); !errors.Is(err, errReservedNamespaceMissing) {
		t.Errorf("validate = %v, want errReservedNamespaceMissing", err)
	}
}

func TestAdjustForDryRun(t *testing.T) {
	services := buildResources(testParent(), nil)["services"]
	for _, tc := range []struct {
		name     string
		spec     map[string]interface{}
		wantSpec map[string]interface{}
	}{
		{"allocations dropped",
			map[string]interface{}{"clusterIP": "10.0.0.9", "clusterIPs": []interface{}{"10.0.0.9"}, "ipFamilies": []interface{}{"IPv6"},
				"ipFamilyPolicy": "SingleStack", "healthCheckNodePort": int64(30001), "type": "NodePort",
				"ports": []interface{}{map[string]interface{}{"port": int64(80), "nodePort": int64(30080)}}},
			map[string]interface{}{"type": "NodePort", "ports": []interface{}{map[string]interface{}{"port": int64(80)}}}},
		{"headless kept",
			map[string]interface{}{"clusterIP": "None", "clusterIPs": []interface{}{"None"}},
			map[string]interface{}{"clusterIP": "None", "clusterIPs": []interface{}{"None"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "v1", "kind": "Service", "spec": tc.spec}}
			adjustForDryRun(services, u)
			if diff := cmp.Diff(tc.wantSpec, u.Object["spec"]); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}
