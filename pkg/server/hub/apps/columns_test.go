package apps

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// The printer columns' fields (status.boundClusters, status.ready) follow the
// deployers' reports, and a report that changes nothing writes no status.
func TestPrinterColumnFields(t *testing.T) {
	h := start(t, append(twoClusters(), template(nsJSON), subscription("app-demo", nsFeed))...)
	want := func(bound int32, ready string) {
		t.Helper()
		h.eventually(fmt.Sprintf("boundClusters %d, ready %q", bound, ready), func() (bool, string) {
			s := h.sub("app-demo")
			return s.Status.BoundClusters == bound && s.Status.Ready == ready,
				fmt.Sprintf("boundClusters %d, ready %q", s.Status.BoundClusters, s.Status.Ready)
		})
	}
	for _, ns := range []string{nsA, nsB} {
		h.eventually("Description in "+ns, func() (bool, string) { return h.desc(ns, "app-demo-generic") != nil, "not yet" })
	}
	want(2, "0/2")

	applied := appsv1alpha1.ManifestStatus{Feed: nsFeed, FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}}
	notAvailable := appsv1alpha1.ManifestStatus{Feed: nsFeed, FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Reason: "terminating"}}
	h.reportSuccess(nsA, "app-demo-generic", applied)
	want(2, "1/2")
	h.reportSuccess(nsB, "app-demo-generic", notAvailable)
	want(2, "1/2") // applied but not available is not ready
	h.reportSuccess(nsB, "app-demo-generic", applied)
	want(2, "2/2")

	var writes atomic.Int32
	h.cs.PrependReactor("update", "subscriptions", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "status" {
			writes.Add(1)
		}
		return false, nil, nil
	})
	before := h.ctl.runs.status.Load()
	h.reportSuccess(nsA, "app-demo-generic", applied)
	h.eventually("the status stage runs on the repeated report", func() (bool, string) {
		n := h.ctl.runs.status.Load()
		return n > before, fmt.Sprintf("%d status runs, %d before", n, before)
	})
	if n := writes.Load(); n != 0 {
		t.Errorf("a report that changes nothing wrote the Subscription's status %d times, want 0", n)
	}
}

// The conditions are listed in the pipeline's order whatever order they
// were first written in: a Subscription whose chart was not found at first
// wrote FeedsResolved and Ready before Scheduled and Rendered existed, and
// kept listing Ready second (docs/troubleshooting.md reads the first one
// not True as where it stopped).
func TestConditionsInPipelineOrder(t *testing.T) {
	h := start(t, append(twoClusters(), helmChart(appsv1alpha1.HelmChartNotFound), subscription("app", chartFeed))...)
	h.eventually("FeedsResolved False", func() (bool, string) {
		s := h.sub("app")
		return cond(s.Status.Conditions, ConditionFeedsResolved).Status == metav1.ConditionFalse, fmt.Sprint(s.Status.Conditions)
	})
	found := helmChart(appsv1alpha1.HelmChartFound)
	if _, err := h.cs.AppsV1alpha1().HelmCharts("default").UpdateStatus(h.ctx, found, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{ConditionFeedsResolved, ConditionScheduled, ConditionRendered, ConditionReady}
	h.eventually("Scheduled and Rendered True", func() (bool, string) {
		s := h.sub("app")
		return cond(s.Status.Conditions, ConditionScheduled).Status == metav1.ConditionTrue && cond(s.Status.Conditions, ConditionRendered).Status == metav1.ConditionTrue,
			fmt.Sprint(s.Status.Conditions)
	})
	var got []string
	for _, c := range h.sub("app").Status.Conditions {
		got = append(got, c.Type)
	}
	if !slices.Equal(got, want) {
		t.Errorf("conditions %v, want %v", got, want)
	}
}

func TestInOrderKeepsOtherConditionsAfter(t *testing.T) {
	in := []metav1.Condition{{Type: "Custom"}, {Type: ConditionReady}, {Type: "Other"}, {Type: ConditionFeedsResolved}}
	var got []string
	for _, c := range inOrder(in) {
		got = append(got, c.Type)
	}
	if want := []string{ConditionFeedsResolved, ConditionReady, "Custom", "Other"}; !slices.Equal(got, want) {
		t.Errorf("inOrder = %v, want %v", got, want)
	}
	if in[0].Type != "Custom" {
		t.Error("inOrder changed its argument")
	}
}
