package apps

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
	"github.com/clusternet/clusternet/pkg/apps/render"
)

// Fixtures.

const (
	nsA, nsB = "clusternet-aaaaa", "clusternet-bbbbb"
	idA, idB = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
)

func cluster(ns, name, id string, kv ...string) *clusterv1beta1.ManagedCluster {
	ls := map[string]string{clusterv1beta1.LabelClusterID: id, clusterv1beta1.LabelClusterName: name}
	for i := 0; i+1 < len(kv); i += 2 {
		ls[kv[i]] = kv[i+1]
	}
	return &clusterv1beta1.ManagedCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: ls},
		Spec:       clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(id), SyncMode: clusterv1beta1.DualSyncMode},
		Status: clusterv1beta1.ManagedClusterStatus{Readyz: true, Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")}},
	}
}

func twoClusters() []runtime.Object {
	return []runtime.Object{cluster(nsA, "edge-a", idA, "env", "demo"), cluster(nsB, "edge-b", idB, "env", "demo")}
}

const (
	nsJSON     = `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"foo"}}`
	svcJSON    = `{"apiVersion":"v1","kind":"Service","metadata":{"name":"my-nginx-svc","namespace":"foo"},"spec":{"ports":[{"port":80}],"selector":{"app":"nginx"},"type":"ClusterIP"}}`
	deployJSON = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"clusternet-app":"multi-cluster-nginx"},"name":"my-nginx","namespace":"foo"},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"nginx"}},"template":{"metadata":{"labels":{"app":"nginx"}},"spec":{"containers":[{"image":"nginx:1.14.2","name":"nginx"}]}}}}`
)

// template stores obj as the shadow API does, with the server's noise the
// hub strips.
func template(obj string) *appsv1alpha1.Manifest {
	var u map[string]any
	if err := json.Unmarshal([]byte(obj), &u); err != nil {
		panic(err)
	}
	md := u["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	gv, _ := schema.ParseGroupVersion(u["apiVersion"].(string))
	kind := u["kind"].(string)
	noisy := map[string]any{}
	for k, v := range u {
		noisy[k] = v
	}
	mdNoisy := map[string]any{"uid": "0000", "resourceVersion": "42", "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 2,
		"managedFields": []any{map[string]any{"manager": "kubectl"}}, "annotations": map[string]any{"kubectl.kubernetes.io/last-applied-configuration": obj}}
	for k, v := range md {
		mdNoisy[k] = v
	}
	noisy["metadata"] = mdNoisy
	noisy["status"] = map[string]any{"observedGeneration": 2}
	raw, _ := json.Marshal(noisy)
	return &appsv1alpha1.Manifest{
		ObjectMeta: metav1.ObjectMeta{Namespace: appsv1alpha1.ReservedNamespace, Name: appsv1alpha1.ManifestName(gv.Group, kind, ns, md["name"].(string)),
			Labels: map[string]string{appsv1alpha1.LabelConfigGroup: gv.Group, appsv1alpha1.LabelConfigVersion: gv.Version,
				appsv1alpha1.LabelConfigKind: kind, appsv1alpha1.LabelConfigNamespace: ns}},
		Template: runtime.RawExtension{Raw: raw},
	}
}

func helmChart(phase appsv1alpha1.HelmChartPhase) *appsv1alpha1.HelmChart {
	return &appsv1alpha1.HelmChart{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "mysql"},
		Spec:   appsv1alpha1.HelmChartSpec{HelmOptions: appsv1alpha1.HelmOptions{Repository: "https://charts.example", Chart: "mysql", ChartVersion: "8.6.2", TargetNamespace: "abc"}},
		Status: appsv1alpha1.HelmChartStatus{Phase: phase, ObservedGeneration: 1}} // the fake API's first generation
}

var (
	chartFeed  = appsv1alpha1.Feed{APIVersion: "apps.clusternet.io/v1alpha1", Kind: "HelmChart", Namespace: "default", Name: "mysql"}
	nsFeed     = appsv1alpha1.Feed{APIVersion: "v1", Kind: "Namespace", Name: "foo"}
	svcFeed    = appsv1alpha1.Feed{APIVersion: "v1", Kind: "Service", Namespace: "foo", Name: "my-nginx-svc"}
	deployFeed = appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "my-nginx"}
	deploySel  = appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", FeedSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"clusternet-app": "multi-cluster-nginx"}}}
)

func subscription(name string, feeds ...appsv1alpha1.Feed) *appsv1alpha1.Subscription {
	return &appsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: appsv1alpha1.SubscriptionSpec{
			Subscribers: []appsv1alpha1.Subscriber{{ClusterAffinity: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "demo"}}}},
			Feeds:       feeds,
		},
	}
}

func localization(ns, name string, priority int32, policy appsv1alpha1.OverridePolicy, feed appsv1alpha1.Feed, typ appsv1alpha1.OverrideType, value string) *appsv1alpha1.Localization {
	return &appsv1alpha1.Localization{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1alpha1.LocalizationSpec{OverrideSpec: appsv1alpha1.OverrideSpec{Priority: ptr.To(priority), OverridePolicy: policy, Feed: feed,
			Overrides: []appsv1alpha1.OverrideConfig{{Type: typ, Value: value}}}}}
}

func globalization(name string, priority int32, feed appsv1alpha1.Feed, value string) *appsv1alpha1.Globalization {
	return &appsv1alpha1.Globalization{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1alpha1.GlobalizationSpec{OverrideSpec: appsv1alpha1.OverrideSpec{Priority: ptr.To(priority), OverridePolicy: appsv1alpha1.ApplyNow, Feed: feed,
			Overrides: []appsv1alpha1.OverrideConfig{{Type: appsv1alpha1.JSONPatchType, Value: value}}}}}
}

func replicasPatch(n int) string {
	return fmt.Sprintf(`[{"op":"replace","path":"/spec/replicas","value":%d}]`, n)
}

// Readers.

func (h *harness) sub(name string) *appsv1alpha1.Subscription {
	s, err := h.cs.AppsV1alpha1().Subscriptions("default").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return s
}

func (h *harness) base(ns, name string) *appsv1alpha1.Base {
	b, err := h.cs.AppsV1alpha1().Bases(ns).Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return b
}

func (h *harness) desc(ns, name string) *appsv1alpha1.Description {
	d, err := h.cs.AppsV1alpha1().Descriptions(ns).Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return d
}

// pending waits for a Description the hub rendered that no deployer has
// reported on (no phase when new, Pending when rendered again) and returns
// it.
func (h *harness) pending(ns, name string) *appsv1alpha1.Description {
	h.t.Helper()
	var d *appsv1alpha1.Description
	h.eventually("Description "+ns+"/"+name+" pending", func() (bool, string) {
		d = h.desc(ns, name)
		return d != nil && (d.Status.Phase == "" || d.Status.Phase == appsv1alpha1.DescriptionPhasePending), fmt.Sprintf("%v", d)
	})
	return d
}

func cond(conds []metav1.Condition, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(conds, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// replicasIn is spec.replicas of the Deployment in a Generic Description (-1 if none).
func replicasIn(d *appsv1alpha1.Description) int {
	if d == nil {
		return -1
	}
	for _, r := range d.Spec.Raw {
		var o struct {
			Kind string `json:"kind"`
			Spec struct {
				Replicas *int `json:"replicas"`
			} `json:"spec"`
		}
		if json.Unmarshal(r.Raw, &o) == nil && o.Kind == "Deployment" && o.Spec.Replicas != nil {
			return *o.Spec.Replicas
		}
	}
	return -1
}

func kinds(d *appsv1alpha1.Description) []string {
	var out []string
	for _, r := range d.Spec.Raw {
		var o struct {
			Kind string `json:"kind"`
		}
		_ = json.Unmarshal(r.Raw, &o)
		out = append(out, o.Kind)
	}
	return out
}

// Writers.

func (h *harness) create(obj runtime.Object) {
	h.t.Helper()
	var err error
	switch o := obj.(type) {
	case *appsv1alpha1.Subscription:
		_, err = h.cs.AppsV1alpha1().Subscriptions(o.Namespace).Create(h.ctx, o, metav1.CreateOptions{})
	case *appsv1alpha1.Localization:
		_, err = h.cs.AppsV1alpha1().Localizations(o.Namespace).Create(h.ctx, o, metav1.CreateOptions{})
	case *appsv1alpha1.Globalization:
		_, err = h.cs.AppsV1alpha1().Globalizations().Create(h.ctx, o, metav1.CreateOptions{})
	default:
		h.t.Fatalf("create %T: not supported", obj)
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) updateSub(name string, edit func(*appsv1alpha1.Subscription)) {
	h.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := h.sub(name)
		edit(s)
		_, err := h.cs.AppsV1alpha1().Subscriptions("default").Update(h.ctx, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// deployerCleans removes the finalizer of a Description being deleted, as
// its deployer does once the child is clean.
func (h *harness) deployerCleans(ns, name string) {
	h.t.Helper()
	h.eventually("Description "+ns+"/"+name+" being deleted", func() (bool, string) {
		d := h.desc(ns, name)
		if d == nil {
			return true, ""
		}
		if d.DeletionTimestamp == nil {
			return false, "no deletionTimestamp"
		}
		d.Finalizers = slices.DeleteFunc(d.Finalizers, func(f string) bool { return f == appsv1alpha1.Finalizer })
		_, err := h.cs.AppsV1alpha1().Descriptions(ns).Update(h.ctx, d, metav1.UpdateOptions{})
		return err == nil, fmt.Sprint(err)
	})
}

// reportSuccess writes a Description's status as a deployer would.
func (h *harness) reportSuccess(ns, name string, statuses ...appsv1alpha1.ManifestStatus) {
	h.t.Helper()
	h.eventually("status of "+ns+"/"+name+" written", func() (bool, string) {
		d := h.desc(ns, name)
		if d == nil {
			return false, "no Description"
		}
		d.Status = appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ManifestStatuses: statuses}
		_, err := h.cs.AppsV1alpha1().Descriptions(ns).UpdateStatus(h.ctx, d, metav1.UpdateOptions{})
		return err == nil, fmt.Sprint(err)
	})
}

func seedObjects(extra ...runtime.Object) []runtime.Object {
	return append(append(twoClusters(), template(nsJSON), template(svcJSON), template(deployJSON), helmChart(appsv1alpha1.HelmChartFound)), extra...)
}

func TestSeedApplication(t *testing.T) {
	h := start(t, seedObjects(subscription("app-demo", chartFeed, nsFeed, svcFeed, deploySel))...)

	for _, ns := range []string{nsA, nsB} {
		h.eventually("Descriptions in "+ns, func() (bool, string) {
			return h.desc(ns, "app-demo-generic") != nil && h.desc(ns, "app-demo-helm") != nil, "not yet"
		})
		b := h.base(ns, "app-demo")
		s := h.sub("app-demo")
		wantLabels := map[string]string{appsv1alpha1.LabelSubscriptionName: "app-demo", appsv1alpha1.LabelSubscriptionNamespace: "default",
			appsv1alpha1.LabelSubscriptionUID: string(s.UID), appsv1alpha1.LabelClusterID: map[string]string{nsA: idA, nsB: idB}[ns]}
		if diff := cmp.Diff(wantLabels, b.Labels); diff != "" {
			t.Errorf("Base %s labels (-want +got):\n%s", ns, diff)
		}
		if diff := cmp.Diff([]appsv1alpha1.Feed{chartFeed, nsFeed, svcFeed, deployFeed}, b.Spec.Feeds); diff != "" {
			t.Errorf("Base %s feeds (-want +got):\n%s", ns, diff)
		}
		if !slices.Contains(b.Finalizers, appsv1alpha1.Finalizer) {
			t.Errorf("Base %s finalizers = %v", ns, b.Finalizers)
		}

		g := h.desc(ns, "app-demo-generic")
		if g.Spec.Deployer != appsv1alpha1.DescriptionGenericDeployer {
			t.Errorf("deployer = %s", g.Spec.Deployer)
		}
		var raw []string
		for _, r := range g.Spec.Raw {
			raw = append(raw, string(r.Raw))
		}
		if diff := cmp.Diff([]string{nsJSON, svcJSON, deployJSON}, raw); diff != "" {
			t.Errorf("Generic raw is not exactly the templates (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantLabels, g.Labels); diff != "" {
			t.Errorf("Description labels (-want +got):\n%s", diff)
		}
		if !slices.Contains(g.Finalizers, appsv1alpha1.Finalizer) || len(g.OwnerReferences) != 1 || g.OwnerReferences[0].UID != b.UID {
			t.Errorf("Description finalizers %v, owners %v", g.Finalizers, g.OwnerReferences)
		}
		hd := h.desc(ns, "app-demo-helm")
		wantHelm := appsv1alpha1.DescriptionSpec{Deployer: appsv1alpha1.DescriptionHelmDeployer,
			Charts:   []appsv1alpha1.ChartReference{{Namespace: "default", Name: "mysql", Options: &helmChart("").Spec.HelmOptions}},
			ChartRaw: [][]byte{[]byte("{}")}}
		if diff := cmp.Diff(wantHelm, hd.Spec); diff != "" {
			t.Errorf("Helm spec (-want +got):\n%s", diff)
		}
	}

	h.eventually("status: bound, rolling out", func() (bool, string) {
		s := h.sub("app-demo")
		ready := cond(s.Status.Conditions, ConditionReady)
		ok := cmp.Equal(s.Status.BindingClusters, []string{nsA + "/edge-a", nsB + "/edge-b"}) && s.Status.DesiredReleases == 4 &&
			s.Status.BoundClusters == 2 && s.Status.Ready == "0/2" &&
			ready.Reason == "RolloutInProgress" && cond(s.Status.Conditions, ConditionRendered).Status == metav1.ConditionTrue &&
			cond(s.Status.Conditions, ConditionScheduled).Status == metav1.ConditionTrue && cond(s.Status.Conditions, ConditionFeedsResolved).Status == metav1.ConditionTrue
		return ok, fmt.Sprintf("%+v", s.Status)
	})
	if s := h.sub("app-demo"); s.Status.SpecHash == "" || !slices.Contains(s.Finalizers, appsv1alpha1.Finalizer) {
		t.Errorf("specHash %q, finalizers %v", s.Status.SpecHash, s.Finalizers)
	}
	fi, err := h.cs.AppsV1alpha1().FeedInventories("default").Get(h.ctx, "app-demo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantInv := []appsv1alpha1.FeedOrder{{Feed: chartFeed}, {Feed: nsFeed}, {Feed: svcFeed}, {Feed: deployFeed, DesiredReplicas: ptr.To[int32](3), ReplicaJSONPath: "/spec/replicas"}}
	if diff := cmp.Diff(wantInv, fi.Spec.Feeds); diff != "" {
		t.Errorf("FeedInventory (-want +got):\n%s", diff)
	}

	// The deployers report: status aggregates.
	applied := func(f appsv1alpha1.Feed, replicas int32) appsv1alpha1.ManifestStatus {
		return appsv1alpha1.ManifestStatus{Feed: f, FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas}}
	}
	for _, ns := range []string{nsA, nsB} {
		h.reportSuccess(ns, "app-demo-generic", applied(nsFeed, 0), applied(svcFeed, 0), applied(deployFeed, 3))
		h.reportSuccess(ns, "app-demo-helm", applied(chartFeed, 0))
	}
	h.eventually("Ready", func() (bool, string) {
		s := h.sub("app-demo")
		ready := cond(s.Status.Conditions, ConditionReady)
		return ready.Status == metav1.ConditionTrue && s.Status.CompletedReleases == 4, fmt.Sprintf("%+v %d/%d", ready, s.Status.CompletedReleases, s.Status.DesiredReleases)
	})
	s := h.sub("app-demo")
	if s.Status.BoundClusters != 2 || s.Status.Ready != "2/2" {
		t.Errorf("printer columns: boundClusters %d, ready %q; want 2, \"2/2\"", s.Status.BoundClusters, s.Status.Ready)
	}
	if got := cond(s.Status.Conditions, ConditionReady).Message; got != "all 4 Descriptions deployed in 2 clusters" {
		t.Errorf("Ready message = %q", got)
	}
	var deployAgg appsv1alpha1.AggregatedStatus
	for _, a := range s.Status.AggregatedStatuses {
		if a.Feed == deployFeed {
			deployAgg = a
		}
	}
	want := appsv1alpha1.AggregatedStatus{Feed: deployFeed,
		FeedStatusSummary: appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 6, ReadyReplicas: 6, AvailableReplicas: 6},
		AvailableClusters: 2,
		FeedStatusDetails: []appsv1alpha1.FeedStatusPerCluster{
			{FeedStatus: applied(deployFeed, 3).FeedStatus, ClusterID: idA, ClusterName: "edge-a"},
			{FeedStatus: applied(deployFeed, 3).FeedStatus, ClusterID: idB, ClusterName: "edge-b"},
		}}
	if diff := cmp.Diff(want, deployAgg); diff != "" {
		t.Errorf("aggregated Deployment status (-want +got):\n%s", diff)
	}
	if len(s.Status.AggregatedStatuses) != 4 {
		t.Errorf("aggregated statuses for %d feeds, want 4", len(s.Status.AggregatedStatuses))
	}
}

func TestBadFeedsLeaveClustersAlone(t *testing.T) {
	h := start(t, seedObjects(subscription("app", nsFeed, svcFeed))...)
	h.pending(nsB, "app-generic")
	before := h.pending(nsA, "app-generic")
	h.eventually("Rendered on the Base", func() (bool, string) {
		return cond(h.base(nsA, "app").Status.Conditions, ConditionRendered).Status == metav1.ConditionTrue, ""
	})
	baseBefore := h.base(nsA, "app")

	// The seed's own mistake: apps/v1 Service.
	h.updateSub("app", func(s *appsv1alpha1.Subscription) {
		s.Spec.Feeds = []appsv1alpha1.Feed{nsFeed, {APIVersion: "apps/v1", Kind: "Service", Namespace: "foo", Name: "my-nginx-svc"}, deploySel}
	})
	h.eventually("FeedsResolved False", func() (bool, string) {
		c := cond(h.sub("app").Status.Conditions, ConditionFeedsResolved)
		return c.Status == metav1.ConditionFalse, fmt.Sprintf("%+v", c)
	})
	s := h.sub("app")
	c := cond(s.Status.Conditions, ConditionFeedsResolved)
	wantMsg := `spec.feeds[1]: the parent does not serve kind "Service" in apiVersion "apps/v1": Service is served as apiVersion "v1": set spec.feeds[1].apiVersion to "v1"`
	if c.Reason != "FeedKindNotServed" || c.Message != wantMsg {
		t.Errorf("FeedsResolved = %s %q, want FeedKindNotServed %q", c.Reason, c.Message, wantMsg)
	}
	if r := cond(s.Status.Conditions, ConditionReady); r.Status != metav1.ConditionFalse || r.Reason != ReasonFeedsNotResolved ||
		!strings.Contains(r.Message, "the 2 bound clusters keep their Descriptions as they were") {
		t.Errorf("Ready = %+v", r)
	}
	if after := h.desc(nsA, "app-generic"); after.ResourceVersion != before.ResourceVersion {
		t.Errorf("the Description changed under a bad feed: %v -> %v", kinds(before), kinds(after))
	}
	if after := h.base(nsA, "app"); after.ResourceVersion != baseBefore.ResourceVersion {
		t.Errorf("the Base changed under a bad feed: %v", after.Spec.Feeds)
	}
	if got := h.events.matching("Subscription default/app", "Warning FeedKindNotServed", `set spec.feeds[1].apiVersion to "v1"`); len(got) == 0 {
		t.Errorf("no FeedKindNotServed event on the Subscription; events: %v", h.events.matching())
	}
	if got := h.events.matching("Base "+nsA+"/app", "Warning FeedsNotResolved", "spec.feeds[1]"); len(got) == 0 {
		t.Errorf("no FeedsNotResolved event on the Base; events: %v", h.events.matching())
	}
	if h.mapper.resets.Load() == 0 {
		t.Error("the mapper was not reset before saying a kind is not served")
	}

	// A missing template, in a new Subscription: no Base at all.
	h.create(subscription("missing", appsv1alpha1.Feed{APIVersion: "v1", Kind: "ConfigMap", Namespace: "foo", Name: "nope"}))
	h.eventually("FeedNotFound", func() (bool, string) {
		s := h.sub("missing")
		c := cond(s.Status.Conditions, ConditionFeedsResolved)
		return c.Reason == "FeedNotFound" && strings.Contains(c.Message, `v1 ConfigMap "foo/nope" has no template`), fmt.Sprintf("%+v", c)
	})
	if b := h.base(nsA, "missing"); b != nil {
		t.Errorf("a Base was made for a Subscription whose feed does not exist")
	}

	// Fixed: rolls out.
	h.updateSub("app", func(s *appsv1alpha1.Subscription) { s.Spec.Feeds[1].APIVersion = "v1" })
	h.eventually("rendered with the Deployment", func() (bool, string) {
		d := h.desc(nsA, "app-generic")
		return cmp.Equal(kinds(d), []string{"Namespace", "Service", "Deployment"}), fmt.Sprint(kinds(d))
	})
}

// A HelmChart edited to a repository that is down (or a version it does
// not have) is a bad feed like any other: the Subscription says so and every
// cluster keeps its Helm Description, the chart spec it carries included,
// so no HelmRelease changes; once the new spec resolves it is rendered.
func TestHelmChartEditedToNotFoundKeepsDescriptions(t *testing.T) {
	h := start(t, append(twoClusters(), helmChart(appsv1alpha1.HelmChartFound), subscription("db", chartFeed))...)
	h.eventually("Helm Description", func() (bool, string) { return h.desc(nsA, "db-helm") != nil, "" })
	before := h.desc(nsA, "db-helm").Spec

	ch, err := h.cs.AppsV1alpha1().HelmCharts("default").Get(h.ctx, "mysql", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch.Spec.Repository, ch.Spec.ChartVersion = "https://down.example", "9.0.0"
	if ch, err = h.cs.AppsV1alpha1().HelmCharts("default").Update(h.ctx, ch, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("FeedsResolved False while the edit is not looked up", func() (bool, string) {
		c := cond(h.sub("db").Status.Conditions, ConditionFeedsResolved)
		return c.Reason == "HelmChartNotResolved", fmt.Sprintf("%+v", c)
	})
	ch.Status = appsv1alpha1.HelmChartStatus{Phase: appsv1alpha1.HelmChartNotFound, Reason: "cannot be reached", ObservedGeneration: ch.Generation}
	if ch, err = h.cs.AppsV1alpha1().HelmCharts("default").UpdateStatus(h.ctx, ch, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("HelmChartNotFound", func() (bool, string) {
		c := cond(h.sub("db").Status.Conditions, ConditionFeedsResolved)
		return c.Reason == "HelmChartNotFound", fmt.Sprintf("%+v", c)
	})
	if diff := cmp.Diff(before, h.desc(nsA, "db-helm").Spec); diff != "" {
		t.Errorf("the Helm Description changed with a HelmChart that does not resolve (-before +after):\n%s", diff)
	}

	ch.Status = appsv1alpha1.HelmChartStatus{Phase: appsv1alpha1.HelmChartFound, ObservedGeneration: ch.Generation}
	if _, err := h.cs.AppsV1alpha1().HelmCharts("default").UpdateStatus(h.ctx, ch, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("the new spec rendered", func() (bool, string) {
		o := h.desc(nsA, "db-helm").Spec.Charts[0].Options
		return o != nil && o.Repository == "https://down.example" && o.ChartVersion == "9.0.0", fmt.Sprintf("%+v", o)
	})
}

func TestHelmChartNotFound(t *testing.T) {
	objs := append(twoClusters(), helmChart(appsv1alpha1.HelmChartNotFound), subscription("db", chartFeed))
	objs[2].(*appsv1alpha1.HelmChart).Status.Reason = `chart "mysql" version "8.6.2" not found in https://charts.example`
	h := start(t, objs...)
	h.eventually("HelmChartNotFound", func() (bool, string) {
		c := cond(h.sub("db").Status.Conditions, ConditionFeedsResolved)
		return c.Reason == "HelmChartNotFound" && strings.Contains(c.Message, `chart "mysql" version "8.6.2" not found`), fmt.Sprintf("%+v", c)
	})
	// Found after the chart is fixed: a HelmChart change re-resolves.
	ch, _ := h.cs.AppsV1alpha1().HelmCharts("default").Get(h.ctx, "mysql", metav1.GetOptions{})
	ch.Status = appsv1alpha1.HelmChartStatus{Phase: appsv1alpha1.HelmChartFound, ObservedGeneration: ch.Generation}
	if _, err := h.cs.AppsV1alpha1().HelmCharts("default").UpdateStatus(h.ctx, ch, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("Helm Description", func() (bool, string) { return h.desc(nsA, "db-helm") != nil && h.desc(nsA, "db-generic") == nil, "" })
}

func TestOverrides(t *testing.T) {
	h := start(t, seedObjects(subscription("app", nsFeed, deployFeed))...)
	h.eventually("rendered", func() (bool, string) {
		return replicasIn(h.desc(nsA, "app-generic")) == 3 && replicasIn(h.desc(nsB, "app-generic")) == 3, ""
	})
	want := func(what string, a, b int) {
		t.Helper()
		h.eventually(what, func() (bool, string) {
			ga, gb := replicasIn(h.desc(nsA, "app-generic")), replicasIn(h.desc(nsB, "app-generic"))
			return ga == a && gb == b, fmt.Sprintf("replicas a=%d b=%d, want a=%d b=%d", ga, gb, a, b)
		})
	}

	h.create(localization(nsA, "one", 500, appsv1alpha1.ApplyNow, deployFeed, appsv1alpha1.JSONPatchType, replicasPatch(1)))
	want("a Localization changes only its cluster", 1, 3)

	h.create(globalization("high", 900, deployFeed, replicasPatch(7)))
	h.create(globalization("low", 100, deployFeed, replicasPatch(5)))
	want("the higher priority Globalization wins; Localizations apply after Globalizations", 1, 7)

	if err := h.cs.AppsV1alpha1().Globalizations().Delete(h.ctx, "high", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want("deleting an override rolls back", 1, 5)

	// A patch that does not apply: named, nothing half-applied.
	before := h.pending(nsB, "app-generic")
	h.create(localization(nsB, "broken", 500, appsv1alpha1.ApplyNow, deployFeed, appsv1alpha1.JSONPatchType, `[{"op":"replace","path":"/spec/replica","value":2}]`))
	h.eventually("Rendered False on the Base", func() (bool, string) {
		c := cond(h.base(nsB, "app").Status.Conditions, ConditionRendered)
		return c.Status == metav1.ConditionFalse, fmt.Sprintf("%+v", c)
	})
	c := cond(h.base(nsB, "app").Status.Conditions, ConditionRendered)
	wantMsg := `Localization ` + nsB + `/broken spec.overrides[0] (JSONPatch) on apps/v1 Deployment "foo/my-nginx": JSONPatch operation 0 at "/spec/replica": the object has nothing at that path to replace: fix or delete the override; the Descriptions stay as they were`
	if c.Reason != ReasonOverrideFailed || c.Message != wantMsg {
		t.Errorf("Rendered = %s %q\nwant %s %q", c.Reason, c.Message, ReasonOverrideFailed, wantMsg)
	}
	if after := h.desc(nsB, "app-generic"); after.ResourceVersion != before.ResourceVersion {
		t.Errorf("the Description changed although its render failed")
	}
	h.eventually("the Subscription says so", func() (bool, string) {
		s := h.sub("app")
		r, ready := cond(s.Status.Conditions, ConditionRendered), cond(s.Status.Conditions, ConditionReady)
		return r.Reason == ReasonOverrideFailed && strings.Contains(r.Message, nsB+"/broken") && ready.Reason == ReasonOverrideFailed, fmt.Sprintf("%+v", r)
	})
	for _, kind := range []string{"Base " + nsB + "/app", "Subscription default/app", "Description " + nsB + "/app-generic"} {
		if got := h.events.matching(kind, "Warning OverrideFailed", "/spec/replica"); len(got) == 0 {
			t.Errorf("no OverrideFailed event on %s; events: %v", kind, h.events.matching("OverrideFailed"))
		}
	}
	if err := h.cs.AppsV1alpha1().Localizations(nsB).Delete(h.ctx, "broken", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("Rendered True again", func() (bool, string) {
		c := cond(h.base(nsB, "app").Status.Conditions, ConditionRendered)
		return c.Status == metav1.ConditionTrue, fmt.Sprintf("%+v", c)
	})

	// ApplyLater waits for the next change of the Subscription.
	before = h.pending(nsA, "app-generic")
	h.create(localization(nsA, "later", 600, appsv1alpha1.ApplyLater, deployFeed, appsv1alpha1.JSONPatchType, replicasPatch(2)))
	h.eventually("the Base lists the pending override", func() (bool, string) {
		c := cond(h.base(nsA, "app").Status.Conditions, ConditionRendered)
		return strings.Contains(c.Message, "ApplyLater overrides not in force yet") && strings.Contains(c.Message, "Localization "+nsA+"/later"), c.Message
	})
	if after := h.desc(nsA, "app-generic"); after.ResourceVersion != before.ResourceVersion || replicasIn(after) != 1 {
		t.Errorf("an ApplyLater override changed the Description at once (replicas %d)", replicasIn(after))
	}
	h.updateSub("app", func(s *appsv1alpha1.Subscription) {
		s.Spec.ClusterTolerations = []corev1.Toleration{{Key: "maintenance", Operator: corev1.TolerationOpExists}}
	})
	want("ApplyLater takes effect with the next change of the Subscription", 2, 5)

	if err := h.cs.AppsV1alpha1().Localizations(nsA).Delete(h.ctx, "later", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want("deleting an ApplyLater override rolls back at once", 1, 5)
}

func TestStaticDividing(t *testing.T) {
	s := subscription("split", nsFeed, deployFeed)
	s.Spec.SchedulingStrategy = appsv1alpha1.DividingSchedulingStrategy
	s.Spec.DividingScheduling = &appsv1alpha1.DividingScheduling{Type: appsv1alpha1.StaticReplicaDividingType}
	s.Spec.Subscribers = []appsv1alpha1.Subscriber{
		{ClusterAffinity: &metav1.LabelSelector{MatchLabels: map[string]string{clusterv1beta1.LabelClusterName: "edge-a"}}, Weight: 1},
		{ClusterAffinity: &metav1.LabelSelector{MatchLabels: map[string]string{clusterv1beta1.LabelClusterName: "edge-b"}}, Weight: 2},
	}
	h := start(t, seedObjects(s)...)
	h.eventually("divided", func() (bool, string) {
		a, b := replicasIn(h.desc(nsA, "split-generic")), replicasIn(h.desc(nsB, "split-generic"))
		return a == 1 && b == 2, fmt.Sprintf("a=%d b=%d", a, b)
	})
	h.eventually("status.replicas", func() (bool, string) {
		got := h.sub("split").Status.Replicas
		want := map[string]map[string]int32{"apps/v1/Deployment/foo/my-nginx": {nsA + "/edge-a": 1, nsB + "/edge-b": 2}}
		return cmp.Equal(want, got), cmp.Diff(want, got)
	})
	// What a client written against upstream Clusternet reads: status.replicas
	// with one count per status.bindingClusters entry, and an integer specHash.
	h.eventually("upstream's status.replicas and specHash", func() (bool, string) {
		st := h.sub("split").Status
		want := map[string][]int32{"apps/v1/Deployment/foo/my-nginx": {1, 2}}
		if !cmp.Equal([]string{nsA + "/edge-a", nsB + "/edge-b"}, st.BindingClusters) {
			return false, fmt.Sprint(st.BindingClusters)
		}
		if st.SpecHashValue == 0 || st.SpecHash == "" {
			return false, fmt.Sprintf("specHash %d, specHashHex %q", st.SpecHashValue, st.SpecHash)
		}
		return cmp.Equal(want, st.BindingReplicas), cmp.Diff(want, st.BindingReplicas)
	})
	if got := h.base(nsB, "split").Annotations[render.AnnotationReplicas]; got != `[{"feed":"apps/v1/Deployment/foo/my-nginx","path":"/spec/replicas","replicas":2}]` {
		t.Errorf("Base replicas annotation = %s", got)
	}
	// A Localization still has the last word in its cluster.
	h.create(localization(nsB, "pin", 500, appsv1alpha1.ApplyNow, deployFeed, appsv1alpha1.MergePatchType, `{"spec":{"replicas":9}}`))
	h.eventually("override over divided replicas", func() (bool, string) {
		return replicasIn(h.desc(nsB, "split-generic")) == 9, fmt.Sprint(replicasIn(h.desc(nsB, "split-generic")))
	})
}

func TestFeedsRemovedAndClustersUnbound(t *testing.T) {
	h := start(t, seedObjects(subscription("app", chartFeed, nsFeed, svcFeed, deployFeed))...)
	h.eventually("rendered", func() (bool, string) { return h.desc(nsA, "app-helm") != nil && h.desc(nsB, "app-generic") != nil, "" })

	h.updateSub("app", func(s *appsv1alpha1.Subscription) { s.Spec.Feeds = []appsv1alpha1.Feed{nsFeed, deployFeed} })
	h.eventually("the Service drops out", func() (bool, string) {
		d := h.desc(nsA, "app-generic")
		return cmp.Equal(kinds(d), []string{"Namespace", "Deployment"}), fmt.Sprint(kinds(d))
	})
	h.deployerCleans(nsA, "app-helm")
	h.deployerCleans(nsB, "app-helm")
	h.eventually("the Helm Descriptions are gone", func() (bool, string) { return h.desc(nsA, "app-helm") == nil && h.desc(nsB, "app-helm") == nil, "" })

	// Cluster b no longer matches.
	mb, _ := h.cs.ClustersV1beta1().ManagedClusters(nsB).Get(h.ctx, "edge-b", metav1.GetOptions{})
	mb.Labels["env"] = "prod"
	if _, err := h.cs.ClustersV1beta1().ManagedClusters(nsB).Update(h.ctx, mb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.deployerCleans(nsB, "app-generic")
	h.eventually("cluster b unbound", func() (bool, string) {
		s := h.sub("app")
		return h.base(nsB, "app") == nil && cmp.Equal(s.Status.BindingClusters, []string{nsA + "/edge-a"}), fmt.Sprint(s.Status.BindingClusters)
	})
	if h.base(nsA, "app") == nil || h.desc(nsA, "app-generic") == nil {
		t.Error("cluster a lost its application")
	}
}

func TestNotReadyKeepsApplicationsTaintsUnbind(t *testing.T) {
	// Cluster b went NotReady and got a NoSchedule taint after Subscription
	// app was bound to it (its Base is there); Subscription later is new.
	objs := seedObjects()
	mb := objs[1].(*clusterv1beta1.ManagedCluster)
	mb.Status.Readyz, mb.Status.Healthz, mb.Status.Livez = false, false, false
	mb.Status.Conditions = []metav1.Condition{{Type: clusterv1beta1.ClusterReady, Status: metav1.ConditionUnknown, Reason: "ClusterStatusUnknown", LastTransitionTime: metav1.Now()}}
	mb.Spec.Taints = []corev1.Taint{{Key: "maintenance", Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	app := subscription("app", nsFeed)
	app.UID, app.Finalizers = "uid-app", []string{appsv1alpha1.Finalizer}
	boundBefore := &appsv1alpha1.Base{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: "app", Finalizers: []string{appsv1alpha1.Finalizer}, Labels: map[string]string{
			appsv1alpha1.LabelSubscriptionName: "app", appsv1alpha1.LabelSubscriptionNamespace: "default", appsv1alpha1.LabelSubscriptionUID: "uid-app", appsv1alpha1.LabelClusterID: idB}},
		Spec: appsv1alpha1.BaseSpec{Feeds: []appsv1alpha1.Feed{nsFeed}},
	}
	h := start(t, append(objs, app, boundBefore, subscription("later", nsFeed))...)

	h.eventually("app stays bound to both; later goes to a only", func() (bool, string) {
		a, l := h.sub("app").Status.BindingClusters, h.sub("later").Status.BindingClusters
		return cmp.Equal(a, []string{nsA + "/edge-a", nsB + "/edge-b"}) && cmp.Equal(l, []string{nsA + "/edge-a"}), fmt.Sprint(a, l)
	})
	if h.pending(nsB, "app-generic") == nil || h.base(nsB, "later") != nil {
		t.Error("the NotReady, NoSchedule-tainted cluster did not keep app, or got later")
	}

	mb, _ = h.cs.ClustersV1beta1().ManagedClusters(nsB).Get(h.ctx, "edge-b", metav1.GetOptions{})
	mb.Spec.Taints[0].Effect = corev1.TaintEffectNoExecute
	if _, err := h.cs.ClustersV1beta1().ManagedClusters(nsB).Update(h.ctx, mb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.deployerCleans(nsB, "app-generic")
	h.eventually("NoExecute unbinds", func() (bool, string) {
		return h.base(nsB, "app") == nil && len(h.sub("app").Status.BindingClusters) == 1, fmt.Sprint(h.sub("app").Status.BindingClusters)
	})
}

func TestDeleteSubscription(t *testing.T) {
	h := start(t, seedObjects(subscription("app", chartFeed, nsFeed))...)
	h.eventually("rendered", func() (bool, string) { return h.desc(nsA, "app-helm") != nil && h.desc(nsB, "app-generic") != nil, "" })
	if err := h.cs.AppsV1alpha1().Subscriptions("default").Delete(h.ctx, "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("Bases and Descriptions being deleted", func() (bool, string) {
		for _, ns := range []string{nsA, nsB} {
			b, g, hd := h.base(ns, "app"), h.desc(ns, "app-generic"), h.desc(ns, "app-helm")
			if b == nil || b.DeletionTimestamp == nil || g == nil || g.DeletionTimestamp == nil || hd == nil || hd.DeletionTimestamp == nil {
				return false, ns
			}
		}
		return h.sub("app") != nil, "the Subscription went before its Bases"
	})
	for _, ns := range []string{nsA, nsB} {
		h.deployerCleans(ns, "app-generic")
		h.deployerCleans(ns, "app-helm")
	}
	h.eventually("everything gone", func() (bool, string) {
		_, err := h.cs.AppsV1alpha1().FeedInventories("default").Get(h.ctx, "app", metav1.GetOptions{})
		return h.sub("app") == nil && h.base(nsA, "app") == nil && h.base(nsB, "app") == nil && err != nil, "not yet"
	})
}

func TestClusterGoneReleasesDescriptions(t *testing.T) {
	h := start(t, seedObjects(subscription("app", nsFeed))...)
	h.eventually("rendered", func() (bool, string) { return h.desc(nsB, "app-generic") != nil, "" })
	if err := h.cs.ClustersV1beta1().ManagedClusters(nsB).Delete(h.ctx, "edge-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// No deployer will ever clean a cluster that is gone: the hub lets go.
	h.eventually("Base and Description of the gone cluster deleted", func() (bool, string) {
		return h.base(nsB, "app") == nil && h.desc(nsB, "app-generic") == nil, "still there"
	})
	if h.desc(nsA, "app-generic") == nil {
		t.Error("cluster a lost its Description")
	}
}

func TestBaseNameConflict(t *testing.T) {
	other := subscription("app", nsFeed)
	other.Namespace = "team-b"
	h := start(t, seedObjects(subscription("app", nsFeed))...)
	h.eventually("first bound", func() (bool, string) { return h.base(nsA, "app") != nil && h.base(nsB, "app") != nil, "" })
	first := h.base(nsA, "app")
	h.pending(nsA, "app-generic")
	h.create(other)
	h.eventually("conflict reported", func() (bool, string) {
		s, _ := h.cs.AppsV1alpha1().Subscriptions("team-b").Get(h.ctx, "app", metav1.GetOptions{})
		c := cond(s.Status.Conditions, ConditionScheduled)
		return c.Reason == ReasonBaseNameConflict && strings.Contains(c.Message, "Base "+nsA+"/app already belongs to Subscription default/app") &&
			strings.Contains(c.Message, "rename this Subscription"), fmt.Sprintf("%+v", c)
	})
	after := h.base(nsA, "app")
	if !cmp.Equal(after.Labels, first.Labels) || !cmp.Equal(after.Spec, first.Spec) || !cmp.Equal(after.Annotations, first.Annotations) {
		t.Errorf("the other Subscription's Base was overwritten: labels %v, annotations %v", after.Labels, after.Annotations)
	}
	if d := h.desc(nsA, "app-generic"); d.Labels[appsv1alpha1.LabelSubscriptionNamespace] != "default" {
		t.Errorf("the Description changed hands: %v", d.Labels)
	}

	// The owner going frees the name: the other Subscription takes it,
	// though nothing of its own changed.
	if err := h.cs.AppsV1alpha1().Subscriptions("default").Delete(h.ctx, "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.deployerCleans(nsA, "app-generic")
	h.deployerCleans(nsB, "app-generic")
	h.eventually("the name taken over once free", func() (bool, string) {
		s, _ := h.cs.AppsV1alpha1().Subscriptions("team-b").Get(h.ctx, "app", metav1.GetOptions{})
		b := h.base(nsA, "app")
		c := cond(s.Status.Conditions, ConditionScheduled)
		return b != nil && b.Labels[appsv1alpha1.LabelSubscriptionNamespace] == "team-b" && c.Status == metav1.ConditionTrue,
			fmt.Sprintf("base labels %v, Scheduled %+v", func() map[string]string {
				if b == nil {
					return nil
				}
				return b.Labels
			}(), c)
	})
}

func TestOrphanBaseIsCleanedUp(t *testing.T) {
	orphan := &appsv1alpha1.Base{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "gone", Finalizers: []string{appsv1alpha1.Finalizer}, Labels: map[string]string{
			appsv1alpha1.LabelSubscriptionName: "gone", appsv1alpha1.LabelSubscriptionNamespace: "default", appsv1alpha1.LabelSubscriptionUID: "old-uid", appsv1alpha1.LabelClusterID: idA}},
		Spec: appsv1alpha1.BaseSpec{Feeds: []appsv1alpha1.Feed{nsFeed}},
	}
	h := start(t, seedObjects(orphan)...)
	h.eventually("orphan Base deleted", func() (bool, string) { return h.base(nsA, "gone") == nil, "still there" })
}

func TestExternalScheduler(t *testing.T) {
	s := subscription("ext", nsFeed)
	s.Spec.SchedulerName = "my-scheduler"
	h := start(t, seedObjects(s)...)
	h.eventually("waiting for the other scheduler", func() (bool, string) {
		c := cond(h.sub("ext").Status.Conditions, ConditionScheduled)
		return c.Reason == ReasonNotScheduled && strings.Contains(c.Message, `"my-scheduler"`), fmt.Sprintf("%+v", c)
	})
	if h.base(nsA, "ext") != nil || h.base(nsB, "ext") != nil {
		t.Fatal("the hub bound a Subscription another scheduler owns")
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := h.sub("ext")
		cur.Status.BindingClusters = []string{nsB + "/edge-b"}
		_, err := h.cs.AppsV1alpha1().Subscriptions("default").UpdateStatus(h.ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	h.pending(nsB, "ext-generic")
	if h.base(nsA, "ext") != nil {
		t.Error("bound to a cluster the scheduler did not choose")
	}
}

// A scheduler written against upstream Clusternet divides replicas in its
// shape of status.replicas (one count per binding cluster): the hub reads
// it, and refuses, naming the field, one it cannot match to the clusters.
func TestExternalSchedulerUpstreamReplicas(t *testing.T) {
	s := subscription("ext", nsFeed, deployFeed)
	s.Spec.SchedulerName = "upstream-scheduler"
	s.Spec.SchedulingStrategy = appsv1alpha1.DividingSchedulingStrategy
	s.Spec.DividingScheduling = &appsv1alpha1.DividingScheduling{Type: appsv1alpha1.StaticReplicaDividingType}
	h := start(t, seedObjects(s)...)
	writeStatus := func(clusters []string, replicas map[string][]int32) {
		t.Helper()
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur := h.sub("ext")
			cur.Status.BindingClusters, cur.Status.BindingReplicas = clusters, replicas
			_, err := h.cs.AppsV1alpha1().Subscriptions("default").UpdateStatus(h.ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	writeStatus([]string{nsA + "/edge-a", nsB + "/edge-b"}, map[string][]int32{"apps/v1/Deployment/foo/my-nginx": {2, 1}})
	h.eventually("divided as the scheduler said", func() (bool, string) {
		a, b := replicasIn(h.desc(nsA, "ext-generic")), replicasIn(h.desc(nsB, "ext-generic"))
		return a == 2 && b == 1, fmt.Sprintf("a=%d b=%d", a, b)
	})
	writeStatus([]string{nsA + "/edge-a", nsB + "/edge-b"}, map[string][]int32{"apps/v1/Deployment/foo/my-nginx": {3}})
	h.eventually("counts that do not match the clusters are refused", func() (bool, string) {
		c := cond(h.sub("ext").Status.Conditions, ConditionScheduled)
		return c.Reason == ReasonInvalidBindings && strings.Contains(c.Message, `status.replicas["apps/v1/Deployment/foo/my-nginx"] has 1 counts for 2 bindingClusters`), fmt.Sprintf("%+v", c)
	})
	if a := replicasIn(h.desc(nsA, "ext-generic")); a != 2 {
		t.Errorf("a refused division changed edge-a's replicas to %d", a)
	}
}

func TestTemplateChangeRendersAgain(t *testing.T) {
	h := start(t, seedObjects(subscription("app", nsFeed, deployFeed))...)
	h.eventually("rendered", func() (bool, string) { return replicasIn(h.desc(nsA, "app-generic")) == 3, "" })
	m := h.scaleTemplate(4)
	h.eventually("the new template in both clusters", func() (bool, string) {
		a, b := replicasIn(h.desc(nsA, "app-generic")), replicasIn(h.desc(nsB, "app-generic"))
		return a == 4 && b == 4, fmt.Sprint(a, b)
	})

	// A template deleted: the feed fails, the clusters keep what they have.
	before := h.pending(nsA, "app-generic")
	if err := h.cs.AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace).Delete(h.ctx, m.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("FeedNotFound", func() (bool, string) {
		c := cond(h.sub("app").Status.Conditions, ConditionFeedsResolved)
		return c.Reason == "FeedNotFound", fmt.Sprintf("%+v", c)
	})
	h.eventually("the Base says it cannot render", func() (bool, string) {
		c := cond(h.base(nsA, "app").Status.Conditions, ConditionRendered)
		return c.Reason == ReasonRenderFailed && strings.Contains(c.Message, `apps/v1 Deployment "foo/my-nginx"`), c.Message
	})
	if after := h.desc(nsA, "app-generic"); !SpecEqual(before.Spec, after.Spec) || after.DeletionTimestamp != nil {
		t.Error("the Description changed when its template was deleted")
	}
}

// dynamicSubscription divides the Deployment of deployFeed dynamically
// (Spread) over both clusters.
func dynamicSubscription(name string) *appsv1alpha1.Subscription {
	s := subscription(name, deployFeed)
	s.Spec.SchedulingStrategy = appsv1alpha1.DividingSchedulingStrategy
	s.Spec.DividingScheduling = &appsv1alpha1.DividingScheduling{Type: appsv1alpha1.DynamicReplicaDividingType,
		DynamicDividing: &appsv1alpha1.DynamicDividing{Strategy: appsv1alpha1.SpreadDividingStrategy}}
	return s
}

// dynamicObjects is seedObjects with edge-b holding fewer pods than
// edge-a (a: 110, b: 20), for dynamic dividing to tell them apart.
func dynamicObjects(extra ...runtime.Object) []runtime.Object {
	objs := seedObjects(extra...)
	objs[1].(*clusterv1beta1.ManagedCluster).Status.Allocatable[corev1.ResourcePods] = resource.MustParse("20")
	return objs
}

// setEdgeBPods gives edge-b pods allocatable and waits until the
// controller has it.
func (h *harness) setEdgeBPods(pods int64) {
	h.t.Helper()
	mb, err := h.cs.ClustersV1beta1().ManagedClusters(nsB).Get(h.ctx, "edge-b", metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	mb.Status.Allocatable[corev1.ResourcePods] = *resource.NewQuantity(pods, resource.DecimalSI)
	if _, err := h.cs.ClustersV1beta1().ManagedClusters(nsB).UpdateStatus(h.ctx, mb, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.eventually("the controller has edge-b's new capacity", func() (bool, string) {
		m, err := h.ctl.clusters.ManagedClusters(nsB).Get("edge-b")
		if err != nil {
			return false, err.Error()
		}
		got := m.Status.Allocatable[corev1.ResourcePods]
		return got.Value() == pods, "pods " + got.String()
	})
}

// scaleTemplate rewrites deployFeed's template with replicas in place of 3
// and returns it.
func (h *harness) scaleTemplate(replicas int) *appsv1alpha1.Manifest {
	h.t.Helper()
	m := template(strings.Replace(deployJSON, `"replicas":3`, fmt.Sprintf(`"replicas":%d`, replicas), 1))
	old, err := h.cs.AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace).Get(h.ctx, m.Name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	m.ResourceVersion = old.ResourceVersion
	if _, err := h.cs.AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace).Update(h.ctx, m, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	return m
}

// deployKey names deployFeed in status.replicas and on the Bases.
var deployKey = feeds.Key(deployFeed)

// divided is a division of deployFeed's replicas over edge-a and edge-b.
func divided(a, b int32) map[string]int32 {
	return map[string]int32{nsA + "/edge-a": a, nsB + "/edge-b": b}
}

// Dynamic dividing starts from the division in force: a capacity change
// moves nothing that runs, and a scale-up adds only the new replicas,
// where capacity is left. Divided from nothing (the division in force not
// read, or the capacity change redividing), 5 would be 2 and 3.
func TestDynamicDividingMovesOnlyTheDifference(t *testing.T) {
	objs := dynamicObjects(dynamicSubscription("dyn"))
	h := start(t, objs...)
	h.eventually("spread by capacity", func() (bool, string) {
		a, b := replicasIn(h.desc(nsA, "dyn-generic")), replicasIn(h.desc(nsB, "dyn-generic"))
		return a == 3 && b == 0, fmt.Sprint(a, b) // 3 * 110/130 = 2.54 -> 3; 3 * 20/130 = 0.46 -> 0
	})
	// The capacity and the template reach the controller through different
	// informers, in no fixed order: the template changes only once the
	// controller has the capacity, so that the scale-up is divided with it
	// (with the old one it would be 5 and 0, and stay so), and once the
	// round dividing 3 has written the status.
	h.setEdgeBPods(220)
	h.eventually("the status the split of 3", func() (bool, string) {
		got := h.sub("dyn").Status.Replicas[deployKey]
		return cmp.Equal(divided(3, 0), got), fmt.Sprintf("status.replicas %v", got)
	})
	h.scaleTemplate(5)
	h.eventually("the 2 new replicas added by capacity left, the 3 running kept", func() (bool, string) {
		a, b := replicasIn(h.desc(nsA, "dyn-generic")), replicasIn(h.desc(nsB, "dyn-generic"))
		return a == 4 && b == 1, fmt.Sprint(a, b) // room 107 and 220: 2 * 107/327 = 0.65 -> 1; 2 * 220/327 = 1.35 -> 1
	})
}

// dividedBase is sub's Base in the cluster of ns as a round of the hub
// writes it, giving the cluster n of deployFeed's replicas; n < 0 leaves
// the share out, as upstream Clusternet writes Bases (it records its
// division in the status only).
func dividedBase(sub *appsv1alpha1.Subscription, ns, id string, n int32) *appsv1alpha1.Base {
	b := &appsv1alpha1.Base{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sub.Name, Finalizers: []string{appsv1alpha1.Finalizer},
			Labels: subscriptionLabels(sub, id), Annotations: map[string]string{render.AnnotationSubscriptionGeneration: "1"}},
		Spec: appsv1alpha1.BaseSpec{Feeds: sub.Spec.Feeds},
	}
	if n >= 0 {
		b.Annotations[render.AnnotationReplicas] = render.EncodeReplicas([]render.ReplicaSetting{{Feed: deployKey, Path: feeds.ReplicasPath, Replicas: n}})
	}
	return b
}

// Dynamic dividing starts from what the Bases say each cluster runs. The
// status records the same division but is written after the Bases, so it
// can be a round behind them: here a round put 2 and 1 on the Bases and
// stopped (the hub restarted) before writing the status, which still says
// 1 and 2. Started from the status, the round after would see nothing to
// change and rewrite the Bases to 1 and 2, moving a replica for nothing.
// Only Bases without shares (written by upstream Clusternet) leave the
// status to say what runs. Divided from nothing, 3 would be 3 and 0.
func TestDynamicDividingStartsFromTheBases(t *testing.T) {
	tests := []struct {
		name string
		// onBases are the shares on edge-a's and edge-b's Bases, -1 none.
		onBases [2]int32
		status  map[string]int32
		want    map[string]int32
	}{{
		name:    "a status a round behind the Bases moves nothing",
		onBases: [2]int32{2, 1},
		status:  divided(1, 2),
		want:    divided(2, 1),
	}, {
		name:    "Bases without shares: the status says what runs",
		onBases: [2]int32{-1, -1},
		status:  divided(1, 2),
		want:    divided(1, 2),
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := dynamicSubscription("dyn")
			s.UID = "dyn-uid"
			s.Status.BindingClusters = []string{nsA + "/edge-a", nsB + "/edge-b"}
			s.Status.Replicas = map[string]map[string]int32{deployKey: tc.status}
			objs := dynamicObjects(s, dividedBase(s, nsA, idA, tc.onBases[0]), dividedBase(s, nsB, idB, tc.onBases[1]))
			h := start(t, objs...)
			h.eventually("the round's division in the status", func() (bool, string) {
				s := h.sub("dyn")
				got := s.Status.Replicas[deployKey]
				return cmp.Equal(tc.want, got) && cond(s.Status.Conditions, ConditionScheduled).Status == metav1.ConditionTrue,
					fmt.Sprintf("status.replicas %v, Scheduled %+v", got, cond(s.Status.Conditions, ConditionScheduled))
			})
			for _, c := range []struct{ ns, key string }{{nsA, nsA + "/edge-a"}, {nsB, nsB + "/edge-b"}} {
				want := render.EncodeReplicas([]render.ReplicaSetting{{Feed: deployKey, Path: feeds.ReplicasPath, Replicas: tc.want[c.key]}})
				if got := h.base(c.ns, "dyn").Annotations[render.AnnotationReplicas]; got != want {
					t.Errorf("Base %s/dyn: %s is %s, want %s", c.ns, render.AnnotationReplicas, got, want)
				}
			}
			h.eventually("the clusters run the division", func() (bool, string) {
				a, b := replicasIn(h.desc(nsA, "dyn-generic")), replicasIn(h.desc(nsB, "dyn-generic"))
				return cmp.Equal(tc.want, divided(int32(a), int32(b))), fmt.Sprint(a, b)
			})
		})
	}
}

// startHeld is start with the watch of Bases passed through hold, which
// may keep an event back (and those after it, in order) until it returns;
// and with every value of AnnotationReplicas the API takes on a Base
// recorded, by namespace, in written.
//
// A round writes its Bases one at a time here: a hold keeps back every
// event after the one it holds, so a test that holds one cluster's Base
// and waits for another's needs them written in the order of the
// clusters (with several at once, either may come first).
func startHeld(t *testing.T, hold func(watch.Event), objects ...runtime.Object) (*harness, func(ns string) []string) {
	t.Helper()
	h := newHarness(t, objects...)
	h.basesAtOnce = 1
	var mu sync.Mutex
	written := map[string][]string{}
	h.cs.PrependReactor("*", "bases", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "" || (action.GetVerb() != "create" && action.GetVerb() != "update") {
			return false, nil, nil
		}
		b := action.(interface{ GetObject() runtime.Object }).GetObject().(*appsv1alpha1.Base)
		mu.Lock()
		defer mu.Unlock()
		if seen := written[b.Namespace]; len(seen) == 0 || seen[len(seen)-1] != b.Annotations[render.AnnotationReplicas] {
			written[b.Namespace] = append(seen, b.Annotations[render.AnnotationReplicas])
		}
		return false, nil, nil
	})
	h.cs.PrependWatchReactor("bases", func(action clienttesting.Action) (bool, watch.Interface, error) {
		w, err := h.cs.Tracker().Watch(action.GetResource(), action.GetNamespace(), action.(clienttesting.WatchActionImpl).ListOptions)
		if err != nil {
			return false, nil, err
		}
		hw := &heldWatch{Interface: w, out: make(chan watch.Event), stop: make(chan struct{})}
		go func() {
			defer close(hw.out)
			for ev := range w.ResultChan() {
				hold(ev)
				select {
				case hw.out <- ev:
				case <-hw.stop:
					return
				}
			}
		}()
		return true, hw, nil
	})
	h.run()
	return h, func(ns string) []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(written[ns])
	}
}

// heldWatch is a watch whose events pass through a hold first.
type heldWatch struct {
	watch.Interface
	out     chan watch.Event
	stop    chan struct{}
	stopped sync.Once
}

func (w *heldWatch) ResultChan() <-chan watch.Event { return w.out }

func (w *heldWatch) Stop() {
	w.stopped.Do(func() {
		close(w.stop)
		w.Interface.Stop()
	})
}

// A round may start when the cache has one Base the last round wrote and
// not yet another: the division in force is read from the API, not the
// cache, or the old share of the other would count. Here the scale-up from
// 3 to 5 writes edge-a 4 and edge-b 1, and edge-b's Base is held back from
// the cache until the round edge-a's Base starts has read it. From the
// cache (4 and 0) that round would add a replica to edge-a, where the most
// capacity is left, 6 in all, and the round after would take it back.
func TestDynamicDividingReadsTheBasesLive(t *testing.T) {
	replicasOf := func(n int32) string {
		return render.EncodeReplicas([]render.ReplicaSetting{{Feed: deployKey, Path: feeds.ReplicasPath, Replicas: n}})
	}
	var h *harness
	// passedA is how many rounds had scheduled when edge-a's Base with 4
	// went to the cache: the next one has it.
	passedA, heldB := make(chan int64, 1), make(chan struct{})
	release := make(chan struct{})
	var passing, holding, released sync.Once
	hold := func(ev watch.Event) {
		b, ok := ev.Object.(*appsv1alpha1.Base)
		if !ok || ev.Type != watch.Modified {
			return
		}
		switch {
		case b.Namespace == nsA && b.Annotations[render.AnnotationReplicas] == replicasOf(4):
			passing.Do(func() { passedA <- h.ctl.runs.schedule.Load() })
		case b.Namespace == nsB && b.Annotations[render.AnnotationReplicas] == replicasOf(1):
			holding.Do(func() {
				close(heldB)
				<-release
			})
		}
	}
	objs := dynamicObjects(dynamicSubscription("dyn"))
	h, written := startHeld(t, hold, objs...)
	// Before the harness stops (cleanups run last first), whatever failed.
	t.Cleanup(func() { released.Do(func() { close(release) }) })
	h.eventually("3 divided", func() (bool, string) {
		got := h.sub("dyn").Status.Replicas[deployKey]
		return cmp.Equal(divided(3, 0), got), fmt.Sprintf("status.replicas %v", got)
	})
	h.setEdgeBPods(40)
	h.scaleTemplate(5)
	var before int64
	select {
	case <-heldB:
		before = <-passedA // edge-a's Base was written first
	case <-time.After(15 * time.Second):
		t.Fatal("edge-b's Base never given 1 replica")
	}
	h.eventually("a round with edge-a's Base, edge-b's held back", func() (bool, string) {
		n := h.ctl.runs.schedule.Load()
		return n > before, fmt.Sprintf("%d scheduling runs, %d before edge-a's Base reached the cache", n, before)
	})
	released.Do(func() { close(release) })
	h.eventually("5 divided", func() (bool, string) {
		got := h.sub("dyn").Status.Replicas[deployKey]
		a, b := replicasIn(h.desc(nsA, "dyn-generic")), replicasIn(h.desc(nsB, "dyn-generic"))
		return cmp.Equal(divided(4, 1), got) && a == 4 && b == 1, fmt.Sprintf("status.replicas %v, Descriptions %d and %d", got, a, b)
	})
	// 2 * 107/147 and 2 * 40/147: 1 and 1.
	if diff := cmp.Diff([]string{replicasOf(3), replicasOf(4)}, written(nsA)); diff != "" {
		t.Errorf("edge-a's Base went through (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{replicasOf(0), replicasOf(1)}, written(nsB)); diff != "" {
		t.Errorf("edge-b's Base went through (-want +got):\n%s", diff)
	}
}
