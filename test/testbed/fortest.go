package testbed

import (
	"context"
	"os"
	"testing"
	"time"
)

// ForTest starts a testbed for one test (or a TestMain's tests) and stops it
// when the test ends. Its files stay in the test's temp folder, and are copied
// nowhere: a failing test prints where the component logs are.
//
// With two or more children the fleet mixes Kubernetes versions
// (Options.MixedVersions): every end-to-end test then also proves the hub,
// the agent and the deployers against a child older than the parent.
func ForTest(t testing.TB, children int) *Testbed {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: needs real control planes (run without -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "clusternet-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	tb, err := Up(ctx, Options{Dir: dir, Children: children, MixedVersions: true})
	if err != nil {
		t.Fatalf("starting testbed: %v", err)
	}
	t.Cleanup(func() {
		tb.Down()
		if t.Failed() {
			t.Logf("testbed logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return tb
}
