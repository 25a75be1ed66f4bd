package apps

import (
	"slices"
	"sync"
	"sync/atomic"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/server/hub/apps/aggregate"
)

// A plan is what the first three stages of a Subscription's sync (resolve
// the feeds, schedule, apply the Bases) concluded, kept so that an event
// that only concerns the status (a deployer's report on a Description, a
// Base's Rendered condition) sums the status again without redoing them.
//
// A plan is used only while everything it was made from is unchanged:
//   - the watched inputs (the Subscription's spec and metadata, templates,
//     HelmCharts, ManagedClusters' labels, taints and capacity, the Bases,
//     the FeedInventory, and the room other Subscriptions took in the book
//     where it may move replicas: roomChanged): their handlers call
//     inputsChanged, which drops the plan, and a plan made while one of
//     them changed is never kept (plans.put);
//   - the Subscription it was made for: same uid and generation, and, when
//     another scheduler binds it, the same status.bindingClusters and
//     status.replicas;
//   - the parent's answers on the feeds' kinds (the RESTMapper is not a
//     watched input: a CRD installed or removed shows only in its answers),
//     asked again, from its cache, before the plan is used.
//
// Only successes become plans: feeds that do not resolve or a scheduling
// error are looked at again at every sync, as before.
type plan struct {
	// What it was made from, besides the watched inputs.
	uid        types.UID
	generation int64
	// external is set when spec.schedulerName names another scheduler: the
	// bindings that scheduler wrote are an input.
	external *externalBindings
	mappings []mappingAnswer

	// What it concluded: the resolved feeds and the FeedsResolved
	// condition; the clusters that have a Base (bound) and their
	// identities; status.replicas (ours to write when dividing); the
	// Scheduled condition; the spec's hash.
	feedsResolved metav1.Condition
	feeds         []appsv1alpha1.Feed
	bound         []string
	boundSet      sets.Set[string]
	clusters      []aggregate.Cluster
	replicas      map[string]map[string]int32
	scheduled     metav1.Condition
	specHash      string
	specHashValue int64
}

type externalBindings struct {
	clusters []string
	replicas map[string]map[string]int32
}

// plans holds the plan of each Subscription (by namespace/name key).
//
// Why a sequence and not a flag: a handler reports a change after the
// informer's cache has it, but a sync that is already running may have read
// the cache before the change. So a sync takes a stamp (begin) before it
// reads anything; inputsChanged records the sequence number of the change;
// and a plan whose stamp is older than its key's last change is never kept.
// Changes the sync did see cost one more run; none it missed is ever served.
type plans struct {
	mu      sync.Mutex
	seq     uint64
	changed map[string]uint64
	made    map[string]*plan
}

func newPlans() *plans {
	return &plans{changed: map[string]uint64{}, made: map[string]*plan{}}
}

// invalidate records that an input of key's plan changed.
func (p *plans) invalidate(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	p.changed[key] = p.seq
	delete(p.made, key)
}

// begin is the stamp of a plan about to be made: call it before reading
// any of its inputs.
func (p *plans) begin() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq
}

// put keeps pl as key's plan unless an input changed since stamp (then the
// sync that change queued makes another).
func (p *plans) put(key string, stamp uint64, pl *plan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.changed[key] > stamp {
		return
	}
	p.made[key] = pl
}

// get is key's plan, nil when there is none or an input changed since.
func (p *plans) get(key string) *plan {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.made[key]
}

// forget drops all that is known of key (its Subscription is gone or
// going). Syncs of one key never run at once, so no put of key races it.
func (p *plans) forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.changed, key)
	delete(p.made, key)
}

// currentPlan is the plan made for sub that still holds, or nil.
func (c *Controller) currentPlan(key string, sub *appsv1alpha1.Subscription) *plan {
	p := c.plans.get(key)
	if p == nil || p.uid != sub.UID || p.generation != sub.Generation {
		return nil
	}
	if external(sub) != (p.external != nil) {
		return nil
	}
	if p.external != nil && (!apiequality.Semantic.DeepEqual(p.external.clusters, sub.Status.BindingClusters) ||
		!sameExternalReplicas(p.external.replicas, sub)) {
		return nil
	}
	for _, m := range p.mappings {
		if m.answer != answerOf(c.mapper.RESTMapping(m.gk, m.versions...)) {
			return nil
		}
	}
	return p
}

// mappingAnswer is one question feed resolution asked the RESTMapper and
// its answer.
type mappingAnswer struct {
	gk       schema.GroupKind
	versions []string
	answer   string
}

func answerOf(m *meta.RESTMapping, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return m.GroupVersionKind.String() + " " + string(m.Scope.Name())
}

// recordingMapper records the RESTMappings asked through it, so a plan
// can ask them again rather than resolve again: feed resolution alone
// decides what it asks. It asks RESTMapping for each feed's kind; other
// questions (KindsFor) only explain a kind not served, a failure, and
// failures never become plans.
type recordingMapper struct {
	meta.RESTMapper
	asked []mappingAnswer
}

func (r *recordingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	m, err := r.RESTMapper.RESTMapping(gk, versions...)
	r.asked = append(r.asked, mappingAnswer{gk: gk, versions: slices.Clone(versions), answer: answerOf(m, err)})
	return m, err
}

// stageRuns counts how often each stage of syncSubscription ran: tests read
// it to tell what an event caused.
type stageRuns struct {
	resolve, schedule, apply, status atomic.Int64
}

// sameExternalReplicas: the division another scheduler wrote is still the
// one the plan was made from (an unreadable one is never the same).
func sameExternalReplicas(planned map[string]map[string]int32, sub *appsv1alpha1.Subscription) bool {
	now, err := externalReplicas(sub)
	return err == nil && apiequality.Semantic.DeepEqual(planned, now)
}
