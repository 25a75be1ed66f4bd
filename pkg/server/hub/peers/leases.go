package peers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
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

// AnnotationAddress is the holder's host:port, where other replicas forward
// requests for the cluster.
const AnnotationAddress = "proxies.clusternet.io/peer-address"

// DefaultLeaseDuration is how long a tunnel Lease lasts unrenewed: a replica
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
// holder of the others.
type Leases struct {
	o       Options
	tunnels *tunnel.Registry
	lister  coordinationlisters.LeaseNamespaceLister
	synced  cache.InformerSynced
	factory informers.SharedInformerFactory
	queue   workqueue.TypedRateLimitingInterface[string]

	mu sync.Mutex
	// upSince is, per cluster whose tunnel is here, when it came up: the
	// newest tunnel wins the Lease.
	upSince map[string]time.Time
	// unreachable is, per peer address a dial failed to, when: that
	// holder is skipped until it renews its Lease after then.
	unreachable map[string]time.Time
}

// NewLeases watches tunnels and the tunnel Leases of the hub's namespace.
func NewLeases(o Options, tunnels *tunnel.Registry) *Leases {
	if o.LeaseDuration == 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(o.Kube, 0, informers.WithNamespace(o.Namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = LabelSocket }))
	leases := factory.Coordination().V1().Leases()
	l := &Leases{
		o: o, tunnels: tunnels, factory: factory,
		lister: leases.Lister().Leases(o.Namespace), synced: leases.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, o.LeaseDuration/3),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "tunnel-leases", Clock: o.Clock}),
		upSince: map[string]time.Time{}, unreachable: map[string]time.Time{},
	}
	tunnels.Watch(func(id string, up bool) {
		l.mu.Lock()
		if up {
			l.upSince[id] = l.o.Clock.Now()
		} else {
			delete(l.upSince, id)
		}
		l.mu.Unlock()
		l.queue.Add(id)
	})
	return l
}

// Identity is this replica's holderIdentity.
func (l *Leases) Identity() string { return l.o.Identity }

// Run keeps the Leases until ctx ends, then releases those it holds.
func (l *Leases) Run(ctx context.Context) {
	defer l.queue.ShutDown()
	l.factory.Start(ctx.Done())
	defer l.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), l.synced) {
		return
	}
	var wg sync.WaitGroup
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

// sync makes cluster id's Lease say what this replica knows: held here
// (renewed every third of its duration) while its tunnel is here, released
// when it went.
func (l *Leases) sync(ctx context.Context, id string) error {
	l.mu.Lock()
	since, here := l.upSince[id]
	l.mu.Unlock()
	here = here && l.tunnels.Has(id)
	leases := l.o.Kube.CoordinationV1().Leases(l.o.Namespace)
	name := LeasePrefix + id
	lease, err := l.lister.Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err != nil {
		lease = nil
	}
	now := l.o.Clock.Now()
	if !here {
		// Read the parent itself: the cache may not show yet the Lease
		// this replica has just made.
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if ptr.Deref(lease.Spec.HolderIdentity, "") != l.o.Identity {
			return nil
		}
		err = leases.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &lease.UID, ResourceVersion: &lease.ResourceVersion}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
		return nil
	}
	defer l.queue.AddAfter(id, l.o.LeaseDuration/3)
	if lease == nil {
		_, err := leases.Create(ctx, l.lease(id, since, now, 0), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("tunnel Lease %s appeared meanwhile: %w", name, err)
		}
		return err
	}
	holder := ptr.Deref(lease.Spec.HolderIdentity, "")
	if holder != l.o.Identity && lease.Spec.AcquireTime != nil && lease.Spec.AcquireTime.After(since) && l.valid(lease, now) {
		// Another replica holds a newer tunnel of this cluster: an agent
		// has one tunnel at a time, so this one is a dead leftover.
		klog.FromContext(ctx).Info("Another replica holds a newer tunnel of this cluster: closing the one here", "clusterID", id, "holder", holder)
		l.tunnels.Close(id)
		return nil
	}
	updated := lease.DeepCopy()
	transitions := ptr.Deref(lease.Spec.LeaseTransitions, 0)
	if holder != l.o.Identity {
		transitions++
	}
	fresh := l.lease(id, since, now, transitions)
	updated.Labels, updated.Annotations, updated.Spec = fresh.Labels, fresh.Annotations, fresh.Spec
	_, err = leases.Update(ctx, updated, metav1.UpdateOptions{})
	return err
}

func (l *Leases) lease(id string, since, now time.Time, transitions int32) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   l.o.Namespace,
			Name:        LeasePrefix + id,
			Labels:      map[string]string{LabelSocket: id},
			Annotations: map[string]string{AnnotationAddress: l.o.Address},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(l.o.Identity),
			LeaseDurationSeconds: ptr.To(int32(l.o.LeaseDuration / time.Second)),
			AcquireTime:          &metav1.MicroTime{Time: since},
			RenewTime:            &metav1.MicroTime{Time: now},
			LeaseTransitions:     ptr.To(transitions),
		},
	}
}

func (l *Leases) valid(lease *coordinationv1.Lease, now time.Time) bool {
	if lease.Spec.RenewTime == nil || lease.Spec.LeaseDurationSeconds == nil {
		return false
	}
	return now.Before(lease.Spec.RenewTime.Add(time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second))
}

// releaseAll deletes the Leases this replica holds, on shutdown: agents
// reconnect to the other replicas, which would take them over anyway.
func (l *Leases) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	held, err := l.lister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, lease := range held {
		if ptr.Deref(lease.Spec.HolderIdentity, "") == l.o.Identity {
			_ = l.o.Kube.CoordinationV1().Leases(l.o.Namespace).Delete(ctx, lease.Name,
				metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &lease.UID, ResourceVersion: &lease.ResourceVersion}})
		}
	}
}

// Holder is the address of the other replica holding cluster id's tunnel,
// or "" when no other live replica does.
func (l *Leases) Holder(id string) string {
	lease, err := l.lister.Get(LeasePrefix + id)
	if err != nil || ptr.Deref(lease.Spec.HolderIdentity, "") == l.o.Identity || !l.valid(lease, l.o.Clock.Now()) {
		return ""
	}
	addr := lease.Annotations[AnnotationAddress]
	l.mu.Lock()
	failed, ok := l.unreachable[addr]
	l.mu.Unlock()
	// A replica restarted at the same address finds its predecessor's
	// Leases: those tunnels come back here, not there.
	if addr == "" || addr == l.o.Address || (ok && !lease.Spec.RenewTime.After(failed)) {
		return ""
	}
	return addr
}

// Unreachable says a dial to addr failed: its Leases are skipped until it
// renews them.
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
