// Package testbed starts real Kubernetes control planes on 127.0.0.1 for
// end-to-end tests and local runs: a parent and any number of children, each
// with etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
// fake nodes whose pods reach Running.
package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Options describe a testbed.
type Options struct {
	// Dir holds every cluster's files and the state file.
	Dir string
	// Children is how many child clusters to start next to the parent.
	Children int
	// NodesPerCluster is how many fake nodes each cluster gets (default 1).
	NodesPerCluster int
	// MixedVersions runs the last of two or more children on
	// ChildSkewVersion(), the parent and the other children on KubeVersion():
	// a fleet mixing Kubernetes versions, as real ones do. A single child
	// stays on the parent's version.
	MixedVersions bool
	// ParentAPIServerArgs are appended to the parent kube-apiserver's
	// flags (later flags win: --profiling for a benchmark's profiles).
	ParentAPIServerArgs []string
}

// Testbed is a running parent and its children.
type Testbed struct {
	Dir      string     `json:"dir"`
	Parent   *Cluster   `json:"parent"`
	Children []*Cluster `json:"children"`
	// Extra are programs run next to the clusters (hub, agents), stopped first by Down.
	Extra []*Process `json:"extra,omitempty"`
}

// ParentName is the parent cluster's name; children are child1, child2, ...
const ParentName = "parent"

// stateFile is where Up records what it started, so Down in another process
// stops exactly that.
const stateFile = "testbed.json"

// Up starts a parent and opts.Children children in parallel. On any failure
// it stops whatever it started.
func Up(ctx context.Context, opts Options) (*Testbed, error) {
	bins, err := LocateBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	names := []string{ParentName}
	for i := 1; i <= opts.Children; i++ {
		names = append(names, fmt.Sprintf("child%d", i))
	}
	clusters := make([]*Cluster, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		copts := ClusterOptions{Name: name, Dir: dir, Nodes: opts.NodesPerCluster}
		if opts.MixedVersions && opts.Children >= 2 && i == len(names)-1 {
			copts.KubeVersion = bins.Skew.Version
		}
		if i == 0 {
			copts.ExtraAPIServerArgs = opts.ParentAPIServerArgs
		}
		wg.Go(func() {
			clusters[i], errs[i] = StartCluster(ctx, bins, copts)
		})
	}
	wg.Wait()
	tb := &Testbed{Dir: dir, Parent: clusters[0], Children: clusters[1:]}
	if err := errors.Join(errs...); err != nil {
		tb.Down()
		return nil, err
	}
	if err := tb.save(); err != nil {
		tb.Down()
		return nil, err
	}
	return tb, nil
}

// Clusters returns the parent and then the children.
func (tb *Testbed) Clusters() []*Cluster {
	return append([]*Cluster{tb.Parent}, tb.Children...)
}

// Run starts a program next to the clusters, logging to Dir/name.log, and
// records it so Down (from any process) stops it too.
func (tb *Testbed) Run(name, binary string, args ...string) (*Process, error) {
	p, err := startProcess(tb.Dir, name, binary, args...)
	if err != nil {
		return nil, err
	}
	tb.Extra = append(tb.Extra, p)
	return p, tb.save()
}

// Down stops the extra programs, then every cluster that started, children
// first, and removes the state file.
func (tb *Testbed) Down() {
	for i := len(tb.Extra) - 1; i >= 0; i-- {
		_ = tb.Extra[i].Stop(stopGrace)
	}
	all := tb.Clusters()
	var wg sync.WaitGroup
	for i := len(all) - 1; i >= 0; i-- {
		if c := all[i]; c != nil {
			wg.Go(c.Stop)
		}
	}
	wg.Wait()
	_ = os.Remove(filepath.Join(tb.Dir, stateFile))
}

func (tb *Testbed) save() error {
	data, err := json.MarshalIndent(tb, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(tb.Dir, stateFile), data, 0o644)
}

// Load reads the testbed that Up recorded in dir, to stop it from another process.
func Load(dir string) (*Testbed, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("no testbed recorded in %s: %w", dir, err)
	}
	tb := &Testbed{}
	if err := json.Unmarshal(data, tb); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, stateFile), err)
	}
	bins := binariesIn(cacheDir())
	for _, c := range tb.Clusters() {
		if c != nil {
			c.bins = bins
		}
	}
	return tb, nil
}
