package deployer

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
)

// fakeClients hands out Children of the fake child, each valid until the
// test invalidates the latest.
type fakeClients struct {
	config *rest.Config

	mu    sync.Mutex
	given []*Child
	done  chan struct{}
}

func (f *fakeClients) Child(string) (*Child, <-chan struct{}, error) {
	child, err := NewChild(f.config)
	if err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.given = append(f.given, child)
	f.done = make(chan struct{})
	return child, f.done, nil
}

func (f *fakeClients) invalidate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.done)
}

func (f *fakeClients) handedOut() []*Child {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.given)
}

// A deployer given Clients watches a child through the clients it is
// handed, drops its watch as soon as they are invalidated (the cluster
// left: nothing keeps watching it), and deploys in full through fresh ones
// when the same cluster is reached again.
func TestChildWatchFollowsClientsLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newSyncEnv(t)
	clients := &fakeClients{config: &rest.Config{Host: e.fake.url, QPS: -1}}
	e.c.opts.Clients = clients
	e.c.opts.Place = func(string) Placement { return Placement{Decision: Act, ClusterID: "cluster-1"} }
	e.store(description("app-demo-generic", namespaceObj("foo")))

	if _, err := e.c.sync(ctx, demoKey); err != nil {
		t.Fatal(err)
	}
	if got := e.fake.TakeWrites(); !slices.Contains(got, "APPLY "+nsFoo) {
		t.Fatalf("writes of the first sync: %q, want APPLY %s", got, nsFoo)
	}
	if diff := cmp.Diff([]string{"cluster-1"}, e.c.Watching()); diff != "" {
		t.Fatalf("watched clusters after the first sync (-want +got):\n%s", diff)
	}

	clients.invalidate() // the cluster left
	bounded, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := wait.PollUntilContextCancel(bounded, 5*time.Millisecond, true, func(context.Context) (bool, error) {
		return len(e.c.Watching()) == 0, nil
	}); err != nil {
		t.Fatalf("the child watch outlived its clients: still watching %v", e.c.Watching())
	}

	// The same cluster id comes back: fresh clients, a full deploy.
	if _, err := e.c.sync(ctx, demoKey); err != nil {
		t.Fatal(err)
	}
	if got := e.fake.TakeWrites(); !slices.Contains(got, "APPLY "+nsFoo) {
		t.Errorf("writes of the sync after the cluster came back: %q; want the Description applied again in full (APPLY %s)", got, nsFoo)
	}
	given := clients.handedOut()
	if len(given) != 2 || given[0] == given[1] {
		t.Fatalf("clients handed out: %d, want 2 distinct (one before the cluster left, one after)", len(given))
	}
	e.c.mu.Lock()
	w := e.c.children["cluster-1"]
	e.c.mu.Unlock()
	if w == nil || w.child != given[1] {
		t.Error("the child watch after the cluster came back does not use the fresh clients")
	}
}
