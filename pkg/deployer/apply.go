package deployer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/throttle"
)

// crdEstablishTimeout bounds the wait for a CustomResourceDefinition the
// Description applies to be served.
var crdEstablishTimeout = 60 * time.Second

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Child applies objects into one child cluster.
type Child struct {
	Dynamic dynamic.Interface
	// Raw reaches the child's API by path: the deployer's watches read
	// their streams with it (kindWatch says why).
	Raw rest.Interface
	// Mapper is the child's RESTMapper over cached discovery, reset when a
	// kind is not found (a CRD installed since).
	Mapper *restmapper.DeferredDiscoveryRESTMapper

	// resets throttles, to one per resetEvery, the resets a missing kind causes.
	resets     throttle.Interval
	resetEvery time.Duration
}

// DefaultResetInterval is the least time between two rediscoveries a
// missing kind causes.
const DefaultResetInterval = 10 * time.Second

// NewChild builds a Child from a configuration reaching its apiserver.
func NewChild(cfg *rest.Config) (*Child, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return NewChildWith(cfg, dyn, restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco)))
}

// NewChildWith builds a Child from clients someone else owns: the hub's
// per-cluster registry shares one dynamic client and one discovery (mapper)
// per cluster between the deployer and Helm. cfg is what dyn was built
// from.
func NewChildWith(cfg *rest.Config, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper) (*Child, error) {
	raw, err := rawClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Child{Dynamic: dyn, Raw: raw, Mapper: mapper, resetEvery: DefaultResetInterval}, nil
}

// rawClient is a client of cfg's apiserver by path, for long watches: no
// client timeout (not a discovery client's RESTClient, though it is one:
// discovery sets 32 s, which would end every watch after 32 s).
func rawClient(cfg *rest.Config) (rest.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.APIPath, cfg.GroupVersion, cfg.Timeout = "", nil, 0
	// kindWatch decodes JSON, whatever the configuration prefers.
	cfg.ContentType, cfg.AcceptContentTypes = "application/json", "application/json"
	cfg.NegotiatedSerializer = statusCodecs
	return rest.UnversionedRESTClientFor(cfg)
}

// statusCodecs decode what the raw client reads itself: the child's Status
// when it refuses a request, so its errors keep their reason and message.
var statusCodecs = func() runtime.NegotiatedSerializer {
	s := runtime.NewScheme()
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return serializer.NewCodecFactory(s).WithoutConversion()
}()

// Mapping resolves gvk. A miss resets the cached discovery and tries once
// more, at most once per resetEvery: Mapping runs for every object of every
// sync (stale status refs included), and a Description naming a kind the
// child lacks would otherwise rediscover the whole child, through its
// tunnel, on each. A CRD installed since is found within resetEvery.
func (c *Child) Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil && meta.IsNoMatchError(err) && c.resets.Allow(c.resetEvery) {
		c.Mapper.Reset()
		m, err = c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	return m, err
}

// Namespaced says whether the child serves gvk namespaced.
func (c *Child) Namespaced(gvk schema.GroupVersionKind) (bool, error) {
	m, err := c.Mapping(gvk)
	if err != nil {
		return false, err
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

func (c *Child) resource(m *meta.RESTMapping, namespace string) dynamic.ResourceInterface {
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.Dynamic.Resource(m.Resource).Namespace(namespace)
	}
	return c.Dynamic.Resource(m.Resource)
}

// apply server-side applies o (dry-run when dryRun).
func (c *Child) apply(ctx context.Context, m *meta.RESTMapping, o Object, dryRun bool) (*unstructured.Unstructured, error) {
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return c.resource(m, o.Obj.GetNamespace()).Apply(ctx, o.Obj.GetName(), o.Obj, opts)
}

// Get reads r's copy in the child; nil, nil when there is none.
func (c *Child) Get(ctx context.Context, r Ref) (*unstructured.Unstructured, error) {
	m, err := c.Mapping(schema.FromAPIVersionAndKind(r.APIVersion, r.Kind))
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil // the kind is gone: so is the object
		}
		return nil, err
	}
	live, err := c.resource(m, r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return live, err
}

// DryRun is what applying o would make of its copy in the child. o is
// applied as it is: pass o.Marked(live), so the apply keeps the object's
// AnnotationCreatedBy as it is.
func (c *Child) DryRun(ctx context.Context, o Object) (*unstructured.Unstructured, error) {
	m, err := c.Mapping(o.Obj.GroupVersionKind())
	if err != nil {
		return nil, err
	}
	return c.apply(ctx, m, o, true)
}

// Apply applies o for real (o.Marked(live), as for DryRun).
func (c *Child) Apply(ctx context.Context, o Object) (*unstructured.Unstructured, error) {
	m, err := c.Mapping(o.Obj.GroupVersionKind())
	if err != nil {
		return nil, err
	}
	return c.apply(ctx, m, o, false)
}

// ObjectError is a failure about one object: the Description's Failure reason.
type ObjectError struct {
	Ref Ref
	// DryRun says the child rejected a dry-run: nothing of this attempt was
	// left applied.
	DryRun bool
	Err    error
}

func (e *ObjectError) Error() string {
	what := "applying"
	if e.DryRun {
		what = "validating (server-side dry-run)"
	}
	return fmt.Sprintf("%s %s in the child failed: %s%s", what, e.Ref, childMessage(e.Err), fixFor(e.Err))
}

func (e *ObjectError) Unwrap() error { return e.Err }

func childMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Message != "" {
		return status.Status().Message
	}
	return err.Error()
}

// fixFor says what to change, for the errors a child gives most.
func fixFor(err error) string {
	switch {
	case meta.IsNoMatchError(err):
		return "; install the kind's CustomResourceDefinition in the child, or add it to the Subscription's feeds"
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return "; fix the object's template (or the Localization/Globalization overriding it) in the parent"
	case apierrors.IsForbidden(err):
		return "; grant clusternet-agent's ServiceAccount in the child the rights to apply it (deploy/agent/rbac.yaml), or fix what a policy in the child refuses"
	case apierrors.IsNotFound(err):
		return "; create what it refers to in the child, or add it to the Subscription's feeds"
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
		return "; the child's copy conflicts with the template: delete it in the child or change the template"
	}
	return ""
}

// Plan is what one attempt applies: objs in apply order, and which to leave
// untouched (opted out of drift correction and already at this version).
type Plan struct {
	Objects []Object
	// Skip holds keys of objects not to apply.
	Skip map[string]bool
	// Live finds an object's copy in the child (nil, nil when there is
	// none), to tell objects this attempt creates (marked with
	// AnnotationCreatedBy) from those that existed before. It may answer
	// from a cache of the objects Clusternet applied, but must ask the child
	// about any other. Nil: Child.Get.
	Live func(context.Context, Ref) (*unstructured.Unstructured, error)
}

// Result is the outcome of Deploy.
type Result struct {
	// Live is the child's copy of each applied object after its apply, by key.
	Live map[string]*unstructured.Unstructured
	// Err is the first failure, an *ObjectError when it concerns one object.
	Err error
}

// Deploy dry-runs every object of p and, only if the child accepts all,
// applies them for real. Objects in a Namespace or of a kind the
// Description itself brings cannot be dry-run before those exist: the
// Namespaces and CustomResourceDefinitions are applied first (and waited
// for until Established), the remaining objects dry-run, and if one of
// those fails the Namespaces and CustomResourceDefinitions this attempt
// created are deleted again, leaving the child as it was. A failure of a
// real apply after every dry-run passed (a webhook, a race) stops there:
// the objects applied before it stay, and the next attempt continues.
func (c *Child) Deploy(ctx context.Context, p Plan) Result {
	res := Result{Live: map[string]*unstructured.Unstructured{}}
	lookup := p.Live
	if lookup == nil {
		lookup = c.Get
	}
	var todo []Object
	for _, o := range p.Objects {
		if p.Skip[o.Ref().Key()] {
			continue
		}
		live, err := lookup(ctx, o.Ref())
		if err != nil {
			res.Err = &ObjectError{Ref: o.Ref(), DryRun: true, Err: err}
			return res
		}
		todo = append(todo, o.Marked(live))
	}
	newNamespaces := map[string]bool{}
	for _, o := range todo {
		if o.IsNamespace() {
			newNamespaces[o.Obj.GetName()] = true
		}
	}
	// 1. Dry-run what can be: all but objects waiting on a Namespace or a
	// kind of this Description.
	var deferred []Object
	for _, o := range todo {
		m, err := c.Mapping(o.Obj.GroupVersionKind())
		if err != nil {
			if meta.IsNoMatchError(err) && crdDefines(todo, o.Obj.GroupVersionKind().GroupKind()) {
				deferred = append(deferred, o)
				continue
			}
			res.Err = &ObjectError{Ref: o.Ref(), DryRun: true, Err: err}
			return res
		}
		if _, err := c.apply(ctx, m, o, true); err != nil {
			if isNamespaceNotFound(err, o.Obj.GetNamespace()) && newNamespaces[o.Obj.GetNamespace()] {
				deferred = append(deferred, o)
				continue
			}
			res.Err = &ObjectError{Ref: o.Ref(), DryRun: true, Err: err}
			return res
		}
	}
	// 2. Objects that wait on a Namespace or a CRD: create those, then dry-run.
	if len(deferred) > 0 {
		created, err := c.applyFoundations(ctx, todo, res.Live)
		if err == nil {
			err = c.dryRunAll(ctx, deferred)
		}
		if err != nil {
			for _, r := range created {
				delete(res.Live, r.Key()) // undone below
			}
			if rbErr := c.rollback(ctx, created); rbErr != nil {
				err = fmt.Errorf("%w (and undoing the Namespaces and CustomResourceDefinitions it created failed: %w)", err, rbErr)
			}
			res.Err = err
			return res
		}
	}
	// 3. Apply for real, in order.
	for _, o := range todo {
		live, err := c.Apply(ctx, o)
		if err != nil {
			res.Err = &ObjectError{Ref: o.Ref(), Err: err}
			return res
		}
		res.Live[o.Ref().Key()] = live
		if o.IsCRD() {
			if err := c.waitEstablished(ctx, o); err != nil {
				res.Err = err
				return res
			}
		}
	}
	return res
}

func (c *Child) dryRunAll(ctx context.Context, objs []Object) error {
	for _, o := range objs {
		if _, err := c.DryRun(ctx, o); err != nil {
			return &ObjectError{Ref: o.Ref(), DryRun: true, Err: err}
		}
	}
	return nil
}

// applyFoundations creates the Namespaces among objs that do not exist yet
// and applies the CRDs among them (an existing CRD may be what a new version
// of a kind needs), waits for the CRDs to be Established, and returns those
// it created (that did not exist before). An existing Namespace is left
// alone here: nothing waits on it, and an attempt whose dry-run fails
// must not have changed it.
func (c *Child) applyFoundations(ctx context.Context, objs []Object, live map[string]*unstructured.Unstructured) ([]Ref, error) {
	var created []Ref
	for _, o := range objs {
		if !o.IsNamespace() && !o.IsCRD() {
			continue
		}
		existing, err := c.Get(ctx, o.Ref())
		if err != nil {
			return created, &ObjectError{Ref: o.Ref(), DryRun: true, Err: err}
		}
		if existing != nil && existing.GetDeletionTimestamp() != nil {
			return created, &ObjectError{Ref: o.Ref(), DryRun: true,
				Err: fmt.Errorf("it is being deleted in the child; it is applied again once gone")}
		}
		if existing != nil && o.IsNamespace() {
			continue
		}
		got, err := c.Apply(ctx, o)
		if err != nil {
			return created, &ObjectError{Ref: o.Ref(), Err: err}
		}
		if existing == nil {
			created = append(created, o.Ref())
		}
		live[o.Ref().Key()] = got
		if o.IsCRD() {
			if err := c.waitEstablished(ctx, o); err != nil {
				return created, err
			}
		}
	}
	c.Mapper.Reset()
	return created, nil
}

// rollback deletes what applyFoundations created (and only that), CRDs
// before Namespaces.
func (c *Child) rollback(ctx context.Context, created []Ref) error {
	var errs []error
	for _, r := range DeleteOrder(created) {
		if _, err := c.Delete(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Child) waitEstablished(ctx context.Context, o Object) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, crdEstablishTimeout, true, func(ctx context.Context) (bool, error) {
		crd, err := c.Dynamic.Resource(crdGVR).Get(ctx, o.Obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return &ObjectError{Ref: o.Ref(), Err: fmt.Errorf("not Established within %s: check the CRD's status.conditions in the child", crdEstablishTimeout)}
	}
	c.Mapper.Reset()
	return nil
}

// Delete deletes r from the child (in the background: dependents go after
// it). It reports whether r still exists (being deleted).
func (c *Child) Delete(ctx context.Context, r Ref) (bool, error) {
	m, err := c.Mapping(schema.FromAPIVersionAndKind(r.APIVersion, r.Kind))
	if err != nil {
		if meta.IsNoMatchError(err) {
			return false, nil
		}
		return false, err
	}
	err = c.resource(m, r.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("deleting %s in the child: %w", r, err)
	}
	return true, nil
}

// Remove does with r what DecideRemoval decides, given r's copy in the
// child: deletes it, releases it, or leaves it. With RemoveDelete, the
// object may still exist when Remove returns (it is deleted in the
// background); an object found gone meanwhile is RemoveNothing.
func (c *Child) Remove(ctx context.Context, r Ref, descNamespace string, sharedWith []string) (Removal, error) {
	live, err := c.Get(ctx, r)
	if err != nil {
		return RemoveNothing, err
	}
	d := DecideRemoval(r, live, descNamespace, sharedWith)
	switch d {
	case RemoveRelease:
		return d, c.Release(ctx, r, live)
	case RemoveDelete:
		still, err := c.Delete(ctx, r)
		if err == nil && !still {
			d = RemoveNothing
		}
		return d, err
	}
	return d, nil
}

// What the deployers put on every object they apply.
var (
	ownLabels = []string{appsv1alpha1.LabelSubscriptionName, appsv1alpha1.LabelSubscriptionNamespace,
		appsv1alpha1.LabelDescriptionName, appsv1alpha1.LabelDescriptionNamespace}
	ownAnnotations = []string{AnnotationAppliedHash, AnnotationCreatedBy}
)

// Release leaves r in the child as it is, but no longer Clusternet's: it
// removes the Subscription and Description labels, Clusternet's annotations
// and FieldManager's entries in managedFields, keeping every field's value
// (an object that existed before Clusternet goes back to its owners with
// what the Description last applied). live is r's copy; a conflicting
// write meanwhile is retried on a fresh copy.
func (c *Child) Release(ctx context.Context, r Ref, live *unstructured.Unstructured) error {
	m, err := c.Mapping(schema.FromAPIVersionAndKind(r.APIVersion, r.Kind))
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil
		}
		return err
	}
	client := c.resource(m, r.Namespace)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		patch, err := releasePatch(live)
		if err != nil || patch == nil {
			return err
		}
		_, err = client.Patch(ctx, r.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		if apierrors.IsConflict(err) {
			fresh, getErr := client.Get(ctx, r.Name, metav1.GetOptions{})
			if getErr != nil {
				return getErr
			}
			live = fresh
		}
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("releasing %s in the child (removing Clusternet's labels and annotations): %w", r, err)
	}
	return nil
}

// releasePatch is the JSON merge patch Release sends (nil when there is
// nothing to remove). It carries live's resourceVersion, so it applies only
// to the copy it was computed from, and the managedFields without
// FieldManager's entries; when FieldManager is the only manager, [{}],
// which has the apiserver drop them all.
func releasePatch(live *unstructured.Unstructured) ([]byte, error) {
	metadata := map[string]any{}
	remove := func(field string, have map[string]string, keys []string) {
		gone := map[string]any{}
		for _, k := range keys {
			if _, ok := have[k]; ok {
				gone[k] = nil
			}
		}
		if len(gone) > 0 {
			metadata[field] = gone
		}
	}
	remove("labels", live.GetLabels(), ownLabels)
	remove("annotations", live.GetAnnotations(), ownAnnotations)
	managed := live.GetManagedFields()
	others := slices.DeleteFunc(slices.Clone(managed), func(e metav1.ManagedFieldsEntry) bool { return e.Manager == FieldManager })
	switch {
	case len(others) == len(managed):
	case len(others) == 0:
		metadata["managedFields"] = []any{map[string]any{}}
	default:
		metadata["managedFields"] = others
	}
	if len(metadata) == 0 {
		return nil, nil
	}
	if rv := live.GetResourceVersion(); rv != "" {
		metadata["resourceVersion"] = rv
	}
	return json.Marshal(map[string]any{"metadata": metadata})
}

// isNamespaceNotFound says whether err is the child refusing an object
// because its namespace does not exist.
func isNamespaceNotFound(err error, namespace string) bool {
	var status apierrors.APIStatus
	if namespace == "" || !apierrors.IsNotFound(err) || !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Kind == "namespaces" && d.Name == namespace ||
		strings.Contains(status.Status().Message, fmt.Sprintf("namespaces %q not found", namespace))
}

// The labels every applied object carries, for watching them in the child.
var watchedLabel = appsv1alpha1.LabelDescriptionName
