// Package shadow serves the shadow API, shadow/v1alpha1, in clusternet-hub:
// every resource the parent serves (built-in kinds and CRDs, followed as
// they come and go), except Clusternet's own groups, metrics and
// apiregistration, under /apis/shadow/v1alpha1. What is written there is a
// template, not a running object: it is validated with a server-side dry
// run of the real kind in the parent and stored as a Manifest in the
// reserved namespace, for Subscriptions to distribute. Reads, watches,
// patches (strategic merge patch for built-in kinds), deletes and the scale
// subresource behave like the real resource, so stock kubectl logic works
// on templates unmodified.
//
// The API is served by its own handler (the way apiextensions-apiserver
// serves CRDs), mounted on the hub's generic server: no routes in the
// go-restful container, so nothing to uninstall when a CRD goes away, and
// no unstructured storage in the hub's OpenAPI.
package shadow

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints"
	discoveryendpoint "k8s.io/apiserver/pkg/endpoints/discovery"
	aggregateddiscovery "k8s.io/apiserver/pkg/endpoints/discovery/aggregated"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	appsclient "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/typed/apps/v1alpha1"
)

const (
	// GroupName is the shadow API's group: literally "shadow".
	GroupName = "shadow"
	// Version is its only version.
	Version = "v1alpha1"
	// APIServiceName registers the shadow API with the parent's aggregator.
	APIServiceName = Version + "." + GroupName
	// ResourcesAnnotation is set on the shadow APIService to a digest of
	// what the shadow API serves. The hub updates it when that changes, so the
	// parent's aggregator fetches the new discovery at once instead of at
	// its next minute.
	ResourcesAnnotation = "shadow.clusternet.io/resources-digest"
)

var (
	crdGVR        = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
)

// Options configure the shadow API.
type Options struct {
	// Config reaches the parent as the hub.
	Config *rest.Config
	// AuthorizeRealKind makes every request also need the caller's
	// permission on the real kind (see docs/shadow.md).
	AuthorizeRealKind bool
	// MaxRequestBodyBytes and MinRequestTimeout are the generic server's.
	MaxRequestBodyBytes int64
	MinRequestTimeout   time.Duration
	// ResyncPeriod re-reads the parent's discovery even without a CRD or
	// APIService event (default 5 minutes).
	ResyncPeriod time.Duration
}

// API is the shadow API: an http.Handler for /apis/shadow, and the loop
// that follows the parent's discovery.
type API struct {
	opts Options

	manifests appsclient.ManifestInterface
	dynamic   dynamic.Interface
	discovery discovery.DiscoveryInterface
	validator validator
	reserved  *reservedNamespace

	// authorizer is the generic server's; realKind is it too, or nil when
	// real-kind checks are off.
	authorizer authorizer.UnconditionalAuthorizer
	realKind   authorizer.UnconditionalAuthorizer
	equivalent runtime.EquivalentResourceRegistry
	aggregated aggregateddiscovery.ResourceManager

	groupHandler   http.Handler
	versionHandler http.Handler

	snapshot atomic.Pointer[snapshot]
	// ready is closed once the first snapshot is served.
	ready     chan struct{}
	readyOnce sync.Once
	queue     workqueue.TypedRateLimitingInterface[string]

	crds cache.GenericLister
	// mu guards lastLists and removed.
	mu sync.Mutex
	// lastLists is the last good discovery of each group version, used
	// while an aggregated API's discovery fails.
	lastLists map[schema.GroupVersion][]metav1.APIResource
	// removed are CRDs deleted recently, which discovery must drop.
	removed map[schema.GroupResource]time.Time
}

// snapshot is what the shadow API serves at one time.
type snapshot struct {
	resources    map[string]*servedResource
	apiResources []metav1.APIResource
	// discoveryJSON is the APIResourceList of shadow/v1alpha1 as JSON,
	// discoveryGzip the same gzipped.
	discoveryJSON, discoveryGzip []byte
	digest                       string
}

// clients are the parent's APIs the shadow API uses.
type clients struct {
	manifests  appsclient.ManifestInterface
	namespaces typedcorev1.NamespaceInterface
	dynamic    dynamic.Interface
	// authors act as a template's author to validate it; with none, no
	// template validates (never as the hub).
	authors   authorClients
	discovery discovery.DiscoveryInterface
}

// New builds the shadow API from the hub's configuration of the parent.
// Its clients are not rate-limited on the hub's side: every request they
// make is on behalf of one the parent has already admitted.
func New(opts Options) (*API, error) {
	cfg := rest.CopyConfig(opts.Config)
	cfg.QPS, cfg.Burst = -1, 0
	clusternet, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
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
	// The parent's warnings about a dry run are the client's to read.
	relaying := rest.CopyConfig(cfg)
	relaying.WarningHandlerWithContext = relayWarnings{}
	authors, err := newImpersonatingClients(relaying)
	if err != nil {
		return nil, err
	}
	return newAPI(opts, clients{
		manifests:  clusternet.AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace),
		namespaces: kube.CoreV1().Namespaces(),
		dynamic:    dyn,
		authors:    authors,
		discovery:  disco,
	}), nil
}

func newAPI(opts Options, c clients) *API {
	if opts.ResyncPeriod == 0 {
		opts.ResyncPeriod = 5 * time.Minute
	}
	a := &API{
		opts:      opts,
		manifests: c.manifests,
		dynamic:   c.dynamic,
		discovery: c.discovery,
		validator: &dryRunValidator{authors: c.authors, namespace: appsv1alpha1.ReservedNamespace},
		reserved:  &reservedNamespace{namespaces: c.namespaces},
		ready:     make(chan struct{}),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 5*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "shadow-discovery"}),
		lastLists: map[schema.GroupVersion][]metav1.APIResource{},
		removed:   map[schema.GroupResource]time.Time{},
	}
	gv := schema.GroupVersion{Group: GroupName, Version: Version}
	a.groupHandler = discoveryendpoint.NewAPIGroupHandler(codecs, apiGroup())
	a.versionHandler = discoveryendpoint.NewAPIVersionHandler(codecs, gv, discoveryendpoint.APIResourceListerFunc(func() []metav1.APIResource {
		if s := a.snapshot.Load(); s != nil {
			return s.apiResources
		}
		return nil
	}))
	return a
}

func apiGroup() metav1.APIGroup {
	v := metav1.GroupVersionForDiscovery{GroupVersion: GroupName + "/" + Version, Version: Version}
	return metav1.APIGroup{Name: GroupName, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v}
}

// Install mounts the shadow API on the hub's generic server, lists it in
// discovery, starts following the parent's resources when the server
// starts, and reports ready once it serves them.
func (a *API) Install(server *genericapiserver.GenericAPIServer) error {
	a.authorizer = server.Authorizer
	if a.opts.AuthorizeRealKind {
		a.realKind = server.Authorizer
	}
	a.equivalent = server.EquivalentResourceRegistry
	a.aggregated = server.AggregatedDiscoveryGroupManager
	server.DiscoveryGroupManager.AddGroup(apiGroup())
	server.Handler.NonGoRestfulMux.Handle("/apis/"+GroupName, a)
	server.Handler.NonGoRestfulMux.UnlistedHandlePrefix("/apis/"+GroupName+"/", a)
	if err := server.AddPostStartHook("clusternet-shadow-discovery", func(ctx genericapiserver.PostStartHookContext) error {
		go a.Run(ctx)
		return nil
	}); err != nil {
		return err
	}
	return server.AddReadyzChecks(healthz.NamedCheck("clusternet-shadow", func(*http.Request) error {
		if a.snapshot.Load() == nil {
			return fmt.Errorf("the shadow API has not discovered the parent's resources yet")
		}
		return nil
	}))
}

// Run follows the parent's resources until ctx ends: at start, on every
// CRD and APIService change, and every ResyncPeriod.
func (a *API) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("shadow")
	ctx = klog.NewContext(ctx, logger)
	defer a.queue.ShutDown()
	if err := a.reserved.ensure(ctx); err != nil {
		logger.Error(err, "Creating the reserved namespace; retrying with the first template")
	}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(a.dynamic, 0)
	crds := factory.ForResource(crdGVR)
	if err := crds.Informer().SetTransform(trimCRD); err != nil {
		logger.Error(err, "Trimming cached CRDs")
	}
	a.crds = crds.Lister()
	if _, err := crds.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { a.crdChanged(obj, false) },
		UpdateFunc: func(_, obj interface{}) { a.crdChanged(obj, false) },
		DeleteFunc: func(obj interface{}) { a.crdChanged(obj, true) },
	}); err != nil {
		logger.Error(err, "Watching CRDs")
	}
	if _, err := factory.ForResource(apiServiceGVR).Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(interface{}) { a.queue.Add(syncKey) },
		UpdateFunc: func(old, obj interface{}) {
			if apiServiceChanged(old, obj) {
				a.queue.Add(syncKey)
			}
		},
		DeleteFunc: func(interface{}) { a.queue.Add(syncKey) },
	}); err != nil {
		logger.Error(err, "Watching APIServices")
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	factory.WaitForCacheSync(ctx.Done())

	go wait.UntilWithContext(ctx, func(context.Context) { a.queue.Add(syncKey) }, a.opts.ResyncPeriod)
	go func() {
		<-ctx.Done()
		a.queue.ShutDown()
	}()
	for a.processNext(ctx) {
	}
}

const (
	syncKey = "discovery"
	// maxSyncRetries bounds the retries while discovery lags the CRDs
	// (about a minute with the backoff); the periodic resync follows up.
	maxSyncRetries = 20
	// removedCRDGrace is how long a deleted CRD may stay in discovery
	// before its absence stops being waited for.
	removedCRDGrace = time.Minute
)

func (a *API) processNext(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	err := a.sync(ctx)
	switch {
	case err == nil:
		a.queue.Forget(key)
	case a.queue.NumRequeues(key) < maxSyncRetries:
		klog.FromContext(ctx).V(2).Info("Discovery not settled; retrying", "reason", err.Error())
		a.queue.AddRateLimited(key)
	default:
		klog.FromContext(ctx).Error(err, "Discovery did not settle; waiting for the next change")
		a.queue.Forget(key)
	}
	return true
}

func (a *API) crdChanged(obj interface{}, deleted bool) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(u.Object, "spec", "names", "plural")
		gr := schema.GroupResource{Group: group, Resource: plural}
		a.mu.Lock()
		if deleted {
			a.removed[gr] = time.Now()
		} else {
			delete(a.removed, gr)
		}
		a.mu.Unlock()
	}
	a.queue.Add(syncKey)
}

// apiServiceChanged ignores updates that change neither an APIService's
// spec nor its availability (such as the hub's own digest annotation).
func apiServiceChanged(old, obj interface{}) bool {
	o, ok1 := old.(*unstructured.Unstructured)
	n, ok2 := obj.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return true
	}
	return !reflect.DeepEqual(o.Object["spec"], n.Object["spec"]) || available(o) != available(n)
}

func available(u *unstructured.Unstructured) string {
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conditions {
		if m, ok := c.(map[string]interface{}); ok && m["type"] == "Available" {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}

// sync reads the parent's discovery and serves what it lists. It fails
// (to be retried) while discovery does not yet show an established CRD, or
// still shows a deleted one.
func (a *API) sync(ctx context.Context) error {
	groups, lists, err := a.discovery.ServerGroupsAndResources()
	failed := map[schema.GroupVersion]error{}
	if err != nil {
		var partial *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &partial) {
			return fmt.Errorf("reading the parent's discovery: %w", err)
		}
		failed = partial.Groups
	}
	d := discovered{resources: map[schema.GroupVersion][]metav1.APIResource{}}
	for _, g := range groups {
		d.groups = append(d.groups, *g)
	}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		d.resources[gv] = l.APIResources
	}
	a.mu.Lock()
	for gv := range failed {
		// An aggregated API that is down keeps what it served.
		if prev, ok := a.lastLists[gv]; ok && d.resources[gv] == nil {
			d.resources[gv] = prev
		}
	}
	for gv, l := range d.resources {
		a.lastLists[gv] = l
	}
	a.mu.Unlock()
	if err := a.apply(ctx, buildResources(d, a.crdScale)); err != nil {
		return err
	}
	return a.settled(d)
}

// settled checks discovery against the CRDs the hub has seen.
func (a *API) settled(d discovered) error {
	var missing, lingering []string
	if a.crds != nil {
		objs, err := a.crds.List(labels.Everything())
		if err != nil {
			return err
		}
		for _, obj := range objs {
			u, ok := obj.(*unstructured.Unstructured)
			if !ok || u.GetDeletionTimestamp() != nil {
				continue
			}
			group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
			plural, _, _ := unstructured.NestedString(u.Object, "spec", "names", "plural")
			gr := schema.GroupResource{Group: group, Resource: plural}
			if !excludedGroup(group) && crdEstablished(u) && crdServed(u) && !d.has(gr) {
				missing = append(missing, gr.String())
			}
		}
	}
	a.mu.Lock()
	for gr, at := range a.removed {
		if d.has(gr) && time.Since(at) < removedCRDGrace {
			lingering = append(lingering, gr.String())
		} else {
			delete(a.removed, gr)
		}
	}
	a.mu.Unlock()
	if len(missing) > 0 || len(lingering) > 0 {
		return fmt.Errorf("discovery lags the CRDs: not yet served %v, still served %v", missing, lingering)
	}
	return nil
}

func crdEstablished(u *unstructured.Unstructured) bool {
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conditions {
		if m, ok := c.(map[string]interface{}); ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

func crdServed(u *unstructured.Unstructured) bool {
	versions, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
	for _, v := range versions {
		if m, ok := v.(map[string]interface{}); ok && m["served"] == true {
			return true
		}
	}
	return false
}

// crdScale reads the scale paths of the CRD serving group/resource.
func (a *API) crdScale(group, resource, version string) (*scalePaths, bool) {
	if a.crds == nil {
		return nil, false
	}
	obj, err := a.crds.Get(resource + "." + group)
	if err != nil {
		return nil, false
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, false
	}
	versions, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
	for _, v := range versions {
		m, ok := v.(map[string]interface{})
		if !ok || m["name"] != version {
			continue
		}
		replicas, found, _ := unstructured.NestedString(m, "subresources", "scale", "specReplicasPath")
		if !found {
			return nil, false
		}
		p := &scalePaths{replicas: jsonPath(replicas)}
		if sel, _, _ := unstructured.NestedString(m, "subresources", "scale", "labelSelectorPath"); sel != "" && !strings.HasPrefix(sel, ".status.") {
			p.selector = jsonPath(sel)
		}
		return p, true
	}
	return nil, false
}

// apply serves resources, if they differ from what is served: handlers
// are rebuilt for the resources that changed, then swapped in at once.
func (a *API) apply(ctx context.Context, resources map[string]*resource) error {
	list := apiResources(resources)
	digest, err := digestOf(resources)
	if err != nil {
		return err
	}
	prev := a.snapshot.Load()
	if prev != nil && prev.digest == digest {
		return nil
	}
	discoveryJSON, err := json.Marshal(&metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: GroupName + "/" + Version,
		APIResources: list,
	})
	if err != nil {
		return err
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	if _, err := zw.Write(discoveryJSON); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	next := &snapshot{resources: map[string]*servedResource{}, apiResources: list,
		discoveryJSON: discoveryJSON, discoveryGzip: zipped.Bytes(), digest: digest}
	for name, r := range resources {
		if prev != nil {
			if old := prev.resources[name]; old != nil && reflect.DeepEqual(old.r, r) {
				next.resources[name] = old
				continue
			}
		}
		s, err := a.newServedResource(r)
		if err != nil {
			return err
		}
		next.resources[name] = s
	}
	a.snapshot.Store(next)
	a.readyOnce.Do(func() { close(a.ready) })
	klog.FromContext(ctx).Info("Serving the parent's resources as templates", "resources", len(resources), "digest", digest)
	if a.aggregated != nil {
		converted, err := endpoints.ConvertGroupVersionIntoToDiscovery(list)
		if err != nil {
			return err
		}
		a.aggregated.AddGroupVersion(GroupName, apidiscoveryv2.APIVersionDiscovery{
			Version:   Version,
			Resources: converted,
			Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent,
		})
		a.aggregated.SetGroupVersionPriority(metav1.GroupVersion{Group: GroupName, Version: Version}, shadowGroupPriority, 100)
	}
	if prev != nil {
		// The first time needs no nudge: the APIService turning Available
		// makes the aggregator fetch discovery anyway, and a write now
		// would race the aggregator's own status update.
		a.nudgeAggregator(ctx, digest)
	}
	return nil
}

// shadowGroupPriority is below every real group's (CRDs get 1000), so a
// plain kubectl resolves names and short names to the real kinds.
const shadowGroupPriority = 100

// digestOf fingerprints what is served.
func digestOf(resources map[string]*resource) (string, error) {
	names := make([]string, 0, len(resources))
	for name := range resources {
		names = append(names, name)
	}
	sort.Strings(names)
	type entry struct {
		Name  string
		GVR   schema.GroupVersionResource
		Kind  string
		Rest  []interface{}
		Scale *struct{ Replicas, Selector []string }
	}
	var entries []entry
	for _, name := range names {
		r := resources[name]
		e := entry{Name: name, GVR: r.gvr, Kind: r.kind, Rest: []interface{}{r.singular, r.namespaced, r.shortNames, r.versions, r.hasStatus}}
		if r.scale != nil {
			e.Scale = &struct{ Replicas, Selector []string }{r.scale.replicas, r.scale.selector}
		}
		entries = append(entries, e)
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// nudgeAggregator records the digest on the shadow APIService: an update of
// the APIService makes the parent's aggregator fetch the hub's discovery now
// rather than within the minute. Best effort: without it (no APIService of
// that name, no permission) the aggregator catches up on its own.
func (a *API) nudgeAggregator(ctx context.Context, digest string) {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, ResourcesAnnotation, digest)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := a.dynamic.Resource(apiServiceGVR).Patch(ctx, APIServiceName, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		level := 0
		if apierrors.IsNotFound(err) {
			level = 2
		}
		klog.FromContext(ctx).V(level).Info("Could not nudge the parent's aggregator; it refreshes discovery within a minute",
			"apiService", APIServiceName, "err", err.Error())
	}
}

// relayWarnings passes the parent's warnings about a dry run to the client
// of the request that caused it.
type relayWarnings struct{}

func (relayWarnings) HandleWarningHeaderWithContext(ctx context.Context, code int, agent, text string) {
	if code == 299 && text != "" {
		warning.AddWarning(ctx, "", text)
	}
}
