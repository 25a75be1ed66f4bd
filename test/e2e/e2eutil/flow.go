package e2eutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/test/testbed"
)

// SeedApplications writes a copy of the seed's examples/applications/ into
// a new folder and returns it, edited as a user of these children has to:
//
//   - 01-helmchart.yaml points at chartRepo (a repository on loopback)
//     instead of https://charts.bitnami.com/bitnami: tests reach 127.0.0.1 only;
//   - in 05-subscription.yaml, one subscriber per cluster id in ids (the seed
//     says "PLEASE UPDATE THIS CLUSTER-ID TO YOURS"), and the feeds edited by
//     editFeeds when it is not nil.
//
// Every other file is copied as it is.
func SeedApplications(t *testing.T, chartRepo string, ids []string, editFeeds func([]any) []any) string {
	t.Helper()
	src := filepath.Join(testbed.RepoRoot(), "examples", "applications")
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		switch e.Name() {
		case "01-helmchart.yaml":
			if !strings.Contains(string(b), "https://charts.bitnami.com/bitnami") {
				t.Fatalf("%s no longer names https://charts.bitnami.com/bitnami: update SeedApplications", e.Name())
			}
			b = []byte(strings.Replace(string(b), "https://charts.bitnami.com/bitnami", chartRepo, 1))
		case "05-subscription.yaml":
			var sub map[string]any
			if err := yaml.Unmarshal(b, &sub); err != nil {
				t.Fatal(err)
			}
			spec := sub["spec"].(map[string]any)
			var subscribers []any
			for _, id := range ids {
				subscribers = append(subscribers, map[string]any{"clusterAffinity": map[string]any{
					"matchLabels": map[string]any{clusterv1beta1.LabelClusterID: id}}})
			}
			spec["subscribers"] = subscribers
			if editFeeds != nil {
				spec["feeds"] = editFeeds(spec["feeds"].([]any))
			}
			out, err := yaml.Marshal(sub)
			if err != nil {
				t.Fatal(err)
			}
			b = append([]byte("# examples/applications/05-subscription.yaml, edited by the test for its children\n"), out...)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// ChildGet is `kubectl get args...` in cluster c: its output, and false
// when the object does not exist. Any other failure fails the test.
func ChildGet(t *testing.T, c *testbed.Cluster, args ...string) (string, bool) {
	t.Helper()
	out, errOut, err := Kubectl(t, c, "", append([]string{"get"}, args...)...)
	if err != nil {
		if strings.Contains(errOut, "NotFound") || strings.Contains(errOut, "not found") {
			return "", false
		}
		t.Fatalf("kubectl get %s in %s: %v\n%s", strings.Join(args, " "), c.Name, err, errOut)
	}
	return out, true
}

// Events lists the events of the parent about one object, with reason when
// it is not empty, as "type|reason|source|count|message" lines.
func Events(t *testing.T, parent *testbed.Cluster, namespace, kind, name, reason string) []string {
	t.Helper()
	selector := "involvedObject.kind=" + kind + ",involvedObject.name=" + name
	if reason != "" {
		selector += ",reason=" + reason
	}
	out, _, err := Kubectl(t, parent, "", "get", "events", "-n", namespace, "--field-selector", selector,
		"-o", `jsonpath={range .items[*]}{.type}|{.reason}|{.source.component}|{.count}|{.message}{"\n"}{end}`)
	if err != nil {
		// An empty answer would read as "no events": say why instead.
		t.Fatalf("listing %s events of %s %s/%s: %v", reason, kind, namespace, name, err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
