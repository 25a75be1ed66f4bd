package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/clusternet/clusternet/test/testbed"
)

// TestKrewInstall installs the plugin the way users do, offline: krew
// v0.4.4 (built from the module proxy) installs the linux archive that
// `make release` builds, from a manifest rendered from .krew.yaml, and the
// real kubectl then finds `kubectl clusternet` in krew's bin folder.
func TestKrewInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release archive and krew")
	}
	root := testbed.RepoRoot()
	bins, err := testbed.LocateBinaries()
	if err != nil {
		t.Fatal(err)
	}
	run := func(dir string, env []string, name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}

	krewDir := strings.TrimSpace(run(root, nil, "bash", "hack/krew-build.sh"))
	const version = "v0.0.0-krew-e2e"
	release := t.TempDir()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	run(root, nil, "make", "release", "VERSION="+version, "RELEASE_PLATFORMS="+platform, "RELEASE_DIR="+release)
	manifest := filepath.Join(t.TempDir(), "clusternet.yaml")
	rendered := run(root, nil, "go", "run", "./hack/krew", "render", "--version", version,
		"--checksums", filepath.Join(release, "checksums.txt"), "--platforms", platform)
	if err := os.WriteFile(manifest, []byte(rendered), 0o644); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(release, "kubectl-clusternet_"+version+"_"+runtime.GOOS+"_"+runtime.GOARCH+".tar.gz")

	krewRoot := t.TempDir()
	env := []string{"KREW_ROOT=" + krewRoot, "KREW_NO_UPGRADE_CHECK=1"}
	out := run(root, env, filepath.Join(krewDir, "krew"), "install", "--manifest="+manifest, "--archive="+archive)
	t.Logf("krew install:\n%s", out)
	if _, err := os.Stat(filepath.Join(krewRoot, "bin", "kubectl-clusternet")); err != nil {
		t.Fatalf("krew did not link the plugin: %v", err)
	}
	// krew's record of the install (`krew list` needs the index, which is online).
	receipt, err := os.ReadFile(filepath.Join(krewRoot, "receipts", "clusternet.yaml"))
	if err != nil || !strings.Contains(string(receipt), "version: "+version) {
		t.Errorf("krew receipt: %v\n%s", err, receipt)
	}

	// Only krew's bin folder holds the plugin: the real kubectl finds it there.
	path := "PATH=" + filepath.Join(krewRoot, "bin") + string(os.PathListSeparator) + os.Getenv("PATH")
	out = run(root, []string{path}, bins.Kubectl, "clusternet", "version", "--client")
	if want := "Client Version: " + version + "\n"; out != want {
		t.Errorf("kubectl clusternet version --client = %q, want %q", out, want)
	}
	if list := run(root, []string{path}, bins.Kubectl, "plugin", "list"); !strings.Contains(list, filepath.Join(krewRoot, "bin", "kubectl-clusternet")) {
		t.Errorf("kubectl plugin list = %q", list)
	}

	// From this project's own krew index, as docs/install.md says: the
	// name "clusternet" in krew's default index is upstream's older
	// plugin. A krew index is a git repository with plugins/<name>.yaml;
	// here it is a local one (file://), and the archive is served on
	// loopback, so nothing leaves the machine.
	archives := httptest.NewServer(http.FileServer(http.Dir(release)))
	t.Cleanup(archives.Close)
	indexed := run(root, nil, "go", "run", "./hack/krew", "render", "--version", version,
		"--checksums", filepath.Join(release, "checksums.txt"), "--platforms", platform, "--base-url", archives.URL)
	if !strings.Contains(indexed, "uri: "+archives.URL+"/kubectl-clusternet_"+version+"_") {
		t.Fatalf("the rendered manifest does not point at the loopback server %s:\n%s", archives.URL, indexed)
	}
	index := t.TempDir()
	if err := os.MkdirAll(filepath.Join(index, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(index, "plugins", "clusternet.yaml"), []byte(indexed), 0o644); err != nil {
		t.Fatal(err)
	}
	gitEnv := []string{"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com", "GIT_COMMITTER_NAME=test",
		"GIT_COMMITTER_EMAIL=test@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}
	run(index, gitEnv, "git", "init", "--quiet", "--initial-branch=master")
	run(index, gitEnv, "git", "add", "plugins/clusternet.yaml")
	run(index, gitEnv, "git", "commit", "--quiet", "-m", "clusternet "+version)

	fleetRoot := t.TempDir()
	// KREW_DEFAULT_INDEX_URI: krew would clone its default index from
	// GitHub if a command needed it; none here does.
	fleetEnv := append([]string{"KREW_ROOT=" + fleetRoot, "KREW_NO_UPGRADE_CHECK=1", "KREW_DEFAULT_INDEX_URI=file:///nonexistent"}, gitEnv...)
	krew := filepath.Join(krewDir, "krew")
	run(root, fleetEnv, krew, "index", "add", "clusternet-fleet", "file://"+index)
	if out := run(root, fleetEnv, krew, "index", "list"); !strings.Contains(out, "clusternet-fleet") || !strings.Contains(out, "file://"+index) {
		t.Errorf("krew index list:\n%s", out)
	}
	out = run(root, fleetEnv, krew, "install", "clusternet-fleet/clusternet")
	t.Logf("krew install clusternet-fleet/clusternet:\n%s", out)
	receipt, err = os.ReadFile(filepath.Join(fleetRoot, "receipts", "clusternet.yaml"))
	if err != nil || !strings.Contains(string(receipt), "version: "+version) || !strings.Contains(string(receipt), "name: clusternet-fleet") {
		t.Errorf("krew receipt (want version %s from index clusternet-fleet): %v\n%s", version, err, receipt)
	}
	fleetPath := "PATH=" + filepath.Join(fleetRoot, "bin") + string(os.PathListSeparator) + os.Getenv("PATH")
	if out := run(root, []string{fleetPath}, bins.Kubectl, "clusternet", "version", "--client"); out != "Client Version: "+version+"\n" {
		t.Errorf("kubectl clusternet version --client = %q", out)
	}
}
