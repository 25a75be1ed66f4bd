package render

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

func chartSpec(v string) appsv1alpha1.OverrideConfig {
	return appsv1alpha1.OverrideConfig{Type: appsv1alpha1.HelmType, OverrideChart: true, Value: v}
}

// privateChartFeed is a HelmChart with a chart pull Secret.
var privateChartFeed = appsv1alpha1.Feed{APIVersion: "apps.clusternet.io/v1alpha1", Kind: "HelmChart", Namespace: "default", Name: "vault"}

var vaultOptions = appsv1alpha1.HelmOptions{Repository: "https://private.example.com/charts", Chart: "vault", ChartVersion: "1.0.0", TargetNamespace: "vault",
	CreateNamespace: ptr.To(true), TimeoutSeconds: 300, HistoryLimit: ptr.To[int32](5),
	ChartPullSecret: &appsv1alpha1.SecretReference{Name: "vault-creds"}}

// withPrivateChart are objects() and the private HelmChart vault.
func withPrivateChart(t *testing.T) []Object {
	return append(objects(t), Object{Feed: privateChartFeed, Chart: &appsv1alpha1.HelmChart{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "vault", UID: "c3"},
		Spec:       appsv1alpha1.HelmChartSpec{HelmOptions: vaultOptions}}})
}

// options returns base changed by edit.
func options(base appsv1alpha1.HelmOptions, edit func(*appsv1alpha1.HelmOptions)) *appsv1alpha1.HelmOptions {
	out := base.DeepCopy()
	edit(out)
	return out
}

func TestHelmChartOverrides(t *testing.T) {
	mysqlAt := func(version string) *appsv1alpha1.HelmOptions {
		return options(mysqlOptions, func(o *appsv1alpha1.HelmOptions) { o.ChartVersion = version })
	}
	tests := []struct {
		name      string
		overrides []Override
		wantMySQL *appsv1alpha1.HelmOptions
		wantVault *appsv1alpha1.HelmOptions
		// wantValues are mysql's; the other charts have none.
		wantValues  string
		wantApplied []string
	}{{
		name:        "a Localization gives its cluster another version; the values stay the chart's",
		overrides:   []Override{loc("v", 1, appsv1alpha1.ApplyNow, chartFeed, chartSpec(`{"spec": {"version": "8.6.3"}}`))},
		wantMySQL:   mysqlAt("8.6.3"),
		wantValues:  `{}`,
		wantApplied: []string{"Localization clusternet-a/v"},
	}, {
		name: "YAML, and every field an override may set",
		overrides: []Override{glob("all", chartFeed, chartSpec(`spec:
  repo: oci://mirror.example.com/charts
  version: "9.0.0"
  createNamespace: false
  timeoutSeconds: 600
  wait: true
  atomic: true
  skipCRDs: true
  plainHTTP: true
  historyLimit: 0
`))},
		wantMySQL: &appsv1alpha1.HelmOptions{Repository: "oci://mirror.example.com/charts", Chart: "mysql", ChartVersion: "9.0.0", TargetNamespace: "db",
			CreateNamespace: ptr.To(false), TimeoutSeconds: 600, Wait: true, Atomic: true, SkipCRDs: true, PlainHTTP: true, HistoryLimit: ptr.To[int32](0)},
		wantValues:  `{}`,
		wantApplied: []string{"Globalization all"},
	}, {
		name: "values and chart overrides compose in the order overrides apply: the last to set each wins",
		overrides: []Override{
			glob("g", chartFeed, helmValues(`{"message": "global", "replicas": 2}`), chartSpec(`{"spec": {"version": "8.6.3", "wait": true}}`)),
			loc("l", 1, appsv1alpha1.ApplyNow, chartFeed, chartSpec(`{"spec": {"version": "8.6.4"}}`), helmValues(`{"message": "local"}`)),
		},
		wantMySQL:   options(mysqlOptions, func(o *appsv1alpha1.HelmOptions) { o.ChartVersion, o.Wait = "8.6.4", true }),
		wantValues:  `{"message":"local","replicas":2}`,
		wantApplied: []string{"Globalization g", "Localization clusternet-a/l"},
	}, {
		name: "a field set to the value it has is no change, even one an override may not change",
		// Upstream Clusternet's chart overrides often repeat the chart's name.
		overrides:   []Override{loc("same", 1, appsv1alpha1.ApplyNow, chartFeed, chartSpec(`{"spec": {"chart": "mysql", "targetNamespace": "db", "version": "8.6.3"}}`))},
		wantMySQL:   mysqlAt("8.6.3"),
		wantValues:  `{}`,
		wantApplied: []string{"Localization clusternet-a/same"},
	}, {
		name:        "a chart with credentials may change version: they still go only to its repository",
		overrides:   []Override{loc("v", 1, appsv1alpha1.ApplyNow, privateChartFeed, chartSpec(`{"spec": {"version": "1.1.0", "repo": "https://private.example.com/charts"}}`))},
		wantVault:   options(vaultOptions, func(o *appsv1alpha1.HelmOptions) { o.ChartVersion = "1.1.0" }),
		wantValues:  `{}`,
		wantApplied: []string{"Localization clusternet-a/v"},
	}, {
		name:        "an empty patch changes nothing",
		overrides:   []Override{loc("empty", 1, appsv1alpha1.ApplyNow, chartFeed, chartSpec(`{}`))},
		wantValues:  `{}`,
		wantApplied: []string{"Localization clusternet-a/empty"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Helm(Input{Objects: withPrivateChart(t), Overrides: tc.overrides})
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantMySQL == nil {
				tc.wantMySQL = &mysqlOptions
			}
			if tc.wantVault == nil {
				tc.wantVault = &vaultOptions
			}
			want := appsv1alpha1.DescriptionSpec{
				Deployer: appsv1alpha1.DescriptionHelmDeployer,
				Charts: []appsv1alpha1.ChartReference{
					{Namespace: "default", Name: "mysql", Options: tc.wantMySQL},
					// Not selected by any override: the HelmChart's spec as it is.
					{Namespace: "default", Name: "redis", Options: &appsv1alpha1.HelmOptions{}},
					{Namespace: "default", Name: "vault", Options: tc.wantVault},
				},
				ChartRaw: [][]byte{[]byte(tc.wantValues), []byte(`{}`), []byte(`{}`)},
			}
			if diff := cmp.Diff(want, out.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			checkApplied(t, tc.wantApplied, out.Applied)
		})
	}
}

func TestHelmChartOverridesDoNotChangeTheHelmChart(t *testing.T) {
	objs := withPrivateChart(t)
	var before []*appsv1alpha1.HelmChart
	for _, o := range objs {
		if o.Chart != nil {
			before = append(before, o.Chart.DeepCopy())
		}
	}
	out, err := Helm(Input{Objects: objs, Overrides: []Override{glob("v", chartFeed, chartSpec(`{"spec": {"version": "8.6.3"}}`))}})
	if err != nil {
		t.Fatal(err)
	}
	// The HelmCharts are the informer's objects, shared by every cluster's
	// render: neither rendering nor what is later done to the spec it
	// returns may change them.
	for _, c := range out.Spec.Charts {
		c.Options.ChartVersion = "changed after rendering"
		c.Options.ChartPullSecret = nil
	}
	var after []*appsv1alpha1.HelmChart
	for _, o := range objs {
		if o.Chart != nil {
			after = append(after, o.Chart)
		}
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("the HelmCharts changed (-before +after):\n%s", diff)
	}
}

func TestHelmChartOverrideErrors(t *testing.T) {
	const prefix = `Localization clusternet-a/bad spec.overrides[0] (Helm, overrideChart) on apps.clusternet.io/v1alpha1 HelmChart "default/mysql": `
	const vaultPrefix = `Localization clusternet-a/bad spec.overrides[0] (Helm, overrideChart) on apps.clusternet.io/v1alpha1 HelmChart "default/vault": `
	const suffix = `: fix or delete the override`
	tests := []struct {
		name    string
		feed    appsv1alpha1.Feed
		configs []appsv1alpha1.OverrideConfig
		wantErr string
	}{{
		name:    "a spec field at the top level, as the field alone",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"version": "0.2.0"}`)},
		wantErr: prefix + `value sets "version" at the top level: a chart override is a merge patch on the whole HelmChart, so spec fields go under spec: write {"spec":{"version":"0.2.0"}}` + suffix,
	}, {
		name:    "a key that is not a HelmChart spec field, with the field meant",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"chartVersion": "0.2.0"}}`)},
		wantErr: prefix + `spec.chartVersion is not a field of a HelmChart's spec: did you mean spec.version? (an override may set atomic, createNamespace, historyLimit, plainHTTP, repo, skipCRDs, timeoutSeconds, version, wait)` + suffix,
	}, {
		name:    "a key that is no field at all",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"values": {"a": 1}}}`)},
		wantErr: prefix + `spec.values is not a field of a HelmChart's spec (an override may set atomic, createNamespace, historyLimit, plainHTTP, repo, skipCRDs, timeoutSeconds, version, wait)` + suffix,
	}, {
		name:    "a version that is not a string",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"version": 0.2}}`)},
		wantErr: prefix + `spec.version is 0.2, a number: it must be a string: quote it, as "0.2"` + suffix,
	}, {
		name:    "a YAML version read as a number",
		configs: []appsv1alpha1.OverrideConfig{chartSpec("spec:\n  version: 1.10\n")},
		wantErr: prefix + `spec.version is 1.1, a number: it must be a string: quote it, as "1.1"` + suffix,
	}, {
		name:    "a repository that is no chart repository",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"repo": "ftp://charts.example.com"}}`)},
		wantErr: prefix + `spec.repo is "ftp://charts.example.com": it must be an http(s):// chart repository URL or an oci:// registry reference, as a HelmChart's spec.repo, such as "https://charts.example.com/stable"` + suffix,
	}, {
		name:    "the chart's name",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"chart": "postgresql"}}`)},
		wantErr: prefix + `spec.chart cannot be overridden (the value sets it to "postgresql"): an override keeps the chart's name, as in upstream Clusternet: feed another HelmChart to this cluster instead; remove spec.chart from the value` + suffix,
	}, {
		name:    "the release's namespace",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"targetNamespace": "kube-system"}}`)},
		wantErr: prefix + `spec.targetNamespace cannot be overridden (the value sets it to "kube-system"): an override keeps the release's namespace, as in upstream Clusternet: feed another HelmChart to this cluster instead; remove spec.targetNamespace from the value` + suffix,
	}, {
		name:    "a field the hub does not act on",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"force": true}}`)},
		wantErr: prefix + `spec.force cannot be overridden (the value sets it to true): it is accepted on HelmCharts but not acted on by this hub (docs/api.md), so an override does not set it either; remove spec.force from the value` + suffix,
	}, {
		name:    "metadata",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"metadata": {"labels": {"a": "b"}}}`)},
		wantErr: prefix + `value sets metadata: a chart override changes only the HelmChart's spec here (a HelmRelease takes its labels from its Description): remove metadata from the value` + suffix,
	}, {
		name:    "null removes nothing",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"version": null}}`)},
		wantErr: prefix + `spec.version is null, which would remove it: an override does not remove HelmChart fields: set the value you want, such as "0.2.0"` + suffix,
	}, {
		name:    "a timeout below the HelmChart's minimum",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"timeoutSeconds": 0}}`)},
		wantErr: prefix + `spec.timeoutSeconds is 0: it must be at least 1 and at most 2147483647` + suffix,
	}, {
		name:    "a timeout as a string",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"timeoutSeconds": "600"}}`)},
		wantErr: prefix + `spec.timeoutSeconds is "600", a string: it must be a whole number, such as 300` + suffix,
	}, {
		name:    "a boolean as a string",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"wait": "yes"}}`)},
		wantErr: prefix + `spec.wait is "yes", a string: it must be true or false` + suffix,
	}, {
		name:    "a value that is not an object",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`["0.2.0"]`)},
		wantErr: prefix + `value must be a merge patch on the HelmChart, an object such as {"spec": {"version": "0.2.0"}}, not a list` + suffix,
	}, {
		name:    "a spec that is not an object",
		configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": "0.2.0"}`)},
		wantErr: prefix + `value sets spec to a string: it must be an object of HelmChart spec fields, such as {"spec": {"version": "0.2.0"}}` + suffix,
	}, {
		name:    "overrideChart with a type other than Helm",
		configs: []appsv1alpha1.OverrideConfig{{Type: appsv1alpha1.JSONPatchType, OverrideChart: true, Value: `[{"op":"replace","path":"/spec/version","value":"0.2.0"}]`}},
		wantErr: `Localization clusternet-a/bad spec.overrides[0] (JSONPatch, overrideChart) on apps.clusternet.io/v1alpha1 HelmChart "default/mysql": overrideChart: true takes type Helm, not JSONPatch: set type: Helm and give a merge patch on the HelmChart, such as {"spec": {"version": "0.2.0"}}` + suffix,
	},
		// The dangerous fields: what a Localization writer, who may not
		// write the HelmChart, would need to get its credentials.
		{
			name:    "a chart pull Secret of another namespace",
			configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"chartPullSecret": {"name": "registry-creds", "namespace": "kube-system"}}}`)},
			wantErr: prefix + `spec.chartPullSecret cannot be overridden (the value sets it to {"name":"registry-creds","namespace":"kube-system"}): chart pull credentials are chosen only by whoever may write the HelmChart, in its own namespace: set spec.chartPullSecret on the HelmChart; remove spec.chartPullSecret from the value` + suffix,
		}, {
			name:    "another chart pull Secret of the HelmChart's namespace",
			feed:    privateChartFeed,
			configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"chartPullSecret": {"name": "other-creds"}}}`)},
			wantErr: vaultPrefix + `spec.chartPullSecret cannot be overridden (the value sets it to {"name":"other-creds"}): chart pull credentials are chosen only by whoever may write the HelmChart, in its own namespace: set spec.chartPullSecret on the HelmChart; remove spec.chartPullSecret from the value` + suffix,
		}, {
			name:    "the repository of a HelmChart with credentials",
			feed:    privateChartFeed,
			configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"repo": "https://attacker.example.com/charts"}}`)},
			wantErr: vaultPrefix + `spec.repo cannot be overridden for HelmChart default/vault (the value sets it to "https://attacker.example.com/charts"): the HelmChart has spec.chartPullSecret, and its credentials go only to the repository, and in the way, the HelmChart names: remove spec.repo from the value, or feed this cluster a HelmChart of that repository (with credentials of its own if it needs them)` + suffix,
		}, {
			name:    "plain HTTP for a HelmChart with credentials",
			feed:    privateChartFeed,
			configs: []appsv1alpha1.OverrideConfig{chartSpec(`{"spec": {"plainHTTP": true}}`)},
			wantErr: vaultPrefix + `spec.plainHTTP cannot be overridden for HelmChart default/vault (the value sets it to true): the HelmChart has spec.chartPullSecret, and its credentials go only to the repository, and in the way, the HelmChart names: remove spec.plainHTTP from the value, or feed this cluster a HelmChart of that repository (with credentials of its own if it needs them)` + suffix,
		}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			feed := tc.feed
			if feed.Name == "" {
				feed = chartFeed
			}
			out, err := Helm(Input{Objects: withPrivateChart(t), Overrides: []Override{loc("bad", 1, appsv1alpha1.ApplyNow, feed, tc.configs...)}})
			if err == nil {
				t.Fatalf("rendered %+v, want error %q", out.Spec, tc.wantErr)
			}
			if out != nil {
				t.Errorf("rendered %+v beside the error: the Description must stay as it was", out.Spec)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("error:\n got %s\nwant %s", err, tc.wantErr)
			}
			var re *Error
			if !errors.As(err, &re) || re.Reason != ReasonOverrideFailed {
				t.Errorf("error %#v: want a render Error with reason %s", err, ReasonOverrideFailed)
			}
		})
	}
}

// A value that fails on one field sets none of the others, and a failing
// override fails the whole Description, the overrides before it included.
func TestHelmChartOverrideNothingHalfApplied(t *testing.T) {
	before := glob("first", chartFeed, chartSpec(`{"spec": {"version": "8.6.3"}}`))
	opts, err := patchChart(mysqlOptions, &appsv1alpha1.HelmChart{Spec: appsv1alpha1.HelmChartSpec{HelmOptions: mysqlOptions}},
		`{"spec": {"version": "8.6.3", "wait": "yes"}}`)
	if err == nil {
		t.Fatal("a value with a bad field applied")
	}
	if diff := cmp.Diff(mysqlOptions, opts); diff != "" {
		t.Errorf("the good field of a failing value was set (-want +got):\n%s", diff)
	}
	out, err := Helm(Input{Objects: objects(t), Overrides: []Override{before, loc("bad", 1, appsv1alpha1.ApplyNow, chartFeed, chartSpec(`{"spec": {"chart": "other"}}`))}})
	if err == nil || out != nil {
		t.Errorf("Helm = %v, %v; want no spec and an error", out, err)
	}
}

func TestOverrideChartOnATemplate(t *testing.T) {
	tests := []struct {
		cfg     appsv1alpha1.OverrideConfig
		wantErr string
	}{{
		cfg:     chartSpec(`{"spec": {"replicas": 1}}`),
		wantErr: `Globalization g spec.overrides[0] (Helm, overrideChart) on apps/v1 Deployment "foo/my-nginx": overrideChart: true patches the spec of a HelmChart and applies only to HelmChart feeds: remove overrideChart from this override, or set it to false: fix or delete the override`,
	}, {
		// Before, the flag was ignored on other types: now it is refused
		// rather than meaning two things.
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, OverrideChart: true, Value: `[{"op":"replace","path":"/spec/replicas","value":1}]`},
		wantErr: `Globalization g spec.overrides[0] (JSONPatch, overrideChart) on apps/v1 Deployment "foo/my-nginx": overrideChart: true patches the spec of a HelmChart and applies only to HelmChart feeds: remove overrideChart from this override, or set it to false: fix or delete the override`,
	}}
	for _, tc := range tests {
		t.Run(string(tc.cfg.Type), func(t *testing.T) {
			out, err := Generic(Input{Objects: objects(t), Overrides: []Override{glob("g", deployFeed, tc.cfg)}})
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("Generic = %v, %v\nwant error %s", out, err, tc.wantErr)
			}
		})
	}
}

// Every field of a HelmChart's spec is either one an override may set or
// one it may not, with the reason: a field added to HelmOptions must be
// placed in one of them before chart overrides may touch it.
func TestEveryHelmChartFieldIsDecided(t *testing.T) {
	var fields []string
	typ := reflect.TypeFor[appsv1alpha1.HelmOptions]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	var decided []string
	for k := range maps.Keys(settableChartFields) {
		decided = append(decided, k)
	}
	for k := range maps.Keys(fixedChartFields) {
		if _, both := settableChartFields[k]; both {
			t.Errorf("field %s is both settable and fixed", k)
		}
		decided = append(decided, k)
	}
	slices.Sort(fields)
	slices.Sort(decided)
	if diff := cmp.Diff(fields, decided); diff != "" {
		t.Errorf("HelmOptions JSON fields (-have +decided):\n%s", diff)
	}
}
