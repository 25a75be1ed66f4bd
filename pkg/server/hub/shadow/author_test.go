package shadow

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// TestEveryWriteValidatesAsTheRequester: alice stores a template, then
// mallory writes by each route that changes a template; each write must be
// validated as mallory, the user of that request, not as whoever wrote the
// template before.
func TestEveryWriteValidatesAsTheRequester(t *testing.T) {
	const path = prefix + "/namespaces/foo/deployments/my-nginx"
	scaled := `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"my-nginx","namespace":"foo"},"spec":{"replicas":9}}`
	for _, tc := range []struct {
		name, method, path, body, contentType string
	}{
		{"create", "POST", prefix + "/namespaces/foo/deployments", deploymentNamed("other", map[string]string{"app": "x"}), jsonType},
		{"dry-run create", "POST", prefix + "/namespaces/foo/deployments?dryRun=All", deploymentNamed("other", nil), jsonType},
		{"update", "PUT", path, deploymentNamed("my-nginx", map[string]string{"changed": "yes"}), jsonType},
		{"merge patch", "PATCH", path, `{"spec":{"replicas":9}}`, "application/merge-patch+json"},
		{"json patch", "PATCH", path, `[{"op":"replace","path":"/spec/replicas","value":9}]`, "application/json-patch+json"},
		{"strategic merge patch", "PATCH", path, `{"spec":{"replicas":9}}`, "application/strategic-merge-patch+json"},
		{"scale update", "PUT", path + "/scale", scaled, jsonType},
		{"scale patch", "PATCH", path + "/scale", `{"spec":{"replicas":9}}`, "application/merge-patch+json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAPI(t)
			ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments", deployment)

			resp := ta.do(t, tc.method, tc.path, tc.body, "Content-Type", tc.contentType, "X-Test-User", "mallory")
			if resp.code >= 300 {
				t.Fatalf("%s by mallory = %d: %s", tc.name, resp.code, resp.body)
			}
			if diff := cmp.Diff([]string{"alice", "mallory"}, ta.validator.authors); diff != "" {
				t.Errorf("validated as (-want +got):\n%s", diff)
			}

		})
	}
}

// TestARefusedWriteStoresNothing: when the dry run as the requester is
// refused, the parent's status reaches the client unchanged and the
// template stays as it was.
func TestARefusedWriteStoresNothing(t *testing.T) {
	const path = prefix + "/namespaces/foo/deployments/my-nginx"
	refusal := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "my-nginx",
		errors.New(`violates PodSecurity "restricted:latest": privileged (container "c" must not set securityContext.privileged=true)`))
	for _, tc := range []struct {
		name, method, path, body, contentType string
	}{
		{"create", "POST", prefix + "/namespaces/foo/deployments", deploymentNamed("other", nil), jsonType},
		{"update", "PUT", path, deploymentNamed("my-nginx", map[string]string{"changed": "yes"}), jsonType},
		{"merge patch", "PATCH", path, `{"spec":{"replicas":9}}`, "application/merge-patch+json"},
		{"json patch", "PATCH", path, `[{"op":"replace","path":"/spec/replicas","value":9}]`, "application/json-patch+json"},
		{"strategic merge patch", "PATCH", path, `{"spec":{"replicas":9}}`, "application/strategic-merge-patch+json"},
		{"scale patch", "PATCH", path + "/scale", `{"spec":{"replicas":9}}`, "application/merge-patch+json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAPI(t)
			ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments", deployment)
			before := ta.storedManifest(t, "apps", "Deployment", "foo", "my-nginx")
			ta.validator.refuse = func(*unstructured.Unstructured) error { return refusal }

			resp := ta.do(t, tc.method, tc.path, tc.body, "Content-Type", tc.contentType, "X-Test-User", "mallory")
			st := resp.status(t)
			if resp.code != http.StatusForbidden || st.Message != refusal.ErrStatus.Message {
				t.Errorf("%s = %d %q, want 403 %q", tc.name, resp.code, st.Message, refusal.ErrStatus.Message)
			}
			if w := resp.header.Get("Warning"); w != "" {
				t.Errorf("a refusal came with warning %q", w)
			}
			after := ta.storedManifest(t, "apps", "Deployment", "foo", "my-nginx")
			if after.ResourceVersion != before.ResourceVersion {
				t.Errorf("the template changed (rv %s -> %s)", before.ResourceVersion, after.ResourceVersion)
			}
			list, err := ta.manifests.AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace).List(t.Context(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 1 {
				t.Errorf("%d Manifests stored, want 1", len(list.Items))
			}
		})
	}
}
