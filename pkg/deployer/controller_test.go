package deployer

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// A status write that conflicts is redone on a fresh copy with only what
// the writer changes: a stale cached copy never rolls back another write.
func TestWriteStatusConflictKeepsFreshFields(t *testing.T) {
	fresh := description("app-demo-generic")
	fresh.ResourceVersion = "2"
	fresh.Status = appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ObservedGeneration: 1}
	stale := fresh.DeepCopy()
	stale.ResourceVersion = "1"
	stale.Status = appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhasePending}

	cs := fake.NewClientset(fresh)
	conflicts := 0
	cs.PrependReactor("update", "descriptions", func(a clienttesting.Action) (bool, runtime.Object, error) {
		u := a.(clienttesting.UpdateAction)
		if u.GetSubresource() == "status" && u.GetObject().(*appsv1alpha1.Description).ResourceVersion != "2" {
			conflicts++
			return true, nil, apierrors.NewConflict(appsv1alpha1.Resource("descriptions"), fresh.Name, nil)
		}
		return false, nil, nil
	})
	c := &Controller{opts: Options{Parent: cs}}
	statuses := []appsv1alpha1.ManifestStatus{{Feed: appsv1alpha1.Feed{APIVersion: "v1", Kind: "Namespace", Name: "foo"},
		FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}}}
	got, err := c.writeStatus(context.Background(), stale, func(s *appsv1alpha1.DescriptionStatus) { s.ManifestStatuses = statuses })
	if err != nil {
		t.Fatal(err)
	}
	if conflicts != 1 {
		t.Errorf("%d conflicts, want the stale write to conflict once", conflicts)
	}
	want := appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ObservedGeneration: 1, ManifestStatuses: statuses}
	if diff := cmp.Diff(want, got.Status); diff != "" {
		t.Errorf("status written (-want +got):\n%s", diff)
	}
}

func TestBackoffFor(t *testing.T) {
	var got []string
	for _, n := range []int{1, 2, 3, 8, 20} {
		got = append(got, backoffFor(n).String())
	}
	if diff := cmp.Diff([]string{"2s", "4s", "8s", "4m16s", "5m0s"}, got); diff != "" {
		t.Errorf("backoff (-want +got):\n%s", diff)
	}
}

// The child's objects often change before the parent's watch brings back
// the report the deploy just wrote: a refresh on that stale cached copy
// (status about the previous generation) must still write what the child
// holds, or the status stays as the deploy left it (here: "waiting for its
// controller") with no later event to correct it.
func TestRefreshStatusOnStaleCachedDescription(t *testing.T) {
	ctx := context.Background()
	fc, child := newFakeChild(t)
	fc.put(nsFoo, namespaceObj("foo"))

	fresh := description("app-demo-generic", deploymentObj("foo", "web", 7))
	fresh.Generation, fresh.ResourceVersion = 2, "5"
	objs := mustObjects(t, fresh)
	if res := child.Deploy(ctx, Plan{Objects: objs}); res.Err != nil {
		t.Fatal(res.Err)
	}
	deploy := fc.objects[depWeb]
	deploy["metadata"].(map[string]any)["generation"] = float64(2)
	deploy["status"] = map[string]any{"observedGeneration": float64(2), "replicas": float64(7), "updatedReplicas": float64(7),
		"readyReplicas": float64(7), "availableReplicas": float64(7)}
	webFeed := appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "web"}
	// What the deploy of generation 2 wrote, from the apply's response.
	fresh.Status = appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ObservedGeneration: 2,
		ManifestStatuses: []appsv1alpha1.ManifestStatus{{Feed: webFeed, FeedStatus: appsv1alpha1.FeedStatus{Applied: true,
			Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, Reason: "waiting for its controller to observe generation 2 (observed 1)"}}}}
	// The cache: the new spec, but still the report on generation 1.
	stale := fresh.DeepCopy()
	stale.ResourceVersion = "4"
	stale.Status = appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ObservedGeneration: 1,
		ManifestStatuses: []appsv1alpha1.ManifestStatus{{Feed: webFeed, FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true,
			Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}}}}

	cs := fake.NewClientset(fresh)
	c := &Controller{opts: Options{Parent: cs}}
	w := newChildWatch(ctx, "cluster-1", child, func(string, watchEvent) {})
	defer w.stop()
	if err := c.refreshStatus(ctx, w, &descState{uid: fresh.UID, clusterID: "cluster-1", deployed: 2}, stale, objs); err != nil {
		t.Fatal(err)
	}
	got, err := cs.AppsV1alpha1().Descriptions(fresh.Namespace).Get(ctx, fresh.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ObservedGeneration: 2,
		ManifestStatuses: []appsv1alpha1.ManifestStatus{{Feed: webFeed, FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true,
			Replicas: 7, ReadyReplicas: 7, AvailableReplicas: 7}}}}
	if diff := cmp.Diff(want, got.Status); diff != "" {
		t.Errorf("status after the refresh (-want +got):\n%s", diff)
	}
}
