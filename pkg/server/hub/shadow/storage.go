package shadow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage/names"
	"k8s.io/apiserver/pkg/util/dryrun"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/klog/v2"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	appsclient "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/typed/apps/v1alpha1"
)

// maxUpdateAttempts bounds how often an update without a resourceVersion
// (a patch, an unconditional update) is retried when another writer wins.
const maxUpdateAttempts = 5

// reservedNamespace creates the namespace that holds Manifests the first
// time a template is written.
type reservedNamespace struct {
	namespaces typedcorev1.NamespaceInterface
	exists     atomic.Bool
}

// ensure's error is for the hub's log, not for clients.
func (n *reservedNamespace) ensure(ctx context.Context) error {
	if n.exists.Load() {
		return nil
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appsv1alpha1.ReservedNamespace}}
	if _, err := n.namespaces.Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %q for templates: %w", appsv1alpha1.ReservedNamespace, err)
	}
	n.exists.Store(true)
	return nil
}

// templateStorage serves one resource's templates, each kept in a Manifest
// in the reserved namespace.
type templateStorage struct {
	r         *resource
	manifests appsclient.ManifestInterface
	validator validator
	// realKind checks the caller's permission on the real kind; nil skips it.
	realKind authorizer.UnconditionalAuthorizer
	reserved *reservedNamespace
	table    rest.TableConvertor
}

var (
	_ rest.Storage           = &templateStorage{}
	_ rest.Getter            = &templateStorage{}
	_ rest.Lister            = &templateStorage{}
	_ rest.Watcher           = &templateStorage{}
	_ rest.Creater           = &templateStorage{} //nolint:misspell // the interface's name in k8s.io/apiserver
	_ rest.Updater           = &templateStorage{}
	_ rest.GracefulDeleter   = &templateStorage{}
	_ rest.CollectionDeleter = &templateStorage{}
)

// New is an empty template of the resource's kind.
func (s *templateStorage) New() runtime.Object {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(s.r.gvk())
	return u
}

// NewList is an empty list of the resource's kind.
func (s *templateStorage) NewList() runtime.Object {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(s.r.gvr.GroupVersion().WithKind(s.r.kind + "List"))
	return l
}

// Destroy releases nothing: the storage is a view of the parent's Manifests.
func (s *templateStorage) Destroy() {}

// ConvertToTable shows NAME and CREATED AT, as the generic apiserver does
// for a kind without columns of its own.
func (s *templateStorage) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	return s.table.ConvertToTable(ctx, object, tableOptions)
}

// verbOf is the verb of the request in ctx, for real-kind authorization.
func verbOf(ctx context.Context, fallback string) string {
	if ri, ok := request.RequestInfoFrom(ctx); ok && ri.Verb != "" {
		return ri.Verb
	}
	return fallback
}

// labelled is true when Manifest m is labelled as holding a template of
// this resource (and is not, say, a Manifest someone wrote by hand under
// that name; its name already hashes the template's namespace and name).
func (s *templateStorage) labelled(m *appsv1alpha1.Manifest) bool {
	return m.Labels[appsv1alpha1.LabelConfigGroup] == s.r.gvr.Group && m.Labels[appsv1alpha1.LabelConfigKind] == s.r.kind
}

// owns is true when template u, read from a labelled Manifest, is
// namespace/name of this resource.
func (s *templateStorage) owns(u *unstructured.Unstructured, namespace, name string) bool {
	return u.GetKind() == s.r.kind && u.GroupVersionKind().Group == s.r.gvr.Group &&
		u.GetName() == name && u.GetNamespace() == namespace
}

// current reads the Manifest holding namespace/name and its template.
// When the Manifest holds no readable template, it returns the Manifest
// with the error (and no template), so that the template can still be
// deleted.
func (s *templateStorage) current(ctx context.Context, namespace, name string, opts metav1.GetOptions) (*appsv1alpha1.Manifest, *unstructured.Unstructured, error) {
	m, err := s.manifests.Get(ctx, s.r.manifestName(namespace, name), opts)
	if err != nil {
		return nil, nil, s.r.mapError(ctx, err, namespace, name)
	}
	if !s.labelled(m) {
		return nil, nil, apierrors.NewNotFound(s.r.groupResource(), name)
	}
	u, err := objectFrom(m)
	if err != nil {
		return m, nil, s.r.unreadable(ctx, m, name, err)
	}
	if !s.owns(u, namespace, name) {
		return nil, nil, apierrors.NewNotFound(s.r.groupResource(), name)
	}
	return m, u, nil
}

// Get returns the template namespace/name.
func (s *templateStorage) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	namespace := s.r.templateNamespace(request.NamespaceValue(ctx))
	if err := s.r.authorizeRealKind(ctx, s.realKind, "get", "", namespace, name, name); err != nil {
		return nil, err
	}
	opts := metav1.GetOptions{}
	if options != nil {
		opts.ResourceVersion = options.ResourceVersion
	}
	_, u, err := s.current(ctx, namespace, name, opts)
	return u, err
}

// List returns the templates the options select.
func (s *templateStorage) List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	namespace := s.r.templateNamespace(request.NamespaceValue(ctx))
	if err := s.r.authorizeRealKind(ctx, s.realKind, "list", "", namespace, "", ""); err != nil {
		return nil, err
	}
	return s.list(ctx, namespace, options)
}

func (s *templateStorage) list(ctx context.Context, namespace string, options *metainternalversion.ListOptions) (*unstructured.UnstructuredList, error) {
	sel, err := s.r.selection(namespace, options)
	if err != nil {
		return nil, err
	}
	opts := metav1.ListOptions{LabelSelector: sel.manifestLabels.String(), FieldSelector: sel.manifestFields.String()}
	if options != nil {
		opts.ResourceVersion, opts.ResourceVersionMatch = options.ResourceVersion, options.ResourceVersionMatch
		opts.Limit, opts.Continue, opts.TimeoutSeconds = options.Limit, options.Continue, options.TimeoutSeconds
	}
	manifests, err := s.manifests.List(ctx, opts)
	if err != nil {
		return nil, s.r.mapError(ctx, err, namespace, "")
	}
	out := s.NewList().(*unstructured.UnstructuredList)
	out.SetResourceVersion(manifests.ResourceVersion)
	out.SetContinue(manifests.Continue)
	if sel.exact {
		out.SetRemainingItemCount(manifests.RemainingItemCount)
	}
	out.Items = []unstructured.Unstructured{}
	for i := range manifests.Items {
		m := &manifests.Items[i]
		u, err := objectFrom(m)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Skipping a Manifest without a valid template", "manifest", klog.KObj(m))
			continue
		}
		if sel.matches(m.Labels, u) {
			out.Items = append(out.Items, *u)
		}
	}
	return out, nil
}

// Watch streams the changes of the templates the options select, from a
// watch of their Manifests (so resourceVersions are the parent's).
func (s *templateStorage) Watch(ctx context.Context, options *metainternalversion.ListOptions) (watch.Interface, error) {
	namespace := s.r.templateNamespace(request.NamespaceValue(ctx))
	if err := s.r.authorizeRealKind(ctx, s.realKind, "watch", "", namespace, "", ""); err != nil {
		return nil, err
	}
	sel, err := s.r.selection(namespace, options)
	if err != nil {
		return nil, err
	}
	opts := metav1.ListOptions{Watch: true, LabelSelector: sel.manifestLabels.String(), FieldSelector: sel.manifestFields.String()}
	if options != nil {
		opts.ResourceVersion, opts.ResourceVersionMatch = options.ResourceVersion, options.ResourceVersionMatch
		opts.AllowWatchBookmarks, opts.SendInitialEvents = options.AllowWatchBookmarks, options.SendInitialEvents
		opts.TimeoutSeconds = options.TimeoutSeconds
	}
	w, err := s.manifests.Watch(ctx, opts)
	if err != nil {
		return nil, s.r.mapError(ctx, err, namespace, "")
	}
	return newTemplateWatch(ctx, w, sel), nil
}

// validateMeta checks what the dry run cannot: the template's own
// namespace (the dry run uses another one) and that it has a name.
func (s *templateStorage) validateMeta(u *unstructured.Unstructured) error {
	var errs field.ErrorList
	if s.r.namespaced {
		for _, msg := range apivalidation.ValidateNamespaceName(u.GetNamespace(), false) {
			errs = append(errs, field.Invalid(field.NewPath("metadata", "namespace"), u.GetNamespace(), msg))
		}
	}
	if u.GetName() == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "name"), "name or generateName is required"))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(s.r.groupKind(), u.GetName(), errs)
	}
	return nil
}

// checkKind refuses a body of another kind or group than the resource's.
func (s *templateStorage) checkKind(u *unstructured.Unstructured) error {
	gvk := u.GroupVersionKind()
	if gvk.Kind != s.r.kind || !s.r.AcceptsGroupVersion(gvk.GroupVersion()) {
		return apierrors.NewBadRequest(fmt.Sprintf("%s %q: %s templates are %s in versions %v of group %q",
			gvk.Kind, u.GetName(), s.r.gvr.Resource, s.r.kind, s.r.versions, s.r.gvr.Group))
	}
	return nil
}

// validate dry-runs u in the parent as the request's user, creating the
// reserved namespace the dry run may need when it is missing.
func (s *templateStorage) validate(ctx context.Context, u *unstructured.Unstructured, fieldValidation string) error {
	if err := s.reserved.ensure(ctx); err != nil {
		return s.cannotValidate(ctx, u, err)
	}
	err := s.validator.validate(ctx, s.r, u, fieldValidation)
	if errors.Is(err, errReservedNamespaceMissing) {
		s.reserved.exists.Store(false)
		if err := s.reserved.ensure(ctx); err != nil {
			return s.cannotValidate(ctx, u, err)
		}
		err = s.validator.validate(ctx, s.r, u, fieldValidation)
	}
	switch {
	case errors.Is(err, errReservedNamespaceMissing):
		return s.cannotValidate(ctx, u, fmt.Errorf("namespace %q, where templates are validated, is missing", appsv1alpha1.ReservedNamespace))
	case errors.Is(err, errHubCannotImpersonate):
		return s.cannotValidate(ctx, u, err)
	}
	return err
}

// cannotValidate tells the client that template u cannot be validated for
// a reason of the hub's own, which goes to the hub's log.
func (s *templateStorage) cannotValidate(ctx context.Context, u *unstructured.Unstructured, cause error) error {
	klog.FromContext(ctx).Error(cause, "Cannot validate templates", "resource", s.r.groupResource(), "name", u.GetName())
	return apierrors.NewInternalError(fmt.Errorf("%s cannot be validated in the parent now; an administrator of the parent finds why in the hub's log",
		s.r.what(u.GetName())))
}

// Create validates the template with a dry run of the real kind in the
// parent, then stores it in a new Manifest.
func (s *templateStorage) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a template: %T", obj))
	}
	if options == nil {
		options = &metav1.CreateOptions{}
	}
	namespace := s.r.templateNamespace(request.NamespaceValue(ctx))
	if err := s.r.authorizeRealKind(ctx, s.realKind, "create", "", namespace, "", u.GetName()); err != nil {
		return nil, err
	}
	if err := s.checkKind(u); err != nil {
		return nil, err
	}
	u.SetNamespace(namespace)
	s.r.cleanTemplate(u)
	generated := u.GetName() == "" && u.GetGenerateName() != ""
	if generated {
		u.SetName(names.SimpleNameGenerator.GenerateName(u.GetGenerateName()))
	}
	if err := s.validateMeta(u); err != nil {
		return nil, err
	}
	if createValidation != nil {
		if err := createValidation(ctx, u); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		if err := s.validate(ctx, u, options.FieldValidation); err != nil {
			return nil, err
		}
		if dryrun.IsDryRun(options.DryRun) {
			// As a real dry run, it fails on a name already taken.
			if m, _, err := s.current(ctx, u.GetNamespace(), u.GetName(), metav1.GetOptions{}); err == nil {
				return nil, s.alreadyExists(m, u.GetName())
			} else if !apierrors.IsNotFound(err) {
				return nil, err
			}
			return s.dryRunResult(u, nil), nil
		}
		m := &appsv1alpha1.Manifest{}
		if err := s.r.fillManifest(m, u); err != nil {
			return nil, err
		}
		created, err := s.manifests.Create(ctx, m, metav1.CreateOptions{})
		switch {
		case err == nil:
			return s.stored(ctx, created, u.GetName())
		case apierrors.IsAlreadyExists(err) && generated && attempt < 3:
			u.SetName(names.SimpleNameGenerator.GenerateName(u.GetGenerateName()))
			continue
		case apierrors.IsNotFound(err) && attempt == 0:
			// The reserved namespace went away since it was created.
			s.reserved.exists.Store(false)
			continue
		case apierrors.IsAlreadyExists(err):
			if m, _, cerr := s.current(ctx, u.GetNamespace(), u.GetName(), metav1.GetOptions{}); cerr == nil {
				return nil, s.alreadyExists(m, u.GetName())
			}
		}
		return nil, s.r.mapError(ctx, err, u.GetNamespace(), u.GetName())
	}
}

// alreadyExists is the error for a create of template name, which Manifest m
// holds. While m is being deleted it says so, as kube-apiserver does ("object
// is being deleted: ..."), and, when FeedInUseProtection holds it, which
// Subscriptions do and how to release them: the name is free only once they
// have.
func (s *templateStorage) alreadyExists(m *appsv1alpha1.Manifest, name string) error {
	err := apierrors.NewAlreadyExists(s.r.groupResource(), name)
	if m.DeletionTimestamp == nil {
		return err
	}
	msg := "object is being deleted: " + err.ErrStatus.Message
	if note := m.Annotations[appsv1alpha1.AnnotationFeedProtection]; note != "" {
		msg += ": " + note
	} else if slices.Contains(m.Finalizers, appsv1alpha1.FeedProtectionFinalizer) {
		msg += ": FeedInUseProtection holds it while Subscriptions of its namespace use it as a feed; " +
			"`kubectl get events` there names them (reason FeedInUse): remove it from their spec.feeds or delete them"
	}
	err.ErrStatus.Message = msg + "; create it again once it is gone"
	return err
}

// dryRunResult is what a dry-run write returns: the template as it would be
// stored, with the server metadata it has (from current) or would get.
func (s *templateStorage) dryRunResult(u *unstructured.Unstructured, current *appsv1alpha1.Manifest) *unstructured.Unstructured {
	out := u.DeepCopy()
	if current != nil {
		out.SetUID(current.UID)
		out.SetResourceVersion(current.ResourceVersion)
		out.SetCreationTimestamp(current.CreationTimestamp)
		out.SetGeneration(current.Generation)
		showProtection(out, current)
		return out
	}
	out.SetCreationTimestamp(metav1.Now())
	out.SetGeneration(1)
	return out
}

// stored is template name, which a Manifest the parent just wrote holds.
func (s *templateStorage) stored(ctx context.Context, m *appsv1alpha1.Manifest, name string) (*unstructured.Unstructured, error) {
	u, err := objectFrom(m)
	if err != nil {
		return nil, s.r.unreadable(ctx, m, name, err)
	}
	return u, nil
}

// Update applies objInfo to the stored template: a PUT's object or a
// patch. A resourceVersion in the new object must be the current one
// (409 Conflict otherwise); without one, a write lost to another writer
// is retried on the fresh template. Templates are never created by update.
// The real kind's permission comes first: before it, nothing about the
// template (whether it exists, its resourceVersion, what a JSON patch's
// test finds in it) shows in the answer.
func (s *templateStorage) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, _ rest.ValidateObjectFunc,
	updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	if options == nil {
		options = &metav1.UpdateOptions{}
	}
	namespace := s.r.templateNamespace(request.NamespaceValue(ctx))
	if err := s.r.authorizeRealKind(ctx, s.realKind, verbOf(ctx, "update"), "", namespace, name, name); err != nil {
		return nil, false, err
	}
	for attempt := 1; ; attempt++ {
		m, old, err := s.current(ctx, namespace, name, metav1.GetOptions{})
		if err != nil {
			return nil, false, err
		}
		before := old.DeepCopy()
		s.r.cleanTemplate(before)
		// Patching may change the object it is given in place.
		newObj, err := objInfo.UpdatedObject(ctx, old.DeepCopy())
		if err != nil {
			return nil, false, err
		}
		u, ok := newObj.(*unstructured.Unstructured)
		if !ok {
			return nil, false, apierrors.NewBadRequest(fmt.Sprintf("not a template: %T", newObj))
		}
		if err := s.checkKind(u); err != nil {
			return nil, false, err
		}
		if err := s.checkPreconditions(objInfo.Preconditions(), m, name); err != nil {
			return nil, false, err
		}
		wantVersion := u.GetResourceVersion()
		if wantVersion != "" && wantVersion != m.ResourceVersion {
			return nil, false, apierrors.NewConflict(s.r.groupResource(), name, errors.New(optimisticLockMsg))
		}
		u.SetNamespace(namespace)
		s.r.cleanTemplate(u)
		if updateValidation != nil {
			if err := updateValidation(ctx, u, old); err != nil {
				return nil, false, err
			}
		}
		if apiequality.Semantic.DeepEqual(before.Object, u.Object) {
			return old, false, nil
		}
		if err := s.validate(ctx, u, options.FieldValidation); err != nil {
			return nil, false, err
		}
		if dryrun.IsDryRun(options.DryRun) {
			return s.dryRunResult(u, m), false, nil
		}
		next := m.DeepCopy()
		if err := s.r.fillManifest(next, u); err != nil {
			return nil, false, err
		}
		updated, err := s.manifests.Update(ctx, next, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) && wantVersion == "" && attempt < maxUpdateAttempts {
			continue
		}
		if err != nil {
			return nil, false, s.r.mapError(ctx, err, namespace, name)
		}
		obj, err := s.stored(ctx, updated, name)
		return obj, false, err
	}
}

// checkPreconditions compares a write's preconditions with the template's
// Manifest, whose uid and resourceVersion the template shows.
func (s *templateStorage) checkPreconditions(p *metav1.Preconditions, m *appsv1alpha1.Manifest, name string) error {
	if p == nil {
		return nil
	}
	if p.UID != nil && *p.UID != m.UID {
		return apierrors.NewConflict(s.r.groupResource(), name,
			fmt.Errorf("precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.UID))
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != m.ResourceVersion {
		return apierrors.NewConflict(s.r.groupResource(), name,
			fmt.Errorf("precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.ResourceVersion))
	}
	return nil
}

// Delete removes the template's Manifest. It returns the template; false
// when the Manifest has finalizers and is only marked for deletion.
func (s *templateStorage) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	namespace := s.r.templateNamespace(request.NamespaceValue(ctx))
	if err := s.r.authorizeRealKind(ctx, s.realKind, "delete", "", namespace, name, name); err != nil {
		return nil, false, err
	}
	return s.delete(ctx, namespace, name, deleteValidation, options)
}

func (s *templateStorage) delete(ctx context.Context, namespace, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	if options == nil {
		options = &metav1.DeleteOptions{}
	}
	m, u, err := s.current(ctx, namespace, name, metav1.GetOptions{})
	switch {
	case err != nil && u == nil && m != nil:
		// The Manifest holds no readable template: deleting it is how the
		// template is replaced.
		u = s.unreadablePlaceholder(m, namespace, name)
	case err != nil:
		return nil, false, err
	}
	if err := s.checkPreconditions(options.Preconditions, m, name); err != nil {
		return nil, false, err
	}
	if deleteValidation != nil {
		if err := deleteValidation(ctx, u); err != nil {
			return nil, false, err
		}
	}
	if dryrun.IsDryRun(options.DryRun) {
		return u, true, nil
	}
	preconditions := &metav1.Preconditions{UID: &m.UID}
	if options.Preconditions != nil && options.Preconditions.ResourceVersion != nil {
		preconditions.ResourceVersion = options.Preconditions.ResourceVersion
	}
	err = s.manifests.Delete(ctx, m.Name, metav1.DeleteOptions{Preconditions: preconditions, GracePeriodSeconds: options.GracePeriodSeconds})
	if err != nil {
		return nil, false, s.r.mapError(ctx, err, namespace, name)
	}
	if len(m.Finalizers) == 0 {
		return u, true, nil
	}
	// Something (a distribution controller) holds the Manifest until it has
	// cleaned up: the template shows its deletion until then.
	after, marked, err := s.current(ctx, namespace, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return u, true, nil
	case err != nil && marked == nil && after != nil:
		marked = s.unreadablePlaceholder(after, namespace, name)
		marked.SetDeletionTimestamp(after.DeletionTimestamp)
	case err != nil:
		return nil, false, err
	}
	return marked, false, nil
}

// unreadablePlaceholder stands for a template its Manifest m no longer
// holds readably, while it is deleted: its kind, namespace, name and the
// Manifest's metadata.
func (s *templateStorage) unreadablePlaceholder(m *appsv1alpha1.Manifest, namespace, name string) *unstructured.Unstructured {
	u := s.New().(*unstructured.Unstructured)
	if v := m.Labels[appsv1alpha1.LabelConfigVersion]; s.r.AcceptsGroupVersion(schema.GroupVersion{Group: s.r.gvr.Group, Version: v}) {
		u.SetAPIVersion(schema.GroupVersion{Group: s.r.gvr.Group, Version: v}.String())
	}
	u.SetNamespace(namespace)
	u.SetName(name)
	u.SetUID(m.UID)
	u.SetResourceVersion(m.ResourceVersion)
	u.SetCreationTimestamp(m.CreationTimestamp)
	u.SetGeneration(m.Generation)
	return u
}

// DeleteCollection deletes the templates listOptions select, one by one.
func (s *templateStorage) DeleteCollection(ctx context.Context, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions,
	listOptions *metainternalversion.ListOptions) (runtime.Object, error) {
	namespace := s.r.templateNamespace(request.NamespaceValue(ctx))
	if err := s.r.authorizeRealKind(ctx, s.realKind, "deletecollection", "", namespace, "", ""); err != nil {
		return nil, err
	}
	if listOptions != nil {
		listOptions = listOptions.DeepCopy()
		// Deleting is always from the latest state, not a cached one.
		listOptions.ResourceVersion, listOptions.ResourceVersionMatch = "", ""
	}
	list, err := s.list(ctx, namespace, listOptions)
	if err != nil {
		return nil, err
	}
	deleted := s.NewList().(*unstructured.UnstructuredList)
	deleted.SetResourceVersion(list.GetResourceVersion())
	deleted.Items = []unstructured.Unstructured{}
	for i := range list.Items {
		item := &list.Items[i]
		obj, _, err := s.delete(ctx, item.GetNamespace(), item.GetName(), deleteValidation, options.DeepCopy())
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		deleted.Items = append(deleted.Items, *obj.(*unstructured.Unstructured))
	}
	return deleted, nil
}
