package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// TestDeployIsRendered: deploy/ is what the charts render, so `make test`
// fails on a chart edited without `make generate`, and on a deploy/ file
// edited by hand.
func TestDeployIsRendered(t *testing.T) {
	files, err := Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"hub/00-namespace.yaml", "hub/admission.yaml", "hub/apiservice.yaml", "hub/deployment.yaml", "hub/flowcontrol.yaml",
		"hub/rbac.yaml", "hub/webhook.yaml", "agent/00-namespace.yaml", "agent/deployment.yaml", "agent/rbac.yaml",
		"optional/anonymous-passthrough.yaml", "templates/clusternet_agent_secret.yaml",
	} {
		if _, ok := files[want]; !ok {
			t.Errorf("deploy/%s is not rendered", want)
		}
	}
	for file, data := range files {
		got, err := os.ReadFile(filepath.Join("..", "..", "deploy", filepath.FromSlash(file)))
		if err != nil {
			t.Errorf("%v: run 'make generate'", err)
			continue
		}
		if diff := cmp.Diff(string(data), string(got)); diff != "" {
			t.Errorf("deploy/%s is not what the chart renders: run 'make generate' (-rendered +deploy):\n%s", file, diff)
		}
		if !strings.HasPrefix(string(data), "# Generated from charts/") {
			t.Errorf("deploy/%s has no header naming its chart", file)
		}
		// Every document is an object kubectl can apply.
		for _, doc := range strings.Split(string(data), "\n---\n") {
			var obj struct {
				APIVersion, Kind string
				Metadata         struct{ Name string }
			}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil || obj.APIVersion == "" || obj.Kind == "" || obj.Metadata.Name == "" {
				t.Errorf("deploy/%s has a document that is no object (%v):\n%s", file, err, doc)
			}
		}
	}
}

// TestRenderRefusesUnmappedTemplates: a chart template that goes nowhere
// under deploy/ is an error, not a file silently left out.
func TestRenderRefusesUnmappedTemplates(t *testing.T) {
	saved := renders
	t.Cleanup(func() { renders = saved })
	r := saved[0]
	r.files = map[string]string{"deployment.yaml": "hub/deployment.yaml"}
	renders = []render{r}
	_, err := Render()
	if err == nil || !strings.Contains(err.Error(), "chart clusternet-hub renders templates/admission.yaml, which goes to no file under deploy/: add it to hack/render-deploy") {
		t.Errorf("Render() error = %v", err)
	}
}
