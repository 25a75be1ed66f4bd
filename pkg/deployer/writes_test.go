package deployer

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/workqueue"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// parentCalls are the deployer's requests to the parent about
// Descriptions, as "verb[/subresource]".
func parentCalls(actions []clienttesting.Action) []string {
	var out []string
	for _, a := range actions {
		if a.GetResource().Resource != "descriptions" {
			continue
		}
		call := a.GetVerb()
		if s := a.GetSubresource(); s != "" {
			call += "/" + s
		}
		out = append(out, call)
	}
	return out
}

// A new Description costs the parent two status writes (what it will
// apply, before applying: the write-ahead; then the outcome) and no read;
// a report of its objects' status after that costs one write and no read,
// though the informer's copy has not seen the deploy's write yet: the
// deployer compares with its own last write.
func TestDescriptionStatusWrites(t *testing.T) {
	ctx := context.Background()
	e := newSyncEnv(t)
	e.store(description("app-demo-generic", namespaceObj("foo"), deploymentObj("foo", "web", 2)))
	e.cs.ClearActions()

	if _, err := e.c.sync(ctx, demoKey); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"update/status", "update/status"}, parentCalls(e.cs.Actions())); diff != "" {
		t.Errorf("the deploy's requests to the parent (-want +got):\n%s", diff)
	}

	// The child's controller starts the Deployment.
	e.fake.Update(depWeb, func(o map[string]any) {
		o["status"] = map[string]any{"observedGeneration": float64(1), "replicas": float64(2), "updatedReplicas": float64(2),
			"readyReplicas": float64(2), "availableReplicas": float64(2)}
	})
	e.c.mu.Lock()
	w := e.c.children["cluster-1"]
	e.c.mu.Unlock()
	webRef := Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "web"}
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		live, _ := w.cached(webRef)
		return live != nil && WorkloadStatus(live).Available, nil
	})
	if err != nil {
		t.Fatal("the child watch never saw the Deployment available")
	}
	e.cs.ClearActions()
	if _, err := e.c.sync(ctx, demoKey); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"update/status"}, parentCalls(e.cs.Actions())); diff != "" {
		t.Errorf("the report's requests to the parent (-want +got):\n%s", diff)
	}
	got, err := e.cs.AppsV1alpha1().Descriptions("clusternet-abcde").Get(ctx, "app-demo-generic", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != appsv1alpha1.DescriptionPhaseSuccess || !deploymentReported(got, "web") {
		t.Errorf("status after the report: %+v, want Success with the Deployment available", got.Status)
	}

	// Nothing changed since: no request at all.
	e.cs.ClearActions()
	if _, err := e.c.sync(ctx, demoKey); err != nil {
		t.Fatal(err)
	}
	if got := parentCalls(e.cs.Actions()); len(got) != 0 {
		t.Errorf("a sync with nothing new sent %q to the parent, want nothing", got)
	}
}

func deploymentReported(d *appsv1alpha1.Description, name string) bool {
	for _, ms := range d.Status.ManifestStatuses {
		if ms.Kind == "Deployment" && ms.Name == name {
			return ms.Available
		}
	}
	return false
}

// Status changes of a Description's objects in the child wait statusSettle
// and are one sync however many come meanwhile; other changes (drift) are
// synced at once.
func TestObjectStatusChangesSettle(t *testing.T) {
	queue := workqueue.NewTypedDelayingQueue[string]()
	t.Cleanup(queue.ShutDown)
	c := &Controller{queue: queue, states: map[string]*descState{demoKey: {}}}
	webRef := Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "web"}

	start := time.Now()
	for range 5 {
		c.observe(demoKey, watchEvent{ref: webRef, statusOnly: true})
	}
	if n := queue.Len(); n != 0 {
		t.Fatalf("%d keys queued at once for status changes, want none before %s", n, statusSettle)
	}
	key, _ := queue.Get()
	if waited := time.Since(start); waited < statusSettle-50*time.Millisecond {
		t.Errorf("handed out after %s, want about %s", waited, statusSettle)
	}
	queue.Done(key)
	if key != demoKey || queue.Len() != 0 {
		t.Errorf("handed out %q with %d more waiting, want %q once", key, queue.Len(), demoKey)
	}

	c.observe(demoKey, watchEvent{ref: webRef, writer: "kubectl"}) // edited by hand
	if n := queue.Len(); n != 1 {
		t.Errorf("%d keys queued for an edit of an object, want it queued at once", n)
	}
}

// A Description the hub has just created has no status (the hub writes
// none): the first sync deploys it at once, and its status costs the
// parent two writes, the list of what it will apply (Pending) and the
// outcome, neither of which conflicts.
func TestFreshDescriptionDeploysAtOnce(t *testing.T) {
	ctx := context.Background()
	e := newSyncEnv(t)
	d := description("app-demo-generic", namespaceObj("foo"))
	d.CreationTimestamp = metav1.Now()
	e.store(d)
	e.cs.ClearActions()
	if _, err := e.c.sync(ctx, demoKey); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"update/status", "update/status"}, parentCalls(e.cs.Actions())); diff != "" {
		t.Errorf("the first sync's requests to the parent (-want +got):\n%s", diff)
	}
	if len(e.fake.TakeWrites()) == 0 {
		t.Error("the first sync wrote nothing to the child, want the Description applied at once")
	}
	var phases []appsv1alpha1.DescriptionPhase
	for _, a := range e.cs.Actions() {
		if u, ok := a.(clienttesting.UpdateAction); ok && a.GetSubresource() == "status" {
			phases = append(phases, u.GetObject().(*appsv1alpha1.Description).Status.Phase)
		}
	}
	if diff := cmp.Diff([]appsv1alpha1.DescriptionPhase{appsv1alpha1.DescriptionPhasePending, appsv1alpha1.DescriptionPhaseSuccess}, phases); diff != "" {
		t.Errorf("the phases written (-want +got):\n%s", diff)
	}
}

// A deployer serving one cluster acts on its dedicated namespace only.
func TestOwnNamespace(t *testing.T) {
	place := OwnNamespace("clusternet-abcde", "id-1", func() *rest.Config { return &rest.Config{Host: "https://child"} })
	if p := place("clusternet-abcde"); p.Decision != Act || p.ClusterID != "id-1" || p.Config().Host != "https://child" {
		t.Errorf("its own namespace: %+v, want Act for id-1 through its config", p)
	}
	if p := place("clusternet-fghij"); p.Decision != Skip {
		t.Errorf("another cluster's namespace: %+v, want Skip", p)
	}
}
