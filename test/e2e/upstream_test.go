package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/clusternet/clusternet/pkg/apis/upstreamtest"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestUpstreamObjects writes every upstream-shaped object of
// pkg/apis/testdata/upstream into a real parent holding the CRDs and the hub
// chart's admission policies, as a user of upstream Clusternet v0.18 would:
// kubectl create (strict field validation), then the status through the
// status subresource. Each is accepted, reads back with every field it was
// written with, and kubectl prints one warning per field the hub accepts
// but does not act on (docs/api.md).
func TestUpstreamObjects(t *testing.T) {
	tb := testbed.ForTest(t, 0)
	parent := tb.Parent
	root := filepath.Join("..", "..")
	dir := filepath.Join(root, "pkg", "apis", "testdata", "upstream")

	mustKubectl(t, parent, "", "apply", "--server-side", "-f", filepath.Join(root, "deploy", "crds"))
	mustKubectl(t, parent, "", "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
	mustKubectl(t, parent, "", "apply", "--server-side", "-f", filepath.Join(root, "deploy", "hub", "admission.yaml"))
	for _, ns := range []string{"clusternet-5l82l", "clusternet-dhxfs", "clusternet-reserved"} {
		mustKubectl(t, parent, "", "create", "namespace", ns)
	}
	// Policies take effect once the apiserver has read them: a server-side
	// dry run warns then.
	subscription := filepath.Join(dir, "subscription.yaml")
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		_, errOut, err := kubectl(t, parent, "", "create", "--dry-run=server", "-f", subscription)
		return err == nil && strings.Contains(errOut, "spec.dividingScheduling.dynamicDividing.topologySpreadConstraints is accepted but not"), nil
	}); err != nil {
		t.Fatalf("no warning from the not-acted-on policies a minute after they were created: %v", err)
	}

	for _, tc := range []struct {
		file, resource string
		warns          []string
	}{
		{"subscription.yaml", "subscriptions.apps.clusternet.io", []string{
			"spec.dividingScheduling.dynamicDividing.topologySpreadConstraints",
		}},
		{"base.yaml", "bases.apps.clusternet.io", nil},
		{"description.yaml", "descriptions.apps.clusternet.io", nil},
		{"feedinventory.yaml", "feedinventories.apps.clusternet.io", []string{"spec.feeds[].replicaRequirements"}},
		{"localization.yaml", "localizations.apps.clusternet.io", nil},
		{"globalization.yaml", "globalizations.apps.clusternet.io", nil},
		{"helmchart.yaml", "helmcharts.apps.clusternet.io", []string{
			"spec.disableHooks", "spec.force", "spec.replace", "spec.replaceCRDs", "spec.upgradeAtomic", "spec.waitForJob",
		}},
		{"helmrelease.yaml", "helmreleases.apps.clusternet.io", []string{
			"spec.disableHooks", "spec.force", "spec.replace", "spec.replaceCRDs", "spec.upgradeAtomic", "spec.waitForJob",
		}},
		{"manifest.yaml", "manifests.apps.clusternet.io", nil},
		{"managedcluster.yaml", "managedclusters.clusters.clusternet.io", []string{"spec.clusterInitBaseName"}},
		{"clusterregistrationrequest.yaml", "clusterregistrationrequests.clusters.clusternet.io", nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			file := filepath.Join(dir, tc.file)
			want := readJSON(t, file)
			_, errOut, err := kubectl(t, parent, "", "create", "-f", file)
			if err != nil {
				t.Fatalf("kubectl create -f %s: %v\n%s", tc.file, err, errOut)
			}
			var warned []string
			for _, line := range strings.Split(errOut, "\n") {
				// Warning: Validation failed for ValidatingAdmissionPolicy 'p' with binding 'b': <message>
				if _, after, ok := strings.Cut(line, "Warning: "); ok {
					_, message, _ := strings.Cut(after, "': ")
					field, _, _ := strings.Cut(message, " is accepted but not acted on yet")
					warned = append(warned, field)
				}
			}
			sort.Strings(warned)
			if !reflect.DeepEqual(warned, tc.warns) && len(warned)+len(tc.warns) > 0 {
				t.Errorf("kubectl create warned of %q, want %q; stderr:\n%s", warned, tc.warns, errOut)
			}

			meta := want["metadata"].(map[string]any)
			name, _ := meta["name"].(string)
			args := []string{"-o", "json"}
			if ns, ok := meta["namespace"].(string); ok {
				args = append(args, "-n", ns)
			}
			if status, ok := want["status"]; ok {
				patch, err := json.Marshal(map[string]any{"status": status})
				if err != nil {
					t.Fatal(err)
				}
				mustKubectl(t, parent, "", append([]string{"patch", tc.resource, name, "--subresource=status", "--type=merge", "-p", string(patch)}, args...)...)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(mustKubectl(t, parent, "", append([]string{"get", tc.resource, name}, args...)...)), &got); err != nil {
				t.Fatal(err)
			}
			delete(want, "metadata")
			for _, d := range upstreamtest.Lost("", want, got) {
				t.Errorf("read back: %s", d)
			}
		})
	}
}

func readJSON(t *testing.T, file string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := yaml.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return out
}
