package shadow

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/request"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

var manifestsGVR = appsv1alpha1.SchemeGroupVersion.WithResource("manifests")

// newManifestsFake is the generated fake with what the parent's apiserver
// adds: uids, creation timestamps, generations, resourceVersions, and
// optimistic concurrency on update and delete.
func newManifestsFake() *clusternetfake.Clientset {
	f := clusternetfake.NewClientset()
	var rv atomic.Int64
	rv.Store(100)
	next := func() string { return strconv.FormatInt(rv.Add(1), 10) }
	tracker := f.Tracker()
	f.PrependReactor("create", "manifests", func(action clienttesting.Action) (bool, runtime.Object, error) {
		m := action.(clienttesting.CreateAction).GetObject().(*appsv1alpha1.Manifest).DeepCopy()
		if m.ResourceVersion != "" {
			return true, nil, apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
		}
		m.UID = types.UID(fmt.Sprintf("uid-%s", next()))
		m.CreationTimestamp = metav1.NewTime(time.Date(2021, 8, 7, 8, 50, 56, 0, time.UTC))
		m.Generation = 1
		m.ResourceVersion = next()
		if err := tracker.Create(manifestsGVR, m, m.Namespace); err != nil {
			return true, nil, err
		}
		return true, m.DeepCopy(), nil
	})
	f.PrependReactor("update", "manifests", func(action clienttesting.Action) (bool, runtime.Object, error) {
		m := action.(clienttesting.UpdateAction).GetObject().(*appsv1alpha1.Manifest).DeepCopy()
		obj, err := tracker.Get(manifestsGVR, m.Namespace, m.Name)
		if err != nil {
			return true, nil, err
		}
		old := obj.(*appsv1alpha1.Manifest)
		if m.ResourceVersion != "" && m.ResourceVersion != old.ResourceVersion {
			return true, nil, apierrors.NewConflict(manifestsGVR.GroupResource(), m.Name, fmt.Errorf("the object has been modified"))
		}
		m.UID, m.CreationTimestamp, m.Generation = old.UID, old.CreationTimestamp, old.Generation
		if string(m.Template.Raw) != string(old.Template.Raw) {
			m.Generation++
		}
		m.ResourceVersion = next()
		if err := tracker.Update(manifestsGVR, m, m.Namespace); err != nil {
			return true, nil, err
		}
		return true, m.DeepCopy(), nil
	})
	f.PrependReactor("delete", "manifests", func(action clienttesting.Action) (bool, runtime.Object, error) {
		d := action.(clienttesting.DeleteAction)
		obj, err := tracker.Get(manifestsGVR, d.GetNamespace(), d.GetName())
		if err != nil {
			return true, nil, err
		}
		m := obj.(*appsv1alpha1.Manifest)
		if p := d.GetDeleteOptions().Preconditions; p != nil {
			if (p.UID != nil && *p.UID != m.UID) || (p.ResourceVersion != nil && *p.ResourceVersion != m.ResourceVersion) {
				return true, nil, apierrors.NewConflict(manifestsGVR.GroupResource(), m.Name, fmt.Errorf("precondition failed"))
			}
		}
		if len(m.Finalizers) > 0 {
			m = m.DeepCopy()
			now := metav1.Now()
			m.DeletionTimestamp = &now
			m.ResourceVersion = next()
			return true, nil, tracker.Update(manifestsGVR, m, m.Namespace)
		}
		return true, nil, tracker.Delete(manifestsGVR, d.GetNamespace(), d.GetName())
	})
	return f
}

// fakeValidator stands in for the parent's dry run: it refuses what
// refuse says, and records each call and the user it was for.
type fakeValidator struct {
	mu      sync.Mutex
	calls   []*unstructured.Unstructured
	authors []string
	refuse  func(u *unstructured.Unstructured) error
}

func (v *fakeValidator) validate(ctx context.Context, _ *resource, u *unstructured.Unstructured, _ string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, u.DeepCopy())
	author := "<none>"
	if who, ok := request.UserFrom(ctx); ok {
		author = who.GetName()
	}
	v.authors = append(v.authors, author)
	if v.refuse != nil {
		return v.refuse(u)
	}
	return nil
}

// authorizerFunc lets a test decide real-kind authorization.
type authorizerFunc func(authorizer.Attributes) authorizer.Decision

func (f authorizerFunc) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	return f(a), "", nil
}

// testAPI is the shadow API over fakes, served by an httptest server that
// parses request info as the hub's filter chain does.
type testAPI struct {
	*API
	manifests *clusternetfake.Clientset
	validator *fakeValidator
	server    *httptest.Server
}

// apiResource is a discovery entry for the test's parent.
func apiResource(name, kind string, namespaced bool, shortNames ...string) metav1.APIResource {
	return metav1.APIResource{Name: name, SingularName: "", Namespaced: namespaced, Kind: kind,
		Verbs: metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}, ShortNames: shortNames}
}

func subresource(name, kind string, namespaced bool) metav1.APIResource {
	return metav1.APIResource{Name: name, Namespaced: namespaced, Kind: kind, Verbs: metav1.Verbs{"get", "patch", "update"}}
}

// testParent is a small parent: core (with two cluster-scoped kinds,
// Namespace and PersistentVolume), apps, events.k8s.io, a CRD group and a
// Clusternet group.
func testParent() discovered {
	group := func(name string, versions ...string) metav1.APIGroup {
		g := metav1.APIGroup{Name: name}
		for _, v := range versions {
			g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: schema.GroupVersion{Group: name, Version: v}.String(), Version: v})
		}
		g.PreferredVersion = g.Versions[0]
		return g
	}
	return discovered{
		groups: []metav1.APIGroup{
			group("", "v1"), group("apps", "v1"), group("events.k8s.io", "v1"), group("autoscaling", "v2", "v1"),
			group("authentication.k8s.io", "v1"), group("apps.clusternet.io", "v1alpha1"), group("example.com", "v1"),
		},
		resources: map[schema.GroupVersion][]metav1.APIResource{
			{Version: "v1"}: {
				apiResource("namespaces", "Namespace", false, "ns"), subresource("namespaces/status", "Namespace", false),
				apiResource("persistentvolumes", "PersistentVolume", false, "pv"), subresource("persistentvolumes/status", "PersistentVolume", false),
				apiResource("services", "Service", true, "svc"), subresource("services/status", "Service", true),
				apiResource("configmaps", "ConfigMap", true, "cm"), apiResource("events", "Event", true, "ev"),
				apiResource("secrets", "Secret", true),
				apiResource("replicationcontrollers", "ReplicationController", true, "rc"),
				subresource("replicationcontrollers/scale", "Scale", true),
				{Name: "componentstatuses", Kind: "ComponentStatus", Verbs: metav1.Verbs{"get", "list"}},
			},
			{Group: "apps", Version: "v1"}: {
				apiResource("deployments", "Deployment", true, "deploy"), subresource("deployments/status", "Deployment", true),
				subresource("deployments/scale", "Scale", true),
			},
			{Group: "events.k8s.io", Version: "v1"}:         {apiResource("events", "Event", true, "ev")},
			{Group: "autoscaling", Version: "v2"}:           {apiResource("horizontalpodautoscalers", "HorizontalPodAutoscaler", true, "hpa")},
			{Group: "autoscaling", Version: "v1"}:           {apiResource("horizontalpodautoscalers", "HorizontalPodAutoscaler", true, "hpa")},
			{Group: "authentication.k8s.io", Version: "v1"}: {{Name: "tokenreviews", Kind: "TokenReview", Verbs: metav1.Verbs{"create"}}},
			{Group: "apps.clusternet.io", Version: "v1alpha1"}: {
				apiResource("manifests", "Manifest", true),
			},
			{Group: "example.com", Version: "v1"}: {
				apiResource("widgets", "Widget", true), subresource("widgets/scale", "Scale", true),
			},
		},
	}
}

// widgetScale is the CRD's scale subresource in the test parent.
func widgetScale(group, resource, version string) (*scalePaths, bool) {
	if group == "example.com" && resource == "widgets" {
		return &scalePaths{replicas: []string{"spec", "size"}}, true
	}
	return nil, false
}

type testOption func(*testAPI)

// withRealKind turns real-kind authorization on with a.
func withRealKind(a authorizer.UnconditionalAuthorizer) testOption {
	return func(t *testAPI) { t.realKind = a }
}

func newTestAPI(t *testing.T, opts ...testOption) *testAPI {
	t.Helper()
	manifests := newManifestsFake()
	kube := kubefake.NewClientset()
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	a := newAPI(Options{MinRequestTimeout: time.Minute}, clients{
		manifests:  manifests.AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace),
		namespaces: kube.CoreV1().Namespaces(),
		dynamic:    dyn,
		discovery:  kube.Discovery(),
	})
	v := &fakeValidator{}
	a.validator = v
	a.equivalent = runtime.NewEquivalentResourceRegistry()
	ta := &testAPI{API: a, manifests: manifests, validator: v}
	for _, o := range opts {
		o(ta)
	}
	if err := a.apply(context.Background(), buildResources(testParent(), widgetScale)); err != nil {
		t.Fatal(err)
	}
	handler := genericapifilters.WithRequestInfo(genericapifilters.WithAuditInit(withUser(genericapifilters.WithWarningRecorder(a))), testResolver)
	ta.server = httptest.NewServer(handler)
	t.Cleanup(ta.server.Close)
	return ta
}

// testResolver parses request info as the hub's filter chain does.
var testResolver = &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}

// requestInfo is what testResolver makes of a GET of path.
func requestInfo(t *testing.T, path string) *request.RequestInfo {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ri, err := testResolver.NewRequestInfo(req)
	if err != nil {
		t.Fatal(err)
	}
	return ri
}

// withUser authenticates every request as "alice" (the name a test's
// authorizer sees), or as the X-Test-User header says.
func withUser(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name := req.Header.Get("X-Test-User")
		if name == "" {
			name = "alice"
		}
		h.ServeHTTP(w, req.WithContext(request.WithUser(req.Context(), &user.DefaultInfo{Name: name})))
	})
}

// storedManifest reads the Manifest for a template straight from the fake.
func (ta *testAPI) storedManifest(t *testing.T, group, kind, namespace, name string) *appsv1alpha1.Manifest {
	t.Helper()
	m, err := ta.manifests.AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace).Get(context.Background(),
		appsv1alpha1.ManifestName(group, kind, namespace, name), metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return m
}
