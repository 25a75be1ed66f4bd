package mcs

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func port(name string, n int32) mcsv1alpha1.ServicePort {
	return mcsv1alpha1.ServicePort{Name: name, Protocol: corev1.ProtocolTCP, Port: n}
}

func export(cluster string, age time.Duration, typ mcsv1alpha1.ServiceImportType, ports ...mcsv1alpha1.ServicePort) Export {
	return Export{Cluster: cluster, Since: metav1.NewTime(t0.Add(age)), Properties: ExportedProperties{Type: typ, Ports: ports}}
}

func TestResolve(t *testing.T) {
	setIP, headless := mcsv1alpha1.ClusterSetIP, mcsv1alpha1.Headless
	for _, tc := range []struct {
		name      string
		exports   []Export
		wantType  mcsv1alpha1.ServiceImportType
		wantPorts []mcsv1alpha1.ServicePort
		reason    mcsv1alpha1.ServiceExportConditionReason
		message   []string // substrings
	}{
		{
			name:     "one export",
			exports:  []Export{export("a", 0, setIP, port("http", 80))},
			wantType: setIP, wantPorts: []mcsv1alpha1.ServicePort{port("http", 80)},
			reason: mcsv1alpha1.ServiceExportReasonNoConflicts,
		},
		{
			name:     "distinct ports are a union, in the oldest export's order first",
			exports:  []Export{export("b", time.Minute, setIP, port("grpc", 9090)), export("a", 0, setIP, port("http", 80))},
			wantType: setIP, wantPorts: []mcsv1alpha1.ServicePort{port("http", 80), port("grpc", 9090)},
			reason: mcsv1alpha1.ServiceExportReasonNoConflicts,
		},
		{
			name:     "a type conflict goes to the oldest export",
			exports:  []Export{export("new", time.Hour, headless), export("old", 0, setIP)},
			wantType: setIP,
			reason:   mcsv1alpha1.ServiceExportReasonTypeConflict,
			message:  []string{"type: cluster(s) new", "cluster old holds the oldest export (2026-01-01T00:00:00Z)"},
		},
		{
			name:     "a port named alike with another number takes the oldest export's",
			exports:  []Export{export("a", 0, setIP, port("http", 80)), export("b", time.Second, setIP, port("http", 8080))},
			wantType: setIP, wantPorts: []mcsv1alpha1.ServicePort{port("http", 80)},
			reason:  mcsv1alpha1.ServiceExportReasonPortConflict,
			message: []string{"ports: cluster(s) b", "cluster a holds the oldest export"},
		},
		{
			name:     "the same number and protocol named otherwise is the same port",
			exports:  []Export{export("a", 0, setIP, port("http", 80)), export("b", time.Second, setIP, port("web", 80))},
			wantType: setIP, wantPorts: []mcsv1alpha1.ServicePort{port("http", 80)},
			reason: mcsv1alpha1.ServiceExportReasonPortConflict,
		},
		{
			name: "an unset protocol is TCP",
			exports: []Export{export("a", 0, setIP, port("http", 80)),
				export("b", time.Second, setIP, mcsv1alpha1.ServicePort{Name: "http", Port: 80})},
			wantType: setIP, wantPorts: []mcsv1alpha1.ServicePort{port("http", 80)},
			reason: mcsv1alpha1.ServiceExportReasonNoConflicts,
		},
		{
			name:     "an app protocol differing is a conflict",
			exports:  []Export{export("a", 0, setIP, port("http", 80)), export("b", time.Second, setIP, mcsv1alpha1.ServicePort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, AppProtocol: ptr.To("h2c")})},
			wantType: setIP, wantPorts: []mcsv1alpha1.ServicePort{port("http", 80)},
			reason: mcsv1alpha1.ServiceExportReasonPortConflict,
		},
		{
			name:     "a tie in age goes to the cluster name first in order",
			exports:  []Export{export("zeta", 0, headless), export("alpha", 0, setIP)},
			wantType: setIP,
			reason:   mcsv1alpha1.ServiceExportReasonTypeConflict,
			message:  []string{"type: cluster(s) zeta", "cluster alpha holds"},
		},
		{
			name:   "no exports",
			reason: mcsv1alpha1.ServiceExportReasonNoConflicts,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Resolve(tc.exports)
			if got.Properties.Type != tc.wantType {
				t.Errorf("type %q, want %q", got.Properties.Type, tc.wantType)
			}
			if diff := cmp.Diff(tc.wantPorts, got.Properties.Ports); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
			if got.Conflict.Reason != tc.reason {
				t.Errorf("reason %q, want %q (message %q)", got.Conflict.Reason, tc.reason, got.Conflict.Message)
			}
			if want := tc.reason != mcsv1alpha1.ServiceExportReasonNoConflicts; got.Conflict.Conflict != want {
				t.Errorf("conflict %t, want %t", got.Conflict.Conflict, want)
			}
			for _, m := range tc.message {
				if !strings.Contains(got.Conflict.Message, m) {
					t.Errorf("message %q does not say %q", got.Conflict.Message, m)
				}
			}
		})
	}
}

func TestConflictCondition(t *testing.T) {
	got := Conflict{Conflict: true, Reason: mcsv1alpha1.ServiceExportReasonPortConflict, Message: "m"}.Condition(3)
	want := metav1.Condition{Type: "Conflict", Status: metav1.ConditionTrue, Reason: "PortConflict", Message: "m", ObservedGeneration: 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := (Conflict{Reason: mcsv1alpha1.ServiceExportReasonNoConflicts}).Condition(1).Status; got != metav1.ConditionFalse {
		t.Errorf("no conflict: status %q, want False", got)
	}
}

func TestPropertiesOf(t *testing.T) {
	svc := func(typ corev1.ServiceType, clusterIP string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
			Spec: corev1.ServiceSpec{Type: typ, ClusterIP: clusterIP, Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}}}
	}
	for _, tc := range []struct {
		name    string
		svc     *corev1.Service
		want    ExportedProperties
		wantErr string
	}{
		{name: "ClusterIP", svc: svc(corev1.ServiceTypeClusterIP, "10.0.0.1"),
			want: ExportedProperties{Type: mcsv1alpha1.ClusterSetIP, Ports: []mcsv1alpha1.ServicePort{port("http", 80)}}},
		{name: "headless", svc: svc(corev1.ServiceTypeClusterIP, corev1.ClusterIPNone),
			want: ExportedProperties{Type: mcsv1alpha1.Headless, Ports: []mcsv1alpha1.ServicePort{port("http", 80)}}},
		{name: "ExternalName", svc: svc(corev1.ServiceTypeExternalName, ""),
			wantErr: `service default/web has type "ExternalName", which KEP-1645 does not export: export a ClusterIP or headless Service`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PropertiesOf(tc.svc)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			back, err := DecodeProperties(got.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, back); diff != "" {
				t.Errorf("encoded and decoded (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodePropertiesRefuses(t *testing.T) {
	for in, want := range map[string]string{
		`{`:                       "annotation mcs.clusternet.io/exported-service: unexpected end of JSON input",
		`{"type":"LoadBalancer"}`: `annotation mcs.clusternet.io/exported-service: type "LoadBalancer" is neither "ClusterSetIP" nor "Headless"`,
		`{}`:                      `annotation mcs.clusternet.io/exported-service: type "" is neither "ClusterSetIP" nor "Headless"`,
	} {
		if _, err := DecodeProperties(in); err == nil || err.Error() != want {
			t.Errorf("DecodeProperties(%s): %v, want %q", in, err, want)
		}
	}
}

// kcmSlice is a slice as kube-controller-manager makes it for Service web.
func kcmSlice(name string, ips ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{
			discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for _, ip := range ips {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			NodeName:   ptr.To("kwok-node-0"),
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-" + ip},
			Hints:      &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "z"}}},
		})
	}
	return s
}

func TestSliceRendering(t *testing.T) {
	svc := ServiceKey{Namespace: "default", Name: "web"}
	props := ExportedProperties{Type: mcsv1alpha1.ClusterSetIP, Ports: []mcsv1alpha1.ServicePort{port("http", 80)}}
	child := kcmSlice("web-abcde", "10.1.0.1")
	ready := []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}}

	exported := ExportedSlice(child, svc, props, "clusternet-a")
	wantExported := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "clusternet-a", Name: "default.web-abcde",
			Labels: map[string]string{
				"multicluster.kubernetes.io/service-name":                "web",
				"services.clusternet.io/multi-cluster-service-namespace": "default",
				"endpointslice.kubernetes.io/managed-by":                 "export.mcs.clusternet.io",
			},
			Annotations: map[string]string{AnnotationExport: `{"type":"ClusterSetIP","ports":[{"name":"http","protocol":"TCP","port":80}]}`}},
		AddressType: discoveryv1.AddressTypeIPv4, Endpoints: ready, Ports: child.Ports,
	}
	if diff := cmp.Diff(wantExported, exported); diff != "" {
		t.Errorf("exported slice (-want +got):\n%s", diff)
	}

	t.Run("the imported slice's source cluster is the hub's, not a label of the exporter's", func(t *testing.T) {
		forged := exported.DeepCopy()
		forged.Labels[mcsv1alpha1.LabelSourceCluster] = "cluster-b"
		forged.Endpoints[0].TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: "smuggled"}
		imported := ImportedSlice(forged, svc, "cluster-a", "clusternet-b")
		want := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: "clusternet-b", Name: "web-" + hash("cluster-a", "default.web-abcde"),
				Labels: map[string]string{
					"multicluster.kubernetes.io/service-name":                "web",
					"multicluster.kubernetes.io/source-cluster":              "cluster-a",
					"services.clusternet.io/multi-cluster-service-namespace": "default",
					"endpointslice.kubernetes.io/managed-by":                 "mcs-controller.clusternet.io",
				}},
			AddressType: discoveryv1.AddressTypeIPv4, Endpoints: ready, Ports: child.Ports,
		}
		if diff := cmp.Diff(want, imported); diff != "" {
			t.Errorf("imported slice (-want +got):\n%s", diff)
		}

		si := &mcsv1alpha1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "si-uid"}}
		got := ChildSlice(imported, si)
		wantChild := want.DeepCopy()
		wantChild.Namespace = "default"
		wantChild.OwnerReferences = []metav1.OwnerReference{{APIVersion: "multicluster.x-k8s.io/v1alpha1", Kind: "ServiceImport", Name: "web", UID: "si-uid",
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(false)}}
		if diff := cmp.Diff(wantChild, got); diff != "" {
			t.Errorf("child slice (-want +got):\n%s", diff)
		}
	})

	t.Run("a name too long for a slice is hashed", func(t *testing.T) {
		long := kcmSlice(strings.Repeat("x", 250))
		if got := ExportedSlice(long, svc, props, "ns").Name; got != "default."+hash(long.Name) {
			t.Errorf("name %q", got)
		}
	})
}

func TestSyncSlices(t *testing.T) {
	ctx := context.Background()
	keep := kcmSlice("keep", "10.0.0.1")
	change := kcmSlice("change", "10.0.0.2")
	stale := kcmSlice("stale", "10.0.0.3")
	client := fake.NewClientset(keep, change, stale)
	changed := kcmSlice("change", "10.0.0.2", "10.0.0.4")
	added := kcmSlice("added", "10.0.0.5")
	if err := SyncSlices(ctx, client.DiscoveryV1(), []*discoveryv1.EndpointSlice{keep, change, stale},
		[]*discoveryv1.EndpointSlice{keep, changed, added}); err != nil {
		t.Fatal(err)
	}
	list, err := client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, s := range list.Items {
		got[s.Name] = len(s.Endpoints)
	}
	if diff := cmp.Diff(map[string]int{"keep": 1, "change": 2, "added": 1}, got); diff != "" {
		t.Errorf("slices and their endpoint counts (-want +got):\n%s", diff)
	}
	var writes []string
	for _, a := range client.Actions() {
		if a.GetVerb() != "list" && a.GetVerb() != "watch" {
			writes = append(writes, a.GetVerb())
		}
	}
	if diff := cmp.Diff([]string{"update", "create", "delete"}, writes); diff != "" {
		t.Errorf("writes (-want +got): %s (an unchanged slice is not written)", diff)
	}
}

func TestImportedSliceIsBounded(t *testing.T) {
	svc := ServiceKey{Namespace: "default", Name: "web"}
	exported := kcmSlice("web-1")
	for i := range MaxEndpointsPerSlice + 5 {
		exported.Endpoints = append(exported.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.0.%d.%d", i/256, i%256), "10.99.0.1"}})
	}
	got := ImportedSlice(exported, svc, "a", "ns-b")
	if len(got.Endpoints) != MaxEndpointsPerSlice {
		t.Errorf("%d endpoints copied, want %d", len(got.Endpoints), MaxEndpointsPerSlice)
	}
	for _, e := range got.Endpoints {
		if len(e.Addresses) != 1 || e.Addresses[0] == "10.99.0.1" {
			t.Fatalf("endpoint addresses %v, want only the first", e.Addresses)
		}
	}
	if len(exported.Endpoints[0].Addresses) != 2 {
		t.Errorf("the exported slice was modified: %v", exported.Endpoints[0].Addresses)
	}
}

func TestFQDNSlicesAreNotCarried(t *testing.T) {
	svc := ServiceKey{Namespace: "default", Name: "web"}
	fqdn := kcmSlice("web-1", "db.internal")
	fqdn.AddressType = discoveryv1.AddressTypeFQDN
	if got := ExportedSlice(fqdn, svc, ExportedProperties{Type: mcsv1alpha1.ClusterSetIP}, "ns-a"); got != nil {
		t.Errorf("exported an FQDN slice: %+v", got)
	}
	if got := ImportedSlice(fqdn, svc, "a", "ns-b"); got != nil {
		t.Errorf("imported an FQDN slice: %+v", got)
	}
	v6 := kcmSlice("web-2", "fd00::1")
	v6.AddressType = discoveryv1.AddressTypeIPv6
	if ImportedSlice(v6, svc, "a", "ns-b") == nil {
		t.Error("an IPv6 slice was dropped")
	}
}

func TestSyncSlicesRefusesACollision(t *testing.T) {
	a, b := kcmSlice("same", "10.0.0.1"), kcmSlice("same", "10.0.0.2")
	a.Labels = importLabels("web", "default", "cluster-a")
	b.Labels = importLabels("web", "default", "cluster-b")
	client := fake.NewClientset()
	err := SyncSlices(context.Background(), client.DiscoveryV1(), nil, []*discoveryv1.EndpointSlice{a, b})
	if err == nil || !strings.Contains(err.Error(), "default/web from cluster cluster-a") || !strings.Contains(err.Error(), "default/web from cluster cluster-b") {
		t.Errorf("got %v, want an error naming both slices' sources", err)
	}
}

func TestSameContentComparesOwners(t *testing.T) {
	have := kcmSlice("web-1", "10.0.0.1")
	want := have.DeepCopy()
	want.OwnerReferences = []metav1.OwnerReference{{Kind: "ServiceImport", Name: "web", UID: "new"}}
	if SameContent(have, want) {
		t.Error("a slice owned by a replaced ServiceImport counts as up to date")
	}
}
