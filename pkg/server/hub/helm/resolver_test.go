package helm

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/helm"
	"github.com/clusternet/clusternet/test/helmrepo"
)

func helmChart(name, repoURL, chart, version string) *appsv1alpha1.HelmChart {
	return &appsv1alpha1.HelmChart{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Generation: 1},
		Spec: appsv1alpha1.HelmChartSpec{HelmOptions: appsv1alpha1.HelmOptions{
			Repository: repoURL, Chart: chart, ChartVersion: version, TargetNamespace: "apps"}},
	}
}

type resolverFixture struct {
	t       *testing.T
	client  *clusternetfake.Clientset
	factory externalversions.SharedInformerFactory
	r       *Resolver
	clock   *clocktesting.FakeClock
	events  *record.FakeRecorder
}

func newResolverFixture(t *testing.T, kubeObjs []runtime.Object, charts ...runtime.Object) *resolverFixture {
	f := &resolverFixture{t: t, client: clusternetfake.NewClientset(charts...), clock: clocktesting.NewFakeClock(time.Now()), events: record.NewFakeRecorder(100)}
	f.factory = externalversions.NewSharedInformerFactory(f.client, 0)
	r, err := NewResolver(f.client, kubefake.NewClientset(kubeObjs...), f.factory.Apps().V1alpha1().HelmCharts(), helm.NewSource(), f.events, f.clock)
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	return f
}

// sync refreshes the lister from the fake client and resolves chart name.
func (f *resolverFixture) sync(name string) (appsv1alpha1.HelmChartStatus, time.Duration) {
	f.t.Helper()
	list, err := f.client.AppsV1alpha1().HelmCharts("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	items := make([]any, 0, len(list.Items))
	for i := range list.Items {
		items = append(items, &list.Items[i])
	}
	if err := f.factory.Apps().V1alpha1().HelmCharts().Informer().GetIndexer().Replace(items, ""); err != nil {
		f.t.Fatal(err)
	}
	again, err := f.r.sync(context.Background(), "default/"+name)
	if err != nil {
		f.t.Fatal(err)
	}
	got, err := f.client.AppsV1alpha1().HelmCharts("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return got.Status, again
}

func TestResolver(t *testing.T) {
	repo := helmrepo.NewRepo(t)
	repo.Add(t, helmrepo.DemoChart("demo", "0.1.0"))
	repo.Add(t, helmrepo.DemoChart("demo", "0.2.0"))
	private := helmrepo.NewRepo(t, helmrepo.WithBasicAuth("alice", "pw"))
	private.Add(t, helmrepo.DemoChart("demo", "1.0.0"))
	reg := helmrepo.NewRegistry(t)
	reg.Push(t, helmrepo.DemoChart("demo", "0.3.0"))
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()

	oci := helmChart("oci", reg.URL, "demo", "0.3.0")
	oci.Spec.PlainHTTP = true
	ociMissing := helmChart("oci-missing", reg.URL, "demo", "0.4.0")
	ociMissing.Spec.PlainHTTP = true
	withSecret := helmChart("with-secret", private.URL, "demo", "1.0.0")
	withSecret.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: "creds"}
	wrongSecret := helmChart("wrong-secret", private.URL, "demo", "1.0.0")
	wrongSecret.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: "wrong"}
	missingSecret := helmChart("missing-secret", private.URL, "demo", "1.0.0")
	missingSecret.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: "nope"}
	secret := func(name, pass string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Data: map[string][]byte{"username": []byte("alice"), "password": []byte(pass)}}
	}
	f := newResolverFixture(t, []runtime.Object{secret("creds", "pw"), secret("wrong", "no")},
		helmChart("found", repo.URL, "demo", "0.1.0"),
		helmChart("latest", repo.URL, "demo", ""),
		helmChart("unknown-version", repo.URL, "demo", "0.9.0"),
		helmChart("unreachable", dead.URL, "demo", "0.1.0"),
		oci, ociMissing, withSecret, wrongSecret, missingSecret,
	)

	notFound := func(reason string) appsv1alpha1.HelmChartStatus {
		return appsv1alpha1.HelmChartStatus{Phase: appsv1alpha1.HelmChartNotFound, Reason: reason}
	}
	found := appsv1alpha1.HelmChartStatus{Phase: appsv1alpha1.HelmChartFound}
	tests := []struct {
		chart     string
		want      appsv1alpha1.HelmChartStatus
		wantAgain time.Duration
		wantEvent string
	}{
		{chart: "found", want: found, wantAgain: DefaultRecheckFound, wantEvent: fmt.Sprintf("Normal ChartFound Found chart demo version 0.1.0 in %s", repo.URL)},
		{chart: "latest", want: found, wantAgain: DefaultRecheckFound, wantEvent: fmt.Sprintf("Normal ChartFound Found chart demo version (latest) in %s", repo.URL)},
		{chart: "unknown-version", wantAgain: DefaultRecheckNotFound,
			want: notFound(fmt.Sprintf(`chart "demo" has no version "0.9.0" in %q; newest available: 0.2.0, 0.1.0: set spec.version to one of them`, repo.URL))},
		{chart: "unreachable", wantAgain: DefaultRecheckNotFound,
			want: notFound(fmt.Sprintf(`chart repository %q cannot be reached: Get "%s/index.yaml": dial tcp %s: connect: connection refused: check spec.repo and that the repository is up (it is checked again periodically)`,
				dead.URL, dead.URL, dead.Listener.Addr()))},
		{chart: "oci", want: found, wantAgain: DefaultRecheckFound, wantEvent: fmt.Sprintf("Normal ChartFound Found chart demo version 0.3.0 in %s", reg.URL)},
		{chart: "oci-missing", wantAgain: DefaultRecheckNotFound,
			want: notFound(fmt.Sprintf(`chart "demo" has no version "0.4.0" in %q; newest available: 0.3.0: set spec.version to one of them`, reg.URL))},
		{chart: "with-secret", want: found, wantAgain: DefaultRecheckFound, wantEvent: fmt.Sprintf("Normal ChartFound Found chart demo version 1.0.0 in %s", private.URL)},
		{chart: "wrong-secret", wantAgain: DefaultRecheckNotFound,
			want: notFound(fmt.Sprintf(`chart repository %q refused the credentials (401 Unauthorized): check the username and password in spec.chartPullSecret's Secret`, private.URL))},
		{chart: "missing-secret", wantAgain: DefaultRecheckNotFound,
			want: notFound(`spec.chartPullSecret default/nope does not exist: create it with username and password keys, or remove spec.chartPullSecret`)},
	}
	for _, tc := range tests {
		t.Run(tc.chart, func(t *testing.T) {
			got, again := f.sync(tc.chart)
			want := tc.want
			want.ObservedGeneration = 1 // the spec it looked up: the fixtures' first
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if again != tc.wantAgain {
				t.Errorf("re-check after %s, want %s", again, tc.wantAgain)
			}
			wantEvent := tc.wantEvent
			if tc.want.Phase == appsv1alpha1.HelmChartNotFound {
				wantEvent = "Warning ChartNotFound " + tc.want.Reason
			}
			select {
			case e := <-f.events.Events:
				if e != wantEvent {
					t.Errorf("event %q, want %q", e, wantEvent)
				}
			default:
				t.Errorf("no event, want %q", wantEvent)
			}
		})
	}
}

func TestResolverRechecks(t *testing.T) {
	repo := helmrepo.NewRepo(t)
	repo.Add(t, helmrepo.DemoChart("demo", "0.1.0"))
	f := newResolverFixture(t, nil, helmChart("demo", repo.URL, "demo", "0.1.0"))

	// The repository is down: NotFound, checked again soon.
	repo.FailWith(http.StatusBadGateway)
	st, again := f.sync("demo")
	if st.Phase != appsv1alpha1.HelmChartNotFound || again != DefaultRecheckNotFound {
		t.Fatalf("down: %+v, again %s", st, again)
	}

	// It comes back, but the re-check is not due: nothing is asked.
	repo.FailWith(0)
	f.clock.Step(5 * time.Second)
	st, again = f.sync("demo")
	if st.Phase != appsv1alpha1.HelmChartNotFound || again != DefaultRecheckNotFound-5*time.Second {
		t.Fatalf("before the re-check: %+v, again %s", st, again)
	}

	// Due: Found.
	f.clock.Step(DefaultRecheckNotFound)
	st, again = f.sync("demo")
	if st.Phase != appsv1alpha1.HelmChartFound || again != DefaultRecheckFound {
		t.Fatalf("after the re-check: %+v, again %s", st, again)
	}

	// A spec change is checked at once.
	chart, err := f.client.AppsV1alpha1().HelmCharts("default").Get(context.Background(), "demo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	chart.Spec.ChartVersion = "0.5.0"
	chart.Generation = 2
	if _, err := f.client.AppsV1alpha1().HelmCharts("default").Update(context.Background(), chart, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	st, _ = f.sync("demo")
	if st.Phase != appsv1alpha1.HelmChartNotFound {
		t.Fatalf("after a spec change: %+v", st)
	}
}

// TestResolverPullSecretOfAnotherNamespace: someone who may create
// HelmCharts only in their namespace names a Secret of kube-system and a
// repository of theirs. The resolver refuses without reading the Secret or
// reaching the repository.
func TestResolverPullSecretOfAnotherNamespace(t *testing.T) {
	var requests []string
	var mu sync.Mutex
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		user, pass, _ := r.BasicAuth()
		requests = append(requests, r.URL.Path+" as "+user+":"+pass)
		http.NotFound(w, r)
	}))
	defer attacker.Close()
	chart := helmChart("steal", attacker.URL, "demo", "1.0.0")
	chart.Namespace = "team-a"
	chart.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: "registry-creds", Namespace: "kube-system"}
	kube := kubefake.NewClientset(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "registry-creds", Namespace: "kube-system"},
		Type:       corev1.SecretTypeBasicAuth,
		Data:       map[string][]byte{"username": []byte("admin"), "password": []byte("secret")},
	})
	client := clusternetfake.NewClientset(chart)
	factory := externalversions.NewSharedInformerFactory(client, 0)
	r, err := NewResolver(client, kube, factory.Apps().V1alpha1().HelmCharts(), helm.NewSource(), record.NewFakeRecorder(10), clocktesting.NewFakeClock(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	got := r.Check(context.Background(), chart)
	want := appsv1alpha1.HelmChartStatus{Phase: appsv1alpha1.HelmChartNotFound,
		Reason: `spec.chartPullSecret.namespace "kube-system" is not the HelmChart's namespace "team-a": a chart pull Secret is read only from the HelmChart's own namespace: ` +
			`create Secret "registry-creds" in namespace "team-a" and remove spec.chartPullSecret.namespace`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if actions := kube.Actions(); len(actions) != 0 {
		t.Errorf("Secrets were requested: %v", actions)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(requests) != 0 {
		t.Errorf("the repository was asked: %v", requests)
	}
}
