package shadow

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// stubDiscovery is a parent whose discovery a test changes as it goes.
type stubDiscovery struct {
	discovery.DiscoveryInterface
	mu     sync.Mutex
	d      discovered
	failed map[schema.GroupVersion]error
}

func (s *stubDiscovery) set(d discovered, failed map[schema.GroupVersion]error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d, s.failed = d, failed
}

func (s *stubDiscovery) ServerGroupsAndResources() ([]*metav1.APIGroup, []*metav1.APIResourceList, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var groups []*metav1.APIGroup
	var lists []*metav1.APIResourceList
	for i := range s.d.groups {
		groups = append(groups, &s.d.groups[i])
	}
	for gv, resources := range s.d.resources {
		if _, failed := s.failed[gv]; failed {
			continue
		}
		lists = append(lists, &metav1.APIResourceList{GroupVersion: gv.String(), APIResources: resources})
	}
	if len(s.failed) > 0 {
		return groups, lists, &discovery.ErrGroupDiscoveryFailed{Groups: s.failed}
	}
	return groups, lists, nil
}

func withGadgets(d discovered) discovered {
	out := discovered{groups: append([]metav1.APIGroup{}, d.groups...), resources: map[schema.GroupVersion][]metav1.APIResource{}}
	for gv, l := range d.resources {
		out.resources[gv] = l
	}
	gv := schema.GroupVersion{Group: "toys.example.com", Version: "v1"}
	out.groups = append(out.groups, metav1.APIGroup{Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{{GroupVersion: gv.String(), Version: "v1"}},
		PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: "v1"}})
	out.resources[gv] = []metav1.APIResource{apiResource("gadgets", "Gadget", false), subresource("gadgets/scale", "Scale", false)}
	return out
}

func crdObject(group, plural string, established bool) *unstructured.Unstructured {
	status := "False"
	if established {
		status = "True"
	}
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]interface{}{"name": plural + "." + group},
		"spec": map[string]interface{}{"group": group, "names": map[string]interface{}{"plural": plural},
			"versions": []interface{}{map[string]interface{}{"name": "v1", "served": true, "storage": true,
				"subresources": map[string]interface{}{"scale": map[string]interface{}{"specReplicasPath": ".spec.count", "labelSelectorPath": ".status.selector"}}}}},
		"status": map[string]interface{}{"conditions": []interface{}{map[string]interface{}{"type": "Established", "status": status}}},
	}}
}

// TestFollowsCRDs runs the discovery loop: a CRD established in the parent
// is served once discovery shows it, and dropped once it is deleted.
func TestFollowsCRDs(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	apiService := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": map[string]interface{}{"name": APIServiceName}}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{crdGVR: "CustomResourceDefinitionList", apiServiceGVR: "APIServiceList"}, apiService)
	disco := &stubDiscovery{}
	disco.set(testParent(), nil)
	a := newAPI(Options{ResyncPeriod: time.Hour}, clients{
		manifests:  clusternetfake.NewClientset().AppsV1alpha1().Manifests("clusternet-reserved"),
		namespaces: kubefake.NewClientset().CoreV1().Namespaces(),
		dynamic:    dyn,
		discovery:  disco,
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	serves := func(name string, want bool) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			s := a.snapshot.Load()
			return s != nil && (s.resources[name] != nil) == want, nil
		})
		if err != nil {
			t.Fatalf("waiting for %s to be served=%v: %v", name, want, err)
		}
	}
	serves("deployments", true)
	serves("gadgets", false)

	// Discovery shows the CRD only after it is established; the loop waits.
	if _, err := dyn.Resource(crdGVR).Create(ctx, crdObject("toys.example.com", "gadgets", true), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	disco.set(withGadgets(testParent()), nil)
	// A sync can see gadgets in discovery before the CRD informer has the
	// CRD, and serve them with the default scale paths until the CRD's own
	// event syncs again: wait for the CRD's.
	var scale *scalePaths
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		s := a.snapshot.Load()
		if s == nil || s.resources["gadgets"] == nil {
			return false, nil
		}
		scale = s.resources["gadgets"].r.scale
		return scale != nil && len(scale.replicas) > 1 && scale.replicas[1] == "count" && scale.selector == nil, nil
	})
	if err != nil {
		t.Errorf("gadgets scale = %+v, want the CRD's specReplicasPath and no selector (it is in status): %v", scale, err)
	}
	// The APIService is nudged after the snapshot is served, so poll.
	var annotated string
	err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := dyn.Resource(apiServiceGVR).Get(ctx, APIServiceName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		annotated = got.GetAnnotations()[ResourcesAnnotation]
		return annotated == a.snapshot.Load().digest, nil
	})
	if err != nil {
		t.Errorf("APIService annotation %q, want the digest %q: %v", annotated, a.snapshot.Load().digest, err)
	}

	if err := dyn.Resource(crdGVR).Delete(ctx, "gadgets.toys.example.com", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	disco.set(testParent(), nil)
	serves("gadgets", false)
}

func TestSyncWaitsForDiscoveryAndKeepsFailedGroups(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	disco := &stubDiscovery{}
	disco.set(testParent(), nil)
	a := newAPI(Options{}, clients{dynamic: dyn, discovery: disco,
		manifests: clusternetfake.NewClientset().AppsV1alpha1().Manifests("clusternet-reserved")})
	if err := a.sync(ctx); err != nil {
		t.Fatal(err)
	}

	// example.com's API is down: what it served stays served.
	disco.set(testParent(), map[schema.GroupVersion]error{{Group: "example.com", Version: "v1"}: errors.New("503")})
	if err := a.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if a.snapshot.Load().resources["widgets"] == nil {
		t.Error("widgets dropped while their group's discovery failed")
	}

	// A CRD the parent has established but discovery does not show yet.
	a.crds = &fakeLister{objs: []runtime.Object{crdObject("toys.example.com", "gadgets", true), crdObject("toys.example.com", "pending", false)}}
	disco.set(testParent(), nil)
	if err := a.sync(ctx); err == nil {
		t.Error("sync settled while discovery lacks an established CRD")
	}
	disco.set(withGadgets(testParent()), nil)
	if err := a.sync(ctx); err != nil {
		t.Errorf("sync = %v once discovery shows the CRD", err)
	}

	// A deleted CRD that discovery still shows.
	a.crds = &fakeLister{}
	a.crdChanged(crdObject("toys.example.com", "gadgets", true), true)
	if err := a.sync(ctx); err == nil {
		t.Error("sync settled while discovery still shows a deleted CRD")
	}
	disco.set(testParent(), nil)
	if err := a.sync(ctx); err != nil {
		t.Errorf("sync = %v once discovery dropped the CRD", err)
	}
}

// fakeLister lists fixed CRDs.
type fakeLister struct {
	objs []runtime.Object
}

func (l *fakeLister) List(labels.Selector) ([]runtime.Object, error) { return l.objs, nil }

func (l *fakeLister) Get(name string) (runtime.Object, error) {
	for _, o := range l.objs {
		if o.(*unstructured.Unstructured).GetName() == name {
			return o, nil
		}
	}
	return nil, apierrors.NewNotFound(crdGVR.GroupResource(), name)
}

func (l *fakeLister) ByNamespace(string) cache.GenericNamespaceLister { return nil }
