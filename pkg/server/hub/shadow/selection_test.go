package shadow

import (
	"testing"

	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

func TestSelection(t *testing.T) {
	deployments := deploymentResource()
	namespaces := buildResources(testParent(), nil)["namespaces"]
	const base = "apps.clusternet.io/config-group=apps,apps.clusternet.io/config-kind=Deployment"
	for _, tc := range []struct {
		name                  string
		r                     *resource
		namespace             string
		labels, fields        string
		wantLabels, wantField string
		wantExact             bool
	}{
		{"all namespaces", deployments, "", "", "", base, "", true},
		{"one namespace", deployments, "foo", "", "", base + ",apps.clusternet.io/config-namespace=foo", "", true},
		{"label selector pushed down", deployments, "foo", "tier in (web,db),!canary", "",
			base + ",apps.clusternet.io/config-namespace=foo,!canary,tier in (db,web)", "", true},
		{"config label checked in the hub", deployments, "", appsv1alpha1.LabelConfigKind + "=Other", "", base, "", false},
		{"name in a namespace is the Manifest's name", deployments, "foo", "", "metadata.name=web",
			base + ",apps.clusternet.io/config-namespace=foo", "metadata.name=" + appsv1alpha1.ManifestName("apps", "Deployment", "foo", "web"), false},
		{"name across namespaces is checked in the hub", deployments, "", "", "metadata.name=web", base, "", false},
		{"namespace field gives the namespace", deployments, "", "", "metadata.namespace=bar,metadata.name=web",
			base + ",apps.clusternet.io/config-namespace=bar", "metadata.name=" + appsv1alpha1.ManifestName("apps", "Deployment", "bar", "web"), false},
		{"cluster-scoped name", namespaces, "foo", "", "metadata.name=foo",
			"apps.clusternet.io/config-group=,apps.clusternet.io/config-kind=Namespace", "metadata.name=" + appsv1alpha1.ManifestName("", "Namespace", "", "foo"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := &metainternalversion.ListOptions{}
			var err error
			if opts.LabelSelector, err = labels.Parse(tc.labels); err != nil {
				t.Fatal(err)
			}
			if opts.FieldSelector, err = fields.ParseSelector(tc.fields); err != nil {
				t.Fatal(err)
			}
			sel, err := tc.r.selection(tc.namespace, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := sel.manifestLabels.String(); got != tc.wantLabels {
				t.Errorf("Manifest labels = %q\nwant %q", got, tc.wantLabels)
			}
			if got := sel.manifestFields.String(); got != tc.wantField {
				t.Errorf("Manifest fields = %q, want %q", got, tc.wantField)
			}
			if sel.exact != tc.wantExact {
				t.Errorf("exact = %v, want %v", sel.exact, tc.wantExact)
			}
		})
	}
	if _, err := deployments.selection("", &metainternalversion.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.replicas", "1")}); err == nil {
		t.Error("a field selector on spec was accepted")
	}
}

func TestSelectionMatches(t *testing.T) {
	r := deploymentResource()
	template := func(namespace, name string, labels map[string]string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("apps/v1")
		u.SetKind("Deployment")
		u.SetNamespace(namespace)
		u.SetName(name)
		u.SetLabels(labels)
		return u
	}
	manifestLabels := r.configLabels("v1", "foo")
	for _, tc := range []struct {
		name           string
		labels, fields string
		u              *unstructured.Unstructured
		manifestLabels map[string]string
		want           bool
	}{
		{"everything", "", "", template("foo", "web", nil), manifestLabels, true},
		{"label matches", "tier=web", "", template("foo", "web", map[string]string{"tier": "web"}), manifestLabels, true},
		{"label differs", "tier=web", "", template("foo", "web", map[string]string{"tier": "db"}), manifestLabels, false},
		{"config key is the template's", appsv1alpha1.LabelConfigKind + "=Other", "", template("foo", "web", nil), manifestLabels, false},
		{"name differs", "", "metadata.name=db", template("foo", "web", nil), manifestLabels, false},
		{"namespace matches", "", "metadata.namespace=foo", template("foo", "web", nil), manifestLabels, true},
		{"Manifest of this kind in another version", "", "", template("foo", "web", nil), r.configLabels("v1beta1", "bar"), true},
		{"Manifest of another group", "", "", template("foo", "web", nil), map[string]string{appsv1alpha1.LabelConfigGroup: "x", appsv1alpha1.LabelConfigKind: "Deployment"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := &metainternalversion.ListOptions{}
			opts.LabelSelector, _ = labels.Parse(tc.labels)
			opts.FieldSelector, _ = fields.ParseSelector(tc.fields)
			sel, err := r.selection("", opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := sel.matches(tc.manifestLabels, tc.u); got != tc.want {
				t.Errorf("matches = %v, want %v", got, tc.want)
			}
		})
	}
}
