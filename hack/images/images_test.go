package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestImagesOfThisTree builds the real images twice, through run as
// `make images` does, and checks them from their OCI layouts. It compiles
// the hub and the agent for amd64 and arm64, so it is left out of -short
// runs: `make test-images` (part of `make test`) runs it.
func TestImagesOfThisTree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hub and agent for two platforms; run by make test-images")
	}
	const (
		version  = "v9.8.7-imagetest"
		revision = "fedcba9876543210fedcba9876543210fedcba98"
		created  = "2026-01-02T03:04:05Z"
	)
	ldflags := "-s -w" +
		" -X github.com/clusternet/clusternet/pkg/version.gitVersion=" + version +
		" -X github.com/clusternet/clusternet/pkg/version.gitCommit=" + revision +
		" -X github.com/clusternet/clusternet/pkg/version.buildDate=" + created
	build := func() (string, string) {
		t.Helper()
		out := t.TempDir()
		var stdout bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		err := run(ctx, []string{"--root", filepath.Join("..", ".."), "--out", out,
			"--version", version, "--revision", revision, "--created", created,
			"--ldflags", ldflags, "--platforms", "linux/amd64,linux/arm64"}, &stdout)
		if err != nil {
			t.Fatal(err)
		}
		return out, stdout.String()
	}
	first, printed := build()

	for _, comp := range components {
		t.Run(comp.name, func(t *testing.T) {
			dir := filepath.Join(first, comp.name)
			idx := readLayout(t, dir)
			digest, err := idx.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if want := dir + " " + digest.String() + "\n"; !strings.Contains(printed, want) {
				t.Errorf("run printed %q, want a line %q", printed, want)
			}
			images := platformImages(t, idx)
			if len(images) != 2 || images["linux/amd64"] == nil || images["linux/arm64"] == nil {
				t.Fatalf("index has platforms %v, want exactly linux/amd64 and linux/arm64", keys(images))
			}
			machines := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}
			for platform, img := range images {
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				c := cf.Config
				if c.User != "65532:65532" || len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/"+comp.name ||
					len(c.Cmd) != 0 || len(c.Env) != 0 {
					t.Errorf("%s config user %q entrypoint %q cmd %q env %q, want 65532:65532 running /%s alone",
						platform, c.User, c.Entrypoint, c.Cmd, c.Env, comp.name)
				}
				for k, want := range map[string]string{
					"org.opencontainers.image.title":    comp.name,
					"org.opencontainers.image.version":  version,
					"org.opencontainers.image.revision": revision,
					"org.opencontainers.image.created":  created,
					"org.opencontainers.image.source":   "https://github.com/clusternet/clusternet",
					"org.opencontainers.image.licenses": "Apache-2.0",
				} {
					if got := c.Labels[k]; got != want {
						t.Errorf("%s label %s = %q, want %q", platform, k, got, want)
					}
				}

				hdr, data := layerFile(t, img)
				if hdr.Name != comp.name || hdr.Mode != 0o755 {
					t.Errorf("%s layer entry %q mode %o, want %s 0755", platform, hdr.Name, hdr.Mode, comp.name)
				}
				bin := filepath.Join(t.TempDir(), comp.name)
				if err := os.WriteFile(bin, data, 0o755); err != nil {
					t.Fatal(err)
				}
				checkBinary(t, platform, bin, machines[platform], version)
			}
		})
	}

	// Built again, the same tree gives the same indexes, byte for byte.
	second, _ := build()
	for _, comp := range components {
		want, err := readLayout(t, filepath.Join(first, comp.name)).Digest()
		if err != nil {
			t.Fatal(err)
		}
		got, err := readLayout(t, filepath.Join(second, comp.name)).Digest()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: the first build gave index %s, the second %s (not reproducible, unless a source file changed in between)",
				comp.name, want, got)
		} else {
			t.Logf("%s: index %s, both builds", comp.name, got)
		}
	}
}

// checkBinary checks that bin, extracted from the platform's image, is a
// static Go binary for machine with the version stamped, and runs it with
// --version when this machine can.
func checkBinary(t *testing.T, platform, bin string, machine elf.Machine, version string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", platform, err)
	}
	defer f.Close()
	if f.Machine != machine {
		t.Errorf("%s: ELF machine %v, want %v", platform, f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: the binary asks for a dynamic loader; the image has none", platform)
		}
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("%s: %v", platform, err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("%s: built with %v; want CGO_ENABLED=0 and -trimpath", platform, info.Settings)
	}
	// -trimpath leaves -ldflags out of the build info: look for the stamped
	// string itself (for platforms this machine cannot run).
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(version)) {
		t.Errorf("%s: the binary does not hold the stamped version %s", platform, version)
	}

	if platform != "linux/"+runtime.GOARCH || runtime.GOOS != "linux" {
		return
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", platform, err, lastLines(out, 3))
	}
	if !strings.Contains(string(out), version) {
		t.Errorf("%s --version printed %q, want the stamped %s", platform, out, version)
	}
}

// lastLines is the end of a command's output: where cobra prints the error,
// after the usage.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
