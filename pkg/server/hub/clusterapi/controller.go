// Package clusterapi is the hub's cluster-api discovery: it watches the
// cluster-api Clusters of a management cluster (another cluster, or the
// parent itself), installs clusternet-agent into each provisioned one
// through its kubeconfig Secret, with a bootstrap token made for it alone,
// and deregisters the cluster when its Cluster is deleted. See
// docs/cluster-api.md.
//
// Who reaches what: the management cluster's <cluster>-kubeconfig Secrets
// are the admin credentials of every workload cluster. Only this
// controller, in the hub's leader, reads them, only in the namespaces
// --cluster-api-namespaces names, only each Cluster's own, and nothing of
// them is written into the parent (a ManagedCluster records the Secret's
// UID and resourceVersion, hashed with the agent's manifests). Whoever may
// create Clusters and Secrets in a discovered namespace can have an agent
// installed wherever their kubeconfig points: the default discovers no
// namespace, and an admin lists only those their cluster-api operators
// alone write.
package clusterapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/bootstraptoken"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	clusterlisters "github.com/clusternet/clusternet/pkg/generated/listers/clusters/v1beta1"
)

// Reasons of the events on Clusters.
const (
	// ReasonWaitingForKubeconfig: provisioned, but no kubeconfig Secret yet.
	ReasonWaitingForKubeconfig = "WaitingForKubeconfig"
	// ReasonKubeconfigRefused: the Secret's kubeconfig is not one the hub
	// uses; nothing is retried until the Secret changes.
	ReasonKubeconfigRefused = "KubeconfigRefused"
	// ReasonAgentInstalled: the agent's manifests were applied.
	ReasonAgentInstalled = "AgentInstalled"
	// ReasonInstallFailed: the cluster or the parent refused or did not
	// answer; retried with back-off.
	ReasonInstallFailed = "AgentInstallFailed"
	// ReasonRegistered: the agent registered; the ManagedCluster is bound.
	ReasonRegistered = "Registered"
	// ReasonRegistrationDenied: the hub's approver denied the registration.
	ReasonRegistrationDenied = "RegistrationDenied"
	// ReasonDeregistered: the Cluster is being deleted; its registration is gone.
	ReasonDeregistered = "Deregistered"
)

// Management are the clients of the management cluster.
type Management struct {
	Kube     kubernetes.Interface
	Dynamic  dynamic.Interface
	Metadata metadata.Interface
}

// NewManagement builds the management cluster's clients from cfg.
func NewManagement(cfg *rest.Config) (Management, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return Management{}, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return Management{}, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return Management{}, err
	}
	return Management{Kube: kube, Dynamic: dyn, Metadata: meta}, nil
}

// Config is what the controller is built from.
type Config struct {
	Options *Options
	// Parent is the hub's configuration of the parent: its CA is the
	// agents' unless --cluster-api-parent-ca-file says otherwise.
	Parent     *rest.Config
	Kube       kubernetes.Interface
	Clusternet versioned.Interface
	// Informers are the hub's shared informers of the parent.
	Informers  externalversions.SharedInformerFactory
	Management Management
	// NewChild reaches a discovered cluster; nil means NewChild.
	NewChild NewChildFunc
	// Now is the clock of token expiries; nil means time.Now.
	Now func() time.Time
	// RetryBase and RetryMax bound the back-off of a Cluster whose install
	// fails; zero means 5s and 5m.
	RetryBase, RetryMax time.Duration
}

// Controller discovers cluster-api Clusters.
type Controller struct {
	loop       *controller.Loop
	kube       kubernetes.Interface
	clusternet versioned.Interface
	mgmt       Management
	chart      agentChart
	tokens     tokens
	newChild   NewChildFunc
	// hub is the hub's client settings (user agent, rate limits), which
	// its clients of discovered clusters share.
	hub       *rest.Config
	events    record.EventRecorder
	broadcast record.EventBroadcaster
	backoff   workqueue.TypedRateLimiter[string]

	// all says every namespace is discovered; else namespaces lists them.
	all        bool
	namespaces []string
	// clusters and secrets are the management cluster's Clusters and
	// kubeconfig Secrets (metadata only: their data is read when used,
	// never cached), by namespace ("" with all).
	clusters map[string]cache.SharedIndexInformer
	secrets  map[string]cache.SharedIndexInformer

	managedClusters clusterlisters.ManagedClusterLister
	requests        clusterlisters.ClusterRegistrationRequestLister

	mu sync.Mutex
	// management is the management cluster's identity, once read.
	management string
	// applied is what this leader term applied, by Cluster key; keyOfID
	// maps a cluster id back to its Cluster, for ManagedCluster and
	// registration events.
	applied map[string]applied
	keyOfID map[string]string
}

// applied is one Cluster's last install in this term.
type applied struct {
	clusterID, digest, tokenID string
	// tokensLeft: the cluster registered, but deleting its bootstrap
	// tokens failed; upToDate says no until a round deletes them. (A new
	// leader does not know: a token left so expires within TokenTTL.)
	tokensLeft bool
}

// New builds the controller and registers its handlers on the parent's
// shared informers (call before they start).
func New(cfg Config) (*Controller, error) {
	o := cfg.Options
	if !o.Enabled() {
		return nil, errDisabled
	}
	if errs := o.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	ca, err := o.parentCA(cfg.Parent)
	if err != nil {
		return nil, err
	}
	values, err := o.agentValues()
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	base, maxDelay := cfg.RetryBase, cfg.RetryMax
	if base == 0 {
		base = 5 * time.Second
	}
	if maxDelay == 0 {
		maxDelay = 5 * time.Minute
	}
	c := &Controller{
		kube:       cfg.Kube,
		clusternet: cfg.Clusternet,
		mgmt:       cfg.Management,
		chart:      agentChart{parentURL: o.ParentURL, parentCA: ca, base: values},
		tokens:     tokens{kube: cfg.Kube, now: now},
		newChild:   cfg.NewChild,
		hub:        cfg.Parent,
		broadcast:  record.NewBroadcaster(),
		backoff:    workqueue.NewTypedItemExponentialFailureRateLimiter[string](base, maxDelay),
		all:        slices.Contains(o.Namespaces, AllNamespaces),
		namespaces: o.Namespaces,
		clusters:   map[string]cache.SharedIndexInformer{},
		secrets:    map[string]cache.SharedIndexInformer{},
		applied:    map[string]applied{},
		keyOfID:    map[string]string{},
	}
	if c.newChild == nil {
		c.newChild = NewChild
	}
	// The values must render before any Cluster depends on them.
	if _, err := c.chart.render(&clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "check"}},
		&bootstraptoken.Token{ID: "abcdef", Secret: "0123456789abcdef"}, ""); err != nil {
		return nil, err
	}
	c.events = c.broadcast.NewRecorder(eventScheme, corev1.EventSource{Component: "clusternet-hub"})
	c.loop = controller.New("cluster-api-discovery", c.sync)
	if err := c.watchManagement(); err != nil {
		return nil, err
	}
	clusters := cfg.Informers.Clusters().V1beta1()
	c.managedClusters = clusters.ManagedClusters().Lister()
	c.requests = clusters.ClusterRegistrationRequests().Lister()
	// Heartbeats (status) and token renewals change nothing discovery
	// decides by: only adds, deletes and the changes below queue.
	if err := c.loop.Watch(clusters.ManagedClusters().Informer(), c.keysOfManagedCluster, controller.IgnoreUpdates(sameBinding)); err != nil {
		return nil, err
	}
	if err := c.loop.Watch(clusters.ClusterRegistrationRequests().Informer(), c.keysOfRequest, controller.IgnoreUpdates(sameAnswer)); err != nil {
		return nil, err
	}
	return c, nil
}

// watchManagement makes the informers of the management cluster, one pair
// per discovered namespace (or one for all), and has the loop wait for
// them: a Cluster missing from a cache that has not synced would look
// deleted.
func (c *Controller) watchManagement() error {
	namespaces := c.namespaces
	if c.all {
		namespaces = []string{metav1.NamespaceAll}
	}
	secretsResource := corev1.SchemeGroupVersion.WithResource("secrets")
	for _, ns := range namespaces {
		clusters := dynamicinformer.NewFilteredDynamicInformer(c.mgmt.Dynamic, ClusterResource, ns, 0,
			cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}, nil).Informer()
		secrets := metadatainformer.NewFilteredMetadataInformer(c.mgmt.Metadata, secretsResource, ns, 0,
			cache.Indexers{}, nil).Informer()
		if err := c.loop.Watch(clusters, nil, controller.IgnoreUpdates(sameDecision)); err != nil {
			return err
		}
		if err := c.loop.Watch(secrets, keysOfSecret); err != nil {
			return err
		}
		c.clusters[ns], c.secrets[ns] = clusters, secrets
	}
	return nil
}

// Run watches the management cluster and works with workers until ctx
// ends, and returns once they stopped.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.broadcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.mgmt.Kube.CoreV1().Events("")})
	defer c.broadcast.Shutdown()
	var wg sync.WaitGroup
	defer wg.Wait()
	c.runInformers(ctx, &wg)
	c.loop.Run(ctx, workers)
}

// runInformers runs the management cluster's informers in wg until ctx ends.
func (c *Controller) runInformers(ctx context.Context, wg *sync.WaitGroup) {
	for _, informers := range []map[string]cache.SharedIndexInformer{c.clusters, c.secrets} {
		for _, inf := range informers {
			wg.Go(func() { inf.RunWithContext(ctx) })
		}
	}
}

// allowed says whether Clusters of ns are discovered.
func (c *Controller) allowed(ns string) bool {
	return ns != "" && (c.all || slices.Contains(c.namespaces, ns))
}

// keysOfSecret queues the Cluster whose kubeconfig Secret changed.
func keysOfSecret(obj any) []string {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil
	}
	if name := clusterOfSecret(m.GetName()); name != "" {
		return []string{m.GetNamespace() + "/" + name}
	}
	return nil
}

// keysOfManagedCluster queues the Cluster a ManagedCluster was installed
// for (this term), and the one it is bound to; a bound ManagedCluster
// whose Cluster's name is no label queues its namespace's sweep ("ns/").
func (c *Controller) keysOfManagedCluster(obj any) []string {
	mc, ok := obj.(*clusterv1beta1.ManagedCluster)
	if !ok {
		return nil
	}
	var keys []string
	if key := c.clusterKeyOf(string(mc.Spec.ClusterID)); key != "" {
		keys = append(keys, key)
	}
	if ns := mc.Labels[LabelNamespace]; mc.Labels[LabelManagement] != "" && c.allowed(ns) {
		keys = append(keys, ns+"/"+mc.Labels[LabelName])
	}
	return keys
}

// keysOfRequest queues the Cluster a registration request comes from.
func (c *Controller) keysOfRequest(obj any) []string {
	crr, ok := obj.(*clusterv1beta1.ClusterRegistrationRequest)
	if !ok {
		return nil
	}
	if key := c.clusterKeyOf(string(crr.Spec.ClusterID)); key != "" {
		return []string{key}
	}
	return nil
}

// sameBinding says whether a ManagedCluster update left what discovery
// reads of it (its cluster id, labels and annotations) as it was.
func sameBinding(old, cur any) bool {
	o, ok1 := old.(*clusterv1beta1.ManagedCluster)
	n, ok2 := cur.(*clusterv1beta1.ManagedCluster)
	return ok1 && ok2 && o.Spec.ClusterID == n.Spec.ClusterID && maps.Equal(o.Labels, n.Labels) && maps.Equal(o.Annotations, n.Annotations)
}

// sameAnswer says whether a registration request update left its result
// as it was (the approver renews tokens in its status).
func sameAnswer(old, cur any) bool {
	o, ok1 := old.(*clusterv1beta1.ClusterRegistrationRequest)
	n, ok2 := cur.(*clusterv1beta1.ClusterRegistrationRequest)
	return ok1 && ok2 && ptr.Equal(o.Status.Result, n.Status.Result)
}

// sameDecision says whether a Cluster update left what discovery decides
// by as it was: cluster-api rewrites a Cluster's status often.
func sameDecision(old, cur any) bool {
	o, err1 := clusterFrom(old)
	n, err2 := clusterFrom(cur)
	return err1 == nil && err2 == nil && controlPlaneInitialized(o) == controlPlaneInitialized(n) && deleting(o) == deleting(n)
}

func (c *Controller) clusterKeyOf(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keyOfID[id]
}

func (c *Controller) lastApplied(key string) applied {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied[key]
}

func (c *Controller) remember(key string, a applied) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.applied[key]; ok && c.keyOfID[old.clusterID] == key {
		delete(c.keyOfID, old.clusterID)
	}
	c.applied[key] = a
	c.keyOfID[a.clusterID] = key
}

func (c *Controller) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.applied[key]; ok && c.keyOfID[old.clusterID] == key {
		delete(c.keyOfID, old.clusterID)
	}
	delete(c.applied, key)
	c.backoff.Forget(key)
}

// managementID is the management cluster's identity: the UID of its
// kube-system namespace.
func (c *Controller) managementID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.management
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	ns, err := c.mgmt.Kube.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading the management cluster's kube-system namespace (its identity): %w", err)
	}
	c.mu.Lock()
	c.management = string(ns.UID)
	c.mu.Unlock()
	return string(ns.UID), nil
}

// clustersIn are the Clusters of ns the cache holds.
func (c *Controller) clustersIn(ns string) []*unstructured.Unstructured {
	inf := c.clusters[ns]
	if c.all {
		inf = c.clusters[metav1.NamespaceAll]
	}
	if inf == nil {
		return nil
	}
	objs, _ := inf.GetIndexer().ByIndex(cache.NamespaceIndex, ns)
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	return out
}

// sync brings the Cluster at key ("namespace/name"; "namespace/" only
// sweeps) and its namespace's registrations to what the Clusters say.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil || !c.allowed(ns) {
		return 0, nil
	}
	management, err := c.managementID(ctx)
	if err != nil {
		return c.retryQuietly(ctx, key, err)
	}
	var cluster *clusterv1.Cluster
	for _, u := range c.clustersIn(ns) {
		if u.GetName() == name {
			if cluster, err = clusterFrom(u); err != nil {
				return c.retryQuietly(ctx, key, err)
			}
		}
	}
	// One leftover that cannot be deregistered must not hold up installs
	// into the namespace's live Clusters: it is retried with them.
	sweepErr := c.sweep(ctx, management, ns)
	if cluster == nil || deleting(cluster) {
		if sweepErr != nil {
			return c.retryQuietly(ctx, key, sweepErr)
		}
		c.forget(key)
		return 0, nil
	}
	after, err := c.reconcile(ctx, key, bindingOf(management, cluster), cluster)
	if sweepErr != nil {
		if d, _ := c.retryQuietly(ctx, key, sweepErr); after <= 0 || d < after {
			after = d
		}
	}
	return after, err
}

// sweep deregisters what is bound to a Cluster of ns that is gone or being
// deleted: its ManagedCluster (the hub's label, never an agent's) and the
// cluster a token was made for, for a cluster that registered but whose
// ManagedCluster is not labelled yet.
func (c *Controller) sweep(ctx context.Context, management, ns string) error {
	live := map[types.UID]bool{}
	deletingClusters := map[types.UID]*unstructured.Unstructured{}
	for _, u := range c.clustersIn(ns) {
		if u.GetDeletionTimestamp() != nil {
			deletingClusters[u.GetUID()] = u
			continue
		}
		live[u.GetUID()] = true
	}
	orphans, err := c.orphans(ctx, management, ns, live)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx)
	for uid, ids := range orphans {
		for _, id := range ids {
			deleted, err := deregister(ctx, c.kube, c.clusternet, id)
			if err != nil {
				return fmt.Errorf("deregistering cluster %s of deleted Cluster %s (namespace %s): %w", id, uid, ns, err)
			}
			if !deleted {
				continue
			}
			logger.Info("Deregistered the cluster of a deleted cluster-api Cluster", "namespace", ns, "clusterUID", uid, "clusterID", id)
			if u := deletingClusters[uid]; u != nil {
				if cl, err := clusterFrom(u); err == nil {
					c.events.Eventf(cl, corev1.EventTypeNormal, ReasonDeregistered,
						"The Cluster is being deleted: deregistered cluster %s (its ManagedCluster, dedicated namespace and credentials in the parent)", id)
				}
			}
		}
		if err := c.tokens.deleteAll(ctx, boundTo(management, uid)); err != nil {
			return err
		}
	}
	return nil
}

// orphans are the cluster ids to deregister, by the UID of the gone Cluster
// they are bound to: bound ManagedClusters, and the cluster ids its tokens
// were made for unless that cluster is bound to another Cluster now (two
// Clusters' kubeconfigs reaching one cluster). A UID with no ids has only
// tokens left.
func (c *Controller) orphans(ctx context.Context, management, ns string, live map[types.UID]bool) (map[types.UID][]string, error) {
	sel := inNamespace(management, ns)
	orphans := map[types.UID][]string{}
	mcs, err := c.managedClusters.List(sel)
	if err != nil {
		return nil, err
	}
	for _, mc := range mcs {
		if uid := types.UID(mc.Labels[LabelUID]); !live[uid] {
			orphans[uid] = append(orphans[uid], string(mc.Spec.ClusterID))
		}
	}
	tokens, err := c.tokens.bound(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("listing the bootstrap tokens of namespace %s: %w", ns, err)
	}
	for id, uid := range tokens {
		if live[uid] {
			continue
		}
		// Only a ManagedCluster bound to this very Cluster goes with it: one
		// bound to nothing may be anyone's, whatever id a token names (the id
		// is what the Cluster's kubeconfig server said, which its author
		// controls).
		if mc := c.registered(id); mc != nil && mc.Labels[LabelUID] != string(uid) {
			if _, ok := orphans[uid]; !ok {
				orphans[uid] = nil // its tokens go, the cluster stays
			}
			continue
		}
		if !slices.Contains(orphans[uid], id) {
			orphans[uid] = append(orphans[uid], id)
		}
	}
	return orphans, nil
}

// reconcile installs the agent into cluster, or keeps its registration
// bound once it registered.
func (c *Controller) reconcile(ctx context.Context, key string, b binding, cluster *clusterv1.Cluster) (time.Duration, error) {
	if !controlPlaneInitialized(cluster) {
		return 0, nil // its status update queues it again
	}
	secretName := KubeconfigSecretName(cluster.Name)
	secret, err := c.mgmt.Kube.CoreV1().Secrets(cluster.Namespace).Get(ctx, secretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		c.events.Eventf(cluster, corev1.EventTypeNormal, ReasonWaitingForKubeconfig,
			"The control plane is initialized; waiting for kubeconfig Secret %s (key %q) to install clusternet-agent", secretName, kubeconfigKey)
		return 0, nil // the Secret's creation queues it again
	}
	if err != nil {
		return c.retry(key, cluster, fmt.Errorf("reading kubeconfig Secret %s: %w", secretName, err))
	}
	version := string(secret.UID) + "/" + secret.ResourceVersion
	if c.upToDate(key, b, cluster, version) {
		return 0, nil
	}
	child, err := c.connect(secret)
	if err != nil {
		// Nothing changes until the Secret does, which queues it again.
		c.events.Eventf(cluster, corev1.EventTypeWarning, ReasonKubeconfigRefused, "Kubeconfig Secret %s: %v", secretName, err)
		return 0, nil
	}
	id, err := child.ClusterID(ctx)
	if err != nil {
		return c.retry(key, cluster, fmt.Errorf("reaching the cluster with kubeconfig Secret %s: %w", secretName, explainChildError(err)))
	}
	if mc := c.registered(id); mc != nil {
		return c.keepRegistered(ctx, key, b, cluster, child, mc, version)
	}
	return c.install(ctx, key, b, cluster, child, id, version)
}

// upToDate says whether cluster registered, is bound, and had what it
// gets now applied (the digest its ManagedCluster records): then its
// cluster is not even contacted.
func (c *Controller) upToDate(key string, b binding, cluster *clusterv1.Cluster, version string) bool {
	if c.lastApplied(key).tokensLeft {
		return false
	}
	mcs, err := c.managedClusters.List(boundTo(b.management, b.uid))
	if err != nil || len(mcs) != 1 || !b.boundLabels(mcs[0].Labels) {
		return false
	}
	inst, err := c.chart.render(cluster, nil, version)
	if err != nil || mcs[0].Annotations[AnnotationApplied] != inst.digest {
		return false
	}
	c.remember(key, applied{clusterID: string(mcs[0].Spec.ClusterID), digest: inst.digest})
	c.backoff.Forget(key)
	return true
}

func (c *Controller) connect(secret *corev1.Secret) (Child, error) {
	kubeconfig, err := kubeconfigOf(secret)
	if err != nil {
		return nil, err
	}
	cfg, err := childConfig(kubeconfig, c.hub)
	if err != nil {
		return nil, err
	}
	return c.newChild(cfg)
}

// registered is the ManagedCluster of cluster id, if it registered.
func (c *Controller) registered(id string) *clusterv1beta1.ManagedCluster {
	mcs, err := c.managedClusters.List(clusterIDSelector(id))
	if err != nil || len(mcs) == 0 {
		return nil
	}
	return mcs[0]
}

// install applies the agent, with the Cluster's bootstrap token, unless
// this term applied the same already; it looks again when the token is due
// for renewal, should the cluster not have registered by then.
func (c *Controller) install(ctx context.Context, key string, b binding, cluster *clusterv1.Cluster, child Child, id, version string) (time.Duration, error) {
	if crr, err := c.requests.Get(clusterv1beta1.NamePrefix + id); err == nil && crr.Status.Result != nil && *crr.Status.Result == clusterv1beta1.RequestDenied {
		c.events.Eventf(cluster, corev1.EventTypeWarning, ReasonRegistrationDenied,
			"The agent installed in cluster %s asked to register, and the hub denied it: %s", id, crr.Status.ErrorMessage)
		c.remember(key, applied{clusterID: id, digest: c.lastApplied(key).digest})
		return 0, nil // a change of the request queues it again
	}
	tok, err := c.tokens.ensure(ctx, b, id)
	if err != nil {
		return c.retry(key, cluster, err)
	}
	inst, err := c.chart.render(cluster, &tok.Token, version)
	if err != nil {
		return c.retry(key, cluster, err)
	}
	if last := c.lastApplied(key); last.digest != inst.digest || last.tokenID != tok.ID || last.clusterID != id {
		if err := child.Apply(ctx, inst.objects); err != nil {
			return c.retry(key, cluster, fmt.Errorf("installing clusternet-agent: %w", explainChildError(err)))
		}
		c.remember(key, applied{clusterID: id, digest: inst.digest, tokenID: tok.ID})
		c.events.Eventf(cluster, corev1.EventTypeNormal, ReasonAgentInstalled,
			"Installed clusternet-agent into cluster %s through kubeconfig Secret %s; it registers with bootstrap token %s (replaced at %s if it has not registered by then)",
			id, KubeconfigSecretName(cluster.Name), tok.ID, tok.renewAt.UTC().Format(time.RFC3339))
	}
	c.backoff.Forget(key)
	return max(tok.renewAt.Sub(c.tokens.now()), time.Second), nil
}

// keepRegistered binds a registered cluster's ManagedCluster to its
// Cluster, applies the agent again only when its kubeconfig or manifests
// changed (without a registration Secret: the agent holds its own
// credentials now), and deletes the bootstrap token.
func (c *Controller) keepRegistered(ctx context.Context, key string, b binding, cluster *clusterv1.Cluster,
	child Child, mc *clusterv1beta1.ManagedCluster, version string) (time.Duration, error) {
	other := mc.Labels[LabelUID]
	if other == "" {
		// The id is what the kubeconfig's server said, and the Secret's
		// author chooses the server: a ManagedCluster registered before this
		// Cluster's token existed is some other cluster, and binding it would
		// let deleting this Cluster deregister it. Adopt only one that
		// registered while a token of this Cluster for that id existed.
		ours, err := c.tokens.issuedBy(ctx, b, string(mc.Spec.ClusterID), mc.CreationTimestamp.Time)
		if err != nil {
			return c.retry(key, cluster, err)
		}
		if !ours {
			c.events.Eventf(cluster, corev1.EventTypeWarning, ReasonInstallFailed,
				"Cluster id %s is ManagedCluster %s/%s, registered before this Cluster's bootstrap token existed: not adopted; if it is this cluster, label it %s=%s and %s=%s",
				mc.Spec.ClusterID, mc.Namespace, mc.Name, LabelNamespace, b.namespace, LabelUID, b.uid)
			return 0, nil
		}
	} else if other != string(b.uid) && c.liveUID(mc.Labels[LabelNamespace], types.UID(other)) {
		c.events.Eventf(cluster, corev1.EventTypeWarning, ReasonInstallFailed,
			"Cluster %s is registered as ManagedCluster %s/%s for another Cluster (UID %s) whose kubeconfig reaches the same cluster: nothing done",
			mc.Spec.ClusterID, mc.Namespace, mc.Name, other)
		return 0, nil
	}
	inst, err := c.chart.render(cluster, nil, version)
	if err != nil {
		return c.retry(key, cluster, err)
	}
	recorded := mc.Annotations[AnnotationApplied]
	if recorded != inst.digest && c.lastApplied(key).digest != inst.digest {
		if err := child.Apply(ctx, inst.objects); err != nil {
			return c.retry(key, cluster, fmt.Errorf("applying clusternet-agent again: %w", explainChildError(err)))
		}
	}
	c.remember(key, applied{clusterID: string(mc.Spec.ClusterID), digest: inst.digest})
	wasBound := b.boundLabels(mc.Labels)
	if !wasBound || recorded != inst.digest {
		if err := c.bind(ctx, mc, b, inst.digest); err != nil {
			return c.retry(key, cluster, fmt.Errorf("labelling ManagedCluster %s/%s: %w", mc.Namespace, mc.Name, err))
		}
	}
	if !wasBound {
		// Said by the round that binds, before the tokens go: a round
		// after a failed deletion finds it bound and would never say it.
		c.events.Eventf(cluster, corev1.EventTypeNormal, ReasonRegistered,
			"Registered as ManagedCluster %s/%s (cluster id %s); its bootstrap token is deleted now", mc.Namespace, mc.Name, mc.Spec.ClusterID)
	}
	if err := c.tokens.deleteAll(ctx, boundTo(b.management, b.uid)); err != nil {
		a := c.lastApplied(key)
		a.tokensLeft = true
		c.remember(key, a)
		return c.retry(key, cluster, err)
	}
	c.backoff.Forget(key)
	return 0, nil
}

// liveUID says whether a Cluster of ns with uid exists and is not being deleted.
func (c *Controller) liveUID(ns string, uid types.UID) bool {
	for _, u := range c.clustersIn(ns) {
		if u.GetUID() == uid && u.GetDeletionTimestamp() == nil {
			return true
		}
	}
	return false
}

// bind labels mc with b and records digest.
func (c *Controller) bind(ctx context.Context, mc *clusterv1beta1.ManagedCluster, b binding, digest string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":      b.labels(),
		"annotations": map[string]string{AnnotationApplied: digest},
	}})
	if err != nil {
		return err
	}
	_, err = c.clusternet.ClustersV1beta1().ManagedClusters(mc.Namespace).Patch(ctx, mc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// retry records err on cluster and asks to look again after the Cluster's
// next back-off (5s doubling to 5m by default): never a hot loop, and the
// event recorder folds repeats into one event with a count.
func (c *Controller) retry(key string, cluster *clusterv1.Cluster, err error) (time.Duration, error) {
	delay := c.backoff.When(key)
	c.events.Eventf(cluster, corev1.EventTypeWarning, ReasonInstallFailed, "%v (retrying in %s)", err, delay)
	return delay, nil
}

// retryQuietly is retry for what concerns no one Cluster: logged, not an event.
func (c *Controller) retryQuietly(ctx context.Context, key string, err error) (time.Duration, error) {
	delay := c.backoff.When(key)
	klog.FromContext(ctx).Error(err, "Cluster-api discovery failed, will retry", "retryIn", delay)
	return delay, nil
}

func clusterIDSelector(id string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{clusterv1beta1.LabelClusterID: id})
}
