// Package mcs is the agent's side of multi-cluster services (docs/mcs.md).
// Exporting: for each ServiceExport in the child it publishes the
// Service's EndpointSlices, with the properties conflicts are decided on,
// into the cluster's dedicated namespace of the parent, and keeps the
// ServiceExport's Valid, Ready and Conflict conditions. Importing: for each
// ServiceImport in the child it copies the slices the hub wrote for this
// cluster in that same namespace into the child. The agent reads and writes
// nothing of the parent beyond its dedicated namespace.
package mcs

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"
	mcsinformers "sigs.k8s.io/mcs-api/pkg/client/informers/externalversions"
	mcslisters "sigs.k8s.io/mcs-api/pkg/client/listers/apis/v1alpha1"

	"github.com/clusternet/clusternet/pkg/controller"
	"github.com/clusternet/clusternet/pkg/mcs"
)

// Config is what the agent's multi-cluster services controllers act with.
type Config struct {
	// Parent carries the agent's parent credentials; Namespace is its
	// dedicated namespace there, the only one it reads or writes.
	Parent    kubernetes.Interface
	Namespace string
	// Child and ChildMCS reach the child with the agent's own credentials.
	Child    kubernetes.Interface
	ChildMCS mcsclient.Interface
}

// Controller runs the export and import loops.
type Controller struct {
	cfg Config

	exports       mcslisters.ServiceExportLister
	imports       mcslisters.ServiceImportLister
	services      corelisters.ServiceLister
	childSlices   discoverylisters.EndpointSliceLister // kube-controller-manager's
	childImported discoverylisters.EndpointSliceLister // this controller's copies
	parentSlices  discoverylisters.EndpointSliceLister // the dedicated namespace's
	conflicts     corelisters.ConfigMapLister

	exportLoop, importLoop *controller.Loop
	starters               []interface{ Start(<-chan struct{}) }
}

// New builds the controller and its informers (started by Run).
func New(cfg Config) (*Controller, error) {
	mcsFactory := mcsinformers.NewSharedInformerFactory(cfg.ChildMCS, 0)
	childFactory := kubeinformers.NewSharedInformerFactory(cfg.Child, 0)
	// kube-controller-manager's slices carry kubernetes.io/service-name;
	// the imported copies carry only mcs-api's label.
	kcmFactory := kubeinformers.NewSharedInformerFactoryWithOptions(cfg.Child, 0, kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = discoveryv1.LabelServiceName
	}))
	importedFactory := kubeinformers.NewSharedInformerFactoryWithOptions(cfg.Child, 0, kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = labels.Set{discoveryv1.LabelManagedBy: mcs.ManagedByImport}.String()
	}))
	parentFactory := kubeinformers.NewSharedInformerFactoryWithOptions(cfg.Parent, 0, kubeinformers.WithNamespace(cfg.Namespace))
	conflictFactory := kubeinformers.NewSharedInformerFactoryWithOptions(cfg.Parent, 0, kubeinformers.WithNamespace(cfg.Namespace),
		kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) {
			// The agent may read this one ConfigMap by name, no other.
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", mcs.ConflictsConfigMap).String()
		}))

	se := mcsFactory.Multicluster().V1alpha1().ServiceExports()
	si := mcsFactory.Multicluster().V1alpha1().ServiceImports()
	svcs := childFactory.Core().V1().Services()
	kcm := kcmFactory.Discovery().V1().EndpointSlices()
	imported := importedFactory.Discovery().V1().EndpointSlices()
	parent := parentFactory.Discovery().V1().EndpointSlices()
	cms := conflictFactory.Core().V1().ConfigMaps()
	c := &Controller{
		cfg: cfg, exports: se.Lister(), imports: si.Lister(), services: svcs.Lister(),
		childSlices: kcm.Lister(), childImported: imported.Lister(), parentSlices: parent.Lister(), conflicts: cms.Lister(),
		starters: []interface{ Start(<-chan struct{}) }{mcsFactory, childFactory, kcmFactory, importedFactory, parentFactory, conflictFactory},
	}
	c.exportLoop = controller.New("mcs-export", c.syncExport)
	c.importLoop = controller.New("mcs-import", c.syncImport)
	for _, w := range []struct {
		loop     *controller.Loop
		informer cache.SharedIndexInformer
		keys     controller.KeyFunc
	}{
		{c.exportLoop, se.Informer(), nil},
		{c.exportLoop, svcs.Informer(), nil},
		{c.exportLoop, kcm.Informer(), kcmSliceService},
		{c.exportLoop, parent.Informer(), exportedService},
		{c.exportLoop, cms.Informer(), mcs.ReportedServices},
		{c.importLoop, si.Informer(), nil},
		{c.importLoop, imported.Informer(), importedService},
		{c.importLoop, parent.Informer(), importedService},
	} {
		if err := w.loop.Watch(w.informer, w.keys); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Run starts the informers and works both loops until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	for _, s := range c.starters {
		s.Start(ctx.Done())
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.importLoop.Run(ctx, workers) })
	c.exportLoop.Run(ctx, workers)
	wg.Wait()
}

func kcmSliceService(obj any) []string {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || s.Labels[discoveryv1.LabelServiceName] == "" {
		return nil
	}
	return []string{s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]}
}

// serviceOfManagedBy keys a slice of the parent or child by the Service
// its labels name, when managedBy wrote it.
func serviceOfManagedBy(managedBy string) controller.KeyFunc {
	return func(obj any) []string {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || s.Labels[discoveryv1.LabelManagedBy] != managedBy {
			return nil
		}
		if k, ok := mcs.ServiceOf(s); ok {
			return []string{k.String()}
		}
		return nil
	}
}

var (
	exportedService = serviceOfManagedBy(mcs.ManagedByExport)
	importedService = serviceOfManagedBy(mcs.ManagedByImport)
)

// exportSelector selects the slices this agent published for svc.
func exportSelector(svc mcs.ServiceKey, managedBy string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{
		mcsv1alpha1.LabelServiceName: svc.Name,
		mcs.LabelServiceNamespace:    svc.Namespace,
		discoveryv1.LabelManagedBy:   managedBy,
	})
}

// syncExport publishes (or withdraws) the slices of one exported Service
// and sets its ServiceExport's conditions.
func (c *Controller) syncExport(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	svcKey := mcs.ServiceKey{Namespace: ns, Name: name}
	have, err := c.parentSlices.EndpointSlices(c.cfg.Namespace).List(exportSelector(svcKey, mcs.ManagedByExport))
	if err != nil {
		return 0, err
	}
	se, err := c.exports.ServiceExports(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && se.DeletionTimestamp != nil) {
		return 0, mcs.SyncSlices(ctx, c.cfg.Parent.DiscoveryV1(), have, nil)
	}
	if err != nil {
		return 0, err
	}
	want, valid := c.exportedSlices(svcKey)
	syncErr := mcs.SyncSlices(ctx, c.cfg.Parent.DiscoveryV1(), have, want)
	conds := []metav1.Condition{valid, c.ready(valid, syncErr, se.Generation)}
	if conflict, ok := c.conflict(svcKey); ok {
		conds = append(conds, conflict.Condition(se.Generation))
	}
	if err := c.setConditions(ctx, se, conds); err != nil {
		return 0, err
	}
	return 0, syncErr
}

// exportedSlices are the slices to publish for svc and its Valid condition:
// none when the Service is missing or cannot be exported.
func (c *Controller) exportedSlices(svc mcs.ServiceKey) ([]*discoveryv1.EndpointSlice, metav1.Condition) {
	cond := metav1.Condition{Type: string(mcsv1alpha1.ServiceExportConditionValid)}
	service, err := c.services.Services(svc.Namespace).Get(svc.Name)
	if err != nil {
		cond.Status, cond.Reason = metav1.ConditionFalse, string(mcsv1alpha1.ServiceExportReasonNoService)
		cond.Message = fmt.Sprintf("service %s does not exist in this cluster: create it, or delete this ServiceExport", svc)
		return nil, cond
	}
	props, err := mcs.PropertiesOf(service)
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, string(mcsv1alpha1.ServiceExportReasonInvalidServiceType), err.Error()
		return nil, cond
	}
	cond.Status, cond.Reason = metav1.ConditionTrue, string(mcsv1alpha1.ServiceExportReasonValid)
	cond.Message = "the service is exported to the clusters its ServiceImport is distributed to"
	children, _ := c.childSlices.EndpointSlices(svc.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name}))
	want := make([]*discoveryv1.EndpointSlice, 0, len(children))
	for _, s := range children {
		if !kubeManaged[s.Labels[discoveryv1.LabelManagedBy]] {
			continue
		}
		if e := mcs.ExportedSlice(s, svc, props, c.cfg.Namespace); e != nil {
			want = append(want, e)
		}
	}
	return want, cond
}

// kubeManaged are the writers of the child's slices that are exported:
// kube-controller-manager's EndpointSlice and mirroring controllers. A
// slice anyone else labelled with the Service's name (a child user who may
// write slices but not the Service) is not the Service's endpoints.
var kubeManaged = map[string]bool{
	"endpointslice-controller.k8s.io":          true,
	"endpointslicemirroring-controller.k8s.io": true,
}

// ready is the Ready condition: the parent holds what was exported.
func (c *Controller) ready(valid metav1.Condition, syncErr error, generation int64) metav1.Condition {
	cond := metav1.Condition{Type: string(mcsv1alpha1.ServiceExportConditionReady), ObservedGeneration: generation}
	switch {
	case valid.Status != metav1.ConditionTrue:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, string(mcsv1alpha1.ServiceExportReasonFailed), "not exported: "+valid.Message
	case apierrors.IsForbidden(syncErr):
		cond.Status, cond.Reason = metav1.ConditionFalse, string(mcsv1alpha1.ServiceExportReasonPending)
		cond.Message = fmt.Sprintf("the parent refused the endpoints (will retry): turn the MultiClusterService feature gate on in the hub, "+
			"which binds this agent's rights in namespace %s (RoleBinding %s); %v", c.cfg.Namespace, mcs.AgentBinding, syncErr)
	case syncErr != nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, string(mcsv1alpha1.ServiceExportReasonPending), "publishing the endpoints to the parent failed, will retry: "+syncErr.Error()
	default:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, string(mcsv1alpha1.ServiceExportReasonExported), "the parent holds this cluster's endpoints of the service"
	}
	return cond
}

// conflict is the hub's report on svc, if it made one yet.
func (c *Controller) conflict(svc mcs.ServiceKey) (mcs.Conflict, bool) {
	var out mcs.Conflict
	cm, err := c.conflicts.ConfigMaps(c.cfg.Namespace).Get(mcs.ConflictsConfigMap)
	if err != nil {
		return out, false
	}
	v, ok := cm.Data[svc.ExportKey()]
	if !ok || json.Unmarshal([]byte(v), &out) != nil {
		return out, false
	}
	return out, true
}

// setConditions writes conds into se's status when any differs.
func (c *Controller) setConditions(ctx context.Context, se *mcsv1alpha1.ServiceExport, conds []metav1.Condition) error {
	se = se.DeepCopy()
	changed := false
	for _, cond := range conds {
		cond.ObservedGeneration = se.Generation
		changed = meta.SetStatusCondition(&se.Status.Conditions, cond) || changed
	}
	if !changed {
		return nil
	}
	_, err := c.cfg.ChildMCS.MulticlusterV1alpha1().ServiceExports(se.Namespace).UpdateStatus(ctx, se, metav1.UpdateOptions{})
	return err
}

// syncImport copies the hub's slices for one ServiceImport into the child.
func (c *Controller) syncImport(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	svc := mcs.ServiceKey{Namespace: ns, Name: name}
	sel := exportSelector(svc, mcs.ManagedByImport)
	have, err := c.childImported.EndpointSlices(ns).List(sel)
	if err != nil {
		return 0, err
	}
	var want []*discoveryv1.EndpointSlice
	si, err := c.imports.ServiceImports(ns).Get(name)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return 0, err
	case si.DeletionTimestamp == nil:
		from, err := c.parentSlices.EndpointSlices(c.cfg.Namespace).List(sel)
		if err != nil {
			return 0, err
		}
		for _, s := range from {
			want = append(want, mcs.ChildSlice(s, si))
		}
	}
	return 0, mcs.SyncSlices(ctx, c.cfg.Child.DiscoveryV1(), have, want)
}

// RemoveImported deletes, with the gate off, the copies of imported slices
// an earlier run made in the child (managed by ManagedByImport): nothing
// keeps them current any more.
func RemoveImported(ctx context.Context, child kubernetes.Interface) error {
	return mcs.RemoveSlices(ctx, child.DiscoveryV1(), metav1.NamespaceAll, labels.Set{discoveryv1.LabelManagedBy: mcs.ManagedByImport}.String())
}
