package helm

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefakeclient "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/test/helmrepo"
)

type stubTargets struct {
	state TargetState
}

func (s *stubTargets) Target(*appsv1alpha1.HelmRelease) (*Cluster, TargetState, string) {
	return nil, s.state, "stub"
}

type controllerFixture struct {
	t        *testing.T
	client   *clusternetfake.Clientset
	ctl      *ReleaseController
	factory  externalversions.SharedInformerFactory
	releases *storage.Storage
	events   *record.FakeRecorder
	targets  *stubTargets
	kube     *kubefakeclient.Clientset
}

func newControllerFixture(t *testing.T, objs ...runtime.Object) *controllerFixture {
	t.Helper()
	f := &controllerFixture{t: t, client: clusternetfake.NewClientset(objs...), events: record.NewFakeRecorder(100), targets: &stubTargets{state: TargetAct}}
	d := driver.NewMemory()
	d.SetNamespace("apps")
	f.releases = storage.Init(d)
	f.factory = externalversions.NewSharedInformerFactory(f.client, 0)
	releaser := &Releaser{Source: NewSource(), Configure: func(context.Context, *Cluster, string) (*action.Configuration, error) {
		return &action.Configuration{
			Releases:     f.releases,
			KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
			Capabilities: chartutil.DefaultCapabilities,
			Log:          func(string, ...any) {},
		}, nil
	}}
	f.kube = kubefakeclient.NewClientset(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: "clusternet-abcde"},
		Data:       map[string][]byte{"username": []byte("u")},
	}, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "registry-creds", Namespace: "kube-system"},
		Type:       corev1.SecretTypeBasicAuth,
		Data:       map[string][]byte{"username": []byte("admin"), "password": []byte("secret")},
	})
	ctl, err := NewReleaseController("clusternet-test", f.client, f.kube, f.factory.Apps().V1alpha1().HelmReleases(), releaser, f.targets, f.events)
	if err != nil {
		t.Fatal(err)
	}
	f.ctl = ctl
	return f
}

// sync refreshes the lister from the fake client and syncs the HelmRelease.
func (f *controllerFixture) sync(name string) error {
	f.t.Helper()
	list, err := f.client.AppsV1alpha1().HelmReleases("clusternet-abcde").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	items := make([]any, 0, len(list.Items))
	for i := range list.Items {
		items = append(items, &list.Items[i])
	}
	if err := f.factory.Apps().V1alpha1().HelmReleases().Informer().GetIndexer().Replace(items, ""); err != nil {
		f.t.Fatal(err)
	}
	_, err = f.ctl.sync(context.Background(), "clusternet-abcde/"+name)
	return err
}

func (f *controllerFixture) get(name string) *appsv1alpha1.HelmRelease {
	f.t.Helper()
	hr, err := f.client.AppsV1alpha1().HelmReleases("clusternet-abcde").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return hr
}

func (f *controllerFixture) drainEvents() []string {
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

func TestReleaseControllerLifecycle(t *testing.T) {
	repo := helmrepo.NewRepo(t)
	repo.Add(t, helmrepo.DemoChart("demo", "0.1.0"))
	hr := &appsv1alpha1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: "sub-demo", Namespace: "clusternet-abcde", Generation: 1},
		Spec: appsv1alpha1.HelmReleaseSpec{HelmOptions: appsv1alpha1.HelmOptions{
			Repository: repo.URL, Chart: "demo", ChartVersion: "0.1.0", TargetNamespace: "apps"}},
	}
	f := newControllerFixture(t, hr)

	// Skipped: another process applies it.
	f.targets.state = TargetSkip
	if err := f.sync("sub-demo"); err != nil {
		t.Fatal(err)
	}
	if got := f.get("sub-demo"); len(got.Finalizers) != 0 || got.Status.Phase != "" {
		t.Fatalf("a skipped HelmRelease was changed: %+v", got)
	}

	f.targets.state = TargetAct
	if err := f.sync("sub-demo"); err != nil {
		t.Fatal(err)
	}
	got := f.get("sub-demo")
	if diff := cmp.Diff([]string{appsv1alpha1.Finalizer}, got.Finalizers); diff != "" {
		t.Errorf("finalizers (-want +got):\n%s", diff)
	}
	want := appsv1alpha1.HelmReleaseStatus{Phase: "deployed", Version: 1, Description: "Install complete", Notes: "demo 0.1.0 is installed as sub-demo.", ObservedGeneration: 1}
	if diff := cmp.Diff(want, got.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Normal Installed Installed chart demo version 0.1.0 as release apps/sub-demo revision 1 by clusternet-test"}, f.drainEvents()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// Deleted: uninstalled, then the finalizer goes.
	got.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	if _, err := f.client.AppsV1alpha1().HelmReleases("clusternet-abcde").Update(context.Background(), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.sync("sub-demo"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.releases.History("sub-demo"); !errors.Is(err, driver.ErrReleaseNotFound) {
		t.Errorf("release still stored after the HelmRelease was deleted: %v", err)
	}
	if got := f.get("sub-demo"); len(got.Finalizers) != 0 {
		t.Errorf("finalizers left: %v", got.Finalizers)
	}
	if diff := cmp.Diff([]string{"Normal Uninstalled Uninstalled release apps/sub-demo by clusternet-test"}, f.drainEvents()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestReleaseControllerErrors(t *testing.T) {
	repo := helmrepo.NewRepo(t)
	repo.Add(t, helmrepo.DemoChart("demo", "0.1.0"))
	newHR := func(name string) *appsv1alpha1.HelmRelease {
		return &appsv1alpha1.HelmRelease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "clusternet-abcde", Generation: 3, Finalizers: []string{appsv1alpha1.Finalizer}},
			Spec: appsv1alpha1.HelmReleaseSpec{HelmOptions: appsv1alpha1.HelmOptions{
				Repository: repo.URL, Chart: "demo", ChartVersion: "0.1.0", TargetNamespace: "apps"}},
		}
	}
	badSecret := newHR("bad-secret")
	badSecret.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: "pull"}
	noSecret := newHR("no-secret")
	noSecret.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: "missing"}
	otherNamespace := newHR("other-namespace")
	otherNamespace.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: "registry-creds", Namespace: "kube-system"}
	gone := newHR("gone")
	gone.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	f := newControllerFixture(t, badSecret, noSecret, otherNamespace, gone)

	tests := []struct {
		name string
		want appsv1alpha1.HelmReleaseStatus
	}{
		{name: "bad-secret", want: appsv1alpha1.HelmReleaseStatus{Phase: "failed", ObservedGeneration: 3,
			Description: `chart pull Secret clusternet-abcde/pull must have non-empty "username" and "password" keys: add them (kubectl create secret generic pull --from-literal=username=... --from-literal=password=...)`}},
		{name: "no-secret", want: appsv1alpha1.HelmReleaseStatus{Phase: "failed", ObservedGeneration: 3,
			Description: `spec.chartPullSecret clusternet-abcde/missing does not exist: create it with username and password keys, or remove spec.chartPullSecret`}},
		{name: "other-namespace", want: appsv1alpha1.HelmReleaseStatus{Phase: "failed", ObservedGeneration: 3,
			Description: `spec.chartPullSecret.namespace "kube-system" is not the HelmRelease's namespace "clusternet-abcde": a chart pull Secret is read only from the HelmRelease's own namespace: ` +
				`create Secret "registry-creds" in namespace "clusternet-abcde" and remove spec.chartPullSecret.namespace`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.sync(tc.name); err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tc.want, f.get(tc.name).Status); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}

	for _, a := range f.kube.Actions() {
		if a.GetResource().Resource == "secrets" && a.GetNamespace() != "clusternet-abcde" {
			t.Errorf("a Secret was requested outside the HelmReleases' namespace: %s %s", a.GetVerb(), a.GetNamespace())
		}
	}

	t.Run("a deleted HelmRelease of a cluster that is gone is released", func(t *testing.T) {
		f.targets.state = TargetGone
		if err := f.sync("gone"); err != nil {
			t.Fatal(err)
		}
		if got := f.get("gone"); len(got.Finalizers) != 0 {
			t.Errorf("finalizers left: %v", got.Finalizers)
		}
	})
}

type stubVerifier struct{ refusal string }

func (s *stubVerifier) Verify(context.Context, *appsv1alpha1.HelmRelease) (string, error) {
	return s.refusal, nil
}

func TestReleaseControllerVerifier(t *testing.T) {
	repo := helmrepo.NewRepo(t)
	repo.Add(t, helmrepo.DemoChart("demo", "0.1.0"))
	hr := &appsv1alpha1.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: "sub-demo", Namespace: "clusternet-abcde", Generation: 1},
		Spec: appsv1alpha1.HelmReleaseSpec{HelmOptions: appsv1alpha1.HelmOptions{
			Repository: repo.URL, Chart: "demo", ChartVersion: "0.1.0", TargetNamespace: "apps",
			ChartPullSecret: &appsv1alpha1.SecretReference{Name: "registry-creds", Namespace: "kube-system"}}},
	}
	f := newControllerFixture(t, hr)
	verifier := &stubVerifier{refusal: "not made here"}
	f.ctl.Verifier = verifier

	if err := f.sync("sub-demo"); err != nil {
		t.Fatal(err)
	}
	got := f.get("sub-demo")
	if len(got.Finalizers) != 0 || !cmp.Equal(got.Status, appsv1alpha1.HelmReleaseStatus{}) {
		t.Errorf("a refused HelmRelease was changed: finalizers %v, status %+v", got.Finalizers, got.Status)
	}
	if _, err := f.releases.History("sub-demo"); !errors.Is(err, driver.ErrReleaseNotFound) {
		t.Errorf("a refused HelmRelease was installed: %v", err)
	}
	if n := len(f.kube.Actions()); n != 0 {
		t.Errorf("a refused HelmRelease's Secret was read: %v", f.kube.Actions())
	}
	if diff := cmp.Diff([]string{"Warning NotVerified clusternet-test does not apply this HelmRelease: not made here"}, f.drainEvents()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// Accepted, without the foreign pull Secret: installed.
	got.Spec.ChartPullSecret = nil
	if _, err := f.client.AppsV1alpha1().HelmReleases("clusternet-abcde").Update(context.Background(), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	verifier.refusal = ""
	if err := f.sync("sub-demo"); err != nil {
		t.Fatal(err)
	}
	if got := f.get("sub-demo"); got.Status.Phase != "deployed" {
		t.Fatalf("not installed once accepted: %+v", got.Status)
	}
	f.drainEvents()

	// Deleted but refused: let go without uninstalling.
	got = f.get("sub-demo")
	got.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	if _, err := f.client.AppsV1alpha1().HelmReleases("clusternet-abcde").Update(context.Background(), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	verifier.refusal = "not made here"
	if err := f.sync("sub-demo"); err != nil {
		t.Fatal(err)
	}
	if got := f.get("sub-demo"); len(got.Finalizers) != 0 {
		t.Errorf("finalizers left: %v", got.Finalizers)
	}
	if _, err := f.releases.History("sub-demo"); err != nil {
		t.Errorf("the release of a refused HelmRelease was uninstalled: %v", err)
	}
	want := "Warning NotVerified clusternet-test lets this HelmRelease go without uninstalling release apps/sub-demo: not made here; " +
		"if that release should go, uninstall it in the child (helm uninstall -n apps sub-demo)"
	if diff := cmp.Diff([]string{want}, f.drainEvents()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestCheckPullSecretNamespace(t *testing.T) {
	tests := []struct {
		name string
		ref  *appsv1alpha1.SecretReference
		want string
	}{
		{name: "none"},
		{name: "namespace left out", ref: &appsv1alpha1.SecretReference{Name: "creds"}},
		{name: "own namespace", ref: &appsv1alpha1.SecretReference{Name: "creds", Namespace: "team-a"}},
		{name: "another namespace", ref: &appsv1alpha1.SecretReference{Name: "registry-creds", Namespace: "kube-system"},
			want: `spec.chartPullSecret.namespace "kube-system" is not the HelmChart's namespace "team-a": a chart pull Secret is read only from the HelmChart's own namespace: ` +
				`create Secret "registry-creds" in namespace "team-a" and remove spec.chartPullSecret.namespace`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if err := CheckPullSecretNamespace(tc.ref, "HelmChart", "team-a"); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q,\nwant %q", got, tc.want)
			}
		})
	}
}
