package helm

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
)

const dedicated = "clusternet-abcde"

type descFixture struct {
	t       *testing.T
	client  *clusternetfake.Clientset
	kube    *fake.Clientset
	factory externalversions.SharedInformerFactory
	d       *Descriptions
	events  *record.FakeRecorder
}

func newDescFixture(t *testing.T, objs ...runtime.Object) *descFixture {
	f := &descFixture{
		t:      t,
		client: clusternetfake.NewClientset(objs...),
		kube: fake.NewClientset(&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "default"},
			Data:       map[string][]byte{"username": []byte("alice"), "password": []byte("pw"), "other": []byte("not copied")},
		}),
		events: record.NewFakeRecorder(100),
	}
	f.factory = externalversions.NewSharedInformerFactory(f.client, 0)
	apps := f.factory.Apps().V1alpha1()
	d, err := NewDescriptions(f.client, f.kube, apps.Descriptions(), apps.HelmCharts(), apps.HelmReleases(), f.factory.Clusters().V1beta1().ManagedClusters(), f.events)
	if err != nil {
		t.Fatal(err)
	}
	f.d = d
	return f
}

func replace[T any](t *testing.T, inf cache.SharedIndexInformer, items []T) {
	t.Helper()
	objs := make([]any, 0, len(items))
	for i := range items {
		objs = append(objs, &items[i])
	}
	if err := inf.GetIndexer().Replace(objs, ""); err != nil {
		t.Fatal(err)
	}
}

// sync refreshes every lister from the fake client and syncs the
// Description; it returns when the Description asks to be looked at again.
func (f *descFixture) sync(name string) time.Duration {
	f.t.Helper()
	ctx := context.Background()
	apps := f.factory.Apps().V1alpha1()
	descs, _ := f.client.AppsV1alpha1().Descriptions("").List(ctx, metav1.ListOptions{})
	replace(f.t, apps.Descriptions().Informer(), descs.Items)
	charts, _ := f.client.AppsV1alpha1().HelmCharts("").List(ctx, metav1.ListOptions{})
	replace(f.t, apps.HelmCharts().Informer(), charts.Items)
	hrs, _ := f.client.AppsV1alpha1().HelmReleases("").List(ctx, metav1.ListOptions{})
	replace(f.t, apps.HelmReleases().Informer(), hrs.Items)
	mcls, _ := f.client.ClustersV1beta1().ManagedClusters("").List(ctx, metav1.ListOptions{})
	replace(f.t, f.factory.Clusters().V1beta1().ManagedClusters().Informer(), mcls.Items)
	again, err := f.d.sync(ctx, dedicated+"/"+name)
	if err != nil {
		f.t.Fatal(err)
	}
	return again
}

func (f *descFixture) desc(name string) *appsv1alpha1.Description {
	f.t.Helper()
	d, err := f.client.AppsV1alpha1().Descriptions(dedicated).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *descFixture) hr(name string) *appsv1alpha1.HelmRelease {
	f.t.Helper()
	hr, err := f.client.AppsV1alpha1().HelmReleases(dedicated).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return hr
}

func (f *descFixture) hrNames() []string {
	hrs, err := f.client.AppsV1alpha1().HelmReleases(dedicated).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, hr := range hrs.Items {
		names = append(names, hr.Name)
	}
	return names
}

func (f *descFixture) setHRStatus(name string, st appsv1alpha1.HelmReleaseStatus) {
	f.t.Helper()
	hr := f.hr(name)
	hr.Status = st
	if _, err := f.client.AppsV1alpha1().HelmReleases(dedicated).UpdateStatus(context.Background(), hr, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *descFixture) updateDesc(d *appsv1alpha1.Description) {
	f.t.Helper()
	if _, err := f.client.AppsV1alpha1().Descriptions(dedicated).Update(context.Background(), d, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *descFixture) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-f.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func foundChart(name, version string) *appsv1alpha1.HelmChart {
	c := helmChart(name, "https://charts.example.com/stable", name, version)
	c.Spec.Wait = true
	c.Spec.HistoryLimit = ptr.To[int32](3)
	c.Status.Phase = appsv1alpha1.HelmChartFound
	return c
}

func managedCluster(mode clusterv1beta1.ClusterSyncMode, appPusher bool) *clusterv1beta1.ManagedCluster {
	return &clusterv1beta1.ManagedCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "child-1", Namespace: dedicated},
		Spec:       clusterv1beta1.ManagedClusterSpec{ClusterID: "0b9e2c4e-0000-4000-8000-000000000001", SyncMode: mode},
		Status:     clusterv1beta1.ManagedClusterStatus{AppPusher: appPusher},
	}
}

func helmDescription(charts ...string) *appsv1alpha1.Description {
	d := &appsv1alpha1.Description{
		ObjectMeta: metav1.ObjectMeta{
			Name: "app-demo-helm", Namespace: dedicated, UID: "desc-uid",
			Labels: map[string]string{
				appsv1alpha1.LabelSubscriptionName: "app-demo", appsv1alpha1.LabelSubscriptionNamespace: "default",
				appsv1alpha1.LabelSubscriptionUID: "subs-uid", appsv1alpha1.LabelClusterID: "0b9e2c4e-0000-4000-8000-000000000001",
			},
			Finalizers: []string{appsv1alpha1.Finalizer},
		},
		Spec: appsv1alpha1.DescriptionSpec{Deployer: appsv1alpha1.DescriptionHelmDeployer},
	}
	for _, c := range charts {
		d.Spec.Charts = append(d.Spec.Charts, appsv1alpha1.ChartReference{Namespace: "default", Name: c})
	}
	return d
}

// rendered is d as the hub renders it: each chart reference carries the
// spec of its HelmChart, in charts' order.
func rendered(d *appsv1alpha1.Description, charts ...*appsv1alpha1.HelmChart) *appsv1alpha1.Description {
	for i, c := range charts {
		d.Spec.Charts[i].Options = c.Spec.HelmOptions.DeepCopy()
	}
	return d
}

// subscription is Subscription default/app-demo (UID subs-uid, as
// helmDescription's labels say) feeding HelmCharts default/<chart>, bound
// to the cluster of the dedicated namespace.
func subscription(charts ...string) *appsv1alpha1.Subscription {
	sub := &appsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: "app-demo", Namespace: "default", UID: "subs-uid"},
		Status:     appsv1alpha1.SubscriptionStatus{BindingClusters: []string{dedicated + "/child-1"}},
	}
	for _, c := range charts {
		sub.Spec.Feeds = append(sub.Spec.Feeds, appsv1alpha1.Feed{APIVersion: "apps.clusternet.io/v1alpha1", Kind: "HelmChart", Namespace: "default", Name: c})
	}
	return sub
}

func TestDescriptionsToHelmReleases(t *testing.T) {
	mysql := foundChart("mysql", "8.6.2")
	mysql.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: "creds"}
	broken := foundChart("broken", "9.9.9")
	broken.Status = appsv1alpha1.HelmChartStatus{Phase: appsv1alpha1.HelmChartNotFound, Reason: "chart \"broken\" has no version \"9.9.9\""}
	redis := foundChart("redis", "1.0.0")
	desc := rendered(helmDescription("mysql", "redis"), mysql, redis)
	desc.Spec.ChartRaw = [][]byte{[]byte(`{"auth":{"database":"one"}}`)}
	f := newDescFixture(t, mysql, redis, broken, managedCluster(clusterv1beta1.DualSyncMode, true), desc, subscription("mysql", "redis"))

	f.sync("app-demo-helm")
	if diff := cmp.Diff([]string{"app-demo-mysql", "app-demo-redis"}, f.hrNames()); diff != "" {
		t.Fatalf("HelmReleases (-want +got):\n%s", diff)
	}
	got := f.hr("app-demo-mysql")
	want := &appsv1alpha1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{
			Name: "app-demo-mysql", Namespace: dedicated,
			Labels:     desc.Labels,
			Finalizers: []string{appsv1alpha1.Finalizer},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps.clusternet.io/v1alpha1", Kind: "Description", Name: "app-demo-helm", UID: "desc-uid",
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(false)}},
		},
		Spec: appsv1alpha1.HelmReleaseSpec{
			HelmOptions: appsv1alpha1.HelmOptions{
				Repository: "https://charts.example.com/stable", Chart: "mysql", ChartVersion: "8.6.2", TargetNamespace: "apps",
				Wait: true, HistoryLimit: ptr.To[int32](3),
				ChartPullSecret: &appsv1alpha1.SecretReference{Name: "app-demo-mysql-chart-pull", Namespace: dedicated},
			},
			ReleaseName: ptr.To("app-demo-mysql"),
			Overrides:   []byte(`{"auth":{"database":"one"}}`),
		},
	}
	// What the API server adds (kind, managed fields) is not the controller's.
	if diff := cmp.Diff(want, got, cmpopts.IgnoreTypes(metav1.TypeMeta{}), cmpopts.IgnoreFields(metav1.ObjectMeta{}, "ManagedFields")); diff != "" {
		t.Errorf("HelmRelease (-want +got):\n%s", diff)
	}
	copied, err := f.kube.CoreV1().Secrets(dedicated).Get(context.Background(), "app-demo-mysql-chart-pull", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]byte{"username": []byte("alice"), "password": []byte("pw")}, copied.Data); diff != "" {
		t.Errorf("copied pull Secret (-want +got):\n%s", diff)
	}
	if got := f.hr("app-demo-redis"); got.Spec.Overrides != nil || got.Spec.ChartPullSecret != nil {
		t.Errorf("redis: overrides %q, pull secret %v", got.Spec.Overrides, got.Spec.ChartPullSecret)
	}
	st := f.desc("app-demo-helm").Status
	wantReason := "HelmRelease app-demo-mysql: waiting for clusternet-hub (cluster child-1, Dual mode) to install release apps/app-demo-mysql; " +
		"HelmRelease app-demo-redis: waiting for clusternet-hub (cluster child-1, Dual mode) to install release apps/app-demo-redis"
	if st.Phase != appsv1alpha1.DescriptionPhasePending || st.Reason != wantReason {
		t.Errorf("status %s %q, want Pending %q", st.Phase, st.Reason, wantReason)
	}

	t.Run("all deployed: Success and the seed's event", func(t *testing.T) {
		f.setHRStatus("app-demo-mysql", appsv1alpha1.HelmReleaseStatus{Phase: "deployed", Version: 1})
		f.setHRStatus("app-demo-redis", appsv1alpha1.HelmReleaseStatus{Phase: "deployed", Version: 1})
		f.sync("app-demo-helm")
		st := f.desc("app-demo-helm").Status
		if st.Phase != appsv1alpha1.DescriptionPhaseSuccess || st.Reason != "" {
			t.Errorf("status %s %q, want Success", st.Phase, st.Reason)
		}
		if diff := cmp.Diff([]string{"Normal SuccessfullyDeployed Description clusternet-abcde/app-demo-helm is deployed successfully"}, f.drainEvents()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		f.sync("app-demo-helm")
		if e := f.drainEvents(); len(e) != 0 {
			t.Errorf("an unchanged status recorded events: %v", e)
		}
	})

	t.Run("a failed release: Failure with Helm's message", func(t *testing.T) {
		f.setHRStatus("app-demo-redis", appsv1alpha1.HelmReleaseStatus{Phase: "failed", Version: 2, Description: `Upgrade "app-demo-redis" failed: timed out waiting for the condition`})
		f.sync("app-demo-helm")
		st := f.desc("app-demo-helm").Status
		want := `HelmRelease app-demo-redis: release apps/app-demo-redis failed: Upgrade "app-demo-redis" failed: timed out waiting for the condition`
		if st.Phase != appsv1alpha1.DescriptionPhaseFailure || st.Reason != want {
			t.Errorf("status %s %q, want Failure %q", st.Phase, st.Reason, want)
		}
		if diff := cmp.Diff([]string{"Warning FailedDeploying " + want}, f.drainEvents()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})

	// A bad feed leaves every cluster as it was: the Subscription reports
	// the HelmChart unresolved and keeps its Descriptions, so the releases
	// keep what those say.
	t.Run("the HelmChart edited to a repository that is down: the HelmRelease keeps what its Description says", func(t *testing.T) {
		before := f.hr("app-demo-mysql").Spec
		edited := mysql.DeepCopy()
		edited.Generation = 2
		edited.Spec.Repository, edited.Spec.ChartVersion = "https://down.example.com/charts", "8.7.0"
		edited.Status = appsv1alpha1.HelmChartStatus{Phase: appsv1alpha1.HelmChartNotFound, Reason: "cannot be reached", ObservedGeneration: 2}
		if _, err := f.client.AppsV1alpha1().HelmCharts("default").Update(context.Background(), edited, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		f.sync("app-demo-helm")
		if diff := cmp.Diff(before, f.hr("app-demo-mysql").Spec); diff != "" {
			t.Errorf("HelmRelease changed with its HelmChart, not its Description (-before +after):\n%s", diff)
		}
		if st := f.desc("app-demo-helm").Status; strings.Contains(st.Reason, "mysql") {
			t.Errorf("the Description reports a HelmChart edit it does not carry: %q", st.Reason)
		}
		got, err := MadeByHub{Client: f.client}.Verify(context.Background(), f.hr("app-demo-mysql"))
		if err != nil || got != "" {
			t.Errorf("the hub refuses its own HelmRelease after the HelmChart changed: %q %v", got, err)
		}
		f.drainEvents()

		// Rendered again once the new spec resolves: the release follows.
		d := f.desc("app-demo-helm")
		d.Spec.Charts[0].Options.ChartVersion = "8.7.0"
		f.updateDesc(d)
		f.sync("app-demo-helm")
		if got := f.hr("app-demo-mysql").Spec.ChartVersion; got != "8.7.0" {
			t.Errorf("version %q after the Description changed, want 8.7.0", got)
		}
		if got := f.hr("app-demo-mysql").Spec.Repository; got != "https://charts.example.com/stable" {
			t.Errorf("repository %q, want the one the Description carries", got)
		}
		f.drainEvents()
	})

	t.Run("a chart NotFound, named by a Description of an older hub: Failure naming it, no HelmRelease", func(t *testing.T) {
		d := f.desc("app-demo-helm")
		d.Spec.Charts = append(d.Spec.Charts, appsv1alpha1.ChartReference{Namespace: "default", Name: "broken"})
		f.updateDesc(d)
		f.setHRStatus("app-demo-redis", appsv1alpha1.HelmReleaseStatus{Phase: "deployed", Version: 3})
		f.sync("app-demo-helm")
		st := f.desc("app-demo-helm").Status
		want := `HelmChart default/broken is NotFound: chart "broken" has no version "9.9.9"`
		if st.Phase != appsv1alpha1.DescriptionPhaseFailure || st.Reason != want {
			t.Errorf("status %s %q, want Failure %q", st.Phase, st.Reason, want)
		}
		if diff := cmp.Diff([]string{"app-demo-mysql", "app-demo-redis"}, f.hrNames()); diff != "" {
			t.Errorf("HelmReleases (-want +got):\n%s", diff)
		}
		f.drainEvents()
	})

	t.Run("new values for this cluster update its HelmRelease; a chart no longer listed is deleted", func(t *testing.T) {
		d := f.desc("app-demo-helm")
		d.Spec.Charts = d.Spec.Charts[:1]
		d.Spec.ChartRaw = [][]byte{[]byte(`{"auth":{"database":"two"}}`)}
		f.updateDesc(d)
		f.sync("app-demo-helm")
		if got := string(f.hr("app-demo-mysql").Spec.Overrides); got != `{"auth":{"database":"two"}}` {
			t.Errorf("overrides %s", got)
		}
		if diff := cmp.Diff([]string{"app-demo-mysql"}, f.hrNames()); diff != "" {
			t.Errorf("HelmReleases (-want +got):\n%s", diff)
		}
	})

	t.Run("deletion waits for the HelmReleases, then releases the Description", func(t *testing.T) {
		d := f.desc("app-demo-helm")
		d.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		f.updateDesc(d)
		f.sync("app-demo-helm")
		if names := f.hrNames(); len(names) != 0 {
			t.Fatalf("HelmReleases left: %v", names)
		}
		if _, err := f.kube.CoreV1().Secrets(dedicated).Get(context.Background(), "app-demo-mysql-chart-pull", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("copied pull Secret left: %v", err)
		}
		d = f.desc("app-demo-helm")
		if d.Status.Phase != appsv1alpha1.DescriptionPhasePending || d.Status.Reason != "uninstalling releases of HelmReleases app-demo-mysql" {
			t.Errorf("status while uninstalling: %s %q", d.Status.Phase, d.Status.Reason)
		}
		if len(d.Finalizers) == 0 {
			t.Fatal("finalizer removed before the HelmReleases were gone")
		}
		f.sync("app-demo-helm")
		if got := f.desc("app-demo-helm").Finalizers; len(got) != 0 {
			t.Errorf("finalizers left: %v", got)
		}
	})
}

func TestDescriptionsAgentInstalls(t *testing.T) {
	f := newDescFixture(t, foundChart("mysql", "8.6.2"), managedCluster(clusterv1beta1.PushSyncMode, false), helmDescription("mysql"))
	f.sync("app-demo-helm")
	who := "the agent of cluster child-1 (Push mode with feature gate AppPusher off: the hub does not push to it, it works as in Pull mode)"
	if diff := cmp.Diff([]string{"Normal AgentInstalls Releases of Description clusternet-abcde/app-demo-helm are installed by " + who}, f.drainEvents()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	st := f.desc("app-demo-helm").Status
	if want := "HelmRelease app-demo-mysql: waiting for " + who + " to install release apps/app-demo-mysql"; st.Reason != want {
		t.Errorf("reason %q, want %q", st.Reason, want)
	}
	f.sync("app-demo-helm")
	if e := f.drainEvents(); len(e) != 0 {
		t.Errorf("announced twice: %v", e)
	}
}

func TestDescriptionsForeignHelmRelease(t *testing.T) {
	foreign := &appsv1alpha1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "app-demo-mysql", Namespace: dedicated}}
	f := newDescFixture(t, foundChart("mysql", "8.6.2"), managedCluster(clusterv1beta1.PullSyncMode, true), helmDescription("mysql"), foreign)
	f.sync("app-demo-helm")
	st := f.desc("app-demo-helm").Status
	want := "HelmRelease clusternet-abcde/app-demo-mysql exists and does not belong to Description app-demo-helm: delete or rename it"
	if st.Phase != appsv1alpha1.DescriptionPhaseFailure || st.Reason != want {
		t.Errorf("status %s %q, want Failure %q", st.Phase, st.Reason, want)
	}
}

func TestDescriptionStatus(t *testing.T) {
	hr := func(gen, observed int64, phase, description string) *appsv1alpha1.HelmRelease {
		return &appsv1alpha1.HelmRelease{
			ObjectMeta: metav1.ObjectMeta{Name: "x-demo", Generation: gen},
			Spec:       appsv1alpha1.HelmReleaseSpec{HelmOptions: appsv1alpha1.HelmOptions{TargetNamespace: "apps"}},
			Status:     appsv1alpha1.HelmReleaseStatus{Phase: phase, Description: description, ObservedGeneration: observed, Version: 1},
		}
	}
	ref := appsv1alpha1.ChartReference{Namespace: "default", Name: "demo"}
	tests := []struct {
		name       string
		states     []releaseState
		wantPhase  appsv1alpha1.DescriptionPhase
		wantReason string
	}{
		{name: "no charts", wantPhase: appsv1alpha1.DescriptionPhaseSuccess},
		{name: "deployed", states: []releaseState{{Chart: ref, HR: hr(2, 2, "deployed", "")}}, wantPhase: appsv1alpha1.DescriptionPhaseSuccess},
		{name: "spec not yet applied", states: []releaseState{{Chart: ref, HR: hr(3, 2, "deployed", "")}},
			wantPhase: appsv1alpha1.DescriptionPhasePending, wantReason: "HelmRelease x-demo: waiting for the hub to upgrade release apps/x-demo"},
		{name: "installing", states: []releaseState{{Chart: ref, HR: hr(1, 1, "pending-install", "Installing by clusternet-agent")}},
			wantPhase: appsv1alpha1.DescriptionPhasePending, wantReason: "HelmRelease x-demo: release apps/x-demo is pending-install: Installing by clusternet-agent"},
		{name: "failure wins over pending", states: []releaseState{
			{Chart: ref, HR: hr(1, 1, "failed", "boom")},
			{Chart: ref, Pending: "waiting for HelmChart default/b to be resolved in its repository"},
		}, wantPhase: appsv1alpha1.DescriptionPhaseFailure, wantReason: "HelmRelease x-demo: release apps/x-demo failed: boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := DescriptionStatus(tc.states, "the hub")
			if got.Phase != tc.wantPhase || got.Reason != tc.wantReason {
				t.Errorf("got %s %q, want %s %q", got.Phase, got.Reason, tc.wantPhase, tc.wantReason)
			}
			if len(got.ManifestStatuses) != len(tc.states) {
				t.Errorf("%d manifest statuses for %d charts", len(got.ManifestStatuses), len(tc.states))
			}
		})
	}
}

// secretReadsOutside lists the Secret requests kube got outside namespaces.
func secretReadsOutside(kube *fake.Clientset, namespaces ...string) []string {
	var out []string
	for _, a := range kube.Actions() {
		if a.GetResource().Resource == "secrets" && !slices.Contains(namespaces, a.GetNamespace()) {
			out = append(out, a.GetVerb()+" "+a.GetNamespace())
		}
	}
	return out
}

func TestDescriptionsChartPullSecretRules(t *testing.T) {
	notBound := subscription("mysql")
	notBound.Status.BindingClusters = []string{"clusternet-other/child-2"}
	otherUID := subscription("mysql")
	otherUID.UID = "another-uid"
	// truncated lists other clusters and leaves this one out: the hub
	// truncated status.bindingClusters, and the Base says who is bound.
	truncated := subscription("mysql")
	truncated.Status.BindingClusters = []string{"clusternet-other/child-2"}
	truncated.Status.BindingClustersOmitted = 1
	baseOf := func(uid string, deleting bool) *appsv1alpha1.Base {
		b := &appsv1alpha1.Base{ObjectMeta: metav1.ObjectMeta{Namespace: dedicated, Name: "app-demo",
			Labels: map[string]string{appsv1alpha1.LabelSubscriptionUID: uid}}}
		if deleting {
			now := metav1.Now()
			b.DeletionTimestamp, b.Finalizers = &now, []string{appsv1alpha1.Finalizer}
		}
		return b
	}
	bySelector := subscription()
	bySelector.Spec.Feeds = []appsv1alpha1.Feed{{APIVersion: "apps.clusternet.io/v1alpha1", Kind: "HelmChart", Namespace: "default",
		FeedSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
	const denied = "HelmChart default/mysql: its spec.chartPullSecret is copied only for the Descriptions of a Subscription that feeds it to the cluster, and "
	tests := []struct {
		name string
		ref  appsv1alpha1.SecretReference
		sub  *appsv1alpha1.Subscription
		// wantPhase and wantReason are the Description's status; wantHR,
		// whether the HelmRelease (and the Secret's copy) exists.
		wantPhase  appsv1alpha1.DescriptionPhase
		wantReason string
		wantHR     bool
		wantAgain  time.Duration
		// base is the Subscription's Base in the dedicated namespace, if any.
		base *appsv1alpha1.Base
	}{
		{name: "a Secret of another namespace is refused", ref: appsv1alpha1.SecretReference{Name: "registry-creds", Namespace: "kube-system"}, sub: subscription("mysql"),
			wantPhase: appsv1alpha1.DescriptionPhaseFailure,
			wantReason: `HelmChart default/mysql: spec.chartPullSecret.namespace "kube-system" is not the HelmChart's namespace "default": a chart pull Secret is read only from the HelmChart's own namespace: ` +
				`create Secret "registry-creds" in namespace "default" and remove spec.chartPullSecret.namespace`},
		{name: "the HelmChart's own namespace may be named", ref: appsv1alpha1.SecretReference{Name: "creds", Namespace: "default"}, sub: subscription("mysql"),
			wantPhase: appsv1alpha1.DescriptionPhasePending, wantHR: true},
		{name: "a Description of no Subscription gets no copy", ref: appsv1alpha1.SecretReference{Name: "creds"},
			wantPhase:  appsv1alpha1.DescriptionPhaseFailure,
			wantReason: denied + "Subscription default/app-demo (labels of Description clusternet-abcde/app-demo-helm) does not exist"},
		{name: "a Description whose Subscription label has another UID gets no copy", ref: appsv1alpha1.SecretReference{Name: "creds"}, sub: otherUID,
			wantPhase:  appsv1alpha1.DescriptionPhaseFailure,
			wantReason: denied + `Subscription default/app-demo has UID "another-uid", not "subs-uid" as label apps.clusternet.io/subs.uid of Description clusternet-abcde/app-demo-helm says`},
		{name: "a Subscription that does not feed the chart gives no copy", ref: appsv1alpha1.SecretReference{Name: "creds"}, sub: subscription("redis"),
			wantPhase:  appsv1alpha1.DescriptionPhaseFailure,
			wantReason: denied + "Subscription default/app-demo does not feed it"},
		{name: "a Subscription not bound to the cluster (yet) waits", ref: appsv1alpha1.SecretReference{Name: "creds"}, sub: notBound,
			wantPhase:  appsv1alpha1.DescriptionPhasePending,
			wantReason: "waiting for Subscription default/app-demo to list the cluster of namespace clusternet-abcde in status.bindingClusters before copying the chart pull Secret of HelmChart default/mysql",
			wantAgain:  bindingRecheck},
		{name: "a truncated bindingClusters: the cluster's Base says it is bound", ref: appsv1alpha1.SecretReference{Name: "creds"}, sub: truncated,
			base: baseOf("subs-uid", false), wantPhase: appsv1alpha1.DescriptionPhasePending, wantHR: true},
		{name: "a truncated bindingClusters and no Base waits", ref: appsv1alpha1.SecretReference{Name: "creds"}, sub: truncated,
			wantPhase:  appsv1alpha1.DescriptionPhasePending,
			wantReason: "waiting for Subscription default/app-demo to list the cluster of namespace clusternet-abcde in status.bindingClusters before copying the chart pull Secret of HelmChart default/mysql",
			wantAgain:  bindingRecheck},
		{name: "a truncated bindingClusters and the Base of an earlier Subscription of that name waits", ref: appsv1alpha1.SecretReference{Name: "creds"}, sub: truncated,
			base:       baseOf("earlier-uid", false),
			wantPhase:  appsv1alpha1.DescriptionPhasePending,
			wantReason: "waiting for Subscription default/app-demo to list the cluster of namespace clusternet-abcde in status.bindingClusters before copying the chart pull Secret of HelmChart default/mysql",
			wantAgain:  bindingRecheck},
		{name: "a truncated bindingClusters and a Base being deleted waits", ref: appsv1alpha1.SecretReference{Name: "creds"}, sub: truncated,
			base:       baseOf("subs-uid", true),
			wantPhase:  appsv1alpha1.DescriptionPhasePending,
			wantReason: "waiting for Subscription default/app-demo to list the cluster of namespace clusternet-abcde in status.bindingClusters before copying the chart pull Secret of HelmChart default/mysql",
			wantAgain:  bindingRecheck},
		{name: "a chart fed by feedSelector", ref: appsv1alpha1.SecretReference{Name: "creds"}, sub: bySelector,
			wantPhase: appsv1alpha1.DescriptionPhasePending, wantHR: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chart := foundChart("mysql", "8.6.2")
			chart.Labels = map[string]string{"app": "db"}
			chart.Spec.ChartPullSecret = &tc.ref
			objs := []runtime.Object{chart, managedCluster(clusterv1beta1.DualSyncMode, true), helmDescription("mysql")}
			if tc.sub != nil {
				objs = append(objs, tc.sub)
			}
			if tc.base != nil {
				objs = append(objs, tc.base)
			}
			f := newDescFixture(t, objs...)
			if _, err := f.kube.CoreV1().Secrets("kube-system").Create(context.Background(), &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "registry-creds", Namespace: "kube-system"},
				Type:       corev1.SecretTypeBasicAuth,
				Data:       map[string][]byte{"username": []byte("admin"), "password": []byte("secret")},
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			f.kube.ClearActions()

			again := f.sync("app-demo-helm")
			st := f.desc("app-demo-helm").Status
			if tc.wantHR {
				// Pending on the HelmRelease being installed.
				tc.wantReason = "HelmRelease app-demo-mysql: waiting for clusternet-hub (cluster child-1, Dual mode) to install release apps/app-demo-mysql"
			}
			if st.Phase != tc.wantPhase || st.Reason != tc.wantReason {
				t.Errorf("status %s %q,\nwant %s %q", st.Phase, st.Reason, tc.wantPhase, tc.wantReason)
			}
			if again != tc.wantAgain {
				t.Errorf("looked at again after %s, want %s", again, tc.wantAgain)
			}
			var wantHRs []string
			if tc.wantHR {
				wantHRs = []string{"app-demo-mysql"}
			}
			if diff := cmp.Diff(wantHRs, f.hrNames()); diff != "" {
				t.Errorf("HelmReleases (-want +got):\n%s", diff)
			}
			_, err := f.kube.CoreV1().Secrets(dedicated).Get(context.Background(), "app-demo-mysql-chart-pull", metav1.GetOptions{})
			if copied := err == nil; copied != tc.wantHR {
				t.Errorf("pull Secret copied: %t (%v), want %t", copied, err, tc.wantHR)
			}
			if reads := secretReadsOutside(f.kube, "default", dedicated); len(reads) != 0 {
				t.Errorf("Secrets requested outside the HelmChart's and the dedicated namespace: %v", reads)
			}
		})
	}
}

func TestDescriptionsChartNameClash(t *testing.T) {
	chartIn := func(ns, repo string) *appsv1alpha1.HelmChart {
		c := foundChart("mysql", "8.6.2")
		c.Namespace, c.UID, c.Spec.Repository = ns, types.UID("uid-"+ns), repo
		return c
	}
	desc := helmDescription()
	desc.Spec.Charts = []appsv1alpha1.ChartReference{{Namespace: "ns1", Name: "mysql"}}
	desc.Spec.ChartRaw = [][]byte{[]byte(`{"from":"ns1"}`)}
	f := newDescFixture(t, chartIn("ns1", "https://one.example.com"), chartIn("ns2", "https://two.example.com"),
		managedCluster(clusterv1beta1.DualSyncMode, true), desc)
	f.sync("app-demo-helm")
	before := f.hr("app-demo-mysql")
	if before.Spec.Repository != "https://one.example.com" {
		t.Fatalf("HelmRelease of ns1/mysql has repo %q", before.Spec.Repository)
	}
	f.drainEvents()

	// The seed's naming keeps <subscription>-<chart name>: ns2/mysql would be
	// the same HelmRelease. Neither chart may rewrite it.
	d := f.desc("app-demo-helm")
	d.Spec.Charts = append(d.Spec.Charts, appsv1alpha1.ChartReference{Namespace: "ns2", Name: "mysql"})
	d.Spec.ChartRaw = append(d.Spec.ChartRaw, []byte(`{"from":"ns2"}`))
	f.updateDesc(d)
	want := "HelmCharts ns1/mysql, ns2/mysql would all be installed as HelmRelease clusternet-abcde/app-demo-mysql (HelmReleases are named <subscription>-<HelmChart name>), " +
		"so none of them is installed or changed: feed only one HelmChart of each name to a Subscription: rename all but one of them, or feed them from separate Subscriptions"
	for range 3 {
		f.sync("app-demo-helm")
		got := f.hr("app-demo-mysql")
		if got.ResourceVersion != before.ResourceVersion || got.Spec.Repository != "https://one.example.com" || string(got.Spec.Overrides) != `{"from":"ns1"}` {
			t.Fatalf("the HelmRelease was rewritten: repo %q, overrides %s, resourceVersion %s -> %s",
				got.Spec.Repository, got.Spec.Overrides, before.ResourceVersion, got.ResourceVersion)
		}
		st := f.desc("app-demo-helm").Status
		if st.Phase != appsv1alpha1.DescriptionPhaseFailure || st.Reason != want {
			t.Fatalf("status %s %q,\nwant Failure %q", st.Phase, st.Reason, want)
		}
		var reasons []string
		for _, ms := range st.ManifestStatuses {
			reasons = append(reasons, ms.Namespace+"/"+ms.Name+": "+ms.Reason)
		}
		if diff := cmp.Diff([]string{"ns1/mysql: " + want, "ns2/mysql: " + want}, reasons); diff != "" {
			t.Errorf("manifest statuses (-want +got):\n%s", diff)
		}
	}
	if diff := cmp.Diff([]string{"Warning FailedDeploying " + want}, f.drainEvents()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"app-demo-mysql"}, f.hrNames()); diff != "" {
		t.Errorf("HelmReleases (-want +got):\n%s", diff)
	}

	t.Run("from the start: no HelmRelease at all", func(t *testing.T) {
		desc := helmDescription()
		desc.Spec.Charts = []appsv1alpha1.ChartReference{{Namespace: "ns1", Name: "mysql"}, {Namespace: "ns2", Name: "mysql"}}
		f := newDescFixture(t, chartIn("ns1", "https://one.example.com"), chartIn("ns2", "https://two.example.com"),
			managedCluster(clusterv1beta1.DualSyncMode, true), desc)
		f.sync("app-demo-helm")
		if names := f.hrNames(); len(names) != 0 {
			t.Errorf("HelmReleases made: %v", names)
		}
		if st := f.desc("app-demo-helm").Status; st.Phase != appsv1alpha1.DescriptionPhaseFailure || st.Reason != want {
			t.Errorf("status %s %q,\nwant Failure %q", st.Phase, st.Reason, want)
		}
	})

	t.Run("removing one of them installs the other", func(t *testing.T) {
		d := f.desc("app-demo-helm")
		d.Spec.Charts = d.Spec.Charts[1:]
		d.Spec.ChartRaw = d.Spec.ChartRaw[1:]
		f.updateDesc(d)
		f.sync("app-demo-helm")
		got := f.hr("app-demo-mysql")
		if got.Spec.Repository != "https://two.example.com" || string(got.Spec.Overrides) != `{"from":"ns2"}` {
			t.Errorf("HelmRelease: repo %q, overrides %s; want ns2/mysql's", got.Spec.Repository, got.Spec.Overrides)
		}
	})
}

// TestDescriptionsForgetGoneDescriptions: a Description that goes without
// passing through its finalizer (removed with it, or never given one)
// leaves nothing behind in the controller's memory once its key is synced.
func TestDescriptionsForgetGoneDescriptions(t *testing.T) {
	f := newDescFixture(t, foundChart("mysql", "8.6.2"), managedCluster(clusterv1beta1.PullSyncMode, true), helmDescription("mysql"))
	f.sync("app-demo-helm")
	if got := len(f.d.installer); got != 1 {
		t.Fatalf("installer entries after the first sync: %d, want 1", got)
	}
	if err := f.client.AppsV1alpha1().Descriptions(dedicated).Delete(context.Background(), "app-demo-helm", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.sync("app-demo-helm")
	if got := len(f.d.installer); got != 0 {
		t.Errorf("installer entries after the Description is gone: %d, want 0", got)
	}
}

// TestDescriptionsKeepNewerPullSecretCopy: deleting a HelmRelease (its
// chart no longer listed) deletes its chart pull Secret copy only while
// both are still the ones this Description made. When the API refuses a
// UID precondition (a newer HelmRelease or copy took the name), the newer
// copy, which a newer release reads, stays.
func TestDescriptionsKeepNewerPullSecretCopy(t *testing.T) {
	conflict := func(resource, name string) error {
		return apierrors.NewConflict(schema.GroupResource{Resource: resource}, name, errors.New("Precondition failed: UID in precondition does not match the UID in record"))
	}
	tests := []struct {
		name string
		// react installs the reactor standing for the newer object.
		react func(f *descFixture)
	}{
		{name: "the HelmRelease was replaced by a newer one", react: func(f *descFixture) {
			f.client.PrependReactor("delete", "helmreleases", func(a clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, conflict("helmreleases", a.(clienttesting.DeleteAction).GetName())
			})
		}},
		{name: "the pull Secret copy was replaced by a newer one", react: func(f *descFixture) {
			f.kube.PrependReactor("delete", "secrets", func(a clienttesting.Action) (bool, runtime.Object, error) {
				del := a.(clienttesting.DeleteAction)
				if del.GetDeleteOptions().Preconditions == nil || del.GetDeleteOptions().Preconditions.UID == nil {
					return false, nil, nil
				}
				return true, nil, conflict("secrets", del.GetName())
			})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mysql := foundChart("mysql", "8.6.2")
			mysql.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: "creds"}
			f := newDescFixture(t, mysql, foundChart("redis", "1.0.0"), managedCluster(clusterv1beta1.DualSyncMode, true),
				helmDescription("mysql", "redis"), subscription("mysql", "redis"))
			f.sync("app-demo-helm")
			if _, err := f.kube.CoreV1().Secrets(dedicated).Get(context.Background(), "app-demo-mysql-chart-pull", metav1.GetOptions{}); err != nil {
				t.Fatal(err)
			}
			d := f.desc("app-demo-helm")
			d.Spec.Charts = d.Spec.Charts[1:]
			f.updateDesc(d)
			tc.react(f)
			f.kube.ClearActions()

			f.sync("app-demo-helm")
			if _, err := f.kube.CoreV1().Secrets(dedicated).Get(context.Background(), "app-demo-mysql-chart-pull", metav1.GetOptions{}); err != nil {
				t.Errorf("the newer pull Secret copy is gone: %v", err)
			}
			for _, a := range f.kube.Actions() {
				if del, ok := a.(clienttesting.DeleteAction); ok && a.GetResource().Resource == "secrets" {
					if p := del.GetDeleteOptions().Preconditions; p == nil || p.UID == nil {
						t.Errorf("Secret %s/%s deleted without a UID precondition", del.GetNamespace(), del.GetName())
					}
				}
			}
		})
	}
}

// TestDescriptionsTakeOverPullSecretCopy: a copy left by an earlier
// Description of the same name (same data, another owner) is given to the
// current one, so that deleting its HelmRelease deletes the copy, and the
// garbage collector does not delete it for the earlier owner.
func TestDescriptionsTakeOverPullSecretCopy(t *testing.T) {
	mysql := foundChart("mysql", "8.6.2")
	mysql.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: "creds"}
	f := newDescFixture(t, mysql, managedCluster(clusterv1beta1.DualSyncMode, true), helmDescription("mysql"), subscription("mysql"))
	if _, err := f.kube.CoreV1().Secrets(dedicated).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "app-demo-mysql-chart-pull", Namespace: dedicated, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps.clusternet.io/v1alpha1", Kind: "Description", Name: "app-demo-helm", UID: "earlier-uid", Controller: ptr.To(true)}}},
		Data: map[string][]byte{"username": []byte("alice"), "password": []byte("pw")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.sync("app-demo-helm")
	copied, err := f.kube.CoreV1().Secrets(dedicated).Get(context.Background(), "app-demo-mysql-chart-pull", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if owner := metav1.GetControllerOf(copied); owner == nil || owner.UID != "desc-uid" {
		t.Errorf("copy's controller %v, want Description UID desc-uid", owner)
	}
	if got := copied.Labels[LabelPullSecretOf]; got != "app-demo-mysql" {
		t.Errorf("copy's label %s=%q, want app-demo-mysql", LabelPullSecretOf, got)
	}
}
