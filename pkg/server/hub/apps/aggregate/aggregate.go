// Package aggregate sums a Subscription's Descriptions' statuses, as their
// deployers reported them, into the Subscription's status: per feed and per
// cluster, and whether the whole rollout is done.
package aggregate

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
)

// Reasons of the Subscription's Ready condition that aggregation decides.
const (
	ReasonReady             = "Ready"
	ReasonNoClusters        = "NoClusters"
	ReasonRolloutInProgress = "RolloutInProgress"
	ReasonDeploymentFailed  = "DeploymentFailed"
)

// Cluster is one bound cluster.
type Cluster struct {
	// Namespace is its dedicated namespace; Name its ManagedCluster; ID its cluster id.
	Namespace, Name, ID string
}

// Input is one Subscription's bound clusters and Descriptions.
type Input struct {
	// Feeds are the resolved feeds, in order.
	Feeds []appsv1alpha1.Feed
	// Clusters are the bound clusters (those with a Base), in order.
	Clusters []Cluster
	// Descriptions are the Subscription's Descriptions, any cluster.
	Descriptions []*appsv1alpha1.Description
	// BaseName is the name of the Subscription's Bases: Descriptions are
	// BaseName-generic and BaseName-helm.
	BaseName string
	// Listed is how many clusters each feed's feedStatusDetails lists at
	// most (the status builder chooses it to fit MaxStatusBytes); the
	// others are counted in feedStatusDetailsOmitted. Zero lists none.
	Listed int
}

// Output is the aggregated part of the Subscription's status.
type Output struct {
	Aggregated []appsv1alpha1.AggregatedStatus
	Desired    int
	Completed  int
	// ReadyClusters counts the bound clusters where every feed is done
	// (applied and available): the n of status.ready "<n>/<bound>".
	ReadyClusters int
	// Ready is the rollout's state: Status, Reason and Message of the
	// Ready condition.
	Ready metav1.Condition
}

func sameObject(a, b appsv1alpha1.Feed) bool {
	return feeds.Group(a.APIVersion) == feeds.Group(b.APIVersion) && a.Kind == b.Kind && a.Namespace == b.Namespace && a.Name == b.Name
}

// Aggregate sums the statuses.
func Aggregate(in Input) Output {
	byName := map[string]*appsv1alpha1.Description{}
	for _, d := range in.Descriptions {
		byName[d.Namespace+"/"+d.Name] = d
	}
	hasGeneric, hasHelm := false, false
	for _, f := range in.Feeds {
		if feeds.IsChart(f) {
			hasHelm = true
		} else {
			hasGeneric = true
		}
	}
	descName := func(f appsv1alpha1.Feed) string {
		if feeds.IsChart(f) {
			return in.BaseName + appsv1alpha1.DescriptionHelmSuffix
		}
		return in.BaseName + appsv1alpha1.DescriptionGenericSuffix
	}

	var out Output
	var failed, waiting []string
	for _, c := range in.Clusters {
		for _, want := range []struct {
			on     bool
			suffix string
		}{{hasGeneric, appsv1alpha1.DescriptionGenericSuffix}, {hasHelm, appsv1alpha1.DescriptionHelmSuffix}} {
			if !want.on {
				continue
			}
			out.Desired++
			name := c.Namespace + "/" + in.BaseName + want.suffix
			d := byName[name]
			switch {
			case d == nil:
				waiting = append(waiting, name+" (not rendered yet)")
			case stale(d):
				waiting = append(waiting, name+" (the deployer has not reported on its latest spec yet)")
			case d.Status.Phase == appsv1alpha1.DescriptionPhaseSuccess:
				out.Completed++
			case d.Status.Phase == appsv1alpha1.DescriptionPhaseFailure:
				failed = append(failed, fmt.Sprintf("%s in cluster %s: %s", name, c.Name, ClipTo(orDefault(d.Status.Reason, "no reason given"), MaxQuoteLength)))
			default:
				waiting = append(waiting, fmt.Sprintf("%s (%s)", name, orDefault(string(d.Status.Phase), "not picked up by a deployer yet")))
			}
		}
	}

	notDone := map[string]bool{}
	for _, f := range in.Feeds {
		agg := appsv1alpha1.AggregatedStatus{Feed: f}
		sum := &agg.FeedStatusSummary
		sum.Applied, sum.Available = len(in.Clusters) > 0, len(in.Clusters) > 0
		var reasons []string
		nReasons := 0
		details := boundedDetails{max: in.Listed}
		for _, c := range in.Clusters {
			st := appsv1alpha1.FeedStatus{}
			if d := byName[c.Namespace+"/"+descName(f)]; d == nil {
				st.Reason = "the Description is not rendered yet"
			} else {
				found := false
				for _, ms := range d.Status.ManifestStatuses {
					if sameObject(ms.Feed, f) {
						st, found = ms.FeedStatus, true
						break
					}
				}
				if found && stale(d) {
					st = appsv1alpha1.FeedStatus{Reason: "waiting for the deployer to report on the latest spec"}
				}
				if !found {
					switch d.Status.Phase {
					case appsv1alpha1.DescriptionPhaseFailure:
						st.Reason = orDefault(d.Status.Reason, "the Description failed")
					default:
						st.Reason = "waiting for the deployer to report"
					}
				}
			}
			st.Reason = Clip(st.Reason)
			details.add(appsv1alpha1.FeedStatusPerCluster{FeedStatus: st, ClusterID: c.ID, ClusterName: c.Name}, done(st))
			sum.Applied = sum.Applied && st.Applied
			sum.Available = sum.Available && st.Available
			if done(st) {
				agg.AvailableClusters++
			} else {
				notDone[c.Namespace] = true
			}
			sum.Replicas += st.Replicas
			sum.ReadyReplicas += st.ReadyReplicas
			sum.AvailableReplicas += st.AvailableReplicas
			if st.Reason != "" && !done(st) {
				// Only the quoted few are kept: 10,000 clusters' would be
				// joined for three.
				if nReasons++; len(reasons) < summarized {
					reasons = append(reasons, c.Name+": "+st.Reason)
				}
			}
		}
		sum.Reason = summarizeCount(reasons, nReasons-len(reasons))
		agg.FeedStatusDetails, agg.FeedStatusDetailsOmitted = details.list()
		out.Aggregated = append(out.Aggregated, agg)
	}
	out.ReadyClusters = len(in.Clusters) - len(notDone)

	out.Ready = metav1.Condition{Type: "Ready"}
	switch {
	case len(in.Clusters) == 0:
		out.Ready.Status, out.Ready.Reason, out.Ready.Message = metav1.ConditionFalse, ReasonNoClusters, "no cluster is bound: check spec.subscribers[].clusterAffinity against the ManagedClusters' labels, and spec.clusterTolerations against their taints"
	case len(failed) > 0:
		out.Ready.Status, out.Ready.Reason = metav1.ConditionFalse, ReasonDeploymentFailed
		out.Ready.Message = fmt.Sprintf("%d of %d Descriptions failed: %s", len(failed), out.Desired, Summarize(failed))
	case out.Completed < out.Desired:
		out.Ready.Status, out.Ready.Reason = metav1.ConditionFalse, ReasonRolloutInProgress
		out.Ready.Message = fmt.Sprintf("%d of %d Descriptions deployed; waiting for %s", out.Completed, out.Desired, Summarize(waiting))
	default:
		out.Ready.Status, out.Ready.Reason = metav1.ConditionTrue, ReasonReady
		out.Ready.Message = fmt.Sprintf("all %d Descriptions deployed in %d clusters", out.Desired, len(in.Clusters))
	}
	return out
}

// Listing is o's per-feed statuses with each feedStatusDetails cut to n
// clusters, the others counted in feedStatusDetailsOmitted: what Aggregate
// with Listed n makes, for any n up to the Listed o was made with. The
// status builder aggregates once and cuts each listing it tries from it.
// The lists share o's.
func (o Output) Listing(n int) []appsv1alpha1.AggregatedStatus {
	out := slices.Clone(o.Aggregated)
	for i := range out {
		a := &out[i]
		if len(a.FeedStatusDetails) <= n {
			continue
		}
		a.FeedStatusDetailsOmitted += int32(len(a.FeedStatusDetails) - max(n, 0))
		// Capped: listings share the details' array, and an append to one
		// must not write into another's.
		a.FeedStatusDetails = a.FeedStatusDetails[:max(n, 0):max(n, 0)]
		if n <= 0 {
			a.FeedStatusDetails = nil // as a list of none is built
		}
	}
	return out
}

// done is the one judgement of a feed in a cluster: the object is there as
// rendered and, for a workload, its replicas are available. The per-feed
// summary, its reason and the ready cluster count all use it.
func done(st appsv1alpha1.FeedStatus) bool {
	return st.Applied && st.Available
}

// stale says a deployer's report is about an earlier spec of d (deployers
// that do not set observedGeneration are taken at their word).
func stale(d *appsv1alpha1.Description) bool {
	return d.Status.ObservedGeneration != 0 && d.Status.ObservedGeneration < d.Generation
}

// summarized is how many items a summary quotes.
const summarized = 3

// Summarize joins the first few items and counts the rest: a message in
// the status stays short however many clusters it is about.
func Summarize(items []string) string {
	return summarizeCount(items, 0)
}

// summarizeCount is Summarize of items followed by more not collected.
func summarizeCount(items []string, more int) string {
	if len(items) > summarized {
		more += len(items) - summarized
		items = items[:summarized]
	}
	if more <= 0 {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items, "; "), more)
}

// MaxQuoteLength bounds each failure a condition's message quotes (at most
// a few, Summarize): the child's error or the hub's render failure, which
// the user needs whole to act on (a field is immutable, which override
// did not apply), so longer than MaxStatusReasonLength, which bounds the
// many per-cluster reasons of feedStatusDetails.
const MaxQuoteLength = 1 << 10

// Clip cuts a reason copied from a Description to
// MaxStatusReasonLength bytes (on a rune boundary), marking the cut.
func Clip(reason string) string {
	return ClipTo(reason, appsv1alpha1.MaxStatusReasonLength)
}

// ClipTo cuts s to at most max bytes (on a rune boundary), marking the cut.
func ClipTo(s string, max int) string {
	const mark = "..."
	if len(s) <= max {
		return s
	}
	cut := max - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// boundedDetails keeps the per-cluster entries of one feed that the
// status lists: at most max, those not done first, each group in the
// clusters' order. It holds no more than that however many clusters are
// added.
type boundedDetails struct {
	max           int
	notDone, done []appsv1alpha1.FeedStatusPerCluster
	added         int
}

func (b *boundedDetails) add(d appsv1alpha1.FeedStatusPerCluster, isDone bool) {
	b.added++
	switch {
	case !isDone && len(b.notDone) < b.max:
		b.notDone = append(b.notDone, d)
	case isDone && len(b.done) < b.max:
		b.done = append(b.done, d)
	}
}

// list is the entries to list and how many clusters they leave out.
func (b *boundedDetails) list() ([]appsv1alpha1.FeedStatusPerCluster, int32) {
	out := append(b.notDone, b.done...)
	if len(out) > b.max {
		out = out[:max(b.max, 0)]
	}
	return out, int32(b.added - len(out))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
