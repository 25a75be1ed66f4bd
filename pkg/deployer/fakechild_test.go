package deployer

import (
	"net/http/httptest"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/clusternet/clusternet/test/memchild"
)

// fakeChild is the in-memory child apiserver (test/memchild, shared with
// the 1,000-cluster harness) served on a local address. A request a
// deployer must not send (a PATCH that is not a forced apply by
// FieldManager) fails the test.
type fakeChild struct {
	*memchild.Child
	// url is the server's address, for a rest.Config.
	url string
}

func newFakeChild(t *testing.T) (*fakeChild, *Child) {
	mc := memchild.New(memchild.Options{FieldManager: FieldManager, Errorf: t.Errorf})
	srv := httptest.NewServer(mc)
	t.Cleanup(srv.Close)
	// Before srv.Close (cleanups run last first): it waits for open watches.
	t.Cleanup(mc.Close)
	child, err := NewChild(&rest.Config{Host: srv.URL, QPS: -1}) // no client-side throttling
	if err != nil {
		t.Fatal(err)
	}
	return &fakeChild{Child: mc, url: srv.URL}, child
}
