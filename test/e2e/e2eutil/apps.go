package e2eutil

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/test/testbed"
)

// ShadowServed says whether the parent answers the hub's shadow API
// (/apis/shadow/v1alpha1), where templates are written the way
// `kubectl clusternet apply` writes them.
func ShadowServed(t *testing.T, parent *testbed.Cluster) bool {
	t.Helper()
	_, _, err := Kubectl(t, parent, "", "get", "--raw", "/apis/shadow/v1alpha1")
	return err == nil
}

// decodeObject reads one object written as YAML or JSON.
func decodeObject(t *testing.T, obj string) *unstructured.Unstructured {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(obj))
	if err != nil {
		t.Fatalf("template is neither YAML nor JSON: %v\n%s", err, obj)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		t.Fatalf("template is not an object: %v\n%s", err, obj)
	}
	return u
}

// CreateTemplate stores obj (one object, YAML or JSON) as a template:
// through the shadow API when the parent serves it, otherwise as the
// Manifest the shadow API would write (WriteManifest).
func CreateTemplate(t *testing.T, parent *testbed.Cluster, obj string) {
	t.Helper()
	if !ShadowServed(t, parent) {
		WriteManifest(t, parent, obj)
		return
	}
	u := decodeObject(t, obj)
	cfg, err := parent.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(disco)
	if err != nil {
		t.Fatal(err)
	}
	gvk := u.GroupVersionKind()
	mapping, err := restmapper.NewDiscoveryRESTMapper(groups).RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("kind of template %s: %v", u.GetName(), err)
	}
	path := "/apis/shadow/v1alpha1/"
	if u.GetNamespace() != "" {
		path += "namespaces/" + u.GetNamespace() + "/"
	}
	path += mapping.Resource.Resource
	raw, _ := u.MarshalJSON()
	MustKubectl(t, parent, string(raw), "create", "--raw", path, "-f", "-")
}

// WriteManifest writes obj (one object, YAML or JSON) as the shadow API
// stores templates: a Manifest in clusternet-reserved named by
// ManifestName, labelled with the template's group, version, kind and
// namespace, holding the object as written.
func WriteManifest(t *testing.T, parent *testbed.Cluster, obj string) {
	t.Helper()
	u := decodeObject(t, obj)
	gvk := u.GroupVersionKind()
	raw, _ := u.MarshalJSON()
	m := &appsv1alpha1.Manifest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: appsv1alpha1.ReservedNamespace,
			Name:      appsv1alpha1.ManifestName(gvk.Group, gvk.Kind, u.GetNamespace(), u.GetName()),
			Labels: map[string]string{
				appsv1alpha1.LabelConfigGroup:     gvk.Group,
				appsv1alpha1.LabelConfigVersion:   gvk.Version,
				appsv1alpha1.LabelConfigKind:      gvk.Kind,
				appsv1alpha1.LabelConfigNamespace: u.GetNamespace(),
			},
		},
		Template: runtime.RawExtension{Raw: raw},
	}
	ctx := context.Background()
	if _, _, err := Kubectl(t, parent, "", "get", "ns", appsv1alpha1.ReservedNamespace); err != nil {
		MustKubectl(t, parent, "", "create", "namespace", appsv1alpha1.ReservedNamespace)
	}
	manifests := ClusternetClient(t, parent).AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace)
	old, err := manifests.Get(ctx, m.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = manifests.Create(ctx, m, metav1.CreateOptions{})
	case err == nil:
		m.ResourceVersion = old.ResourceVersion
		_, err = manifests.Update(ctx, m, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatalf("writing the template of %s %s: %v", gvk.Kind, u.GetName(), err)
	}
}

// Chart is one chart a test repository serves.
type Chart struct {
	Name, Version string
}

// ServeChartRepo serves a Helm chart repository on 127.0.0.1 for the
// test's duration and returns its URL. Each chart installs one ConfigMap.
func ServeChartRepo(t *testing.T, charts ...Chart) string {
	t.Helper()
	dir := t.TempDir()
	for _, c := range charts {
		ch := &chart.Chart{
			Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: c.Name, Version: c.Version, AppVersion: c.Version, Type: "application"},
			Templates: []*chart.File{{Name: "templates/configmap.yaml", Data: []byte(
				"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  chart: " + c.Name + "\n  replicas: {{ .Values.replicaCount | default 1 | quote }}\n")}},
			Values: map[string]any{"replicaCount": 1},
		}
		if _, err := chartutil.Save(ch, dir); err != nil {
			t.Fatalf("packaging chart %s: %v", c.Name, err)
		}
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	index, err := repo.IndexDirectory(dir, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	index.SortEntries()
	if err := index.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(srv.URL, "/")
}
