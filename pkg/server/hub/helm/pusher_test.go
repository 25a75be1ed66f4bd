package helm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	"github.com/clusternet/clusternet/pkg/helm"
)

type fakeTunnels map[string]bool

func (f fakeTunnels) Has(id string) bool       { return f[id] }
func (f fakeTunnels) Watch(func(string, bool)) {}

// fakeClusters hands out one helm.Cluster per cluster id, as the hub's
// registry does, until renew (the cluster left) or refuse.
type fakeClusters struct {
	mu      sync.Mutex
	asked   []string
	held    map[string]*helm.Cluster
	refused error
}

func (f *fakeClusters) Helm(id string) (*helm.Cluster, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, id)
	if f.refused != nil {
		return nil, f.refused
	}
	if f.held == nil {
		f.held = map[string]*helm.Cluster{}
	}
	c, ok := f.held[id]
	if !ok {
		c = helm.NewCluster(&rest.Config{Host: "http://cluster-" + id})
		f.held[id] = c
	}
	return c, nil
}

func (f *fakeClusters) renew(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.held, id)
}

func TestTunnelTargets(t *testing.T) {
	const id = "0b9e2c4e-0000-4000-8000-000000000001"
	hr := &appsv1alpha1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: dedicated}}
	tests := []struct {
		name     string
		cluster  *clusterv1beta1.ManagedCluster
		tunnels  fakeTunnels
		admitted string // the namespace the cluster's registration names; dedicated when empty
		want     helm.TargetState
		wantWhy  string
		refused  error
	}{
		{name: "no ManagedCluster", want: helm.TargetGone, wantWhy: "no ManagedCluster in namespace clusternet-abcde"},
		{name: "Pull mode", cluster: managedCluster(clusterv1beta1.PullSyncMode, true), tunnels: fakeTunnels{id: true},
			want: helm.TargetSkip, wantWhy: "cluster child-1's agent applies (sync mode Pull, AppPusher true)"},
		{name: "Push mode, AppPusher off", cluster: managedCluster(clusterv1beta1.PushSyncMode, false), tunnels: fakeTunnels{id: true},
			want: helm.TargetSkip, wantWhy: "cluster child-1's agent applies (sync mode Push, AppPusher false)"},
		{name: "tunnel in another replica", cluster: managedCluster(clusterv1beta1.DualSyncMode, true), tunnels: fakeTunnels{},
			want: helm.TargetSkip, wantWhy: "cluster child-1's tunnel is not held by this replica"},
		{name: "pushed from here", cluster: managedCluster(clusterv1beta1.DualSyncMode, true), tunnels: fakeTunnels{id: true}, want: helm.TargetAct},
		{name: "a ManagedCluster naming a cluster admitted elsewhere", cluster: managedCluster(clusterv1beta1.DualSyncMode, true), tunnels: fakeTunnels{id: true},
			admitted: "clusternet-other", want: helm.TargetSkip,
			wantWhy: `cluster ` + id + ` was admitted into namespace "clusternet-other", not clusternet-abcde: nothing of this namespace is pushed into it`},
		{name: "the cluster left after it was placed", cluster: managedCluster(clusterv1beta1.DualSyncMode, true), tunnels: fakeTunnels{id: true},
			refused: errors.New("cluster " + id + " has no ManagedCluster in its admitted namespace"), want: helm.TargetSkip,
			wantWhy: "cluster " + id + " has no ManagedCluster in its admitted namespace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			factory := externalversions.NewSharedInformerFactory(clusternetfake.NewClientset(), 0)
			mcls := factory.Clusters().V1beta1().ManagedClusters()
			if tc.cluster != nil {
				if err := mcls.Informer().GetIndexer().Add(tc.cluster); err != nil {
					t.Fatal(err)
				}
			}
			admitted := dedicated
			if tc.admitted != "" {
				admitted = tc.admitted
			}
			clusters := &fakeClusters{refused: tc.refused}
			targets := &tunnelTargets{mcls: mcls.Lister(), tunnels: tc.tunnels, clusters: clusters,
				admittedInto: func(string) string { return admitted }}
			c, state, why := targets.Target(hr)
			if state != tc.want || why != tc.wantWhy {
				t.Fatalf("Target = %v %q, want %v %q", state, why, tc.want, tc.wantWhy)
			}
			if (c != nil) != (state == helm.TargetAct) {
				t.Fatalf("cluster %v for state %v", c, state)
			}
			if state == helm.TargetAct && c != clusters.held[id] {
				t.Errorf("Target returned a cluster the registry did not hand out")
			}
		})
	}
}

func TestMadeByHub(t *testing.T) {
	mysql := foundChart("mysql", "8.6.2")
	mysql.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: "creds"}
	desc := rendered(helmDescription("mysql"), mysql)
	desc.Spec.ChartRaw = [][]byte{[]byte(`{"a":1}`)}
	made := func() *appsv1alpha1.HelmRelease { return DesiredRelease(desc, 0, nil, "app-demo-mysql") }
	with := func(change func(hr *appsv1alpha1.HelmRelease)) *appsv1alpha1.HelmRelease {
		hr := made()
		change(hr)
		return hr
	}
	deleting := func(hr *appsv1alpha1.HelmRelease) { hr.DeletionTimestamp = &metav1.Time{Time: time.Now()} }
	otherDesc := helmDescription("mysql")
	otherDesc.Name, otherDesc.UID, otherDesc.Spec.Deployer = "app-demo-generic", "generic-uid", appsv1alpha1.DescriptionGenericDeployer
	const differ = "its spec is not what the hub makes from Description clusternet-abcde/app-demo-helm for HelmChart default/mysql (%s differ): " +
		"the hub applies only the HelmReleases it makes, as it makes them (its Helm Description controller writes this one again)"
	tests := []struct {
		name string
		hr   *appsv1alpha1.HelmRelease
		want string
	}{
		{name: "as the hub makes it", hr: made()},
		{name: "no owner reference (the agent wrote it)", hr: with(func(hr *appsv1alpha1.HelmRelease) { hr.OwnerReferences = nil }),
			want: "it has no controller owner reference to a Description: the hub applies only the HelmReleases it makes from Helm Descriptions"},
		{name: "an owner reference with a made-up UID", hr: with(func(hr *appsv1alpha1.HelmRelease) { hr.OwnerReferences[0].UID = "forged" }),
			want: "its owner reference names Description clusternet-abcde/app-demo-helm with UID forged, but that Description's UID is desc-uid"},
		{name: "an owner that does not exist", hr: with(func(hr *appsv1alpha1.HelmRelease) { hr.OwnerReferences[0].Name = "gone-helm" }),
			want: "its owner Description clusternet-abcde/gone-helm does not exist"},
		{name: "a generic Description as owner", hr: with(func(hr *appsv1alpha1.HelmRelease) {
			hr.OwnerReferences[0].Name, hr.OwnerReferences[0].UID = otherDesc.Name, otherDesc.UID
		}), want: `its owner Description clusternet-abcde/app-demo-generic is not a Helm Description (deployer "Generic")`},
		{name: "a name the Description does not make", hr: with(func(hr *appsv1alpha1.HelmRelease) { hr.Name = "app-demo-other" }),
			want: "Description clusternet-abcde/app-demo-helm lists no HelmChart whose HelmRelease is named app-demo-other"},
		{name: "the repository changed (credentials would go there)", hr: with(func(hr *appsv1alpha1.HelmRelease) { hr.Spec.Repository = "https://attacker.example" }),
			want: fmt.Sprintf(differ, "spec.repo")},
		{name: "a parent Secret as pull Secret", hr: with(func(hr *appsv1alpha1.HelmRelease) {
			hr.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: "registry-creds", Namespace: "kube-system"}
		}), want: fmt.Sprintf(differ, "spec.chartPullSecret")},
		{name: "another Secret of the dedicated namespace", hr: with(func(hr *appsv1alpha1.HelmRelease) { hr.Spec.ChartPullSecret.Name = "other-chart-pull" }),
			want: fmt.Sprintf(differ, "spec.chartPullSecret")},
		{name: "values and target changed", hr: with(func(hr *appsv1alpha1.HelmRelease) {
			hr.Spec.Overrides, hr.Spec.TargetNamespace = []byte(`{"a":2}`), "kube-system"
		}), want: fmt.Sprintf(differ, "spec.overrides, spec.targetNamespace")},
		{name: "deleting, with an older spec: uninstalled", hr: with(func(hr *appsv1alpha1.HelmRelease) {
			deleting(hr)
			hr.Spec.TargetNamespace = "old"
		})},
		{name: "deleting, not made by the hub", hr: with(func(hr *appsv1alpha1.HelmRelease) {
			deleting(hr)
			hr.OwnerReferences = nil
		}), want: "it has no controller owner reference to a Description: the hub applies only the HelmReleases it makes from Helm Descriptions"},
	}
	client := clusternetfake.NewClientset(mysql, desc, otherDesc)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MadeByHub{Client: client}.Verify(context.Background(), tc.hr)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Verify = %q,\nwant %q", got, tc.want)
			}
		})
	}

	t.Run("a HelmChart changed since: the release its Description says is still the hub's", func(t *testing.T) {
		changed := mysql.DeepCopy()
		changed.Spec.ChartVersion = "8.6.3"
		client := clusternetfake.NewClientset(changed, desc)
		if got, err := (MadeByHub{Client: client}).Verify(context.Background(), made()); err != nil || got != "" {
			t.Errorf("Verify = %q %v, want it accepted: a HelmRelease changes only with its Description", got, err)
		}
	})

	t.Run("a Description of an older hub: verified against the HelmChart as it is", func(t *testing.T) {
		legacy := helmDescription("mysql")
		legacy.Spec.ChartRaw = desc.Spec.ChartRaw
		changed := mysql.DeepCopy()
		changed.Spec.ChartVersion = "8.6.3"
		client := clusternetfake.NewClientset(changed, legacy)
		got, err := MadeByHub{Client: client}.Verify(context.Background(), DesiredRelease(legacy, 0, mysql, "app-demo-mysql"))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(differ, "spec.version"); got != want {
			t.Errorf("Verify = %q,\nwant %q", got, want)
		}
		if got, _ := (MadeByHub{Client: client}).Verify(context.Background(), DesiredRelease(legacy, 0, changed, "app-demo-mysql")); got != "" {
			t.Errorf("the HelmRelease made again is refused: %q", got)
		}
	})

	t.Run("charts whose names clash", func(t *testing.T) {
		clash := helmDescription("mysql")
		clash.Spec.Charts = append(clash.Spec.Charts, appsv1alpha1.ChartReference{Namespace: "other", Name: "mysql"})
		client := clusternetfake.NewClientset(mysql, clash)
		got, err := MadeByHub{Client: client}.Verify(context.Background(), DesiredRelease(clash, 0, mysql, "app-demo-mysql"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got, "HelmCharts default/mysql, other/mysql would all be installed as HelmRelease clusternet-abcde/app-demo-mysql") {
			t.Errorf("Verify = %q", got)
		}
	})
}

// TestPusherIgnoresForgedHelmReleases runs the hub's pusher on a HelmRelease
// the cluster's agent could write in its dedicated namespace: a repository
// of its choosing and a parent Secret as pull Secret. The hub reads no
// Secret and acts in no child; it says why in an event.
func TestPusherIgnoresForgedHelmReleases(t *testing.T) {
	const id = "0b9e2c4e-0000-4000-8000-000000000001"
	desc := helmDescription("mysql")
	forged := DesiredRelease(desc, 0, foundChart("mysql", "8.6.2"), "app-demo-mysql")
	forged.Spec.Repository = "https://attacker.example"
	forged.Spec.ChartPullSecret = &appsv1alpha1.SecretReference{Name: "registry-creds", Namespace: "kube-system"}
	client := clusternetfake.NewClientset(foundChart("mysql", "8.6.2"), desc, forged, managedCluster(clusterv1beta1.PushSyncMode, true))
	kube := fake.NewClientset(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "registry-creds", Namespace: "kube-system"},
		Type:       corev1.SecretTypeBasicAuth,
		Data:       map[string][]byte{"username": []byte("admin"), "password": []byte("secret")},
	})
	factory := externalversions.NewSharedInformerFactory(client, 0)
	events := record.NewFakeRecorder(10)
	p, err := NewPusher(client, kube, factory.Apps().V1alpha1().HelmReleases(), factory.Clusters().V1beta1().ManagedClusters(),
		fakeTunnels{id: true}, &fakeClusters{},
		func(string) string { return dedicated }, helm.NewSource(), events)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, 1)
	}()
	select {
	case e := <-events.Events:
		want := "Warning NotVerified clusternet-hub does not apply this HelmRelease: its spec is not what the hub makes from Description clusternet-abcde/app-demo-helm for HelmChart default/mysql " +
			"(spec.chartPullSecret, spec.repo differ): the hub applies only the HelmReleases it makes, as it makes them (its Helm Description controller writes this one again)"
		if e != want {
			t.Errorf("event %q,\nwant %q", e, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no event from the pusher")
	}
	cancel()
	<-done
	if reads := secretReadsOutside(kube); len(reads) != 0 {
		t.Errorf("the pusher requested Secrets: %v", reads)
	}
	hr, err := client.AppsV1alpha1().HelmReleases(dedicated).Get(context.Background(), "app-demo-mysql", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hr.Status.Phase != "" || len(hr.Finalizers) != 1 {
		t.Errorf("the pusher changed the forged HelmRelease: status %+v, finalizers %v", hr.Status, hr.Finalizers)
	}
}

// The pusher keeps no clients of its own: each Target asks the registry,
// so once the registry dropped a cluster (it left, or its tunnel went
// down), the next action gets the fresh clients the registry hands out.
func TestPusherTakesClustersFromTheRegistry(t *testing.T) {
	const id = "0b9e2c4e-0000-4000-8000-000000000001"
	client := clusternetfake.NewClientset()
	factory := externalversions.NewSharedInformerFactory(client, 0)
	mcls := factory.Clusters().V1beta1().ManagedClusters()
	if err := mcls.Informer().GetIndexer().Add(managedCluster(clusterv1beta1.DualSyncMode, true)); err != nil {
		t.Fatal(err)
	}
	clusters := &fakeClusters{}
	p, err := NewPusher(client, fake.NewClientset(), factory.Apps().V1alpha1().HelmReleases(), mcls,
		fakeTunnels{id: true}, clusters, func(string) string { return dedicated }, helm.NewSource(), record.NewFakeRecorder(10))
	if err != nil {
		t.Fatal(err)
	}
	hr := &appsv1alpha1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: dedicated}}
	first, state, why := p.targets.Target(hr)
	if state != helm.TargetAct {
		t.Fatalf("Target = %v %q, want %v", state, why, helm.TargetAct)
	}
	same, _, _ := p.targets.Target(hr)
	clusters.renew(id) // the registry dropped the cluster and built it again
	fresh, _, _ := p.targets.Target(hr)
	if same != first {
		t.Error("the registry's cluster was not used again while it held it")
	}
	if fresh == first {
		t.Error("the pusher kept the cluster the registry dropped")
	}
	if diff := cmp.Diff([]string{id, id, id}, clusters.asked); diff != "" {
		t.Errorf("clusters asked of the registry (-want +got):\n%s", diff)
	}
}

// Only an update of a ManagedCluster that may change who applies its
// releases (placement.Changed) requeues them: its agent's heartbeats and
// other status reports, every few seconds, do not (each requeued release
// reads its Helm storage in the child through the tunnel). A second
// cluster's sync mode, switched after each update, is the fence: the
// pusher, with one worker, looks at the first cluster's release before
// the second's only if the update requeued it.
func TestPusherRequeuesOnlyOnPlacementChanges(t *testing.T) {
	const idA, idB, nsA, nsB = "0b9e2c4e-0000-4000-8000-00000000000a", "0b9e2c4e-0000-4000-8000-00000000000b", "clusternet-aaaaa", "clusternet-bbbbb"
	cluster := func(ns, id string) *clusterv1beta1.ManagedCluster {
		mc := managedCluster(clusterv1beta1.PullSyncMode, true)
		mc.Namespace, mc.Spec.ClusterID = ns, types.UID(id)
		return mc
	}
	release := func(ns string) *appsv1alpha1.HelmRelease {
		return &appsv1alpha1.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "app-demo-mysql", Namespace: ns}}
	}
	client := clusternetfake.NewClientset(cluster(nsA, idA), cluster(nsB, idB), release(nsA), release(nsB))
	factory := externalversions.NewSharedInformerFactory(client, 0)
	// Every look at a release asks which namespace its cluster was admitted
	// into ("" here: none, so the pusher skips it before anything else).
	looked := make(chan string, 100)
	p, err := NewPusher(client, fake.NewClientset(), factory.Apps().V1alpha1().HelmReleases(), factory.Clusters().V1beta1().ManagedClusters(),
		fakeTunnels{}, &fakeClusters{}, func(id string) string { looked <- id; return "" }, helm.NewSource(), record.NewFakeRecorder(10))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, 1)
	}()
	defer func() {
		cancel()
		<-done
		factory.Shutdown()
	}()
	next := func() string {
		select {
		case id := <-looked:
			return id
		case <-time.After(30 * time.Second):
			t.Fatal("the pusher looked at no release")
			return ""
		}
	}
	// The initial lists queue each release once.
	initial := []string{next(), next()}
	slices.Sort(initial)
	if diff := cmp.Diff([]string{idA, idB}, initial); diff != "" {
		t.Fatalf("initial looks, one at each cluster (-want +got):\n%s", diff)
	}
	mcs := client.ClustersV1beta1().ManagedClusters(nsA)
	fence := client.ClustersV1beta1().ManagedClusters(nsB)
	steps := []struct {
		name   string
		update func(mc *clusterv1beta1.ManagedCluster)
		status bool // written through the status subresource
		want   []string
	}{
		{name: "heartbeat", status: true, update: func(mc *clusterv1beta1.ManagedCluster) {
			mc.Status.LastObservedTime = metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 2, 0, time.UTC))
			mc.Status.Healthz, mc.Status.Readyz, mc.Status.Livez = true, true, true
		}},
		{name: "allocatable and node statistics", status: true, update: func(mc *clusterv1beta1.ManagedCluster) {
			mc.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}
			mc.Status.NodeStatistics.ReadyNodes = 3
		}},
		{name: "a label", update: func(mc *clusterv1beta1.ManagedCluster) { mc.Labels = map[string]string{"zone": "b"} }},
		{name: "sync mode Pull to Push", update: func(mc *clusterv1beta1.ManagedCluster) { mc.Spec.SyncMode = clusterv1beta1.PushSyncMode }, want: []string{idA}},
		{name: "AppPusher off", status: true, update: func(mc *clusterv1beta1.ManagedCluster) { mc.Status.AppPusher = false }, want: []string{idA}},
		{name: "AppPusher off again, with a heartbeat", status: true, update: func(mc *clusterv1beta1.ManagedCluster) {
			mc.Status.LastObservedTime = metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 4, 0, time.UTC))
		}},
		{name: "AppPusher on", status: true, update: func(mc *clusterv1beta1.ManagedCluster) { mc.Status.AppPusher = true }, want: []string{idA}},
	}
	fenceMode := clusterv1beta1.PullSyncMode
	for _, step := range steps {
		mc, err := mcs.Get(ctx, "child-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		step.update(mc)
		if step.status {
			_, err = mcs.UpdateStatus(ctx, mc, metav1.UpdateOptions{})
		} else {
			_, err = mcs.Update(ctx, mc, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		// The fence: cluster B switches between Pull and Push (AppPusher on).
		fenceMode = map[clusterv1beta1.ClusterSyncMode]clusterv1beta1.ClusterSyncMode{
			clusterv1beta1.PullSyncMode: clusterv1beta1.PushSyncMode, clusterv1beta1.PushSyncMode: clusterv1beta1.PullSyncMode}[fenceMode]
		b, err := fence.Get(ctx, "child-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b.Spec.SyncMode = fenceMode
		if _, err := fence.Update(ctx, b, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for id := next(); id != idB; id = next() {
			got = append(got, id)
		}
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("%s: looks at cluster A's release before the fence (-want +got):\n%s", step.name, diff)
		}
	}
}
