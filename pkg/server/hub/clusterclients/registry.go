// Package clusterclients is the hub's one registry of what it holds per
// child cluster: how the cluster is reached (a client configuration through
// the cluster's tunnel, as its agent, over the tunnel transport the proxy
// uses too) and the clients derived from it (a dynamic client, one cached
// discovery and RESTMapper, the deployer's Child, Helm's Cluster). Every
// hub-side consumer takes its clients from here, so one place decides how
// a cluster is reached and one place forgets it.
//
// Lifecycle: a cluster's clients are built when first asked for, and only
// for a cluster that is registered here (an approved registration and a
// ManagedCluster with its id in the namespace it was admitted into) and
// whose tunnel this replica holds. They are dropped
//
//   - when the cluster leaves (its ManagedCluster or its registration is
//     gone): the clients fail fast from then on and its tunnel transport is
//     forgotten at once;
//   - when its tunnel goes down here (an agent reconnecting, or the tunnel
//     moving to another replica, whose Lease closes this one): the next
//     request builds new clients once the tunnel is back, while requests
//     in flight still wait for the reconnect through the tunnel transport,
//     which outlives a reconnect on its own.
//
// Dropping closes the cluster's Done channel: the deployer stops the
// watches it started through the clients (deployer.Clients), and the Helm
// pusher, which keeps no clients of its own, gets new ones next time.
//
// Imports go one way: the hub's wiring (package hub) imports this package,
// which imports the libraries that consume the clients (pkg/deployer,
// pkg/helm) and the tunnel transports (sockets); none imports it back. The
// deployer and the Helm pusher know it only by interfaces of their own
// (deployer.Clients, hubhelm.Clusters): the deployer, which the agent runs
// too, stays free of hub packages.
package clusterclients

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/deployer"
	clusterinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/clusters/v1beta1"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/helm"
	"github.com/clusternet/clusternet/pkg/server/hub/sockets"
)

// Registry holds the clients of the child clusters this replica reaches.
type Registry struct {
	transports    *sockets.Transports
	clusters      clusterlisters.ManagedClusterLister
	registrations sockets.Registrations

	mu     sync.Mutex
	held   map[string]*Cluster
	closed bool
}

var _ deployer.Clients = &Registry{}

// New returns a registry reaching clusters through transports. It watches
// ManagedClusters and ClusterRegistrationRequests to tell when a cluster
// leaves (add it before the informers start), and the tunnels to tell
// when one goes down here.
func New(transports *sockets.Transports, mcls clusterinformers.ManagedClusterInformer,
	crrs clusterinformers.ClusterRegistrationRequestInformer) (*Registry, error) {
	r := &Registry{
		transports:    transports,
		clusters:      mcls.Lister(),
		registrations: sockets.Registrations{Lister: crrs.Lister(), Synced: crrs.Informer().HasSynced},
		held:          map[string]*Cluster{},
	}
	// Any change of a cluster's ManagedCluster or registration may be its
	// leaving: checked against the listers, which hold the change already.
	if _, err := mcls.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			if old, ok := oldObj.(*clusterv1beta1.ManagedCluster); ok {
				r.check(string(old.Spec.ClusterID))
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if mc, ok := obj.(*clusterv1beta1.ManagedCluster); ok {
				r.check(string(mc.Spec.ClusterID))
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := crrs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, newObj any) {
			if crr, ok := newObj.(*clusterv1beta1.ClusterRegistrationRequest); ok {
				r.check(string(crr.Spec.ClusterID))
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if crr, ok := obj.(*clusterv1beta1.ClusterRegistrationRequest); ok {
				r.check(string(crr.Spec.ClusterID))
			}
		},
	}); err != nil {
		return nil, err
	}
	transports.Tunnels().Watch(func(id string, up bool) {
		if !up {
			r.drop(id)
		}
	})
	return r, nil
}

// Get returns cluster id's clients, built on first use. It refuses a
// cluster that is not registered here or whose tunnel this replica does not
// hold: clients built for it would never be dropped.
func (r *Registry) Get(id string) (*Cluster, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("cluster %s: the hub is shutting down", id)
	}
	if c, ok := r.held[id]; ok {
		return c, nil
	}
	// The listers and the tunnel registry change before their watchers
	// hear of it, and the watchers take r.mu: a cluster leaving either
	// fails this check or is dropped right after.
	if why := r.unregistered(id); why != "" {
		return nil, fmt.Errorf("cluster %s %s", id, why)
	}
	if !r.transports.Tunnels().Has(id) {
		return nil, fmt.Errorf("cluster %s's tunnel is not held by this replica", id)
	}
	c, err := newCluster(id, r.transports.ChildConfig(id))
	if err != nil {
		return nil, fmt.Errorf("clients of cluster %s: %w", id, err)
	}
	r.held[id] = c
	return c, nil
}

// Child implements deployer.Clients.
func (r *Registry) Child(id string) (*deployer.Child, <-chan struct{}, error) {
	c, err := r.Get(id)
	if err != nil {
		return nil, nil, err
	}
	return c.child, c.done, nil
}

// Helm returns cluster id's Helm clients (hubhelm.Clusters).
func (r *Registry) Helm(id string) (*helm.Cluster, error) {
	c, err := r.Get(id)
	if err != nil {
		return nil, err
	}
	return c.helm, nil
}

// Held lists the clusters whose clients are held, for tests and debugging.
func (r *Registry) Held() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.held))
}

// Close drops every cluster's clients and builds no more: the controllers
// using them stopped.
func (r *Registry) Close() {
	r.mu.Lock()
	held := r.held
	r.held, r.closed = map[string]*Cluster{}, true
	r.mu.Unlock()
	for _, c := range held {
		c.drop(false)
	}
}

// unregistered says why cluster id is not registered here ("" when it is):
// an approved registration admitted it into a namespace that holds a
// ManagedCluster with its id.
func (r *Registry) unregistered(id string) string {
	ns := r.registrations.Namespace(id)
	if ns == "" {
		return "has no approved registration"
	}
	mcs, err := r.clusters.ManagedClusters(ns).List(labels.Everything())
	if err != nil {
		return fmt.Sprintf("cannot be looked up: %v", err)
	}
	for _, mc := range mcs {
		if string(mc.Spec.ClusterID) == id {
			return ""
		}
	}
	return fmt.Sprintf("has no ManagedCluster in namespace %s, which it was admitted into", ns)
}

// check drops cluster id's clients, and forgets its tunnel transport, if it
// left.
func (r *Registry) check(id string) {
	// Before the registrations are listed every cluster looks unregistered:
	// forgetting then would throw away live transports at every start.
	if id == "" || !r.registrations.Synced() {
		return
	}
	r.mu.Lock()
	if r.unregistered(id) == "" {
		r.mu.Unlock()
		return
	}
	c := r.held[id]
	delete(r.held, id)
	r.mu.Unlock()
	if c != nil {
		c.drop(true)
	}
	r.transports.Forget(id)
}

// drop drops cluster id's clients: its tunnel went down here.
func (r *Registry) drop(id string) {
	r.mu.Lock()
	c := r.held[id]
	delete(r.held, id)
	r.mu.Unlock()
	if c != nil {
		c.drop(false)
	}
}

// Cluster is what the hub holds of one child cluster. Every client in it
// goes through the same configuration (the tunnel transport) and shares
// one discovery.
type Cluster struct {
	id     string
	config *rest.Config
	// discovery is cached; mapper is over it, and its Reset invalidates it.
	discovery discovery.CachedDiscoveryInterface
	mapper    *restmapper.DeferredDiscoveryRESTMapper
	dynamic   dynamic.Interface
	child     *deployer.Child
	helm      *helm.Cluster

	// done is closed when these clients are dropped.
	done chan struct{}
	// left is set when they were dropped because the cluster left.
	left atomic.Bool
}

func newCluster(id string, cfg *rest.Config) (*Cluster, error) {
	c := &Cluster{id: id, done: make(chan struct{})}
	cfg = rest.CopyConfig(cfg)
	cfg.Transport = &clusterTransport{cluster: c, next: cfg.Transport}
	c.config = cfg
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if c.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	c.discovery = memory.NewMemCacheClient(disco)
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(c.discovery)
	if c.child, err = deployer.NewChildWith(cfg, c.dynamic, c.mapper); err != nil {
		return nil, err
	}
	c.helm = helm.NewClusterWith(cfg, c.discovery, c.mapper)
	return c, nil
}

// ID is the cluster's id.
func (c *Cluster) ID() string { return c.id }

// Config reaches the cluster's apiserver through its tunnel, as its agent.
func (c *Cluster) Config() *rest.Config { return rest.CopyConfig(c.config) }

// Discovery is the cluster's cached discovery, shared by every client here.
func (c *Cluster) Discovery() discovery.CachedDiscoveryInterface { return c.discovery }

// Mapper is the cluster's RESTMapper over Discovery; Reset rediscovers.
func (c *Cluster) Mapper() *restmapper.DeferredDiscoveryRESTMapper { return c.mapper }

// Dynamic is the cluster's dynamic client.
func (c *Cluster) Dynamic() dynamic.Interface { return c.dynamic }

// Child is the deployer's view of the cluster.
func (c *Cluster) Child() *deployer.Child { return c.child }

// Helm is Helm's view of the cluster.
func (c *Cluster) Helm() *helm.Cluster { return c.helm }

// Done is closed when the registry drops these clients.
func (c *Cluster) Done() <-chan struct{} { return c.done }

func (c *Cluster) drop(left bool) {
	if left {
		c.left.Store(true)
	}
	close(c.done)
}

// clusterTransport is the round tripper of a Cluster's configuration: the
// tunnel transport, until the cluster left. A client kept past that (an
// action in flight) then fails at once rather than rebuilding the tunnel
// transport the registry just forgot for a cluster that is gone.
type clusterTransport struct {
	cluster *Cluster
	next    http.RoundTripper
}

func (t *clusterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.cluster.left.Load() {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("cluster %s left (its ManagedCluster or registration is gone): its clients are closed", t.cluster.id)
	}
	return t.next.RoundTrip(req)
}
