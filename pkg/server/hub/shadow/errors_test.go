package shadow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/watch"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// TestUnreadableTemplate: a Manifest whose template was broken by hand
// gives errors about the template (never the Manifest), and the template
// can still be deleted, as the error advises.
func TestUnreadableTemplate(t *testing.T) {
	// JSON, but no object: the API server stores nothing but JSON.
	const notObject = `"a string"`
	notObjectErr := utiljson.Unmarshal([]byte(notObject), &map[string]interface{}{})
	for _, tc := range []struct {
		name, template, cause string
		// finalized Manifests are only marked for deletion.
		finalized bool
	}{
		{"not a JSON object", notObject, "the template is not a JSON object: " + notObjectErr.Error(), false},
		{"no kind", `{"metadata":{"name":"c","namespace":"foo"}}`, "the template has no apiVersion or kind", false},
		{"held by a finalizer", notObject, "the template is not a JSON object: " + notObjectErr.Error(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAPI(t)
			path := prefix + "/namespaces/foo/configmaps/c"
			ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/configmaps", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`)
			m := ta.storedManifest(t, "", "ConfigMap", "foo", "c")
			m.Template = runtime.RawExtension{Raw: []byte(tc.template)}
			if tc.finalized {
				m.Finalizers = []string{appsv1alpha1.Finalizer}
			}
			if _, err := ta.manifests.AppsV1alpha1().Manifests(m.Namespace).Update(context.Background(), m, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf(`Internal error occurred: configmaps "c" cannot be read: %s; delete it and create it again`, tc.cause)
			for _, req := range []struct{ method, path, body, contentType string }{
				{"GET", path, "", ""},
				{"PATCH", path, `{"data":{"k":"v"}}`, mergePatch},
				{"PUT", path, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`, ""},
			} {
				var headers []string
				if req.contentType != "" {
					headers = []string{"Content-Type", req.contentType}
				}
				resp := ta.do(t, req.method, req.path, req.body, headers...)
				if resp.code != http.StatusInternalServerError {
					t.Fatalf("%s of an unreadable template = %d, want 500: %s", req.method, resp.code, resp.body)
				}
				st := resp.status(t)
				if st.Message != want {
					t.Errorf("%s: message = %q\nwant %q", req.method, st.Message, want)
				}
				assertNamesNoStorage(t, st, m.Name)
			}
			if names := itemNames(t, ta.must(t, http.StatusOK, "GET", prefix+"/namespaces/foo/configmaps", "")); len(names) != 0 {
				t.Errorf("list shows %v, want the unreadable template left out", names)
			}

			deleted := ta.must(t, http.StatusOK, "DELETE", path, "")
			if deleted.GetKind() != "ConfigMap" || deleted.GetName() != "c" || deleted.GetNamespace() != "foo" || deleted.GetUID() != m.UID {
				t.Errorf("deleted = %v", deleted.Object)
			}
			if tc.finalized {
				if deleted.GetDeletionTimestamp() == nil {
					t.Errorf("the template held by a finalizer does not show its deletion: %v", deleted.Object)
				}
				return
			}
			ta.must(t, http.StatusNotFound, "GET", path, "")
			ta.must(t, http.StatusCreated, "POST", prefix+"/namespaces/foo/configmaps", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`)
		})
	}
}

// TestHubTroubleIsTheHubs: when the hub cannot keep or validate templates,
// the client reads which template failed, not where the hub keeps them.
func TestHubTroubleIsTheHubs(t *testing.T) {
	namespaceForbidden := func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("namespaces"), appsv1alpha1.ReservedNamespace, errors.New("no"))
	}
	for _, tc := range []struct {
		name  string
		setUp func(*testAPI)
		want  string
	}{
		{"the reserved namespace cannot be created", func(ta *testAPI) {
			kube := kubefake.NewClientset()
			kube.PrependReactor("create", "namespaces", namespaceForbidden)
			ta.reserved.namespaces = kube.CoreV1().Namespaces()
		}, `Internal error occurred: configmaps "c" cannot be validated in the parent now; an administrator of the parent finds why in the hub's log`},
		{"the dry run finds no reserved namespace", func(ta *testAPI) {
			ta.validator.refuse = func(*unstructured.Unstructured) error { return errReservedNamespaceMissing }
		}, `Internal error occurred: configmaps "c" cannot be validated in the parent now; an administrator of the parent finds why in the hub's log`},
		{"the hub may not write Manifests", func(ta *testAPI) {
			ta.manifests.PrependReactor("create", "manifests", func(clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(manifestsGVR.GroupResource(), "configmap-foo-c", errors.New(`in namespace "clusternet-reserved"`))
			})
		}, `Internal error occurred: configmaps "c": the parent refused clusternet-hub access to the templates it keeps; ` +
			`an administrator of the parent finds why in the hub's log`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAPI(t)
			tc.setUp(ta)
			resp := ta.do(t, "POST", prefix+"/namespaces/foo/configmaps", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`)
			if resp.code != http.StatusInternalServerError {
				t.Fatalf("create = %d, want 500: %s", resp.code, resp.body)
			}
			st := resp.status(t)
			if st.Message != tc.want {
				t.Errorf("message = %q\nwant %q", st.Message, tc.want)
			}
			assertNamesNoStorage(t, st, "")
		})
	}
}

// TestTemplateWatchRestatesErrors: a watch's ERROR events keep their code
// and reason (410 Expired makes clients list again) but name the
// templates.
func TestTemplateWatchRestatesErrors(t *testing.T) {
	r := deploymentResource()
	sel, err := r.selection("foo", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   runtime.Object
		want metav1.Status
	}{
		{"expired",
			&metav1.Status{Status: metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonExpired, Message: "too old resource version: 5 (10)"},
			metav1.Status{Status: metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonExpired, Message: "too old resource version: 5 (10)"}},
		{"about the Manifests",
			&apierrors.NewInternalError(fmt.Errorf(`listing manifests.apps.clusternet.io in namespace "clusternet-reserved": etcd down`)).ErrStatus,
			metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError, Reason: metav1.StatusReasonInternalError,
				Message: "deployments.apps: the parent answered InternalError", Details: &metav1.StatusDetails{Group: "apps", Kind: "deployments"}}},
		{"resource named",
			&apierrors.NewTooManyRequestsError("manifests.apps.clusternet.io: too many watches").ErrStatus,
			metav1.Status{Status: metav1.StatusFailure, Code: http.StatusTooManyRequests, Reason: metav1.StatusReasonTooManyRequests,
				Message: "Too many requests: deployments.apps: too many watches"}},
		{"not a Status", &appsv1alpha1.ManifestList{},
			metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError, Reason: metav1.StatusReasonInternalError,
				Message: "Internal error occurred: the watch of deployments.apps failed", Details: &metav1.StatusDetails{
					Group: "apps", Kind: "deployments", Causes: []metav1.StatusCause{{Message: "the watch of deployments.apps failed"}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := watch.NewFake()
			w := newTemplateWatch(context.Background(), in, sel)
			defer w.Stop()
			go in.Error(tc.in)
			select {
			case ev := <-w.ResultChan():
				st, ok := ev.Object.(*metav1.Status)
				if ev.Type != watch.Error || !ok {
					t.Fatalf("event %s %T, want ERROR with a Status", ev.Type, ev.Object)
				}
				if diff := cmp.Diff(tc.want, *st); diff != "" {
					t.Errorf("status (-want +got):\n%s", diff)
				}
				assertNamesNoStorage(t, *st, "")
			case <-time.After(10 * time.Second):
				t.Fatal("no event")
			}
		})
	}
}
