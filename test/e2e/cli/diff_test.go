package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestDiffPerCluster changes a template in a file and diffs it: kubectl's
// diff of the template first, then, for both children of the Subscription
// feeding it, the change each would get (child1 with its Localization's
// replicas and annotation, child2 without), dry-run applied in the child.
func TestDiffPerCluster(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	e2eutil.SetUpParent(t, parent)
	children := e2eutil.RegisterChildren(t, parent, tb.Children, nil)
	child1, child2 := children[0], children[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The dry runs go to the children as the parent's admin.
	for _, c := range children {
		if err := framework.GrantParentAdmin(ctx, c.Cluster); err != nil {
			t.Fatal(err)
		}
	}

	localizedWeb(t, parent, "diff-e2e", "nginx:1.25", "diff-demo", child1, child2)
	e2eutil.WaitFor(t, rolloutWithin, "diff-demo rolled out", func(context.Context) (bool, string) {
		out, errOut, code := runPlugin(t, parent, "", "rollout", "status", "subscription/diff-demo", "--watch=false")
		return code == 0, out + errOut
	})

	file := func(image string) string {
		path := filepath.Join(t.TempDir(), "web.yaml")
		if err := os.WriteFile(path, []byte(webDeployment("diff-e2e", image)), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	t.Run("a changed template: both children, each with its own overrides", func(t *testing.T) {
		out, errOut, code := runPlugin(t, parent, "", "diff", "-f", file("nginx:1.27"))
		t.Logf("$ kubectl clusternet diff -f web.yaml\n%s%s", out, errOut)
		if code != 1 {
			t.Errorf("exit %d, want 1 (differences)", code)
		}
		template, clusters := splitClusterDiffs(out)
		if !strings.Contains(template, "+      - image: nginx:1.27") {
			t.Errorf("the template diff lacks the new image:\n%s", template)
		}
		image := []string{"-      - image: nginx:1.25", "+      - image: nginx:1.27"}
		for _, tc := range []struct {
			c             *e2eutil.Child
			want, notWant string
		}{
			{child1, "   replicas: 5", "-  replicas"},
			{child2, "   replicas: 2", "e2e.clusternet.io/localized"},
		} {
			section, ok := clusters[tc.c.Name+" ("+tc.c.ID+")"]
			if !ok {
				t.Errorf("no section for %s (%s):\n%s", tc.c.Name, tc.c.ID, out)
				continue
			}
			if diff := cmp.Diff(image, changedLines(section)); diff != "" {
				t.Errorf("%s: changed lines (-want +got):\n%s\n%s", tc.c.Name, diff, section)
			}
			if !strings.Contains(section, "\n"+tc.want+"\n") || strings.Contains(section, tc.notWant) {
				t.Errorf("%s: want line %q and no %q:\n%s", tc.c.Name, tc.want, tc.notWant, section)
			}
		}
		if s := clusters[child1.Name+" ("+child1.ID+")"]; !strings.Contains(s, "\n     e2e.clusternet.io/localized: child1\n") {
			t.Errorf("%s lacks its Localization's annotation:\n%s", child1.Name, s)
		}
	})

	t.Run("the template as it is: no changes in either child, exit 0", func(t *testing.T) {
		out, errOut, code := runPlugin(t, parent, "", "diff", "-f", file("nginx:1.25"), "--clusters", child2.Name+","+child1.ID)
		template, clusters := splitClusterDiffs(out)
		want := map[string]string{child1.Name + " (" + child1.ID + ")": "no changes\n", child2.Name + " (" + child2.ID + ")": "no changes\n"}
		if diff := cmp.Diff(want, clusters); code != 0 || template != "" || diff != "" {
			t.Errorf("exit %d, want 0; template diff %q, want none; clusters (-want +got):\n%s\nstderr: %s", code, template, diff, errOut)
		}
	})

	t.Run("--cluster X apply --dry-run=server dry-runs in the child and changes nothing", func(t *testing.T) {
		// The generation counts spec changes: a real apply that the
		// deployer undid at once would still show.
		spec := func() string {
			return mustClusternet(t, parent, "--cluster", child2.Name, "get", "deployment", "web", "-n", "diff-e2e",
				"-o", "jsonpath={.metadata.generation} {.spec.template.spec.containers[0].image}")
		}
		before := spec()
		out, errOut, code := runPlugin(t, parent, "", "--cluster", child2.Name, "apply", "--dry-run=server", "-f", file("nginx:1.27"))
		if want := "deployment.apps/web configured (server dry run)\n"; code != 0 || out != want {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and stdout %q", code, out, errOut, want)
		}
		if after := spec(); after != before || !strings.HasSuffix(before, " nginx:1.25") {
			t.Errorf("child2's Deployment (generation, image) went from %q to %q over a dry run, want it unchanged with nginx:1.25", before, after)
		}
	})

	t.Run("--clusters naming an unknown cluster fails before any diff", func(t *testing.T) {
		out, errOut, code := runPlugin(t, parent, "", "diff", "-f", file("nginx:1.27"), "--clusters", "nowhere")
		want := `error: --clusters "nowhere": cluster "nowhere" not found: it is neither the name nor the cluster id of a ManagedCluster; known clusters: `
		if code != 2 || out != "" || !strings.HasPrefix(errOut, want) {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and stderr starting %q", code, out, errOut, want)
		}
	})
}

// splitClusterDiffs splits diff's output into kubectl's template diff and
// the section of each cluster, by "<name> (<id>)".
func splitClusterDiffs(out string) (string, map[string]string) {
	parts := strings.Split(out, "=== cluster ")
	sections := map[string]string{}
	for _, p := range parts[1:] {
		header, body, _ := strings.Cut(p, "\n")
		sections[header] = body
	}
	return parts[0], sections
}

// changedLines are the removed and added lines of a unified diff.
func changedLines(diff string) []string {
	var out []string
	for _, l := range strings.Split(diff, "\n") {
		if strings.HasPrefix(l, "---") || strings.HasPrefix(l, "+++") {
			continue
		}
		if strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+") {
			out = append(out, l)
		}
	}
	return out
}
