package e2eutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/clusternet/clusternet/test/testbed"
)

// servers are the commands Main builds with -race when asked (RaceEnv),
// and plugin the one it always builds without, by their folder under the
// repository root. The plugin is a short-lived client run hundreds of
// times a package (TestCLIExamples alone runs it 276 times), and the race
// runtime cost each run about 0.3 s of CPU on a CPU-bound machine: about a
// minute of `make test-e2e`. Its concurrent paths (fanout, logs -f, rollout
// watches) run under -race in pkg/cli's unit tests.
var (
	servers = []string{"cmd/hub", "cmd/agent"}
	plugin  = "cmd/kubectl-clusternet"
)

// buildBinaries puts hub, agent and kubectl-clusternet, built from this
// checkout, in dir.
//
// `go test ./test/e2e/...` runs a dozen packages, and each linking the
// three binaries itself cost about a minute of CPU (race binaries are over
// 100 MB) on a machine whose end-to-end run is bound by its CPU. So every
// package of a checkout builds into one shared folder, one package at a
// time, and links the result into its own dir: go build relinks nothing
// when what is there is up to date, and builds anew when the sources
// changed. The package's dir stays its own (race reports, what a test adds
// to it), and a later build replaces the shared files rather than writing
// into them, so a running package keeps the binaries it started with.
func buildBinaries(dir string, race bool) error {
	shared, err := sharedBuildDir(race)
	if err != nil {
		return err
	}
	unlock, err := lockFolder(shared)
	if err != nil {
		return err
	}
	defer unlock()
	if err := goBuild(shared, race, servers...); err != nil {
		return err
	}
	if err := goBuild(shared, false, plugin); err != nil {
		return err
	}
	for _, b := range append(slices.Clone(servers), plugin) {
		name := filepath.Base(b)
		// Both folders are in os.TempDir(), so on one file system.
		if err := os.Link(filepath.Join(shared, name), filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// goBuild builds the commands in folders (under the repository root) into out.
func goBuild(out string, race bool, folders ...string) error {
	args := []string{"build", "-o", out + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	for _, f := range folders {
		args = append(args, "./"+f)
	}
	build := exec.Command("go", args...)
	build.Dir = testbed.RepoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	return build.Run()
}

// sharedBuildDir is the folder the packages of this checkout share for
// one kind of build: another checkout (a worktree) has its own, so two
// checkouts tested at once do not relink each other's binaries.
func sharedBuildDir(race bool) (string, error) {
	sum := sha256.Sum256([]byte(testbed.RepoRoot()))
	name := "clusternet-e2e-build-" + hex.EncodeToString(sum[:6])
	if race {
		name += "-race"
	}
	dir := filepath.Join(os.TempDir(), name)
	return dir, os.MkdirAll(dir, 0o755)
}

// lockFolder holds an flock on a file beside dir until unlock: the
// packages run as separate processes, and the kernel drops the lock of
// one that dies.
func lockFolder(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { _ = f.Close() }, nil
}
