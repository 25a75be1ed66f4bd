package shadow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
)

type recordedWarnings []string

func (w *recordedWarnings) AddWarning(_, text string) { *w = append(*w, text) }

// fakeAuthors hands out one fake dynamic client and records whom each
// client was asked to act as.
type fakeAuthors struct {
	client *dynamicfake.FakeDynamicClient
	users  []user.Info
}

func (f *fakeAuthors) forUser(u user.Info) (dynamic.Interface, error) {
	f.users = append(f.users, u)
	return f.client, nil
}

// dryRunAnswers answers the fake parent's dry runs by namespace; a
// namespace not listed validates.
type dryRunAnswers map[string]error

var (
	deploymentsGR = schema.GroupResource{Group: "apps", Resource: "deployments"}
	alice         = &user.DefaultInfo{Name: "alice", UID: "a-1", Groups: []string{"team-a-editors", "system:authenticated"},
		Extra: map[string][]string{"scopes": {"x"}}}
)

// parentWithPodsAndRBAC is testParent with the kinds the attacks use.
func parentWithPodsAndRBAC() discovered {
	d := testParent()
	core := schema.GroupVersion{Version: "v1"}
	d.resources[core] = append(d.resources[core], apiResource("pods", "Pod", true, "po"))
	rbac := schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}
	d.groups = append(d.groups, metav1.APIGroup{Name: rbac.Group,
		Versions:         []metav1.GroupVersionForDiscovery{{GroupVersion: rbac.String(), Version: rbac.Version}},
		PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: rbac.String(), Version: rbac.Version}})
	d.resources[rbac] = []metav1.APIResource{apiResource("rolebindings", "RoleBinding", true)}
	return d
}

func TestDryRunValidator(t *testing.T) {
	resources := buildResources(parentWithPodsAndRBAC(), nil)
	invalid := func(namespace string) error {
		return apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "my-nginx", field.ErrorList{
			field.Invalid(field.NewPath("spec", "replicas"), -1, "must be greater than or equal to 0"),
			field.Invalid(field.NewPath("metadata", "namespace"), namespace, fmt.Sprintf("namespace %q is not allowed here", namespace)),
		})
	}
	missing := func(namespace string) error {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, namespace)
	}
	terminating := apierrors.NewForbidden(deploymentsGR, "my-nginx", errors.New("unable to create new content in namespace foo because it is being terminated"))
	terminating.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause, Field: "metadata.namespace"}}
	podSecurity := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "p",
		errors.New(`violates PodSecurity "restricted:latest": privileged (container "c" must not set securityContext.privileged=true)`))
	escalation := apierrors.NewForbidden(schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"}, "rb",
		errors.New(`user "alice" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held`))
	noImpersonation := apierrors.NewForbidden(schema.GroupResource{Resource: "users"}, "alice",
		errors.New(`User "hub" cannot impersonate resource "users" in API group "" at the cluster scope`))

	const deployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"my-nginx","namespace":"foo"}}`
	const pod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"team-a"}}`
	for _, tc := range []struct {
		name     string
		resource string
		object   string
		answers  dryRunAnswers
		// wantNS are the namespaces dry-run in, in order.
		wantNS   []string
		wantCode int32
		wantMsg  string
		wantErr  error
	}{
		{"valid namespaced template: dry run in its own namespace", "deployments", deployment, nil, []string{"foo"}, 0, "", nil},
		{"cluster-scoped template: no namespace", "namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"foo"}}`, nil, []string{""}, 0, "", nil},
		{"exists in the parent: it validated", "namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"}}`,
			dryRunAnswers{"": apierrors.NewAlreadyExists(schema.GroupResource{Resource: "namespaces"}, "default")}, []string{""}, 0, "", nil},
		{"own namespace missing in the parent: dry run in the reserved one", "deployments", deployment,
			dryRunAnswers{"foo": missing("foo")}, []string{"foo", "clusternet-reserved"}, 0, "", nil},
		{"own namespace being deleted: dry run in the reserved one", "deployments", deployment,
			dryRunAnswers{"foo": terminating}, []string{"foo", "clusternet-reserved"}, 0, "", nil},
		{"field errors in its own namespace: intact", "deployments", deployment, dryRunAnswers{"foo": invalid("foo")}, []string{"foo"},
			http.StatusUnprocessableEntity,
			`Deployment.apps "my-nginx" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, metadata.namespace: Invalid value: "foo": namespace "foo" is not allowed here]`, nil},
		{"field errors in the reserved namespace name the template's", "deployments", deployment,
			dryRunAnswers{"foo": missing("foo"), "clusternet-reserved": invalid("clusternet-reserved")}, []string{"foo", "clusternet-reserved"},
			http.StatusUnprocessableEntity,
			`Deployment.apps "my-nginx" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, metadata.namespace: Invalid value: "foo": namespace "foo" is not allowed here]`, nil},
		{"admission refuses: an error with its message, not a warning", "pods", pod, dryRunAnswers{"team-a": podSecurity}, []string{"team-a"},
			http.StatusForbidden, podSecurity.ErrStatus.Message, nil},
		{"RBAC escalation check refuses: an error with its message", "rolebindings",
			`{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"rb","namespace":"team-a"}}`,
			dryRunAnswers{"team-a": escalation}, []string{"team-a"}, http.StatusForbidden, escalation.ErrStatus.Message, nil},
		{"a quota refuses: an error", "services", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"foo"}}`,
			dryRunAnswers{"foo": apierrors.NewForbidden(schema.GroupResource{Resource: "services"}, "s", errors.New(`exceeded quota: q`))}, []string{"foo"},
			http.StatusForbidden, `services "s" is forbidden: exceeded quota: q`, nil},
		{"the hub may not impersonate: for an administrator", "deployments", deployment, dryRunAnswers{"foo": noImpersonation}, []string{"foo"},
			0, "", errHubCannotImpersonate},
		{"a webhook that cannot dry-run: refused", "deployments", deployment,
			dryRunAnswers{"foo": apierrors.NewBadRequest(`admission webhook "w.example.com" does not support dry run`)}, []string{"foo"},
			http.StatusBadRequest, `deployments.apps "my-nginx" cannot be validated: admission webhook "w.example.com" does not support dry run; ` +
				`templates are validated by a dry run as their author, so an administrator of the parent must make that webhook support dry runs (sideEffects: None or NoneOnDryRun)`, nil},
		{"strict field validation", "deployments", deployment,
			dryRunAnswers{"foo": apierrors.NewBadRequest(`strict decoding error: unknown field "spec.foo"`)}, []string{"foo"},
			http.StatusBadRequest, `strict decoding error: unknown field "spec.foo"`, nil},
		{"version not served", "deployments", deployment, dryRunAnswers{"foo": apierrors.NewNotFound(deploymentsGR, "")}, []string{"foo"},
			http.StatusBadRequest, "", nil},
		{"reserved namespace missing too", "deployments", deployment,
			dryRunAnswers{"foo": missing("foo"), "clusternet-reserved": missing("clusternet-reserved")}, []string{"foo", "clusternet-reserved"},
			0, "", errReservedNamespaceMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
			var got []clienttesting.CreateActionImpl
			client.PrependReactor("create", "*", func(action clienttesting.Action) (bool, runtime.Object, error) {
				create := action.(clienttesting.CreateActionImpl)
				got = append(got, create)
				if err := tc.answers[create.Namespace]; err != nil {
					return true, nil, err
				}
				return true, create.Object, nil
			})
			authors := &fakeAuthors{client: client}
			v := &dryRunValidator{authors: authors, namespace: "clusternet-reserved"}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON([]byte(tc.object)); err != nil {
				t.Fatal(err)
			}
			var warnings recordedWarnings
			ctx := request.WithUser(warning.WithWarningRecorder(context.Background(), &warnings), alice)
			err := v.validate(ctx, resources[tc.resource], u, metav1.FieldValidationStrict)

			var code int32
			var msg string
			var status apierrors.APIStatus
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("validate = %v, want %v", err, tc.wantErr)
				}
			case errors.As(err, &status):
				code, msg = status.Status().Code, status.Status().Message
			case err != nil:
				t.Fatalf("not an API error: %v", err)
			}
			if code != tc.wantCode || (tc.wantMsg != "" && msg != tc.wantMsg) {
				t.Errorf("validate = %d %q\nwant %d %q", code, msg, tc.wantCode, tc.wantMsg)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings = %q: a dry run's refusal is an error, never a warning", warnings)
			}
			var namespaces []string
			for _, c := range got {
				namespaces = append(namespaces, c.Namespace)
				if c.Object.(*unstructured.Unstructured).GetNamespace() != c.Namespace {
					t.Errorf("dry run in namespace %q of an object in %q", c.Namespace, c.Object.(*unstructured.Unstructured).GetNamespace())
				}
				if diff := cmp.Diff([]string{metav1.DryRunAll}, c.CreateOptions.DryRun); diff != "" || c.CreateOptions.FieldValidation != metav1.FieldValidationStrict {
					t.Errorf("options %+v: not a strict dry run", c.CreateOptions)
				}
			}
			if diff := cmp.Diff(tc.wantNS, namespaces); diff != "" {
				t.Errorf("dry-run namespaces (-want +got):\n%s", diff)
			}
			for _, who := range authors.users {
				if who != user.Info(alice) {
					t.Errorf("dry run as %+v, want the request's user %+v", who, alice)
				}
			}
			if len(authors.users) == 0 {
				t.Error("no dry run as the request's user")
			}
			if u.GetNamespace() == "clusternet-reserved" {
				t.Error("the template itself was moved to the dry-run namespace")
			}
		})
	}
}

func TestDryRunNeedsAnAuthor(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{
		{"no user on the request", context.Background()},
		{"a user without a name", request.WithUser(context.Background(), &user.DefaultInfo{Groups: []string{"system:masters"}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
			authors := &fakeAuthors{client: client}
			v := &dryRunValidator{authors: authors, namespace: "clusternet-reserved"}
			u := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]interface{}{"name": "c", "namespace": "foo"}}}
			err := v.validate(tc.ctx, buildResources(testParent(), nil)["configmaps"], u, "")
			if !apierrors.IsUnauthorized(err) || !strings.Contains(err.Error(), "templates are validated as their author") {
				t.Errorf("validate = %v, want Unauthorized naming the rule", err)
			}
			if len(authors.users) != 0 || len(client.Actions()) != 0 {
				t.Errorf("dry run sent (as %v, %d actions) without an author", authors.users, len(client.Actions()))
			}
		})
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
