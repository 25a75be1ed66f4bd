// Package helm is the end-to-end test of Helm across clusters: HelmCharts
// resolved in an http chart repository and an OCI registry served on
// loopback, Helm Descriptions turned into HelmReleases, installed, upgraded
// and uninstalled in a child the hub pushes to (Dual) and in one whose agent
// pulls (Pull), and the seed's Subscription flow.
package helm

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/helmrepo"
	"github.com/clusternet/clusternet/test/testbed"
)

const (
	// targetNamespace is where the releases go in each child (the seed's `helm ls -n abc`).
	targetNamespace = "abc"
	wait            = 3 * time.Minute
)

var (
	kubectl     = e2eutil.Kubectl
	mustKubectl = e2eutil.MustKubectl
	waitFor     = e2eutil.WaitFor
	table       = e2eutil.Table
)

// withoutAge drops the AGE column kubectl prints last.
func withoutAge(rows [][]string) [][]string {
	out := make([][]string, 0, len(rows))
	for _, r := range rows {
		if len(r) > 0 {
			r = r[:len(r)-1]
		}
		out = append(out, r)
	}
	return out
}

// waitTable waits until kubectl args prints want (AGE left out).
func waitTable(t *testing.T, c *testbed.Cluster, what string, want [][]string, args ...string) {
	t.Helper()
	waitFor(t, wait, what, func(context.Context) (bool, string) {
		out, errOut, err := kubectl(t, c, "", args...)
		if err != nil {
			return false, errOut
		}
		diff := cmp.Diff(want, withoutAge(table(out)))
		return diff == "", "(-want +got)\n" + diff
	})
}

func helmChartYAML(name, repo, chart, version string, extra ...string) string {
	return fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: HelmChart
metadata:
  name: %s
  namespace: default
spec:
  repo: %s
  chart: %s
  version: %s
  targetNamespace: %s
%s`, name, repo, chart, version, targetNamespace, strings.Join(append(extra, ""), "\n"))
}

// subscriptionOf feeds HelmChart default/<chart> to the clusters of children.
func subscriptionOf(name, chart string, children ...*e2eutil.Child) string {
	var ids []string
	for _, c := range children {
		ids = append(ids, c.ID)
	}
	return fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata:
  name: %s
  namespace: default
spec:
  subscribers:
    - clusterAffinity:
        matchExpressions:
          - key: clusters.clusternet.io/cluster-id
            operator: In
            values: [%s]
  feeds:
    - apiVersion: apps.clusternet.io/v1alpha1
      kind: HelmChart
      name: %s
      namespace: default
`, name, strings.Join(ids, ", "), chart)
}

// waitDescriptionsSuccess waits until the Helm Description of sub (those
// labelled with Subscription name sub) in each of children is Success.
func (s *suite) waitDescriptionsSuccess(t *testing.T, sub string, children ...*e2eutil.Child) {
	t.Helper()
	var namespaces []string
	for _, c := range children {
		namespaces = append(namespaces, c.Namespace)
	}
	want := [][]string{{"NAMESPACE", "NAME", "DEPLOYER", "STATUS"}}
	for _, ns := range slices.Sorted(slices.Values(namespaces)) {
		want = append(want, []string{ns, sub + "-helm", "Helm", "Success"})
	}
	waitTable(t, s.parent, "the Helm Descriptions of "+sub+" Success", want,
		"get", "desc", "-A", "-l", appsv1alpha1.LabelSubscriptionName+"="+sub, "--sort-by=.metadata.namespace")
}

type suite struct {
	t *testing.T
	// attacker is a repository that must never be asked: it records
	// every request with the Basic auth it carried.
	attacker    *recorder
	parent      *testbed.Cluster
	cs          versioned.Interface
	push, pull  *e2eutil.Child
	repo        *helmrepo.Repo
	registry    *helmrepo.Registry
	unreachable string
}

// newSuite starts a parent and two children registered with it, the hub
// pushing to the first (push: Dual, AppPusher on by default) and the
// second's agent pulling (pull); an http chart repository with mysql 8.6.2
// and 8.6.3; and the attacker's repository.
func newSuite(t *testing.T) *suite {
	tb := testbed.ForTest(t, 2)
	s := &suite{t: t, parent: tb.Parent}
	e2eutil.SetUpParent(t, s.parent)
	kids := e2eutil.RegisterChildren(t, s.parent, tb.Children, func(i int) []string {
		return [][]string{{"--cluster-sync-mode=Dual"}, {"--cluster-sync-mode=Pull"}}[i]
	})
	s.push, s.pull = kids[0], kids[1]
	s.cs = e2eutil.ClusternetClient(t, s.parent)

	s.repo = helmrepo.NewRepo(t)
	s.repo.Add(t, helmrepo.DemoChart("mysql", "8.6.2"))
	s.repo.Add(t, helmrepo.DemoChart("mysql", "8.6.3"))
	s.attacker = newRecorder(t)
	return s
}

func TestHelm(t *testing.T) {
	s := newSuite(t)
	s.registry = helmrepo.NewRegistry(t)
	s.registry.Push(t, helmrepo.DemoChart("redis", "17.0.0"))
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	s.unreachable = dead.URL + "/charts"
	// A Secret the hub (cluster-admin) could read and nobody else should.
	mustKubectl(t, s.parent, "", "create", "secret", "generic", "registry-creds", "-n", "kube-system",
		"--type=kubernetes.io/basic-auth", "--from-literal=username=admin", "--from-literal=password=parent-secret")

	mustKubectl(t, s.parent, strings.Join([]string{
		helmChartYAML("mysql", s.repo.URL, "mysql", "8.6.2"),
		helmChartYAML("redis", s.registry.URL, "redis", "17.0.0", "  plainHTTP: true"),
		helmChartYAML("missing", s.repo.URL, "mysql", "9.9.9"),
		helmChartYAML("unreachable", s.unreachable, "mysql", "1.0.0"),
	}, "---\n"), "apply", "-f", "-")

	t.Run("charts are Found or NotFound with the reason", s.charts)
	t.Run("a pull Secret of another namespace is refused", s.foreignPullSecret)
	t.Run("Helm Descriptions deploy in both clusters", s.deploy)
	t.Run("the hub ignores HelmReleases it did not make", s.forgedHelmRelease)
	t.Run("HelmCharts of one name from two namespaces fail the Description", s.nameClash)
	t.Run("a version bump upgrades every cluster", s.upgrade)
	t.Run("values for one cluster change only its release", s.perClusterValues)
	t.Run("a failing install reports Helm's message", s.failedInstall)
	t.Run("an unknown version fails the Description with the reason", s.unknownVersion)
	t.Run("deleting a Description uninstalls", s.uninstall)
	t.Run("a Dual cluster with AppPusher off is installed by its agent", s.appPusherOff)
	t.Run("the seed's Subscription flow", s.subscription)
	t.Run("a private chart through a Subscription uses a copy of its pull Secret", s.privateChart)
}

func (s *suite) charts(t *testing.T) {
	want := [][]string{
		{"NAME", "CHART", "VERSION", "REPO", "STATUS"},
		{"missing", "mysql", "9.9.9", s.repo.URL, "NotFound"},
		{"mysql", "mysql", "8.6.2", s.repo.URL, "Found"},
		{"redis", "redis", "17.0.0", s.registry.URL, "Found"},
		{"unreachable", "mysql", "1.0.0", s.unreachable, "NotFound"},
	}
	waitTable(t, s.parent, "kubectl get chart", want, "get", "chart")

	// The seed's command, through the plugin.
	out, errOut, err := e2eutil.Plugin(t, s.parent, "get", "chart")
	if err != nil {
		t.Errorf("kubectl clusternet get chart: %v\n%s", err, errOut)
	} else if diff := cmp.Diff(want, withoutAge(table(out))); diff != "" {
		t.Errorf("kubectl clusternet get chart (-want +got):\n%s", diff)
	}

	reason := func(name string) string {
		return mustKubectl(t, s.parent, "", "get", "chart", name, "-o", "jsonpath={.status.reason}")
	}
	wantMissing := fmt.Sprintf(`chart "mysql" has no version "9.9.9" in %q; newest available: 8.6.3, 8.6.2: set spec.version to one of them`, s.repo.URL)
	if got := reason("missing"); got != wantMissing {
		t.Errorf("missing: reason %q, want %q", got, wantMissing)
	}
	wantUnreachable := fmt.Sprintf(`chart repository %q cannot be reached: `, s.unreachable)
	if got := reason("unreachable"); !strings.HasPrefix(got, wantUnreachable) || !strings.Contains(got, "connection refused") || !strings.HasSuffix(got, "check spec.repo and that the repository is up (it is checked again periodically)") {
		t.Errorf("unreachable: reason %q", got)
	}
	events := e2eutil.AwaitKubectl(t, s.parent, "get", "events", "-n", "default", "--field-selector", "involvedObject.name=missing,reason=ChartNotFound", "-o", "jsonpath={.items[*].message}")
	if !strings.Contains(events, wantMissing) {
		t.Errorf("no ChartNotFound event with the reason; events: %q", events)
	}
}

func (s *suite) createDescription(t *testing.T, d *appsv1alpha1.Description) {
	t.Helper()
	if _, err := s.cs.AppsV1alpha1().Descriptions(d.Namespace).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// release is one Helm release in a child as `helm ls` lists it.
type release struct {
	Name, Chart, Status string
	Revision            int
}

func (s *suite) helmLs(t *testing.T, c *e2eutil.Child) []release {
	t.Helper()
	var out []release
	for _, r := range e2eutil.HelmReleases(t, c.Cluster, targetNamespace) {
		out = append(out, release{Name: r.Name, Chart: r.Chart.Metadata.Name + "-" + r.Chart.Metadata.Version, Status: r.Info.Status.String(), Revision: r.Version})
	}
	slices.SortFunc(out, func(a, b release) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (s *suite) waitReleases(t *testing.T, c *e2eutil.Child, want []release) {
	t.Helper()
	waitFor(t, wait, "helm ls -n "+targetNamespace+" in "+c.Cluster.Name, func(context.Context) (bool, string) {
		diff := cmp.Diff(want, s.helmLs(t, c))
		return diff == "", "(-want +got)\n" + diff
	})
}

func (s *suite) configMap(t *testing.T, c *e2eutil.Child, name string) string {
	t.Helper()
	return mustKubectl(t, c.Cluster, "", "get", "configmap", "-n", targetNamespace, name, "-o", "jsonpath={.data.chartVersion} {.data.message}")
}

func (s *suite) deploy(t *testing.T) {
	for _, c := range []*e2eutil.Child{s.push, s.pull} {
		s.createDescription(t, e2eutil.HelmDescription(c, "helm-demo", []string{"mysql", "redis"}))
	}
	s.waitDescriptionsSuccess(t, "helm-demo", s.push, s.pull)

	for _, c := range []*e2eutil.Child{s.push, s.pull} {
		// The seed's columns: NAME CHART VERSION REPO STATUS AGE.
		got := withoutAge(table(mustKubectl(t, s.parent, "", "get", "hr", "-n", c.Namespace)))
		want := [][]string{
			{"NAME", "CHART", "VERSION", "REPO", "STATUS"},
			{"helm-demo-mysql", "mysql", "8.6.2", s.repo.URL, "deployed"},
			{"helm-demo-redis", "redis", "17.0.0", s.registry.URL, "deployed"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("kubectl get hr -n %s (-want +got):\n%s", c.Namespace, diff)
		}
		// Helm in the child sees them, stored where `helm ls` reads them.
		if diff := cmp.Diff([]release{
			{Name: "helm-demo-mysql", Chart: "mysql-8.6.2", Status: "deployed", Revision: 1},
			{Name: "helm-demo-redis", Chart: "redis-17.0.0", Status: "deployed", Revision: 1},
		}, s.helmLs(t, c)); diff != "" {
			t.Errorf("helm ls -n %s in %s (-want +got):\n%s", targetNamespace, c.Cluster.Name, diff)
		}
		mustKubectl(t, c.Cluster, "", "get", "secret", "-n", targetNamespace, "sh.helm.release.v1.helm-demo-mysql.v1")
		if got := s.configMap(t, c, "helm-demo-mysql-config"); got != "8.6.2 hello" {
			t.Errorf("ConfigMap in %s: %q", c.Cluster.Name, got)
		}
		// The chart's Deployment runs (kwok's pods).
		mustKubectl(t, c.Cluster, "", "rollout", "status", "-n", targetNamespace, "deployment/helm-demo-mysql", "--timeout=60s")
	}

	// Who installed: the hub through the tunnel for the Dual cluster, the
	// agent for the Pull cluster.
	for c, who := range map[*e2eutil.Child]string{s.push: "clusternet-hub", s.pull: "clusternet-agent"} {
		got := e2eutil.AwaitKubectl(t, s.parent, "get", "events", "-n", c.Namespace,
			"--field-selector", "involvedObject.kind=HelmRelease,involvedObject.name=helm-demo-mysql,reason=Installed",
			"-o", "jsonpath={range .items[*]}{.source.component}: {.message}{end}")
		want := fmt.Sprintf("%s: Installed chart mysql version 8.6.2 as release %s/helm-demo-mysql revision 1 by %s", who, targetNamespace, who)
		if got != want {
			t.Errorf("Installed event in %s: %q, want %q", c.Namespace, got, want)
		}
		got = e2eutil.AwaitKubectl(t, s.parent, "get", "events", "-n", c.Namespace,
			"--field-selector", "involvedObject.kind=Description,involvedObject.name=helm-demo-helm,reason=SuccessfullyDeployed",
			"-o", "jsonpath={range .items[*]}{.source.component}: {.message}{end}")
		want = fmt.Sprintf("clusternet-hub: Description %s/helm-demo-helm is deployed successfully", c.Namespace)
		if got != want {
			t.Errorf("SuccessfullyDeployed event in %s: %q, want %q", c.Namespace, got, want)
		}
	}
}

func (s *suite) hrStatus(t *testing.T, ns, name string) string {
	t.Helper()
	out, _, err := kubectl(t, s.parent, "", "get", "hr", "-n", ns, name, "-o", "jsonpath={.spec.version} {.status.phase} {.status.version}")
	if err != nil {
		return err.Error()
	}
	return out
}

func (s *suite) upgrade(t *testing.T) {
	mustKubectl(t, s.parent, "", "patch", "chart", "mysql", "--type=merge", "-p", `{"spec":{"version":"8.6.3"}}`)
	for _, c := range []*e2eutil.Child{s.push, s.pull} {
		waitFor(t, wait, "HelmRelease upgraded in "+c.Namespace, func(context.Context) (bool, string) {
			got := s.hrStatus(t, c.Namespace, "helm-demo-mysql")
			return got == "8.6.3 deployed 2", got
		})
		s.waitReleases(t, c, []release{
			{Name: "helm-demo-mysql", Chart: "mysql-8.6.3", Status: "deployed", Revision: 2},
			{Name: "helm-demo-redis", Chart: "redis-17.0.0", Status: "deployed", Revision: 1},
		})
		if got := s.configMap(t, c, "helm-demo-mysql-config"); got != "8.6.3 hello" {
			t.Errorf("ConfigMap in %s: %q", c.Cluster.Name, got)
		}
	}
	waitFor(t, wait, "Descriptions Success again", func(context.Context) (bool, string) {
		out := mustKubectl(t, s.parent, "", "get", "desc", "-A", "-l", appsv1alpha1.LabelSubscriptionName+"=helm-demo", "-o", "jsonpath={.items[*].status.phase}")
		return out == "Success Success", out
	})
}

func (s *suite) perClusterValues(t *testing.T) {
	// As a Localization of type Helm renders it: other values for the pull
	// cluster's first chart only.
	d, err := s.cs.AppsV1alpha1().Descriptions(s.pull.Namespace).Get(context.Background(), "helm-demo-helm", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.ChartRaw = [][]byte{[]byte(`{"message":"only in the pull cluster"}`), []byte(`{}`)}
	if _, err := s.cs.AppsV1alpha1().Descriptions(s.pull.Namespace).Update(context.Background(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitReleases(t, s.pull, []release{
		{Name: "helm-demo-mysql", Chart: "mysql-8.6.3", Status: "deployed", Revision: 3},
		{Name: "helm-demo-redis", Chart: "redis-17.0.0", Status: "deployed", Revision: 1},
	})
	if got := s.configMap(t, s.pull, "helm-demo-mysql-config"); got != "8.6.3 only in the pull cluster" {
		t.Errorf("ConfigMap in the pull cluster: %q", got)
	}
	// The other cluster is untouched.
	if diff := cmp.Diff([]release{
		{Name: "helm-demo-mysql", Chart: "mysql-8.6.3", Status: "deployed", Revision: 2},
		{Name: "helm-demo-redis", Chart: "redis-17.0.0", Status: "deployed", Revision: 1},
	}, s.helmLs(t, s.push)); diff != "" {
		t.Errorf("helm ls in the push cluster (-want +got):\n%s", diff)
	}
	if got := s.configMap(t, s.push, "helm-demo-mysql-config"); got != "8.6.3 hello" {
		t.Errorf("ConfigMap in the push cluster: %q", got)
	}
}

func (s *suite) descStatus(t *testing.T, ns, name string) (string, string) {
	t.Helper()
	out, _, err := kubectl(t, s.parent, "", "get", "desc", "-n", ns, name, "-o", "jsonpath={.status.phase}|{.status.reason}")
	if err != nil {
		return "", err.Error()
	}
	phase, reason, _ := strings.Cut(out, "|")
	return phase, reason
}

func (s *suite) deleteDescription(t *testing.T, ns, name string) {
	t.Helper()
	mustKubectl(t, s.parent, "", "delete", "desc", "-n", ns, name, "--wait=false")
	waitFor(t, wait, "Description "+ns+"/"+name+" gone", func(ctx context.Context) (bool, string) {
		_, err := s.cs.AppsV1alpha1().Descriptions(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

func (s *suite) failedInstall(t *testing.T) {
	// An object name the apiserver rejects: Helm records a failed release.
	s.createDescription(t, e2eutil.HelmDescription(s.pull, "broken", []string{"mysql"}, `{"configName":"Invalid_Name"}`))
	var reason string
	waitFor(t, wait, "Description broken-helm Failure", func(context.Context) (bool, string) {
		var phase string
		phase, reason = s.descStatus(t, s.pull.Namespace, "broken-helm")
		return phase == "Failure", phase + ": " + reason
	})
	wantStart := fmt.Sprintf("HelmRelease broken-mysql: release %s/broken-mysql failed: ", targetNamespace)
	if !strings.HasPrefix(reason, wantStart) || !strings.Contains(reason, `ConfigMap "Invalid_Name" is invalid`) {
		t.Errorf("reason %q, want Helm's message after %q", reason, wantStart)
	}
	if got := s.hrStatus(t, s.pull.Namespace, "broken-mysql"); got != "8.6.3 failed 1" {
		t.Errorf("HelmRelease: %q", got)
	}
	events := e2eutil.AwaitKubectl(t, s.parent, "get", "events", "-n", s.pull.Namespace,
		"--field-selector", "involvedObject.name=broken-mysql,reason=InstallFailed", "-o", "jsonpath={.items[*].message}")
	if !strings.Contains(events, `ConfigMap "Invalid_Name" is invalid`) {
		t.Errorf("InstallFailed events: %q", events)
	}
	s.deleteDescription(t, s.pull.Namespace, "broken-helm")
	for _, r := range s.helmLs(t, s.pull) {
		if r.Name == "broken-mysql" {
			t.Errorf("release broken-mysql left after its Description was deleted: %+v", r)
		}
	}
}

func (s *suite) unknownVersion(t *testing.T) {
	s.createDescription(t, e2eutil.HelmDescription(s.push, "unknown", []string{"missing"}))
	want := fmt.Sprintf(`HelmChart default/missing is NotFound: chart "mysql" has no version "9.9.9" in %q; newest available: 8.6.3, 8.6.2: set spec.version to one of them`, s.repo.URL)
	waitFor(t, wait, "Description unknown-helm Failure", func(context.Context) (bool, string) {
		phase, reason := s.descStatus(t, s.push.Namespace, "unknown-helm")
		return phase == "Failure" && reason == want, phase + ": " + reason
	})
	if out := mustKubectl(t, s.parent, "", "get", "hr", "-n", s.push.Namespace, "-o", "name"); strings.Contains(out, "unknown-") {
		t.Errorf("a HelmRelease was made for a chart that is NotFound: %s", out)
	}
	s.deleteDescription(t, s.push.Namespace, "unknown-helm")
}

func (s *suite) uninstall(t *testing.T) {
	for _, c := range []*e2eutil.Child{s.push, s.pull} {
		s.deleteDescription(t, c.Namespace, "helm-demo-helm")
		if out := mustKubectl(t, s.parent, "", "get", "hr", "-n", c.Namespace, "-o", "name"); out != "" {
			t.Errorf("HelmReleases left in %s: %s", c.Namespace, out)
		}
		if rels := s.helmLs(t, c); len(rels) != 0 {
			t.Errorf("releases left in %s: %+v", c.Cluster.Name, rels)
		}
		if out := mustKubectl(t, c.Cluster, "", "get", "secrets,configmaps,deployments", "-n", targetNamespace, "-l", "owner=helm", "-o", "name"); out != "" {
			t.Errorf("release Secrets left in %s: %s", c.Cluster.Name, out)
		}
		if _, _, err := kubectl(t, c.Cluster, "", "get", "configmap", "-n", targetNamespace, "helm-demo-mysql-config"); err == nil {
			t.Errorf("the chart's ConfigMap is left in %s", c.Cluster.Name)
		}
	}
}

func (s *suite) appPusherOff(t *testing.T) {
	// The seed: a cluster whose agent turned AppPusher off works as in
	// Pull mode, whatever its sync mode.
	c := s.push
	args := c.Agent.Args
	s.restartAgent(t, c, "apppusher-off", append(slices.Clone(args), "--feature-gates=AppPusher=false"), "false")
	defer s.restartAgent(t, c, "apppusher-on", args, "true")
	s.createDescription(t, e2eutil.HelmDescription(c, "gated", []string{"redis"}))
	waitFor(t, wait, "Description gated-helm Success", func(context.Context) (bool, string) {
		phase, reason := s.descStatus(t, c.Namespace, "gated-helm")
		return phase == "Success", phase + ": " + reason
	})
	s.waitReleases(t, c, []release{{Name: "gated-redis", Chart: "redis-17.0.0", Status: "deployed", Revision: 1}})
	got := e2eutil.AwaitKubectl(t, s.parent, "get", "events", "-n", c.Namespace,
		"--field-selector", "involvedObject.kind=Description,involvedObject.name=gated-helm,reason=AgentInstalls", "-o", "jsonpath={.items[*].message}")
	want := fmt.Sprintf("Releases of Description %s/gated-helm are installed by the agent of cluster %s (Dual mode with feature gate AppPusher off: the hub does not push to it, it works as in Pull mode)", c.Namespace, c.Name)
	if got != want {
		t.Errorf("AgentInstalls event: %q, want %q", got, want)
	}
	got = e2eutil.AwaitKubectl(t, s.parent, "get", "events", "-n", c.Namespace,
		"--field-selector", "involvedObject.kind=HelmRelease,involvedObject.name=gated-redis,reason=Installed", "-o", "jsonpath={.items[*].source.component}")
	if got != "clusternet-agent" {
		t.Errorf("installed by %q, want clusternet-agent", got)
	}
	s.deleteDescription(t, c.Namespace, "gated-helm")
	if rels := s.helmLs(t, c); len(rels) != 0 {
		t.Errorf("releases left: %+v", rels)
	}
}

// restartAgent stops c's agent and starts it with args, until its
// ManagedCluster reports AppPusher appPusher with the tunnel up.
func (s *suite) restartAgent(t *testing.T, c *e2eutil.Child, suffix string, args []string, appPusher string) {
	t.Helper()
	if err := c.Agent.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Started for the whole test: the agent must outlive this subtest.
	c.Agent = e2eutil.StartBinary(s.t, "agent-"+c.Cluster.Name+"-"+suffix, "agent", args...)
	waitFor(t, wait, "ManagedCluster reports AppPusher "+appPusher, func(context.Context) (bool, string) {
		out := mustKubectl(t, s.parent, "", "get", "mcls", "-n", c.Namespace, "-o", "jsonpath={.items[0].status.appPusher} {.items[0].status.useSocket}")
		return out == appPusher+" true", out
	})
}

func (s *suite) subscription(t *testing.T) {
	mustKubectl(t, s.parent, subscriptionOf("app-demo", "mysql", s.push, s.pull), "apply", "-f", "-")
	s.waitDescriptionsSuccess(t, "app-demo", s.push, s.pull)
	for _, c := range []*e2eutil.Child{s.push, s.pull} {
		got := withoutAge(table(mustKubectl(t, s.parent, "", "get", "hr", "-n", c.Namespace)))
		if diff := cmp.Diff([][]string{
			{"NAME", "CHART", "VERSION", "REPO", "STATUS"},
			{"app-demo-mysql", "mysql", "8.6.3", s.repo.URL, "deployed"},
		}, got); diff != "" {
			t.Errorf("kubectl get hr -n %s (-want +got):\n%s", c.Namespace, diff)
		}
		if diff := cmp.Diff([]release{{Name: "app-demo-mysql", Chart: "mysql-8.6.3", Status: "deployed", Revision: 1}}, s.helmLs(t, c)); diff != "" {
			t.Errorf("helm ls in %s (-want +got):\n%s", c.Cluster.Name, diff)
		}
	}

	// A Localization of type Helm, in the pull cluster's dedicated namespace:
	// other values for that cluster's release only.
	loc := fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: Localization
metadata: {name: mysql-values, namespace: %s}
spec:
  overridePolicy: ApplyNow
  feed: {apiVersion: apps.clusternet.io/v1alpha1, kind: HelmChart, name: mysql, namespace: default}
  overrides:
    - {name: message, type: Helm, value: '{"message": "localized"}'}
`, s.pull.Namespace)
	mustKubectl(t, s.parent, loc, "apply", "-f", "-")
	s.waitReleases(t, s.pull, []release{{Name: "app-demo-mysql", Chart: "mysql-8.6.3", Status: "deployed", Revision: 2}})
	if got := s.configMap(t, s.pull, "app-demo-mysql-config"); got != "8.6.3 localized" {
		t.Errorf("ConfigMap in the pull cluster after the Localization: %q", got)
	}
	if diff := cmp.Diff([]release{{Name: "app-demo-mysql", Chart: "mysql-8.6.3", Status: "deployed", Revision: 1}}, s.helmLs(t, s.push)); diff != "" {
		t.Errorf("the push cluster's release changed with the other cluster's Localization (-want +got):\n%s", diff)
	}
	// Deleting the Localization rolls the values back (a new revision).
	mustKubectl(t, s.parent, "", "delete", "localization", "-n", s.pull.Namespace, "mysql-values")
	s.waitReleases(t, s.pull, []release{{Name: "app-demo-mysql", Chart: "mysql-8.6.3", Status: "deployed", Revision: 3}})
	if got := s.configMap(t, s.pull, "app-demo-mysql-config"); got != "8.6.3 hello" {
		t.Errorf("ConfigMap in the pull cluster after the Localization was deleted: %q", got)
	}

	mustKubectl(t, s.parent, "", "delete", "subs", "-n", "default", "app-demo", "--wait=false")
	for _, c := range []*e2eutil.Child{s.push, s.pull} {
		waitFor(t, wait, "release uninstalled from "+c.Cluster.Name, func(context.Context) (bool, string) {
			rels := s.helmLs(t, c)
			return len(rels) == 0, fmt.Sprint(rels)
		})
	}
	waitFor(t, wait, "Subscription gone", func(ctx context.Context) (bool, string) {
		_, err := s.cs.AppsV1alpha1().Subscriptions("default").Get(ctx, "app-demo", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// recorder is an http server on loopback recording the requests it gets.
type recorder struct {
	URL string
	mu  sync.Mutex
	got []string
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		user, pass, _ := req.BasicAuth()
		r.mu.Lock()
		r.got = append(r.got, fmt.Sprintf("%s %s as %q:%q", req.Method, req.URL.Path, user, pass))
		r.mu.Unlock()
		http.NotFound(w, req)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (s *suite) foreignPullSecret(t *testing.T) {
	mustKubectl(t, s.parent, helmChartYAML("steal", s.attacker.URL, "mysql", "8.6.2",
		"  chartPullSecret:", "    name: registry-creds", "    namespace: kube-system"), "apply", "-f", "-")
	defer mustKubectl(t, s.parent, "", "delete", "chart", "steal")
	want := `NotFound|spec.chartPullSecret.namespace "kube-system" is not the HelmChart's namespace "default": a chart pull Secret is read only from the HelmChart's own namespace: ` +
		`create Secret "registry-creds" in namespace "default" and remove spec.chartPullSecret.namespace`
	waitFor(t, wait, "HelmChart steal NotFound with the reason", func(context.Context) (bool, string) {
		out, errOut, err := kubectl(t, s.parent, "", "get", "chart", "steal", "-o", "jsonpath={.status.phase}|{.status.reason}")
		if err != nil {
			return false, errOut
		}
		return out == want, out
	})
	if got := s.attacker.requests(); len(got) != 0 {
		t.Errorf("the repository of the HelmChart was asked: %v", got)
	}
}

func (s *suite) forgedHelmRelease(t *testing.T) {
	// What the cluster's agent (every verb in its dedicated namespace)
	// could write: a repository of its own, a parent Secret, no owner.
	forged := fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: HelmRelease
metadata:
  name: forged
  namespace: %s
  finalizers: [%s]
spec:
  repo: %s
  chart: mysql
  version: 8.6.2
  targetNamespace: %s
  chartPullSecret:
    name: registry-creds
    namespace: kube-system
`, s.push.Namespace, appsv1alpha1.Finalizer, s.attacker.URL, targetNamespace)
	mustKubectl(t, s.parent, forged, "apply", "-f", "-")
	want := "clusternet-hub: clusternet-hub does not apply this HelmRelease: it has no controller owner reference to a Description: the hub applies only the HelmReleases it makes from Helm Descriptions"
	waitFor(t, wait, "a NotVerified event on HelmRelease forged", func(context.Context) (bool, string) {
		out, errOut, err := kubectl(t, s.parent, "", "get", "events", "-n", s.push.Namespace,
			"--field-selector", "involvedObject.kind=HelmRelease,involvedObject.name=forged,reason=NotVerified",
			"-o", "jsonpath={range .items[*]}{.source.component}: {.message}{end}")
		if err != nil {
			return false, errOut
		}
		return out == want, out
	})
	if got := s.hrStatus(t, s.push.Namespace, "forged"); got != "8.6.2  " {
		t.Errorf("HelmRelease forged has a status: %q", got)
	}
	if got := s.attacker.requests(); len(got) != 0 {
		t.Errorf("the forged repository was asked: %v", got)
	}
	for _, r := range s.helmLs(t, s.push) {
		if r.Name == "forged" {
			t.Errorf("the forged release was installed: %+v", r)
		}
	}
	// Deleted: let go without uninstalling anything.
	mustKubectl(t, s.parent, "", "delete", "hr", "-n", s.push.Namespace, "forged", "--wait=false")
	waitFor(t, wait, "HelmRelease forged gone", func(ctx context.Context) (bool, string) {
		_, err := s.cs.AppsV1alpha1().HelmReleases(s.push.Namespace).Get(ctx, "forged", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if got := s.attacker.requests(); len(got) != 0 {
		t.Errorf("the forged repository was asked: %v", got)
	}
}

func (s *suite) nameClash(t *testing.T) {
	mustKubectl(t, s.parent, "", "create", "namespace", "other")
	other := strings.Replace(helmChartYAML("mysql", s.repo.URL, "mysql", "8.6.2"), "namespace: default", "namespace: other", 1)
	mustKubectl(t, s.parent, other, "apply", "-f", "-")
	waitFor(t, wait, "HelmChart other/mysql Found", func(context.Context) (bool, string) {
		out, _, _ := kubectl(t, s.parent, "", "get", "chart", "-n", "other", "mysql", "-o", "jsonpath={.status.phase}")
		return out == "Found", out
	})
	d := e2eutil.HelmDescription(s.push, "clash", []string{"mysql"})
	d.Spec.Charts = append(d.Spec.Charts, appsv1alpha1.ChartReference{Namespace: "other", Name: "mysql"})
	s.createDescription(t, d)
	want := fmt.Sprintf("HelmCharts default/mysql, other/mysql would all be installed as HelmRelease %s/clash-mysql (HelmReleases are named <subscription>-<HelmChart name>), "+
		"so none of them is installed or changed: feed only one HelmChart of each name to a Subscription: rename all but one of them, or feed them from separate Subscriptions", s.push.Namespace)
	waitFor(t, wait, "Description clash-helm Failure", func(context.Context) (bool, string) {
		phase, reason := s.descStatus(t, s.push.Namespace, "clash-helm")
		return phase == "Failure" && reason == want, phase + ": " + reason
	})
	if _, _, err := kubectl(t, s.parent, "", "get", "hr", "-n", s.push.Namespace, "clash-mysql"); err == nil {
		t.Errorf("HelmRelease clash-mysql was made")
	}
	s.deleteDescription(t, s.push.Namespace, "clash-helm")
	mustKubectl(t, s.parent, "", "delete", "namespace", "other", "--wait=false")
}

func (s *suite) privateChart(t *testing.T) {
	private := helmrepo.NewRepo(t, helmrepo.WithBasicAuth("alice", "pw"))
	private.Add(t, helmrepo.DemoChart("vault", "1.0.0"))
	mustKubectl(t, s.parent, "", "create", "secret", "generic", "vault-creds", "-n", "default",
		"--type=kubernetes.io/basic-auth", "--from-literal=username=alice", "--from-literal=password=pw")
	mustKubectl(t, s.parent, helmChartYAML("vault", private.URL, "vault", "1.0.0",
		"  chartPullSecret:", "    name: vault-creds"), "apply", "-f", "-")
	mustKubectl(t, s.parent, subscriptionOf("private", "vault", s.push, s.pull), "apply", "-f", "-")
	s.waitDescriptionsSuccess(t, "private", s.push, s.pull)
	for c, who := range map[*e2eutil.Child]string{s.push: "clusternet-hub", s.pull: "clusternet-agent"} {
		if diff := cmp.Diff([]release{{Name: "private-vault", Chart: "vault-1.0.0", Status: "deployed", Revision: 1}}, s.helmLs(t, c)); diff != "" {
			t.Errorf("helm ls in %s (-want +got):\n%s", c.Cluster.Name, diff)
		}
		// Installed with the copy in the dedicated namespace, by whom the mode says.
		got := mustKubectl(t, s.parent, "", "get", "hr", "-n", c.Namespace, "private-vault", "-o", "jsonpath={.spec.chartPullSecret.namespace}/{.spec.chartPullSecret.name}")
		if want := c.Namespace + "/private-vault-chart-pull"; got != want {
			t.Errorf("HelmRelease private-vault in %s: chartPullSecret %q, want %q", c.Namespace, got, want)
		}
		got = e2eutil.AwaitKubectl(t, s.parent, "get", "events", "-n", c.Namespace,
			"--field-selector", "involvedObject.kind=HelmRelease,involvedObject.name=private-vault,reason=Installed", "-o", "jsonpath={.items[*].source.component}")
		if got != who {
			t.Errorf("private-vault in %s installed by %q, want %s", c.Namespace, got, who)
		}
	}
	mustKubectl(t, s.parent, "", "delete", "subs", "-n", "default", "private", "--wait=false")
	for _, c := range []*e2eutil.Child{s.push, s.pull} {
		waitFor(t, wait, "private release uninstalled from "+c.Cluster.Name, func(context.Context) (bool, string) {
			rels := s.helmLs(t, c)
			return len(rels) == 0, fmt.Sprint(rels)
		})
		waitFor(t, wait, "the pull Secret's copy gone from "+c.Namespace, func(ctx context.Context) (bool, string) {
			out, _, _ := kubectl(t, s.parent, "", "get", "secrets", "-n", c.Namespace, "-l", "apps.clusternet.io/chart-pull-secret-of", "-o", "name")
			return out == "", out
		})
	}
}
