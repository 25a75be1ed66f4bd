// Package charts holds Clusternet's Helm charts, clusternet-hub and
// clusternet-agent, and renders them the way `helm template` does: deploy/
// is rendered from them (hack/render-deploy), and the testbed runs the hub
// and agents with the args and env they render (test/framework).
package charts

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
)

// The charts' names, which are also their folders here.
const (
	Hub   = "clusternet-hub"
	Agent = "clusternet-agent"
)

// KubeVersion is the Kubernetes version charts are rendered for when no
// cluster says (helm's own default, v1.20, is older than the charts allow):
// the testbed's.
const KubeVersion = "v1.35.4"

// Capabilities are helm's default capabilities with KubeVersion.
func Capabilities() *chartutil.Capabilities {
	caps := *chartutil.DefaultCapabilities
	kv, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		panic(err)
	}
	caps.KubeVersion = *kv
	return &caps
}

// Namespace is the namespace the charts are installed into by default
// (deploy/ is rendered for it).
const Namespace = "clusternet-system"

//go:embed all:clusternet-hub all:clusternet-agent
var files embed.FS

// Load returns the chart named name (Hub or Agent) as it is in this
// repository.
func Load(name string) (*chart.Chart, error) {
	if name != Hub && name != Agent {
		return nil, fmt.Errorf("chart %q: there are only %q and %q", name, Hub, Agent)
	}
	var buffered []*loader.BufferedFile
	err := fs.WalkDir(files, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		buffered = append(buffered, &loader.BufferedFile{Name: strings.TrimPrefix(p, name+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	ch, err := loader.LoadFiles(buffered)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}
	return ch, nil
}

// Options say how to render a chart.
type Options struct {
	// ReleaseName defaults to the chart's name; Namespace to Namespace.
	ReleaseName, Namespace string
	// Values override the chart's values.yaml, as helm's --values does.
	Values map[string]any
	// SkipSchemaValidation renders values values.schema.json refuses, such
	// as the ${PARENTURL} placeholder of deploy/templates.
	SkipSchemaValidation bool
}

// Rendered is a rendered chart: each template's output by its path in the
// chart (for example "clusternet-hub/templates/rbac.yaml"), templates that
// render nothing and NOTES.txt left out.
type Rendered map[string]string

// Render renders ch as `helm template` does, server capabilities aside:
// values are checked against the chart's schema, then every template runs.
func Render(ch *chart.Chart, opts Options) (Rendered, error) {
	if opts.ReleaseName == "" {
		opts.ReleaseName = ch.Name()
	}
	if opts.Namespace == "" {
		opts.Namespace = Namespace
	}
	vals, err := chartutil.ToRenderValuesWithSchemaValidation(ch, opts.Values,
		chartutil.ReleaseOptions{Name: opts.ReleaseName, Namespace: opts.Namespace, Revision: 1, IsInstall: true},
		Capabilities(), opts.SkipSchemaValidation)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", ch.Name(), err)
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", ch.Name(), err)
	}
	r := Rendered{}
	for name, manifest := range out {
		if strings.HasSuffix(name, "NOTES.txt") || strings.TrimSpace(manifest) == "" {
			continue
		}
		r[name] = manifest
	}
	return r, nil
}

// Template is the output of templates/<file> of the chart, or an error
// naming what it has when there is none.
func (r Rendered) Template(file string) (string, error) {
	for name, manifest := range r {
		if path.Base(path.Dir(name)) == "templates" && path.Base(name) == file {
			return manifest, nil
		}
	}
	return "", fmt.Errorf("no rendered template %q among %s", file, strings.Join(r.names(), ", "))
}

func (r Rendered) names() []string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Manifests are the rendered objects, one YAML document each, template by
// template (sorted by path) and in each in the order it writes them.
func (r Rendered) Manifests() []string {
	var docs []string
	for _, name := range r.names() {
		split := releaseutil.SplitManifests(r[name])
		keys := make([]string, 0, len(split))
		for k := range split {
			keys = append(keys, k)
		}
		sort.Sort(releaseutil.BySplitManifestsOrder(keys))
		for _, k := range keys {
			docs = append(docs, split[k])
		}
	}
	return docs
}
