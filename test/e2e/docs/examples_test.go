package docs

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	certutil "k8s.io/client-go/util/cert"
	"sigs.k8s.io/yaml"

	"github.com/clusternet/clusternet/pkg/cli"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// example is one command line of a command's Example, continuation lines
// joined.
type example struct {
	command string // the cobra command path, "kubectl clusternet get"
	line    string
}

// commandExamples lists the example command lines of root and every command
// under it, in the order of the help tree, and the commands whose examples
// need more than local-up (cli.AnnotationExamplesNeed), with what they need.
func commandExamples(root *cobra.Command) (examples []example, needs map[string]string) {
	needs = map[string]string{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if need := c.Annotations[cli.AnnotationExamplesNeed]; need != "" {
			needs[c.CommandPath()] = need
		} else {
			for _, line := range exampleLines(c.Example) {
				examples = append(examples, example{command: c.CommandPath(), line: line})
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return examples, needs
}

// exampleLines are the command lines of an Example text: not comments, with
// lines ending in a backslash joined to the next.
func exampleLines(text string) []string {
	var lines []string
	var cur strings.Builder
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if cur.Len() == 0 && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(l, `\`); ok {
			cur.WriteString(cont)
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	return lines
}

// sampleClusters are the cluster names and ids kubectl clusternet's examples
// are written with; each stands for one of local-up's clusters, whose names
// and ids are generated: {cluster index, name or id}.
var sampleClusters = map[string]struct {
	index int
	field string
}{
	"clusternet-cluster-dzqkw":             {0, "name"},
	"clusternet-cluster-5krl7":             {1, "name"},
	"dc91021d-2361-4f6d-a404-7c33b9e01118": {1, "id"},
}

// streaming matches examples that follow a stream until interrupted: they
// pass when they are still running, without an error, after a few seconds.
var streaming = regexp.MustCompile(`\s(-f|--follow|-w|--watch)(\s|$)`)

// TestCLIExamples runs every example command line of `kubectl clusternet
// <command> --help`, as a user would paste it, with the real plugin and
// kubectl against a local-up parent, in a folder holding the files the
// examples name (testdata/examples), after storing the templates they name.
// Commands whose examples need more than local-up carry the annotation
// cli.AnnotationExamplesNeed and are skipped with what they need logged.
func TestCLIExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: needs real control planes (run without -short)")
	}
	examples, needs := commandExamples(cli.NewCmdClusternet(genericiooptions.NewTestIOStreamsDiscard()))
	for cmd, need := range needs {
		t.Logf("skipping the examples of %s: they need %s", cmd, need)
	}
	tbDir := testbedDir(t)
	work := examplesWorkspace(t, tbDir)
	kubectl := kubectlPath(t)
	env := append(withoutVars(os.Environ(), "KUBECONFIG", "PATH", "HOME", "EDITOR", "KUBE_EDITOR"),
		"KUBECONFIG="+filepath.Join(tbDir, "parent", "admin.kubeconfig"),
		"PATH="+strings.Join([]string{filepath.Dir(kubectl), e2eutil.BinDir, os.Getenv("PATH")}, string(os.PathListSeparator)),
		// `~/.kube/child-config` of the kubeconfig example is a child's own kubeconfig.
		"HOME="+work,
		// edit and create --edit open an editor: one that changes nothing.
		"EDITOR=true",
	)
	sh := func(timeout time.Duration, stdin, line string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-c", line)
		cmd.Dir, cmd.Env, cmd.Stdin = work, env, strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			return string(out), context.DeadlineExceeded
		}
		return string(out), err
	}
	mustIn := func(stdin, line string) string {
		t.Helper()
		out, err := sh(2*time.Minute, stdin, line)
		if err != nil {
			t.Fatalf("$ %s: %v\n%s", line, err, out)
		}
		return out
	}
	must := func(line string) string {
		t.Helper()
		return mustIn("", line)
	}
	must("kubectl clusternet apply -f templates.yaml && kubectl apply -f children.yaml")
	// A local-up of one's own (-doctest.testbed) gets its parent back.
	t.Cleanup(func() {
		must("kubectl delete -f children.yaml --ignore-not-found && kubectl clusternet delete -f templates.yaml --ignore-not-found")
	})
	names := strings.Fields(must(`kubectl get mcls -A -o jsonpath='{range .items[*]}{.metadata.name}{" "}{end}'`))
	ids := strings.Fields(must(`kubectl get mcls -A -o jsonpath='{range .items[*]}{.spec.clusterId}{" "}{end}'`))
	if len(names) < 2 || len(ids) < 2 {
		t.Fatalf("the examples name two clusters; the parent has %v", names)
	}
	// The children run the pod the logs examples read.
	must(`kubectl wait --for=condition=Ready subscription/cli-examples --timeout=2m`)
	baseline := outputLines(must(templatesNow))
	docs := templateDocs(t, filepath.Join(work, "templates.yaml"))

	for _, ex := range examples {
		line := ex.line
		for sample, c := range sampleClusters {
			local := names[c.index]
			if c.field == "id" {
				local = ids[c.index]
			}
			line = strings.ReplaceAll(line, sample, local)
		}
		// Each example starts from the same templates: what an earlier one
		// deleted is back, what it created is gone (so `create` can run
		// again), and what `create` examples read from files is absent.
		resetTemplates(t, mustIn, baseline, docs)
		if ex.command == "kubectl clusternet create" {
			must("kubectl clusternet delete -f pod.json -f registry.yaml --ignore-not-found >/dev/null")
		}
		timeout := time.Minute
		if streaming.MatchString(line) {
			timeout = 5 * time.Second
		}
		start := time.Now()
		out, err := sh(timeout, "y\n", line)
		var exit *exec.ExitError
		switch {
		case errors.Is(err, context.DeadlineExceeded) && timeout < time.Minute && !strings.Contains(out, "error"):
			// A stream still flowing.
		case err != nil && ex.command == "kubectl clusternet diff" && errors.As(err, &exit) && exit.ExitCode() == 1:
			// kubectl diff exits 1 when it found differences.
		case err != nil:
			t.Errorf("%s: $ %s: %v\n%s", ex.command, ex.line, err, out)
		}
		t.Logf("$ %s (%s)", ex.line, time.Since(start).Round(10*time.Millisecond))
	}
}

// templatesNow lists every template of the parent, one "kind namespace name"
// a line, from the Manifests that hold them.
const templatesNow = `kubectl get manifests -n clusternet-reserved -o jsonpath='{range .items[*]}{.template.apiVersion} {.template.kind} {.template.metadata.namespace} {.template.metadata.name}{"\n"}{end}'`

// resetTemplates makes the parent's templates those of baseline again:
// it stores again those of templates.yaml that are missing (an example
// deleted them), and deletes those that are not in baseline (an example
// created them). Storing all of templates.yaml whenever one is missing took
// a third of the test's time.
func resetTemplates(t *testing.T, mustIn func(stdin, line string) string, baseline []string, docs map[string]string) {
	t.Helper()
	now := outputLines(mustIn("", templatesNow))
	var missing []string
	for _, l := range baseline {
		if slices.Contains(now, l) {
			continue
		}
		doc, ok := docs[templateKey(strings.Fields(l))]
		if !ok {
			t.Fatalf("template %q is in none of templates.yaml's documents", l)
		}
		missing = append(missing, doc)
	}
	if len(missing) > 0 {
		mustIn(strings.Join(missing, "\n---\n"), "kubectl clusternet apply -f - >/dev/null")
	}
	for _, l := range now {
		f := strings.Fields(l)
		if slices.Contains(baseline, l) || len(f) < 3 {
			continue
		}
		apiVersion, kind, name := f[0], f[1], f[len(f)-1]
		ns := ""
		if len(f) == 4 {
			ns = " -n " + f[2]
		}
		group := ""
		if g, _, ok := strings.Cut(apiVersion, "/"); ok {
			group = "." + g
		}
		mustIn("", "kubectl clusternet delete "+strings.ToLower(kind)+group+" "+name+ns+" --ignore-not-found >/dev/null")
	}
}

// templateKey names a template by its apiVersion, kind and name: the
// documents of templates.yaml share one namespace.
func templateKey(fields []string) string {
	if len(fields) < 3 {
		return strings.Join(fields, " ")
	}
	return fields[0] + " " + fields[1] + " " + fields[len(fields)-1]
}

// templateDocs are the documents of the templates file at path, by templateKey.
func templateDocs(t *testing.T, path string) map[string]string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, doc := range strings.Split(string(src), "\n---\n") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if u.GetKind() == "" {
			continue
		}
		if u.GetNamespace() != "" {
			t.Fatalf("%s: %s %s names namespace %s: its templates share the default one", path, u.GetKind(), u.GetName(), u.GetNamespace())
		}
		docs[templateKey([]string{u.GetAPIVersion(), u.GetKind(), u.GetName()})] = doc
	}
	return docs
}

// examplesWorkspace is a copy of testdata/examples, plus what the examples
// name that depends on the testbed: examples/applications (local-up's copy
// of upstream Clusternet's app-demo, the files it applied), ~/.kube/child-config
// (a child's own kubeconfig) and a TLS certificate and key.
func examplesWorkspace(t *testing.T, tbDir string) string {
	t.Helper()
	work, err := os.MkdirTemp("", "clusternet-examples-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(work) })
	if err := os.CopyFS(work, os.DirFS(filepath.Join(testbed.RepoRoot(), "test", "e2e", "docs", "testdata", "examples"))); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(work, "examples"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(tbDir, "app-demo", "applications"), filepath.Join(work, "examples", "applications")); err != nil {
		t.Fatal(err)
	}
	child, err := os.ReadFile(filepath.Join(tbDir, "child1", "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(work, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, ".kube", "child-config"), child, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key, err := certutil.GenerateSelfSignedCertKey("example.com", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"tls.crt": cert, "tls.key": key} {
		if err := os.WriteFile(filepath.Join(work, "path", "to", name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return work
}
