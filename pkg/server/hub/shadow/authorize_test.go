package shadow

import (
	"fmt"
	"net/http"
	"testing"

	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// forbiddenMessage is the real-kind refusal for user bob.
func forbiddenMessage(object, verb, what string) string {
	return fmt.Sprintf("%s is forbidden: a template needs the permission its real object needs: user \"bob\" cannot %s %s in namespace \"foo\" "+
		"in the parent; ask for that permission (or run the hub with --shadow-authorize-real-kind=false)", object, verb, what)
}

// TestRealKindIsAuthorizedBeforeTheTemplateIsRead: without the real kind's
// permission, every request gets the same 403 whatever the template holds,
// whether it exists and whatever resourceVersion it has, and the hub reads
// no Manifest and runs no dry run for it. Before, a JSON patch's test op
// answered 422 for a wrong guess of a Secret's value and 403 for the right
// one (the review's oracle), a missing template 404, a stale
// resourceVersion 409.
func TestRealKindIsAuthorizedBeforeTheTemplateIsRead(t *testing.T) {
	ta := newTestAPI(t, withRealKind(authorizerFunc(func(a authorizer.Attributes) authorizer.Decision {
		if a.GetUser().GetName() == "bob" &&
			(a.GetResource() == "secrets" || a.GetResource() == "horizontalpodautoscalers" || a.GetSubresource() == "scale") {
			return authorizer.DecisionNoOpinion
		}
		return authorizer.DecisionAllow
	})))
	secret := ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/secrets",
		`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"password":"hunter2"}}`)
	// Written in autoscaling/v1, not the preferred v2: a strategic merge
	// patch would read the template for its version.
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/horizontalpodautoscalers",
		`{"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"h"},
		  "spec":{"maxReplicas":3,"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"my-nginx"}}}`)
	ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/deployments", deployment)
	secrets := prefix + "/namespaces/foo/secrets"
	stale := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","resourceVersion":"1"},"stringData":{"password":"x"}}`
	scale := prefix + "/namespaces/foo/deployments/my-nginx/scale"
	staleScale := `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"my-nginx","namespace":"foo","resourceVersion":"1"},"spec":{"replicas":3}}`
	jsonPatch, smp := "application/json-patch+json", "application/strategic-merge-patch+json"

	for _, tc := range []struct {
		name, method, path, body, contentType string
		message                               string
	}{
		// The review's oracle: the same answer for a wrong and a right guess.
		{"JSON patch testing a wrong guess", "PATCH", secrets + "/s", `[{"op":"test","path":"/stringData/password","value":"wrong"}]`, jsonPatch,
			forbiddenMessage(`secrets "s"`, "patch", "secrets")},
		{"JSON patch testing the right guess", "PATCH", secrets + "/s", `[{"op":"test","path":"/stringData/password","value":"hunter2"}]`, jsonPatch,
			forbiddenMessage(`secrets "s"`, "patch", "secrets")},
		{"patch of a missing template", "PATCH", secrets + "/nope", `[{"op":"test","path":"/x","value":"1"}]`, jsonPatch,
			forbiddenMessage(`secrets "nope"`, "patch", "secrets")},
		{"merge patch naming a stale resourceVersion", "PATCH", secrets + "/s", `{"metadata":{"resourceVersion":"1"}}`, mergePatch,
			forbiddenMessage(`secrets "s"`, "patch", "secrets")},
		{"strategic merge patch of a template in another version", "PATCH", prefix + "/namespaces/foo/horizontalpodautoscalers/h",
			`{"spec":{"maxReplicas":5}}`, smp, forbiddenMessage(`horizontalpodautoscalers.autoscaling "h"`, "patch", "horizontalpodautoscalers.autoscaling")},
		{"update naming a stale resourceVersion", "PUT", secrets + "/s", stale, "", forbiddenMessage(`secrets "s"`, "update", "secrets")},
		{"update of a missing template", "PUT", secrets + "/nope", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"nope"}}`, "",
			forbiddenMessage(`secrets "nope"`, "update", "secrets")},
		{"get", "GET", secrets + "/s", "", "", forbiddenMessage(`secrets "s"`, "get", "secrets")},
		{"get of a missing template", "GET", secrets + "/nope", "", "", forbiddenMessage(`secrets "nope"`, "get", "secrets")},
		{"list", "GET", secrets, "", "", forbiddenMessage("secrets", "list", "secrets")},
		{"watch", "GET", secrets + "?watch=1&timeoutSeconds=1", "", "", forbiddenMessage("secrets", "watch", "secrets")},
		{"delete with a failing precondition", "DELETE", secrets + "/s", `{"preconditions":{"uid":"wrong"}}`, "",
			forbiddenMessage(`secrets "s"`, "delete", "secrets")},
		{"delete of a missing template", "DELETE", secrets + "/nope", "", "", forbiddenMessage(`secrets "nope"`, "delete", "secrets")},
		{"deletecollection", "DELETE", secrets, "", "", forbiddenMessage("secrets", "deletecollection", "secrets")},
		{"dry-run create of a taken name", "POST", secrets + "?dryRun=All", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}`, "",
			forbiddenMessage(`secrets "s"`, "create", "secrets")},
		{"create of another kind", "POST", secrets, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`, "",
			forbiddenMessage(`secrets "x"`, "create", "secrets")},
		{"get scale", "GET", scale, "", "", forbiddenMessage(`deployments.apps "my-nginx"`, "get", "deployments.apps/scale")},
		{"update scale naming a stale resourceVersion", "PUT", scale, staleScale, "",
			forbiddenMessage(`deployments.apps "my-nginx"`, "update", "deployments.apps/scale")},
		{"patch scale of a missing template", "PATCH", prefix + "/namespaces/foo/deployments/nope/scale", `{"spec":{"replicas":-1}}`, mergePatch,
			forbiddenMessage(`deployments.apps "nope"`, "patch", "deployments.apps/scale")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta.manifests.ClearActions()
			validated := len(ta.validator.calls)
			headers := []string{"X-Test-User", "bob"}
			if tc.contentType != "" {
				headers = append(headers, "Content-Type", tc.contentType)
			}
			resp := ta.do(t, tc.method, tc.path, tc.body, headers...)
			if resp.code != http.StatusForbidden {
				t.Fatalf("%s %s as bob = %d, want 403: %s", tc.method, tc.path, resp.code, resp.body)
			}
			if st := resp.status(t); st.Message != tc.message {
				t.Errorf("message = %q\nwant %q", st.Message, tc.message)
			}
			if actions := ta.manifests.Actions(); len(actions) != 0 {
				t.Errorf("the hub touched Manifests for a refused request: %v", actions)
			}
			if n := len(ta.validator.calls) - validated; n != 0 {
				t.Errorf("the hub ran %d dry runs for a refused request", n)
			}
		})
	}

	after := ta.must(t, http.StatusOK, "GET", secrets+"/s", "")
	if after.GetResourceVersion() != secret.GetResourceVersion() {
		t.Errorf("the Secret template changed: rv %s, was %s", after.GetResourceVersion(), secret.GetResourceVersion())
	}
	// Alice holds the permissions: the same requests reach the template.
	for _, tc := range []struct {
		name, method, path, body, contentType string
		code                                  int
	}{
		{"JSON patch testing a wrong guess", "PATCH", secrets + "/s", `[{"op":"test","path":"/stringData/password","value":"wrong"}]`, jsonPatch,
			http.StatusUnprocessableEntity},
		{"update naming a stale resourceVersion", "PUT", secrets + "/s", stale, "", http.StatusConflict},
		{"update of a missing template", "PUT", secrets + "/nope", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"nope"}}`, "", http.StatusNotFound},
		{"update scale naming a stale resourceVersion", "PUT", scale, staleScale, "", http.StatusConflict},
		{"strategic merge patch of a template in another version", "PATCH", prefix + "/namespaces/foo/horizontalpodautoscalers/h",
			`{"spec":{"maxReplicas":5}}`, smp, http.StatusOK},
	} {
		t.Run("allowed: "+tc.name, func(t *testing.T) {
			var headers []string
			if tc.contentType != "" {
				headers = []string{"Content-Type", tc.contentType}
			}
			if resp := ta.do(t, tc.method, tc.path, tc.body, headers...); resp.code != tc.code {
				t.Errorf("%s %s as alice = %d, want %d: %s", tc.method, tc.path, resp.code, tc.code, resp.body)
			}
		})
	}
}
