package hub

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/featuregate"
	"k8s.io/utils/clock"

	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/features"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	clusternetscheme "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/scheme"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/helm"
	"github.com/clusternet/clusternet/pkg/server/hub/approver"
	"github.com/clusternet/clusternet/pkg/server/hub/clusterapi"
	"github.com/clusternet/clusternet/pkg/server/hub/clusterclients"
	"github.com/clusternet/clusternet/pkg/server/hub/lifecycle"
	"github.com/clusternet/clusternet/pkg/server/hub/sockets"
)

// Context is what the hub's controllers are built from: clients of the
// parent, shared informers, and the transports into children through the
// tunnels this replica holds.
type Context struct {
	Config     *rest.Config
	Kube       kubernetes.Interface
	Clusternet versioned.Interface
	Dynamic    dynamic.Interface
	// Mapper resolves kinds of the parent; Reset it when a lookup misses
	// (a CRD installed after the hub started).
	Mapper *restmapper.DeferredDiscoveryRESTMapper
	// Informers share watches of Clusternet's kinds, KubeInformers of
	// Kubernetes' own, among all controllers of one Context.
	Informers     externalversions.SharedInformerFactory
	KubeInformers kubeinformers.SharedInformerFactory
	// Events records events in the parent from component clusternet-hub,
	// as `kubectl describe` shows them (core/v1 events, so From reads just
	// "clusternet-hub").
	Events record.EventRecorder
	// Transports reach children through this replica's tunnels.
	Transports   *sockets.Transports
	Workers      int
	FeatureGates featuregate.FeatureGate
	// Registration shapes how the approver answers registrations.
	Registration approver.Options
	// ChartRepositories bound the hub's chart fetches; nil means defaults.
	ChartRepositories *helm.RepositoryOptions
	// ClusterAPI are the cluster-api discovery flags; nil or without
	// namespaces, discovery is off.
	ClusterAPI *clusterapi.Options
	// FailoverGracePeriod is --cluster-failover-grace-period (gate FailOver).
	FailoverGracePeriod time.Duration

	broadcaster record.EventBroadcaster
	// clients is the per-cluster client registry the generic and Helm
	// pushers of this Context share (one transport, one discovery per
	// cluster, dropped when it leaves), built by the first that asks so
	// that a Context running neither (a leader term's) builds none.
	clientsOnce sync.Once
	clients     *clusterclients.Registry
	clientsErr  error
	// cancel ends the controllers start ran; running holds while their
	// goroutines (started with Go) run, so that shutdown can wait for them.
	cancel  context.CancelFunc
	running sync.WaitGroup
}

// Go runs f, a controller's Run, in a goroutine that shutdown waits for:
// the next leader term must not start while this one's workers still write.
func (c *Context) Go(f func()) { c.running.Go(f) }

// Registrations is the record of which namespace each cluster was admitted
// into, which tunnels and pushes are bound to.
func (c *Context) Registrations() sockets.Registrations {
	crrs := c.Informers.Clusters().V1beta1().ClusterRegistrationRequests()
	return sockets.Registrations{Lister: crrs.Lister(), Synced: crrs.Informer().HasSynced}
}

// eventScheme knows Kubernetes' and Clusternet's kinds, for event references.
var eventScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, clusternetscheme.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

func newControllerContext(cfg *rest.Config, transports *sockets.Transports, workers int, gates featuregate.FeatureGate,
	registration approver.Options, chartRepositories *helm.RepositoryOptions) (*Context, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	clusternet, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	broadcaster := record.NewBroadcaster()
	// Objects are cached without managedFields (controller.TrimManagedFields).
	trim := controller.TrimManagedFields
	return &Context{
		Config:            cfg,
		Kube:              kube,
		Clusternet:        clusternet,
		Dynamic:           dyn,
		Mapper:            restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco)),
		Informers:         externalversions.NewSharedInformerFactoryWithOptions(clusternet, 0, externalversions.WithTransform(trim)),
		KubeInformers:     kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeinformers.WithTransform(trim)),
		Events:            broadcaster.NewRecorder(eventScheme, corev1.EventSource{Component: "clusternet-hub"}),
		Transports:        transports,
		Workers:           workers,
		FeatureGates:      gates,
		Registration:      registration,
		ChartRepositories: chartRepositories,
		broadcaster:       broadcaster,
	}, nil
}

// A controllerStarter builds one controller from c and starts it with c.Go;
// it runs until ctx ends. Informers it asks for are started after every
// starter ran.
type controllerStarter struct {
	name  string
	start func(ctx context.Context, c *Context) error
	// gate, when set, must be enabled for the controller to run.
	gate featuregate.Feature
}

// leaderControllers run only in the replica holding the lease.
var leaderControllers = []controllerStarter{
	{name: "approver", start: func(ctx context.Context, c *Context) error {
		ctl, err := approver.New(c.Kube, c.Clusternet, c.Informers.Clusters().V1beta1().ClusterRegistrationRequests(), c.Registration)
		if err != nil {
			return err
		}
		c.Go(func() { ctl.Run(ctx, c.Workers) })
		return nil
	}},
	{name: "lifecycle", start: func(ctx context.Context, c *Context) error {
		ctl, err := lifecycle.New(c.Clusternet, c.Informers.Clusters().V1beta1().ManagedClusters(), clock.RealClock{})
		if err != nil {
			return err
		}
		c.Go(func() { ctl.Run(ctx, c.Workers) })
		return nil
	}},
	// Failover taints (wire_failover.go). Not gated here: with the gate off
	// it removes the taints an earlier run added.
	{name: "failover", start: startFailover},
	// Application distribution (wire_apps.go): Subscriptions to Bases to
	// Descriptions, overrides, status aggregation.
	{name: "distribution", start: startDistribution, gate: features.Deployer},
	// Helm, parent side (wire_helm.go): HelmChart resolution, Helm
	// Descriptions to HelmReleases.
	{name: "helm", start: startHelm, gate: features.Deployer},
	// FeedInUseProtection (wire_feedprotect.go). Not gated here: with the
	// gate off it releases what an earlier run held.
	{name: "feed-protection", start: startFeedProtection},
	// Cluster-api discovery (wire_clusterapi.go), when --cluster-api-namespaces
	// names namespaces.
	{name: "cluster-api-discovery", start: startClusterAPIDiscovery},
	// Multi-cluster services (wire_mcs.go). Not gated here: with the gate
	// off it revokes the agents' rights an earlier run granted.
	{name: "multi-cluster-service", start: startMultiClusterService},
}

// replicaControllers run in every replica: what acts through tunnels runs
// where the tunnel is.
var replicaControllers = []controllerStarter{
	// Pushing Generic Descriptions into children (wire_push.go).
	{name: "generic-pusher", start: startGenericPusher, gate: features.Deployer},
	// Pushing HelmReleases into children (wire_helm.go).
	{name: "helm-pusher", start: startHelmPusher, gate: features.Deployer},
}

// start runs the starters and then the informers they asked for, until
// shutdown. If a starter fails, what the others started is stopped before
// start returns the error.
func (c *Context) start(ctx context.Context, starters []controllerStarter) error {
	ctx, c.cancel = context.WithCancel(ctx)
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.Kube.CoreV1().Events("")})
	for _, s := range starters {
		if s.gate != "" && !c.FeatureGates.Enabled(s.gate) {
			continue
		}
		if err := s.start(ctx, c); err != nil {
			c.shutdown()
			return fmt.Errorf("controller %s: %w", s.name, err)
		}
	}
	c.Informers.Start(ctx.Done())
	c.KubeInformers.Start(ctx.Done())
	return nil
}

// shutdown stops what start started and returns once the controllers and
// informers have stopped.
func (c *Context) shutdown() {
	if c.cancel != nil {
		c.cancel()
	}
	c.running.Wait()
	c.Informers.Shutdown()
	c.KubeInformers.Shutdown()
	c.broadcaster.Shutdown()
}

// clusterClients is c's per-cluster client registry (Context.clients). It
// is built before c's informers start, since starters run first, so that it
// hears every ManagedCluster and registration change; it closes when ctx
// ends.
func (c *Context) clusterClients(ctx context.Context) (*clusterclients.Registry, error) {
	c.clientsOnce.Do(func() {
		clusters := c.Informers.Clusters().V1beta1()
		c.clients, c.clientsErr = clusterclients.New(c.Transports, clusters.ManagedClusters(), clusters.ClusterRegistrationRequests())
		if c.clientsErr != nil {
			return
		}
		c.Go(func() {
			<-ctx.Done()
			c.clients.Close()
		})
	})
	return c.clients, c.clientsErr
}
