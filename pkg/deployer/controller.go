package deployer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	appsinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/apps/v1alpha1"
	appslisters "github.com/clusternet/clusternet/pkg/generated/listers/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/metrics"
)

// Event reasons on Descriptions.
const (
	ReasonDeployed       = "SuccessfullyDeployed"
	ReasonDeployFailed   = "FailedDeploying"
	ReasonPruned         = "Pruned"
	ReasonDriftCorrected = "DriftCorrected"
	ReasonDriftDetected  = "DriftDetected"
	ReasonDeleted        = "DeletedFromChild"
	ReasonDeleteFailed   = "FailedDeletingFromChild"
	// ReasonLeft: an object the Description no longer lists stays in the
	// child: Clusternet did not create it, or another Description lists it.
	ReasonLeft = "LeftInChild"
)

// Decision is what one deployer (a hub replica, an agent) does about the
// Descriptions of one cluster.
type Decision int

// The decisions.
const (
	// Skip: someone else applies (the agent in Pull, the hub in Push, the
	// replica holding the tunnel), or nobody can reach the cluster now.
	Skip Decision = iota
	// Act: this deployer applies.
	Act
	// Gone: the cluster is no longer registered; nothing can clean it up,
	// so a deleted Description's finalizer is just removed.
	Gone
)

// Placement says who applies the Descriptions of a dedicated namespace.
type Placement struct {
	Decision Decision
	// ClusterID names the child (with Act).
	ClusterID string
	// Why says, with Skip and Gone, why this deployer does not act.
	Why string
	// Config reaches the child (with Act) when Options.Clients is nil;
	// called once per child watch.
	Config func() *rest.Config
}

// OwnNamespace is the Place of a deployer that serves one cluster (an
// agent pulling): it acts on the Descriptions of that cluster's dedicated
// namespace, reaching the child with config, and skips every other.
func OwnNamespace(namespace, clusterID string, config func() *rest.Config) func(string) Placement {
	return func(ns string) Placement {
		if ns != namespace {
			return Placement{Decision: Skip}
		}
		return Placement{Decision: Act, ClusterID: clusterID, Config: config}
	}
}

// Clients hands out the clients of child clusters, for a deployer whose
// children's clients are owned elsewhere: the hub passes its per-cluster
// registry (pkg/server/hub/clusterclients), which builds them when a
// cluster is first needed and invalidates them when it leaves. The deployer
// knows it only by this interface, so that this package (which the agent
// runs too) never imports the hub's.
type Clients interface {
	// Child returns the clients of cluster id. done is closed once they
	// are no longer valid (the cluster left, or its tunnel left this
	// replica): the deployer then stops watching through them, forgets
	// them and deploys the cluster's Descriptions in full through the
	// clients it is handed next. A nil done never closes.
	Child(id string) (child *Child, done <-chan struct{}, err error)
}

// Options build a Controller.
type Options struct {
	// Name names the controller in logs and metrics.
	Name string
	// Parent writes Descriptions (finalizer, status).
	Parent       versioned.Interface
	Descriptions appsinformers.DescriptionInformer
	// Events records on Descriptions (as clusternet-hub or clusternet-agent).
	Events record.EventRecorder
	// Place decides, per dedicated namespace, whether this deployer acts.
	Place func(namespace string) Placement
	// Clients, when set, hands out the children's clients; otherwise a
	// child's are built from its Placement.Config and live as long as the
	// deployer watches it.
	Clients Clients
	// Synced are further informers Place reads, waited for before work starts.
	Synced  []cache.InformerSynced
	Workers int
	// Resync is how often a deployed Description is applied again in full
	// (drift is corrected as it happens; this also catches what happened
	// while nobody watched). Default 5 minutes.
	Resync time.Duration
}

// Controller deploys Generic Descriptions into the children it may reach.
type Controller struct {
	opts   Options
	lister appslisters.DescriptionLister
	loop   *controller.Loop
	// queue is loop (a plain queue in tests): what observe and redeploy add.
	queue interface {
		Add(key string)
		AddAfter(key string, d time.Duration)
	}
	ctx context.Context

	// after is time.After (a fake in tests): it bounds how long a deploy
	// waits for the child's watches.
	after func(time.Duration) <-chan time.Time

	mu       sync.Mutex
	states   map[string]*descState
	children map[string]*childWatch
}

// descState is what the controller remembers of one Description between
// syncs. Nothing in it is needed after a restart: it starts over with a
// full deploy, which is idempotent.
//
// Locking: every field is read and written with Controller.mu held, and
// the lock is never held across a call to the child or the parent. A sync
// reads a copy of the progress (taken by state, under the lock), decides
// and deploys from that copy, and writes its outcome back under the lock
// (recordDeploy). Other goroutines reset deployed meanwhile (DropChild
// when the tunnel goes away, redeploy when another Description takes
// objects over, a failed drift correction), and a deploy that started
// before such a reset must not mark its generation deployed over it, or
// the full deploy after a reconnect waits for the next resync. Only the
// sync of the Description writes the rest of the progress (the work queue
// never hands one key to two workers at once).
type descState struct {
	uid       types.UID
	clusterID string
	descProgress
	candidate map[string]watchEvent
	// written is this deployer's last status write (see ownWrite).
	written *ownWrite
}

// descProgress is how far the deploys of a Description got.
type descProgress struct {
	// deployed is the generation last deployed successfully (0: none yet).
	deployed int64
	lastFull time.Time
	// failures count failed deploys of generation failedGen; the next
	// attempt of that generation waits until retryAt.
	failures  int
	failedGen int64
	retryAt   time.Time
	// resets counts the resets of deployed: a sync whose copy holds fewer
	// started before the latest one.
	resets uint64
}

// resetLocked has st deployed in full on its next sync. c.mu is held.
func (st *descState) resetLocked() {
	st.deployed = 0
	st.resets++
}

// reset has st deployed in full on its next sync.
func (c *Controller) reset(st *descState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st.resetLocked()
}

// retryBackoff paces attempts of a Description that failed: the same spec
// fails the same way, so retry slowly (a Namespace or CRD it waits for may
// still appear).
var retryBackoff = wait.Backoff{Duration: 2 * time.Second, Factor: 2, Steps: 9, Cap: 5 * time.Minute}

func backoffFor(failures int) time.Duration {
	b := retryBackoff
	var d time.Duration
	for range min(failures, b.Steps) {
		d = b.Step()
	}
	return d
}

// NewController builds a controller; Run starts it.
func NewController(opts Options) (*Controller, error) {
	if opts.Resync <= 0 {
		opts.Resync = 5 * time.Minute
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	c := &Controller{
		opts:     opts,
		lister:   opts.Descriptions.Lister(),
		states:   map[string]*descState{},
		children: map[string]*childWatch{},
	}
	c.loop = controller.New(opts.Name, c.sync)
	c.queue = c.loop
	c.loop.WaitFor(opts.Synced...)
	return c, c.loop.Watch(opts.Descriptions.Informer(), genericKey, controller.IgnoreUpdates(func(oldObj, newObj any) bool {
		old, ok1 := oldObj.(*appsv1alpha1.Description)
		d, ok2 := newObj.(*appsv1alpha1.Description)
		// Status writes (ours, or the hub's Pending with a new spec, whose
		// generation brings it here anyway) change neither generation nor
		// deletion.
		return ok1 && ok2 && old.Generation == d.Generation && (old.DeletionTimestamp == nil) == (d.DeletionTimestamp == nil) &&
			old.UID == d.UID && old.ResourceVersion != d.ResourceVersion && maps.Equal(old.Labels, d.Labels)
	}))
}

// genericKey is the key of a Generic Description; other Descriptions are
// not the deployer's.
func genericKey(obj any) []string {
	if d, ok := obj.(*appsv1alpha1.Description); ok && d.Spec.Deployer != appsv1alpha1.DescriptionGenericDeployer {
		return nil
	}
	return controller.OwnKey(obj)
}

// EnqueueNamespace looks again at every Description of a dedicated
// namespace (its cluster's tunnel or sync mode changed).
func (c *Controller) EnqueueNamespace(namespace string) {
	descs, err := c.lister.Descriptions(namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, d := range descs {
		for _, k := range genericKey(d) {
			c.queue.Add(k)
		}
	}
}

// DropChild stops watching a child (its tunnel went away from this
// replica). Its Descriptions are deployed in full when it is reached again.
func (c *Controller) DropChild(clusterID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropChildLocked(clusterID, nil)
}

// dropChildLocked drops clusterID's child watch (only if it is w, when w is
// set) and has the cluster's Descriptions deployed in full on their next
// sync. c.mu is held.
func (c *Controller) dropChildLocked(clusterID string, w *childWatch) {
	cur, ok := c.children[clusterID]
	if w != nil && cur != w {
		return // already replaced: the new watch's clients are valid
	}
	if ok {
		cur.stop()
		delete(c.children, clusterID)
	}
	for _, st := range c.states {
		if st.clusterID == clusterID {
			st.resetLocked()
		}
	}
}

// dropWhenInvalid drops w as soon as its clients are no longer valid
// (Clients closed its done), so that nothing keeps watching a cluster that
// left: the clients' owner need not know the deployer.
func (c *Controller) dropWhenInvalid(w *childWatch) {
	select {
	case <-w.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		c.dropChildLocked(w.id, w)
	case <-w.ctx.Done(): // stopped meanwhile (unused, or the controller ended)
	}
}

// Watching lists the clusters this deployer holds a child watch of, for
// tests and debugging.
func (c *Controller) Watching() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.children))
}

// Run works until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	c.ctx = ctx
	c.loop.Run(ctx, c.opts.Workers)
	// The workers have stopped: nobody watches the children any more.
	c.mu.Lock()
	for id, w := range c.children {
		w.stop()
		delete(c.children, id)
	}
	c.mu.Unlock()
}

// observe hears a change of an object in a child.
func (c *Controller) observe(descKey string, ev watchEvent) {
	if !ev.statusOnly {
		c.mu.Lock()
		st := c.states[descKey]
		if st != nil {
			if st.candidate == nil {
				st.candidate = map[string]watchEvent{}
			}
			st.candidate[ev.ref.Key()] = ev
		}
		c.mu.Unlock()
		if st == nil {
			return // not a Description this deployer handles
		}
		c.queue.Add(descKey)
		return
	}
	c.queueReport(descKey)
}

// statusSettle is how long a Description waits to report a change of its
// objects' status in the child. A rollout changes a Deployment's status in
// several steps within a second or so (replicas created, ready, available);
// each reported at once is a write of the Description's status in the
// parent. Waiting lets one write carry them all. Changes of the objects
// themselves (drift) are not delayed.
const statusSettle = time.Second

// queueReport queues a Description whose objects' status changed in the
// child statusSettle later (the workqueue keeps a waiting key at its
// earliest time, so a burst of changes is one sync).
func (c *Controller) queueReport(key string) {
	c.queue.AddAfter(key, statusSettle)
}

// state is what the controller remembers of key, and a copy of its
// progress for the sync to read (see descState).
func (c *Controller) state(key string, desc *appsv1alpha1.Description, clusterID string) (*descState, descProgress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.states[key]
	if st == nil || st.uid != desc.UID || st.clusterID != clusterID {
		st = &descState{uid: desc.UID, clusterID: clusterID}
		c.states[key] = st
	}
	return st, st.descProgress
}

// forget drops what the controller holds for key, and the child watches
// nobody uses any more.
func (c *Controller) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.states, key)
	for id, w := range c.children {
		w.mu.Lock()
		delete(w.users, key)
		unused := len(w.users) == 0
		w.mu.Unlock()
		if unused {
			w.stop()
			delete(c.children, id)
		}
	}
}

func (c *Controller) childFor(p Placement, key string) (*childWatch, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.children[p.ClusterID]
	if ok && w.invalid() {
		// Its clients were invalidated and dropWhenInvalid has not run yet:
		// drop it now, so that this sync deploys in full through new ones.
		c.dropChildLocked(p.ClusterID, w)
		ok = false
	}
	if !ok {
		child, done, err := c.newChild(p)
		if err != nil {
			return nil, fmt.Errorf("client of cluster %s: %w", p.ClusterID, err)
		}
		w = newChildWatch(c.ctx, p.ClusterID, child, c.observe)
		w.done = done
		if c.after != nil {
			w.after = c.after
		}
		c.children[p.ClusterID] = w
		if done != nil {
			go c.dropWhenInvalid(w)
		}
	}
	w.mu.Lock()
	w.users[key] = true
	w.mu.Unlock()
	return w, nil
}

// newChild is the Child p reaches, from Clients when set.
func (c *Controller) newChild(p Placement) (*Child, <-chan struct{}, error) {
	if c.opts.Clients != nil {
		return c.opts.Clients.Child(p.ClusterID)
	}
	if p.Config == nil {
		return nil, nil, fmt.Errorf("no client configuration for cluster %s", p.ClusterID)
	}
	child, err := NewChild(p.Config())
	return child, nil, err
}

func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	desc, err := c.lister.Descriptions(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if desc.Spec.Deployer != appsv1alpha1.DescriptionGenericDeployer {
		return 0, nil
	}
	logger := klog.FromContext(ctx).WithValues("description", klog.KObj(desc))
	ctx = klog.NewContext(ctx, logger)
	p := c.opts.Place(namespace)
	logger.V(4).Info("Placed", "decision", p.Decision, "why", p.Why)
	switch p.Decision {
	case Gone:
		c.forget(key)
		if desc.DeletionTimestamp != nil {
			logger.Info("Cluster is no longer registered; removing the finalizer without cleaning up")
			_, err := c.setFinalizer(ctx, desc, false)
			return 0, err
		}
		return 0, nil
	case Skip:
		c.forget(key)
		return 0, nil
	}
	w, err := c.childFor(p, key)
	if err != nil {
		return 0, err
	}
	st, seen := c.state(key, desc, p.ClusterID)
	logger.V(4).Info("Syncing", "cluster", p.ClusterID, "generation", desc.Generation, "deployed", seen.deployed, "deleting", desc.DeletionTimestamp != nil)
	if desc.DeletionTimestamp != nil {
		return c.cleanup(ctx, w, desc)
	}
	if !controller.HasFinalizer(desc) {
		// Added before anything reaches the child, so nothing is left behind.
		if desc, err = c.setFinalizer(ctx, desc, true); err != nil || desc == nil {
			return 0, err
		}
	}
	objs, err := Objects(desc, w.child.Namespaced)
	if err != nil {
		c.reset(st)
		return 0, c.finish(ctx, desc, nil, nil, err)
	}
	w.watch(append(refs(objs), statusRefs(desc)...))

	if seen.deployed != desc.Generation || time.Since(seen.lastFull) >= c.opts.Resync {
		if wait := time.Until(seen.retryAt); wait > 0 && seen.failedGen == desc.Generation {
			return wait, nil
		}
		return c.deploy(ctx, w, st, seen, desc, objs)
	}
	if err := c.correctDrift(ctx, w, st, desc, objs); err != nil {
		return 0, err
	}
	if err := c.refreshStatus(ctx, w, seen.deployed, desc, objs); err != nil {
		return 0, err
	}
	return c.opts.Resync - time.Since(seen.lastFull), nil
}

func statusRefs(desc *appsv1alpha1.Description) []Ref {
	out := make([]Ref, 0, len(desc.Status.ManifestStatuses))
	for _, ms := range desc.Status.ManifestStatuses {
		out = append(out, RefOf(ms))
	}
	return out
}

// deploy applies desc in full: dry-run, apply, prune, status. seen is the
// progress st held when the sync began.
func (c *Controller) deploy(ctx context.Context, w *childWatch, st *descState, seen descProgress, desc *appsv1alpha1.Description, objs []Object) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	start := time.Now()
	// Write-ahead: the status lists every object before it is applied, so
	// a crash after applying never loses track of what to prune.
	written, err := c.recordIntent(ctx, desc, objs)
	if err != nil {
		return 0, err
	}
	desc = written.DeepCopy()
	// What this Description applied before: the status as just written
	// (the cached copy may lag behind our own last write).
	prev := desc.Status.ManifestStatuses
	w.watch(refs(objs))
	w.waitSynced(ctx, refs(objs))
	skip, err := c.unchangedOptOuts(ctx, w, desc, objs)
	if err != nil {
		return 0, err
	}
	res := w.child.Deploy(ctx, Plan{Objects: ApplyOrder(objs), Skip: skip, Live: w.existing})
	w.watch(refs(objs)) // kinds a CRD of this Description just brought
	var pending []appsv1alpha1.ManifestStatus
	deployErr := res.Err
	if deployErr == nil {
		pending, deployErr = c.prune(ctx, w, desc, PruneSet(prev, objs))
	} else {
		for _, r := range PruneSet(prev, objs) {
			pending = append(pending, appsv1alpha1.ManifestStatus{Feed: r.Feed(), FeedStatus: appsv1alpha1.FeedStatus{Reason: reasonPrune}})
		}
	}
	metrics.Deployed(metrics.GenericDeployer, start, deployErr)
	statuses := make([]appsv1alpha1.ManifestStatus, 0, len(objs)+len(pending))
	for _, o := range objs {
		live, ok := res.Live[o.Ref().Key()]
		if !ok {
			if live, err = w.child.Get(ctx, o.Ref()); err != nil {
				return 0, err
			}
		}
		statuses = append(statuses, c.manifestStatus(o, live, desc, skip[o.Ref().Key()]))
	}
	statuses = append(statuses, pending...)
	if err := c.finish(ctx, desc, statuses, prev, deployErr); err != nil {
		return 0, err
	}
	again, kept := c.recordDeploy(st, seen, desc.Generation, deployErr)
	if deployErr != nil {
		logger.Info("Deploying failed", "reason", deployErr.Error(), "retryIn", again.Round(time.Second))
		return again, nil
	}
	logger.V(2).Info("Deployed", "objects", len(objs), "duration", time.Since(start).Round(time.Millisecond), "resetMeanwhile", !kept)
	return again, nil
}

// recordDeploy writes the outcome of a deploy of generation, begun from
// seen, into st, and says when to look at it again. A reset of st since
// seen stands (kept is false): the deploy may have run against the child
// as it was before (a tunnel since gone), so the next sync deploys in full
// again.
func (c *Controller) recordDeploy(st *descState, seen descProgress, generation int64, deployErr error) (again time.Duration, kept bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	st.lastFull = now
	if deployErr != nil {
		st.deployed = 0
		if st.failedGen != generation {
			st.failedGen, st.failures = generation, 0
		}
		st.failures++
		st.retryAt = now.Add(backoffFor(st.failures))
		if apierrors.IsInvalid(deployErr) || apierrors.IsBadRequest(deployErr) {
			// The child refuses this spec as such: it fails the same way
			// until the Description (or the child's schema) changes.
			st.retryAt = now.Add(c.opts.Resync)
		}
		return st.retryAt.Sub(now), true
	}
	st.failures, st.retryAt = 0, time.Time{}
	if st.resets != seen.resets {
		// Whoever reset it queues it, or will once the child is reached.
		return c.opts.Resync, false
	}
	st.deployed = generation
	return c.opts.Resync, true
}

// manifestStatus is o's status; keptDeleted says o is missing because it
// was deleted by hand and opts out of drift correction (it stays deleted
// until the Description changes).
func (c *Controller) manifestStatus(o Object, live *unstructured.Unstructured, desc *appsv1alpha1.Description, keptDeleted bool) appsv1alpha1.ManifestStatus {
	ms := ManifestStatusOf(o, live, desc.Namespace, desc.Name)
	if live == nil && keptDeleted {
		ms.Reason = reasonDeletedKept
	}
	return ms
}

// keptDeleted says desc's status (for its current generation) reports o as
// deleted by hand and kept deleted.
func keptDeleted(desc *appsv1alpha1.Description, o Object) bool {
	if desc.Status.ObservedGeneration != desc.Generation {
		return false
	}
	for _, ms := range desc.Status.ManifestStatuses {
		if RefOf(ms).Key() == o.Ref().Key() {
			return !ms.Applied && ms.Reason == reasonDeletedKept
		}
	}
	return false
}

// unchangedOptOuts are the objects opted out of drift correction that the
// child already holds at this version (hand edits stand), or that were
// deleted by hand since this generation deployed (they stay deleted).
func (c *Controller) unchangedOptOuts(ctx context.Context, w *childWatch, desc *appsv1alpha1.Description, objs []Object) (map[string]bool, error) {
	skip := map[string]bool{}
	for _, o := range objs {
		live, err := w.live(ctx, o.Ref())
		if err != nil {
			return nil, err
		}
		switch {
		case live == nil:
			if o.DriftCorrectionDisabled() && keptDeleted(desc, o) {
				skip[o.Ref().Key()] = true
			}
		case (o.DriftCorrectionDisabled() || driftCorrectionDisabled(live)) && OwnedBy(live, desc.Namespace, desc.Name) &&
			live.GetAnnotations()[AnnotationAppliedHash] == o.Hash:
			skip[o.Ref().Key()] = true
		}
	}
	return skip, nil
}

// recordIntent lists objs in the status before they are applied, next to
// what it already lists, and returns the Description as written.
func (c *Controller) recordIntent(ctx context.Context, desc *appsv1alpha1.Description, objs []Object) (*appsv1alpha1.Description, error) {
	return c.writeStatus(ctx, desc, func(status *appsv1alpha1.DescriptionStatus) {
		known := map[string]bool{}
		for _, ms := range status.ManifestStatuses {
			known[RefOf(ms).Key()] = true
		}
		for _, o := range objs {
			if !known[o.Ref().Key()] {
				status.ManifestStatuses = append(status.ManifestStatuses, appsv1alpha1.ManifestStatus{Feed: o.Ref().Feed(),
					FeedStatus: appsv1alpha1.FeedStatus{Reason: reasonNotApplied}})
			}
		}
		if status.Phase == "" {
			status.Phase = appsv1alpha1.DescriptionPhasePending
		}
	})
}

// finish writes the outcome of a deploy and records its events.
func (c *Controller) finish(ctx context.Context, desc *appsv1alpha1.Description, statuses, prev []appsv1alpha1.ManifestStatus, deployErr error) error {
	status := appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ManifestStatuses: statuses, ObservedGeneration: desc.Generation}
	if deployErr != nil {
		status.Phase = appsv1alpha1.DescriptionPhaseFailure
		status.Reason = deployErr.Error()
		if statuses == nil {
			status.ManifestStatuses = prev
			if prev == nil {
				status.ManifestStatuses = desc.Status.ManifestStatuses
			}
		}
		var oe *ObjectError
		if errors.As(deployErr, &oe) {
			for i := range status.ManifestStatuses {
				if RefOf(status.ManifestStatuses[i]).Key() == oe.Ref.Key() {
					status.ManifestStatuses[i].Reason = oe.Error()
				}
			}
		}
	}
	var old appsv1alpha1.DescriptionStatus
	if _, err := c.writeStatus(ctx, desc, func(s *appsv1alpha1.DescriptionStatus) {
		old = *s.DeepCopy()
		*s = status
	}); err != nil {
		return err
	}
	// One event per outcome of a generation, even across restarts.
	reported := old.Phase == status.Phase && old.ObservedGeneration == desc.Generation && old.Reason == status.Reason
	switch {
	case reported:
	case deployErr == nil:
		c.opts.Events.Eventf(desc, corev1.EventTypeNormal, ReasonDeployed, "Description %s/%s is deployed successfully", desc.Namespace, desc.Name)
	default:
		c.opts.Events.Event(desc, corev1.EventTypeWarning, ReasonDeployFailed, status.Reason)
	}
	return nil
}

// writeStatus applies mutate to the Description's status and writes it
// unless nothing changed. On a conflict it applies mutate again to a fresh
// copy: what mutate does not set stays as the latest writer left it.
func (c *Controller) writeStatus(ctx context.Context, desc *appsv1alpha1.Description, mutate func(*appsv1alpha1.DescriptionStatus)) (*appsv1alpha1.Description, error) {
	client := c.opts.Parent.AppsV1alpha1().Descriptions(desc.Namespace)
	current := c.newest(desc)
	over := "" // the resourceVersion the write replaced, once it is made
	wrote := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := current.DeepCopy()
		mutate(&d.Status)
		if equality.Semantic.DeepEqual(d.Status, current.Status) {
			return nil
		}
		written, err := client.UpdateStatus(ctx, d, metav1.UpdateOptions{FieldManager: FieldManager})
		if err == nil {
			over, current, wrote = current.ResourceVersion, written, true
			return nil
		}
		if apierrors.IsConflict(err) {
			fresh, getErr := client.Get(ctx, desc.Name, metav1.GetOptions{})
			switch {
			case getErr != nil:
				return getErr
			case fresh.UID != desc.UID:
				return apierrors.NewNotFound(appsv1alpha1.Resource("descriptions"), desc.Name)
			}
			current = fresh
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("writing the status of Description %s/%s: %w", desc.Namespace, desc.Name, err)
	}
	if wrote {
		c.remember(current, desc.ResourceVersion, over)
	}
	return current, nil
}

// newest is what to compare a new status against: desc (the informer's
// copy), or this deployer's own last write of the same Description and
// generation while desc has not seen that write (ownWrite.ahead). If that
// write is older in other respects (metadata), the update conflicts and is
// redone on a fresh copy.
func (c *Controller) newest(desc *appsv1alpha1.Description) *appsv1alpha1.Description {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.states[desc.Namespace+"/"+desc.Name]; st != nil && st.written.ahead(desc) {
		return st.written.desc
	}
	return desc
}

// remember records written as this deployer's last write of it: the
// write replaced resourceVersion over, and started from the copy of
// resourceVersion seen.
func (c *Controller) remember(written *appsv1alpha1.Description, seen, over string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.states[written.Namespace+"/"+written.Name]; st != nil && st.uid == written.UID {
		st.written = st.written.next(written, seen, over)
	}
}

// ownWrite is a Description as this deployer's last status write returned
// it, and the resourceVersions of the Description that write is newer than.
// The informer's copy lags behind the write, and status-only updates are
// not queued: a status compared against the lagging copy can look
// unchanged while it differs from what was written last (a Deployment
// scaled back up before the parent's watch brought back the "1 of 3
// replicas" report), and would never be written. So while the informer
// holds one of those older versions, the write is what the parent holds.
// Once the informer holds any other version it has moved past the write
// (it holds the write, or a status someone else wrote after it, such as
// the hub's), and the informer's copy is the one to trust: a write of ours
// is never taken over a newer one. This is the rule of the hub's
// statusWrites (pkg/server/hub/apps/base.go), which remembers the one
// version its write replaced; a deployer writes a Description a few times
// in a row (write-ahead, outcome, reports), so it keeps the versions its
// earlier writes were newer than as well.
type ownWrite struct {
	desc *appsv1alpha1.Description
	// behind are versions older than desc, the most recent first, at most
	// maxBehind: forgetting one only costs a comparison with the informer's
	// copy (a conflict, or a report written at the next resync).
	behind []string
}

const maxBehind = 8

// ahead says w is newer than cached, the same Description and generation.
func (w *ownWrite) ahead(cached *appsv1alpha1.Description) bool {
	return w != nil && w.desc.UID == cached.UID && w.desc.Generation == cached.Generation &&
		slices.Contains(w.behind, cached.ResourceVersion)
}

// next is the write that follows w: written, which replaced version over,
// from a copy of version seen. Whatever w was newer than, written is too.
func (w *ownWrite) next(written *appsv1alpha1.Description, seen, over string) *ownWrite {
	older := []string{over, seen}
	if w != nil && w.desc.UID == written.UID {
		older = append(append(older, w.desc.ResourceVersion), w.behind...)
	}
	next := &ownWrite{desc: written}
	for _, rv := range older {
		if len(next.behind) < maxBehind && !slices.Contains(next.behind, rv) {
			next.behind = append(next.behind, rv)
		}
	}
	return next
}

// setFinalizer adds or removes the deployer's finalizer and returns the
// Description as written (nil when it is gone).
func (c *Controller) setFinalizer(ctx context.Context, desc *appsv1alpha1.Description, add bool) (*appsv1alpha1.Description, error) {
	upd := desc.DeepCopy()
	changed := false
	if add {
		changed = controller.AddFinalizer(upd)
	} else {
		changed = controller.RemoveFinalizer(upd)
	}
	if !changed {
		return desc, nil
	}
	// resourceVersion makes it a compare-and-swap: a conflict retries.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers": upd.Finalizers, "resourceVersion": desc.ResourceVersion}})
	if err != nil {
		return nil, err
	}
	written, err := c.opts.Parent.AppsV1alpha1().Descriptions(desc.Namespace).Patch(ctx, desc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return written, err
}

// correctDrift checks the objects that changed in the child since the last
// look, and re-applies (or reports) those the Description's version no
// longer matches.
func (c *Controller) correctDrift(ctx context.Context, w *childWatch, st *descState, desc *appsv1alpha1.Description, objs []Object) error {
	c.mu.Lock()
	candidates := st.candidate
	st.candidate = nil
	c.mu.Unlock()
	if len(candidates) == 0 {
		return nil
	}
	byKey := make(map[string]Object, len(objs))
	for _, o := range objs {
		byKey[o.Ref().Key()] = o
	}
	var errs []error
	for k, ev := range candidates {
		o, ok := byKey[k]
		if !ok {
			continue // no longer in the Description: pruned
		}
		live, err := w.child.Get(ctx, o.Ref())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var wouldBe *unstructured.Unstructured
		if live != nil {
			if !OwnedBy(live, desc.Namespace, desc.Name) {
				continue
			}
			if wouldBe, err = w.child.DryRun(ctx, o.Marked(live)); err != nil {
				errs = append(errs, &ObjectError{Ref: o.Ref(), DryRun: true, Err: err})
				continue
			}
			if writer, _ := LastWriter(live); writer != "" {
				ev.writer = writer
			}
		}
		d := DecideDrift(o, live, wouldBe)
		if d.Action == NoDrift {
			continue
		}
		what := "was changed in the child"
		if d.Deleted {
			what = "was deleted from the child"
		} else {
			if ev.writer != "" {
				what += " by field manager " + ev.writer
			}
			what += " (" + strings.Join(d.Fields, ", ") + ")"
		}
		klog.FromContext(ctx).Info("Drift", "object", o.Ref().String(), "change", what, "corrected", d.Action == Correct)
		if d.Action == Report {
			c.opts.Events.Eventf(desc, corev1.EventTypeWarning, ReasonDriftDetected, "%s %s; left as is because it has annotation %s=%s",
				o.Ref(), what, appsv1alpha1.AnnotationDriftCorrection, DriftCorrectionDisabled)
			continue
		}
		if _, err := w.child.Apply(ctx, o.Marked(live)); err != nil {
			errs = append(errs, &ObjectError{Ref: o.Ref(), Err: err})
			continue
		}
		verb := "re-applied the Description's version"
		if d.Deleted {
			verb = "re-created it"
		}
		c.opts.Events.Eventf(desc, corev1.EventTypeWarning, ReasonDriftCorrected, "%s %s; %s", o.Ref(), what, verb)
	}
	if len(errs) > 0 {
		// Look again: the failed ones are checked on the next full deploy.
		c.reset(st)
		return errors.Join(errs...)
	}
	return nil
}

// refreshStatus recomputes the object statuses from the child's copies
// (the watch cache) and writes them when they changed. deployed is the
// generation last deployed in full, as the sync read it.
func (c *Controller) refreshStatus(ctx context.Context, w *childWatch, deployed int64, desc *appsv1alpha1.Description, objs []Object) error {
	generation := desc.Generation
	if written := c.newest(desc); written.Status.ObservedGeneration == generation {
		// This deployer's own last write of this generation: what the
		// parent holds, without asking it.
		desc = written
	}
	if desc.Status.ObservedGeneration != generation {
		// This generation is deployed, so its report was written: the
		// cached copy has not seen that write yet (the child's objects
		// often change before the parent's watch brings it back), and this
		// deployer holds no copy of its own write. Comparing
		// against it would find nothing to write and leave the status as
		// the deploy wrote it, with no later event to correct it.
		fresh, err := c.opts.Parent.AppsV1alpha1().Descriptions(desc.Namespace).Get(ctx, desc.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if fresh.UID != desc.UID || fresh.Generation != generation {
			return nil // changed since: its own event brings it back
		}
		desc = fresh
	}
	statuses := make([]appsv1alpha1.ManifestStatus, 0, len(objs))
	for _, o := range objs {
		live, known := w.cached(o.Ref())
		if !known || live == nil || live.GetAnnotations()[AnnotationAppliedHash] != o.Hash {
			// The cache may not have seen our last apply yet: ask.
			var err error
			if live, err = w.child.Get(ctx, o.Ref()); err != nil {
				return err
			}
		}
		// This generation deployed whole: a missing object was deleted since.
		kept := o.DriftCorrectionDisabled() && deployed == desc.Generation
		statuses = append(statuses, c.manifestStatus(o, live, desc, kept))
	}
	_, err := c.writeStatus(ctx, desc, func(s *appsv1alpha1.DescriptionStatus) {
		if s.ObservedGeneration == desc.Generation {
			s.ManifestStatuses = statuses
		}
	})
	return err
}

// cleanup removes a deleted Description's objects from the child (by
// DecideRemoval's rules: only what Clusternet created and no other
// Description lists is deleted), Namespaces last, and removes the finalizer
// once those it deletes are gone.
func (c *Controller) cleanup(ctx context.Context, w *childWatch, desc *appsv1alpha1.Description) (time.Duration, error) {
	if !controller.HasFinalizer(desc) {
		return 0, nil
	}
	all := statusRefs(desc)
	if objs, err := Objects(desc, w.child.Namespaced); err == nil {
		all = append(all, refs(objs)...)
	}
	seen := map[string]bool{}
	var order []Ref
	for _, r := range all {
		if r.Name != "" && !seen[r.Key()] {
			seen[r.Key()] = true
			order = append(order, r)
		}
	}
	order = DeleteOrder(order)
	shared := c.sharers(desc, w.child.Namespaced)
	var errs []error
	pending := 0
	for _, namespaces := range []bool{false, true} {
		if pending > 0 || len(errs) > 0 {
			break // namespaces only once the rest is gone
		}
		for _, r := range order {
			if isNamespace(r.GroupKind()) != namespaces {
				continue
			}
			still, err := c.remove(ctx, w, desc, r, shared[r.Key()], false)
			if err != nil {
				errs = append(errs, err)
			}
			if still {
				pending++
			}
		}
	}
	if len(errs) > 0 {
		err := errors.Join(errs...)
		c.opts.Events.Eventf(desc, corev1.EventTypeWarning, ReasonDeleteFailed, "Deleting the Description's objects from the child: %v", err)
		return 0, err
	}
	if pending > 0 {
		return time.Second, nil // wait until they are gone
	}
	if _, err := c.setFinalizer(ctx, desc, false); err != nil {
		return 0, err
	}
	c.opts.Events.Eventf(desc, corev1.EventTypeNormal, ReasonDeleted, "Deleted the Description's objects from the child (%d listed)", len(order))
	c.forget(cache.MetaObjectToName(desc).String())
	return 0, nil
}

// prune removes from the child the objects desc applied before and no
// longer lists (by DecideRemoval's rules), and returns a status entry for
// each it could not remove, with the error.
func (c *Controller) prune(ctx context.Context, w *childWatch, desc *appsv1alpha1.Description, gone []Ref) ([]appsv1alpha1.ManifestStatus, error) {
	if len(gone) == 0 {
		return nil, nil
	}
	shared := c.sharers(desc, w.child.Namespaced)
	var pending []appsv1alpha1.ManifestStatus
	var errs []error
	for _, r := range DeleteOrder(gone) {
		if _, err := c.remove(ctx, w, desc, r, shared[r.Key()], true); err != nil {
			errs = append(errs, err)
			pending = append(pending, appsv1alpha1.ManifestStatus{Feed: r.Feed(), FeedStatus: appsv1alpha1.FeedStatus{Reason: err.Error()}})
		}
	}
	if len(errs) > 0 {
		return pending, fmt.Errorf("pruning objects no longer in the Description: %w", errors.Join(errs...))
	}
	return nil, nil
}

// sharers maps the key of every object another Description of desc's
// cluster lists (a Generic one in the same dedicated namespace, not being
// deleted) to those Descriptions' names, sorted.
func (c *Controller) sharers(desc *appsv1alpha1.Description, namespaced func(schema.GroupVersionKind) (bool, error)) map[string][]string {
	out := map[string][]string{}
	descs, err := c.lister.Descriptions(desc.Namespace).List(labels.Everything())
	if err != nil {
		return out // a lister does not fail
	}
	slices.SortFunc(descs, func(a, b *appsv1alpha1.Description) int { return strings.Compare(a.Name, b.Name) })
	for _, d := range descs {
		if d.Name == desc.Name || d.DeletionTimestamp != nil || d.Spec.Deployer != appsv1alpha1.DescriptionGenericDeployer {
			continue
		}
		for k := range ListedKeys(d, namespaced) {
			out[k] = append(out[k], d.Name)
		}
	}
	return out
}

// remove removes r from the child on behalf of desc, which no longer lists
// it (pruning) or is deleted, and records what became of it. still says r
// is being deleted. A Namespace the child refuses to delete (Forbidden: a
// policy, or one of its own) is left there, released, with a Warning event:
// retrying would fail every deploy, or hold the finalizer, forever.
func (c *Controller) remove(ctx context.Context, w *childWatch, desc *appsv1alpha1.Description, r Ref, sharedWith []string, pruning bool) (still bool, err error) {
	d, err := w.child.Remove(ctx, r, desc.Namespace, sharedWith)
	if err != nil {
		if d != RemoveDelete || !isNamespace(r.GroupKind()) || !apierrors.IsForbidden(err) {
			return false, err
		}
		msg := fmt.Sprintf("The child refused to delete %s (%s); left it in the child", r, childMessage(err))
		live, getErr := w.child.Get(ctx, r)
		if getErr == nil && live != nil {
			getErr = w.child.Release(ctx, r, live)
		}
		if getErr != nil {
			msg += fmt.Sprintf(" (removing Clusternet's labels from it failed too: %v)", getErr)
		} else {
			msg += " without Clusternet's labels"
		}
		c.opts.Events.Event(desc, corev1.EventTypeWarning, ReasonDeleteFailed, msg)
		return false, nil
	}
	logger := klog.FromContext(ctx)
	switch d {
	case RemoveDelete:
		logger.V(2).Info("Deleting from the child", "object", r.String(), "pruning", pruning)
		if pruning {
			c.opts.Events.Eventf(desc, corev1.EventTypeNormal, ReasonPruned, "Deleted %s from the child: no longer in the Description", r)
		}
	case RemoveRelease:
		why := "it existed before Clusternet applied it"
		if isNamespace(r.GroupKind()) && systemNamespaces[r.Name] {
			why = "it is one of the child's system namespaces"
		}
		logger.Info("Released in the child", "object", r.String(), "reason", why)
		c.opts.Events.Eventf(desc, corev1.EventTypeNormal, ReasonLeft,
			"Left %s in the child: %s; removed Clusternet's labels and annotations from it", r, why)
	case RemoveKeep:
		logger.V(2).Info("Left in the child for other Descriptions", "object", r.String(), "descriptions", sharedWith)
		c.opts.Events.Eventf(desc, corev1.EventTypeNormal, ReasonLeft,
			"Left %s in the child: Description %s still lists it", r, strings.Join(sharedWith, ", "))
		// They take the object over: its labels may still name desc.
		c.redeploy(desc.Namespace, sharedWith)
	}
	return d == RemoveDelete || d == RemoveWait, nil
}

// redeploy has the Descriptions names of namespace applied again in full.
func (c *Controller) redeploy(namespace string, names []string) {
	c.mu.Lock()
	for _, n := range names {
		if st := c.states[namespace+"/"+n]; st != nil {
			st.resetLocked()
		}
	}
	c.mu.Unlock()
	for _, n := range names {
		c.queue.Add(namespace + "/" + n)
	}
}
