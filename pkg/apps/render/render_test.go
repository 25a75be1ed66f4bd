package render

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

func tmpl(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := utiljson.Unmarshal([]byte(s), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

const (
	nsTmpl     = `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"foo"}}`
	deployTmpl = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"my-nginx","namespace":"foo","labels":{"clusternet-app":"multi-cluster-nginx"}},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"nginx"}},"template":{"metadata":{"labels":{"app":"nginx"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.14.2"}]}}}}`
	svcTmpl    = `{"apiVersion":"v1","kind":"Service","metadata":{"name":"my-nginx-svc","namespace":"foo"},"spec":{"ports":[{"port":80}],"selector":{"app":"nginx"},"type":"ClusterIP"}}`
	widgetTmpl = `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"foo"},"spec":{"size":1}}`
)

var (
	nsFeed     = appsv1alpha1.Feed{APIVersion: "v1", Kind: "Namespace", Name: "foo"}
	deployFeed = appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "my-nginx"}
	svcFeed    = appsv1alpha1.Feed{APIVersion: "v1", Kind: "Service", Namespace: "foo", Name: "my-nginx-svc"}
	widgetFeed = appsv1alpha1.Feed{APIVersion: "example.com/v1", Kind: "Widget", Namespace: "foo", Name: "w"}
	chartFeed  = appsv1alpha1.Feed{APIVersion: "apps.clusternet.io/v1alpha1", Kind: "HelmChart", Namespace: "default", Name: "mysql"}
	chart2Feed = appsv1alpha1.Feed{APIVersion: "apps.clusternet.io/v1alpha1", Kind: "HelmChart", Namespace: "default", Name: "redis"}
)

func objects(t *testing.T) []Object {
	return []Object{
		{Feed: chartFeed, Chart: &appsv1alpha1.HelmChart{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "mysql", UID: "c1", Labels: map[string]string{"tier": "db"}},
			Spec: appsv1alpha1.HelmChartSpec{HelmOptions: mysqlOptions}}},
		{Feed: nsFeed, Template: tmpl(t, nsTmpl)},
		{Feed: svcFeed, Template: tmpl(t, svcTmpl)},
		{Feed: deployFeed, Template: tmpl(t, deployTmpl)},
		{Feed: chart2Feed, Chart: &appsv1alpha1.HelmChart{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "redis", UID: "c2"}}},
	}
}

func loc(name string, gen int64, policy appsv1alpha1.OverridePolicy, feed appsv1alpha1.Feed, cfgs ...appsv1alpha1.OverrideConfig) Override {
	return Override{Ref: Ref{Kind: "Localization", Namespace: "clusternet-a", Name: name, UID: types.UID("uid-" + name), Generation: gen}, Policy: policy, Feed: feed, Configs: cfgs}
}

func glob(name string, feed appsv1alpha1.Feed, cfgs ...appsv1alpha1.OverrideConfig) Override {
	return Override{Ref: Ref{Kind: "Globalization", Name: name, UID: types.UID("uid-" + name), Generation: 1}, Policy: appsv1alpha1.ApplyNow, Feed: feed, Configs: cfgs}
}

func jsonPatch(v string) appsv1alpha1.OverrideConfig {
	return appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, Value: v}
}

func helmValues(v string) appsv1alpha1.OverrideConfig {
	return appsv1alpha1.OverrideConfig{Type: appsv1alpha1.HelmType, Value: v}
}

// rawObjects decodes a Generic spec's objects for comparison.
func rawObjects(t *testing.T, spec appsv1alpha1.DescriptionSpec) []any {
	t.Helper()
	var out []any
	for _, r := range spec.Raw {
		var v any
		if err := json.Unmarshal(r.Raw, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGeneric(t *testing.T) {
	withReplicas := func(s string, n int) string {
		return strings.Replace(s, `"replicas":3`, `"replicas":`+itoa(n), 1)
	}
	tests := []struct {
		name        string
		replicas    []ReplicaSetting
		overrides   []Override
		want        []string
		wantApplied []string
	}{{
		name: "templates as written, in feed order, charts left out",
		want: []string{nsTmpl, svcTmpl, deployTmpl},
	}, {
		name:     "divided replicas written at their path",
		replicas: []ReplicaSetting{{Feed: "apps/v1/Deployment/foo/my-nginx", Path: "/spec/replicas", Replicas: 2}},
		want:     []string{nsTmpl, svcTmpl, withReplicas(deployTmpl, 2)},
	}, {
		name:     "overrides apply after divided replicas, in the order given: the last wins",
		replicas: []ReplicaSetting{{Feed: "apps/v1/Deployment/foo/my-nginx", Path: "/spec/replicas", Replicas: 2}},
		overrides: []Override{
			glob("low", deployFeed, jsonPatch(`[{"op":"replace","path":"/spec/replicas","value":5}]`)),
			glob("high", deployFeed, jsonPatch(`[{"op":"replace","path":"/spec/replicas","value":7}]`)),
			loc("other-object", 1, appsv1alpha1.ApplyNow, svcFeed, appsv1alpha1.OverrideConfig{Type: appsv1alpha1.MergePatchType, Value: `{"spec":{"type":"NodePort"}}`}),
		},
		want:        []string{nsTmpl, strings.Replace(svcTmpl, "ClusterIP", "NodePort", 1), withReplicas(deployTmpl, 7)},
		wantApplied: []string{"Globalization low", "Globalization high", "Localization clusternet-a/other-object"},
	}, {
		name: "an override selecting by label; one naming an object not in this Base is not applied",
		overrides: []Override{
			loc("by-label", 1, appsv1alpha1.ApplyNow, appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", FeedSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"clusternet-app": "multi-cluster-nginx"}}},
				jsonPatch(`[{"op":"replace","path":"/spec/replicas","value":1}]`)),
			loc("elsewhere", 1, appsv1alpha1.ApplyNow, appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "bar", Name: "my-nginx"},
				jsonPatch(`[{"op":"replace","path":"/spec/replicas","value":9}]`)),
		},
		want:        []string{nsTmpl, svcTmpl, withReplicas(deployTmpl, 1)},
		wantApplied: []string{"Localization clusternet-a/by-label"},
	}, {
		name: "the override's apiVersion may name another version of the group",
		overrides: []Override{loc("v1beta1", 1, appsv1alpha1.ApplyNow, appsv1alpha1.Feed{APIVersion: "apps/v1beta2", Kind: "Deployment", Namespace: "foo", Name: "my-nginx"},
			jsonPatch(`[{"op":"replace","path":"/spec/replicas","value":4}]`))},
		want:        []string{nsTmpl, svcTmpl, withReplicas(deployTmpl, 4)},
		wantApplied: []string{"Localization clusternet-a/v1beta1"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Generic(Input{Objects: objects(t), Replicas: tc.replicas, Overrides: tc.overrides})
			if err != nil {
				t.Fatal(err)
			}
			if out.Spec.Deployer != appsv1alpha1.DescriptionGenericDeployer || out.Spec.Charts != nil {
				t.Errorf("spec = %+v, want a Generic spec with no charts", out.Spec)
			}
			var want []any
			for _, w := range tc.want {
				want = append(want, decode(t, w))
			}
			if diff := cmp.Diff(want, rawObjects(t, out.Spec)); diff != "" {
				t.Errorf("raw (-want +got):\n%s", diff)
			}
			checkApplied(t, tc.wantApplied, out.Applied)
			for i, r := range out.Spec.Raw {
				norm, _ := Normalize(r.Raw)
				if string(norm) != string(r.Raw) {
					t.Errorf("raw[%d] is not normalized: %s", i, r.Raw)
				}
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestGenericErrors(t *testing.T) {
	tests := []struct {
		name      string
		objects   []Object
		overrides []Override
		wantErr   string
		reason    string
	}{{
		name: "a patch that does not apply names the override, the feed and the pointer",
		overrides: []Override{loc("scale", 2, appsv1alpha1.ApplyNow, deployFeed,
			jsonPatch(`[{"op":"replace","path":"/spec/replicas","value":1}]`), jsonPatch(`[{"op":"replace","path":"/spec/replica","value":1}]`))},
		wantErr: `Localization clusternet-a/scale spec.overrides[1] (JSONPatch) on apps/v1 Deployment "foo/my-nginx": JSONPatch operation 0 at "/spec/replica": the object has nothing at that path to replace: fix or delete the override`,
		reason:  ReasonOverrideFailed,
	}, {
		name:      "an added field the kind does not have",
		overrides: []Override{glob("typo", deployFeed, jsonPatch(`[{"op":"add","path":"/spec/replica","value":1}]`))},
		wantErr:   `Globalization typo spec.overrides[0] (JSONPatch) on apps/v1 Deployment "foo/my-nginx": the result is not a valid apps/v1 Deployment: unknown field "spec.replica": fix or delete the override`,
		reason:    ReasonOverrideFailed,
	}, {
		name:      "a value of the wrong type",
		overrides: []Override{glob("str", deployFeed, jsonPatch(`[{"op":"replace","path":"/spec/replicas","value":"two"}]`))},
		wantErr:   `Globalization str spec.overrides[0] (JSONPatch) on apps/v1 Deployment "foo/my-nginx": the result is not a valid apps/v1 Deployment: `,
		reason:    ReasonOverrideFailed,
	}, {
		name:      "renaming the object",
		overrides: []Override{glob("rename", svcFeed, jsonPatch(`[{"op":"replace","path":"/metadata/name","value":"other"}]`))},
		wantErr:   `Globalization rename spec.overrides[0] (JSONPatch) on v1 Service "foo/my-nginx-svc": metadata.name changed from "my-nginx-svc" to "other": overrides must not change which object this is: fix or delete the override`,
		reason:    ReasonOverrideFailed,
	}, {
		name:      "a Helm override on a template",
		overrides: []Override{glob("helm", svcFeed, helmValues(`{"a":1}`))},
		wantErr:   `Globalization helm spec.overrides[0] (Helm) on v1 Service "foo/my-nginx-svc": a Helm override sets chart values and applies only to HelmChart feeds: use JSONPatch or MergePatch for other kinds: fix or delete the override`,
		reason:    ReasonOverrideFailed,
	}, {
		name:      "an override with a bad selector",
		overrides: []Override{glob("sel", appsv1alpha1.Feed{APIVersion: "v1", Kind: "Service", FeedSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}}, jsonPatch(`[]`))},
		wantErr:   `Globalization sel spec.feed.feedSelector: "Near" is not a valid label selector operator: fix or delete the override`,
		reason:    ReasonOverrideFailed,
	}, {
		name:    "divided replicas where the template has no spec",
		objects: []Object{{Feed: nsFeed, Template: tmpl(t, nsTmpl)}},
		wantErr: `v1 Namespace "foo": `,
		reason:  ReasonRenderFailed,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := tc.objects
			var replicas []ReplicaSetting
			if objs == nil {
				objs = objects(t)
			} else {
				replicas = []ReplicaSetting{{Feed: "v1/Namespace/foo", Path: "/spec/replicas", Replicas: 1}}
			}
			out, err := Generic(Input{Objects: objs, Overrides: tc.overrides, Replicas: replicas})
			if err == nil {
				t.Fatalf("rendered %v, want error %q", out, tc.wantErr)
			}
			t.Logf("error: %v", err)
			if !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("error:\n got %q\nwant %q...", err, tc.wantErr)
			}
			var re *Error
			if !errors.As(err, &re) || re.Reason != tc.reason {
				t.Errorf("error %#v: want a render Error with reason %s", err, tc.reason)
			}
		})
	}
}

func TestCustomKindsSkipTypedValidation(t *testing.T) {
	out, err := Generic(Input{Objects: []Object{{Feed: widgetFeed, Template: tmpl(t, widgetTmpl)}},
		Overrides: []Override{glob("g", widgetFeed, jsonPatch(`[{"op":"add","path":"/spec/color","value":"red"}]`))}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{decode(t, strings.Replace(widgetTmpl, `"size":1`, `"size":1,"color":"red"`, 1))}, rawObjects(t, out.Spec)); diff != "" {
		t.Errorf("raw (-want +got):\n%s", diff)
	}
}

var mysqlOptions = appsv1alpha1.HelmOptions{Repository: "https://charts.example.com/stable", Chart: "mysql", ChartVersion: "8.6.2", TargetNamespace: "db"}

func TestHelm(t *testing.T) {
	out, err := Helm(Input{Objects: objects(t), Overrides: []Override{
		glob("g", chartFeed, helmValues("auth:\n  rootPassword: x\nprimary:\n  persistence:\n    enabled: true\n")),
		loc("l", 1, appsv1alpha1.ApplyNow, appsv1alpha1.Feed{APIVersion: "apps.clusternet.io/v1alpha1", Kind: "HelmChart", FeedSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "db"}}},
			helmValues(`{"primary":{"persistence":{"enabled":false}}}`)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := appsv1alpha1.DescriptionSpec{
		Deployer: appsv1alpha1.DescriptionHelmDeployer,
		// Each carries its HelmChart's spec: the release is made from it.
		Charts: []appsv1alpha1.ChartReference{{Namespace: "default", Name: "mysql", Options: &mysqlOptions},
			{Namespace: "default", Name: "redis", Options: &appsv1alpha1.HelmOptions{}}},
		ChartRaw: [][]byte{[]byte(`{"auth":{"rootPassword":"x"},"primary":{"persistence":{"enabled":false}}}`), []byte(`{}`)},
	}
	if diff := cmp.Diff(want, out.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}

	_, err = Helm(Input{Objects: objects(t), Overrides: []Override{glob("jp", chartFeed, jsonPatch(`[]`))}})
	wantErr := `Globalization jp spec.overrides[0] (JSONPatch) on apps.clusternet.io/v1alpha1 HelmChart "default/mysql": a HelmChart feed takes overrides of type Helm (chart values), not JSONPatch: set type: Helm and give the values: fix or delete the override`
	if err == nil || err.Error() != wantErr {
		t.Errorf("error = %v, want %q", err, wantErr)
	}
}

func TestNothingToRender(t *testing.T) {
	onlyCharts := []Object{objects(t)[0]}
	if out, err := Generic(Input{Objects: onlyCharts}); out != nil || err != nil {
		t.Errorf("Generic of charts only = %v, %v; want nil, nil", out, err)
	}
	onlyTemplates := objects(t)[1:4]
	if out, err := Helm(Input{Objects: onlyTemplates}); out != nil || err != nil {
		t.Errorf("Helm of templates only = %v, %v; want nil, nil", out, err)
	}
}

func TestInputsHash(t *testing.T) {
	base := Input{Objects: objects(t), Salt: "uid/1"}
	h := InputsHash(base, false)
	if h != InputsHash(Input{Objects: objects(t), Salt: "uid/1", Overrides: []Override{glob("g", deployFeed)}}, false) {
		t.Error("overrides changed the inputs hash: they are tracked apart")
	}
	changed := objects(t)
	changed[3].Template.Object["spec"].(map[string]any)["replicas"] = int64(4)
	for name, in := range map[string]Input{
		"template":     {Objects: changed, Salt: "uid/1"},
		"subscription": {Objects: objects(t), Salt: "uid/2"},
		"replicas":     {Objects: objects(t), Salt: "uid/1", Replicas: []ReplicaSetting{{Feed: "apps/v1/Deployment/foo/my-nginx", Path: "/spec/replicas", Replicas: 1}}},
	} {
		if InputsHash(in, false) == h {
			t.Errorf("%s change left the generic inputs hash alone", name)
		}
	}
	if InputsHash(Input{Objects: changed, Salt: "uid/1"}, true) != InputsHash(base, true) {
		t.Error("a template change moved the Helm inputs hash")
	}
}

func TestDecide(t *testing.T) {
	now := loc("now", 1, appsv1alpha1.ApplyNow, deployFeed)
	later := loc("later", 1, appsv1alpha1.ApplyLater, deployFeed)
	bump := func(o Override) Override { o.Generation++; return o }
	asNow := func(o Override) Override { o.Generation++; o.Policy = appsv1alpha1.ApplyNow; return o }
	tests := []struct {
		name       string
		exists     bool
		recorded   []Ref
		hash       string
		applicable []Override
		want       Decision
	}{{
		name: "no Description yet",
		want: Decision{Regenerate: true, Why: "the Description does not exist yet"},
	}, {
		name: "nothing changed", exists: true, hash: "h", recorded: []Ref{now.Ref, later.Ref}, applicable: []Override{now, later},
		want: Decision{},
	}, {
		name: "inputs changed: render with everything, ApplyLater included", exists: true, hash: "other", recorded: []Ref{now.Ref}, applicable: []Override{now, later},
		want: Decision{Regenerate: true, Why: "the Subscription, its feeds or the divided replicas changed"},
	}, {
		name: "new ApplyNow", exists: true, hash: "h", applicable: []Override{now},
		want: Decision{Regenerate: true, Why: "Localization clusternet-a/now (ApplyNow) is new"},
	}, {
		name: "edited ApplyNow", exists: true, hash: "h", recorded: []Ref{now.Ref}, applicable: []Override{bump(now)},
		want: Decision{Regenerate: true, Why: "Localization clusternet-a/now (ApplyNow) changed"},
	}, {
		name: "new ApplyLater waits", exists: true, hash: "h", recorded: []Ref{now.Ref}, applicable: []Override{now, later},
		want: Decision{Pending: []Ref{later.Ref}},
	}, {
		name: "edited ApplyLater waits", exists: true, hash: "h", recorded: []Ref{later.Ref}, applicable: []Override{bump(later)},
		want: Decision{Pending: []Ref{bump(later).Ref}},
	}, {
		name: "ApplyLater switched to ApplyNow applies now", exists: true, hash: "h", recorded: []Ref{later.Ref}, applicable: []Override{asNow(later)},
		want: Decision{Regenerate: true, Why: "Localization clusternet-a/later (ApplyNow) changed"},
	}, {
		name: "deleted ApplyLater rolls back at once", exists: true, hash: "h", recorded: []Ref{now.Ref, later.Ref}, applicable: []Override{now},
		want: Decision{Regenerate: true, Why: "Localization clusternet-a/later no longer applies: rolling it back"},
	}, {
		name: "pending ApplyLater rides along with an ApplyNow change", exists: true, hash: "h", recorded: []Ref{now.Ref}, applicable: []Override{bump(now), later},
		want: Decision{Regenerate: true, Why: "Localization clusternet-a/now (ApplyNow) changed"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(tc.exists, "h", tc.recorded, tc.hash, tc.applicable)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecorded(t *testing.T) {
	refs := []Ref{{Kind: "Localization", Namespace: "ns", Name: "a", UID: "u", Generation: 2}}
	d := &appsv1alpha1.Description{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationInputsHash: "h", AnnotationOverrides: EncodeRefs(refs)}}}
	hash, got := Recorded(d)
	if hash != "h" || !cmp.Equal(refs, got) {
		t.Errorf("Recorded = %q, %v", hash, got)
	}
	d.Annotations[AnnotationOverrides] = "{broken"
	if hash, got := Recorded(d); hash != "" || got != nil {
		t.Errorf("unreadable record = %q, %v; want nothing (render anew)", hash, got)
	}
	if EncodeRefs(nil) != "[]" {
		t.Errorf("EncodeRefs(nil) = %s", EncodeRefs(nil))
	}
}

// checkApplied checks that the overrides a render applied are want, by
// name, in order.
func checkApplied(t *testing.T, want []string, applied []Ref) {
	t.Helper()
	var got []string
	for _, r := range applied {
		got = append(got, r.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
}
