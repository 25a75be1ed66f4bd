package main

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	metav1apply "k8s.io/client-go/applyconfigurations/meta/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusterapply "github.com/clusternet/clusternet/pkg/generated/applyconfiguration/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// Every kind of Clusternet's CRDs has a definition, under its Go type's
// name (what the type converter asks for).
func TestBuild(t *testing.T) {
	swagger, err := build("../../deploy/crds")
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1alpha1.AddToScheme, clusterv1beta1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	var want, got []string
	for gvk := range scheme.AllKnownTypes() {
		if gvk.Group == "" || strings.HasSuffix(gvk.Kind, "List") || gvk.Version == runtime.APIVersionInternal {
			continue
		}
		switch gvk.Kind {
		case "WatchEvent", "CreateOptions", "DeleteOptions", "GetOptions", "ListOptions", "PatchOptions", "UpdateOptions":
			continue // metav1.AddToGroupVersion's
		}
		name, err := scheme.ToOpenAPIDefinitionName(gvk)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
	}
	for name := range swagger.Definitions {
		if strings.HasPrefix(name, "com.github.clusternet.") {
			got = append(got, name)
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("definitions (-want +got):\n%s", diff)
	}
	if _, ok := swagger.Definitions["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]; !ok {
		t.Error("no ObjectMeta definition: metadata would be untyped")
	}
}

// The fake clientset tracks managed fields with the CRDs' schema: two
// managers apply conditions of their own types to a ManagedCluster's
// status (a list keyed by type), and each keeps its own. Without the schema
// the list would be atomic: the second apply would conflict.
func TestFakeClientsetMergesByListMapKey(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(&clusterv1beta1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "clusternet-abcde"}})
	now := metav1.Now()
	condition := func(typ string) *metav1apply.ConditionApplyConfiguration {
		return metav1apply.Condition().WithType(typ).WithStatus(metav1.ConditionTrue).WithReason("Test").WithMessage("ok").WithLastTransitionTime(now)
	}
	for manager, typ := range map[string]string{"clusternet-agent": "Ready", "clusternet-hub": "Scheduled"} {
		apply := clusterapply.ManagedCluster("edge", "clusternet-abcde").
			WithStatus(clusterapply.ManagedClusterStatus().WithConditions(condition(typ)))
		if _, err := cs.ClustersV1beta1().ManagedClusters("clusternet-abcde").ApplyStatus(ctx, apply, metav1.ApplyOptions{FieldManager: manager}); err != nil {
			t.Fatalf("%s applying condition %s: %v", manager, typ, err)
		}
	}
	got, err := cs.ClustersV1beta1().ManagedClusters("clusternet-abcde").Get(ctx, "edge", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, c := range got.Status.Conditions {
		types = append(types, c.Type)
	}
	sort.Strings(types)
	if diff := cmp.Diff([]string{"Ready", "Scheduled"}, types); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	// Extract reads the schema embedded in the apply configurations. (The
	// fake records status applies without their subresource.)
	mine, err := clusterapply.ExtractManagedCluster(got, "clusternet-hub")
	if err != nil {
		t.Fatal(err)
	}
	if mine.Status == nil || len(mine.Status.Conditions) != 1 || *mine.Status.Conditions[0].Type != "Scheduled" {
		t.Errorf("clusternet-hub's fields: %+v, want its condition Scheduled only", mine.Status)
	}
}
