package main

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/server/hub/apps/scheduling"
)

// schedulingCase is one kind of decision timed over a simulated fleet.
type schedulingCase struct {
	what string
	spec appsv1alpha1.SubscriptionSpec
	// scaleUp times the incremental path: the round after a first one
	// (not timed), starting from its division on the clusters it bound, with
	// the replicas grown by a tenth.
	scaleUp bool
	// book, when set, holds what the other Subscriptions placed: each round
	// also reads from it the room they took on every cluster, and records
	// its own placement, as the Subscription controller does.
	book *scheduling.Book
}

type schedulingResult struct {
	what     string
	p50, p99 time.Duration
	bound    int
}

type schedulingResults struct {
	clusters, regions, rounds int
	cases                     []schedulingResult
}

// benchScheduling times the hub's scheduling decision (scheduling.Schedule,
// what the Subscription controller runs per round after reading its
// informers) over a fleet of simulated clusters: no control plane, since
// the decision reads nothing but its input. The clusters differ in labels,
// capacity and taints, as a real fleet's do, and half the fleet is already
// bound, so that keeping bindings stable is part of the work. One case adds
// what the controller does around the decision with its book of the other
// Subscriptions' placements (decide).
func benchScheduling(clusters, regions, rounds int) schedulingResults {
	fleet := make([]scheduling.Cluster, clusters)
	bound := sets.New[string]()
	for i := range fleet {
		c := scheduling.Cluster{
			Key:    fmt.Sprintf("clusternet-%05d/cluster-%05d", i, i),
			Labels: map[string]string{"region": fmt.Sprintf("region-%02d", i%regions), "tier": []string{"edge", "cloud"}[i%2]},
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU:    *resource.NewQuantity(int64(8+i%56), resource.DecimalSI),
				corev1.ResourceMemory: *resource.NewQuantity(int64(16+i%112)<<30, resource.BinarySI),
				corev1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
			},
		}
		if i%10 == 0 {
			c.Taints = []corev1.Taint{{Key: "maintenance", Effect: corev1.TaintEffectPreferNoSchedule}}
		}
		if i%2 == 0 {
			bound.Insert(c.Key)
		}
		fleet[i] = c
	}
	region := func(r int) appsv1alpha1.Subscriber {
		return appsv1alpha1.Subscriber{
			ClusterAffinity:  &metav1.LabelSelector{MatchLabels: map[string]string{"region": fmt.Sprintf("region-%02d", r)}},
			SubGroupStrategy: &appsv1alpha1.SubGroupStrategy{MinClusters: 3},
		}
	}
	var subgroups []appsv1alpha1.Subscriber
	for r := range regions {
		subgroups = append(subgroups, region(r))
	}
	dynamic := &appsv1alpha1.DividingScheduling{Type: appsv1alpha1.DynamicReplicaDividingType, DynamicDividing: &appsv1alpha1.DynamicDividing{Strategy: appsv1alpha1.SpreadDividingStrategy}}
	all := []appsv1alpha1.Subscriber{{ClusterAffinity: &metav1.LabelSelector{}}}
	dynamicSpec := func(subs []appsv1alpha1.Subscriber) appsv1alpha1.SubscriptionSpec {
		return appsv1alpha1.SubscriptionSpec{SchedulingStrategy: appsv1alpha1.DividingSchedulingStrategy, DividingScheduling: dynamic, Subscribers: subs}
	}
	cases := []schedulingCase{
		{what: "Dynamic dividing, by subgroup (" + fmt.Sprint(regions) + " regions, minClusters 3)", spec: appsv1alpha1.SubscriptionSpec{
			SchedulingStrategy: appsv1alpha1.DividingSchedulingStrategy, DividingScheduling: dynamic,
			SchedulingBySubGroup: ptr.To(true), Subscribers: subgroups}},
		{what: "Dynamic dividing, every cluster", spec: appsv1alpha1.SubscriptionSpec{
			SchedulingStrategy: appsv1alpha1.DividingSchedulingStrategy, DividingScheduling: dynamic, Subscribers: all}},
		{what: "Dynamic dividing, every cluster, scaled up by 10% from the division in force", spec: appsv1alpha1.SubscriptionSpec{
			SchedulingStrategy: appsv1alpha1.DividingSchedulingStrategy, DividingScheduling: dynamic, Subscribers: all}, scaleUp: true},
		{what: "Replication, every cluster", spec: appsv1alpha1.SubscriptionSpec{
			SchedulingStrategy: appsv1alpha1.ReplicaSchedulingStrategy, Subscribers: all}},
	}
	workloads := []scheduling.Workload{{Key: "apps/v1/Deployment/default/web", Replicas: 3000,
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")}}}
	preempting := dynamicSpec(all)
	preempting.Priority = ptr.To[int32](5)
	cases = append(cases, schedulingCase{what: fmt.Sprintf("Dynamic dividing, every cluster, reading and recording the book of %d other Subscriptions (priorities 0 to 9, preempting the lower)", otherSubscriptions),
		spec: preempting, book: otherPlacements(fleet, workloads[0].Requests)})

	out := schedulingResults{clusters: clusters, regions: regions, rounds: rounds}
	for _, c := range cases {
		in := scheduling.Input{Spec: &c.spec, Clusters: fleet, Bound: bound, Workloads: workloads}
		if c.scaleUp {
			in = scaledUp(in)
		}
		times := make([]time.Duration, 0, rounds)
		var res scheduling.Result
		for range rounds {
			start := time.Now()
			r, err := decide(in, c.book)
			times = append(times, time.Since(start))
			if err != nil {
				panic(fmt.Sprintf("scheduling %s: %v", c.what, err)) // the input above is valid
			}
			res = r
		}
		slices.Sort(times)
		out.cases = append(out.cases, schedulingResult{what: c.what, p50: percentile(times, 0.50), p99: percentile(times, 0.99), bound: len(res.Bindings)})
	}
	return out
}

// otherSubscriptions is how many Subscriptions the book of the last case
// holds: each placed 2 replicas on 100 of the clusters.
const otherSubscriptions = 300

// otherPlacements is a book of otherSubscriptions Dynamic Subscriptions of
// priorities 0 to 9, each placing 2 replicas requesting requests on 100
// clusters of fleet.
func otherPlacements(fleet []scheduling.Cluster, requests corev1.ResourceList) *scheduling.Book {
	book := scheduling.NewBook()
	for i := range otherSubscriptions {
		e := scheduling.Entry{Priority: int32(i % 10), Movable: true, Preempts: true, On: map[string]scheduling.Usage{}}
		for j := range 100 {
			u := scheduling.Usage{}
			u.AddReplicas(2, requests)
			e.On[fleet[(i*7+j*13)%len(fleet)].Key] = u
		}
		book.Record(fmt.Sprintf("default/other-%03d", i), e)
	}
	return book
}

// decide is one round: with a book, the Subscription controller's (read
// the room the others took on every cluster, schedule, record what fits),
// without, the decision alone.
func decide(in scheduling.Input, book *scheduling.Book) (scheduling.Result, error) {
	if book == nil {
		return scheduling.Schedule(in)
	}
	const key = "default/web"
	prio := ptr.Deref(in.Spec.Priority, 0)
	in.Clusters = slices.Clone(in.Clusters)
	for i := range in.Clusters {
		in.Clusters[i].Others, in.Clusters[i].Preemptible = book.Room(key, in.Clusters[i].Key, prio, true)
	}
	res, err := scheduling.Schedule(in)
	if err != nil {
		return res, err
	}
	e := scheduling.Entry{Priority: prio, Movable: true, Preempts: true, Short: res.Short, On: map[string]scheduling.Usage{}}
	for _, wl := range in.Workloads {
		for ck, n := range res.Fits[wl.Key] {
			if e.On[ck] == nil {
				e.On[ck] = scheduling.Usage{}
			}
			e.On[ck].AddReplicas(n, wl.Requests)
		}
	}
	book.Record(key, e)
	return res, nil
}

// scaledUp is the round after in: it starts from in's division, on the
// clusters in binds, and divides each workload grown by a tenth. It panics
// unless that round only adds replicas, so that the case times the
// incremental path and not a division from nothing.
func scaledUp(in scheduling.Input) scheduling.Input {
	first, err := scheduling.Schedule(in)
	if err != nil {
		panic(fmt.Sprintf("scheduling the first round: %v", err)) // the input is valid
	}
	next := in
	next.Bound, next.Previous = sets.New(first.Bindings...), first.Replicas
	next.Workloads = slices.Clone(in.Workloads)
	for i := range next.Workloads {
		next.Workloads[i].Replicas += next.Workloads[i].Replicas / 10
	}
	res, err := scheduling.Schedule(next)
	if err != nil {
		panic(fmt.Sprintf("scheduling the scale-up: %v", err))
	}
	for wl, shares := range first.Replicas {
		for k, n := range shares {
			if res.Replicas[wl][k] < n {
				panic(fmt.Sprintf("the scale-up of %s took replicas from %s (%d to %d): it did not start from the division in force", wl, k, n, res.Replicas[wl][k]))
			}
		}
	}
	return next
}

func schedulingSection(r schedulingResults) string {
	us := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	var b strings.Builder
	fmt.Fprintf(&b, "## Scheduling: one decision over %d simulated clusters\n\n", r.clusters)
	fmt.Fprintf(&b, "Measured %s on %s/%s, %d CPUs, %d rounds of each.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), r.rounds)
	fmt.Fprintf(&b, "Command: `make bench` (`go run ./test/bench --only scheduling`)\n\n")
	fmt.Fprintf(&b, "The hub's decision (`scheduling.Schedule`) for one Subscription with one Deployment of 3,000 replicas of\n")
	fmt.Fprintf(&b, "500m CPU / 512Mi, over %d clusters in %d regions with varied allocatable CPU and memory, a\n", r.clusters, r.regions)
	fmt.Fprintf(&b, "PreferNoSchedule taint on every tenth and half of them already bound. No control plane: the decision reads\n")
	fmt.Fprintf(&b, "only its input; reading the informers into it is not counted. The rows divide from nothing but two. The\n")
	fmt.Fprintf(&b, "\"scaled up\" row times the incremental path: it starts from the division a first round (not timed) made, on the\n")
	fmt.Fprintf(&b, "clusters that round bound, as the hub starts from what the Bases say each cluster runs, and the\n")
	fmt.Fprintf(&b, "Deployment is scaled up by 10%% (3,300 replicas): only the 300 new replicas are placed, by the capacity left.\n")
	fmt.Fprintf(&b, "The \"book\" row times a whole round of the Subscription controller against its book of what %d other\n", otherSubscriptions)
	fmt.Fprintf(&b, "Subscriptions placed (2 replicas each on 100 clusters, priorities 0 to 9): reading the room they took on\n")
	fmt.Fprintf(&b, "every cluster and the part of it of lower priority, which it may preempt, the decision, and recording what\n")
	fmt.Fprintf(&b, "it placed; each round starts from the last one's record.\n\n")
	fmt.Fprintf(&b, "| decision | p50 | p99 | clusters bound |\n|---|---|---|---|\n")
	for _, c := range r.cases {
		fmt.Fprintf(&b, "| %s | %s | %s | %d |\n", c.what, us(c.p50), us(c.p99), c.bound)
	}
	fmt.Fprintf(&b, "\nTarget: p99 ≤ 10 ms at 1,000 clusters.\n")
	return b.String()
}
