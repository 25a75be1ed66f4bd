package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSum stands for an archive's sha256: the sha256 of its name.
func fakeSum(uri string) (string, error) {
	return fmt.Sprintf("%x", sha256.Sum256([]byte(path.Base(uri)))), nil
}

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestCheckedInManifestAgreesWithTemplate is the CI check: plugins/clusternet.yaml
// is a valid krew manifest and is .krew.yaml rendered for its version.
func TestCheckedInManifestAgreesWithTemplate(t *testing.T) {
	if err := Verify(readRepoFile(t, ".krew.yaml"), []byte(readRepoFile(t, "plugins/clusternet.yaml"))); err != nil {
		t.Fatal(err)
	}
}

func TestRenderFillsEveryPlatform(t *testing.T) {
	out, err := Render(readRepoFile(t, ".krew.yaml"), "v1.2.3", fakeSum)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Validate([]byte(out))
	if err != nil {
		t.Fatalf("rendered manifest is invalid: %v\n%s", err, out)
	}
	if len(p.Spec.Platforms) != len(Platforms) || p.Spec.Version != "v1.2.3" {
		t.Errorf("rendered %d platforms, version %q", len(p.Spec.Platforms), p.Spec.Version)
	}
	want := "https://github.com/clusternet/clusternet/releases/download/v1.2.3/kubectl-clusternet_v1.2.3_linux_386.tar.gz"
	if !strings.Contains(out, "uri: "+want) {
		t.Errorf("no %s in:\n%s", want, out)
	}
	// The matchLabels of linux/386 must stay a string.
	if !strings.Contains(out, `arch: "386"`) {
		t.Errorf("arch 386 is not quoted:\n%s", out)
	}
}

func TestVerifyCatchesDrift(t *testing.T) {
	tmpl := readRepoFile(t, ".krew.yaml")
	good, err := Render(tmpl, "v1.2.3", fakeSum)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(tmpl, []byte(good)); err != nil {
		t.Fatalf("a freshly rendered manifest fails: %v", err)
	}
	tests := []struct {
		name, from, to, wantErr string
	}{
		{"description edited by hand", "shortDescription: Manage many", "shortDescription: Handle many", "differs from .krew.yaml"},
		{"a platform dropped", "      matchLabels:\n        os: linux\n        arch: s390x\n", "      matchLabels:\n        os: linux\n        arch: arm64\n", "linux/s390x is missing"},
		{"bin renamed", "bin: kubectl-clusternet\n", "bin: clusternet\n", `bin "clusternet": want kubectl-clusternet`},
		{"uri of another version", "download/v1.2.3/kubectl-clusternet_v1.2.3_darwin_amd64", "download/v1.2.2/kubectl-clusternet_v1.2.2_darwin_amd64", "is not the darwin/amd64 archive of version v1.2.3"},
		{"bad sha256", "    sha256: ", "    sha256: Z", "is not 64 lowercase hex digits"},
		{"wrong name", "name: clusternet", "name: cn", `metadata.name "cn"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(good, tc.from, tc.to, 1)
			if bad == good {
				t.Fatalf("%q not found in the manifest", tc.from)
			}
			err := Verify(tmpl, []byte(bad))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Verify error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestReadChecksums(t *testing.T) {
	file := filepath.Join(t.TempDir(), "checksums.txt")
	sum := strings.Repeat("ab", 32)
	if err := os.WriteFile(file, []byte(sum+"  kubectl-clusternet_v1_linux_amd64.tar.gz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readChecksums(file)
	if err != nil || got["kubectl-clusternet_v1_linux_amd64.tar.gz"] != sum {
		t.Errorf("readChecksums = %v, %v", got, err)
	}
}

func TestKrewIndexDropsS390x(t *testing.T) {
	out, err := WithoutPlatforms([]byte(readRepoFile(t, "plugins/clusternet.yaml")), unsupportedByKrew)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s390x") || !strings.Contains(string(out), "ppc64le") {
		t.Errorf("krew-index manifest:\n%s", out)
	}
}
