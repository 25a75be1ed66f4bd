package testbed

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Default versions of the control plane; the environment variables of
// hack/testbed-build.sh override them.
const (
	DefaultKubeVersion = "v1.35.4"
	// DefaultChildSkewVersion is the older Kubernetes a mixed fleet's skew
	// child runs (Options.MixedVersions): the oldest minor release the
	// children are tested on.
	DefaultChildSkewVersion = "v1.33.13"
	DefaultEtcdVersion      = "v3.5.21"
	DefaultKwokVersion      = "v0.8.0"
)

// Binaries are the paths of the real programs a testbed runs.
type Binaries struct {
	Etcd string
	// ControlPlane is KubeVersion's: the parent's and, but for the skew
	// child, every child's.
	ControlPlane
	// Skew is ChildSkewVersion's control plane, which one child of a mixed
	// fleet runs. Its clients (kubectl, kwok) stay those of KubeVersion.
	Skew    ControlPlane
	Kubectl string
	Kwok    string
	// KwokStages is kwok's own stage folder (what turns fake nodes Ready and pods Running).
	KwokStages string
}

// ControlPlane is one Kubernetes version's kube-apiserver,
// kube-controller-manager and kube-scheduler.
type ControlPlane struct {
	Version           string
	KubeAPIServer     string
	ControllerManager string
	Scheduler         string
}

// KubeVersion is the Kubernetes version the testbed runs.
func KubeVersion() string { return envOr("KUBE_VERSION", DefaultKubeVersion) }

// ChildSkewVersion is the Kubernetes version the skew child of a mixed
// fleet runs; set to KubeVersion, the fleet runs one version.
func ChildSkewVersion() string { return envOr("CHILD_SKEW_VERSION", DefaultChildSkewVersion) }

// controlPlane returns the binaries of version ("" is KubeVersion's).
func (b *Binaries) controlPlane(version string) (ControlPlane, error) {
	switch version {
	case "", b.Version:
		return b.ControlPlane, nil
	case b.Skew.Version:
		return b.Skew, nil
	}
	return ControlPlane{}, fmt.Errorf("ClusterOptions.KubeVersion %q: the testbed has Kubernetes %s and %s only; set CHILD_SKEW_VERSION=%s (or KUBE_VERSION) and run hack/testbed-build.sh",
		version, b.Version, b.Skew.Version, version)
}

// LocateBinaries returns the cached binaries, building what is missing with
// hack/testbed-build.sh (minutes when cold, nothing when warm).
func LocateBinaries() (*Binaries, error) {
	cache := cacheDir()
	b := binariesIn(cache)
	if b.complete() {
		return b, nil
	}
	script := filepath.Join(RepoRoot(), "hack", "testbed-build.sh")
	cmd := exec.Command("bash", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &bytes.Buffer{}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("building the testbed with %s: %w\n%s", script, err, stderr.String())
	}
	if b = binariesIn(cache); !b.complete() {
		return nil, fmt.Errorf("%s ran but binaries are still missing under %s", script, cache)
	}
	return b, nil
}

func binariesIn(cache string) *Binaries {
	kwok := filepath.Join(cache, "kwok-"+envOr("KWOK_VERSION", DefaultKwokVersion))
	return &Binaries{
		Etcd:         filepath.Join(cache, "etcd-"+envOr("ETCD_VERSION", DefaultEtcdVersion), "etcd"),
		ControlPlane: controlPlaneIn(cache, KubeVersion()),
		Skew:         controlPlaneIn(cache, ChildSkewVersion()),
		Kubectl:      filepath.Join(cache, "kubernetes-"+KubeVersion(), "kubectl"),
		Kwok:         filepath.Join(kwok, "kwok"),
		KwokStages:   filepath.Join(kwok, "stage"),
	}
}

// controlPlaneIn is where hack/testbed-build.sh puts version's control plane.
func controlPlaneIn(cache, version string) ControlPlane {
	dir := filepath.Join(cache, "kubernetes-"+version)
	return ControlPlane{
		Version:           version,
		KubeAPIServer:     filepath.Join(dir, "kube-apiserver"),
		ControllerManager: filepath.Join(dir, "kube-controller-manager"),
		Scheduler:         filepath.Join(dir, "kube-scheduler"),
	}
}

func (b *Binaries) complete() bool {
	for _, p := range []string{b.Etcd, b.KubeAPIServer, b.ControllerManager, b.Scheduler,
		b.Skew.KubeAPIServer, b.Skew.ControllerManager, b.Skew.Scheduler, b.Kubectl, b.Kwok, b.KwokStages} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

func cacheDir() string {
	if d := os.Getenv("CLUSTERNET_TESTBED_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "clusternet-testbed")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "clusternet-testbed")
}

// RepoRoot finds the repository: from this source file in tests, and, in a
// binary built with -trimpath (whose source paths are module-relative), by
// walking up from the working directory to the module's go.mod.
func RepoRoot() string {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		return filepath.Dir(filepath.Dir(filepath.Dir(file)))
	}
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.HasPrefix(data, []byte("module github.com/clusternet/clusternet\n")) {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

func envOr(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}
	return def
}
