package e2eutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	run.Env = append(os.Environ(), "GORACE="+raceOptions(dir))
	_ = run.Run() // exits 66 after a race
	if !raceReports(dir) {
		t.Fatal("the race of testdata/racy was not reported")
	}
}

// A known race inside a library (upstreamRaces) is printed and fails
// nothing; in the same folder as one of ours, ours still fails.
func TestUpstreamRacesDoNotFail(t *testing.T) {
	upstream, err := os.ReadFile(filepath.Join("testdata", "races", "apiserver-tlsconfig.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "race.1"), upstream, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := splitRaceReports(string(upstream)); len(got) != 2 {
		t.Fatalf("the log holds 2 reports, split into %d", len(got))
	}
	if raceReports(dir) {
		t.Fatal("k8s.io/apiserver's own race failed the package")
	}
	// The same report with a frame of ours in place of the library's write is ours.
	ours := strings.ReplaceAll(string(upstream), "k8s.io/apiserver/pkg/server.(*SecureServingInfo).Serve()", "github.com/clusternet/clusternet/pkg/server/hub.(*Options).Run()")
	if err := os.WriteFile(filepath.Join(dir, "race.2"), []byte(ours), 0o600); err != nil {
		t.Fatal(err)
	}
	if !raceReports(dir) {
		t.Fatal("a race with a frame of ours was taken for upstream's")
	}
}
