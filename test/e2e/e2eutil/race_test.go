package e2eutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A binary built with -race that races while a test runs it leaves a
// report where Main looks, and Main counts it as a failure; a clean run
// leaves none.
func TestRaceReportsAreFound(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatalf("-race needs cgo and a C compiler: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "racy")
	build := exec.Command("go", "build", "-race", "-o", bin, "./testdata/racy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -race: %v\n%s", err, out)
	}
	if raceReports(dir) {
		t.Fatal("reports found before anything ran")
	}
	run := exec.Command(bin)
	run.Env = append(os.Environ(), "GORACE=log_path="+filepath.Join(dir, "race"))
	_ = run.Run() // exits 66 after a race
	if !raceReports(dir) {
		t.Fatal("the race of testdata/racy was not reported")
	}
}
