package deployer

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// A status write that conflicts is redone on a fresh copy with only what
// the writer changes: a stale cached copy never rolls back another write.
func TestWriteStatusConflictKeepsFreshFields(t *testing.T) {
	fresh := description("app-demo-generic")
	fresh.ResourceVersion = "2"
	fresh.Status = appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ObservedGeneration: 1}
	stale := fresh.DeepCopy()
	stale.ResourceVersion = "1"
	stale.Status = appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhasePending}

	cs := fake.NewClientset(fresh)
	conflicts := 0
	cs.PrependReactor("update", "descriptions", func(a clienttesting.Action) (bool, runtime.Object, error) {
		u := a.(clienttesting.UpdateAction)
		if u.GetSubresource() == "status" && u.GetObject().(*appsv1alpha1.Description).ResourceVersion != "2" {
			conflicts++
			return true, nil, apierrors.NewConflict(appsv1alpha1.Resource("descriptions"), fresh.Name, nil)
		}
		return false, nil, nil
	})
	c := &Controller{opts: Options{Parent: cs}}
	statuses := []appsv1alpha1.ManifestStatus{{Feed: appsv1alpha1.Feed{APIVersion: "v1", Kind: "Namespace", Name: "foo"},
		FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}}}
	got, err := c.writeStatus(context.Background(), stale, func(s *appsv1alpha1.DescriptionStatus) { s.ManifestStatuses = statuses })
	if err != nil {
		t.Fatal(err)
	}
	if conflicts != 1 {
		t.Errorf("%d conflicts, want the stale write to conflict once", conflicts)
	}
	want := appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ObservedGeneration: 1, ManifestStatuses: statuses}
	if diff := cmp.Diff(want, got.Status); diff != "" {
		t.Errorf("status written (-want +got):\n%s", diff)
	}
}

func TestBackoffFor(t *testing.T) {
	var got []string
	for _, n := range []int{1, 2, 3, 8, 20} {
		got = append(got, backoffFor(n).String())
	}
	if diff := cmp.Diff([]string{"2s", "4s", "8s", "4m16s", "5m0s"}, got); diff != "" {
		t.Errorf("backoff (-want +got):\n%s", diff)
	}
}

// The child's objects often change before the parent's watch brings back
// the report the deploy just wrote: a refresh on that stale cached copy
// (status about the previous generation) must still write what the child
// holds, or the status stays as the deploy left it (here: "waiting for its
// controller") with no later event to correct it.
func TestRefreshStatusOnStaleCachedDescription(t *testing.T) {
	ctx := context.Background()
	fc, child := newFakeChild(t)
	fc.Put(nsFoo, namespaceObj("foo"))

	fresh := description("app-demo-generic", deploymentObj("foo", "web", 7))
	fresh.Generation, fresh.ResourceVersion = 2, "5"
	objs := mustObjects(t, fresh)
	if res := child.Deploy(ctx, Plan{Objects: objs}); res.Err != nil {
		t.Fatal(res.Err)
	}
	fc.Update(depWeb, func(deploy map[string]any) {
		deploy["metadata"].(map[string]any)["generation"] = float64(2)
		deploy["status"] = map[string]any{"observedGeneration": float64(2), "replicas": float64(7), "updatedReplicas": float64(7),
			"readyReplicas": float64(7), "availableReplicas": float64(7)}
	})
	webFeed := appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "web"}
	// What the deploy of generation 2 wrote, from the apply's response.
	fresh.Status = appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ObservedGeneration: 2,
		ManifestStatuses: []appsv1alpha1.ManifestStatus{{Feed: webFeed, FeedStatus: appsv1alpha1.FeedStatus{Applied: true,
			Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, Reason: "waiting for its controller to observe generation 2 (observed 1)"}}}}
	// The cache: the new spec, but still the report on generation 1.
	stale := fresh.DeepCopy()
	stale.ResourceVersion = "4"
	stale.Status = appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ObservedGeneration: 1,
		ManifestStatuses: []appsv1alpha1.ManifestStatus{{Feed: webFeed, FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true,
			Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}}}}

	cs := fake.NewClientset(fresh)
	c := &Controller{opts: Options{Parent: cs}}
	w := newChildWatch(ctx, "cluster-1", child, func(string, watchEvent) {})
	defer w.stop()
	if err := c.refreshStatus(ctx, w, 2, stale, objs); err != nil {
		t.Fatal(err)
	}
	got, err := cs.AppsV1alpha1().Descriptions(fresh.Namespace).Get(ctx, fresh.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ObservedGeneration: 2,
		ManifestStatuses: []appsv1alpha1.ManifestStatus{{Feed: webFeed, FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true,
			Replicas: 7, ReadyReplicas: 7, AvailableReplicas: 7}}}}
	if diff := cmp.Diff(want, got.Status); diff != "" {
		t.Errorf("status after the refresh (-want +got):\n%s", diff)
	}
}

// A Deployment scaled back up (drift corrected) changes its status twice
// before the parent's watch brings back the first report: the second
// refresh, made on a cached copy that still holds the report from before
// the drift, must not take "same as the cache" for "already written", or
// the "1 of 3 replicas" report written in between stays (status-only
// updates queue nothing).
func TestRefreshStatusAfterOwnWriteTheCacheHasNotSeen(t *testing.T) {
	ctx := context.Background()
	cached, objs, child, setStatus := reportedWeb(t)
	available := cached.Status.ManifestStatuses[0].FeedStatus

	cs := fake.NewClientset(cached)
	c := &Controller{opts: Options{Parent: cs}, states: map[string]*descState{}}
	c.state(demoKey, cached, "cluster-1")
	w := newChildWatch(ctx, "cluster-1", child, func(string, watchEvent) {})
	defer w.stop()
	for _, n := range []float64{1, 3} { // scaled down by hand, then back up
		setStatus(n)
		if err := c.refreshStatus(ctx, w, 1, cached, objs); err != nil {
			t.Fatal(err)
		}
	}
	got, err := cs.AppsV1alpha1().Descriptions(cached.Namespace).Get(ctx, cached.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(available, got.Status.ManifestStatuses[0].FeedStatus); diff != "" {
		t.Errorf("status after the Deployment is back (-want +got):\n%s", diff)
	}
}

// A status another writer (the hub) wrote after this deployer's last
// write is newer than that write: once the informer holds it, a refresh
// compares with it, not with the deployer's own copy, so the report the
// other write replaced ("3 of 3" over "1 of 3") is written again.
func TestRefreshStatusAfterAnotherWriteTheCacheHasSeen(t *testing.T) {
	ctx := context.Background()
	cached, objs, child, setStatus := reportedWeb(t)
	setStatus(1)

	cs := fake.NewClientset(cached)
	// Every write makes a new resourceVersion, as the parent's does.
	rv := 4
	cs.PrependReactor("update", "descriptions", func(a clienttesting.Action) (bool, runtime.Object, error) {
		rv++
		a.(clienttesting.UpdateAction).GetObject().(*appsv1alpha1.Description).ResourceVersion = strconv.Itoa(rv)
		return false, nil, nil
	})
	c := &Controller{opts: Options{Parent: cs}, states: map[string]*descState{}}
	c.state(demoKey, cached, "cluster-1")
	w := newChildWatch(ctx, "cluster-1", child, func(string, watchEvent) {})
	defer w.stop()
	if err := c.refreshStatus(ctx, w, 1, cached, objs); err != nil { // writes "1 of 3" as version 5
		t.Fatal(err)
	}
	if got := c.newest(cached).ResourceVersion; got != "5" {
		t.Errorf("with the cache at the version our write replaced, compared with version %s, want our write (5)", got)
	}
	ours, err := cs.AppsV1alpha1().Descriptions(cached.Namespace).Get(ctx, cached.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ours.Status.ManifestStatuses[0].ReadyReplicas != 1 {
		t.Fatalf("the first refresh wrote %+v, want the Deployment's 1 ready replica", ours.Status.ManifestStatuses[0].FeedStatus)
	}
	// The other writer's "3 of 3", which the informer brings back.
	theirs := ours.DeepCopy()
	theirs.Status = cached.Status
	if theirs, err = cs.AppsV1alpha1().Descriptions(cached.Namespace).UpdateStatus(ctx, theirs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.refreshStatus(ctx, w, 1, theirs, objs); err != nil {
		t.Fatal(err)
	}
	got, err := cs.AppsV1alpha1().Descriptions(cached.Namespace).Get(ctx, cached.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ours.Status.ManifestStatuses, got.Status.ManifestStatuses); diff != "" {
		t.Errorf("status after another writer's newer status (-want +got):\n%s", diff)
	}
}

// reportedWeb is a Description (generation 1, resourceVersion 4) of the
// Deployment web of 3 replicas, deployed in a fake child, whose status
// reports it available; setStatus sets the replicas the child's
// Deployment reports.
func reportedWeb(t *testing.T) (cached *appsv1alpha1.Description, objs []Object, child *Child, setStatus func(replicas float64)) {
	fc, child := newFakeChild(t)
	fc.Put(nsFoo, namespaceObj("foo"))
	cached = description("app-demo-generic", deploymentObj("foo", "web", 3))
	cached.Generation, cached.ResourceVersion = 1, "4"
	objs = mustObjects(t, cached)
	if res := child.Deploy(context.Background(), Plan{Objects: objs}); res.Err != nil {
		t.Fatal(res.Err)
	}
	setStatus = func(n float64) {
		fc.Update(depWeb, func(o map[string]any) {
			o["status"] = map[string]any{"observedGeneration": float64(1), "replicas": n, "updatedReplicas": n,
				"readyReplicas": n, "availableReplicas": n}
		})
	}
	webFeed := appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "web"}
	available := appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}
	cached.Status = appsv1alpha1.DescriptionStatus{Phase: appsv1alpha1.DescriptionPhaseSuccess, ObservedGeneration: 1,
		ManifestStatuses: []appsv1alpha1.ManifestStatus{{Feed: webFeed, FeedStatus: available}}}
	return cached, objs, child, setStatus
}

const demoKey = "clusternet-abcde/app-demo-generic"

// newSyncEnv is an ownershipEnv whose controller acts for cluster-1
// through the fake child, for whole syncs (c.sync) as a worker runs them.
func newSyncEnv(t *testing.T) *ownershipEnv {
	e := newOwnershipEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // stops the child watches the syncs start
	config := &rest.Config{Host: e.fake.url, QPS: -1}
	e.c.ctx = ctx
	e.c.opts.Resync = 5 * time.Minute
	e.c.opts.Place = func(string) Placement {
		return Placement{Decision: Act, ClusterID: "cluster-1", Config: func() *rest.Config { return config }}
	}
	return e
}

// A reset of what a Description has deployed (its child's tunnel went
// away: DropChild; another Description takes its objects over: redeploy)
// made while a deploy of it is under way stands: the next sync deploys in
// full again rather than believing the deploy that started before. Lost,
// the Description waits for the next resync (5 minutes) after a reconnect.
func TestResetDuringDeployIsKept(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset func(c *Controller)
	}{
		{name: "DropChild", reset: func(c *Controller) { c.DropChild("cluster-1") }},
		{name: "redeploy", reset: func(c *Controller) { c.redeploy("clusternet-abcde", []string{"app-demo-generic"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newSyncEnv(t)
			e.store(description("app-demo-generic", namespaceObj("foo")))
			// The deploy's apply of Namespace foo waits until the reset is made.
			applying, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			e.fake.Hold(func(r *http.Request) {
				if r.Method == http.MethodPatch && r.URL.Path == nsFoo && r.URL.Query().Get("dryRun") == "" {
					once.Do(func() {
						close(applying)
						<-release
					})
				}
			})

			done := make(chan error, 1)
			go func() {
				_, err := e.c.sync(ctx, demoKey)
				done <- err
			}()
			<-applying
			tc.reset(e.c)
			close(release)
			if err := <-done; err != nil {
				t.Fatalf("the sync during the %s: %v", tc.name, err)
			}
			if got := e.fake.TakeWrites(); !slices.Contains(got, "APPLY "+nsFoo) {
				t.Fatalf("writes of the first sync: %q, want APPLY %s", got, nsFoo)
			}

			if _, err := e.c.sync(ctx, demoKey); err != nil {
				t.Fatal(err)
			}
			if got := e.fake.TakeWrites(); !slices.Contains(got, "APPLY "+nsFoo) {
				t.Errorf("writes of the sync after the %s: %q; want the Description applied again in full (APPLY %s)", tc.name, got, nsFoo)
			}
		})
	}
}

// A kind the child refuses to list (RBAC) never syncs its informer: the
// deploy that first meets it waits syncTimeout for it, and later deploys
// through the same child watch do not wait for it again (it would hold one
// of the two workers that long on every deploy). The kinds that sync are
// still waited for and served from their caches.
func TestUnsyncableKindCostsOneWait(t *testing.T) {
	ctx := context.Background()
	e := newSyncEnv(t)
	e.fake.ForbidList("configmaps")
	// Each bounded wait hands the test its timer, which the test fires.
	waits := make(chan chan time.Time)
	e.c.after = func(d time.Duration) <-chan time.Time {
		if d != syncTimeout {
			t.Errorf("waited for informers up to %s, want %s", d, syncTimeout)
		}
		fire := make(chan time.Time, 1)
		waits <- fire
		return fire
	}
	e.store(description("app-demo-generic", namespaceObj("foo"), configMapObj("foo", "data")))
	startSync := func() chan error {
		done := make(chan error, 1)
		go func() {
			_, err := e.c.sync(ctx, demoKey)
			done <- err
		}()
		return done
	}

	done := startSync()
	fire := <-waits // the first deploy waits for namespaces and configmaps
	e.c.mu.Lock()
	w := e.c.children["cluster-1"]
	e.c.mu.Unlock()
	w.mu.Lock()
	namespaces := w.kinds[schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}]
	w.mu.Unlock()
	bounded, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(bounded.Done(), namespaces.HasSynced) {
		t.Fatal("the informer of namespaces did not sync")
	}
	fire <- time.Now() // configmaps cannot sync: time is up
	if err := <-done; err != nil {
		t.Fatalf("first deploy: %v", err)
	}

	// A new generation: deployed in full again, through the same watch.
	d, err := e.cs.AppsV1alpha1().Descriptions("clusternet-abcde").Get(ctx, "app-demo-generic", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Generation = 2
	e.store(d)
	e.fake.TakeWrites()
	done = startSync()
	select {
	case fire := <-waits:
		t.Errorf("the second deploy waited up to %s again for informers, though configmaps cannot sync and namespaces did", syncTimeout)
		fire <- time.Now()
		err = <-done
	case err = <-done:
	}
	if err != nil {
		t.Fatalf("second deploy: %v", err)
	}
	if got := e.fake.TakeWrites(); !slices.Contains(got, "APPLY /api/v1/namespaces/foo/configmaps/data") {
		t.Errorf("writes of the second deploy: %q, want the ConfigMap applied", got)
	}
	known := map[string]bool{}
	for _, r := range []Ref{{APIVersion: "v1", Kind: "Namespace", Name: "foo"}, {APIVersion: "v1", Kind: "ConfigMap", Namespace: "foo", Name: "data"}} {
		_, known[r.Kind] = w.cached(r)
	}
	if diff := cmp.Diff(map[string]bool{"Namespace": true, "ConfigMap": false}, known); diff != "" {
		t.Errorf("kinds the watch cache knows (-want +got):\n%s", diff)
	}
}
