package shadow

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
)

// fuzzResources are kinds of every shape: namespaced or not, with a status
// subresource or without, built in or a CRD.
var fuzzResources = []string{"deployments", "namespaces", "configmaps", "horizontalpodautoscalers", "widgets"}

// FuzzManifestRoundTrip stores any template as the shadow API's Create does
// (clean it, put it in a Manifest), sends the Manifest through the parent
// (JSON, as the parent stores it), and reads it back as Get does. Invariants:
// the template read back is the template written, with the server's
// metadata and nothing else; the Manifest's name is a valid object name;
// its config labels say what it holds and win over the template's own
// labels; and feed resolution finds the template under its own name.
func FuzzManifestRoundTrip(f *testing.F) {
	seeds := []struct {
		body string
		res  uint8
		ns   string
	}{
		{`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"my-nginx","namespace":"foo","labels":{"app":"nginx","apps.clusternet.io/config-kind":"Spoof"}},"spec":{"replicas":2}}`, 0, "foo"},
		{`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"foo","namespace":"ignored","uid":"u","resourceVersion":"1","generation":3,"managedFields":[],"selfLink":"/x"},"status":{"phase":"Active"}}`, 1, ""},
		{`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"conf","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"},"finalizers":["f"]},"data":{"config.yaml":"server:\n  port: 80\n"},"status":{"kept":"no status subresource"}}`, 2, "foo"},
		{`{"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"web"},"spec":{"targetCPUUtilizationPercentage":1.5e1,"maxReplicas":9007199254740993}}`, 3, "bar"},
		{`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"System:Aggregate-To-Admin","deletionTimestamp":"2021-08-07T08:50:56Z"},"spec":{"replicas":1,"list":[null,{"a":[]}]}}`, 4, "foo"},
	}
	for _, s := range seeds {
		f.Add([]byte(s.body), s.res, s.ns, "uid-1", "42", int64(3), int64(1628326256), false)
	}
	f.Add([]byte(`{"metadata":{"name":"x"}}`), uint8(0), "foo", "", "", int64(0), int64(0), true)
	parent := buildResources(testParent(), nil)
	f.Fuzz(func(t *testing.T, body []byte, res uint8, namespace, uid, rv string, generation, created int64, deleting bool) {
		r := parent[fuzzResources[int(res)%len(fuzzResources)]]
		if r == nil {
			t.Fatalf("no resource %s in the test parent", fuzzResources[int(res)%len(fuzzResources)])
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(body); err != nil {
			return // the apiserver refuses the body before the storage sees it
		}
		if _, ok := u.Object["metadata"].(map[string]any); !ok {
			return
		}
		// What Create does before it stores.
		u.SetAPIVersion(r.gvk().GroupVersion().String())
		u.SetKind(r.kind)
		u.SetNamespace(r.templateNamespace(namespace))
		r.cleanTemplate(u)
		if err := (&templateStorage{r: r}).validateMeta(u); err != nil {
			return // no name, or a namespace that is no namespace's name
		}
		written := u.DeepCopy()

		m := &appsv1alpha1.Manifest{}
		if err := r.fillManifest(m, u); err != nil {
			return // a template that does not encode is refused
		}
		if diff := cmp.Diff(written.Object, u.Object); diff != "" {
			t.Fatalf("fillManifest changed the template (-before +after):\n%s", diff)
		}
		if errs := validation.IsDNS1123Subdomain(m.Name); len(errs) > 0 {
			t.Fatalf("Manifest name %q for %s %q is not an object name: %v", m.Name, r.kind, u.GetName(), errs)
		}
		if m.Namespace != appsv1alpha1.ReservedNamespace {
			t.Fatalf("Manifest in namespace %q", m.Namespace)
		}
		wantConfig := map[string]string{
			appsv1alpha1.LabelConfigGroup: r.gvr.Group, appsv1alpha1.LabelConfigVersion: r.gvr.Version,
			appsv1alpha1.LabelConfigKind: r.kind, appsv1alpha1.LabelConfigNamespace: u.GetNamespace(),
		}
		for k, v := range wantConfig {
			if m.Labels[k] != v {
				t.Fatalf("Manifest label %s = %q, want %q (labels %v)", k, m.Labels[k], v, m.Labels)
			}
		}
		for k, v := range u.GetLabels() {
			if _, config := wantConfig[k]; !config && m.Labels[k] != v {
				t.Fatalf("template label %s=%q is %q on the Manifest", k, v, m.Labels[k])
			}
		}

		// The parent stores the Manifest and sets its metadata.
		stored := roundTripJSON(t, m)
		stored.UID, stored.ResourceVersion, stored.Generation = types.UID(uid), rv, generation
		stored.CreationTimestamp = metav1.Unix(created%(1<<33), 0).Rfc3339Copy()
		if deleting {
			ts := metav1.Unix(created%(1<<33)+30, 0).Rfc3339Copy()
			grace := int64(30)
			stored.DeletionTimestamp, stored.DeletionGracePeriodSeconds = &ts, &grace
		}
		stored = roundTripJSON(t, stored)

		got, err := objectFrom(stored)
		if err != nil {
			t.Fatalf("objectFrom refuses the Manifest fillManifest wrote: %v\ntemplate %s", err, stored.Template.Raw)
		}
		want := written.DeepCopy()
		want.SetUID(stored.UID)
		want.SetResourceVersion(stored.ResourceVersion)
		want.SetCreationTimestamp(stored.CreationTimestamp)
		want.SetGeneration(stored.Generation)
		if stored.DeletionTimestamp != nil {
			want.SetDeletionTimestamp(stored.DeletionTimestamp)
			want.SetDeletionGracePeriodSeconds(stored.DeletionGracePeriodSeconds)
		}
		if diff := cmp.Diff(jsonValue(t, want.Object), jsonValue(t, got.Object)); diff != "" {
			t.Fatalf("template read back (-written +read):\n%s", diff)
		}
		// Reading it again gives the same template.
		again, err := objectFrom(stored)
		if err != nil || !bytes.Equal(mustJSON(t, again.Object), mustJSON(t, got.Object)) {
			t.Fatalf("objectFrom is not deterministic: %v", err)
		}

		// A Subscription's feed naming the template finds it.
		feed := appsv1alpha1.Feed{APIVersion: r.gvk().GroupVersion().String(), Kind: r.kind, Namespace: u.GetNamespace(), Name: u.GetName()}
		tmpl, err := feeds.TemplateOf(stored, feed)
		if err != nil {
			t.Fatalf("feed %s does not find its own template: %v", feeds.Describe(feed), err)
		}
		for _, f := range []string{"uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp"} {
			if _, ok := tmpl.Object["metadata"].(map[string]any)[f]; ok {
				t.Fatalf("the template a feed resolves to keeps metadata.%s", f)
			}
		}
	})
}

func roundTripJSON(t *testing.T, m *appsv1alpha1.Manifest) *appsv1alpha1.Manifest {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("encoding the Manifest: %v", err)
	}
	out := &appsv1alpha1.Manifest{}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("decoding the Manifest: %v\n%s", err, raw)
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// jsonValue is v as JSON reads it, numbers kept as written: int64(1) and
// float64(1) are the same JSON.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(mustJSON(t, v)))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}
