package testbed

import (
	"context"
	"os"
	"path/filepath"
	"slices"
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
			keepLogs(dir)
			t.Logf("testbed logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return tb
}

// keepFailed is how many failed runs' folders stay in the temp folder: a
// few are what one reads, and each held etcd's data (up to a GiB), which
// once filled the disk of a machine running the e2e packages repeatedly.
const keepFailed = 5

// keptMark marks a folder a failed run kept: only those are pruned, never
// the folder of a testbed another test package is running right now.
const keptMark = "kept-after-failure"

// keepLogs keeps the logs of a failed run in dir but drops its clusters'
// etcd data, which no one reads after the run, and removes all but the
// newest keepFailed of the folders failed runs kept.
func keepLogs(dir string) {
	etcds, _ := filepath.Glob(filepath.Join(dir, "*", "etcd"))
	for _, d := range etcds {
		_ = os.RemoveAll(d)
	}
	_ = os.WriteFile(filepath.Join(dir, keptMark), nil, 0o600)
	kept, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "clusternet-e2e-*", keptMark))
	type folder struct {
		path string
		mod  time.Time
	}
	var folders []folder
	for _, k := range kept {
		if fi, err := os.Stat(k); err == nil {
			folders = append(folders, folder{filepath.Dir(k), fi.ModTime()})
		}
	}
	slices.SortFunc(folders, func(a, b folder) int { return b.mod.Compare(a.mod) })
	for _, f := range folders[min(keepFailed, len(folders)):] {
		if f.path != dir {
			_ = os.RemoveAll(f.path)
		}
	}
}
