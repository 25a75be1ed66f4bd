package apps

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
)

// runCounts is how often each stage of syncSubscription ran.
type runCounts struct{ Resolve, Schedule, Apply, Status int64 }

func (h *harness) runs() runCounts {
	r := &h.ctl.runs
	return runCounts{Resolve: r.resolve.Load(), Schedule: r.schedule.Load(), Apply: r.apply.Load(), Status: r.status.Load()}
}

// rollingOut waits until Subscription name is bound to both clusters, its
// Generic Descriptions are rendered in both and wait for their deployers,
// and its status says so.
func (h *harness) rollingOut(name string) {
	h.t.Helper()
	for _, ns := range []string{nsA, nsB} {
		h.pending(ns, name+"-generic")
	}
	h.eventually(name+" rolling out", func() (bool, string) {
		s := h.sub(name)
		if s == nil {
			return false, "no Subscription"
		}
		ok := len(s.Status.BindingClusters) == 2 && s.Status.DesiredReleases == 2 &&
			cond(s.Status.Conditions, ConditionRendered).Message == "2 Bases rendered into Descriptions" &&
			cond(s.Status.Conditions, ConditionReady).Reason == "RolloutInProgress"
		return ok, fmt.Sprintf("%+v", s.Status)
	})
}

func deployed(f appsv1alpha1.Feed, replicas int32) appsv1alpha1.ManifestStatus {
	return appsv1alpha1.ManifestStatus{Feed: f, FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true,
		Replicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas}}
}

// A deployer's report on a Description changes the Subscription's status
// and nothing it was resolved and scheduled from: it must not resolve,
// schedule or apply the Bases again, only sum the status.
func TestDescriptionReportsOnlyWriteStatus(t *testing.T) {
	h := start(t, seedObjects(subscription("app", nsFeed, deployFeed))...)
	h.rollingOut("app")
	// A first report: what the rollout's start queued (echoes of the hub's
	// own writes) is behind us once its result shows.
	h.reportSuccess(nsA, "app-generic", deployed(nsFeed, 0), deployed(deployFeed, 3))
	h.eventually("one Description deployed", func() (bool, string) {
		s := h.sub("app")
		return s.Status.CompletedReleases == 1, fmt.Sprintf("%d/%d", s.Status.CompletedReleases, s.Status.DesiredReleases)
	})

	before := h.runs()
	h.reportSuccess(nsB, "app-generic", deployed(nsFeed, 0), deployed(deployFeed, 3))
	h.eventually("Ready with both reports summed", func() (bool, string) {
		s := h.sub("app")
		var replicas int32
		for _, a := range s.Status.AggregatedStatuses {
			if a.Feed == deployFeed {
				replicas = a.FeedStatusSummary.AvailableReplicas
			}
		}
		return cond(s.Status.Conditions, ConditionReady).Status == metav1.ConditionTrue && replicas == 6, fmt.Sprintf("%+v", s.Status)
	})
	after := h.runs()

	want := before
	want.Status = after.Status // at least once more: checked below
	if diff := cmp.Diff(want, after); diff != "" {
		t.Errorf("a Description's report ran more than the status stage (-want +got):\n%s", diff)
	}
	if after.Status <= before.Status {
		t.Errorf("the status stage did not run for the report: %d runs before, %d after", before.Status, after.Status)
	}
}

// A change to anything feed resolution, scheduling or the Bases depend on
// runs every stage again, even though only Descriptions' reports no longer
// do. Each case waits for an effect only those stages have.
func TestInputChangesRunEveryStage(t *testing.T) {
	var deletedBase types.UID
	tests := []struct {
		name   string
		change func(h *harness)
		effect func(h *harness) (bool, string)
	}{
		{
			name: "a template",
			change: func(h *harness) {
				h.scaleTemplate(4)
			},
			// The FeedInventory is written from the resolved feeds alone.
			effect: func(h *harness) (bool, string) {
				fi, err := h.cs.AppsV1alpha1().FeedInventories("default").Get(h.ctx, "app", metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				for _, f := range fi.Spec.Feeds {
					if f.Feed == deployFeed && f.DesiredReplicas != nil {
						return *f.DesiredReplicas == 4, fmt.Sprint(*f.DesiredReplicas)
					}
				}
				return false, fmt.Sprintf("%+v", fi.Spec.Feeds)
			},
		},
		{
			name: "a cluster's labels",
			change: func(h *harness) {
				mb, err := h.cs.ClustersV1beta1().ManagedClusters(nsB).Get(h.ctx, "edge-b", metav1.GetOptions{})
				if err != nil {
					h.t.Fatal(err)
				}
				mb.Labels["env"] = "prod"
				if _, err := h.cs.ClustersV1beta1().ManagedClusters(nsB).Update(h.ctx, mb, metav1.UpdateOptions{}); err != nil {
					h.t.Fatal(err)
				}
			},
			effect: func(h *harness) (bool, string) {
				b := h.base(nsB, "app")
				return b != nil && b.DeletionTimestamp != nil, "Base of cluster b not being deleted"
			},
		},
		{
			name: "the Subscription's spec",
			change: func(h *harness) {
				h.updateSub("app", func(s *appsv1alpha1.Subscription) { s.Spec.Feeds = append(s.Spec.Feeds, svcFeed) })
			},
			effect: func(h *harness) (bool, string) {
				b := h.base(nsA, "app")
				return b != nil && cmp.Equal(b.Spec.Feeds, []appsv1alpha1.Feed{nsFeed, deployFeed, svcFeed}), fmt.Sprintf("%+v", b)
			},
		},
		{
			name: "a Base deleted by hand",
			change: func(h *harness) {
				deletedBase = h.base(nsB, "app").UID
				if err := h.cs.AppsV1alpha1().Bases(nsB).Delete(h.ctx, "app", metav1.DeleteOptions{}); err != nil {
					h.t.Fatal(err)
				}
				h.deployerCleans(nsB, "app-generic")
			},
			effect: func(h *harness) (bool, string) {
				b := h.base(nsB, "app")
				return b != nil && b.UID != deletedBase && b.DeletionTimestamp == nil, fmt.Sprintf("%+v", b)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, seedObjects(subscription("app", nsFeed, deployFeed))...)
			h.rollingOut("app")
			before := h.runs()
			tc.change(h)
			h.eventually("the effect of "+tc.name, func() (bool, string) { return tc.effect(h) })
			// An effect of stage 1 (the FeedInventory) shows while stages 2
			// and 3 of the same sync are still running: wait for them.
			h.eventually("every stage run again", func() (bool, string) {
				after := h.runs()
				return after.Resolve > before.Resolve && after.Schedule > before.Schedule && after.Apply > before.Apply,
					fmt.Sprintf("before %+v, after %+v", before, after)
			})
		})
	}
}

// A plan made while one of its inputs changed is never kept: the change
// may have come after the sync read it.
func TestPlansKeepNothingMadeDuringAChange(t *testing.T) {
	const key = "default/app"
	p := newPlans()
	made := &plan{}

	stamp := p.begin()
	p.invalidate(key)
	p.put(key, stamp, made)
	if p.get(key) != nil {
		t.Fatal("kept a plan made while an input changed")
	}

	stamp = p.begin()
	p.invalidate("default/other")
	p.put(key, stamp, made)
	if p.get(key) != made {
		t.Fatal("another Subscription's change dropped this plan")
	}
	p.invalidate(key)
	if p.get(key) != nil {
		t.Fatal("an input changed and the plan stayed")
	}

	p.put(key, p.begin(), made)
	p.forget(key)
	if p.get(key) != nil || len(p.changed) != 1 || len(p.made) != 0 {
		t.Fatalf("forget left %v %v", p.changed, p.made)
	}
}

// A plan holds only for the Subscription and the parent's answers it was
// made from.
func TestCurrentPlan(t *testing.T) {
	deploymentsGone := newTestMapper()
	deploymentsGone.RESTMapper = meta.NewDefaultRESTMapper(nil)

	tests := []struct {
		name   string
		mapper *testMapper
		edit   func(*appsv1alpha1.Subscription)
		holds  bool
	}{
		{name: "unchanged", holds: true},
		{name: "another generation", edit: func(s *appsv1alpha1.Subscription) { s.Generation++ }},
		{name: "another incarnation", edit: func(s *appsv1alpha1.Subscription) { s.UID = "uid-2" }},
		{name: "another scheduler", edit: func(s *appsv1alpha1.Subscription) { s.Spec.SchedulerName = "other" }},
		{name: "the kind no longer served", mapper: deploymentsGone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := subscription("app", deployFeed)
			sub.UID, sub.Generation = "uid-1", 3
			c := &Controller{mapper: newTestMapper(), plans: newPlans()}
			rec := &recordingMapper{RESTMapper: c.mapper}
			if _, errs := feeds.Resolve(sub.Spec.Feeds, emptySource{}, rec); len(errs) != 1 || errs[0].Reason != feeds.ReasonNotFound {
				t.Fatalf("resolving against no templates: %v", errs)
			}
			want := []mappingAnswer{{gk: schema.GroupKind{Group: "apps", Kind: "Deployment"}, versions: []string{"v1"}, answer: "apps/v1, Kind=Deployment namespace"}}
			if diff := cmp.Diff(want, rec.asked, cmp.AllowUnexported(mappingAnswer{})); diff != "" {
				t.Fatalf("recorded mapper answers (-want +got):\n%s", diff)
			}
			c.plans.put("default/app", c.plans.begin(), &plan{uid: sub.UID, generation: sub.Generation, mappings: rec.asked})

			if tc.edit != nil {
				tc.edit(sub)
			}
			if tc.mapper != nil {
				c.mapper = tc.mapper
			}
			if got := c.currentPlan("default/app", sub) != nil; got != tc.holds {
				t.Errorf("plan holds = %v, want %v", got, tc.holds)
			}
		})
	}
}

// An external scheduler's bindings are an input of the plan.
func TestCurrentPlanFollowsExternalBindings(t *testing.T) {
	sub := subscription("ext", nsFeed)
	sub.UID, sub.Spec.SchedulerName = "uid-1", "my-scheduler"
	sub.Status.BindingClusters = []string{nsA + "/edge-a"}
	c := &Controller{mapper: newTestMapper(), plans: newPlans()}
	c.plans.put("default/ext", c.plans.begin(), &plan{uid: sub.UID, generation: sub.Generation,
		external: &externalBindings{clusters: []string{nsA + "/edge-a"}}})
	if c.currentPlan("default/ext", sub) == nil {
		t.Fatal("the plan does not hold for the bindings it was made from")
	}
	sub.Status.BindingClusters = append(sub.Status.BindingClusters, nsB+"/edge-b")
	if c.currentPlan("default/ext", sub) != nil {
		t.Error("the plan holds after the scheduler bound another cluster")
	}
}

// emptySource holds no templates and no HelmCharts.
type emptySource struct{}

func (emptySource) Manifest(name string) (*appsv1alpha1.Manifest, error) {
	return nil, apierrors.NewNotFound(appsv1alpha1.SchemeGroupVersion.WithResource("manifests").GroupResource(), name)
}

func (emptySource) Manifests(string, string) ([]*appsv1alpha1.Manifest, error) { return nil, nil }

func (emptySource) HelmChart(_, name string) (*appsv1alpha1.HelmChart, error) {
	return nil, apierrors.NewNotFound(appsv1alpha1.SchemeGroupVersion.WithResource("helmcharts").GroupResource(), name)
}

func (emptySource) HelmCharts(string) ([]*appsv1alpha1.HelmChart, error) { return nil, nil }
