package e2eutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clusternet/clusternet/test/testbed"
)

// CreateTemplate stores obj (YAML or JSON, one object or several separated
// by ---) as templates the way users do: `kubectl clusternet apply -f`, the
// real kubectl running the plugin Main built, whose requests for ordinary
// kinds go to the hub's shadow API. There is deliberately no other path: a
// shadow API that is broken or not served must fail the test that stores a
// template, not be bypassed by writing the Manifests it would have written.
func CreateTemplate(t *testing.T, parent *testbed.Cluster, obj string) {
	t.Helper()
	// Not t.TempDir(): it is named after the (sub)test, and kubectl splits
	// -f at commas, which subtest names may hold.
	dir, err := os.MkdirTemp("", "template-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	file := filepath.Join(dir, "template.yaml")
	if err := os.WriteFile(file, []byte(obj), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := Plugin(t, parent, "apply", "-f", file)
	if err != nil {
		t.Fatalf("kubectl clusternet apply -f of the template failed: %v\n%s%s\ntemplate:\n%s", err, out, errOut, obj)
	}
}
