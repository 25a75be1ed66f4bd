package shadow

import (
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestBuildResources(t *testing.T) {
	got := buildResources(testParent(), widgetScale)
	var served []string
	for name, r := range got {
		served = append(served, name+" "+r.gvr.GroupVersion().String())
	}
	sort.Strings(served)
	want := []string{
		"configmaps v1",
		"deployments apps/v1",
		"events v1", // core is listed before events.k8s.io
		"horizontalpodautoscalers autoscaling/v2",
		"namespaces v1",
		"persistentvolumes v1",
		"replicationcontrollers v1",
		"secrets v1",
		"services v1",
		"widgets example.com/v1",
	}
	if diff := cmp.Diff(want, served); diff != "" {
		t.Errorf("served (-want +got):\n%s", diff)
	}

	d := got["deployments"]
	wantDeployments := &resource{
		gvr:  schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		kind: "Deployment", singular: "deployment", namespaced: true, shortNames: []string{"deploy"},
		versions: []string{"v1"}, hasStatus: true,
		scale: &scalePaths{replicas: []string{"spec", "replicas"}, selector: []string{"spec", "selector"}, defaultReplicas: 1},
	}
	if diff := cmp.Diff(wantDeployments, d, cmp.AllowUnexported(resource{}, scalePaths{})); diff != "" {
		t.Errorf("deployments (-want +got):\n%s", diff)
	}
	if !d.builtIn() || got["widgets"].builtIn() {
		t.Error("built-in detection: deployments should be built in, widgets not")
	}
	if diff := cmp.Diff([]string{"v2", "v1"}, got["horizontalpodautoscalers"].versions); diff != "" {
		t.Errorf("hpa versions (-want +got):\n%s", diff)
	}
	if s := got["widgets"].scale; s == nil || s.defaultReplicas != 0 || s.selector != nil {
		t.Errorf("widgets scale = %+v, want the CRD's paths", s)
	}
	if got["configmaps"].hasStatus || !got["namespaces"].hasStatus {
		t.Error("status subresources: configmaps have none, namespaces have one")
	}
	for _, tc := range []struct {
		gv   schema.GroupVersion
		want bool
	}{
		{schema.GroupVersion{Group: "autoscaling", Version: "v1"}, true},
		{schema.GroupVersion{Group: "autoscaling", Version: "v2"}, true},
		{schema.GroupVersion{Group: "autoscaling", Version: "v2beta2"}, false},
		{schema.GroupVersion{Group: "apps", Version: "v1"}, false},
	} {
		if got := got["horizontalpodautoscalers"].AcceptsGroupVersion(tc.gv); got != tc.want {
			t.Errorf("hpa accepts %s = %v, want %v", tc.gv, got, tc.want)
		}
	}
}

func TestExcludedGroup(t *testing.T) {
	for group, want := range map[string]bool{
		"": false, "apps": false, "example.com": false, "notclusternet.io": false,
		"shadow": true, "clusternet.io": true, "apps.clusternet.io": true, "proxies.clusternet.io": true,
		"metrics.k8s.io": true, "custom.metrics.k8s.io": true, "external.metrics.k8s.io": true, "apiregistration.k8s.io": true,
	} {
		if got := excludedGroup(group); got != want {
			t.Errorf("excludedGroup(%q) = %v, want %v", group, got, want)
		}
	}
}

func TestAPIResources(t *testing.T) {
	list := apiResources(buildResources(testParent(), widgetScale))
	byName := map[string]metav1.APIResource{}
	var names []string
	for _, r := range list {
		byName[r.Name] = r
		names = append(names, r.Name)
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("not sorted: %v", names)
	}
	if diff := cmp.Diff(metav1.APIResource{Name: "widgets/scale", Namespaced: true, Group: "autoscaling", Version: "v1", Kind: "Scale",
		Verbs: metav1.Verbs{"get", "patch", "update"}}, byName["widgets/scale"]); diff != "" {
		t.Errorf("widgets/scale (-want +got):\n%s", diff)
	}
	for _, r := range list {
		for _, v := range r.Verbs {
			if v == "delete" || v == "deletecollection" {
				t.Errorf("%s advertises %s: the parent's namespace controller and garbage collector would act on templates", r.Name, v)
			}
		}
	}
}

func TestSelectorString(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   interface{}
		want string
	}{
		{"label selector", map[string]interface{}{"matchLabels": map[string]interface{}{"app": "nginx"},
			"matchExpressions": []interface{}{map[string]interface{}{"key": "tier", "operator": "In", "values": []interface{}{"web"}}}}, "app=nginx,tier in (web)"},
		{"replication controller map", map[string]interface{}{"app": "nginx"}, "app=nginx"},
		{"string", "app=nginx", "app=nginx"},
		{"nothing usable", int64(3), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := selectorString(tc.in); got != tc.want {
				t.Errorf("selectorString = %q, want %q", got, tc.want)
			}
		})
	}
	if diff := cmp.Diff([]string{"spec", "size"}, jsonPath(".spec.size")); diff != "" {
		t.Errorf("jsonPath (-want +got):\n%s", diff)
	}
}
