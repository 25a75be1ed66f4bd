package shadow

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversionscheme "k8s.io/apimachinery/pkg/apis/meta/internalversion/scheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apiserver/pkg/endpoints/handlers"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/endpoints/metrics"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// servedResource is everything one resource's requests need, rebuilt when
// discovery changes what it is.
type servedResource struct {
	r          *resource
	storage    *templateStorage
	scope      *handlers.RequestScope
	scale      *scaleStorage
	scaleScope *handlers.RequestScope
}

func (a *API) newServedResource(r *resource) (*servedResource, error) {
	storage := &templateStorage{
		r:         r,
		manifests: a.manifests,
		validator: a.validator,
		realKind:  a.realKind,
		reserved:  a.reserved,
		table:     rest.NewDefaultTableConvertor(r.groupResource()),
	}
	scope, err := a.newScope(r, r.gvk(), "", storage, r.builtIn())
	if err != nil {
		return nil, err
	}
	scope.AcceptsGroupVersionDelegate = r
	s := &servedResource{r: r, storage: storage, scope: scope}
	if r.scale != nil {
		s.scale = &scaleStorage{t: storage}
		if s.scaleScope, err = a.newScope(r, scaleGVK, "scale", rest.NewDefaultTableConvertor(r.groupResource()), true); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newScope is the request scope of r (or of its subresource), the way the
// generic installer would build it for an unstructured storage, with
// templates neither converted nor defaulted.
func (a *API) newScope(r *resource, kind schema.GroupVersionKind, subresource string, table rest.TableConvertor, acceptProtobuf bool) (*handlers.RequestScope, error) {
	fieldManager, err := managedfields.NewDefaultCRDFieldManager(managedfields.NewDeducedTypeConverter(), passThrough{}, noDefaults{},
		unstructuredCreator{}, kind, kind.GroupVersion(), subresource, nil)
	if err != nil {
		return nil, fmt.Errorf("field manager for %s: %w", r.groupResource(), err)
	}
	return &handlers.RequestScope{
		Namer:                    handlers.ContextBasedNaming{Namer: meta.NewAccessor(), ClusterScoped: !r.namespaced},
		Serializer:               newNegotiatedSerializer(acceptProtobuf),
		ParameterCodec:           metainternalversionscheme.ParameterCodec,
		StandardSerializers:      textMediaTypes(),
		Creater:                  unstructuredCreator{}, //nolint:misspell // the field's name in k8s.io/apiserver
		Convertor:                passThrough{},
		Defaulter:                noDefaults{},
		Typer:                    scheme,
		UnsafeConvertor:          passThrough{},
		Authorizer:               a.authorizer,
		EquivalentResourceMapper: a.equivalent,
		TableConvertor:           table,
		FieldManager:             fieldManager,
		Resource:                 r.gvr,
		Kind:                     kind,
		Subresource:              subresource,
		MetaGroupVersion:         metav1.SchemeGroupVersion,
		HubGroupVersion:          kind.GroupVersion(),
		MaxRequestBodyBytes:      a.opts.MaxRequestBodyBytes,
	}, nil
}

// possiblyAcrossAllNamespacesVerbs may leave out the namespace of a
// namespaced resource.
var possiblyAcrossAllNamespacesVerbs = map[string]bool{"list": true, "watch": true, "deletecollection": true}

// namespaceSubresources are what RequestInfoFactory reads as subresources
// of a Namespace in /namespaces/<name>/<subresource>.
var namespaceSubresources = map[string]bool{"status": true, "finalize": true}

// namespacedPath is true for a request under /namespaces/<namespace>/,
// for a resource in that namespace. RequestInfo cannot tell: it gives
// /namespaces/foo (the Namespace foo) and /namespaces/foo/namespaces/foo
// (no such route in kube-apiserver) the same namespace, resource and name,
// and the parent authorizes both as requests in namespace foo. So the
// path decides, read as RequestInfoFactory reads it.
func namespacedPath(ri *request.RequestInfo) bool {
	if ri.Namespace == "" {
		return false
	}
	parts := strings.Split(strings.Trim(ri.Path, "/"), "/")
	if len(parts) < 3 {
		return false
	}
	parts = parts[3:] // apis, shadow, <version>
	if len(parts) > 0 && (parts[0] == "watch" || parts[0] == "proxy") {
		// A verb given as a path prefix (/watch/namespaces/foo).
		parts = parts[1:]
	}
	return len(parts) > 2 && parts[0] == "namespaces" && !namespaceSubresources[parts[2]]
}

// ServeHTTP serves /apis/shadow and everything under it.
func (a *API) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ri, ok := request.RequestInfoFrom(req.Context())
	if !ok {
		responsewriters.ErrorNegotiated(apierrors.NewInternalError(fmt.Errorf("no RequestInfo found in the context")), codecs, schema.GroupVersion{}, w, req)
		return
	}
	if !ri.IsResourceRequest {
		switch strings.TrimSuffix(ri.Path, "/") {
		case "/apis/" + GroupName:
			a.groupHandler.ServeHTTP(w, req)
		case "/apis/" + GroupName + "/" + Version:
			snap := a.current(req.Context())
			if snap == nil {
				a.notReady(w, req)
				return
			}
			a.serveVersionDiscovery(w, req, snap)
		default:
			http.NotFound(w, req)
		}
		return
	}
	gv := schema.GroupVersion{Group: GroupName, Version: ri.APIVersion}
	if ri.APIVersion != Version {
		http.NotFound(w, req)
		return
	}
	snap := a.current(req.Context())
	if snap == nil {
		a.notReady(w, req)
		return
	}
	s := snap.resources[ri.Resource]
	if s == nil {
		responsewriters.ErrorNegotiated(apierrors.NewNotFound(schema.GroupResource{Group: GroupName, Resource: ri.Resource}, ri.Name), codecs, gv, w, req)
		return
	}
	// The routes kube-apiserver has, and no others: a namespaced resource
	// needs a namespace unless listed across all of them; a cluster-scoped
	// one is never under /namespaces/<namespace>/ (the Namespace kind's own
	// /namespaces/<name> is not a namespace of the request, see
	// namespacedPath); POST goes to collections only.
	namespaced := namespacedPath(ri)
	if (s.r.namespaced && !namespaced && !possiblyAcrossAllNamespacesVerbs[ri.Verb]) || (!s.r.namespaced && namespaced) {
		responsewriters.ErrorNegotiated(apierrors.NewNotFound(s.r.groupResource(), ri.Name), codecs, gv, w, req)
		return
	}
	if ri.Verb == "create" && ri.Name != "" {
		// The parent authorized a create of that name; the body may name
		// another object.
		err := &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusMethodNotAllowed, Reason: metav1.StatusReasonMethodNotAllowed,
			Message: fmt.Sprintf("%s %q: an object is created by a POST to its collection, not to its own path", s.r.groupResource(), ri.Name),
			Details: &metav1.StatusDetails{Name: ri.Name, Group: s.r.gvr.Group, Kind: s.r.gvr.Resource},
		}}
		responsewriters.ErrorNegotiated(err, codecs, gv, w, req)
		return
	}
	var handler http.HandlerFunc
	switch {
	case ri.Subresource == "":
		handler = a.serveResource(s, ri, req)
	case ri.Subresource == "scale" && s.scale != nil:
		handler = a.serveScale(s, ri, req)
	default:
		err := &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
			Message: fmt.Sprintf("%s %q has no %q subresource as a template: templates serve only scale, and have no status",
				s.r.groupResource(), ri.Name, ri.Subresource),
			Details: &metav1.StatusDetails{Name: ri.Name, Group: s.r.gvr.Group, Kind: s.r.gvr.Resource},
		}}
		responsewriters.ErrorNegotiated(err, codecs, gv, w, req)
		return
	}
	if handler == nil {
		responsewriters.ErrorNegotiated(apierrors.NewMethodNotSupported(s.r.groupResource(), ri.Verb), codecs, gv, w, req)
		return
	}
	handler = metrics.InstrumentHandlerFunc(strings.ToUpper(ri.Verb), GroupName, Version, ri.Resource, ri.Subresource,
		metrics.CleanScope(ri), metrics.APIServerComponent, false, "", handler)
	handler.ServeHTTP(w, req)
}

// serveVersionDiscovery answers /apis/shadow/v1alpha1. Plain JSON, what
// the parent's aggregator asks for, comes from bytes encoded once per
// change, gzipped when the client accepts it, and written in one piece: the
// aggregator's availability check (5 requests every 30 s) reads only the
// status line and hangs up, and a response still being written when it
// does is logged by the hub as an aborted request. Other media types
// (protobuf, YAML, pretty JSON) go through the negotiating handler.
func (a *API) serveVersionDiscovery(w http.ResponseWriter, req *http.Request, snap *snapshot) {
	options, info, err := negotiation.NegotiateOutputMediaType(req, codecs, negotiation.DefaultEndpointRestrictions)
	if err != nil || info.MediaType != runtime.ContentTypeJSON || options.Pretty || len(snap.discoveryGzip) == 0 {
		a.versionHandler.ServeHTTP(w, req)
		return
	}
	etag := `"` + snap.digest + `"`
	w.Header().Set("Content-Type", runtime.ContentTypeJSON)
	w.Header().Set("ETag", etag)
	w.Header().Set("Vary", "Accept-Encoding")
	if req.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := snap.discoveryJSON
	if acceptsGzip(req) {
		// Small enough to leave in one frame with the headers.
		body = snap.discoveryGzip
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func acceptsGzip(req *http.Request) bool {
	for _, enc := range strings.Split(req.Header.Get("Accept-Encoding"), ",") {
		if name, _, _ := strings.Cut(strings.TrimSpace(enc), ";"); name == "gzip" {
			return true
		}
	}
	return false
}

// startupWait is how long a request that comes before the first discovery
// waits for it, rather than being told to come back (503).
const startupWait = 5 * time.Second

// current is what is served, waiting briefly at startup for the first
// discovery; nil if it has not come.
func (a *API) current(ctx context.Context) *snapshot {
	if s := a.snapshot.Load(); s != nil {
		return s
	}
	timer := time.NewTimer(startupWait)
	defer timer.Stop()
	select {
	case <-a.ready:
	case <-timer.C:
	case <-ctx.Done():
	}
	return a.snapshot.Load()
}

func (a *API) notReady(w http.ResponseWriter, req *http.Request) {
	err := apierrors.NewServiceUnavailable("the shadow API is starting: discovering the parent's resources")
	responsewriters.ErrorNegotiated(err, codecs, schema.GroupVersion{Group: GroupName, Version: Version}, w, req)
}

var (
	jsonPatchTypes = []string{string(types.JSONPatchType), string(types.MergePatchType)}
	allPatchTypes  = []string{string(types.JSONPatchType), string(types.MergePatchType), string(types.StrategicMergePatchType)}
)

func (a *API) serveResource(s *servedResource, ri *request.RequestInfo, req *http.Request) http.HandlerFunc {
	switch ri.Verb {
	case "get":
		return handlers.GetResource(s.storage, s.scope)
	case "list":
		return handlers.ListResource(s.storage, s.storage, s.scope, false, a.opts.MinRequestTimeout)
	case "watch":
		return handlers.ListResource(s.storage, s.storage, s.scope, true, a.opts.MinRequestTimeout)
	case "create":
		return handlers.CreateResource(s.storage, s.scope, nil)
	case "update":
		return handlers.UpdateResource(s.storage, s.scope, nil)
	case "patch":
		if !s.r.builtIn() {
			return handlers.PatchResource(s.storage, s.scope, nil, jsonPatchTypes)
		}
		return handlers.PatchResource(a.patcherFor(s, ri, req), s.scope, nil, allPatchTypes)
	case "delete":
		return handlers.DeleteResource(s.storage, true, s.scope, nil)
	case "deletecollection":
		return handlers.DeleteCollection(s.storage, true, s.scope, nil)
	}
	return nil
}

func (a *API) serveScale(s *servedResource, ri *request.RequestInfo, req *http.Request) http.HandlerFunc {
	switch ri.Verb {
	case "get":
		return handlers.GetResource(s.scale, s.scaleScope)
	case "update":
		return handlers.UpdateResource(s.scale, s.scaleScope, nil)
	case "patch":
		var patcher rest.Patcher = s.scale
		if isStrategicMergePatch(req) {
			patcher = strategicPatcher{Patcher: s.scale, schema: func() (runtime.Object, error) { return builtIn.New(scaleGVK) }}
		}
		return handlers.PatchResource(patcher, s.scaleScope, nil, allPatchTypes)
	}
	return nil
}

func isStrategicMergePatch(req *http.Request) bool {
	mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	return mediaType == string(types.StrategicMergePatchType)
}

// patcherFor is the storage, except for a strategic merge patch: the patch
// handler takes the patch's schema from the patcher's New, which must then
// be the built-in Go type of the version the template is written in.
// Reading the template for its version waits for the real kind's
// permission, as every read does (without it the storage refuses the
// patch anyway).
func (a *API) patcherFor(s *servedResource, ri *request.RequestInfo, req *http.Request) rest.Patcher {
	if !isStrategicMergePatch(req) {
		return s.storage
	}
	gvk := s.r.gvk()
	namespace := s.r.templateNamespace(ri.Namespace)
	if len(s.r.versions) > 1 && s.r.authorizeRealKind(req.Context(), a.realKind, "patch", "", namespace, ri.Name, ri.Name) == nil {
		// The template may be written in another version of the group.
		if m, err := a.manifests.Get(req.Context(), s.r.manifestName(namespace, ri.Name), metav1.GetOptions{}); err == nil {
			if v := m.Labels[appsv1alpha1.LabelConfigVersion]; s.r.AcceptsGroupVersion(schema.GroupVersion{Group: gvk.Group, Version: v}) {
				gvk.Version = v
			}
		}
	}
	return strategicPatcher{Patcher: s.storage, schema: func() (runtime.Object, error) { return builtIn.New(gvk) }}
}

// strategicPatcher is a storage whose New returns the typed object that
// gives a strategic merge patch its schema (patch strategies and merge keys).
type strategicPatcher struct {
	rest.Patcher
	schema func() (runtime.Object, error)
}

func (p strategicPatcher) New() runtime.Object {
	obj, err := p.schema()
	if err != nil {
		return p.Patcher.New()
	}
	return obj
}
