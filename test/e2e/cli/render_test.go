package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestRenderAndLogs renders a Subscription with a Localization for one of
// two children and checks each child's objects against what its deployer
// applied there; then reads the logs of the Subscription's Deployment in
// both children at once: refused in the child that grants the parent user
// nothing, prefixed per cluster, followed as lines are written.
func TestRenderAndLogs(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	e2eutil.SetUpParent(t, parent)
	children := e2eutil.RegisterChildren(t, parent, tb.Children, nil)
	child1, child2 := children[0], children[1]

	localizedWeb(t, parent, "render-e2e", "nginx", "render-demo", child1, child2)

	var all string
	e2eutil.WaitFor(t, rolloutWithin, "render-demo rendered for both clusters", func(context.Context) (bool, string) {
		out, errOut, code := runPlugin(t, parent, "", "render", "subscription/render-demo")
		all = out
		return code == 0 && strings.Contains(out, "replicas: 5"), out + errOut
	})

	t.Run("render shows the Localization's change in its cluster's objects only", func(t *testing.T) {
		one := mustClusternet(t, parent, "render", "subscription/render-demo", "--cluster", child1.Name)
		two := mustClusternet(t, parent, "render", "subs", "render-demo", "--cluster", child2.ID)
		t.Logf("$ kubectl clusternet render subscription/render-demo --cluster %s\n%s", child1.Name, one)
		onlyIn1, onlyIn2 := lineDifference(one, two), lineDifference(two, one)
		if diff := cmp.Diff([]string{"    e2e.clusternet.io/localized: child1", "  annotations:", "  replicas: 5"}, onlyIn1); diff != "" {
			t.Errorf("lines of %s's objects only (-want +got):\n%s", child1.Name, diff)
		}
		if diff := cmp.Diff([]string{"  replicas: 2"}, onlyIn2); diff != "" {
			t.Errorf("lines of %s's objects only (-want +got):\n%s", child2.Name, diff)
		}

		// Without --cluster: both, each document after its cluster's name.
		t.Logf("$ kubectl clusternet render subscription/render-demo\n%s", all)
		for _, c := range []*e2eutil.Child{child1, child2} {
			if n := strings.Count(all, "# cluster: "+c.Name+"\n"); n != 2 {
				t.Errorf("%d documents of %s, want 2:\n%s", n, c.Name, all)
			}
		}
	})

	t.Run("render's objects are what the deployer applied in each child", func(t *testing.T) {
		// A server-side dry-run apply of them in the child changes nothing:
		// kubectl diff exits 0. Another field manager than the deployer's, so
		// the labels the deployer adds are not taken as removed.
		files := map[*e2eutil.Child]string{}
		for _, c := range []*e2eutil.Child{child1, child2} {
			files[c] = filepath.Join(t.TempDir(), "rendered.yaml")
			if err := os.WriteFile(files[c], []byte(mustClusternet(t, parent, "render", "subscription/render-demo", "--cluster", c.Name)), 0o600); err != nil {
				t.Fatal(err)
			}
			e2eutil.WaitFor(t, rolloutWithin, "render-demo applied in "+c.Name, func(context.Context) (bool, string) {
				out, errOut, err := e2eutil.Kubectl(t, c.Cluster, "", "diff", "--server-side", "--force-conflicts", "--field-manager=render-e2e", "-f", files[c])
				return err == nil, out + errOut
			})
		}
		// The check can tell: child2's objects differ from child1's live ones.
		out, _, err := e2eutil.Kubectl(t, child1.Cluster, "", "diff", "--server-side", "--force-conflicts", "--field-manager=render-e2e", "-f", files[child2])
		if err == nil || !strings.Contains(out, "-  replicas: 5") || !strings.Contains(out, "+  replicas: 2") {
			t.Errorf("%s's objects diffed against %s's live ones: err=%v\n%s", child2.Name, child1.Name, err, out)
		}
	})

	t.Run("render of a cluster the Subscription is not bound to names the bound ones", func(t *testing.T) {
		applySubscription(t, parent, "render-one", []string{child1.ID}, `{apiVersion: v1, kind: Namespace, name: render-e2e}`)
		e2eutil.WaitFor(t, rolloutWithin, "render-one rendered", func(context.Context) (bool, string) {
			out, errOut, code := runPlugin(t, parent, "", "render", "subscription/render-one", "--cluster", child1.Name)
			return code == 0, out + errOut
		})
		out, errOut, code := runPlugin(t, parent, "", "render", "subscription/render-one", "--cluster", child2.Name)
		want := fmt.Sprintf("error: --cluster %q: subscription \"render-one\" in namespace \"default\" is not bound to that cluster; it is bound to %s (namespace %s, id %s)\n",
			child2.Name, child1.Name, child1.Namespace, child1.ID)
		if code != 1 || out != "" || errOut != want {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and stderr %q", code, out, errOut, want)
		}
	})

	// The parent's admin reaches the children as its user name; child1
	// grants it cluster-admin, child2 nothing yet.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := framework.GrantParentAdmin(ctx, child1.Cluster); err != nil {
		t.Fatal(err)
	}
	for _, c := range children {
		e2eutil.WaitFor(t, rolloutWithin, "the pods of web Running in "+c.Name, func(context.Context) (bool, string) {
			out, _, _ := e2eutil.Kubectl(t, c.Cluster, "", "get", "pods", "-n", "render-e2e", "-l", "app=web", "-o", "jsonpath={.items[*].status.phase}")
			return strings.HasPrefix(out, "Running"), out
		})
	}

	t.Run("logs: a child that refuses the parent user is one line on stderr, the other is printed", func(t *testing.T) {
		out, errOut, code := runPlugin(t, parent, "", "logs", "deployment/web", "-n", "render-e2e")
		if code != 0 {
			t.Errorf("exit %d, want 0: one cluster yielded logs", code)
		}
		want := fmt.Sprintf(`error: cluster %s: deployments.apps "web" is forbidden: User "kubernetes-admin" cannot get resource "deployments"`, child2.Name)
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks a Forbidden for %s (%q)", errOut, child2.Name, want)
		}
		if lines := prefixedBy(out, child1.Name); len(lines) == 0 || !strings.HasSuffix(lines[0], "/web] testbed container started") {
			t.Errorf("no log line of %s, prefixed [%s/<pod>/web]:\n%s", child1.Name, child1.Name, out)
		}
		if len(prefixedBy(out, child2.Name)) != 0 {
			t.Errorf("lines of %s, which refused:\n%s", child2.Name, out)
		}
	})

	if err := framework.GrantParentAdmin(ctx, child2.Cluster); err != nil {
		t.Fatal(err)
	}

	t.Run("logs of a pod that exists in one child only: the other is one line on stderr", func(t *testing.T) {
		e2eutil.MustKubectl(t, child1.Cluster, "", "run", "solo", "--image=nginx", "-n", "default")
		e2eutil.MustKubectl(t, child1.Cluster, "", "wait", "pod/solo", "-n", "default", "--for=jsonpath={.status.phase}=Running", "--timeout=60s")
		out, errOut, code := runPlugin(t, parent, "", "logs", "solo", "-n", "default")
		wantErr := fmt.Sprintf("error: cluster %s: pods \"solo\" not found in namespace \"default\"\n", child2.Name)
		if code != 0 || errOut != wantErr || !strings.HasPrefix(out, "["+child1.Name+"/solo/solo] testbed container started\n") {
			t.Errorf("exit %d\nstdout %q\nstderr %q, want %q", code, out, errOut, wantErr)
		}
		_, errOut, code = runPlugin(t, parent, "", "logs", "nowhere", "-n", "default")
		if want := "error: no cluster yielded logs: 2 of 2 clusters failed: "; code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("a pod nowhere: exit %d, stderr %q; want exit 1 and %q", code, errOut, want)
		}
	})

	t.Run("logs -f follows the Deployment's pod in both children at once", func(t *testing.T) {
		r := startPlugin(t, parent, "", "logs", "-f", "deployment/web", "-n", "render-e2e", "--clusters", child1.Name+","+child2.ID)
		e2eutil.WaitFor(t, time.Minute, "the first lines of both children", func(context.Context) (bool, string) {
			out := r.stdout.String()
			return len(prefixedBy(out, child1.Name)) > 0 && len(prefixedBy(out, child2.Name)) > 0, out + r.stderr.String()
		})
		for _, c := range children {
			if err := c.AppendPodLog("written while following " + c.Name); err != nil {
				t.Fatal(err)
			}
		}
		e2eutil.WaitFor(t, time.Minute, "the lines written while following", func(context.Context) (bool, string) {
			out := r.stdout.String()
			return slices.ContainsFunc(prefixedBy(out, child1.Name), func(l string) bool { return strings.HasSuffix(l, "] written while following "+child1.Name) }) &&
				slices.ContainsFunc(prefixedBy(out, child2.Name), func(l string) bool { return strings.HasSuffix(l, "] written while following "+child2.Name) }), out
		})
		if err := r.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		r.wait(t)
	})
}

// lineDifference is the lines of a that b lacks, sorted.
func lineDifference(a, b string) []string {
	have := map[string]bool{}
	for _, l := range strings.Split(b, "\n") {
		have[l] = true
	}
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !have[l] {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// prefixedBy is the lines of out from cluster's pods: "[<cluster>/...".
func prefixedBy(out, cluster string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "["+cluster+"/") {
			lines = append(lines, l)
		}
	}
	return lines
}

// webDeployment is the template TestRenderAndLogs and TestDiffPerCluster
// feed: Deployment web in namespace with image.
func webDeployment(namespace, image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %s}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: %s}]}
`, namespace, image)
}

// localizedWeb stores namespace and webDeployment(namespace, image) as
// templates and Subscription subName of both to child1 and child2, with a
// Localization that gives child1's Deployment 5 replicas and an annotation;
// child2's stays as the template says.
func localizedWeb(t *testing.T, parent *testbed.Cluster, namespace, image, subName string, child1, child2 *e2eutil.Child) {
	t.Helper()
	e2eutil.CreateTemplate(t, parent, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+namespace+"}\n---\n"+webDeployment(namespace, image))
	e2eutil.MustKubectl(t, parent, fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: Localization
metadata: {name: web-more, namespace: %s}
spec:
  overridePolicy: ApplyNow
  feed: {apiVersion: apps/v1, kind: Deployment, namespace: %s, name: web}
  overrides:
  - {type: MergePatch, value: '{"metadata":{"annotations":{"e2e.clusternet.io/localized":"child1"}},"spec":{"replicas":5}}'}
`, child1.Namespace, namespace), "apply", "-f", "-")
	applySubscription(t, parent, subName, []string{child1.ID, child2.ID},
		`{apiVersion: v1, kind: Namespace, name: `+namespace+`}`, `{apiVersion: apps/v1, kind: Deployment, namespace: `+namespace+`, name: web}`)
}
