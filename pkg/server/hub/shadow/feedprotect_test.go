package shadow

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// A template whose Manifest FeedInUseProtection holds: deleted, it stays
// with its deletion timestamp and the hub's note; a create of its name says
// why it is taken and what frees it; writes never store the note in the
// template (children would receive it).
func TestTemplateHeldByFeedProtection(t *testing.T) {
	const (
		path = prefix + "/namespaces/foo/configmaps"
		cm   = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","annotations":{"team":"a"}},"data":{"k":"v"}}`
		note = `the template of v1 ConfigMap "foo/c" is being deleted, and FeedInUseProtection holds it while Subscriptions use it as a feed: ` +
			`Subscription foo/app (spec.feeds[0]); remove it from their spec.feeds or delete them, and the deletion completes`
	)
	ctx := context.Background()
	tests := []struct {
		name string
		// note is the hub's annotation on the Manifest, if any.
		note    string
		wantErr string
	}{
		{
			name:    "the hub has said who holds it",
			note:    note,
			wantErr: `object is being deleted: configmaps "c" already exists: ` + note + `; create it again once it is gone`,
		},
		{
			name: "before the hub has said who holds it",
			wantErr: `object is being deleted: configmaps "c" already exists: FeedInUseProtection holds it while Subscriptions of its namespace use it as a feed; ` +
				"`kubectl get events` there names them (reason FeedInUse): remove it from their spec.feeds or delete them; create it again once it is gone",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAPI(t)
			manifests := ta.manifests.AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace)
			ta.must(t, http.StatusCreated, "POST", path, cm)
			m := ta.storedManifest(t, "", "ConfigMap", "foo", "c")
			m.Finalizers = []string{appsv1alpha1.FeedProtectionFinalizer}
			if _, err := manifests.Update(ctx, m, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}

			deleted := ta.must(t, http.StatusOK, "DELETE", path+"/c", "")
			if deleted.GetDeletionTimestamp() == nil {
				t.Errorf("delete answered a template without its deletion: %v", deleted.Object)
			}
			if tc.note != "" {
				m = ta.storedManifest(t, "", "ConfigMap", "foo", "c")
				m.Annotations = map[string]string{appsv1alpha1.AnnotationFeedProtection: tc.note}
				if _, err := manifests.Update(ctx, m, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			}

			got := ta.must(t, http.StatusOK, "GET", path+"/c", "")
			wantAnn := map[string]string{"team": "a"}
			if tc.note != "" {
				wantAnn[appsv1alpha1.AnnotationFeedProtection] = tc.note
			}
			if got.GetDeletionTimestamp() == nil {
				t.Error("a get does not show the deletion")
			}
			if diff := cmp.Diff(wantAnn, got.GetAnnotations()); diff != "" {
				t.Errorf("annotations a get shows (-want +got):\n%s", diff)
			}

			for _, query := range []string{"", "?dryRun=All"} {
				resp := ta.do(t, "POST", path+query, cm)
				st := resp.status(t)
				if resp.code != http.StatusConflict || st.Reason != metav1.StatusReasonAlreadyExists || st.Message != tc.wantErr {
					t.Errorf("create%s while held = %d %s %q\nwant 409 AlreadyExists %q", query, resp.code, st.Reason, st.Message, tc.wantErr)
				}
			}

			// kubectl apply of the held template: a merge patch of what
			// it read back (the note included).
			ta.must(t, http.StatusOK, "PATCH", path+"/c", `{"data":{"k":"w"}}`, "Content-Type", "application/merge-patch+json")
			stored := ta.storedManifest(t, "", "ConfigMap", "foo", "c")
			if strings.Contains(string(stored.Template.Raw), appsv1alpha1.AnnotationFeedProtection) {
				t.Errorf("the note was stored in the template: %s", stored.Template.Raw)
			}
			if !strings.Contains(string(stored.Template.Raw), `"k":"w"`) {
				t.Errorf("the patch was not stored: %s", stored.Template.Raw)
			}
			if diff := cmp.Diff([]string{appsv1alpha1.FeedProtectionFinalizer}, stored.Finalizers); diff != "" {
				t.Errorf("the Manifest's finalizers after a write (-want +got):\n%s", diff)
			}
			if stored.Annotations[appsv1alpha1.AnnotationFeedProtection] != tc.note {
				t.Errorf("the Manifest's note after a write = %q, want %q", stored.Annotations[appsv1alpha1.AnnotationFeedProtection], tc.note)
			}
		})
	}
}
