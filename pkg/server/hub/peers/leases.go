package peers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	coordinationinformers "k8s.io/client-go/informers/coordination/v1"
	"k8s.io/client-go/kubernetes"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/clusternet/clusternet/pkg/tunnel"
)

// LeasePrefix names each cluster's tunnel Lease: socket-<cluster-id>.
const LeasePrefix = "socket-"

// LabelSocket marks tunnel Leases (its value is the cluster id), so
// replicas watch only those.
const LabelSocket = "proxies.clusternet.io/socket"

// ReplicaLeasePrefix names each replica's own Lease, hub-replica-<identity>
// (ReplicaLeaseName).
const ReplicaLeasePrefix = "hub-replica-"

// LabelReplica marks replica Leases (its value is "true"), so replicas
// watch only those.
const LabelReplica = "proxies.clusternet.io/replica"

// AnnotationAddress is a replica's host:port, where other replicas forward
// requests for the clusters it holds. It is on its replica Lease, and on
// each tunnel Lease for replicas of the previous version, which read it
// only there.
const AnnotationAddress = "proxies.clusternet.io/peer-address"

// DefaultLeaseDuration is how long a replica Lease lasts unrenewed: a replica
// that died stops being forwarded to once its agents reconnected elsewhere
// (at once) or this has passed.
const DefaultLeaseDuration = 15 * time.Second

// Options say who this replica is and where its peers reach it.
type Options struct {
	Kube      kubernetes.Interface
	Namespace string
	// Identity is the Leases' holderIdentity for this replica (unique per
	// process); Address is host:port where the others reach it.
	Identity, Address string
	LeaseDuration     time.Duration
	Clock             clock.WithTicker
}

// Leases records the tunnels this replica holds in Leases and finds the
// holder of the others. A tunnel Lease (socket-<cluster-id>) is written only
// when its holder changes; whether its holder still lives is its replica
// Lease's to say, the one Lease each replica renews. At rest the parent
// sees one write per replica every third of the lease duration, whatever the
// number of clusters (the kubelet's pattern: Node status on change, a Lease
// for liveness).
type Leases struct {
	o        Options
	tunnels  *tunnel.Registry
	sockets  coordinationlisters.LeaseNamespaceLister
	replicas coordinationlisters.LeaseNamespaceLister
	// informers are the tunnel Leases' and the replica Leases'.
	informers []cache.SharedIndexInformer
	queue     workqueue.TypedRateLimitingInterface[string]
	// started is when this replica began: its replica Lease's acquireTime.
	started time.Time
	// replica is this replica's Lease as last written (the renewing
	// goroutine's only), so that a renewal is one write and no read.
	replica *coordinationv1.Lease

	mu sync.Mutex
	// upSince is, per cluster whose tunnel is here, when it came up: the
	// newest tunnel wins the Lease.
	upSince map[string]time.Time
	// unreachable is, per peer address a dial failed to, when: that
	// holder is skipped until its liveness is renewed after then.
	unreachable map[string]time.Time
}

// NewLeases watches tunnels and the tunnel and replica Leases of the hub's
// namespace.
func NewLeases(o Options, tunnels *tunnel.Registry) *Leases {
	if o.LeaseDuration == 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	sockets, replicas := leaseInformer(o, LabelSocket), leaseInformer(o, LabelReplica)
	l := &Leases{
		o: o, tunnels: tunnels, informers: []cache.SharedIndexInformer{sockets, replicas},
		sockets:  coordinationlisters.NewLeaseLister(sockets.GetIndexer()).Leases(o.Namespace),
		replicas: coordinationlisters.NewLeaseLister(replicas.GetIndexer()).Leases(o.Namespace),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, o.LeaseDuration/3),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "tunnel-leases", Clock: o.Clock}),
		started: o.Clock.Now(),
		upSince: map[string]time.Time{}, unreachable: map[string]time.Time{},
	}
	// Nothing renews a tunnel Lease: a change another replica made to the
	// Lease of a tunnel here (a takeover, a release) is what has this one
	// look again.
	_, _ = sockets.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    l.leaseChanged,
		UpdateFunc: func(_, obj any) { l.leaseChanged(obj) },
		DeleteFunc: l.leaseChanged,
	})
	tunnels.Watch(func(id string, up bool) {
		l.mu.Lock()
		if up {
			// In microseconds, as the parent keeps acquireTime: a Lease
			// records this tunnel exactly when it says this time.
			l.upSince[id] = l.o.Clock.Now().Truncate(time.Microsecond)
		} else {
			delete(l.upSince, id)
		}
		l.mu.Unlock()
		l.queue.Add(id)
	})
	return l
}

// leaseInformer watches the Leases of the hub's namespace labelled label.
func leaseInformer(o Options, label string) cache.SharedIndexInformer {
	return coordinationinformers.NewFilteredLeaseInformer(o.Kube, o.Namespace, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
		func(lo *metav1.ListOptions) { lo.LabelSelector = label })
}

func (l *Leases) leaseChanged(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	lease, ok := obj.(*coordinationv1.Lease)
	if !ok {
		return
	}
	id := lease.Labels[LabelSocket]
	l.mu.Lock()
	_, here := l.upSince[id]
	l.mu.Unlock()
	if here {
		l.queue.Add(id)
	}
}

// reviewInherited has sync look once at every tunnel Lease naming this
// replica. A hub restarted in its container has its predecessor's identity
// (the same host, and pid 1): the Leases of the tunnels that predecessor
// held name this replica and its replica Lease keeps them alive, though
// those tunnels went with it. sync releases the ones whose tunnel is not
// here; nothing else looks at them until their agent comes back.
func (l *Leases) reviewInherited() {
	held, err := l.sockets.List(labels.Everything())
	if err != nil {
		return
	}
	for _, lease := range held {
		if id, ok := lease.Labels[LabelSocket]; ok && ptr.Deref(lease.Spec.HolderIdentity, "") == l.o.Identity {
			l.queue.Add(id)
		}
	}
}

// Identity is this replica's holderIdentity.
func (l *Leases) Identity() string { return l.o.Identity }

// Run keeps the Leases until ctx ends, then releases those it holds.
func (l *Leases) Run(ctx context.Context) {
	defer l.queue.ShutDown()
	var wg sync.WaitGroup
	defer wg.Wait()
	synced := make([]cache.InformerSynced, 0, len(l.informers))
	for _, informer := range l.informers {
		wg.Go(func() { informer.Run(ctx.Done()) })
		synced = append(synced, informer.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	l.reviewInherited()
	// The ticker starts before the first renewal, so that a tick is never
	// missed between the two.
	ticker := l.o.Clock.NewTicker(l.o.LeaseDuration / 3)
	defer ticker.Stop()
	l.keepAlive(ctx)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C():
				l.keepAlive(ctx)
			}
		}
	})
	wg.Go(func() {
		for l.next(ctx) {
		}
	})
	<-ctx.Done()
	l.queue.ShutDown()
	wg.Wait()
	l.releaseAll()
}

func (l *Leases) next(ctx context.Context) bool {
	id, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(id)
	if err := l.sync(ctx, id); err != nil {
		klog.FromContext(ctx).V(2).Info("Syncing a tunnel Lease, retrying", "clusterID", id, "err", err)
		l.queue.AddRateLimited(id)
		return true
	}
	l.queue.Forget(id)
	return true
}

// sync makes cluster id's Lease say what this replica knows, writing only
// when that changed: held here from when its tunnel came up here, released
// when it went.
func (l *Leases) sync(ctx context.Context, id string) error {
	l.mu.Lock()
	since, here := l.upSince[id]
	l.mu.Unlock()
	if !here || !l.tunnels.Has(id) {
		return l.release(ctx, id)
	}
	lease, err := l.sockets.Get(LeasePrefix + id)
	if apierrors.IsNotFound(err) {
		return l.write(ctx, nil, id, since)
	}
	if err != nil {
		return err
	}
	holder := ptr.Deref(lease.Spec.HolderIdentity, "")
	acquired := lease.Spec.AcquireTime
	if holder == l.o.Identity {
		if acquired != nil && acquired.Time.Equal(since) {
			return nil
		}
		// The agent reconnected here: the Lease records the new tunnel,
		// so that an older one elsewhere does not seem the newest.
		return l.write(ctx, lease, id, since)
	}
	if acquired != nil && acquired.After(since) && l.liveness(lease, l.o.Clock.Now()).valid {
		// Another replica holds a newer tunnel of this cluster: an agent
		// has one tunnel at a time, so this one is a dead leftover.
		klog.FromContext(ctx).Info("Another replica holds a newer tunnel of this cluster: closing the one here", "clusterID", id, "holder", holder)
		l.tunnels.Close(id)
		return nil
	}
	return l.write(ctx, lease, id, since)
}

// write records in cluster id's Lease (nil: none yet) that its tunnel is
// here since then.
func (l *Leases) write(ctx context.Context, lease *coordinationv1.Lease, id string, since time.Time) error {
	leases := l.o.Kube.CoordinationV1().Leases(l.o.Namespace)
	fresh := l.lease(LeasePrefix+id, map[string]string{LabelSocket: id}, since)
	if lease == nil {
		fresh.Spec.LeaseTransitions = ptr.To(int32(0))
		_, err := leases.Create(ctx, fresh, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("tunnel Lease %s appeared meanwhile: %w", fresh.Name, err)
		}
		return err
	}
	transitions := ptr.Deref(lease.Spec.LeaseTransitions, 0)
	if ptr.Deref(lease.Spec.HolderIdentity, "") != l.o.Identity {
		transitions++
	}
	updated := lease.DeepCopy()
	updated.Labels, updated.Annotations, updated.Spec = fresh.Labels, fresh.Annotations, fresh.Spec
	updated.Spec.LeaseTransitions = ptr.To(transitions)
	_, err := leases.Update(ctx, updated, metav1.UpdateOptions{})
	return err
}

// release deletes cluster id's Lease if this replica holds it: its tunnel
// went.
func (l *Leases) release(ctx context.Context, id string) error {
	leases := l.o.Kube.CoordinationV1().Leases(l.o.Namespace)
	// Read the parent itself: the cache may not show yet the Lease this
	// replica has just made.
	lease, err := leases.Get(ctx, LeasePrefix+id, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ptr.Deref(lease.Spec.HolderIdentity, "") != l.o.Identity {
		return nil
	}
	err = leases.Delete(ctx, lease.Name, preconditions(lease))
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return err
	}
	return nil
}

// lease is a Lease this replica holds, named name, acquired then and
// renewed now. Both kinds carry the address: the replica Lease for this
// version, the tunnel Lease for replicas of the previous one (during a
// rolling upgrade), which look for it there.
func (l *Leases) lease(name string, lbls map[string]string, acquired time.Time) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: l.o.Namespace, Name: name, Labels: lbls,
			Annotations: map[string]string{AnnotationAddress: l.o.Address},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(l.o.Identity),
			LeaseDurationSeconds: ptr.To(int32(l.o.LeaseDuration / time.Second)),
			AcquireTime:          &metav1.MicroTime{Time: acquired},
			RenewTime:            &metav1.MicroTime{Time: l.o.Clock.Now()},
		},
	}
}

// ReplicaLeaseName is the name of the Lease of the replica whose
// holderIdentity is identity: hub-replica-<identity>, made a valid name
// (an identity is host_pid) and then told apart from the identities it
// could be mistaken for by a hash.
func ReplicaLeaseName(identity string) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, identity)
	const maxLen = validation.DNS1123SubdomainMaxLength - len(ReplicaLeasePrefix) - 9
	if name == identity && len(validation.IsDNS1123Subdomain(ReplicaLeasePrefix+name)) == 0 {
		return ReplicaLeasePrefix + name
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(identity))
	if len(name) > maxLen {
		name = name[:maxLen]
	}
	return fmt.Sprintf("%s%s-%08x", ReplicaLeasePrefix, strings.Trim(name, "-."), h.Sum32())
}

// keepAlive renews this replica's Lease and deletes the Leases of replicas
// long gone.
func (l *Leases) keepAlive(ctx context.Context) {
	if err := l.renew(ctx); err != nil {
		klog.FromContext(ctx).V(2).Info("Renewing this replica's Lease, retrying at the next renewal", "err", err)
	}
	l.collect(ctx)
}

// renew writes this replica's Lease: it lives, and serves at its address.
func (l *Leases) renew(ctx context.Context) error {
	leases := l.o.Kube.CoordinationV1().Leases(l.o.Namespace)
	fresh := l.lease(ReplicaLeaseName(l.o.Identity), map[string]string{LabelReplica: "true"}, l.started)
	create := func() error {
		created, err := leases.Create(ctx, fresh, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		l.replica = created
		return nil
	}
	current := l.replica
	if current == nil {
		got, err := leases.Get(ctx, fresh.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return create()
		}
		if err != nil {
			return err
		}
		current = got
	}
	updated := current.DeepCopy()
	updated.Labels, updated.Annotations, updated.Spec = fresh.Labels, fresh.Annotations, fresh.Spec
	renewed, err := leases.Update(ctx, updated, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		// Collected by the other replicas while this one could not reach
		// the parent: every tunnel here counts as held nowhere until it is
		// back, so it comes back now, not at the next renewal.
		return create()
	}
	if err != nil {
		// Whatever the parent holds now, the next renewal reads it first.
		l.replica = nil
		return err
	}
	l.replica = renewed
	return nil
}

// collect deletes the Leases of replicas expired for a whole lease duration
// more: replicas come and go with each rollout, and one killed never deleted
// its own. Deleting it changes nothing: tunnel Leases whose holder has no
// replica Lease are judged by their own renewTime (liveness), when that
// holder wrote them, at least as long ago.
func (l *Leases) collect(ctx context.Context) {
	replicas, err := l.replicas.List(labels.Everything())
	if err != nil {
		return
	}
	gone := l.o.Clock.Now().Add(-l.o.LeaseDuration)
	for _, lease := range replicas {
		// Replica Leases only, whatever the cache was handed: a tunnel
		// Lease long past its own renewTime is the normal one at rest.
		if _, ok := lease.Labels[LabelReplica]; !ok || ptr.Deref(lease.Spec.HolderIdentity, "") == l.o.Identity || l.valid(lease, gone) {
			continue
		}
		err := l.o.Kube.CoordinationV1().Leases(l.o.Namespace).Delete(ctx, lease.Name, preconditions(lease))
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			klog.FromContext(ctx).V(2).Info("Deleting the Lease of a replica long gone", "lease", klog.KObj(lease), "err", err)
		}
	}
}

// liveness is what says whether the holder of a tunnel Lease lives.
type liveness struct {
	// addr is where the holder serves.
	addr string
	// renewed is when its liveness was last renewed: a failed dial to it
	// counts until the next renewal.
	renewed time.Time
	valid   bool
}

// liveness is that of lease's holder: its replica Lease's. A holder without
// one is judged by the tunnel Lease itself, renewed within its duration, as
// before replica Leases: during a rolling upgrade the replicas of the
// previous version renew each tunnel Lease and write their address there,
// and a replica of this version has no replica Lease in this cache yet in
// the moment after it started (its tunnel Lease was written just then).
func (l *Leases) liveness(lease *coordinationv1.Lease, now time.Time) liveness {
	holder := ptr.Deref(lease.Spec.HolderIdentity, "")
	if replica, err := l.replicas.Get(ReplicaLeaseName(holder)); err == nil && ptr.Deref(replica.Spec.HolderIdentity, "") == holder {
		lease = replica
	}
	lv := liveness{addr: lease.Annotations[AnnotationAddress], valid: l.valid(lease, now)}
	if lease.Spec.RenewTime != nil {
		lv.renewed = lease.Spec.RenewTime.Time
	}
	return lv
}

func (l *Leases) valid(lease *coordinationv1.Lease, now time.Time) bool {
	if lease.Spec.RenewTime == nil || lease.Spec.LeaseDurationSeconds == nil {
		return false
	}
	return now.Before(lease.Spec.RenewTime.Add(time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second))
}

func preconditions(lease *coordinationv1.Lease) metav1.DeleteOptions {
	return metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &lease.UID, ResourceVersion: &lease.ResourceVersion}}
}

// releaseAll deletes the Leases this replica holds, on shutdown: agents
// reconnect to the other replicas, which would take them over anyway. Its
// replica Lease goes last, so that no tunnel Lease it still holds seems
// live.
func (l *Leases) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	leases := l.o.Kube.CoordinationV1().Leases(l.o.Namespace)
	held, err := l.sockets.List(labels.Everything())
	if err == nil {
		for _, lease := range held {
			if _, ok := lease.Labels[LabelSocket]; ok && ptr.Deref(lease.Spec.HolderIdentity, "") == l.o.Identity {
				_ = leases.Delete(ctx, lease.Name, preconditions(lease))
			}
		}
	}
	if l.replica != nil {
		_ = leases.Delete(ctx, l.replica.Name, preconditions(l.replica))
	}
}

// Holder is the address of the other replica holding cluster id's tunnel,
// or "" when no other live replica does.
func (l *Leases) Holder(id string) string {
	lease, err := l.sockets.Get(LeasePrefix + id)
	if err != nil || ptr.Deref(lease.Spec.HolderIdentity, "") == l.o.Identity {
		return ""
	}
	lv := l.liveness(lease, l.o.Clock.Now())
	if !lv.valid {
		return ""
	}
	l.mu.Lock()
	failed, ok := l.unreachable[lv.addr]
	l.mu.Unlock()
	// A replica restarted at the same address finds its predecessor's
	// Leases: those tunnels come back here, not there.
	if lv.addr == "" || lv.addr == l.o.Address || (ok && !lv.renewed.After(failed)) {
		return ""
	}
	return lv.addr
}

// Unreachable says a dial to addr failed: its Leases are skipped until it
// renews its liveness.
func (l *Leases) Unreachable(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unreachable[addr] = l.o.Clock.Now()
}

// ErrNoTunnel says no replica holds a cluster's tunnel.
var ErrNoTunnel = errors.New("no tunnel in any hub replica")

// Locate waits, until ctx ends, for cluster id's tunnel to be here
// (addr "") or held by another live replica (its address).
func (l *Leases) Locate(ctx context.Context, id string) (addr string, err error) {
	for {
		if l.tunnels.Has(id) {
			return "", nil
		}
		if addr := l.Holder(id); addr != "" {
			return addr, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("cluster %s: %w (is its agent running and connected?)", id, ErrNoTunnel)
		case <-l.o.Clock.After(50 * time.Millisecond):
		}
	}
}
