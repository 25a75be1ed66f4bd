package feeds

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// Mapper is a parent serving a few kinds.
func Mapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Service"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, meta.RESTScopeNamespace)
	return m
}

// fakeSource holds templates and charts.
type fakeSource struct {
	manifests map[string]*appsv1alpha1.Manifest
	charts    []*appsv1alpha1.HelmChart
}

func (s *fakeSource) Manifest(name string) (*appsv1alpha1.Manifest, error) {
	if m, ok := s.manifests[name]; ok {
		return m, nil
	}
	return nil, apierrors.NewNotFound(appsv1alpha1.Resource("manifests"), name)
}

func (s *fakeSource) Manifests(group, kind string) ([]*appsv1alpha1.Manifest, error) {
	var out []*appsv1alpha1.Manifest
	for _, m := range s.manifests {
		if m.Labels[appsv1alpha1.LabelConfigGroup] == group && m.Labels[appsv1alpha1.LabelConfigKind] == kind {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *fakeSource) HelmChart(ns, name string) (*appsv1alpha1.HelmChart, error) {
	for _, c := range s.charts {
		if c.Namespace == ns && c.Name == name {
			return c, nil
		}
	}
	return nil, apierrors.NewNotFound(appsv1alpha1.Resource("helmcharts"), name)
}

func (s *fakeSource) HelmCharts(ns string) ([]*appsv1alpha1.HelmChart, error) {
	var out []*appsv1alpha1.HelmChart
	for _, c := range s.charts {
		if ns == "" || c.Namespace == ns {
			out = append(out, c)
		}
	}
	return out, nil
}

// manifest stores obj the way the shadow API does.
func manifest(obj map[string]any) *appsv1alpha1.Manifest {
	raw, _ := json.Marshal(obj)
	u := obj["metadata"].(map[string]any)
	ns, _ := u["namespace"].(string)
	name := u["name"].(string)
	gv, _ := schema.ParseGroupVersion(obj["apiVersion"].(string))
	kind := obj["kind"].(string)
	return &appsv1alpha1.Manifest{
		ObjectMeta: metav1.ObjectMeta{Name: appsv1alpha1.ManifestName(gv.Group, kind, ns, name), Namespace: appsv1alpha1.ReservedNamespace,
			Labels: map[string]string{appsv1alpha1.LabelConfigGroup: gv.Group, appsv1alpha1.LabelConfigVersion: gv.Version,
				appsv1alpha1.LabelConfigKind: kind, appsv1alpha1.LabelConfigNamespace: ns}},
		Template: runtime.RawExtension{Raw: raw},
	}
}

func obj(apiVersion, kind, ns, name string, labels map[string]any, spec map[string]any) map[string]any {
	md := map[string]any{"name": name}
	if ns != "" {
		md["namespace"] = ns
	}
	if labels != nil {
		md["labels"] = labels
	}
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": md}
	if spec != nil {
		o["spec"] = spec
	}
	return o
}

func chart(ns, name string, phase appsv1alpha1.HelmChartPhase, reason string) *appsv1alpha1.HelmChart {
	return &appsv1alpha1.HelmChart{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"tier": "db"}},
		Status: appsv1alpha1.HelmChartStatus{Phase: phase, Reason: reason}}
}

func seedSource() *fakeSource {
	s := &fakeSource{manifests: map[string]*appsv1alpha1.Manifest{}}
	for _, o := range []map[string]any{
		obj("v1", "Namespace", "", "foo", nil, nil),
		obj("v1", "Service", "foo", "my-nginx-svc", nil, map[string]any{"type": "ClusterIP"}),
		obj("apps/v1", "Deployment", "foo", "my-nginx", map[string]any{"clusternet-app": "multi-cluster-nginx"}, map[string]any{"replicas": 3}),
		obj("apps/v1", "Deployment", "bar", "other", map[string]any{"clusternet-app": "multi-cluster-nginx"}, map[string]any{"replicas": 1}),
		obj("apps/v1", "Deployment", "foo", "unlabelled", nil, nil),
	} {
		m := manifest(o)
		s.manifests[m.Name] = m
	}
	s.charts = []*appsv1alpha1.HelmChart{chart("default", "mysql", appsv1alpha1.HelmChartFound, ""),
		chart("default", "gone", appsv1alpha1.HelmChartNotFound, `chart "gone" version "9.9.9" is not in https://charts.example`),
		chart("default", "new", "", "")}
	return s
}

func TestResolve(t *testing.T) {
	feed := func(apiVersion, kind, ns, name string) appsv1alpha1.Feed {
		return appsv1alpha1.Feed{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name}
	}
	selector := func(apiVersion, kind, ns string, kv ...string) appsv1alpha1.Feed {
		f := appsv1alpha1.Feed{APIVersion: apiVersion, Kind: kind, Namespace: ns, FeedSelector: &metav1.LabelSelector{MatchLabels: map[string]string{kv[0]: kv[1]}}}
		return f
	}
	tests := []struct {
		name    string
		feeds   []appsv1alpha1.Feed
		want    []appsv1alpha1.Feed
		wantErr []Error
	}{{
		name: "the seed's feeds, Service fixed: selector expands sorted, chart first as written",
		feeds: []appsv1alpha1.Feed{
			feed("apps.clusternet.io/v1alpha1", "HelmChart", "default", "mysql"),
			feed("v1", "Namespace", "", "foo"),
			feed("v1", "Service", "foo", "my-nginx-svc"),
			selector("apps/v1", "Deployment", "", "clusternet-app", "multi-cluster-nginx"),
		},
		want: []appsv1alpha1.Feed{
			feed("apps.clusternet.io/v1alpha1", "HelmChart", "default", "mysql"),
			feed("v1", "Namespace", "", "foo"),
			feed("v1", "Service", "foo", "my-nginx-svc"),
			feed("apps/v1", "Deployment", "bar", "other"),
			feed("apps/v1", "Deployment", "foo", "my-nginx"),
		},
	}, {
		name:  "selector in one namespace; an object named twice appears once",
		feeds: []appsv1alpha1.Feed{feed("apps/v1", "Deployment", "foo", "my-nginx"), selector("apps/v1", "Deployment", "foo", "clusternet-app", "multi-cluster-nginx")},
		want:  []appsv1alpha1.Feed{feed("apps/v1", "Deployment", "foo", "my-nginx")},
	}, {
		name:  "HelmChart by selector",
		feeds: []appsv1alpha1.Feed{{APIVersion: "apps.clusternet.io/v1alpha1", Kind: "HelmChart", Namespace: "default", FeedSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "db"}}}},
		wantErr: []Error{{Index: 0, Reason: ReasonChartNotFound,
			Message: `HelmChart default/gone: chart "gone" version "9.9.9" is not in https://charts.example: fix spec.chart, spec.version or spec.repo of the HelmChart`}},
	}, {
		name:  "the seed's apps/v1 Service: not served, v1 suggested",
		feeds: []appsv1alpha1.Feed{feed("v1", "Namespace", "", "foo"), feed("apps/v1", "Service", "foo", "my-nginx-svc")},
		wantErr: []Error{{Index: 1, Reason: ReasonKindNotServed,
			Message: `the parent does not serve kind "Service" in apiVersion "apps/v1": Service is served as apiVersion "v1": set spec.feeds[1].apiVersion to "v1"`}},
	}, {
		name:  "a version the group does not serve",
		feeds: []appsv1alpha1.Feed{feed("apps/v1beta1", "Deployment", "foo", "my-nginx")},
		wantErr: []Error{{Index: 0, Reason: ReasonKindNotServed,
			Message: `the parent does not serve kind "Deployment" in apiVersion "apps/v1beta1": Deployment is served as apiVersion "apps/v1": set spec.feeds[0].apiVersion to "apps/v1"`}},
	}, {
		name:  "kind spelled in lower case",
		feeds: []appsv1alpha1.Feed{feed("apps/v1", "deployment", "foo", "my-nginx")},
		wantErr: []Error{{Index: 0, Reason: ReasonKindNotServed,
			Message: `the parent does not serve kind "deployment" in apiVersion "apps/v1": it is spelled "Deployment": set spec.feeds[0].kind to "Deployment"`}},
	}, {
		name:  "a kind nobody serves",
		feeds: []appsv1alpha1.Feed{feed("example.com/v1", "Widget", "foo", "w")},
		wantErr: []Error{{Index: 0, Reason: ReasonKindNotServed,
			Message: "the parent does not serve kind \"Widget\" in apiVersion \"example.com/v1\": check the kind and apiVersion (`kubectl api-resources`), or install the CRD that serves it"}},
	}, {
		name:  "Clusternet's own kinds",
		feeds: []appsv1alpha1.Feed{feed("apps.clusternet.io/v1alpha1", "Subscription", "default", "x"), feed("clusters.clusternet.io/v1beta1", "ManagedCluster", "ns", "x")},
		wantErr: []Error{
			{Index: 0, Reason: ReasonKindNotAllowed, Message: `kind "Subscription" of apps.clusternet.io/v1alpha1 is Clusternet's own: of its kinds, only HelmChart can be a feed`},
			{Index: 1, Reason: ReasonKindNotAllowed, Message: `clusters.clusternet.io/v1beta1 ManagedCluster is Clusternet's own kind: it cannot be a feed`},
		},
	}, {
		name:  "namespaces that do not fit the kind's scope",
		feeds: []appsv1alpha1.Feed{feed("v1", "Service", "", "my-nginx-svc"), feed("v1", "Namespace", "foo", "foo")},
		wantErr: []Error{
			{Index: 0, Reason: ReasonNamespaceInvalid, Message: `v1 Service is namespaced: set spec.feeds[0].namespace to the namespace of "my-nginx-svc"`},
			{Index: 1, Reason: ReasonNamespaceInvalid, Message: `v1 Namespace is cluster-scoped: remove spec.feeds[1].namespace ("foo")`},
		},
	}, {
		name:  "no template",
		feeds: []appsv1alpha1.Feed{feed("v1", "Service", "foo", "missing")},
		wantErr: []Error{{Index: 0, Reason: ReasonNotFound,
			Message: "v1 Service \"foo/missing\" has no template: create it with `kubectl clusternet apply -f <file>` (templates live in the shadow API), or fix the feed"}},
	}, {
		name:  "selector matching nothing",
		feeds: []appsv1alpha1.Feed{selector("apps/v1", "Deployment", "", "app", "nope")},
		wantErr: []Error{{Index: 0, Reason: ReasonNotFound,
			Message: `feedSelector "app=nope" matches no template of apps/v1 Deployment in any namespace: label a template to match, or fix the selector`}},
	}, {
		name: "HelmChart missing, NotFound, not looked up yet",
		feeds: []appsv1alpha1.Feed{feed("apps.clusternet.io/v1alpha1", "HelmChart", "default", "nope"),
			feed("apps.clusternet.io/v1alpha1", "HelmChart", "default", "gone"), feed("apps.clusternet.io/v1alpha1", "HelmChart", "default", "new")},
		wantErr: []Error{
			{Index: 0, Reason: ReasonNotFound, Message: "HelmChart default/nope does not exist: create it (kubectl apply -f <helmchart.yaml>), or fix the feed"},
			{Index: 1, Reason: ReasonChartNotFound, Message: `HelmChart default/gone: chart "gone" version "9.9.9" is not in https://charts.example: fix spec.chart, spec.version or spec.repo of the HelmChart`},
			{Index: 2, Reason: ReasonChartNotResolved, Message: "HelmChart default/new has not been looked up in its repository yet (status.phase is empty): waiting for it"},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := Resolve(tc.feeds, seedSource(), Mapper())
			var gotErrs []Error
			for _, e := range errs {
				gotErrs = append(gotErrs, *e)
			}
			if diff := cmp.Diff(tc.wantErr, gotErrs); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if len(tc.wantErr) > 0 {
				return
			}
			var gotFeeds []appsv1alpha1.Feed
			for _, r := range got {
				gotFeeds = append(gotFeeds, r.Feed)
			}
			if diff := cmp.Diff(tc.want, gotFeeds); diff != "" {
				t.Errorf("resolved feeds (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorMessageNamesTheField(t *testing.T) {
	_, errs := Resolve([]appsv1alpha1.Feed{{APIVersion: "apps/v1", Kind: "Service", Namespace: "foo", Name: "my-nginx-svc"}}, seedSource(), Mapper())
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "spec.feeds[0]: ") {
		t.Fatalf("errors = %v, want one starting with spec.feeds[0]", errs)
	}
}

func TestTemplateStrip(t *testing.T) {
	raw := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"foo","uid":"u","resourceVersion":"12","generation":3,
"creationTimestamp":"2026-01-01T00:00:00Z","managedFields":[{"manager":"kubectl"}],"ownerReferences":[{"name":"x"}],"selfLink":"/x",
"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}","keep":"me"},"labels":{"app":"web"}},
"spec":{"replicas":2},"status":{"readyReplicas":2}}`
	got, err := Template(&appsv1alpha1.Manifest{Template: runtime.RawExtension{Raw: []byte(raw)}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "foo", "annotations": map[string]any{"keep": "me"}, "labels": map[string]any{"app": "web"}},
		"spec":     map[string]any{"replicas": int64(2)}}
	if diff := cmp.Diff(want, got.Object); diff != "" {
		t.Errorf("stripped (-want +got):\n%s", diff)
	}

	onlyApplied := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"foo","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}}}`
	got, err = Template(&appsv1alpha1.Manifest{Template: runtime.RawExtension{Raw: []byte(onlyApplied)}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "foo"}}, got.Object); diff != "" {
		t.Errorf("empty annotations left behind (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "null", "[1]"} {
		if _, err := Template(&appsv1alpha1.Manifest{Template: runtime.RawExtension{Raw: []byte(bad)}}); err == nil {
			t.Errorf("template %q: no error", bad)
		}
	}
}

func TestInventory(t *testing.T) {
	src := seedSource()
	for _, m := range []*appsv1alpha1.Manifest{
		manifest(obj("apps/v1", "StatefulSet", "foo", "db", nil, map[string]any{"serviceName": "db"})),
		manifest(obj("batch/v1", "Job", "foo", "once", nil, map[string]any{"parallelism": 2})),
	} {
		src.manifests[m.Name] = m
	}
	rs, errs := Resolve([]appsv1alpha1.Feed{
		{APIVersion: "apps.clusternet.io/v1alpha1", Kind: "HelmChart", Namespace: "default", Name: "mysql"},
		{APIVersion: "v1", Kind: "Namespace", Name: "foo"},
		{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "my-nginx"},
		{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "foo", Name: "db"},
		{APIVersion: "batch/v1", Kind: "Job", Namespace: "foo", Name: "once"},
	}, src, Mapper())
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	got := Inventory(rs)
	want := appsv1alpha1.FeedInventorySpec{Feeds: []appsv1alpha1.FeedOrder{
		{Feed: appsv1alpha1.Feed{APIVersion: "apps.clusternet.io/v1alpha1", Kind: "HelmChart", Namespace: "default", Name: "mysql"}},
		{Feed: appsv1alpha1.Feed{APIVersion: "v1", Kind: "Namespace", Name: "foo"}},
		{Feed: appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "my-nginx"}, DesiredReplicas: ptr.To[int32](3), ReplicaJSONPath: "/spec/replicas"},
		{Feed: appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "foo", Name: "db"}, DesiredReplicas: ptr.To[int32](1), ReplicaJSONPath: "/spec/replicas"},
		{Feed: appsv1alpha1.Feed{APIVersion: "batch/v1", Kind: "Job", Namespace: "foo", Name: "once"}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inventory (-want +got):\n%s", diff)
	}
}

func TestRequests(t *testing.T) {
	raw := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"w"},"spec":{"template":{"spec":{
"initContainers":[{"name":"init","resources":{"requests":{"cpu":"2"}}}],
"containers":[{"name":"a","resources":{"requests":{"cpu":"250m","memory":"64Mi"}}},{"name":"b","resources":{"requests":{"cpu":1,"memory":"64Mi"}}},{"name":"c"}]}}}}`
	tmpl, err := Template(&appsv1alpha1.Manifest{Template: runtime.RawExtension{Raw: []byte(raw)}})
	if err != nil {
		t.Fatal(err)
	}
	got := Requests(tmpl)
	want := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("128Mi")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestKeys(t *testing.T) {
	if got := Key(appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "web"}); got != "apps/v1/Deployment/foo/web" {
		t.Errorf("Key = %q", got)
	}
	if got := Key(appsv1alpha1.Feed{APIVersion: "v1", Kind: "Namespace", Name: "foo"}); got != "v1/Namespace/foo" {
		t.Errorf("Key = %q", got)
	}
	if got := Describe(appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "web"}); got != `apps/v1 Deployment "foo/web"` {
		t.Errorf("Describe = %q", got)
	}
}

// A Manifest whose name is a feed's but which holds another user's object (a
// hash collision, or a Manifest written by hand) is never rendered for it.
func TestTemplateOfChecksWhatTheManifestHolds(t *testing.T) {
	feed := appsv1alpha1.Feed{APIVersion: "v1", Kind: "Secret", Namespace: "team-a", Name: "db"}
	own := manifest(obj("v1", "Secret", "team-a", "db", nil, nil))
	impostor := manifest(obj("v1", "Secret", "team-b", "db", nil, nil))
	impostor.Name = own.Name
	for _, tc := range []struct {
		name    string
		m       *appsv1alpha1.Manifest
		wantErr string
	}{
		{name: "its own template", m: own},
		{name: "another object under its name", m: impostor,
			wantErr: `Manifest clusternet-reserved/` + own.Name + ` holds Secret team-b/db, not the template of v1 Secret "team-a/db": apply the template again with ` + "`kubectl clusternet apply`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TemplateOf(tc.m, feed)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v\nwant %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.GetNamespace() != "team-a" {
				t.Fatalf("TemplateOf = %v, %v", got, err)
			}
		})
	}
}
