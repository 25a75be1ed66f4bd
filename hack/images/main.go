// Command images builds the container images of clusternet-hub and
// clusternet-agent without a Docker daemon (what `make images` and
// `make release` run):
//
//	go run ./hack/images --out _output/images --version v0.1.0 --revision <sha> \
//		--created 2026-01-02T03:04:05Z --ldflags '-s -w -X ...' --platforms linux/amd64,linux/arm64
//
// For each server it writes one OCI image layout, <out>/clusternet-hub and
// <out>/clusternet-agent, whose index.json names one image index holding an
// image per platform. Each image is a single layer on an empty base: the
// static binary at /clusternet-hub (or /clusternet-agent), which is also the
// entrypoint, run as 65532:65532. Nothing else is in the image: no shell, no
// /etc/passwd (the user is numeric) and no CA certificates, because both
// binaries take the CAs they trust from their kubeconfig, the in-cluster
// service account or flags, never from the system pool.
//
// The images are reproducible: the binaries are built with -trimpath and a
// pinned GOAMD64/GOARM64, and every time in the images (layer mtime, config
// and history creation, the created label) is --created, the commit's time,
// so the same commit built by the same Go version gives the same digests.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// user is the numeric user and group the servers run as: distroless'
// "nonroot", so a pod's runAsNonRoot check passes without an /etc/passwd.
const user = "65532:65532"

// component is one server binary and the image that ships it.
type component struct {
	name        string // image title, binary name and entrypoint (/<name>)
	pkg         string // main package, relative to the repository root
	description string
}

var components = []component{
	{name: "clusternet-hub", pkg: "./cmd/hub",
		description: "Clusternet hub: aggregated API server and controllers, in the parent cluster"},
	{name: "clusternet-agent", pkg: "./cmd/agent",
		description: "Clusternet agent: registration, status and tunnel, in each child cluster"},
}

// config is what one build needs; run fills it from the flags.
type config struct {
	root      string // repository root: where go build runs and LICENSE is
	out       string // one OCI layout per component is written under it
	platforms []v1.Platform
	ldflags   string
	version   string // org.opencontainers.image.version
	revision  string // org.opencontainers.image.revision
	source    string // org.opencontainers.image.source
	created   time.Time
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(1)
	}
}

// run parses args, builds every component's image and prints each layout
// with its index digest.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	c := config{}
	var platforms, created string
	fs.StringVar(&c.root, "root", ".", "repository root")
	fs.StringVar(&c.out, "out", "_output/images", "folder for the OCI layouts, one per image")
	fs.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated os/arch list")
	fs.StringVar(&c.ldflags, "ldflags", "", "-ldflags for go build (the Makefile's, with the version stamped)")
	fs.StringVar(&c.version, "version", "", "version for the image label, e.g. v0.1.0")
	fs.StringVar(&c.revision, "revision", "", "git commit for the image label")
	fs.StringVar(&c.source, "source", "https://github.com/clusternet/clusternet", "repository URL for the image label")
	fs.StringVar(&created, "created", "", "RFC 3339 creation time of every file and config, e.g. the commit's time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q: images takes flags only", fs.Args())
	}
	if c.version == "" || c.revision == "" {
		return errors.New("--version and --revision are required: the images are labelled with them")
	}
	t, err := time.Parse(time.RFC3339, created)
	if err != nil {
		return fmt.Errorf("--created %q is not an RFC 3339 time such as 2026-01-02T03:04:05Z "+
			"(use the commit's time, `git log -1 --format=%%cI`, so builds are reproducible): %w", created, err)
	}
	c.created = t.UTC()
	if c.platforms, err = parsePlatforms(platforms); err != nil {
		return err
	}
	digests, err := build(ctx, c)
	if err != nil {
		return err
	}
	for _, comp := range components {
		fmt.Fprintf(stdout, "%s %s\n", filepath.Join(c.out, comp.name), digests[comp.name])
	}
	return nil
}

func parsePlatforms(s string) ([]v1.Platform, error) {
	var ps []v1.Platform
	for _, p := range strings.Split(s, ",") {
		goos, arch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok || goos != "linux" || arch == "" || strings.Contains(arch, "/") {
			return nil, fmt.Errorf("--platforms entry %q is not linux/<arch>: the servers run in Linux pods; use e.g. linux/amd64,linux/arm64", p)
		}
		ps = append(ps, v1.Platform{OS: goos, Architecture: arch})
	}
	return ps, nil
}

// build compiles every component for every platform and writes one OCI
// layout per component. It returns each component's index digest.
func build(ctx context.Context, c config) (map[string]v1.Hash, error) {
	licenses, err := spdxLicense(c.root)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "clusternet-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	// binaries[component][i] is the component's binary for c.platforms[i].
	binaries := map[string][]string{}
	for _, p := range c.platforms {
		dir := filepath.Join(work, p.OS+"-"+p.Architecture)
		if err := goBuild(ctx, c, p, dir); err != nil {
			return nil, err
		}
		for _, comp := range components {
			binaries[comp.name] = append(binaries[comp.name], filepath.Join(dir, comp.name))
		}
	}

	digests := map[string]v1.Hash{}
	for _, comp := range components {
		idx, err := newIndex(comp, c, licenses, binaries[comp.name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", comp.name, err)
		}
		dir := filepath.Join(c.out, comp.name)
		if err := writeLayout(dir, idx); err != nil {
			return nil, fmt.Errorf("%s: writing OCI layout %s: %w", comp.name, dir, err)
		}
		if digests[comp.name], err = idx.Digest(); err != nil {
			return nil, err
		}
	}
	return digests, nil
}

// goBuild builds every component for p into dir, each binary named after
// its component.
func goBuild(ctx context.Context, c config, p v1.Platform, dir string) error {
	for _, comp := range components {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", c.ldflags,
			"-o", filepath.Join(dir, comp.name), comp.pkg)
		cmd.Dir = c.root
		cmd.Env = append(os.Environ(),
			"CGO_ENABLED=0", // static: the image has no libc
			"GOOS="+p.OS, "GOARCH="+p.Architecture,
			// The baseline micro-architectures, whatever the builder's
			// environment says: every node runs them, and the binaries (so the
			// digests) do not depend on who built them.
			"GOAMD64=v1", "GOARM64=v8.0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s for %s/%s: %w", comp.pkg, p.OS, p.Architecture, err)
		}
	}
	return nil
}

// newIndex is comp's image index: one image per platform, binaries[i]
// being the binary for c.platforms[i].
func newIndex(comp component, c config, licenses string, binaries []string) (v1.ImageIndex, error) {
	labels := ociLabels(comp, c, licenses)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, p := range c.platforms {
		img, err := newImage(comp, c, labels, p, binaries[i])
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", p.OS, p.Architecture, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Architecture}},
		})
	}
	// Registries show the index's annotations (GHCR links the repository from
	// org.opencontainers.image.source), so the labels go there too.
	annotated, ok := mutate.Annotations(idx, labels).(v1.ImageIndex)
	if !ok {
		return nil, errors.New("annotating the image index did not return an index")
	}
	return annotated, nil
}

// ociLabels are the org.opencontainers.image.* labels of comp's images.
func ociLabels(comp component, c config, licenses string) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       comp.name,
		"org.opencontainers.image.description": comp.description,
		"org.opencontainers.image.source":      c.source,
		"org.opencontainers.image.version":     c.version,
		"org.opencontainers.image.revision":    c.revision,
		"org.opencontainers.image.created":     c.created.Format(time.RFC3339),
	}
	if licenses != "" {
		l["org.opencontainers.image.licenses"] = licenses
	}
	return l
}

// newImage is comp's image for p: an empty base plus one layer holding the
// binary, OCI media types throughout.
func newImage(comp component, c config, labels map[string]string, p v1.Platform, binary string) (v1.Image, error) {
	layer, err := binaryLayer(comp.name, binary, c.created)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Created:      v1.Time{Time: c.created},
		OS:           p.OS,
		Architecture: p.Architecture,
		Config: v1.Config{
			User:       user,
			Entrypoint: []string{"/" + comp.name},
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: c.created},
			CreatedBy: "go build -trimpath " + comp.pkg,
			Comment:   "hack/images",
		},
	})
}

// binaryLayer is a layer holding only binary, as /name: mode 0755 owned by
// root (the non-root user may run it, not change it), modified at mtime. The
// tar is written beside binary, not kept in memory: the hub is >100 MB.
func binaryLayer(name, binary string, mtime time.Time) (v1.Layer, error) {
	in, err := os.Open(binary)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, err
	}
	tarPath := binary + ".tar"
	out, err := os.Create(tarPath)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0o755,
		Size:     st.Size(),
		ModTime:  mtime.Truncate(time.Second),
		Format:   tar.FormatUSTAR, // no PAX records with access or change times
	}); err != nil {
		return nil, err
	}
	if _, err := io.Copy(tw, in); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	// Compressed once, for the digest, and kept for writing the layout.
	return tarball.LayerFromFile(tarPath, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}

// spdxLicense is the SPDX id of the repository's LICENSE, "" without one.
func spdxLicense(root string) (string, error) {
	text, err := os.ReadFile(filepath.Join(root, "LICENSE"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if bytes.Contains(text, []byte("Apache License")) && bytes.Contains(text, []byte("Version 2.0")) {
		return "Apache-2.0", nil
	}
	return "", errors.New("LICENSE is not the Apache License 2.0: add its SPDX id to spdxLicense in hack/images")
}

// writeLayout replaces dir with an OCI layout whose index.json names idx,
// so the layout holds exactly this build (no blobs of an earlier one).
func writeLayout(dir string, idx v1.ImageIndex) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx)
}
