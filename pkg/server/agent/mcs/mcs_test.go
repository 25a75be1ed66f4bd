package mcs

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"github.com/clusternet/clusternet/pkg/mcs"
)

func indexer(t *testing.T, objs ...any) cache.Indexer {
	t.Helper()
	i := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, o := range objs {
		if err := i.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	return i
}

func service(typ corev1.ServiceType) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{Type: typ, ClusterIP: "10.0.0.1"}}
}

func kcmSlice(name string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name,
		Labels: map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4}
}

// userSlice is a slice labelled with web's name by someone other than
// kube-controller-manager.
func userSlice(name string) *discoveryv1.EndpointSlice {
	s := kcmSlice(name)
	s.Labels[discoveryv1.LabelManagedBy] = "someone"
	return s
}

// fqdnSlice is one of kube-controller-manager's, of addressType FQDN.
func fqdnSlice(name string) *discoveryv1.EndpointSlice {
	s := kcmSlice(name)
	s.AddressType = discoveryv1.AddressTypeFQDN
	return s
}

// status is a condition's "Status/Reason".
func status(c metav1.Condition) string { return string(c.Status) + "/" + c.Reason }

func TestExportConditions(t *testing.T) {
	web := mcs.ServiceKey{Namespace: "shop", Name: "web"}
	for _, tc := range []struct {
		name       string
		objects    []any
		syncErr    error
		wantSlices []string
		valid      string
		ready      string
	}{
		{name: "no Service", objects: []any{kcmSlice("web-1")},
			valid: "False/NoService", ready: "False/Failed"},
		{name: "an ExternalName Service", objects: []any{service(corev1.ServiceTypeExternalName), kcmSlice("web-1")},
			valid: "False/InvalidServiceType", ready: "False/Failed"},
		{name: "a ClusterIP Service: each of kube-controller-manager's IP slices", objects: []any{service(corev1.ServiceTypeClusterIP),
			kcmSlice("web-1"), kcmSlice("web-2"), userSlice("web-forged"), fqdnSlice("web-fqdn")},
			wantSlices: []string{"cluster-ns/shop.web-1", "cluster-ns/shop.web-2"}, valid: "True/Valid", ready: "True/Exported"},
		{name: "writing to the parent failed", objects: []any{service(corev1.ServiceTypeClusterIP)}, syncErr: errors.New("forbidden"),
			valid: "True/Valid", ready: "False/Pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var svcs, eps []any
			for _, o := range tc.objects {
				if _, ok := o.(*corev1.Service); ok {
					svcs = append(svcs, o)
				} else {
					eps = append(eps, o)
				}
			}
			c := &Controller{cfg: Config{Namespace: "cluster-ns"},
				services:    corelisters.NewServiceLister(indexer(t, svcs...)),
				childSlices: discoverylisters.NewEndpointSliceLister(indexer(t, eps...))}
			want, valid := c.exportedSlices(web)
			var got []string
			for _, s := range want {
				got = append(got, s.Namespace+"/"+s.Name)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.wantSlices, got); diff != "" {
				t.Errorf("slices (-want +got):\n%s", diff)
			}
			if got := status(valid); got != tc.valid {
				t.Errorf("Valid %s, want %s (%s)", got, tc.valid, valid.Message)
			}
			if got := status(c.ready(valid, tc.syncErr, 1)); got != tc.ready {
				t.Errorf("Ready %s, want %s", got, tc.ready)
			}
		})
	}
}

func TestConflictFromTheHubsReport(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "cluster-ns", Name: mcs.ConflictsConfigMap},
		Data: map[string]string{"shop.web": `{"conflict":true,"reason":"PortConflict","message":"m"}`, "shop.bad": "{"}}
	c := &Controller{cfg: Config{Namespace: "cluster-ns"}, conflicts: corelisters.NewConfigMapLister(indexer(t, cm))}
	got, ok := c.conflict(mcs.ServiceKey{Namespace: "shop", Name: "web"})
	if want := (mcs.Conflict{Conflict: true, Reason: mcsv1alpha1.ServiceExportReasonPortConflict, Message: "m"}); !ok || got != want {
		t.Errorf("shop/web: %+v %t, want %+v", got, ok, want)
	}
	for _, name := range []string{"bad", "unreported"} {
		if got, ok := c.conflict(mcs.ServiceKey{Namespace: "shop", Name: name}); ok {
			t.Errorf("shop/%s: %+v, want no report", name, got)
		}
	}
	if diff := cmp.Diff([]string{"shop/bad", "shop/web"}, slices.Sorted(slices.Values(mcs.ReportedServices(cm)))); diff != "" {
		t.Errorf("queued (-want +got):\n%s", diff)
	}
}

func TestReadyNamesTheFixWhenTheParentRefuses(t *testing.T) {
	c := &Controller{cfg: Config{Namespace: "cluster-ns"}}
	valid := metav1.Condition{Status: metav1.ConditionTrue}
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"}, "x", errors.New("no"))
	got := c.ready(valid, forbidden, 1)
	if status(got) != "False/Pending" || !strings.Contains(got.Message, "turn the MultiClusterService feature gate on in the hub") ||
		!strings.Contains(got.Message, "RoleBinding clusternet-agent-mcs") {
		t.Errorf("Ready %s: %s", status(got), got.Message)
	}
}

func TestGateOffRemovesImportedCopies(t *testing.T) {
	imported := kcmSlice("web-imported")
	imported.Labels = map[string]string{discoveryv1.LabelManagedBy: mcs.ManagedByImport}
	child := fake.NewClientset(imported, kcmSlice("web-1"))
	if err := RemoveImported(context.Background(), child); err != nil {
		t.Fatal(err)
	}
	list, err := child.DiscoveryV1().EndpointSlices("shop").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "web-1" {
		t.Errorf("left %v, want kube-controller-manager's web-1 only", list.Items)
	}
}
