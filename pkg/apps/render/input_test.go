package render

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
)

// mapReader serves Manifests (by name) and HelmCharts ("namespace/name").
type mapReader struct {
	manifests map[string]*appsv1alpha1.Manifest
	charts    map[string]*appsv1alpha1.HelmChart
}

func (r mapReader) Manifest(name string) (*appsv1alpha1.Manifest, error) {
	if m, ok := r.manifests[name]; ok {
		return m, nil
	}
	return nil, fmt.Errorf("manifest %q not found", name)
}

func (r mapReader) HelmChart(namespace, name string) (*appsv1alpha1.HelmChart, error) {
	if c, ok := r.charts[namespace+"/"+name]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("helmchart %s/%s not found", namespace, name)
}

func manifestOf(f appsv1alpha1.Feed, template string) (string, *appsv1alpha1.Manifest) {
	name := appsv1alpha1.ManifestName(feeds.Group(f.APIVersion), f.Kind, f.Namespace, f.Name)
	return name, &appsv1alpha1.Manifest{ObjectMeta: metav1.ObjectMeta{Namespace: appsv1alpha1.ReservedNamespace, Name: name},
		Template: runtime.RawExtension{Raw: []byte(template)}}
}

func TestInputOf(t *testing.T) {
	nsName, nsManifest := manifestOf(nsFeed, nsTmpl)
	found := &appsv1alpha1.HelmChart{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "mysql", Generation: 1},
		Status: appsv1alpha1.HelmChartStatus{Phase: appsv1alpha1.HelmChartFound, ObservedGeneration: 1}}
	notLookedUp := found.DeepCopy()
	notLookedUp.Status = appsv1alpha1.HelmChartStatus{ObservedGeneration: 1}
	deployName, _ := manifestOf(deployFeed, deployTmpl)
	reader := func(chart *appsv1alpha1.HelmChart) mapReader {
		return mapReader{manifests: map[string]*appsv1alpha1.Manifest{nsName: nsManifest}, charts: map[string]*appsv1alpha1.HelmChart{"default/mysql": chart}}
	}
	base := func(annotations map[string]string, fs ...appsv1alpha1.Feed) *appsv1alpha1.Base {
		return &appsv1alpha1.Base{ObjectMeta: metav1.ObjectMeta{Namespace: "clusternet-a", Name: "app", Annotations: annotations},
			Spec: appsv1alpha1.BaseSpec{Feeds: fs}}
	}
	overrides := []Override{glob("g", nsFeed)}

	t.Run("feeds, replicas, overrides and salt", func(t *testing.T) {
		b := base(map[string]string{AnnotationSubscriptionGeneration: "7",
			AnnotationReplicas: `[{"feed":"apps/Deployment/foo/my-nginx","path":"/spec/replicas","replicas":2}]`}, chartFeed, nsFeed)
		in, err := InputOf(b, "sub-uid", reader(found), overrides)
		if err != nil {
			t.Fatal(err)
		}
		want := Input{
			Objects:   []Object{{Feed: chartFeed, Chart: found}, {Feed: nsFeed, Template: tmpl(t, nsTmpl)}},
			Replicas:  []ReplicaSetting{{Feed: "apps/Deployment/foo/my-nginx", Path: "/spec/replicas", Replicas: 2}},
			Overrides: overrides,
			Salt:      "sub-uid/7",
		}
		if diff := cmp.Diff(want, in); diff != "" {
			t.Errorf("input (-want +got):\n%s", diff)
		}
	})

	errs := []struct {
		name    string
		base    *appsv1alpha1.Base
		chart   *appsv1alpha1.HelmChart
		wantErr string
		reason  string
	}{{
		name:    "a template that is not there",
		base:    base(nil, deployFeed),
		chart:   found,
		wantErr: `apps/v1 Deployment "foo/my-nginx": reading the template: manifest "` + deployName + `" not found: fix the template`,
		reason:  ReasonRenderFailed,
	}, {
		name:    "a chart not looked up yet",
		base:    base(nil, chartFeed),
		chart:   notLookedUp,
		wantErr: `apps.clusternet.io/v1alpha1 HelmChart "default/mysql": HelmChart default/mysql has not been looked up in its repository yet (status.phase is empty): waiting for it`,
		reason:  feeds.ReasonChartNotResolved,
	}, {
		name:    "a malformed replicas annotation",
		base:    base(map[string]string{AnnotationReplicas: "{"}, nsFeed),
		chart:   found,
		wantErr: "annotation apps.clusternet.io/replicas of Base clusternet-a/app: unexpected end of JSON input",
	}}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			_, err := InputOf(tc.base, "sub-uid", reader(tc.chart), nil)
			if err == nil {
				t.Fatalf("no error, want %q", tc.wantErr)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("error:\n got %s\nwant %s", err, tc.wantErr)
			}
			// A feed's failure is a *Error, whose reason the Base's Rendered
			// condition shows; the Base's own annotation is not a feed's.
			gotReason := ""
			if re := (*Error)(nil); errors.As(err, &re) {
				gotReason = re.Reason
			}
			if gotReason != tc.reason {
				t.Errorf("reason %q, want %q", gotReason, tc.reason)
			}
		})
	}
}
