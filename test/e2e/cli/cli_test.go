package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
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

// clusternet runs `kubectl clusternet args...` with the real kubectl, the
// built plugin first on PATH, against c as its admin.
func clusternet(t *testing.T, c *testbed.Cluster, stdin string, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.Kubectl(ctx, append([]string{"clusternet"}, args...)...)
	cmd.Env = append(cmd.Env, "PATH="+e2eutil.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func mustClusternet(t *testing.T, c *testbed.Cluster, args ...string) string {
	t.Helper()
	out, errOut, err := clusternet(t, c, "", nil, args...)
	if err != nil {
		t.Fatalf("kubectl clusternet %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// header is the first row of a table's output.
func header(out string) []string { return e2eutil.Table(out)[0] }

// column returns the values of the named column of a table's output.
func column(out, name string) []string {
	rows := e2eutil.Table(out)
	i := slices.Index(rows[0], name)
	if i < 0 {
		return nil
	}
	var vals []string
	for _, r := range rows[1:] {
		if i < len(r) {
			vals = append(vals, r[i])
		}
	}
	return vals
}

func TestPlugin(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	// The seed's examples name a chart repository on the Internet: with the
	// distribution controllers off, nothing here tries to reach it (tests
	// talk to 127.0.0.1 only). The plugin needs the shadow API and the
	// proxy, which stay on.
	e2eutil.SetUpParent(t, parent, "--feature-gates=Deployer=false")
	children := e2eutil.RegisterChildren(t, parent, tb.Children, nil)
	child1, child2 := children[0], children[1]
	// --cluster reaches a child as the parent admin's user name (its
	// system:masters stays in the parent): each child grants it; and
	// --child-kubeconfig needs the parent's opt-in to the seed's anonymous
	// pass-through (docs/tunnel.md).
	grantCtx, grantCancel := context.WithTimeout(context.Background(), time.Minute)
	defer grantCancel()
	for _, c := range children {
		if err := framework.GrantParentAdmin(grantCtx, c.Cluster); err != nil {
			t.Fatal(err)
		}
	}
	if err := framework.InstallPassThrough(grantCtx, parent); err != nil {
		t.Fatal(err)
	}
	root := testbed.RepoRoot()
	examples := filepath.Join(root, "examples", "applications")

	// The shadow API is served by the hub; the template subtests need it.
	shadowServed := func(t *testing.T) {
		t.Helper()
		var last string
		e2eutil.WaitFor(t, 30*time.Second, "the hub serving /apis/shadow/v1alpha1 through the parent", func(context.Context) (bool, string) {
			out, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "--raw", "/apis/shadow/v1alpha1")
			last = out + errOut
			return err == nil, last
		})
	}

	t.Run("help and version name the plugin", func(t *testing.T) {
		out := mustClusternet(t, parent, "--help")
		if !strings.Contains(out, `Use "kubectl clusternet <command> --help"`) {
			t.Errorf("help:\n%s", out)
		}
		out = mustClusternet(t, parent, "version")
		if !strings.Contains(out, "Client Version: ") || !strings.Contains(out, "Parent Version: v1.35") {
			t.Errorf("version:\n%s", out)
		}
	})

	t.Run("seed: apply examples/applications stores templates", func(t *testing.T) {
		shadowServed(t)
		out, errOut, err := clusternet(t, parent, "", nil, "apply", "-f", examples)
		want := "helmchart.apps.clusternet.io/mysql created\n" +
			"namespace/foo created\n" +
			"deployment.apps/my-nginx created\n" +
			"service/my-nginx-svc created\n" +
			"subscription.apps.clusternet.io/app-demo created\n"
		if err != nil {
			t.Fatalf("apply: %v\n%s%s", err, out, errOut)
		}
		if diff := cmp.Diff(want, out); diff != "" {
			t.Errorf("apply output (-want +got):\n%s", diff)
		}
		// Templates never run in the parent.
		if _, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "ns", "foo"); err == nil || !strings.Contains(errOut, "NotFound") {
			t.Errorf("namespace foo exists in the parent: err=%v %s", err, errOut)
		}
		if out, _, _ := e2eutil.Kubectl(t, parent, "", "get", "deploy", "-A", "-o", "name"); strings.Contains(out, "my-nginx") {
			t.Errorf("a Deployment my-nginx runs in the parent: %s", out)
		}
	})

	t.Run("seed: get ns, svc and deploy show templates", func(t *testing.T) {
		shadowServed(t)
		for _, tc := range []struct {
			args []string
			name string
		}{
			{[]string{"get", "ns"}, "foo"},
			{[]string{"get", "svc", "-n", "foo"}, "my-nginx-svc"},
			{[]string{"get", "deploy", "-n", "foo"}, "my-nginx"},
		} {
			out := mustClusternet(t, parent, tc.args...)
			if got := header(out); !cmp.Equal(got, []string{"NAME", "CREATED AT"}) {
				t.Errorf("%v header = %q, want NAME, CREATED AT", tc.args, got)
			}
			if names := column(out, "NAME"); !slices.Contains(names, tc.name) {
				t.Errorf("%v lists %v, want %s", tc.args, names, tc.name)
			}
		}
	})

	t.Run("describe a template", func(t *testing.T) {
		shadowServed(t)
		out := mustClusternet(t, parent, "describe", "deploy", "my-nginx", "-n", "foo")
		for _, want := range []string{"Name:", "my-nginx", "Namespace:", "foo", "nginx:1.14.2"} {
			if !strings.Contains(out, want) {
				t.Errorf("describe lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("edit a template with EDITOR", func(t *testing.T) {
		shadowServed(t)
		editor := filepath.Join(t.TempDir(), "editor.sh")
		if err := os.WriteFile(editor, []byte("#!/bin/sh\nsed -i 's/replicas: 3/replicas: 5/' \"$1\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := clusternet(t, parent, "", []string{"KUBE_EDITOR=" + editor, "EDITOR=" + editor}, "edit", "deploy", "my-nginx", "-n", "foo")
		if err != nil || strings.TrimSpace(out) != "deployment.apps/my-nginx edited" {
			t.Fatalf("edit = %q, %v %s", out, err, errOut)
		}
		if got := mustClusternet(t, parent, "get", "deploy", "my-nginx", "-n", "foo", "-o", "jsonpath={.spec.replicas}"); got != "5" {
			t.Errorf("replicas after edit = %q, want 5", got)
		}
	})

	t.Run("second apply reports configured and unchanged", func(t *testing.T) {
		shadowServed(t)
		out := mustClusternet(t, parent, "apply", "-f", examples)
		want := "helmchart.apps.clusternet.io/mysql unchanged\n" +
			"namespace/foo unchanged\n" +
			"deployment.apps/my-nginx configured\n" +
			"service/my-nginx-svc unchanged\n" +
			"subscription.apps.clusternet.io/app-demo unchanged\n"
		if diff := cmp.Diff(want, out); diff != "" {
			t.Errorf("second apply (-want +got):\n%s", diff)
		}
		if got := mustClusternet(t, parent, "get", "deploy", "my-nginx", "-n", "foo", "-o", "jsonpath={.spec.replicas}"); got != "3" {
			t.Errorf("replicas after apply = %q, want 3 again", got)
		}
	})

	t.Run("scale, label, annotate, patch and diff templates", func(t *testing.T) {
		shadowServed(t)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"scale", "deploy", "my-nginx", "-n", "foo", "--replicas=2"}, "deployment.apps/my-nginx scaled"},
			{[]string{"label", "deploy", "my-nginx", "-n", "foo", "tier=web"}, "deployment.apps/my-nginx labeled"},
			{[]string{"annotate", "svc", "my-nginx-svc", "-n", "foo", "owner=team-a"}, "service/my-nginx-svc annotated"},
			{[]string{"patch", "svc", "my-nginx-svc", "-n", "foo", "-p", `{"spec":{"ports":[{"port":80,"targetPort":8080}]}}`}, "service/my-nginx-svc patched"},
		} {
			if out := mustClusternet(t, parent, tc.args...); strings.TrimSpace(out) != tc.want {
				t.Errorf("%v = %q, want %q", tc.args, out, tc.want)
			}
		}
		if got := mustClusternet(t, parent, "get", "deploy", "my-nginx", "-n", "foo", "-o", "jsonpath={.spec.replicas} {.metadata.labels.tier}"); got != "2 web" {
			t.Errorf("after scale and label: %q", got)
		}
		// Strategic merge by the port's merge key: the port stays one, with a new target.
		if got := mustClusternet(t, parent, "get", "svc", "my-nginx-svc", "-n", "foo", "-o", "jsonpath={.spec.ports[*].targetPort} {.metadata.annotations.owner}"); got != "8080 team-a" {
			t.Errorf("after patch and annotate: %q", got)
		}
		// diff exits 1 when the template differs from the file (replicas 2 against 3).
		out, errOut, err := clusternet(t, parent, "", nil, "diff", "-f", filepath.Join(examples, "03-deployment.yaml"))
		if code := exitCode(err); code != 1 || !strings.Contains(out, "-  replicas: 2") || !strings.Contains(out, "+  replicas: 3") {
			t.Errorf("diff exit %d:\n%s%s", code, out, errOut)
		}
		// Status is not a template's.
		_, errOut, err = clusternet(t, parent, "", nil, "get", "deploy", "my-nginx", "-n", "foo", "--subresource=status")
		if err == nil || !strings.Contains(errOut, `subresource "status" of deployments is not served for templates`) {
			t.Errorf("status subresource: err=%v %s", err, errOut)
		}
	})

	t.Run("seed: Clusternet kinds print the seed's columns", func(t *testing.T) {
		out := mustClusternet(t, parent, "get", "subs", "-A")
		if diff := cmp.Diff([]string{"NAMESPACE", "NAME", "AGE"}, header(out)); diff != "" {
			t.Errorf("get subs -A header (-want +got):\n%s", diff)
		}
		if got := column(out, "NAME"); !slices.Contains(got, "app-demo") {
			t.Errorf("get subs -A: %s", out)
		}
		out = mustClusternet(t, parent, "get", "chart")
		if diff := cmp.Diff([]string{"NAME", "CHART", "VERSION", "REPO", "STATUS", "AGE"}, header(out)); diff != "" {
			t.Errorf("get chart header (-want +got):\n%s", diff)
		}
		if row := e2eutil.Table(out)[1]; !cmp.Equal(row[:4], []string{"mysql", "mysql", "8.6.2", "https://charts.bitnami.com/bitnami"}) {
			t.Errorf("get chart row = %q", row)
		}
		out = mustClusternet(t, parent, "get", "mcls", "-A")
		if diff := cmp.Diff([]string{"NAMESPACE", "NAME", "CLUSTER ID", "SYNC MODE", "KUBERNETES", "READYZ", "AGE"}, header(out)); diff != "" {
			t.Errorf("get mcls -A header (-want +got):\n%s", diff)
		}
		if got := column(out, "CLUSTER ID"); !slices.Contains(got, child1.ID) || !slices.Contains(got, child2.ID) {
			t.Errorf("get mcls -A: %s", out)
		}

		// A Description and a HelmRelease of our own, in a namespace no agent
		// or controller deploys from: what is checked is the plugin's output.
		e2eutil.MustKubectl(t, parent, `apiVersion: v1
kind: Namespace
metadata: {name: cli-e2e}
---
apiVersion: apps.clusternet.io/v1alpha1
kind: Description
metadata: {name: app-demo-generic, namespace: cli-e2e}
spec:
  deployer: Generic
  raw: [{apiVersion: v1, kind: ConfigMap, metadata: {name: x, namespace: default}}]
---
apiVersion: apps.clusternet.io/v1alpha1
kind: HelmRelease
metadata: {name: helm-demo-mysql, namespace: cli-e2e}
spec: {repo: "https://charts.bitnami.com/bitnami", chart: mysql, version: 8.6.2, targetNamespace: abc}
`, "apply", "-f", "-")
		out = mustClusternet(t, parent, "get", "desc", "-A")
		if diff := cmp.Diff([]string{"NAMESPACE", "NAME", "DEPLOYER", "STATUS", "AGE"}, header(out)); diff != "" {
			t.Errorf("get desc -A header (-want +got):\n%s", diff)
		}
		if got := column(out, "NAME"); !slices.Contains(got, "app-demo-generic") {
			t.Errorf("get desc -A: %s", out)
		}
		out = mustClusternet(t, parent, "get", "hr", "-n", "cli-e2e")
		if diff := cmp.Diff([]string{"NAME", "CHART", "VERSION", "REPO", "STATUS", "AGE"}, header(out)); diff != "" {
			t.Errorf("get hr header (-want +got):\n%s", diff)
		}
		if row := e2eutil.Table(out)[1]; !cmp.Equal(row[:4], []string{"helm-demo-mysql", "mysql", "8.6.2", "https://charts.bitnami.com/bitnami"}) {
			t.Errorf("get hr row = %q", row)
		}
		out = mustClusternet(t, parent, "describe", "desc", "app-demo-generic", "-n", "cli-e2e")
		if !strings.Contains(out, "Deployer:  Generic") {
			t.Errorf("describe desc:\n%s", out)
		}
	})

	t.Run("--cluster runs kubectl on one child", func(t *testing.T) {
		if got := mustClusternet(t, parent, "--cluster", child1.Name, "get", "nodes", "-o", "name"); strings.TrimSpace(got) != "node/child1-node-0" {
			t.Errorf("get nodes on child1 = %q", got)
		}
		if got := mustClusternet(t, parent, "get", "nodes", "-o", "name", "--cluster-id", child2.ID); strings.TrimSpace(got) != "node/child2-node-0" {
			t.Errorf("get nodes on child2 by id = %q", got)
		}
		if got := mustClusternet(t, parent, "--cluster", child1.Name, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"); got != "kubernetes-admin" {
			t.Errorf("the child sees %q, want the parent's user impersonated", got)
		}
		e2eutil.MustKubectl(t, child1.Cluster, "", "run", "web", "--image=nginx", "-n", "default")
		e2eutil.MustKubectl(t, child1.Cluster, "", "wait", "pod/web", "-n", "default", "--for=jsonpath={.status.phase}=Running", "--timeout=60s")
		if out := mustClusternet(t, parent, "--cluster", child1.Name, "logs", "web", "-n", "default"); !strings.Contains(out, "testbed container started") {
			t.Errorf("logs = %q", out)
		}
		if out := mustClusternet(t, parent, "--cluster", child1.Name, "exec", "web", "-n", "default", "--", "sh", "-c", "echo $TESTBED_CLUSTER"); strings.TrimSpace(out) != "child1" {
			t.Errorf("exec = %q", out)
		}
		// Pass-through: the child's own admin certificate decides in the child.
		out := mustClusternet(t, parent, "--cluster", child2.ID, "--child-kubeconfig", child2.Kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
		if out != "kubernetes-admin" {
			t.Errorf("whoami with the child's certificate = %q", out)
		}
		_, errOut, err := clusternet(t, parent, "", nil, "--cluster", "nope", "get", "pods")
		if err == nil || !strings.Contains(errOut, `cluster "nope" not found`) || !strings.Contains(errOut, child1.Name) {
			t.Errorf("unknown cluster: err=%v %s", err, errOut)
		}
	})

	t.Run("kubectl completes plugin commands through kubectl_complete-clusternet", func(t *testing.T) {
		dir := t.TempDir()
		script, err := os.ReadFile(filepath.Join(root, "cmd", "kubectl-clusternet", "kubectl_complete-clusternet"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "kubectl_complete-clusternet"), script, 0o755); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := parent.Kubectl(ctx, "__complete", "clusternet", "--cluster", "")
		cmd.Env = append(cmd.Env, "PATH="+dir+string(os.PathListSeparator)+e2eutil.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), child1.Name+"\n") || !strings.Contains(string(out), child2.Name+"\n") {
			t.Errorf("completion of --cluster = %q, %v", out, err)
		}
		cmd = parent.Kubectl(ctx, "__complete", "clusternet", "get", "deploy", "-n", "foo", "")
		cmd.Env = append(cmd.Env, "PATH="+dir+string(os.PathListSeparator)+e2eutil.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
		if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "my-nginx\n") {
			t.Errorf("completion of template names = %q, %v", out, err)
		}
	})

	t.Run("kubeconfig works with plain kubectl", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "child2.kubeconfig")
		mustClusternet(t, parent, "kubeconfig", "--cluster", child2.Name, "-o", path)
		out, errOut, err := e2eutil.Kubectl(t, parent, "", "--kubeconfig", path, "get", "nodes", "-o", "name")
		if err != nil || strings.TrimSpace(out) != "node/child2-node-0" {
			t.Errorf("plain kubectl with the written kubeconfig: %q %v %s", out, err, errOut)
		}
	})

	t.Run("fan-out get prints a CLUSTER column", func(t *testing.T) {
		out := mustClusternet(t, parent, "get", "nodes", "--clusters", "all")
		if h := header(out); len(h) < 2 || h[0] != "CLUSTER" || h[1] != "NAME" {
			t.Errorf("header = %q", h)
		}
		got := column(out, "CLUSTER")
		slices.Sort(got)
		want := []string{child1.Name, child2.Name}
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("clusters (-want +got):\n%s\n%s", diff, out)
		}
		out = mustClusternet(t, parent, "get", "pods", "-A", "--clusters", child1.Name+","+child2.ID, "-o", "name")
		if !strings.Contains(out, child1.Name+" pod/web\n") {
			t.Errorf("-o name: %s", out)
		}
	})

	t.Run("client-go example stores templates through the shadow API", func(t *testing.T) {
		shadowServed(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "run", "./examples/client-go", "--kubeconfig", parent.Kubeconfig)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "deployment.apps/hello template scaled to 3") || !strings.Contains(string(out), "templates deleted") {
			t.Fatalf("go run ./examples/client-go: %v\n%s", err, out)
		}
		if _, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "ns", "client-go-demo"); err == nil || !strings.Contains(errOut, "NotFound") {
			t.Errorf("the example's namespace exists in the parent: %v %s", err, errOut)
		}
	})

	t.Run("delete templates", func(t *testing.T) {
		shadowServed(t)
		out := mustClusternet(t, parent, "delete", "svc", "my-nginx-svc", "-n", "foo", "--wait")
		if !strings.Contains(out, `service "my-nginx-svc" deleted`) {
			t.Errorf("delete = %q", out)
		}
		out, errOut, err := clusternet(t, parent, "", nil, "get", "svc", "-n", "foo")
		if err != nil || out != "" || strings.TrimSpace(errOut) != "No resources found in foo namespace." {
			t.Errorf("get svc after delete: %q %q %v", out, errOut, err)
		}
		out = mustClusternet(t, parent, "delete", "-f", examples, "--ignore-not-found")
		for _, want := range []string{`helmchart.apps.clusternet.io "mysql" deleted`, `deployment.apps "my-nginx" deleted`, `subscription.apps.clusternet.io "app-demo" deleted`} {
			if !strings.Contains(out, want) {
				t.Errorf("delete -f lacks %q:\n%s", want, out)
			}
		}
	})
}

func exitCode(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	default:
		return -1
	}
}
