package aggregate

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

var (
	deploy = appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "my-nginx"}
	ns     = appsv1alpha1.Feed{APIVersion: "v1", Kind: "Namespace", Name: "foo"}
	chart  = appsv1alpha1.Feed{APIVersion: "apps.clusternet.io/v1alpha1", Kind: "HelmChart", Namespace: "default", Name: "mysql"}
	c1     = Cluster{Namespace: "clusternet-a", Name: "edge-1", ID: "id-1"}
	c2     = Cluster{Namespace: "clusternet-b", Name: "edge-2", ID: "id-2"}
)

func desc(ns, name string, phase appsv1alpha1.DescriptionPhase, reason string, statuses ...appsv1alpha1.ManifestStatus) *appsv1alpha1.Description {
	return &appsv1alpha1.Description{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Status: appsv1alpha1.DescriptionStatus{Phase: phase, Reason: reason, ManifestStatuses: statuses}}
}

func ms(f appsv1alpha1.Feed, applied, available bool, replicas, ready int32, reason string) appsv1alpha1.ManifestStatus {
	// Deployers may report the feed in another version of the group.
	return appsv1alpha1.ManifestStatus{Feed: f, FeedStatus: appsv1alpha1.FeedStatus{Applied: applied, Available: available,
		Replicas: replicas, ReadyReplicas: ready, AvailableReplicas: ready, Reason: reason}}
}

func TestAggregate(t *testing.T) {
	deployV1beta2 := deploy
	deployV1beta2.APIVersion = "apps/v1beta2"
	tests := []struct {
		name  string
		in    Input
		want  Output
		feeds []appsv1alpha1.AggregatedStatus
	}{{
		name: "no cluster",
		in:   Input{Feeds: []appsv1alpha1.Feed{ns}, BaseName: "app"},
		want: Output{Ready: metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: ReasonNoClusters,
			Message: "no cluster is bound: check spec.subscribers[].clusterAffinity against the ManagedClusters' labels, and spec.clusterTolerations against their taints"},
			Aggregated: []appsv1alpha1.AggregatedStatus{{Feed: ns}}},
	}, {
		name: "all deployed",
		in: Input{Feeds: []appsv1alpha1.Feed{ns, deploy}, Clusters: []Cluster{c1, c2}, BaseName: "app", Descriptions: []*appsv1alpha1.Description{
			desc("clusternet-a", "app-generic", appsv1alpha1.DescriptionPhaseSuccess, "", ms(ns, true, true, 0, 0, ""), ms(deployV1beta2, true, true, 2, 2, "")),
			desc("clusternet-b", "app-generic", appsv1alpha1.DescriptionPhaseSuccess, "", ms(ns, true, true, 0, 0, ""), ms(deploy, true, true, 1, 1, "")),
		}},
		want: Output{Desired: 2, Completed: 2, ReadyClusters: 2,
			Ready: metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: ReasonReady, Message: "all 2 Descriptions deployed in 2 clusters"},
			Aggregated: []appsv1alpha1.AggregatedStatus{
				{Feed: ns, FeedStatusSummary: appsv1alpha1.FeedStatus{Applied: true, Available: true}, AvailableClusters: 2, FeedStatusDetails: []appsv1alpha1.FeedStatusPerCluster{
					{FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}, ClusterID: "id-1", ClusterName: "edge-1"},
					{FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}, ClusterID: "id-2", ClusterName: "edge-2"},
				}},
				{Feed: deploy, FeedStatusSummary: appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}, AvailableClusters: 2, FeedStatusDetails: []appsv1alpha1.FeedStatusPerCluster{
					{FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}, ClusterID: "id-1", ClusterName: "edge-1"},
					{FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}, ClusterID: "id-2", ClusterName: "edge-2"},
				}},
			}},
	}, {
		name: "one failed, one pending, helm not rendered",
		in: Input{Feeds: []appsv1alpha1.Feed{chart, deploy}, Clusters: []Cluster{c1, c2}, BaseName: "app", Descriptions: []*appsv1alpha1.Description{
			desc("clusternet-a", "app-generic", appsv1alpha1.DescriptionPhaseFailure, `applying apps/v1 Deployment "foo/my-nginx": admission webhook denied it`,
				ms(deploy, false, false, 0, 0, "admission webhook denied it")),
			desc("clusternet-b", "app-generic", appsv1alpha1.DescriptionPhasePending, ""),
			desc("clusternet-a", "app-helm", appsv1alpha1.DescriptionPhaseSuccess, "", ms(chart, true, true, 0, 0, "")),
		}},
		want: Output{Desired: 4, Completed: 1,
			Ready: metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: ReasonDeploymentFailed,
				Message: `1 of 4 Descriptions failed: clusternet-a/app-generic in cluster edge-1: applying apps/v1 Deployment "foo/my-nginx": admission webhook denied it`},
			Aggregated: []appsv1alpha1.AggregatedStatus{
				// Where it is not deployed first.
				{Feed: chart, FeedStatusSummary: appsv1alpha1.FeedStatus{Reason: "edge-2: the Description is not rendered yet"}, AvailableClusters: 1, FeedStatusDetails: []appsv1alpha1.FeedStatusPerCluster{
					{FeedStatus: appsv1alpha1.FeedStatus{Reason: "the Description is not rendered yet"}, ClusterID: "id-2", ClusterName: "edge-2"},
					{FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}, ClusterID: "id-1", ClusterName: "edge-1"},
				}},
				{Feed: deploy, FeedStatusSummary: appsv1alpha1.FeedStatus{Reason: "edge-1: admission webhook denied it; edge-2: waiting for the deployer to report"}, FeedStatusDetails: []appsv1alpha1.FeedStatusPerCluster{
					{FeedStatus: appsv1alpha1.FeedStatus{Reason: "admission webhook denied it"}, ClusterID: "id-1", ClusterName: "edge-1"},
					{FeedStatus: appsv1alpha1.FeedStatus{Reason: "waiting for the deployer to report"}, ClusterID: "id-2", ClusterName: "edge-2"},
				}},
			}},
	}, {
		name: "a report about an earlier spec does not count",
		in: Input{Feeds: []appsv1alpha1.Feed{ns}, Clusters: []Cluster{c1}, BaseName: "app", Descriptions: []*appsv1alpha1.Description{
			func() *appsv1alpha1.Description {
				d := desc("clusternet-a", "app-generic", appsv1alpha1.DescriptionPhaseSuccess, "", ms(ns, true, true, 0, 0, ""))
				d.Generation, d.Status.ObservedGeneration = 3, 2
				return d
			}(),
		}},
		want: Output{Desired: 1, Completed: 0,
			Ready: metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: ReasonRolloutInProgress,
				Message: "0 of 1 Descriptions deployed; waiting for clusternet-a/app-generic (the deployer has not reported on its latest spec yet)"},
			Aggregated: []appsv1alpha1.AggregatedStatus{
				{Feed: ns, FeedStatusSummary: appsv1alpha1.FeedStatus{Reason: "edge-1: waiting for the deployer to report on the latest spec"}, FeedStatusDetails: []appsv1alpha1.FeedStatusPerCluster{
					{FeedStatus: appsv1alpha1.FeedStatus{Reason: "waiting for the deployer to report on the latest spec"}, ClusterID: "id-1", ClusterName: "edge-1"},
				}},
			}},
	}, {
		name: "rolling out",
		in: Input{Feeds: []appsv1alpha1.Feed{ns}, Clusters: []Cluster{c1, c2}, BaseName: "app", Descriptions: []*appsv1alpha1.Description{
			desc("clusternet-a", "app-generic", appsv1alpha1.DescriptionPhaseSuccess, "", ms(ns, true, true, 0, 0, "")),
			desc("clusternet-b", "app-generic", "", ""),
		}},
		want: Output{Desired: 2, Completed: 1, ReadyClusters: 1,
			Ready: metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: ReasonRolloutInProgress,
				Message: "1 of 2 Descriptions deployed; waiting for clusternet-b/app-generic (not picked up by a deployer yet)"},
			Aggregated: []appsv1alpha1.AggregatedStatus{
				{Feed: ns, FeedStatusSummary: appsv1alpha1.FeedStatus{Reason: "edge-2: waiting for the deployer to report"}, AvailableClusters: 1, FeedStatusDetails: []appsv1alpha1.FeedStatusPerCluster{
					{FeedStatus: appsv1alpha1.FeedStatus{Reason: "waiting for the deployer to report"}, ClusterID: "id-2", ClusterName: "edge-2"},
					{FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}, ClusterID: "id-1", ClusterName: "edge-1"},
				}},
			}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Listed = len(tc.in.Clusters)
			got := Aggregate(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAggregateListsUpToListed: feedStatusDetails lists at most
// in.Listed clusters, those where the feed is not done first, and counts
// the others; the summary and availableClusters are over all of them.
func TestAggregateListsUpToListed(t *testing.T) {
	var clusters []Cluster
	var descs []*appsv1alpha1.Description
	for i := range 4 {
		c := Cluster{Namespace: fmt.Sprintf("clusternet-%d", i), Name: fmt.Sprintf("edge-%d", i), ID: fmt.Sprintf("id-%d", i)}
		clusters = append(clusters, c)
		// Cluster 3, the last, is the only one where the feed is not available.
		descs = append(descs, &appsv1alpha1.Description{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: "app" + appsv1alpha1.DescriptionGenericSuffix},
			Status: appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ManifestStatuses: []appsv1alpha1.ManifestStatus{ms(ns, true, i != 3, 0, 0, "")}}})
	}
	for _, tc := range []struct {
		listed int
		want   []string
	}{{0, nil}, {1, []string{"edge-3"}}, {2, []string{"edge-3", "edge-0"}}, {4, []string{"edge-3", "edge-0", "edge-1", "edge-2"}}, {9, []string{"edge-3", "edge-0", "edge-1", "edge-2"}}} {
		t.Run(fmt.Sprint(tc.listed), func(t *testing.T) {
			a := Aggregate(Input{Feeds: []appsv1alpha1.Feed{ns}, Clusters: clusters, Descriptions: descs, BaseName: "app", Listed: tc.listed}).Aggregated[0]
			var got []string
			for _, d := range a.FeedStatusDetails {
				got = append(got, d.ClusterName)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("clusters listed (-want +got):\n%s", diff)
			}
			if want := int32(len(clusters) - len(tc.want)); a.FeedStatusDetailsOmitted != want || a.AvailableClusters != 3 || a.FeedStatusSummary.Available {
				t.Errorf("%d omitted, %d available clusters, summary available %t; want %d, 3, false", a.FeedStatusDetailsOmitted, a.AvailableClusters, a.FeedStatusSummary.Available, want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	if got := Summarize([]string{"a", "b", "c", "d", "e"}); got != "a; b; c; and 2 more" {
		t.Errorf("summarize = %q", got)
	}
}

// TestClip: a reason over MaxStatusReasonLength is cut to it, on a rune
// boundary, and marked; one within it is kept whole.
func TestClip(t *testing.T) {
	limit := appsv1alpha1.MaxStatusReasonLength
	fits := strings.Repeat("a", limit)
	if got := Clip(fits); got != fits {
		t.Errorf("Clip of %d bytes = %q, want it whole", limit, got)
	}
	long := strings.Repeat("a", limit-4) + "ééé"
	got := Clip(long)
	if want := strings.Repeat("a", limit-4) + "..."; got != want {
		t.Errorf("Clip = %q, want %q", got, want)
	}
	if len(got) > limit || !utf8.ValidString(got) {
		t.Errorf("Clip = %d bytes (valid UTF-8: %t), want at most %d", len(got), utf8.ValidString(got), limit)
	}
}

// The Ready condition quotes a failed Description's reason up to
// MaxQuoteLength, whole when it fits: what the child refused (a field is
// immutable) is at its end, past MaxStatusReasonLength.
func TestReadyQuotesFailuresWhole(t *testing.T) {
	reason := `validating (server-side dry-run) Deployment shop/shop in the child failed: Deployment.apps "shop" is invalid: ` +
		`spec.selector: Invalid value: {"matchLabels":{"app":"shop","track":"stable"}}: field is immutable`
	if len(reason) <= appsv1alpha1.MaxStatusReasonLength {
		t.Fatalf("the reason is %d bytes: make it longer than MaxStatusReasonLength for this test to mean anything", len(reason))
	}
	out := Aggregate(Input{Feeds: []appsv1alpha1.Feed{ns}, Clusters: []Cluster{c1}, BaseName: "app", Listed: 1, Descriptions: []*appsv1alpha1.Description{
		desc("clusternet-a", "app-generic", appsv1alpha1.DescriptionPhaseFailure, reason),
	}})
	if !strings.Contains(out.Ready.Message, reason) {
		t.Errorf("Ready message %q does not quote the reason whole", out.Ready.Message)
	}
	long := strings.Repeat("x", 3*MaxQuoteLength)
	out = Aggregate(Input{Feeds: []appsv1alpha1.Feed{ns}, Clusters: []Cluster{c1}, BaseName: "app", Listed: 1, Descriptions: []*appsv1alpha1.Description{
		desc("clusternet-a", "app-generic", appsv1alpha1.DescriptionPhaseFailure, long),
	}})
	if len(out.Ready.Message) > 2*MaxQuoteLength {
		t.Errorf("Ready message of %d bytes quoting a reason of %d: want it clipped to MaxQuoteLength", len(out.Ready.Message), len(long))
	}
}
