package deployer

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

	// The generated fake offers only NewSimpleClientset (no apply configurations).
	cs := fake.NewSimpleClientset(fresh)
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
