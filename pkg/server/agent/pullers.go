package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	clusternetscheme "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/scheme"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/helm"
)

// PullContext is what the agent's pull-mode controllers are built from: the
// parent as this cluster's agent sees it (its dedicated namespace), and the
// child.
type PullContext struct {
	// ParentConfig carries the agent's parent credentials: everything in the
	// dedicated namespace, its own request and socket, nothing else.
	ParentConfig *rest.Config
	Parent       versioned.Interface
	ParentKube   kubernetes.Interface
	// Namespace is the cluster's dedicated namespace in the parent, where its
	// Bases, Descriptions and HelmReleases live.
	Namespace string
	ClusterID types.UID
	// ChildConfig reaches the child with the agent's own credentials.
	ChildConfig *rest.Config
	// SyncMode (the ManagedCluster's spec.syncMode) and AppPusher (this
	// agent's gate) decide who applies: the agent when
	// !clusterv1beta1.HubPushes(SyncMode, AppPusher). Pullers run only then,
	// and are stopped when that changes.
	SyncMode  clusterv1beta1.ClusterSyncMode
	AppPusher bool
	// Events records events in the dedicated namespace of the parent, from
	// component clusternet-agent.
	Events  record.EventRecorder
	Workers int
	// ChartRepositories bound the agent's chart fetches; nil means defaults.
	ChartRepositories *helm.RepositoryOptions
	// caches are the informers readiness waits for (nil: none).
	caches *caches
}

// A puller is one of the agent's pull-mode controllers; it runs until ctx ends.
type puller struct {
	name string
	run  func(ctx context.Context, c *PullContext) error
}

// pullers run in every agent; each decides by PullContext.SyncMode and
// AppPusher whether it has anything to do.
var pullers = []puller{
	// Generic Descriptions (pull_generic.go).
	{name: "generic-puller", run: runGenericPuller},
	// HelmReleases (pull_helm.go).
	{name: "helm-puller", run: runHelmPuller},
}

var agentEventScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, clusternetscheme.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// runPullers runs the pull-mode controllers while this agent, not the hub,
// applies applications here. Who applies has one source of truth, the
// ManagedCluster in the parent (its spec.syncMode, which the hub reads too)
// with this agent's AppPusher gate: the controllers start when
// HubPushes turns false and stop when it turns true, so hub and agent never
// both apply, nor neither.
func (a *Agent) runPullers(ctx context.Context) error {
	parentCfg := a.credentialsConfig()
	parentKube, err := kubernetes.NewForConfig(parentCfg)
	if err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: parentKube.CoreV1().Events(a.creds.DedicatedNamespace)})
	base := PullContext{
		ParentConfig:      parentCfg,
		Parent:            a.parent,
		ParentKube:        parentKube,
		Namespace:         a.creds.DedicatedNamespace,
		ClusterID:         a.clusterID,
		ChildConfig:       a.childCfg,
		AppPusher:         a.appPusher(),
		Events:            broadcaster.NewRecorder(agentEventScheme, corev1.EventSource{Component: "clusternet-agent"}),
		Workers:           2,
		ChartRepositories: a.opts.ChartRepositories,
		caches:            &a.caches,
	}
	modes := make(chan clusterv1beta1.ClusterSyncMode, 1)
	go a.watchSyncMode(ctx, modes)
	go a.followSyncMode(ctx, modes, base, pullers, defaultPullerBackoff)
	return nil
}

// followSyncMode runs ps with base while the modes received say this agent
// pulls, and stops them when they say the hub pushes, until ctx ends.
func (a *Agent) followSyncMode(ctx context.Context, modes <-chan clusterv1beta1.ClusterSyncMode, base PullContext, ps []puller, b backoff) {
	var stop func() // non-nil while the pull controllers run
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		var mode clusterv1beta1.ClusterSyncMode
		select {
		case <-ctx.Done():
			return
		case mode = <-modes:
		}
		pull := !clusterv1beta1.HubPushes(mode, base.AppPusher)
		if pull == (stop != nil) {
			continue
		}
		if !pull {
			klog.FromContext(ctx).Info("The hub applies applications to this cluster; pull controllers stop", "syncMode", mode, "appPusher", base.AppPusher)
			stop()
			stop = nil
			continue
		}
		klog.FromContext(ctx).Info("This agent applies applications itself; pull controllers start", "syncMode", mode, "appPusher", base.AppPusher)
		c := base
		c.SyncMode = mode
		stop = a.startPullers(ctx, &c, ps, b)
	}
}

// backoff is how long a failed puller waits before it runs again: initial
// after the first failure, doubling up to max.
type backoff struct{ initial, max time.Duration }

var defaultPullerBackoff = backoff{initial: time.Second, max: time.Minute}

// startPullers runs every puller of ps with c until the returned stop is
// called; stop returns once they all have.
func (a *Agent) startPullers(ctx context.Context, c *PullContext, ps []puller, b backoff) (stop func()) {
	pctx, cancel := context.WithCancel(ctx)
	var running sync.WaitGroup
	for _, p := range ps {
		running.Go(func() { a.runPuller(pctx, p, c, b) })
	}
	return func() {
		cancel()
		running.Wait()
	}
}

// runPuller runs p until ctx ends. A run that fails (say, the parent
// refused a list while the agent's RBAC was being set up) is started again
// after a backoff: otherwise nobody would apply this cluster's applications
// until its sync mode changed.
func (a *Agent) runPuller(ctx context.Context, p puller, c *PullContext, b backoff) {
	delay := b.initial
	for {
		began := time.Now()
		err := p.run(ctx, c)
		if err == nil || ctx.Err() != nil {
			return // done, or asked to stop
		}
		if time.Since(began) > b.max {
			delay = b.initial // it ran a while: a new failure, not the same one again
		}
		a.logError(ctx, fmt.Errorf("pull controller %s: %w; restarting in %s", p.name, err, delay))
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		delay = min(2*delay, b.max)
	}
}

// syncModeInformer names the informer of this cluster's ManagedCluster in readiness.
const syncModeInformer = "managedcluster"

// watchSyncMode sends the registered sync mode of this cluster's
// ManagedCluster, now and whenever it changes, to modes (latest value only).
func (a *Agent) watchSyncMode(ctx context.Context, modes chan clusterv1beta1.ClusterSyncMode) {
	informers := externalversions.NewSharedInformerFactoryWithOptions(a.parent, 0,
		externalversions.WithNamespace(a.creds.DedicatedNamespace),
		externalversions.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", a.creds.ManagedClusterName).String()
		}))
	var warned sync.Once
	send := func(obj any) {
		mc, ok := obj.(*clusterv1beta1.ManagedCluster)
		if !ok {
			return
		}
		if flag := clusterv1beta1.ClusterSyncMode(a.opts.ClusterSyncMode); mc.Spec.SyncMode != flag {
			warned.Do(func() {
				klog.FromContext(ctx).Info("Warning: --cluster-sync-mode differs from this cluster's ManagedCluster, which decides; edit its spec.syncMode in the parent to change it",
					"flag", flag, "managedCluster", mc.Spec.SyncMode)
			})
		}
		select { // keep only the newest mode
		case <-modes:
		default:
		}
		modes <- mc.Spec.SyncMode
	}
	informer := informers.Clusters().V1beta1().ManagedClusters().Informer()
	defer a.caches.add(syncModeInformer, informer.HasSynced)()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    send,
		UpdateFunc: func(old, obj any) { send(obj) },
	}); err != nil {
		a.logError(ctx, err)
		return
	}
	informers.Start(ctx.Done())
	<-ctx.Done()
	informers.Shutdown()
}
