// Command render-deploy writes deploy/ from the Helm charts in charts/: the
// hub's and the agent's manifests, the optional anonymous pass-through and
// the agent's registration Secret template, each rendered with the charts'
// default values for namespace clusternet-system. `make generate` runs it;
// `make verify` checks its output is committed.
//
//	go run ./hack/render-deploy [--out deploy]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/clusternet/clusternet/charts"
)

// A render is one chart rendered with some values, and where each of its
// templates goes.
type render struct {
	chart string
	// what the values are, for the header; values are the chart's defaults
	// with these changes.
	about  string
	values map[string]any
	// skipSchema lets envsubst placeholders through.
	skipSchema bool
	// files maps a template (templates/<name>) to its file under the output
	// folder; every template the render outputs must have one.
	files map[string]string
	// notes are extra header lines of some files.
	notes map[string]string
}

var renders = []render{
	{
		chart:  charts.Hub,
		about:  "its default values (createNamespace=true)",
		values: map[string]any{"createNamespace": true},
		files: map[string]string{
			"namespace.yaml":   "hub/00-namespace.yaml",
			"admission.yaml":   "hub/admission.yaml",
			"apiservice.yaml":  "hub/apiservice.yaml",
			"deployment.yaml":  "hub/deployment.yaml",
			"flowcontrol.yaml": "hub/flowcontrol.yaml",
			"rbac.yaml":        "hub/rbac.yaml",
			"webhook.yaml":     "hub/webhook.yaml",
		},
		notes: map[string]string{
			"apiservice.yaml": "The chart's default tls.mode=hubManaged leaves caBundle out: the hub fills it in.",
			"webhook.yaml":    "The chart's default tls.mode=hubManaged leaves caBundle out: the hub fills it in.",
		},
	},
	{
		chart:  charts.Hub,
		about:  "anonymousPassthrough.enabled=true (only that template kept)",
		values: map[string]any{"anonymousPassthrough": map[string]any{"enabled": true}},
		files: map[string]string{
			"anonymous-passthrough.yaml": "optional/anonymous-passthrough.yaml",
			"admission.yaml":             "",
			"apiservice.yaml":            "",
			"deployment.yaml":            "",
			"flowcontrol.yaml":           "",
			"rbac.yaml":                  "",
			"webhook.yaml":               "",
		},
	},
	{
		chart: charts.Agent,
		about: "its default values (createNamespace=true; parentURL and registrationToken left as ${PARENTURL} and ${REGTOKEN} for envsubst)",
		values: map[string]any{
			"createNamespace":   true,
			"parentURL":         "${PARENTURL}",
			"registrationToken": "${REGTOKEN}",
		},
		skipSchema: true,
		files: map[string]string{
			"namespace.yaml":  "agent/00-namespace.yaml",
			"deployment.yaml": "agent/deployment.yaml",
			"rbac.yaml":       "agent/rbac.yaml",
			"secret.yaml":     "templates/clusternet_agent_secret.yaml",
		},
		notes: map[string]string{
			"secret.yaml": `The registration Secret clusternet-agent reads in the child. Make a fresh
bootstrap token in the parent for it; never use a published one:

  REGTOKEN=$(kubectl --context PARENT clusternet create token --ttl 1h)
  PARENTURL=https://192.168.10.10:6443 REGTOKEN=$REGTOKEN \
    envsubst < ./deploy/templates/clusternet_agent_secret.yaml | kubectl apply -f -

or let ` + "`kubectl clusternet create token --print-join-command`" + ` print this
Secret filled in, the parent's CA included, or install the clusternet-agent
chart with --set parentURL=... --set registrationToken=... (docs/install.md).
Add a parentCA key (PEM) when the parent's certificate is not signed by a
public CA the agent's image trusts.`,
		},
	},
}

// Render renders every file of deploy/ that comes from the charts, by its
// path under deploy/.
func Render() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, r := range renders {
		ch, err := charts.Load(r.chart)
		if err != nil {
			return nil, err
		}
		rendered, err := charts.Render(ch, charts.Options{Values: r.values, SkipSchemaValidation: r.skipSchema})
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(rendered))
		for name := range rendered {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			template := strings.TrimPrefix(name, r.chart+"/templates/")
			file, ok := r.files[template]
			if !ok {
				return nil, fmt.Errorf("chart %s renders templates/%s, which goes to no file under deploy/: add it to hack/render-deploy", r.chart, template)
			}
			if file == "" {
				continue
			}
			if _, dup := out[file]; dup {
				return nil, fmt.Errorf("deploy/%s is written twice: fix hack/render-deploy", file)
			}
			out[file] = []byte(header(r, template) + tidy(rendered[name]))
		}
		for template, file := range r.files {
			if _, ok := out[file]; file != "" && !ok {
				return nil, fmt.Errorf("chart %s with %s renders nothing from templates/%s for deploy/%s", r.chart, r.about, template, file)
			}
		}
	}
	return out, nil
}

func header(r render, template string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated from charts/%s/templates/%s with %s\n", r.chart, template, r.about)
	b.WriteString("# by hack/render-deploy (make generate); edit the chart, not this file.\n")
	if note := r.notes[template]; note != "" {
		b.WriteString("#\n")
		for _, line := range strings.Split(note, "\n") {
			b.WriteString(strings.TrimRight("# "+line, " ") + "\n")
		}
	}
	return b.String()
}

// tidy drops blank lines at the ends and trailing spaces.
func tidy(manifest string) string {
	lines := strings.Split(strings.Trim(manifest, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.Join(lines, "\n") + "\n"
}

func main() {
	outDir := flag.String("out", "deploy", "folder to write into")
	flag.Parse()
	files, err := Render()
	if err != nil {
		fmt.Fprintln(os.Stderr, "render-deploy:", err)
		os.Exit(1)
	}
	for file, data := range files {
		path := filepath.Join(*outDir, filepath.FromSlash(file))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "render-deploy:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "render-deploy:", err)
			os.Exit(1)
		}
	}
}
