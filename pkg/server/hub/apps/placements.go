package apps

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/cache"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
	"github.com/clusternet/clusternet/pkg/server/hub/apps/scheduling"
)

// The controller keeps a book (scheduling.Book) of what every
// Subscription placed on every cluster, fed by what each scheduling
// round decides, so that Dynamic dividing counts the room the others took
// (docs/distribution.md, "Room, priority and preemption").

// Event reasons of preemption.
const (
	ReasonPreempting = "Preempting"
	ReasonPreempted  = "Preempted"
)

// priorityOf is spec.priority; unset is 0, the lowest, as an unset pod
// priority is in Kubernetes.
func priorityOf(sub *appsv1alpha1.Subscription) int32 {
	if sub.Spec.Priority == nil {
		return 0
	}
	return *sub.Spec.Priority
}

// movable says the hub divides sub dynamically: only such a Subscription
// takes the room of others of lower priority, and gives up its own to
// others of higher. Static dividing and Replication place where weights
// and selectors say whatever the room: for them priority orders the queue
// only.
func movable(sub *appsv1alpha1.Subscription) bool {
	return !external(sub) && scheduling.DividesDynamically(&sub.Spec)
}

// preempts says sub may take the room of movable Subscriptions of lower
// priority: spec.preemptionPolicy unset is PreemptLowerPriority, as
// upstream Clusternet and Kubernetes' PriorityClass have it.
func preempts(sub *appsv1alpha1.Subscription) bool {
	return movable(sub) && (sub.Spec.PreemptionPolicy == nil || *sub.Spec.PreemptionPolicy != appsv1alpha1.PreemptNever)
}

// workloadsOf are the resolved feeds with replicas.
func workloadsOf(resolved []feeds.Resolved) []scheduling.Workload {
	var out []scheduling.Workload
	for _, r := range resolved {
		if n, _, ok := feeds.Replicas(r); ok {
			out = append(out, scheduling.Workload{Key: feeds.Key(r.Feed), Replicas: n, Requests: feeds.Requests(r.Template)})
		}
	}
	return out
}

// entryOf is what sub places with bindings: each workload's share on each
// (replicas, when it divides: for Dynamic dividing the part that fits,
// Result.Fits; all its replicas, when it replicates) times what one
// replica requests.
func entryOf(sub *appsv1alpha1.Subscription, workloads []scheduling.Workload, bindings []string, replicas map[string]map[string]int32, short bool) scheduling.Entry {
	e := scheduling.Entry{Priority: priorityOf(sub), Movable: movable(sub), Preempts: preempts(sub), Short: short, On: map[string]scheduling.Usage{}}
	divided := sub.Spec.SchedulingStrategy == appsv1alpha1.DividingSchedulingStrategy
	for _, ck := range bindings {
		u := scheduling.Usage{}
		for _, wl := range workloads {
			n := wl.Replicas
			if divided {
				n = replicas[wl.Key][ck]
			}
			u.AddReplicas(n, wl.Requests)
		}
		if len(u) > 0 {
			e.On[ck] = u
		}
	}
	return e
}

// clusterOf is m as scheduling sees it; its room in the book is the
// round's to fill in (decide).
func clusterOf(m *clusterv1beta1.ManagedCluster) scheduling.Cluster {
	c := scheduling.Cluster{Key: m.Namespace + "/" + m.Name, Labels: m.Labels, Taints: m.Spec.Taints, Allocatable: m.Status.Allocatable}
	if m.Status.PredictorEnabled {
		c.Available = m.Status.Available
		if c.Available == nil {
			c.Available = corev1.ResourceList{} // nothing available: the agent found no schedulable node
		}
	}
	return c
}

// decide schedules sub and records the decision in the book in one step,
// one Subscription at a time: a round reads the room the others took and
// records what it takes before the next round reads, so that two rounds
// on two workers never both count the same room. What they take is
// recorded as decided, before the Bases are written: a round that fails
// to write them is retried, and decides again from the Bases.
func (c *Controller) decide(key string, sub *appsv1alpha1.Subscription, in scheduling.Input, workloads []scheduling.Workload, pl *placement) error {
	c.deciding.Lock()
	if movable(sub) {
		c.fillRoom(key, sub, in.Clusters)
	}
	res, err := scheduling.Schedule(in)
	if err != nil {
		c.deciding.Unlock()
		return err
	}
	pl.Result = res
	pl.victims = map[string][]string{}
	for ck, need := range res.Preempts {
		// Before recording: the victims' next rounds, queued below, may
		// move them off the cluster before this one is announced.
		if vs := c.book.Victims(ck, key, priorityOf(sub), need); len(vs) > 0 {
			pl.victims[ck] = vs
		}
	}
	taken := res.Replicas
	if res.Fits != nil {
		taken = res.Fits
	}
	grew, shrank := c.book.Record(key, entryOf(sub, workloads, res.Bindings, taken, res.Short))
	c.deciding.Unlock()
	c.roomChanged(key, grew, shrank)
	return nil
}

// fillRoom sets, on each of clusters, the room the book says the others
// took from sub (Cluster.Others, Cluster.Preemptible).
func (c *Controller) fillRoom(key string, sub *appsv1alpha1.Subscription, clusters []scheduling.Cluster) {
	prio, may := priorityOf(sub), preempts(sub)
	for i := range clusters {
		cl := &clusters[i]
		cl.Others, cl.Preemptible = c.book.Room(key, cl.Key, prio, may)
	}
}

// placedElsewhere records what another scheduler (spec.schedulerName)
// placed: it takes room like any other placement. Not while a round
// decides (decide): it would miss it.
func (c *Controller) placedElsewhere(key string, sub *appsv1alpha1.Subscription, workloads []scheduling.Workload, pl *placement) {
	c.deciding.Lock()
	grew, shrank := c.book.Record(key, entryOf(sub, workloads, pl.Bindings, pl.Replicas, false))
	c.deciding.Unlock()
	c.roomChanged(key, grew, shrank)
}

// forgetPlacement drops a Subscription deleted or going: the room it took
// is free for the others.
func (c *Controller) forgetPlacement(key string) {
	c.deciding.Lock()
	shrank := c.book.Forget(key)
	c.deciding.Unlock()
	c.roomChanged(key, nil, shrank)
}

// roomChanged queues the Subscriptions whose next round may move replicas
// because the room on some clusters changed (a placement there, the
// cluster's capacity): where it shrank (grew: someone takes more), the
// Dynamic ones placed there that may no longer fit (Book.Over); where it
// grew (shrank), the Dynamic ones short of capacity whose subscribers
// select the cluster (the room may take their replicas). Only these: a
// Subscription that fits moves nothing when the room around it changes,
// so a busy cluster does not re-queue the world. except changed it.
func (c *Controller) roomChanged(except string, grew, shrank []string) {
	for _, ck := range grew {
		m, ok := c.clusterByKey(ck)
		if !ok {
			continue
		}
		cl := clusterOf(m)
		for _, k := range c.book.On(ck) {
			if k != except && c.book.Over(k, cl) {
				c.inputsChanged(k)
			}
		}
	}
	short := c.book.Short()
	if len(shrank) == 0 || len(short) == 0 {
		return
	}
	var freed []*clusterv1beta1.ManagedCluster
	for _, ck := range shrank {
		if m, ok := c.clusterByKey(ck); ok {
			freed = append(freed, m)
		}
	}
	for _, k := range short {
		if k == except {
			continue
		}
		selects := c.selector(k)
		if slices.ContainsFunc(freed, func(m *clusterv1beta1.ManagedCluster) bool { return selects(m.Labels) }) {
			c.inputsChanged(k)
		}
	}
}

func (c *Controller) clusterByKey(ck string) (*clusterv1beta1.ManagedCluster, bool) {
	ns, name, _ := strings.Cut(ck, "/")
	m, err := c.clusters.ManagedClusters(ns).Get(name)
	return m, err == nil
}

// selector says whether a subscriber of the Subscription of key selects
// a cluster of some labels (none, when it is gone).
func (c *Controller) selector(key string) func(labels map[string]string) bool {
	ns, name, _ := strings.Cut(key, "/")
	sub, err := c.subs.Subscriptions(ns).Get(name)
	if err != nil {
		return func(map[string]string) bool { return false }
	}
	return scheduling.Selector(&sub.Spec)
}

// priorityOfKey is the priority of the Subscription of key, for the
// queue: 0 when it is gone.
func (c *Controller) priorityOfKey(key string) int32 {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0
	}
	sub, err := c.subs.Subscriptions(ns).Get(name)
	if err != nil {
		return 0
	}
	return priorityOf(sub)
}

// rebuildBook fills the book, before the loops start, with what every
// Subscription placed as its status records it (status.bindingClusters
// and the division; the Bases when the status is truncated: placedOf)
// and what its feeds' replicas request now.
//
// Why not let the initial sync fill it (every Subscription is queued at
// start and scheduled again): the rounds run one after another, so the
// first ones would see clusters empty of all the Subscriptions not
// scheduled yet. A new Subscription or a scale-up among them would take
// room that others hold, and each later round recording its placement
// would then find the earlier ones over and queue them again. Read from
// the statuses, the book after a restart (or in a newly elected leader) is
// what the last rounds decided, a status write behind at most: the next
// round of each Subscription corrects its own entry.
//
// A Dynamic Subscription takes the room of the part of its division that
// fits (Result.Fits), which its status does not say: it is worked out
// again here, one Subscription after another in the order they were
// created, as their rounds most likely ran: what fits of each, given the
// room the ones before took, or may be taken from them by preemption.
func (c *Controller) rebuildBook() {
	subs, err := c.subs.List(labels.Everything())
	if err != nil {
		return
	}
	slices.SortFunc(subs, func(a, b *appsv1alpha1.Subscription) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name))
	})
	for _, sub := range subs {
		if sub.DeletionTimestamp != nil {
			continue
		}
		key := sub.Namespace + "/" + sub.Name
		// Feeds that do not resolve count for nothing here; their
		// Subscription's round says why.
		resolved, _ := feeds.Resolve(sub.Spec.Feeds, &source{c: c}, c.mapper)
		workloads := workloadsOf(resolved)
		placed, replicas := c.placedOf(sub)
		if movable(sub) {
			in := scheduling.Input{Bound: sets.New(placed...), Workloads: workloads, Previous: replicas}
			for _, ck := range placed {
				if m, ok := c.clusterByKey(ck); ok {
					in.Clusters = append(in.Clusters, clusterOf(m))
				}
			}
			c.fillRoom(key, sub, in.Clusters)
			replicas = scheduling.Fitting(in)
		}
		c.book.Record(key, entryOf(sub, workloads, placed, replicas, false))
	}
}

// placedOf is where sub's last round bound it and the division among
// those clusters, as its status records them, unless the hub truncated
// them there (bindingClustersOmitted): then as the Bases record them, one
// per bound cluster, each with its cluster's share (inForce). The status
// of a Subscription another scheduler binds is that scheduler's, whole.
func (c *Controller) placedOf(sub *appsv1alpha1.Subscription) ([]string, map[string]map[string]int32) {
	replicas, _ := externalReplicas(sub)
	if sub.Status.BindingClustersOmitted == 0 || external(sub) {
		return sub.Status.BindingClusters, replicas
	}
	bases := c.basesOf(sub)
	boundNS, _ := c.boundNamespaces(bases)
	bound := sets.New[string]()
	for ns := range boundNS {
		if m, _ := c.clusterIn(ns); m != nil && m.DeletionTimestamp == nil {
			bound.Insert(m.Namespace + "/" + m.Name)
		}
	}
	return sets.List(bound), inForce(sub, bases, bound)
}

// announcePreemption records, once per decision that took the room of
// lower-priority Subscriptions (victims by cluster), a Preempting event on
// sub and a Preempted event on each victim.
func (c *Controller) announcePreemption(sub *appsv1alpha1.Subscription, victims map[string][]string) {
	if len(victims) == 0 {
		return
	}
	clusters := slices.Sorted(maps.Keys(victims))
	var parts []string
	on := map[string][]string{}
	for _, ck := range clusters {
		parts = append(parts, fmt.Sprintf("on %s, Subscription %s", ck, strings.Join(victims[ck], ", ")))
		for _, v := range victims[ck] {
			on[v] = append(on[v], ck)
		}
	}
	prio := priorityOf(sub)
	c.events.Eventf(sub, corev1.EventTypeNormal, ReasonPreempting,
		"placing replicas in the room of Subscriptions of lower priority than %d: %s; their replicas there move to clusters with room when they are next scheduled",
		prio, strings.Join(parts, "; "))
	for _, v := range slices.Sorted(maps.Keys(on)) {
		ns, name, _ := strings.Cut(v, "/")
		victim, err := c.subs.Subscriptions(ns).Get(name)
		if err != nil {
			continue
		}
		c.events.Eventf(victim, corev1.EventTypeWarning, ReasonPreempted,
			"Subscription %s/%s (priority %d, above this one's %d) takes the room of this Subscription's replicas on %s: they move to clusters with room, or stay short of capacity where they are",
			sub.Namespace, sub.Name, prio, priorityOf(victim), strings.Join(on[v], ", "))
	}
}
