package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var (
	testCreated   = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	testPlatforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
)

// testConfig is a build of v1.2.3 at testCreated for amd64 and arm64.
func testConfig() config {
	return config{
		root:      filepath.Join("..", ".."),
		platforms: testPlatforms,
		version:   "v1.2.3",
		revision:  "0123456789abcdef0123456789abcdef01234567",
		source:    "https://github.com/clusternet/clusternet",
		created:   testCreated,
	}
}

// fakeBinaries writes one small file per platform standing for comp's
// binary, its content naming the platform, and returns their paths.
func fakeBinaries(t *testing.T, comp component, platforms []v1.Platform) []string {
	t.Helper()
	var paths []string
	for _, p := range platforms {
		path := filepath.Join(t.TempDir(), comp.name)
		if err := os.WriteFile(path, []byte("fake "+comp.name+" for "+p.Architecture), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	return paths
}

// platformImages is each image of idx by its platform, checking that the
// index is an OCI index whose manifests are OCI images.
func platformImages(t *testing.T, idx v1.ImageIndex) map[string]v1.Image {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %q, want %q", m.MediaType, types.OCIImageIndex)
	}
	images := map[string]v1.Image{}
	for _, d := range m.Manifests {
		if d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("manifest %s media type %q, want %q", d.Digest, d.MediaType, types.OCIManifestSchema1)
		}
		if d.Platform == nil {
			t.Fatalf("manifest %s has no platform", d.Digest)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		images[d.Platform.OS+"/"+d.Platform.Architecture] = img
	}
	return images
}

// layerFile is the only file of img's only layer: its header and content.
func layerFile(t *testing.T, img v1.Image) (*tar.Header, []byte) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("config media type %q, want %q", m.Config.MediaType, types.OCIConfigJSON)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Fatalf("layers %+v, want one %s", m.Layers, types.OCILayer)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	if next, err := tr.Next(); err != io.EOF {
		t.Fatalf("layer holds more than the binary: %v %v", next, err)
	}
	return hdr, data
}

func TestNewIndex(t *testing.T) {
	for _, comp := range components {
		t.Run(comp.name, func(t *testing.T) {
			c := testConfig()
			binaries := fakeBinaries(t, comp, c.platforms)
			idx, err := newIndex(comp, c, "Apache-2.0", binaries)
			if err != nil {
				t.Fatal(err)
			}
			wantLabels := map[string]string{
				"org.opencontainers.image.title":       comp.name,
				"org.opencontainers.image.description": comp.description,
				"org.opencontainers.image.source":      "https://github.com/clusternet/clusternet",
				"org.opencontainers.image.version":     "v1.2.3",
				"org.opencontainers.image.revision":    "0123456789abcdef0123456789abcdef01234567",
				"org.opencontainers.image.created":     "2026-01-02T03:04:05Z",
				"org.opencontainers.image.licenses":    "Apache-2.0",
			}
			m, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantLabels, m.Annotations); diff != "" {
				t.Errorf("index annotations (-want +got):\n%s", diff)
			}

			images := platformImages(t, idx)
			if len(images) != len(testPlatforms) {
				t.Errorf("index has platforms %v, want linux/amd64 and linux/arm64", keys(images))
			}
			for i, p := range testPlatforms {
				img := images[p.OS+"/"+p.Architecture]
				if img == nil {
					t.Errorf("no image for %s/%s", p.OS, p.Architecture)
					continue
				}
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				want := &v1.ConfigFile{
					Created:      v1.Time{Time: testCreated},
					OS:           p.OS,
					Architecture: p.Architecture,
					Config: v1.Config{
						User:       "65532:65532",
						Entrypoint: []string{"/" + comp.name},
						Labels:     wantLabels,
					},
					History: []v1.History{{
						Created:   v1.Time{Time: testCreated},
						CreatedBy: "go build -trimpath " + comp.pkg,
						Comment:   "hack/images",
					}},
				}
				// The diff id is the layer's, checked below through its content.
				if diff := cmp.Diff(want, cf, cmp.FilterPath(func(p cmp.Path) bool {
					return p.String() == "RootFS"
				}, cmp.Ignore())); diff != "" {
					t.Errorf("%s config (-want +got):\n%s", p.Architecture, diff)
				}
				if cf.RootFS.Type != "layers" || len(cf.RootFS.DiffIDs) != 1 {
					t.Errorf("%s rootfs %+v, want one layer", p.Architecture, cf.RootFS)
				}

				hdr, data := layerFile(t, img)
				wantHdr := tar.Header{Typeflag: tar.TypeReg, Name: comp.name, Mode: 0o755,
					Size: int64(len(data)), ModTime: testCreated, Format: tar.FormatUSTAR}
				gotHdr := tar.Header{Typeflag: hdr.Typeflag, Name: hdr.Name, Mode: hdr.Mode, Uid: hdr.Uid, Gid: hdr.Gid,
					Uname: hdr.Uname, Gname: hdr.Gname, Size: hdr.Size, ModTime: hdr.ModTime.UTC(), Format: hdr.Format}
				if diff := cmp.Diff(wantHdr, gotHdr); diff != "" {
					t.Errorf("%s layer entry (-want +got):\n%s", p.Architecture, diff)
				}
				wantData, err := os.ReadFile(binaries[i])
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(data, wantData) {
					t.Errorf("%s layer holds %q, want that platform's binary %q", p.Architecture, data, wantData)
				}
			}
		})
	}
}

func TestNewIndexIsReproducible(t *testing.T) {
	comp := components[0]
	c := testConfig()
	binaries := fakeBinaries(t, comp, c.platforms)
	digest := func(c config) v1.Hash {
		t.Helper()
		idx, err := newIndex(comp, c, "Apache-2.0", binaries)
		if err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := digest(c)
	// Between the two builds the binaries' own times change, as after a
	// rebuild: the images must not see it.
	for _, b := range binaries {
		if err := os.Chtimes(b, time.Now(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if second := digest(c); second != first {
		t.Errorf("the same inputs gave index %s, then %s", first, second)
	}
	later := c
	later.created = testCreated.Add(time.Second)
	if d := digest(later); d == first {
		t.Errorf("another --created gave the same index %s: the times do not reach the image", d)
	}
}

func TestWriteLayoutReplacesEarlierBuild(t *testing.T) {
	comp := components[1]
	dir := filepath.Join(t.TempDir(), comp.name)
	var last v1.Hash
	for _, version := range []string{"v1.0.0", "v2.0.0"} {
		c := testConfig()
		c.version = version
		idx, err := newIndex(comp, c, "", fakeBinaries(t, comp, c.platforms))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeLayout(dir, idx); err != nil {
			t.Fatal(err)
		}
		if last, err = idx.Digest(); err != nil {
			t.Fatal(err)
		}
	}
	got := readLayout(t, dir)
	if d, err := got.Digest(); err != nil || d != last {
		t.Errorf("layout holds index %s (%v), want the last build's %s", d, err, last)
	}
	// Two platform images of one layer each, their configs and manifests,
	// and the index: nothing of the first build.
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 7 {
		t.Errorf("layout holds %d blobs, want 7 (2 x layer, config, manifest; the index)", len(blobs))
	}
}

// readLayout is the one image index a layout written by writeLayout names.
func readLayout(t *testing.T, dir string) v1.ImageIndex {
	t.Helper()
	l, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := l.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("%s/index.json names %+v, want one image index", dir, m.Manifests)
	}
	idx, err := l.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestParsePlatforms(t *testing.T) {
	tests := []struct {
		name, in string
		want     []v1.Platform
		wantErr  string
	}{
		{name: "default", in: "linux/amd64,linux/arm64", want: testPlatforms},
		{name: "spaces", in: "linux/amd64, linux/arm64", want: testPlatforms},
		{name: "not linux", in: "linux/amd64,darwin/arm64", wantErr: `"darwin/arm64" is not linux/<arch>`},
		{name: "no arch", in: "linux", wantErr: `"linux" is not linux/<arch>`},
		{name: "variant", in: "linux/arm/v7", wantErr: `"linux/arm/v7" is not linux/<arch>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePlatforms(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunRefusesBadFlagsBeforeBuilding(t *testing.T) {
	ok := []string{"--out", t.TempDir(), "--version", "v1.2.3", "--revision", "abc", "--created", "2026-01-02T03:04:05Z"}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no version", args: []string{"--revision", "abc", "--created", "2026-01-02T03:04:05Z"},
			wantErr: "--version and --revision are required"},
		{name: "no created", args: []string{"--version", "v1", "--revision", "abc"},
			wantErr: `--created "" is not an RFC 3339 time`},
		{name: "created as a date", args: []string{"--version", "v1", "--revision", "abc", "--created", "2026-01-02"},
			wantErr: `--created "2026-01-02" is not an RFC 3339 time`},
		{name: "bad platform", args: append(ok, "--platforms", "windows/amd64"),
			wantErr: `--platforms entry "windows/amd64" is not linux/<arch>`},
		{name: "argument", args: append(ok, "extra"), wantErr: `unexpected arguments ["extra"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tc.args, &out)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q before failing", out.String())
			}
		})
	}
}

func TestSPDXLicense(t *testing.T) {
	if got, err := spdxLicense(filepath.Join("..", "..")); err != nil || got != "Apache-2.0" {
		t.Errorf("the repository's LICENSE: %q, %v; want Apache-2.0", got, err)
	}
	if got, err := spdxLicense(t.TempDir()); err != nil || got != "" {
		t.Errorf("no LICENSE: %q, %v; want no label", got, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "LICENSE"), []byte("MIT License\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := spdxLicense(dir); err == nil || !strings.Contains(err.Error(), "not the Apache License 2.0") {
		t.Errorf("an MIT LICENSE: error %v, want one asking for its SPDX id", err)
	}
}

func keys(m map[string]v1.Image) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
