package apps

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
	"github.com/clusternet/clusternet/pkg/apps/render"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/server/hub/apps/aggregate"
	"github.com/clusternet/clusternet/pkg/server/hub/apps/scheduling"
)

// DefaultSchedulerName is the scheduler this controller is: Subscriptions
// naming another in spec.schedulerName are bound by that one.
const DefaultSchedulerName = "default"

// retryNotServed is how soon a Subscription naming a kind the parent does
// not serve looks again (its CRD may be installed meanwhile).
const retryNotServed = time.Minute

// syncSubscription brings a Subscription's Bases, FeedInventory and status
// up to date, in four stages with one job each:
//
//  1. resolveFeeds: the feeds to the objects they name, and the FeedInventory;
//  2. schedule: the clusters to bind, and each one's share of replicas;
//  3. applyBases: one Base per bound cluster, none elsewhere;
//  4. writeStatus: the status, from what 1-3 concluded (the plan) and what
//     the Bases and Descriptions report.
//
// Stages 1-3 run only when something they read changed since they last ran:
// the event handlers tell such changes (inputsChanged) from those that only
// concern the status (statusChanged: a deployer's report on a Description,
// a Base's Rendered condition), and the plan of the last run is kept until
// then (plan.go). So a rollout's reports do not resolve and schedule again
// at each step. Nothing reaches a Base unless every feed resolves: a bad
// feed leaves every cluster as it was.
func (c *Controller) syncSubscription(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	stamp := c.plans.begin() // before reading any input, this Subscription included: see plans
	sub, err := c.subs.Subscriptions(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.plans.forget(key)
		c.forgetPlacement(key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if sub.DeletionTimestamp != nil {
		c.plans.forget(key)
		c.forgetPlacement(key)
		return 0, c.finalizeSubscription(ctx, sub)
	}
	if upd := sub.DeepCopy(); controller.AddFinalizer(upd) {
		if sub, err = c.client.AppsV1alpha1().Subscriptions(ns).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return 0, err
		}
	}
	p := c.currentPlan(key, sub)
	if p == nil {
		var retry time.Duration
		if p, retry, err = c.makePlan(ctx, key, stamp, sub); p == nil {
			return retry, err
		}
	}
	return 0, c.writeStatus(ctx, sub, p)
}

// makePlan runs stages 1-3 and keeps what they concluded, unless an input
// changed since stamp. A nil plan with a nil error is a stage that failed
// on the Subscription's account (a feed that does not resolve, a bad
// selector) and wrote why into its status.
func (c *Controller) makePlan(ctx context.Context, key string, stamp uint64, sub *appsv1alpha1.Subscription) (*plan, time.Duration, error) {
	bases := c.basesOf(sub)
	res, retry, err := c.resolveFeeds(ctx, sub, bases)
	if res == nil {
		return nil, retry, err
	}
	pl, err := c.schedule(ctx, sub, bases, res)
	if pl == nil {
		return nil, 0, err
	}
	bound, conflicts, err := c.applyBases(ctx, sub, bases, res, pl)
	if err != nil {
		return nil, 0, err
	}
	c.announcePreemption(sub, pl.victims)
	p := conclude(sub, res, pl, bound, conflicts)
	// A Base name another Subscription holds is a failure like the others
	// and is never kept: the Base freeing up is an event of its owner, not
	// of this Subscription, so only a fresh look at every sync sees it.
	if len(conflicts) == 0 {
		c.plans.put(key, stamp, p)
	}
	return p, 0, nil
}

// resolution is what stage 1 concluded.
type resolution struct {
	resolved  []feeds.Resolved
	mappings  []mappingAnswer
	condition metav1.Condition
}

// resolveFeeds is stage 1: it resolves the feeds and writes the
// FeedInventory. Feeds that do not resolve are recorded in the status
// (nil resolution), and nothing else is touched.
func (c *Controller) resolveFeeds(ctx context.Context, sub *appsv1alpha1.Subscription, bases []*appsv1alpha1.Base) (*resolution, time.Duration, error) {
	c.runs.resolve.Add(1)
	resolved, mappings, ferrs := c.resolve(sub)
	if len(ferrs) > 0 {
		retry, err := c.feedsFailed(ctx, sub, bases, ferrs)
		return nil, retry, err
	}
	if err := c.ensureInventory(ctx, sub, resolved); err != nil {
		return nil, 0, err
	}
	return &resolution{resolved: resolved, mappings: mappings,
		condition: metav1.Condition{Type: ConditionFeedsResolved, Status: metav1.ConditionTrue, Reason: ReasonResolved,
			Message: fmt.Sprintf("%d feeds resolve to %d objects", len(sub.Spec.Feeds), len(resolved)), ObservedGeneration: sub.Generation}}, 0, nil
}

// placement is what stage 2 concluded.
type placement struct {
	scheduling.Result
	// external: another scheduler (spec.schedulerName) chose the bindings.
	external bool
	// clusters are the ManagedClusters by "<namespace>/<name>".
	clusters map[string]*clusterv1beta1.ManagedCluster
	// victims[cluster key] are the Subscriptions whose room this decision
	// takes there (decide).
	victims map[string][]string
}

func external(sub *appsv1alpha1.Subscription) bool {
	return sub.Spec.SchedulerName != "" && sub.Spec.SchedulerName != DefaultSchedulerName
}

// schedule is stage 2: it chooses the clusters, or takes those another
// scheduler chose. A selector that does not parse is recorded in the
// status (nil placement).
func (c *Controller) schedule(ctx context.Context, sub *appsv1alpha1.Subscription, bases []*appsv1alpha1.Base, res *resolution) (*placement, error) {
	c.runs.schedule.Add(1)
	mcls, err := c.clusters.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	pl := &placement{external: external(sub), clusters: map[string]*clusterv1beta1.ManagedCluster{}}
	dynamic := !pl.external && scheduling.DividesDynamically(&sub.Spec)
	if dynamic {
		// Dynamic dividing starts from the division in force, which must
		// be one view of every Base: see inForce.
		if bases, err = c.liveBases(ctx, sub); err != nil {
			return nil, err
		}
	}
	// Bound is where the Subscription has a Base: the Bases are the truth
	// (status may be behind in the cache, and acting on it could unbind).
	// With the gate FailOver on, a Base kept on a failed-over cluster binds
	// nothing: its replicas were placed elsewhere (failover.go). Off, it is
	// bound as any Base, and applyBase clears its mark.
	boundNS, keptNS := c.boundNamespaces(bases)
	in := scheduling.Input{Spec: &sub.Spec, Bound: sets.New[string](), FailOver: c.failOver, Kept: sets.New[string]()}
	for _, m := range mcls {
		if m.DeletionTimestamp != nil {
			continue
		}
		k := m.Namespace + "/" + m.Name
		pl.clusters[k] = m
		if boundNS.Has(m.Namespace) {
			in.Bound.Insert(k)
		}
		if keptNS.Has(m.Namespace) {
			in.Kept.Insert(k)
		}
		in.Clusters = append(in.Clusters, clusterOf(m))
	}
	workloads := workloadsOf(res.resolved)
	if sub.Spec.SchedulingStrategy == appsv1alpha1.DividingSchedulingStrategy {
		in.Workloads = workloads
	}
	if dynamic {
		in.Previous = inForce(sub, bases, in.Bound)
	}
	if pl.external {
		// Another scheduler binds this Subscription: it writes
		// status.bindingClusters (and status.replicas when dividing); the
		// hub makes the Bases for the clusters it chose.
		if msg := truncatedBindings(sub); msg != "" {
			return nil, c.notScheduled(ctx, sub, res, ReasonTruncatedBindings, msg)
		}
		for _, ck := range sub.Status.BindingClusters {
			if _, ok := pl.clusters[ck]; ok {
				pl.Bindings = append(pl.Bindings, ck)
			}
		}
		if pl.Replicas, err = externalReplicas(sub); err != nil {
			return nil, c.notScheduled(ctx, sub, res, ReasonInvalidBindings, err.Error())
		}
		c.placedElsewhere(sub.Namespace+"/"+sub.Name, sub, workloads, pl)
		return pl, nil
	}
	if err = c.decide(sub.Namespace+"/"+sub.Name, sub, in, workloads, pl); err != nil {
		reason := ReasonInvalidClusterAffinity
		if sg := (*scheduling.SubGroupError)(nil); errors.As(err, &sg) {
			reason = scheduling.ReasonInvalidSubGroupStrategy
		}
		return nil, c.notScheduled(ctx, sub, res, reason, err.Error())
	}
	return pl, nil
}

// boundNamespaces are the dedicated namespaces of the clusters bases bind:
// where the Subscription has a Base not being deleted. With the gate
// FailOver on, a Base kept on a failed-over cluster binds nothing (its
// replicas were placed elsewhere: failover.go) and is in kept instead.
func (c *Controller) boundNamespaces(bases []*appsv1alpha1.Base) (bound, kept sets.Set[string]) {
	bound, kept = sets.New[string](), sets.New[string]()
	for _, b := range bases {
		switch {
		case b.DeletionTimestamp != nil:
		case c.failOver && keptFailedOver(b):
			kept.Insert(b.Namespace)
		default:
			bound.Insert(b.Namespace)
		}
	}
	return bound, kept
}

// truncatedBindings explains, for a Subscription another scheduler binds,
// a status.bindingClusters that is still the one this hub wrote and
// truncated (bindingClustersOmitted): not a scheduler's choice, and
// binding only what it lists would unbind every cluster it left out.
// Empty when the list is the scheduler's.
func truncatedBindings(sub *appsv1alpha1.Subscription) string {
	if sub.Status.BindingClustersOmitted == 0 {
		return ""
	}
	return fmt.Sprintf("status.bindingClusters lists %d clusters and status.bindingClustersOmitted counts %d more: the hub wrote it, truncated to fit the status in %d bytes (MaxStatusBytes), before spec.schedulerName named %q. "+
		"Scheduler %q must write the whole status.bindingClusters, without status.bindingClustersOmitted (a typed client of upstream Clusternet's API drops it); until then the Bases stay as they are",
		len(sub.Status.BindingClusters), sub.Status.BindingClustersOmitted, appsv1alpha1.MaxStatusBytes, sub.Spec.SchedulerName, sub.Spec.SchedulerName)
}

// liveBases are the Subscription's Bases (this incarnation) as the API has
// them, not as the cache does.
func (c *Controller) liveBases(ctx context.Context, sub *appsv1alpha1.Subscription) ([]*appsv1alpha1.Base, error) {
	list, err := c.client.AppsV1alpha1().Bases(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{appsv1alpha1.LabelSubscriptionUID: string(sub.UID)}).String(),
	})
	if err != nil {
		return nil, err
	}
	out := make([]*appsv1alpha1.Base, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out, nil
}

// inForce is the division dynamic dividing starts from, by feed and bound
// cluster: what each live Base (read from the API: liveBases) says its
// cluster runs, in render.AnnotationReplicas, which only the hub writes and its
// Base controller renders into the cluster's objects.
//
// Not the status: it records the same division but is written after the
// Bases, at the end of a round, so it may be a round behind them (not yet
// in the cache, or not written: the round failed between the two), and
// starting from it would move again what the last round placed. Not the
// cached Bases either: a round that starts when the cache has one Base the
// last round wrote but not yet another would count the old share of the
// other, and place or remove the difference for nothing. A List is one
// view of all of them, with what the last round wrote.
//
// A Base without the annotation (written by upstream Clusternet, which
// records its division in the status only) takes its cluster's share from
// the status; one in upstream's shape that does not parse counts as none,
// as does an annotation that does not parse (the Base controller reports
// it).
func inForce(sub *appsv1alpha1.Subscription, bases []*appsv1alpha1.Base, bound sets.Set[string]) map[string]map[string]int32 {
	onBases := map[string][]render.ReplicaSetting{}
	for _, b := range bases {
		if b.DeletionTimestamp != nil {
			continue
		}
		if s, ok := b.Annotations[render.AnnotationReplicas]; ok {
			rs, _ := render.DecodeReplicas(s)
			onBases[b.Namespace] = rs
		}
	}
	fromStatus, _ := externalReplicas(sub)
	out := map[string]map[string]int32{}
	add := func(feed, cluster string, n int32) {
		if out[feed] == nil {
			out[feed] = map[string]int32{}
		}
		out[feed][cluster] = n
	}
	for k := range bound {
		ns, _, _ := strings.Cut(k, "/")
		rs, ok := onBases[ns]
		if !ok {
			for feed, perCluster := range fromStatus {
				if n, ok := perCluster[k]; ok {
					add(feed, k, n)
				}
			}
			continue
		}
		for _, r := range rs {
			add(r.Feed, k, r.Replicas)
		}
	}
	return out
}

// notScheduled records why sub could not be scheduled (Scheduled and Ready
// False, a warning event): the caller then has no placement.
func (c *Controller) notScheduled(ctx context.Context, sub *appsv1alpha1.Subscription, res *resolution, reason, msg string) error {
	status := sub.Status.DeepCopy()
	setCondition(&status.Conditions, res.condition)
	if setCondition(&status.Conditions, metav1.Condition{Type: ConditionScheduled, Status: metav1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: sub.Generation}) {
		c.events.Event(sub, corev1.EventTypeWarning, reason, msg)
	}
	setCondition(&status.Conditions, metav1.Condition{Type: ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonNotScheduled,
		Message: "not scheduled: " + msg, ObservedGeneration: sub.Generation})
	return c.updateStatus(ctx, sub, status)
}

// externalReplicas is the division the status records, as another
// scheduler (or this hub) wrote it: this API's status.replicasByCluster
// or, from a scheduler written against upstream Clusternet,
// status.replicas (one count per binding cluster).
func externalReplicas(sub *appsv1alpha1.Subscription) (map[string]map[string]int32, error) {
	if len(sub.Status.Replicas) > 0 || len(sub.Status.BindingReplicas) == 0 {
		return sub.Status.Replicas, nil
	}
	return appsv1alpha1.ReplicasByClusterOf(sub.Status.BindingClusters, sub.Status.BindingReplicas)
}

// applyBases is stage 3: one Base per bound cluster, none elsewhere. bound
// are the clusters whose Base is the Subscription's now; conflicts explain
// Base names another Subscription holds.
func (c *Controller) applyBases(ctx context.Context, sub *appsv1alpha1.Subscription, bases []*appsv1alpha1.Base, res *resolution, pl *placement) (bound, conflicts []string, err error) {
	c.runs.apply.Add(1)
	wanted := sets.New[string]()
	desired := make([]*appsv1alpha1.Base, len(pl.Bindings))
	for i, ck := range pl.Bindings {
		cns, _, _ := strings.Cut(ck, "/")
		wanted.Insert(cns)
		desired[i] = c.desiredBase(sub, pl.clusters[ck], res.resolved, pl.Replicas, ck)
	}
	// Outcomes count even when some writes failed: a Base written this
	// round is announced now, since the next round finds it in place.
	outcomes, applyErr := c.applyBasesAtOnce(ctx, sub, desired)
	var created []string
	for i, ck := range pl.Bindings {
		o := outcomes[i]
		if o.conflict != "" {
			conflicts = append(conflicts, o.conflict)
		}
		if o.created {
			created = append(created, desired[i].Namespace)
		}
		if o.ok {
			bound = append(bound, ck)
			c.announceFailback(sub, o.unmarked, ck, pl)
		}
	}
	if len(created) > 0 {
		// One event per round, not per cluster: a thousand clusters bound
		// at once would be a thousand parent writes (or, past the event
		// recorder's spam filter, a handful and then silence).
		what := fmt.Sprintf("%d more clusters", len(created))
		if len(created) == 1 {
			what = "1 more cluster"
		}
		c.events.Eventf(sub, corev1.EventTypeNormal, "Bound", "bound to %s: created Base %s in namespace %s",
			what, sub.Name, aggregate.Summarize(created))
	}
	if applyErr != nil {
		return nil, nil, applyErr
	}
	for _, b := range bases {
		if wanted.Has(b.Namespace) || b.DeletionTimestamp != nil {
			continue
		}
		kept, err := c.keepFailedOver(ctx, sub, b, pl)
		if err != nil {
			return nil, nil, err
		}
		if kept {
			continue
		}
		klog.FromContext(ctx).Info("Unbinding cluster", "subscription", klog.KObj(sub), "base", klog.KObj(b))
		if err := c.client.AppsV1alpha1().Bases(b.Namespace).Delete(ctx, b.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &b.UID}}); err != nil && !apierrors.IsNotFound(err) {
			return nil, nil, err
		}
		if !c.announceUnbound(sub, b, pl) {
			c.events.Eventf(sub, corev1.EventTypeNormal, "Unbound", "cluster %s no longer matches: deleting Base %s/%s and its Descriptions", b.Namespace, b.Namespace, b.Name)
		}
	}
	return bound, conflicts, nil
}

// conclude is the plan stages 1-3 made: what writeStatus needs of them.
func conclude(sub *appsv1alpha1.Subscription, res *resolution, pl *placement, bound, conflicts []string) *plan {
	p := &plan{uid: sub.UID, generation: sub.Generation, mappings: res.mappings, feedsResolved: res.condition,
		bound: bound, boundSet: sets.New(bound...)}
	p.specHash, p.specHashValue = specHash(&sub.Spec)
	if pl.external {
		p.external = &externalBindings{clusters: slices.Clone(sub.Status.BindingClusters), replicas: copyReplicas(pl.Replicas)}
	}
	p.feeds = make([]appsv1alpha1.Feed, 0, len(res.resolved))
	for _, r := range res.resolved {
		p.feeds = append(p.feeds, r.Feed)
	}
	for _, ck := range bound {
		m := pl.clusters[ck]
		p.clusters = append(p.clusters, aggregate.Cluster{Namespace: m.Namespace, Name: m.Name, ID: string(m.Spec.ClusterID)})
	}
	if sub.Spec.SchedulingStrategy == appsv1alpha1.DividingSchedulingStrategy && !pl.external {
		p.replicas = map[string]map[string]int32{}
		for feed, perCluster := range pl.Replicas {
			for _, ck := range bound {
				if p.replicas[feed] == nil {
					p.replicas[feed] = map[string]int32{}
				}
				p.replicas[feed][ck] = perCluster[ck]
			}
		}
	}
	sched := metav1.Condition{Type: ConditionScheduled, Status: metav1.ConditionTrue, Reason: ReasonScheduled,
		Message: fmt.Sprintf("bound to %d clusters", len(bound)), ObservedGeneration: sub.Generation}
	if len(pl.Warnings) > 0 {
		sched.Message += "; " + strings.Join(pl.Warnings, "; ")
	}
	switch {
	case len(conflicts) > 0:
		sched.Status, sched.Reason = metav1.ConditionFalse, ReasonBaseNameConflict
		sched.Message = strings.Join(conflicts, "; ")
	case pl.external && len(pl.Bindings) == 0:
		sched.Status, sched.Reason = metav1.ConditionFalse, ReasonNotScheduled
		sched.Message = fmt.Sprintf("waiting for scheduler %q (spec.schedulerName) to set status.bindingClusters", sub.Spec.SchedulerName)
	case len(pl.Bindings) == 0 && pl.Short:
		// Dynamic dividing found matching clusters, none with room.
		sched.Status, sched.Reason = metav1.ConditionFalse, ReasonNoRoom
		sched.Message = strings.Join(pl.Warnings, "; ")
	case len(pl.Bindings) == 0:
		sched.Status, sched.Reason = metav1.ConditionFalse, ReasonNoMatchingClusters
		sched.Message = "no ManagedCluster matches spec.subscribers[].clusterAffinity (and tolerates its taints): check the selectors against `kubectl get mcls -A --show-labels`"
	}
	p.scheduled = sched
	return p
}

func copyReplicas(in map[string]map[string]int32) map[string]map[string]int32 {
	if in == nil {
		return nil
	}
	out := make(map[string]map[string]int32, len(in))
	for k, v := range in {
		out[k] = maps.Clone(v)
	}
	return out
}

// writeStatus is stage 4: the status from the plan, the Bases' Rendered
// conditions and the Descriptions' reports. It is all that runs when only
// those reports changed.
func (c *Controller) writeStatus(ctx context.Context, sub *appsv1alpha1.Subscription, p *plan) error {
	c.runs.status.Add(1)
	status := sub.Status.DeepCopy()
	setCondition(&status.Conditions, p.feedsResolved)
	sched := p.scheduled
	if setCondition(&status.Conditions, sched) && sched.Status == metav1.ConditionFalse {
		c.events.Event(sub, corev1.EventTypeWarning, sched.Reason, sched.Message)
	}
	rendered := c.renderedCondition(sub, p.boundSet)
	if setCondition(&status.Conditions, rendered) && rendered.Status == metav1.ConditionFalse {
		c.events.Event(sub, corev1.EventTypeWarning, rendered.Reason, rendered.Message)
	}
	descs, _ := c.descIndex.ByIndex(indexDescsBySubscription, sub.Namespace+"/"+sub.Name)
	var mine []*appsv1alpha1.Description
	for _, o := range descs {
		if d := o.(*appsv1alpha1.Description); d.Labels[appsv1alpha1.LabelSubscriptionUID] == string(sub.UID) {
			mine = append(mine, d)
		}
	}
	ready, listed := summedStatusFrom(status, p, mine, sub.Name, c.listings.get(sub.UID))
	c.listings.put(sub.UID, listed)
	ready.ObservedGeneration = sub.Generation
	switch {
	case sched.Status == metav1.ConditionFalse && len(p.bound) == 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, ReasonNotScheduled, "not scheduled: "+sched.Message
	case rendered.Status == metav1.ConditionFalse:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, rendered.Reason, rendered.Message
	case sched.Status == metav1.ConditionFalse && ready.Status == metav1.ConditionTrue:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, sched.Reason, sched.Message
	}
	setCondition(&status.Conditions, ready)
	return c.updateStatus(ctx, sub, status)
}

// summedStatus sets the parts of status a plan and the Descriptions'
// reports make (bindings, spec hash, aggregated statuses and counts) and
// returns the rollout's Ready condition as the reports judge it. Every
// per-cluster list names as many clusters as fit the status in
// MaxStatusBytes (summedStatusFrom).
func summedStatus(status *appsv1alpha1.SubscriptionStatus, p *plan, descs []*appsv1alpha1.Description, baseName string) metav1.Condition {
	ready, _ := summedStatusFrom(status, p, descs, baseName, 0)
	return ready
}

// listedStatus is summedStatus listing n clusters in each per-cluster list.
func listedStatus(status *appsv1alpha1.SubscriptionStatus, p *plan, descs []*appsv1alpha1.Description, baseName string, n int) metav1.Condition {
	agg := aggregateStatuses(aggregate.Input{Feeds: p.feeds, Clusters: p.clusters, Descriptions: descs, BaseName: baseName, Listed: n})
	return setListed(status, p, agg, n)
}

// setListed sets in status the parts listedStatus does from agg, an
// aggregation listing at least n clusters.
func setListed(status *appsv1alpha1.SubscriptionStatus, p *plan, agg aggregate.Output, n int) metav1.Condition {
	if p.external == nil {
		setBindings(status, p.bound, p.replicas, n)
	} else {
		// The scheduler's list, as it wrote it.
		status.BoundClusters = int32(len(status.BindingClusters))
	}
	status.SpecHash, status.SpecHashValue = p.specHash, p.specHashValue
	status.AggregatedStatuses = agg.Listing(n)
	status.DesiredReleases, status.CompletedReleases = agg.Desired, agg.Completed
	status.Ready = fmt.Sprintf("%d/%d", agg.ReadyClusters, status.BoundClusters)
	return agg.Ready
}

// setBindings records in status the clusters bound and the division
// among them, bounded: bindingClusters lists the first n clusters by key
// and counts the others in bindingClustersOmitted; replicasByCluster and
// replicas (upstream Clusternet's shape of the same division, for its
// clients) are about the listed clusters only. The hub's memory of the
// others is its plan and the Bases (each Base's replicas annotation holds
// its cluster's share). boundClusters, the CLUSTERS printer column (a
// column cannot count a list), counts all.
func setBindings(status *appsv1alpha1.SubscriptionStatus, bound []string, replicas map[string]map[string]int32, n int) {
	listed := slices.Sorted(slices.Values(bound))
	status.BoundClusters, status.BindingClustersOmitted = int32(len(listed)), 0
	if len(listed) > n {
		status.BindingClustersOmitted = int32(len(listed) - n)
		listed = listed[:n]
	}
	status.BindingClusters = listed
	status.Replicas = nil
	if replicas != nil {
		status.Replicas = make(map[string]map[string]int32, len(replicas))
		for feed, perCluster := range replicas {
			status.Replicas[feed] = make(map[string]int32, len(listed))
			for _, ck := range listed {
				if n, ok := perCluster[ck]; ok {
					status.Replicas[feed][ck] = n
				}
			}
		}
	}
	status.BindingReplicas = appsv1alpha1.BindingReplicasOf(status.BindingClusters, status.Replicas)
}

// resolve resolves the feeds; a kind the parent does not serve makes the
// mapper rediscover (at most every resetEvery) and try once more. mappings
// are the mapper's answers the resolution relied on.
func (c *Controller) resolve(sub *appsv1alpha1.Subscription) ([]feeds.Resolved, []mappingAnswer, []*feeds.Error) {
	src := &source{c: c}
	rec := &recordingMapper{RESTMapper: c.mapper}
	resolved, errs := feeds.Resolve(sub.Spec.Feeds, src, rec)
	if !slices.ContainsFunc(errs, func(e *feeds.Error) bool { return e.Reason == feeds.ReasonKindNotServed }) {
		return resolved, rec.asked, errs
	}
	if !c.mapperResets.Allow(c.resetEvery) {
		return resolved, rec.asked, errs
	}
	c.mapper.Reset()
	rec = &recordingMapper{RESTMapper: c.mapper}
	resolved, errs = feeds.Resolve(sub.Spec.Feeds, src, rec)
	return resolved, rec.asked, errs
}

// feedsFailed records feeds that do not resolve and touches nothing else.
func (c *Controller) feedsFailed(ctx context.Context, sub *appsv1alpha1.Subscription, bases []*appsv1alpha1.Base, errs []*feeds.Error) (time.Duration, error) {
	status := sub.Status.DeepCopy()
	msgs := make([]string, 0, len(errs))
	retry := time.Duration(0)
	for _, e := range errs {
		msgs = append(msgs, e.Error())
		if e.Reason == feeds.ReasonKindNotServed {
			retry = retryNotServed
		}
	}
	msg := strings.Join(msgs, "; ")
	changed := setCondition(&status.Conditions, metav1.Condition{Type: ConditionFeedsResolved, Status: metav1.ConditionFalse, Reason: errs[0].Reason,
		Message: msg, ObservedGeneration: sub.Generation})
	kept := "no cluster is changed until every feed resolves"
	if len(bases) > 0 {
		kept = fmt.Sprintf("the %d bound clusters keep their Descriptions as they were until every feed resolves", len(bases))
	}
	setCondition(&status.Conditions, metav1.Condition{Type: ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonFeedsNotResolved,
		Message: msg + "; " + kept, ObservedGeneration: sub.Generation})
	if changed {
		c.events.Event(sub, corev1.EventTypeWarning, errs[0].Reason, msg+"; "+kept)
		for _, b := range bases {
			c.events.Eventf(b, corev1.EventTypeWarning, ReasonFeedsNotResolved, "Subscription %s/%s: %s; this Base and its Descriptions stay as they were", sub.Namespace, sub.Name, msg)
			for _, suffix := range []string{appsv1alpha1.DescriptionGenericSuffix, appsv1alpha1.DescriptionHelmSuffix} {
				if d, err := c.descs.Descriptions(b.Namespace).Get(b.Name + suffix); err == nil {
					c.events.Eventf(d, corev1.EventTypeWarning, ReasonFeedsNotResolved, "Subscription %s/%s: %s; this Description stays as it was", sub.Namespace, sub.Name, msg)
				}
			}
		}
	}
	return retry, c.updateStatus(ctx, sub, status)
}

// basesOf are the Subscription's Bases (this incarnation: same uid).
func (c *Controller) basesOf(sub *appsv1alpha1.Subscription) []*appsv1alpha1.Base {
	objs, _ := c.baseIndex.ByIndex(indexBasesBySubscription, sub.Namespace+"/"+sub.Name)
	var out []*appsv1alpha1.Base
	for _, o := range objs {
		if b := o.(*appsv1alpha1.Base); b.Labels[appsv1alpha1.LabelSubscriptionUID] == string(sub.UID) {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b *appsv1alpha1.Base) int { return strings.Compare(a.Namespace, b.Namespace) })
	return out
}

func subscriptionLabels(sub *appsv1alpha1.Subscription, clusterID string) map[string]string {
	return map[string]string{
		appsv1alpha1.LabelSubscriptionName:      sub.Name,
		appsv1alpha1.LabelSubscriptionNamespace: sub.Namespace,
		appsv1alpha1.LabelSubscriptionUID:       string(sub.UID),
		appsv1alpha1.LabelClusterID:             clusterID,
	}
}

func (c *Controller) desiredBase(sub *appsv1alpha1.Subscription, m *clusterv1beta1.ManagedCluster, resolved []feeds.Resolved, replicas map[string]map[string]int32, clusterKey string) *appsv1alpha1.Base {
	b := &appsv1alpha1.Base{
		ObjectMeta: metav1.ObjectMeta{
			Name:       sub.Name,
			Namespace:  m.Namespace,
			Labels:     subscriptionLabels(sub, string(m.Spec.ClusterID)),
			Finalizers: []string{appsv1alpha1.Finalizer},
		},
		Spec: appsv1alpha1.BaseSpec{Feeds: make([]appsv1alpha1.Feed, 0, len(resolved))},
	}
	var settings []render.ReplicaSetting
	for _, r := range resolved {
		b.Spec.Feeds = append(b.Spec.Feeds, r.Feed)
		k := feeds.Key(r.Feed)
		if perCluster, ok := replicas[k]; ok {
			_, path, _ := feeds.Replicas(r)
			settings = append(settings, render.ReplicaSetting{Feed: k, Path: path, Replicas: perCluster[clusterKey]})
		}
	}
	b.Annotations = map[string]string{render.AnnotationSubscriptionGeneration: strconv.FormatInt(sub.Generation, 10)}
	if s := render.EncodeReplicas(settings); s != "" {
		b.Annotations[render.AnnotationReplicas] = s
	}
	return b
}

// baseOutcome is what applyBase did with one Base: ok says the Base is
// the Subscription's now (created says it was created just now); conflict
// explains a name taken by another Subscription (left untouched); unmarked
// is the Base as it was before this write took its failed-over mark away.
type baseOutcome struct {
	ok, created bool
	conflict    string
	// unmarked is set only by the write that removed the mark, not from
	// the round's earlier look at the cache: a round that began before the
	// cache showed the mark (or showed it gone) would otherwise miss the
	// cluster's return or announce it twice.
	unmarked *appsv1alpha1.Base
}

// defaultBasesAtOnce bounds the Bases one Subscription's round writes at a
// time: each write waits on the parent for milliseconds, and a round that
// bound a thousand clusters one after the other took that many round trips.
const defaultBasesAtOnce = 32

// applyBasesAtOnce applies every desired Base, c.basesAtOnce at a time, and
// returns their outcomes in the same order (a zero outcome where the write
// failed) and the first failure, with how many more there were. One Base's
// failure (a conflict with a write the cache has not shown yet, at a
// thousand Bases not rare) does not stop the others: the next round redoes
// only what failed.
func (c *Controller) applyBasesAtOnce(ctx context.Context, sub *appsv1alpha1.Subscription, desired []*appsv1alpha1.Base) ([]baseOutcome, error) {
	out := make([]baseOutcome, len(desired))
	errs := make([]error, len(desired))
	if err := atOnce(ctx, len(desired), c.basesAtOnce, func(ctx context.Context, i int) error {
		out[i], errs[i] = c.applyBase(ctx, sub, desired[i])
		return nil
	}); err != nil {
		return out, err
	}
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	switch len(failed) {
	case 0:
		return out, nil
	case 1:
		return out, failed[0]
	}
	return out, fmt.Errorf("%w (and %d more Bases not written)", failed[0], len(failed)-1)
}

// atOnce calls do for 0..n-1, at most limit calls at a time. After the
// first error it starts no more calls and returns that error once the
// calls under way have ended (their context is cancelled): the next round
// redoes what was left.
func atOnce(ctx context.Context, n, limit int, do func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	slots := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := range n {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := do(ctx, i); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// applyBase creates or updates one Base.
func (c *Controller) applyBase(ctx context.Context, sub *appsv1alpha1.Subscription, want *appsv1alpha1.Base) (baseOutcome, error) {
	client := c.client.AppsV1alpha1().Bases(want.Namespace)
	have, err := c.bases.Bases(want.Namespace).Get(want.Name)
	if apierrors.IsNotFound(err) {
		if _, err := client.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return baseOutcome{}, err
		}
		klog.FromContext(ctx).V(2).Info("Bound cluster", "subscription", klog.KObj(sub), "base", klog.KObj(want))
		return baseOutcome{ok: true, created: true}, nil
	}
	if err != nil {
		return baseOutcome{}, err
	}
	if uid := have.Labels[appsv1alpha1.LabelSubscriptionUID]; uid != string(sub.UID) {
		sameName := have.Labels[appsv1alpha1.LabelSubscriptionNamespace] == sub.Namespace && have.Labels[appsv1alpha1.LabelSubscriptionName] == sub.Name
		if !sameName {
			owner := "something other than a Subscription"
			if k := subscriptionKeyOf(have); k != "" {
				owner = "Subscription " + k
			}
			msg := fmt.Sprintf("Base %s/%s already belongs to %s: Bases are named after their Subscription, one per cluster: rename this Subscription to deploy to that cluster",
				have.Namespace, have.Name, owner)
			return baseOutcome{conflict: msg}, nil
		}
		// Left by an earlier Subscription of the same name: it goes first.
		if have.DeletionTimestamp == nil {
			if err := client.Delete(ctx, have.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &have.UID}}); err != nil && !apierrors.IsNotFound(err) {
				return baseOutcome{}, err
			}
		}
		return baseOutcome{}, nil
	}
	if have.DeletionTimestamp != nil {
		return baseOutcome{}, nil // unbound a moment ago: bound again once it is gone
	}
	upd := have.DeepCopy()
	for k, v := range want.Labels {
		if upd.Labels == nil {
			upd.Labels = map[string]string{}
		}
		upd.Labels[k] = v
	}
	if upd.Annotations == nil {
		upd.Annotations = map[string]string{}
	}
	// A Base kept on a failed-over cluster that is bound again is an
	// ordinary Base again (AnnotationFailedOver goes).
	for _, k := range []string{render.AnnotationReplicas, render.AnnotationSubscriptionGeneration, AnnotationFailedOver} {
		if s, ok := want.Annotations[k]; ok {
			upd.Annotations[k] = s
		} else {
			delete(upd.Annotations, k)
		}
	}
	if len(upd.Annotations) == 0 {
		upd.Annotations = nil
	}
	controller.AddFinalizer(upd)
	upd.Spec = want.Spec
	if apiequality.Semantic.DeepEqual(upd.ObjectMeta, have.ObjectMeta) && apiequality.Semantic.DeepEqual(upd.Spec, have.Spec) {
		return baseOutcome{ok: true}, nil
	}
	if _, err := client.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return baseOutcome{}, err
	}
	out := baseOutcome{ok: true}
	if keptFailedOver(have) && !keptFailedOver(upd) {
		out.unmarked = have
	}
	return out, nil
}

// ensureInventory writes the FeedInventory named after the Subscription.
func (c *Controller) ensureInventory(ctx context.Context, sub *appsv1alpha1.Subscription, resolved []feeds.Resolved) error {
	spec := feeds.Inventory(resolved)
	client := c.client.AppsV1alpha1().FeedInventories(sub.Namespace)
	have, err := c.inventory.FeedInventories(sub.Namespace).Get(sub.Name)
	if apierrors.IsNotFound(err) {
		fi := &appsv1alpha1.FeedInventory{
			ObjectMeta: metav1.ObjectMeta{
				Name: sub.Name, Namespace: sub.Namespace,
				Labels: map[string]string{
					appsv1alpha1.LabelSubscriptionName: sub.Name, appsv1alpha1.LabelSubscriptionNamespace: sub.Namespace,
					appsv1alpha1.LabelSubscriptionUID: string(sub.UID),
				},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(sub, appsv1alpha1.SchemeGroupVersion.WithKind("Subscription"))},
			},
			Spec: spec,
		}
		if _, err := client.Create(ctx, fi, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	}
	if err != nil {
		return err
	}
	if apiequality.Semantic.DeepEqual(have.Spec, spec) && have.Labels[appsv1alpha1.LabelSubscriptionUID] == string(sub.UID) {
		return nil
	}
	upd := have.DeepCopy()
	upd.Spec = spec
	if upd.Labels == nil {
		upd.Labels = map[string]string{}
	}
	upd.Labels[appsv1alpha1.LabelSubscriptionUID] = string(sub.UID)
	upd.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(sub, appsv1alpha1.SchemeGroupVersion.WithKind("Subscription"))}
	_, err = client.Update(ctx, upd, metav1.UpdateOptions{})
	return err
}

// renderedCondition sums the bound Bases' Rendered conditions.
func (c *Controller) renderedCondition(sub *appsv1alpha1.Subscription, bound sets.Set[string]) metav1.Condition {
	cond := metav1.Condition{Type: ConditionRendered, Status: metav1.ConditionTrue, Reason: ReasonRendered, ObservedGeneration: sub.Generation}
	var failed, pending []string
	reason := ""
	n := 0
	boundNS := sets.New[string]()
	for k := range bound {
		ns, _, _ := strings.Cut(k, "/")
		boundNS.Insert(ns)
	}
	for _, b := range c.basesOf(sub) {
		if b.DeletionTimestamp != nil || !boundNS.Has(b.Namespace) {
			continue
		}
		n++
		rc := meta.FindStatusCondition(b.Status.Conditions, ConditionRendered)
		switch {
		case rc == nil || rc.ObservedGeneration < b.Generation:
			pending = append(pending, b.Namespace)
		case rc.Status == metav1.ConditionFalse:
			if reason == "" {
				reason = rc.Reason
			}
			failed = append(failed, fmt.Sprintf("cluster of namespace %s: %s", b.Namespace, aggregate.ClipTo(rc.Message, aggregate.MaxQuoteLength)))
		}
	}
	switch {
	case len(failed) > 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, reason
		cond.Message = aggregate.Summarize(failed)
	case len(pending) > 0:
		cond.Status, cond.Reason = metav1.ConditionUnknown, ReasonRendering
		cond.Message = fmt.Sprintf("rendering the Bases in %s", aggregate.Summarize(pending))
	default:
		cond.Message = fmt.Sprintf("%d Bases rendered into Descriptions", n)
	}
	return cond
}

func (c *Controller) updateStatus(ctx context.Context, sub *appsv1alpha1.Subscription, status *appsv1alpha1.SubscriptionStatus) error {
	status.Conditions = inOrder(status.Conditions)
	if apiequality.Semantic.DeepEqual(&sub.Status, status) {
		return nil
	}
	upd := sub.DeepCopy()
	upd.Status = *status
	_, err := c.client.AppsV1alpha1().Subscriptions(sub.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	return err
}

// finalizeSubscription deletes the Bases and lets the Subscription go once
// they are gone (each Base waits for its Descriptions, each Description
// for its deployer to clean the child).
func (c *Controller) finalizeSubscription(ctx context.Context, sub *appsv1alpha1.Subscription) error {
	if !controller.HasFinalizer(sub) {
		return nil
	}
	// Each Base's deletion brings the Subscription back here: while the
	// cache holds Bases, delete those and wait, so a thousand Bases going
	// cost no thousand reads of them all. Only once the cache holds none
	// are they read live, as a Base created a moment ago may not be cached
	// yet, and the finalizer must not come off over it.
	if cached := c.basesOf(sub); len(cached) > 0 {
		return c.deleteBases(ctx, cached)
	}
	live, err := c.liveBases(ctx, sub)
	if err != nil {
		return err
	}
	if len(live) > 0 {
		return c.deleteBases(ctx, live)
	}
	if err := c.client.AppsV1alpha1().FeedInventories(sub.Namespace).Delete(ctx, sub.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	upd := sub.DeepCopy()
	controller.RemoveFinalizer(upd)
	if _, err := c.client.AppsV1alpha1().Subscriptions(sub.Namespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	klog.FromContext(ctx).Info("Subscription cleaned up", "subscription", klog.KObj(sub))
	return nil
}

// deleteBases deletes those of bases not being deleted yet, c.basesAtOnce
// at a time.
func (c *Controller) deleteBases(ctx context.Context, bases []*appsv1alpha1.Base) error {
	return atOnce(ctx, len(bases), c.basesAtOnce, func(ctx context.Context, i int) error {
		b := bases[i]
		if b.DeletionTimestamp != nil {
			return nil
		}
		err := c.client.AppsV1alpha1().Bases(b.Namespace).Delete(ctx, b.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &b.UID}})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// specHash is a 64-bit FNV hash of the spec, in hex (status.specHashHex)
// and as upstream Clusternet's integer (status.specHash).
func specHash(spec *appsv1alpha1.SubscriptionSpec) (string, int64) {
	b, _ := json.Marshal(spec)
	h := fnv.New64a()
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), appsv1alpha1.SpecHashValueOf(h.Sum64())
}

// source reads feeds from the informer caches.
type source struct{ c *Controller }

var _ feeds.Source = &source{}

func (s *source) Manifest(name string) (*appsv1alpha1.Manifest, error) {
	return s.c.manifests.Manifests(appsv1alpha1.ReservedNamespace).Get(name)
}

func (s *source) Manifests(group, kind string) ([]*appsv1alpha1.Manifest, error) {
	objs, err := s.c.manIndex.ByIndex(indexManifestsByKind, feeds.KindKey(group, kind))
	if err != nil {
		return nil, err
	}
	out := make([]*appsv1alpha1.Manifest, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*appsv1alpha1.Manifest))
	}
	return out, nil
}

func (s *source) HelmChart(namespace, name string) (*appsv1alpha1.HelmChart, error) {
	return s.c.charts.HelmCharts(namespace).Get(name)
}

func (s *source) HelmCharts(namespace string) ([]*appsv1alpha1.HelmChart, error) {
	if namespace == "" {
		return s.c.charts.List(labels.Everything())
	}
	return s.c.charts.HelmCharts(namespace).List(labels.Everything())
}
