// Package mcs is the hub's side of multi-cluster services (docs/mcs.md):
// it reads the slices each agent exports into its own dedicated namespace,
// attributes them to the cluster that namespace was registered for,
// resolves conflicts between the clusters exporting one Service, writes the
// endpoints into the dedicated namespaces of the clusters a ServiceImport was
// distributed to, and tells each exporting cluster how its export fares.
package mcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/mcs"
)

// What one agent can make the hub copy is bounded: it writes the slices
// the hub reads, and a compromised one must not make the hub copy without
// end. The hub reads the first MaxSlicesPerExport slices (by name) of one
// cluster's export of one Service, copies at most mcs.MaxEndpointsPerSlice
// endpoints of each and MaxEndpointsPerExport in all (the first address of
// each), and the exports of a cluster's first MaxServicesPerCluster
// Services (by namespace and name). What it leaves out is said in the
// cluster's conflict report (and logged).
const (
	MaxSlicesPerExport    = 100
	MaxEndpointsPerExport = 10000
	MaxServicesPerCluster = 1000
)

const (
	// feedsIndex indexes Descriptions by the mcs objects they carry: "import:"
	// or "export:" and a ServiceKey string (see indexFeeds).
	feedsIndex = "mcs-feeds"
	// namespaceIndex indexes approved ClusterRegistrationRequests by their
	// dedicated namespace.
	namespaceIndex = "mcs-dedicated-namespace"
)

// Controller is the hub's multi-cluster services controller.
type Controller struct {
	kube          kubernetes.Interface
	slices        discoverylisters.EndpointSliceLister
	configMaps    corelisters.ConfigMapLister
	registrations cache.Indexer
	descriptions  cache.Indexer
	services      *controller.Loop
	bindings      *controller.Loop
}

// New builds the controller. Its own informers (slices and ConfigMaps
// narrowed to what it reads) start with Run; informers' are the shared ones.
func New(kube kubernetes.Interface, informers externalversions.SharedInformerFactory) (*Controller, *Informers, error) {
	managed, err := labels.NewRequirement(discoveryv1.LabelManagedBy, selection.In, []string{mcs.ManagedByExport, mcs.ManagedByImport})
	if err != nil {
		return nil, nil, err
	}
	own := &Informers{
		Slices: kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.NewSelector().Add(*managed).String()
		})),
		ConfigMaps: kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", mcs.ConflictsConfigMap).String()
		})),
	}
	sliceInformer := own.Slices.Discovery().V1().EndpointSlices()
	cmInformer := own.ConfigMaps.Core().V1().ConfigMaps()
	crrs := informers.Clusters().V1beta1().ClusterRegistrationRequests()
	descs := informers.Apps().V1alpha1().Descriptions()
	if err := descs.Informer().AddIndexers(cache.Indexers{feedsIndex: indexFeeds}); err != nil {
		return nil, nil, err
	}
	if err := crrs.Informer().AddIndexers(cache.Indexers{namespaceIndex: indexApprovedNamespace}); err != nil {
		return nil, nil, err
	}
	c := &Controller{
		kube:          kube,
		slices:        sliceInformer.Lister(),
		configMaps:    cmInformer.Lister(),
		registrations: crrs.Informer().GetIndexer(),
		descriptions:  descs.Informer().GetIndexer(),
	}
	c.services = controller.New("mcs-services", c.syncService)
	c.bindings = controller.New("mcs-agent-bindings", c.syncBinding)
	onlyRegistrationChanges := controller.IgnoreUpdates(sameRegistration)
	for _, w := range []struct {
		informer cache.SharedIndexInformer
		keys     controller.KeyFunc
		opts     []controller.WatchOption
	}{
		{sliceInformer.Informer(), c.sliceService, nil},
		{descs.Informer(), c.descriptionServices, nil},
		{crrs.Informer(), c.namespaceServices, []controller.WatchOption{onlyRegistrationChanges}},
		{cmInformer.Informer(), c.reportedServices, nil},
	} {
		if err := c.services.Watch(w.informer, w.keys, w.opts...); err != nil {
			return nil, nil, err
		}
	}
	// A Description that no longer carries a ServiceImport or ServiceExport
	// must requeue that service too; Watch queues the new object's keys only.
	if _, err := descs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(old, _ any) {
		for _, k := range c.descriptionServices(old) {
			c.services.Add(k)
		}
	}}); err != nil {
		return nil, nil, err
	}
	if err := c.bindings.Watch(crrs.Informer(), approvedNamespace, onlyRegistrationChanges); err != nil {
		return nil, nil, err
	}
	return c, own, nil
}

// Informers are the controller's own factories, started by the caller with
// the shared ones.
type Informers struct {
	Slices, ConfigMaps kubeinformers.SharedInformerFactory
}

// Start starts both factories.
func (i *Informers) Start(stop <-chan struct{}) {
	i.Slices.Start(stop)
	i.ConfigMaps.Start(stop)
}

// Shutdown stops both factories.
func (i *Informers) Shutdown() {
	i.Slices.Shutdown()
	i.ConfigMaps.Shutdown()
}

// Run works both loops until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.bindings.Run(ctx, 1)
	}()
	c.services.Run(ctx, workers)
	<-done
}

// The hub reads and writes only in dedicated namespaces: what is in any
// other namespace (a tenant's ConfigMap named clusternet-mcs-conflicts, a
// slice labelled as an export or import) is no cluster's and is ignored by
// each key function below and by each write.

func (c *Controller) sliceService(obj any) []string {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || c.clusterOf(s.Namespace) == "" {
		return nil
	}
	if k, ok := mcs.ServiceOf(s); ok {
		return []string{k.String()}
	}
	return nil
}

func (c *Controller) descriptionServices(obj any) []string {
	d, ok := obj.(*appsv1alpha1.Description)
	if !ok || c.clusterOf(d.Namespace) == "" {
		return nil
	}
	return feedServices(d)
}

func (c *Controller) reportedServices(obj any) []string {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok || c.clusterOf(cm.Namespace) == "" {
		return nil
	}
	return mcs.ReportedServices(cm)
}

// namespaceServices queues the Services a cluster exports or imports: its
// registration was approved or withdrawn. Its namespace is read whatever
// the result, so that a withdrawal requeues them too.
func (c *Controller) namespaceServices(obj any) []string {
	crr, ok := obj.(*clusterv1beta1.ClusterRegistrationRequest)
	if !ok || crr.Status.DedicatedNamespace == "" {
		return nil
	}
	ns := crr.Status.DedicatedNamespace
	var keys []string
	if all, err := c.slices.EndpointSlices(ns).List(labels.Everything()); err == nil {
		for _, s := range all {
			if k, ok := mcs.ServiceOf(s); ok {
				keys = append(keys, k.String())
			}
		}
	}
	if descs, err := c.descriptions.ByIndex(cache.NamespaceIndex, ns); err == nil {
		for _, d := range descs {
			if d, ok := d.(*appsv1alpha1.Description); ok {
				keys = append(keys, feedServices(d)...)
			}
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// sameRegistration holds for an update that changes neither whether a
// request is approved nor its dedicated namespace: nothing this
// controller decides on.
func sameRegistration(old, cur any) bool {
	o, ok1 := old.(*clusterv1beta1.ClusterRegistrationRequest)
	n, ok2 := cur.(*clusterv1beta1.ClusterRegistrationRequest)
	return ok1 && ok2 && approved(o) == approved(n) && o.Status.DedicatedNamespace == n.Status.DedicatedNamespace
}

// Feed kinds of indexFeeds' keys.
const (
	feedImport = "import:"
	feedExport = "export:"
)

// feedServices are the Services a Description carries a ServiceImport,
// ServiceExport or Service of.
func feedServices(d *appsv1alpha1.Description) []string {
	keys, _ := indexFeeds(d)
	for i, k := range keys {
		keys[i] = k[strings.Index(k, ":")+1:]
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// indexFeeds lists what a Description says about the multi-cluster
// services of its cluster: "import:ns/name" for a ServiceImport it
// distributes, "export:ns/name" for a ServiceExport or Service (the parent
// says the cluster serves it). Only objects of the distributing
// Subscription's own namespace count: Subscription admission checks that
// its author may get the templates, which a namespace viewer may, so a
// Subscription of another namespace must not import (or authorise) a
// namespace's endpoints.
func indexFeeds(obj any) ([]string, error) {
	d, ok := obj.(*appsv1alpha1.Description)
	if !ok {
		return nil, nil
	}
	subNamespace := d.Labels[appsv1alpha1.LabelSubscriptionNamespace]
	var keys []string
	for _, raw := range d.Spec.Raw {
		var o struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Metadata   metav1.ObjectMeta `json:"metadata"`
		}
		if json.Unmarshal(raw.Raw, &o) != nil || o.Metadata.Name == "" {
			continue
		}
		ns := o.Metadata.Namespace
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		if ns != subNamespace {
			continue
		}
		key := mcs.ServiceKey{Namespace: ns, Name: o.Metadata.Name}.String()
		mcsKind := strings.HasPrefix(o.APIVersion, mcsv1alpha1.GroupName+"/")
		switch {
		case mcsKind && o.Kind == "ServiceImport":
			keys = append(keys, feedImport+key)
		case mcsKind && o.Kind == "ServiceExport", o.APIVersion == "v1" && o.Kind == "Service":
			keys = append(keys, feedExport+key)
		}
	}
	return keys, nil
}

// clusterOf is the cluster registered into namespace ns: the approved
// ClusterRegistrationRequest whose dedicated namespace it is ("" for any
// other namespace). This record is the hub's own; nothing an agent writes
// (labels on its slices, its ManagedCluster) decides it.
func (c *Controller) clusterOf(ns string) string {
	crrs, err := c.registrations.ByIndex(namespaceIndex, ns)
	if err != nil {
		return ""
	}
	for _, obj := range crrs {
		if crr, ok := obj.(*clusterv1beta1.ClusterRegistrationRequest); ok && approved(crr) {
			return string(crr.Spec.ClusterID)
		}
	}
	return ""
}

func approved(crr *clusterv1beta1.ClusterRegistrationRequest) bool {
	return crr.Status.Result != nil && *crr.Status.Result == clusterv1beta1.RequestApproved && crr.Status.DedicatedNamespace != ""
}

func approvedNamespace(obj any) []string {
	crr, ok := obj.(*clusterv1beta1.ClusterRegistrationRequest)
	if !ok || !approved(crr) {
		return nil
	}
	return []string{crr.Status.DedicatedNamespace}
}

func indexApprovedNamespace(obj any) ([]string, error) { return approvedNamespace(obj), nil }

// syncService brings what the hub writes for one Service in line with its
// exports: the imported slices of every importing cluster, and each
// exporting cluster's conflict entry (reported even when writing the
// slices failed: the two are independent).
func (c *Controller) syncService(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil // not a key this controller queues
	}
	svc := mcs.ServiceKey{Namespace: ns, Name: name}
	exports, err := c.exportsOf(ctx, svc)
	if err != nil {
		return 0, err
	}
	var want []*discoveryv1.EndpointSlice
	for _, into := range c.servingNamespaces(feedImport, svc) {
		for _, e := range exports {
			for _, s := range e.slices {
				if w := mcs.ImportedSlice(s, svc, e.Cluster, into); w != nil {
					want = append(want, w)
				}
			}
		}
	}
	have, err := c.slices.List(serviceSelector(svc, mcs.ManagedByImport))
	if err != nil {
		return 0, err
	}
	have = slices.DeleteFunc(have, func(s *discoveryv1.EndpointSlice) bool { return c.clusterOf(s.Namespace) == "" })
	var errs []error
	if err := mcs.SyncSlices(ctx, c.kube.DiscoveryV1(), have, want); err != nil {
		errs = append(errs, fmt.Errorf("imported slices of %s: %w", svc, err))
	}
	errs = append(errs, c.reportConflicts(ctx, svc, exports))
	return 0, errors.Join(errs...)
}

// serviceSelector selects the slices of svc that managedBy writes.
func serviceSelector(svc mcs.ServiceKey, managedBy string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{
		mcsv1alpha1.LabelServiceName: svc.Name,
		mcs.LabelServiceNamespace:    svc.Namespace,
		discoveryv1.LabelManagedBy:   managedBy,
	})
}

// export is one cluster's export of a Service, with the slices the hub
// takes of it (bounded) and what it left out.
type export struct {
	mcs.Export
	namespace string
	slices    []*discoveryv1.EndpointSlice
	endpoints int
	left      []string
}

// exportsOf reads the exports of svc: one per cluster that the parent says
// serves svc (a Description in its dedicated namespace carries svc's
// ServiceExport or Service) and that has slices of svc there. Slices
// elsewhere are nobody's export: an agent cannot inject endpoints into a
// service it was not given. Slices without readable properties are
// skipped; the rest are bounded as MaxSlicesPerExport says.
func (c *Controller) exportsOf(ctx context.Context, svc mcs.ServiceKey) ([]*export, error) {
	all, err := c.slices.List(serviceSelector(svc, mcs.ManagedByExport))
	if err != nil {
		return nil, err
	}
	serving := map[string]bool{}
	for _, ns := range c.servingNamespaces(feedExport, svc) {
		serving[ns] = true
	}
	slices.SortFunc(all, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	byNamespace := map[string]*export{}
	for _, s := range all {
		if !serving[s.Namespace] {
			continue
		}
		props, err := mcs.DecodeProperties(s.Annotations[mcs.AnnotationExport])
		if err != nil {
			klog.FromContext(ctx).Info("Ignoring an exported slice", "slice", klog.KObj(s), "err", err)
			continue
		}
		e, ok := byNamespace[s.Namespace]
		if !ok {
			e = &export{Export: mcs.Export{Cluster: c.clusterOf(s.Namespace), Since: s.CreationTimestamp, Properties: props}, namespace: s.Namespace}
			byNamespace[s.Namespace] = e
		}
		e.add(s)
	}
	out := make([]*export, 0, len(byNamespace))
	for ns, e := range byNamespace {
		if !c.withinServiceCap(ns, svc) {
			klog.FromContext(ctx).Info("Ignoring an export: its cluster exports more services than the hub takes",
				"cluster", e.Cluster, "service", svc, "max", MaxServicesPerCluster)
			continue
		}
		if since, ok := c.recordedSince(ns, svc); ok && since.Before(&e.Since) {
			e.Since = since
		}
		if len(e.left) > 0 {
			klog.FromContext(ctx).Info("Truncated an export", "cluster", e.Cluster, "service", svc, "left", e.left)
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *export) int { return strings.Compare(a.Cluster, b.Cluster) })
	return out, nil
}

// add takes s into e within the bounds, and notes what it leaves out.
func (e *export) add(s *discoveryv1.EndpointSlice) {
	if s.CreationTimestamp.Before(&e.Since) {
		e.Since = s.CreationTimestamp
	}
	if len(e.slices) >= MaxSlicesPerExport {
		e.note(fmt.Sprintf("slices beyond the first %d", MaxSlicesPerExport))
		return
	}
	n := min(len(s.Endpoints), mcs.MaxEndpointsPerSlice, MaxEndpointsPerExport-e.endpoints)
	if n < len(s.Endpoints) {
		e.note(fmt.Sprintf("endpoints beyond %d per slice and %d per export", mcs.MaxEndpointsPerSlice, MaxEndpointsPerExport))
		trimmed := *s
		trimmed.Endpoints = s.Endpoints[:n]
		s = &trimmed
	}
	e.endpoints += n
	e.slices = append(e.slices, s)
}

func (e *export) note(what string) {
	if !slices.Contains(e.left, what) {
		e.left = append(e.left, what)
	}
}

// withinServiceCap says whether svc is among the first MaxServicesPerCluster
// services (by namespace and name) with exported slices in namespace ns.
func (c *Controller) withinServiceCap(ns string, svc mcs.ServiceKey) bool {
	all, err := c.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelManagedBy: mcs.ManagedByExport}))
	if err != nil {
		return false
	}
	before := map[string]bool{}
	for _, s := range all {
		if k, ok := mcs.ServiceOf(s); ok && k.String() < svc.String() {
			before[k.String()] = true
		}
	}
	return len(before) < MaxServicesPerCluster
}

// recordedSince is the first-seen time the hub recorded for the export of
// svc in ns's conflicts ConfigMap, if any.
func (c *Controller) recordedSince(ns string, svc mcs.ServiceKey) (metav1.Time, bool) {
	cm, err := c.configMaps.ConfigMaps(ns).Get(mcs.ConflictsConfigMap)
	if err != nil {
		return metav1.Time{}, false
	}
	var entry mcs.Conflict
	if json.Unmarshal([]byte(cm.Data[svc.ExportKey()]), &entry) != nil || entry.Since == nil {
		return metav1.Time{}, false
	}
	return *entry.Since, true
}

// servingNamespaces are the dedicated namespaces whose Descriptions carry
// kind (feedImport, feedExport) of svc: a cluster imports another's
// endpoints, or has its own taken as an export, only because a parent user
// who may distribute in svc's namespace sent it that object.
func (c *Controller) servingNamespaces(kind string, svc mcs.ServiceKey) []string {
	descs, err := c.descriptions.ByIndex(feedsIndex, kind+svc.String())
	if err != nil {
		return nil
	}
	var namespaces []string
	for _, obj := range descs {
		d, ok := obj.(*appsv1alpha1.Description)
		if !ok || d.DeletionTimestamp != nil || c.clusterOf(d.Namespace) == "" {
			continue
		}
		namespaces = append(namespaces, d.Namespace)
	}
	slices.Sort(namespaces)
	return slices.Compact(namespaces)
}

// reportConflicts writes svc's resolution into the conflicts ConfigMap of
// each exporting cluster, with when the hub first saw that export and what
// of it the hub left out, and removes svc from those of clusters that no
// longer export it.
func (c *Controller) reportConflicts(ctx context.Context, svc mcs.ServiceKey, exports []*export) error {
	plain := make([]mcs.Export, len(exports))
	for i, e := range exports {
		plain[i] = e.Export
	}
	res := mcs.Resolve(plain)
	namespaces := map[string]bool{}
	var errs []error
	for _, e := range exports {
		namespaces[e.namespace] = true
		entry := res.Conflict
		entry.Since = &e.Since
		if len(e.left) > 0 {
			entry.Message = strings.TrimPrefix(entry.Message+"; ", "; ") +
				"the hub imports only part of this cluster's export, leaving out " + strings.Join(e.left, " and ")
		}
		b, err := json.Marshal(entry)
		if err != nil {
			return err
		}
		errs = append(errs, c.setEntry(ctx, e.namespace, svc.ExportKey(), string(b)))
	}
	existing, err := c.configMaps.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, cm := range existing {
		if _, ok := cm.Data[svc.ExportKey()]; ok && !namespaces[cm.Namespace] && c.clusterOf(cm.Namespace) != "" {
			errs = append(errs, c.setEntry(ctx, cm.Namespace, svc.ExportKey(), ""))
		}
	}
	return errors.Join(errs...)
}

// setEntry sets key of the conflicts ConfigMap in ns to value ("" removes it).
func (c *Controller) setEntry(ctx context.Context, ns, key, value string) error {
	cm, err := c.configMaps.ConfigMaps(ns).Get(mcs.ConflictsConfigMap)
	if apierrors.IsNotFound(err) {
		if value == "" {
			return nil
		}
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: mcs.ConflictsConfigMap, Namespace: ns}, Data: map[string]string{key: value}}
		_, err = c.kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if have, ok := cm.Data[key]; (value == "" && !ok) || (ok && have == value) {
		return nil
	}
	cm = cm.DeepCopy()
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	if value == "" {
		delete(cm.Data, key)
	} else {
		cm.Data[key] = value
	}
	_, err = c.kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
	return err
}
