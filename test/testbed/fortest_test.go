package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A failed run keeps its logs but not its etcd data, and only the newest
// keepFailed kept folders stay; a folder without the mark (a testbed
// another package is running) is never touched.
func TestKeepLogsPrunesOnlyKeptFolders(t *testing.T) {
	tmp := t.TempDir()
	mkdir := func(name string, marked bool, age time.Duration) string {
		t.Helper()
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "parent", "etcd"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "parent", "apiserver.log"), []byte("log"), 0o600); err != nil {
			t.Fatal(err)
		}
		if marked {
			mark := filepath.Join(dir, keptMark)
			if err := os.WriteFile(mark, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			when := time.Now().Add(-age)
			if err := os.Chtimes(mark, when, when); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	var old []string
	for i := range keepFailed + 2 {
		old = append(old, mkdir(fmt.Sprintf("clusternet-e2e-old%d", i), true, time.Duration(i+1)*time.Hour))
	}
	running := mkdir("clusternet-e2e-running", false, 0)
	failed := mkdir("clusternet-e2e-failed", false, 0)

	keepLogs(failed)

	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if exists(filepath.Join(failed, "parent", "etcd")) || !exists(filepath.Join(failed, "parent", "apiserver.log")) {
		t.Errorf("the failed run's folder: want its logs kept and its etcd data gone")
	}
	if !exists(running) {
		t.Errorf("a running testbed's folder (no mark) was removed")
	}
	// The failed run and the keepFailed-1 newest old ones stay.
	for i, dir := range old {
		if want := i < keepFailed-1; exists(dir) != want {
			t.Errorf("%s: exists %t, want %t", filepath.Base(dir), exists(dir), want)
		}
	}
}
