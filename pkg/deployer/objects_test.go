package deployer

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

func TestObjectsLabelsAndNormalizes(t *testing.T) {
	dep := deploymentObj("foo", "my-nginx", 3)
	dep["metadata"].(map[string]any)["labels"] = map[string]any{"clusternet-app": "multi-cluster-nginx"}
	dep["metadata"].(map[string]any)["resourceVersion"] = "42"
	dep["metadata"].(map[string]any)["uid"] = "parent-uid"
	dep["metadata"].(map[string]any)["ownerReferences"] = []any{map[string]any{"name": "x"}}
	dep["status"] = map[string]any{"replicas": int64(3)}
	ns := namespaceObj("foo")
	ns["metadata"].(map[string]any)["namespace"] = "stray" // cluster-scoped: dropped
	cm := obj("v1", "ConfigMap", "", "settings")           // namespaced without namespace: default

	objs := mustObjects(t, description("app-demo-generic", ns, dep, cm))

	wantLabels := map[string]string{
		"clusternet-app":                        "multi-cluster-nginx",
		appsv1alpha1.LabelSubscriptionName:      "app-demo",
		appsv1alpha1.LabelSubscriptionNamespace: "default",
		appsv1alpha1.LabelDescriptionName:       "app-demo-generic",
		appsv1alpha1.LabelDescriptionNamespace:  "clusternet-abcde",
	}
	if diff := cmp.Diff(wantLabels, objs[1].Obj.GetLabels()); diff != "" {
		t.Errorf("deployment labels (-want +got):\n%s", diff)
	}
	if got := objs[1].Obj.GetAnnotations()[AnnotationAppliedHash]; got == "" || got != objs[1].Hash {
		t.Errorf("hash annotation %q, want the object's hash %q", got, objs[1].Hash)
	}
	for _, f := range []string{"resourceVersion", "uid", "ownerReferences"} {
		if _, ok := objs[1].Obj.Object["metadata"].(map[string]any)[f]; ok {
			t.Errorf("metadata.%s was kept; the child owns it", f)
		}
	}
	if _, ok := objs[1].Obj.Object["status"]; ok {
		t.Error("status was kept")
	}
	if got := []string{objs[0].Obj.GetNamespace(), objs[2].Obj.GetNamespace()}; !cmp.Equal(got, []string{"", "default"}) {
		t.Errorf("namespaces of Namespace and ConfigMap = %q, want [\"\" \"default\"]", got)
	}
	// Subscription UID and cluster id are the Description's business, not the object's.
	if _, ok := objs[1].Obj.GetLabels()[appsv1alpha1.LabelSubscriptionUID]; ok {
		t.Error("subscription uid label copied onto the object")
	}
}

func TestObjectsHash(t *testing.T) {
	a := mustObjects(t, description("d", deploymentObj("foo", "x", 3)))[0]
	again := mustObjects(t, description("d", deploymentObj("foo", "x", 3)))[0]
	changed := mustObjects(t, description("d", deploymentObj("foo", "x", 4)))[0]
	otherDesc := mustObjects(t, description("e", deploymentObj("foo", "x", 3)))[0]
	if a.Hash != again.Hash {
		t.Errorf("same object, different hashes %q and %q", a.Hash, again.Hash)
	}
	if a.Hash == changed.Hash || a.Hash == otherDesc.Hash {
		t.Errorf("hash %q did not change with replicas (%q) or with the Description label (%q)", a.Hash, changed.Hash, otherDesc.Hash)
	}
	// An object that comes back from the child with the annotation hashes the same.
	withAnnotation := deploymentObj("foo", "x", 3)
	withAnnotation["metadata"].(map[string]any)["annotations"] = map[string]any{AnnotationAppliedHash: "stale"}
	if got := mustObjects(t, description("d", withAnnotation))[0].Hash; got != a.Hash {
		t.Errorf("hash with a stale hash annotation = %q, want %q", got, a.Hash)
	}
}

func TestObjectsErrors(t *testing.T) {
	tests := []struct {
		name string
		raw  []string
		want string
	}{
		{"not JSON", []string{`[1,2]`}, `spec.raw[0] is not a JSON object`},
		{"null", []string{`null`}, `spec.raw[0] is not a JSON object`},
		{"no apiVersion", []string{`{"kind":"ConfigMap","metadata":{"name":"a"}}`}, `spec.raw[0] has no apiVersion: set apiVersion`},
		{"no kind", []string{`{"apiVersion":"v1","metadata":{"name":"a"}}`}, `spec.raw[0] (apiVersion "v1") has no kind: set kind`},
		{"no name", []string{`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"a-"}}`}, `spec.raw[0] (ConfigMap) has no metadata.name`},
		{"twice", []string{
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"x"}}`,
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"x"}}`,
		}, `spec.raw[0] and spec.raw[1] are both ConfigMap x/a: list each object once`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := description("d")
			for _, r := range tc.raw {
				d.Spec.Raw = append(d.Spec.Raw, runtime.RawExtension{Raw: []byte(r)})
			}
			_, err := Objects(d, scopes)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want it to start with %q", err, tc.want)
			}
		})
	}
}

func TestApplyOrder(t *testing.T) {
	objs := mustObjects(t, description("d",
		deploymentObj("foo", "web", 1),
		serviceObj("foo", "web"),
		crdObj("example.com", "Widget", "widgets"),
		namespaceObj("foo"),
		obj("example.com/v1", "Widget", "foo", "w1"),
		namespaceObj("bar"),
	))
	want := []string{"Namespace foo", "Namespace bar", "CustomResourceDefinition widgets.example.com",
		"Deployment foo/web", "Service foo/web", "Widget foo/w1"}
	if diff := cmp.Diff(want, keysOf(ApplyOrder(objs))); diff != "" {
		t.Errorf("apply order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Deployment foo/web", "Service foo/web", "CustomResourceDefinition widgets.example.com", "Namespace foo"},
		keysOf(objs[:4])); diff != "" {
		t.Errorf("ApplyOrder changed its input (-want +got):\n%s", diff)
	}
	// The unknown kind kept the namespace it was written with.
	if got := objs[4].Obj.GetNamespace(); got != "foo" {
		t.Errorf("Widget namespace %q, want foo", got)
	}
}

func TestDeleteOrder(t *testing.T) {
	in := []Ref{
		{APIVersion: "v1", Kind: "Namespace", Name: "foo"},
		{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition", Name: "widgets.example.com"},
		{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "web"},
		{APIVersion: "v1", Kind: "Service", Namespace: "foo", Name: "web"},
		{APIVersion: "v1", Kind: "Namespace", Name: "bar"},
	}
	var got []string
	for _, r := range DeleteOrder(in) {
		got = append(got, r.String())
	}
	want := []string{"Service foo/web", "Deployment foo/web", "CustomResourceDefinition widgets.example.com", "Namespace bar", "Namespace foo"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delete order (-want +got):\n%s", diff)
	}
}

func TestPruneSet(t *testing.T) {
	status := func(apiVersion, kind, ns, name string) appsv1alpha1.ManifestStatus {
		return appsv1alpha1.ManifestStatus{Feed: appsv1alpha1.Feed{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name},
			FeedStatus: appsv1alpha1.FeedStatus{Applied: true}}
	}
	objs := mustObjects(t, description("d", namespaceObj("foo"), deploymentObj("foo", "web", 1)))
	tests := []struct {
		name     string
		previous []appsv1alpha1.ManifestStatus
		want     []Ref
	}{
		{"first deploy", nil, nil},
		{"unchanged", []appsv1alpha1.ManifestStatus{status("v1", "Namespace", "", "foo"), status("apps/v1", "Deployment", "foo", "web")}, nil},
		{"service removed", []appsv1alpha1.ManifestStatus{
			status("v1", "Namespace", "", "foo"), status("v1", "Service", "foo", "web"), status("apps/v1", "Deployment", "foo", "web"),
		}, []Ref{{APIVersion: "v1", Kind: "Service", Namespace: "foo", Name: "web"}}},
		{"same object in another version is kept", []appsv1alpha1.ManifestStatus{status("apps/v1beta2", "Deployment", "foo", "web")}, nil},
		{"same name in another namespace goes", []appsv1alpha1.ManifestStatus{status("apps/v1", "Deployment", "bar", "web")},
			[]Ref{{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "bar", Name: "web"}}},
		{"listed twice, pruned once", []appsv1alpha1.ManifestStatus{status("v1", "ConfigMap", "foo", "a"), status("v1", "ConfigMap", "foo", "a")},
			[]Ref{{APIVersion: "v1", Kind: "ConfigMap", Namespace: "foo", Name: "a"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, PruneSet(tc.previous, objs)); diff != "" {
				t.Errorf("PruneSet (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCRDDefines(t *testing.T) {
	objs := mustObjects(t, description("d", crdObj("example.com", "Widget", "widgets")))
	if !crdDefines(objs, Ref{APIVersion: "example.com/v1", Kind: "Widget"}.GroupKind()) {
		t.Error("the CRD defines example.com Widget")
	}
	if crdDefines(objs, Ref{APIVersion: "example.com/v1", Kind: "Gadget"}.GroupKind()) {
		t.Error("the CRD does not define Gadget")
	}
}
