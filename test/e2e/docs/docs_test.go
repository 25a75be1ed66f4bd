package docs

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

func TestMain(m *testing.M) {
	code := e2eutil.Main(m)
	stopLocalUp(code != 0)
	os.Exit(code)
}

var (
	pageFilter = flag.String("doctest.pages", "", "run only the pages whose path contains this text")
	useTestbed = flag.String("doctest.testbed", "", "run the pages on the testbed `make local-up` started in this folder (_output/testbed) instead of starting one")
)

// testedPages are the pages whose ```console blocks run, relative to the
// repository root, in the order they run.
func testedPages(t *testing.T) []string {
	t.Helper()
	root := testbed.RepoRoot()
	tutorials, err := filepath.Glob(filepath.Join(root, "docs", "tutorials", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages := []string{"README.md", "docs/troubleshooting.md"}
	for _, f := range tutorials {
		rel, _ := filepath.Rel(root, f)
		pages = append(pages, filepath.ToSlash(rel))
	}
	return pages
}

// TestDocs runs every tested page on one local-up testbed, page after
// page, each in a fresh shell, each leaving the parent as it found it.
func TestDocs(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: needs real control planes (run without -short)")
	}
	tbDir := testbedDir(t)
	work := workspace(t, tbDir)
	kubectl := kubectlPath(t)
	kubeconfig := filepath.Join(work, "_output", "testbed", "parent", "admin.kubeconfig")
	env := append(withoutVars(os.Environ(), "KUBECONFIG", "PATH"),
		"KUBECONFIG="+kubeconfig,
		"PATH="+strings.Join([]string{filepath.Join(work, "bin"), filepath.Dir(kubectl), os.Getenv("PATH")}, string(os.PathListSeparator)))
	parent := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, kubectl, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, page := range testedPages(t) {
		if !strings.Contains(page, *pageFilter) {
			continue
		}
		t.Run(page, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), page))
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(page, src)
			if err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, parent)
			r := &Runner{Dir: work, Env: env, Logf: t.Logf}
			start := time.Now()
			if err := r.RunPage(p); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s ran in %s", page, time.Since(start).Round(100*time.Millisecond))
			leftBehind(t, page, parent, before)
		})
	}
}

// shared is the local-up the tests of this package share, started by the
// first that needs it and stopped when they have all run: one local-up
// costs less than one per test, and each test leaves the parent as it
// found it.
var shared struct {
	once sync.Once
	dir  string // the testbed's folder
	root string // what to remove afterwards
	err  error
}

// testbedDir is the folder of the testbed the tests run on: the one
// -doctest.testbed names, or the shared local-up.
func testbedDir(t *testing.T) string {
	t.Helper()
	if *useTestbed != "" {
		return *useTestbed
	}
	shared.once.Do(func() { shared.root, shared.dir, shared.err = localUp(t) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.dir
}

// localUp runs local-up, as `make local-up` does, into a folder of its own.
func localUp(t *testing.T) (root, tbDir string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", e2eutil.BinDir+string(filepath.Separator), "./test/framework/cmd/local-up")
	build.Dir = testbed.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("building local-up: %w\n%s", err, out)
	}
	root, err = os.MkdirTemp("", "clusternet-docs-")
	if err != nil {
		return "", "", err
	}
	// The testbed outlives e2eutil.Main's binaries folder (stopLocalUp runs
	// after it), and testbed.Process stops only a process whose binary is
	// still there: the testbed runs copies of its own.
	bin := filepath.Join(root, "bin")
	if err := os.CopyFS(bin, os.DirFS(e2eutil.BinDir)); err != nil {
		return root, "", err
	}
	tbDir = filepath.Join(root, "testbed")
	start := time.Now()
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "local-up"), "--dir", tbDir, "--bin", bin).CombinedOutput()
	if err != nil {
		return root, tbDir, fmt.Errorf("local-up: %w\n%s", err, out)
	}
	t.Logf("local-up took %s", time.Since(start).Round(100*time.Millisecond))
	return root, tbDir, nil
}

// stopLocalUp stops the shared local-up, if one was started, and removes
// its folder unless a test failed (its logs tell why).
func stopLocalUp(failed bool) {
	if shared.root == "" {
		return
	}
	if tb, err := testbed.Load(shared.dir); err == nil {
		tb.Down()
	}
	if failed || shared.err != nil {
		fmt.Fprintf(os.Stderr, "testbed logs kept in %s\n", shared.dir)
		return
	}
	_ = os.RemoveAll(shared.root)
}

// workspace is a folder laid out like the repository root after
// `make local-up`, where the pages' commands run.
func workspace(t *testing.T, tbDir string) string {
	t.Helper()
	// Not t.TempDir(): kubectl splits -f at commas, and the test's name
	// would be in the path.
	work, err := os.MkdirTemp("", "clusternet-doctest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(work) })
	tbDir, err = filepath.Abs(tbDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(work, "_output"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"examples":                          filepath.Join(testbed.RepoRoot(), "examples"),
		"bin":                               e2eutil.BinDir,
		filepath.Join("_output", "testbed"): tbDir,
	} {
		if err := os.Symlink(target, filepath.Join(work, link)); err != nil {
			t.Fatal(err)
		}
	}
	return work
}

func kubectlPath(t *testing.T) string {
	t.Helper()
	bins, err := testbed.LocateBinaries()
	if err != nil {
		t.Fatal(err)
	}
	return bins.Kubectl
}

func withoutVars(env []string, names ...string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(names, name)
	})
}

// snapshot is what a page may create in the parent and must remove again:
// Subscriptions, overrides, HelmCharts, templates, and the labels of the
// clusters.
func snapshot(t *testing.T, parent func(args ...string) (string, error)) []string {
	t.Helper()
	var all []string
	for _, args := range [][]string{
		{"get", "subscriptions,localizations,globalizations,helmcharts", "-A", "-o", "name"},
		{"get", "manifests", "-n", "clusternet-reserved", "-o", `jsonpath={range .items[*]}template {.template.kind} {.template.metadata.namespace}/{.template.metadata.name}{"\n"}{end}`},
		{"get", "managedclusters", "-A", "-o", `jsonpath={range .items[*]}cluster {.metadata.name} labels {.metadata.labels}{"\n"}{end}`},
	} {
		out, err := parent(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		all = append(all, outputLines(out)...)
	}
	slices.Sort(all)
	return all
}

// leftBehind fails the page if the parent is not as it was before it.
// Deletions finish in the background (finalizers), so it waits a little.
func leftBehind(t *testing.T, page string, parent func(args ...string) (string, error), before []string) {
	t.Helper()
	var diff string
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, 30*time.Second, true, func(context.Context) (bool, error) {
		diff = changes(before, snapshot(t, parent))
		return diff == "", nil
	})
	if err != nil {
		t.Errorf("%s does not leave the parent as it found it: its clean-up step must undo these changes:\n%s", page, diff)
	}
}

// changes lists, one per line, what is in after and not in before (+) and
// the other way round (-); "" when they hold the same lines.
func changes(before, after []string) string {
	var b strings.Builder
	for _, l := range after {
		if !slices.Contains(before, l) {
			fmt.Fprintf(&b, "  + %s\n", l)
		}
	}
	for _, l := range before {
		if !slices.Contains(after, l) {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
	}
	return b.String()
}

// TestPagesParse reads the markup of every tested page without running it,
// so that a doctest comment or block written wrong fails the unit tests
// (-short) too, before anyone waits for a testbed.
func TestPagesParse(t *testing.T) {
	for _, page := range testedPages(t) {
		src, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), page))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(page, src)
		if err != nil {
			t.Error(err)
			continue
		}
		steps := 0
		for _, b := range p.Blocks {
			if b.Opts.Skip == "" {
				steps += len(b.Steps)
			}
		}
		if steps == 0 && page != "docs/tutorials/README.md" { // the index runs nothing
			t.Errorf("%s has no command to run: a tested page shows its steps in ```console blocks", page)
		}
	}
}
