// Command krew renders the krew plugin manifest from the krew-release-bot
// template (.krew.yaml) and checks that the checked-in manifest agrees with it.
//
//	go run ./hack/krew render --version v0.1.0 --checksums _output/release/checksums.txt > plugins/clusternet.yaml
//	go run ./hack/krew verify
//	go run ./hack/krew krew-index > clusternet.yaml
//
// render does locally what krew-release-bot does on a release: it fills in
// the tag and, through addURIAndSha, each archive's URL and sha256 (read from
// the checksums `make release` writes instead of downloading). --base-url
// points the URLs elsewhere, e.g. at a local folder for an offline install.
// verify renders the template with the version and sha256s found in
// plugins/clusternet.yaml and fails unless the result is the same plugin, and
// checks what krew needs: the eight platforms, each with a uri of that
// version, a sha256 and bin kubectl-clusternet. krew-index prints the
// manifest without the platforms krew itself does not support (linux/s390x:
// krew v0.4.4's validator and krew-index refuse it), for krew's validator.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"reflect"
	"regexp"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

// Platforms are the os/arch pairs every release ships.
var Platforms = []string{
	"darwin/amd64", "darwin/arm64",
	"linux/amd64", "linux/arm64", "linux/ppc64le", "linux/s390x", "linux/386", "linux/arm",
}

const defaultBaseURL = "https://github.com/clusternet/clusternet/releases/download/"

// unsupportedByKrew are platforms the release ships that krew v0.4.4 does
// not run on: its manifest validator (and krew-index's) refuses them.
var unsupportedByKrew = []string{"linux/s390x"}

// generatedHeader replaces the template's comments in the rendered manifest.
const generatedHeader = "# Generated from .krew.yaml by `make krew-manifest VERSION=<version>` (hack/krew); do not edit.\n"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "krew:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: krew render|verify [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	tmpl := fs.String("template", ".krew.yaml", "krew-release-bot template")
	manifest := fs.String("manifest", "plugins/clusternet.yaml", "krew plugin manifest (verify)")
	version := fs.String("version", "", "release version, e.g. v0.1.0 (render)")
	checksums := fs.String("checksums", "_output/release/checksums.txt", "sha256sum output for the archives (render)")
	baseURL := fs.String("base-url", "", "replace "+defaultBaseURL+" in the URLs with this (render)")
	only := fs.String("platforms", "", "render only these os/arch platforms, comma-separated, e.g. for a test archive (render)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	text, err := os.ReadFile(*tmpl)
	if err != nil {
		return err
	}
	switch args[0] {
	case "render":
		if *version == "" {
			return errors.New("render: --version is required")
		}
		sums, err := readChecksums(*checksums)
		if err != nil {
			return err
		}
		platforms := Platforms
		if *only != "" {
			platforms = strings.Split(*only, ",")
		}
		var skipped []string
		for _, p := range Platforms {
			if !contains(platforms, p) {
				skipped = append(skipped, p)
			}
		}
		out, err := Render(string(text), *version, func(uri string) (string, error) {
			sum, ok := sums[path.Base(uri)]
			if !ok && len(skipped) > 0 {
				return strings.Repeat("0", 64), nil // dropped below
			}
			if !ok {
				return "", fmt.Errorf("no sha256 for %q in %s: run `make release VERSION=%s` first", path.Base(uri), *checksums, *version)
			}
			return sum, nil
		})
		if err != nil {
			return err
		}
		if len(skipped) > 0 {
			b, err := WithoutPlatforms([]byte(out), skipped)
			if err != nil {
				return err
			}
			out = string(b)
		}
		out = generatedHeader + stripLeadingComments(out)
		if *baseURL != "" {
			out = strings.ReplaceAll(out, defaultBaseURL+*version+"/", strings.TrimSuffix(*baseURL, "/")+"/")
		}
		if _, err := validate([]byte(out), platforms); err != nil {
			return fmt.Errorf("rendered manifest: %w", err)
		}
		_, err = os.Stdout.WriteString(out)
		return err
	case "verify":
		data, err := os.ReadFile(*manifest)
		if err != nil {
			return err
		}
		return Verify(string(text), data)
	case "krew-index":
		data, err := os.ReadFile(*manifest)
		if err != nil {
			return err
		}
		out, err := WithoutPlatforms(data, unsupportedByKrew)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(out)
		return err
	default:
		return fmt.Errorf("unknown command %q: use render, verify or krew-index", args[0])
	}
}

func stripLeadingComments(text string) string {
	for strings.HasPrefix(text, "#") {
		_, text, _ = strings.Cut(text, "\n")
	}
	return text
}

// WithoutPlatforms returns the manifest without the given os/arch platforms.
func WithoutPlatforms(manifest []byte, drop []string) ([]byte, error) {
	var m map[string]any
	if err := yaml.Unmarshal(manifest, &m); err != nil {
		return nil, err
	}
	spec, _ := m["spec"].(map[string]any)
	platforms, _ := spec["platforms"].([]any)
	var kept []any
	for _, p := range platforms {
		labels, _ := p.(map[string]any)["selector"].(map[string]any)["matchLabels"].(map[string]any)
		if !contains(drop, fmt.Sprint(labels["os"], "/", labels["arch"])) {
			kept = append(kept, p)
		}
	}
	if spec == nil || len(kept) == 0 {
		return nil, errors.New("the manifest has no platforms left")
	}
	spec["platforms"] = kept
	return yaml.Marshal(m)
}

// readChecksums reads `sha256sum` output: "<sha256>  <file>" lines.
func readChecksums(file string) (map[string]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: run `make release` first", err)
	}
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 {
			sums[path.Base(strings.TrimPrefix(f[1], "*"))] = f[0]
		}
	}
	return sums, sc.Err()
}

// Render fills in the template as krew-release-bot does: .TagName is the
// version and addURIAndSha "<url template>" .TagName becomes
// "uri: <url>\n    sha256: <sha256>".
func Render(text, version string, sha256Of func(uri string) (string, error)) (string, error) {
	funcs := template.FuncMap{
		"addURIAndSha": func(urlTemplate, tag string) (string, error) {
			var url bytes.Buffer
			t, err := template.New("url").Parse(urlTemplate)
			if err != nil {
				return "", err
			}
			if err := t.Execute(&url, struct{ TagName string }{tag}); err != nil {
				return "", err
			}
			sum, err := sha256Of(url.String())
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("uri: %s\n    sha256: %s", url.String(), sum), nil
		},
	}
	t, err := template.New(".krew.yaml").Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := t.Execute(&out, struct{ TagName string }{version}); err != nil {
		return "", err
	}
	return out.String(), nil
}

// Plugin is the part of krew's Plugin manifest this checks.
type Plugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string     `json:"version"`
		Homepage         string     `json:"homepage"`
		ShortDescription string     `json:"shortDescription"`
		Description      string     `json:"description"`
		Caveats          string     `json:"caveats"`
		Platforms        []Platform `json:"platforms"`
	} `json:"spec"`
}

// Platform is one archive of the manifest.
type Platform struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	URI    string `json:"uri"`
	Sha256 string `json:"sha256"`
	Bin    string `json:"bin"`
}

var (
	versionRE = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	sha256RE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Validate parses a manifest and checks what krew and this project need.
func Validate(data []byte) (*Plugin, error) { return validate(data, Platforms) }

// validate checks a manifest that should have exactly the given platforms.
func validate(data []byte, platforms []string) (*Plugin, error) {
	var p Plugin
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("not a krew Plugin manifest: %w", err)
	}
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(p.APIVersion == "krew.googlecontainertools.github.com/v1alpha2", "apiVersion %q: want krew.googlecontainertools.github.com/v1alpha2", p.APIVersion)
	check(p.Kind == "Plugin", "kind %q: want Plugin", p.Kind)
	check(p.Metadata.Name == "clusternet", "metadata.name %q: want clusternet (users type `kubectl clusternet`)", p.Metadata.Name)
	check(versionRE.MatchString(p.Spec.Version), "spec.version %q: want a semantic version with a leading v, such as v0.1.0", p.Spec.Version)
	check(p.Spec.ShortDescription != "" && p.Spec.Homepage != "" && p.Spec.Description != "", "spec.shortDescription, spec.homepage and spec.description must be set")
	seen := map[string]bool{}
	for i, pl := range p.Spec.Platforms {
		osArch := pl.Selector.MatchLabels["os"] + "/" + pl.Selector.MatchLabels["arch"]
		check(!seen[osArch], "spec.platforms[%d]: %s listed twice", i, osArch)
		seen[osArch] = true
		check(strings.HasSuffix(pl.URI, "/kubectl-clusternet_"+p.Spec.Version+"_"+strings.ReplaceAll(osArch, "/", "_")+".tar.gz"),
			"spec.platforms[%d] (%s): uri %q is not the %s archive of version %s", i, osArch, pl.URI, osArch, p.Spec.Version)
		check(sha256RE.MatchString(pl.Sha256), "spec.platforms[%d] (%s): sha256 %q is not 64 lowercase hex digits", i, osArch, pl.Sha256)
		check(pl.Bin == "kubectl-clusternet", "spec.platforms[%d] (%s): bin %q: want kubectl-clusternet", i, osArch, pl.Bin)
	}
	for _, want := range platforms {
		check(seen[want], "spec.platforms: %s is missing: every release ships %s", want, strings.Join(platforms, ", "))
	}
	for got := range seen {
		check(contains(platforms, got), "spec.platforms: %s is not a platform the release builds", got)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &p, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Verify checks that manifest is valid and is what the template renders for
// its own version and checksums.
func Verify(text string, manifest []byte) error {
	p, err := Validate(manifest)
	if err != nil {
		return fmt.Errorf("plugins/clusternet.yaml: %w", err)
	}
	sums := map[string]string{}
	for _, pl := range p.Spec.Platforms {
		sums[pl.URI] = pl.Sha256
	}
	rendered, err := Render(text, p.Spec.Version, func(uri string) (string, error) {
		sum, ok := sums[uri]
		if !ok {
			return "", fmt.Errorf(".krew.yaml asks for %q, which plugins/clusternet.yaml does not list: render it again with `make krew-manifest`", uri)
		}
		return sum, nil
	})
	if err != nil {
		return err
	}
	fromTemplate, err := Validate([]byte(rendered))
	if err != nil {
		return fmt.Errorf(".krew.yaml rendered for %s: %w", p.Spec.Version, err)
	}
	if !reflect.DeepEqual(p, fromTemplate) {
		return fmt.Errorf("plugins/clusternet.yaml differs from .krew.yaml rendered for %s: render it again with `make krew-manifest VERSION=%s`", p.Spec.Version, p.Spec.Version)
	}
	return nil
}
