package apps

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/helmrepo"
	"github.com/clusternet/clusternet/test/testbed"
)

var (
	kubectl     = e2eutil.Kubectl
	mustKubectl = e2eutil.MustKubectl
	waitFor     = e2eutil.WaitFor
)

// example reads a file of the seed's examples/applications.
func example(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), "examples", "applications", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// asJSON decodes YAML or JSON into plain values, for comparing by meaning.
func asJSON(t *testing.T, s string) any {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

type env struct {
	t        *testing.T
	parent   *testbed.Cluster
	cs       versioned.Interface
	hub      *framework.Hub
	children []*e2eutil.Child
	ghost    struct{ ns, name, id string }
	// chartRepo is the URL of the chart repository the test serves.
	chartRepo string
}

func (e *env) desc(ns, name string) *appsv1alpha1.Description {
	d, err := e.cs.AppsV1alpha1().Descriptions(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return d
}

func (e *env) sub(name string) *appsv1alpha1.Subscription {
	s, err := e.cs.AppsV1alpha1().Subscriptions("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return s
}

func condition(s *appsv1alpha1.Subscription, typ string) metav1.Condition {
	if s == nil {
		return metav1.Condition{}
	}
	if c := meta.FindStatusCondition(s.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// rawObjects decodes a Generic Description's objects.
func rawObjects(d *appsv1alpha1.Description) []map[string]any {
	if d == nil {
		return nil
	}
	var out []map[string]any
	for _, r := range d.Spec.Raw {
		var m map[string]any
		_ = json.Unmarshal(r.Raw, &m)
		out = append(out, m)
	}
	return out
}

func kindsOf(d *appsv1alpha1.Description) []string {
	var out []string
	for _, o := range rawObjects(d) {
		out = append(out, fmt.Sprint(o["kind"]))
	}
	return out
}

// replicas is spec.replicas of the Deployment in a Generic Description (-1 if none).
func replicas(d *appsv1alpha1.Description) int {
	for _, o := range rawObjects(d) {
		if o["kind"] == "Deployment" {
			if n, ok := o["spec"].(map[string]any)["replicas"].(float64); ok {
				return int(n)
			}
		}
	}
	return -1
}

// wantReplicas waits until child i's Description of sub has Deployment replicas want[i].
func (e *env) wantReplicas(what, sub string, want ...int) {
	e.t.Helper()
	waitFor(e.t, 60*time.Second, what, func(context.Context) (bool, string) {
		var got []int
		for _, c := range e.children {
			got = append(got, replicas(e.desc(c.Namespace, sub+"-generic")))
		}
		return cmp.Equal(got, want), fmt.Sprintf("replicas per child %v, want %v", got, want)
	})
}

// events are the events about one object, as "Type Reason Source: Message" lines.
func (e *env) events(ns, kind, name string) string {
	e.t.Helper()
	out, _, _ := kubectl(e.t, e.parent, "", "get", "events", "-n", ns, "--field-selector", "involvedObject.kind="+kind+",involvedObject.name="+name,
		"-o", `jsonpath={range .items[*]}{.type} {.reason} {.source.component}: {.message}{"\n"}{end}`)
	return out
}

// releaseGhostDescriptions removes the finalizers of a Subscription's
// Descriptions in the ghost cluster's namespace that are being deleted, as
// a deployer does once its child is clean: no deployer acts on the ghost
// cluster. The real children's Descriptions are left to their deployers,
// so a deployer that does not clean up fails the test.
func (e *env) releaseGhostDescriptions(sub string) {
	e.t.Helper()
	ctx := context.Background()
	list, err := e.cs.AppsV1alpha1().Descriptions(e.ghost.ns).List(ctx, metav1.ListOptions{LabelSelector: appsv1alpha1.LabelSubscriptionName + "=" + sub})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range list.Items {
		if d.DeletionTimestamp == nil {
			e.t.Errorf("Description %s/%s is not being deleted", d.Namespace, d.Name)
			continue
		}
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := e.cs.AppsV1alpha1().Descriptions(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Finalizers = slices.DeleteFunc(cur.Finalizers, func(f string) bool { return f == appsv1alpha1.Finalizer })
			_, err = e.cs.AppsV1alpha1().Descriptions(d.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil && !apierrors.IsNotFound(err) {
			e.t.Fatal(err)
		}
	}
}

// setUp starts a parent with the hub, registers two children, adds a
// "ghost" ManagedCluster (Pull mode, no agent: nothing deploys its
// Descriptions but the test), and stores the seed's templates and HelmChart.
func setUp(t *testing.T) *env {
	tb := testbed.ForTest(t, 2)
	e := &env{t: t, parent: tb.Parent}
	e.hub = e2eutil.SetUpParent(t, tb.Parent)
	e.children = e2eutil.RegisterChildren(t, tb.Parent, tb.Children, nil)
	e.cs = e2eutil.ClusternetClient(t, tb.Parent)

	e.ghost.ns, e.ghost.name, e.ghost.id = "clusternet-ghost", "ghost", string(uuid.NewUUID())
	mustKubectl(t, e.parent, "", "create", "namespace", e.ghost.ns)
	_, err := e.cs.ClustersV1beta1().ManagedClusters(e.ghost.ns).Create(context.Background(), &clusterv1beta1.ManagedCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ghost.ns, Name: e.ghost.name, Labels: map[string]string{
			clusterv1beta1.LabelClusterID: e.ghost.id, clusterv1beta1.LabelClusterName: e.ghost.name}},
		Spec: clusterv1beta1.ManagedClusterSpec{ClusterID: types.UID(e.ghost.id), SyncMode: clusterv1beta1.PullSyncMode},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// The seed's HelmChart, pointed at a chart repository on loopback (the
	// one test/e2e/helm serves) that holds its chart and version, so the
	// hub's resolver has something real to find.
	repo := helmrepo.NewRepo(t)
	repo.Add(t, helmrepo.DemoChart("mysql", "8.6.2"))
	e.chartRepo = repo.URL
	seedChart := example(t, "01-helmchart.yaml")
	if !strings.Contains(seedChart, "https://charts.bitnami.com/bitnami") {
		t.Fatal("01-helmchart.yaml no longer names https://charts.bitnami.com/bitnami: update setUp")
	}
	mustKubectl(t, e.parent, strings.Replace(seedChart, "https://charts.bitnami.com/bitnami", repo.URL, 1), "apply", "-f", "-")
	e.chartFound()
	for _, f := range []string{"02-namespace.yaml", "03-deployment.yaml", "04-service.yaml"} {
		e2eutil.CreateTemplate(t, e.parent, example(t, f))
	}
	return e
}

// chartFound waits for the hub's resolver to look the HelmChart up in the
// repository and mark it Found, and for its ChartFound event. Nothing else
// writes the status: a resolver that never looks, cannot reach the
// repository or misreads its index fails the test here.
func (e *env) chartFound() {
	e.t.Helper()
	ctx := context.Background()
	waitFor(e.t, 60*time.Second, "the hub's resolver marking HelmChart default/mysql Found", func(context.Context) (bool, string) {
		ch, err := e.cs.AppsV1alpha1().HelmCharts("default").Get(ctx, "mysql", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if ch.Status.Phase == appsv1alpha1.HelmChartNotFound {
			e.t.Fatalf("the hub's resolver did not find HelmChart default/mysql in %s: %s", e.chartRepo, ch.Status.Reason)
		}
		return ch.Status.Phase == appsv1alpha1.HelmChartFound, fmt.Sprintf("status %+v", ch.Status)
	})
	want := "Normal ChartFound clusternet-hub: Found chart mysql version 8.6.2 in " + e.chartRepo
	waitFor(e.t, 30*time.Second, "the resolver's ChartFound event", func(context.Context) (bool, string) {
		ev := e.events("default", "HelmChart", "mysql")
		return strings.Contains(ev, want), fmt.Sprintf("want %q in events:\n%s", want, ev)
	})
}

// seedSubscription is the seed's Subscription with its clusterAffinity
// edited to match ids (the seed says: update the cluster id to yours).
func seedSubscription(t *testing.T, ids ...string) string {
	var sub map[string]any
	if err := yaml.Unmarshal([]byte(example(t, "05-subscription.yaml")), &sub); err != nil {
		t.Fatal(err)
	}
	sub["spec"].(map[string]any)["subscribers"] = []any{map[string]any{"clusterAffinity": map[string]any{"matchExpressions": []any{
		map[string]any{"key": clusterv1beta1.LabelClusterID, "operator": "In", "values": ids}}}}}
	out, _ := json.Marshal(sub)
	return string(out)
}

func TestDistribution(t *testing.T) {
	e := setUp(t)
	t.Cleanup(func() {
		// Retried failures of the distribution controllers, for the record.
		for _, line := range strings.Split(e.hub.LogTail(1<<20), "\n") {
			if strings.Contains(line, "Sync failed") && (strings.Contains(line, `controller="subscriptions"`) || strings.Contains(line, `controller="bases"`)) {
				t.Log(line)
			}
		}
	})
	ids := []string{e.children[0].ID, e.children[1].ID}
	ns1, ns2 := e.children[0].Namespace, e.children[1].Namespace
	ctx := context.Background()

	ok := t.Run("the seed's apps/v1 Service feed is refused, naming the feed and the fix", func(t *testing.T) {
		mustKubectl(t, e.parent, seedSubscription(t, ids...), "apply", "-f", "-")
		waitFor(t, 30*time.Second, "FeedsResolved False", func(context.Context) (bool, string) {
			c := condition(e.sub("app-demo"), "FeedsResolved")
			return c.Reason == "FeedKindNotServed", fmt.Sprintf("%+v", c)
		})
		c := condition(e.sub("app-demo"), "FeedsResolved")
		want := `spec.feeds[2]: the parent does not serve kind "Service" in apiVersion "apps/v1": Service is served as apiVersion "v1": set spec.feeds[2].apiVersion to "v1"`
		if c.Status != metav1.ConditionFalse || c.Message != want {
			t.Errorf("FeedsResolved = %s %q\nwant False %q", c.Status, c.Message, want)
		}
		waitFor(t, 30*time.Second, "an event naming the feed and the fix", func(context.Context) (bool, string) {
			ev := e.events("default", "Subscription", "app-demo")
			return strings.Contains(ev, "Warning FeedKindNotServed clusternet-hub: "+want), "events:\n" + ev
		})
		if out := mustKubectl(t, e.parent, "", "get", "base", "-A", "-l", appsv1alpha1.LabelSubscriptionName+"=app-demo", "-o", "name"); out != "" {
			t.Errorf("Bases made although a feed does not resolve:\n%s", out)
		}
	})
	if !ok {
		return
	}

	ok = t.Run("fixed: Bases and Descriptions in both dedicated namespaces", func(t *testing.T) {
		mustKubectl(t, e.parent, "", "patch", "subs", "app-demo", "-n", "default", "--type=json",
			"-p", `[{"op":"replace","path":"/spec/feeds/2/apiVersion","value":"v1"}]`)
		waitFor(t, 60*time.Second, "kubectl get desc -A", func(context.Context) (bool, string) {
			out, _, err := kubectl(t, e.parent, "", "get", "desc", "-A", "-l", appsv1alpha1.LabelSubscriptionName+"=app-demo", "--sort-by=.metadata.name")
			if err != nil {
				return false, err.Error()
			}
			var got [][]string
			for _, row := range e2eutil.Table(out)[1:] {
				got = append(got, row[:3])
			}
			slices.SortFunc(got, func(a, b []string) int { return strings.Compare(strings.Join(a, " "), strings.Join(b, " ")) })
			want := [][]string{{ns1, "app-demo-generic", "Generic"}, {ns1, "app-demo-helm", "Helm"}, {ns2, "app-demo-generic", "Generic"}, {ns2, "app-demo-helm", "Helm"}}
			slices.SortFunc(want, func(a, b []string) int { return strings.Compare(strings.Join(a, " "), strings.Join(b, " ")) })
			return cmp.Equal(want, got), out
		})
		header := e2eutil.Table(mustKubectl(t, e.parent, "", "get", "desc", "-A"))[0]
		if diff := cmp.Diff([]string{"NAMESPACE", "NAME", "DEPLOYER", "STATUS", "AGE"}, header); diff != "" {
			t.Errorf("kubectl get desc -A columns (-want +got):\n%s", diff)
		}
		sub := e.sub("app-demo")
		for _, c := range e.children {
			b, err := e.cs.AppsV1alpha1().Bases(c.Namespace).Get(ctx, "app-demo", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wantLabels := map[string]string{appsv1alpha1.LabelSubscriptionName: "app-demo", appsv1alpha1.LabelSubscriptionNamespace: "default",
				appsv1alpha1.LabelSubscriptionUID: string(sub.UID), appsv1alpha1.LabelClusterID: c.ID}
			for k, v := range wantLabels {
				if b.Labels[k] != v {
					t.Errorf("Base %s/app-demo label %s = %q, want %q", c.Namespace, k, b.Labels[k], v)
				}
			}
			g := e.desc(c.Namespace, "app-demo-generic")
			var got []any
			for _, o := range rawObjects(g) {
				got = append(got, any(o))
			}
			want := []any{asJSON(t, example(t, "02-namespace.yaml")), asJSON(t, example(t, "04-service.yaml")), asJSON(t, example(t, "03-deployment.yaml"))}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: Description raw is not exactly the templates (-want +got):\n%s", c.Namespace, diff)
			}
			if !slices.Contains(g.Finalizers, appsv1alpha1.Finalizer) || g.Labels[appsv1alpha1.LabelClusterID] != c.ID {
				t.Errorf("Description finalizers %v labels %v", g.Finalizers, g.Labels)
			}
			hd := e.desc(c.Namespace, "app-demo-helm")
			chart, err := e.cs.AppsV1alpha1().HelmCharts("default").Get(context.Background(), "mysql", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// Each carries the HelmChart's spec as found in its repository.
			if diff := cmp.Diff([]appsv1alpha1.ChartReference{{Namespace: "default", Name: "mysql", Options: &chart.Spec.HelmOptions}}, hd.Spec.Charts); diff != "" {
				t.Errorf("Helm Description charts (-want +got):\n%s", diff)
			}
		}
		waitFor(t, 30*time.Second, "status bound to both", func(context.Context) (bool, string) {
			s := e.sub("app-demo")
			want := []string{ns1 + "/" + e.children[0].Name, ns2 + "/" + e.children[1].Name}
			slices.Sort(want)
			return cmp.Equal(want, s.Status.BindingClusters) && s.Status.DesiredReleases == 4 && s.Status.SpecHash != "" &&
				condition(s, "Scheduled").Status == metav1.ConditionTrue && condition(s, "Rendered").Status == metav1.ConditionTrue, fmt.Sprintf("%+v", s.Status)
		})
	})
	if !ok {
		return
	}

	ok = t.Run("overrides: a Localization for one cluster, Globalizations by priority, deletion rolls back", func(t *testing.T) {
		e.wantReplicas("templates' replicas", "app-demo", 3, 3)
		mustKubectl(t, e.parent, fmt.Sprintf(`
apiVersion: apps.clusternet.io/v1alpha1
kind: Localization
metadata: {name: nginx-replicas, namespace: %s}
spec:
  overridePolicy: ApplyNow
  feed: {apiVersion: apps/v1, kind: Deployment, namespace: foo, name: my-nginx}
  overrides:
    - name: scale-down
      type: JSONPatch
      value: |
        - op: replace
          path: /spec/replicas
          value: 1
`, ns1), "apply", "-f", "-")
		e.wantReplicas("the Localization changes only its cluster", "app-demo", 1, 3)

		glob := func(name string, priority, n int) string {
			return fmt.Sprintf(`
apiVersion: apps.clusternet.io/v1alpha1
kind: Globalization
metadata: {name: %s}
spec:
  priority: %d
  overridePolicy: ApplyNow
  feed: {apiVersion: apps/v1, kind: Deployment, namespace: foo, name: my-nginx}
  overrides:
    - {type: MergePatch, value: '{"spec":{"replicas":%d}}'}
`, name, priority, n)
		}
		mustKubectl(t, e.parent, glob("e2e-high", 900, 7)+"---\n"+glob("e2e-low", 100, 5), "apply", "-f", "-")
		e.wantReplicas("the higher priority Globalization wins; the Localization still has the last word in its cluster", "app-demo", 1, 7)

		mustKubectl(t, e.parent, "", "delete", "glob", "e2e-high")
		e.wantReplicas("deleting the winning Globalization rolls back to the next", "app-demo", 1, 5)
		mustKubectl(t, e.parent, "", "delete", "loc", "-n", ns1, "nginx-replicas")
		mustKubectl(t, e.parent, "", "delete", "glob", "e2e-low")
		e.wantReplicas("deleting the overrides rolls the Descriptions back", "app-demo", 3, 3)
	})
	if !ok {
		return
	}

	ok = t.Run("a patch that does not apply is named; the Description stays as it was", func(t *testing.T) {
		before := e.desc(ns2, "app-demo-generic")
		mustKubectl(t, e.parent, fmt.Sprintf(`
apiVersion: apps.clusternet.io/v1alpha1
kind: Localization
metadata: {name: broken, namespace: %s}
spec:
  overridePolicy: ApplyNow
  feed: {apiVersion: apps/v1, kind: Deployment, namespace: foo, name: my-nginx}
  overrides:
    - {type: JSONPatch, value: '[{"op":"replace","path":"/spec/replica","value":2}]'}
`, ns2), "apply", "-f", "-")
		waitFor(t, 30*time.Second, "Rendered False on the Subscription", func(context.Context) (bool, string) {
			c := condition(e.sub("app-demo"), "Rendered")
			return c.Reason == "OverrideFailed", fmt.Sprintf("%+v", c)
		})
		c := condition(e.sub("app-demo"), "Rendered")
		for _, part := range []string{"Localization " + ns2 + "/broken", `apps/v1 Deployment "foo/my-nginx"`, `"/spec/replica"`, "the Descriptions stay as they were"} {
			if !strings.Contains(c.Message, part) {
				t.Errorf("Rendered message %q does not say %q", c.Message, part)
			}
		}
		if r := condition(e.sub("app-demo"), "Ready"); r.Status != metav1.ConditionFalse {
			t.Errorf("Ready = %+v, want False", r)
		}
		// Events are sent in the background, after the status seen above.
		waitFor(t, 30*time.Second, "an OverrideFailed event on the Base", func(context.Context) (bool, string) {
			ev := e.events(ns2, "Base", "app-demo")
			return strings.Contains(ev, "Warning OverrideFailed clusternet-hub") && strings.Contains(ev, "/spec/replica"), "events:\n" + ev
		})
		if after := e.desc(ns2, "app-demo-generic"); !cmp.Equal(rawObjects(before), rawObjects(after)) {
			t.Errorf("the Description changed although its render failed")
		}
		mustKubectl(t, e.parent, "", "delete", "loc", "-n", ns2, "broken")
		waitFor(t, 30*time.Second, "Rendered True again", func(context.Context) (bool, string) {
			c := condition(e.sub("app-demo"), "Rendered")
			return c.Status == metav1.ConditionTrue, fmt.Sprintf("%+v", c)
		})
	})
	if !ok {
		return
	}

	ok = t.Run("a feed removed from the Subscription drops out of the Descriptions", func(t *testing.T) {
		mustKubectl(t, e.parent, "", "patch", "subs", "app-demo", "-n", "default", "--type=json", "-p", `[{"op":"remove","path":"/spec/feeds/2"}]`)
		waitFor(t, 30*time.Second, "the Service gone from both", func(context.Context) (bool, string) {
			k1, k2 := kindsOf(e.desc(ns1, "app-demo-generic")), kindsOf(e.desc(ns2, "app-demo-generic"))
			want := []string{"Namespace", "Deployment"}
			return cmp.Equal(k1, want) && cmp.Equal(k2, want), fmt.Sprint(k1, k2)
		})
	})
	if !ok {
		return
	}

	ok = t.Run("the hub killed mid-rollout and restarted completes, without duplicates", func(t *testing.T) {
		e2eutil.CreateTemplate(t, e.parent, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"two","namespace":"foo"},"data":{"config.yaml":"replicas: 1\nname: two\n"}}`)
		mustKubectl(t, e.parent, fmt.Sprintf(`
apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: app-two, namespace: default}
spec:
  subscribers:
    - clusterAffinity:
        matchExpressions: [{key: %s, operator: In, values: [%s, %s]}]
  feeds:
    - {apiVersion: v1, kind: Namespace, name: foo}
    - {apiVersion: v1, kind: ConfigMap, namespace: foo, name: two}
`, clusterv1beta1.LabelClusterID, ids[0], ids[1]), "apply", "-f", "-")
		// Killed at once, mid-rollout: whatever it wrote so far stays.
		if err := syscall.Kill(e.hub.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// While the hub is down: an override for cluster 1.
		mustKubectl(t, e.parent, fmt.Sprintf(`
apiVersion: apps.clusternet.io/v1alpha1
kind: Localization
metadata: {name: two-config, namespace: %s}
spec:
  overridePolicy: ApplyNow
  feed: {apiVersion: v1, kind: ConfigMap, namespace: foo, name: two}
  overrides:
    - {type: FieldMergePatch, fieldPath: /data/config.yaml, fieldFormat: YAML, value: '{"replicas": 2}'}
`, ns1), "apply", "-f", "-")
		if err := e.hub.Restart(); err != nil {
			t.Fatal(err)
		}
		configOf := func(ns string) string {
			for _, o := range rawObjects(e.desc(ns, "app-two-generic")) {
				if o["kind"] == "ConfigMap" {
					return fmt.Sprint(o["data"].(map[string]any)["config.yaml"])
				}
			}
			return ""
		}
		waitFor(t, 90*time.Second, "app-two rendered in both, the Localization in cluster 1", func(context.Context) (bool, string) {
			c1, c2 := configOf(ns1), configOf(ns2)
			return c1 == "name: two\nreplicas: 2\n" && c2 == "replicas: 1\nname: two\n", fmt.Sprintf("%q %q", c1, c2)
		})
		list, err := e.cs.AppsV1alpha1().Descriptions("").List(ctx, metav1.ListOptions{LabelSelector: appsv1alpha1.LabelSubscriptionName + "=app-two"})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, d := range list.Items {
			names = append(names, d.Namespace+"/"+d.Name)
		}
		slices.Sort(names)
		want := []string{ns1 + "/app-two-generic", ns2 + "/app-two-generic"}
		slices.Sort(want)
		if diff := cmp.Diff(want, names); diff != "" {
			t.Errorf("Descriptions of app-two (-want +got):\n%s", diff)
		}
		bases := mustKubectl(t, e.parent, "", "get", "base", "-A", "-l", appsv1alpha1.LabelSubscriptionName+"=app-two", "-o", "name")
		if n := strings.Count(bases, "\n"); n != 2 {
			t.Errorf("%d Bases of app-two, want 2:\n%s", n, bases)
		}
	})
	if !ok {
		return
	}

	ok = t.Run("status aggregates what deployers report", func(t *testing.T) {
		mustKubectl(t, e.parent, fmt.Sprintf(`
apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: ghost-app, namespace: default}
spec:
  subscribers:
    - clusterAffinity: {matchLabels: {%s: %s}}
  feeds:
    - {apiVersion: v1, kind: Namespace, name: foo}
    - apiVersion: apps/v1
      kind: Deployment
      feedSelector: {matchLabels: {clusternet-app: multi-cluster-nginx}}
`, clusterv1beta1.LabelClusterID, e.ghost.id), "apply", "-f", "-")
		// No deployer serves the ghost cluster: its Description keeps the
		// empty status the hub created it with ("not picked up yet").
		waitFor(t, 30*time.Second, "rendered for the ghost cluster", func(context.Context) (bool, string) {
			d := e.desc(e.ghost.ns, "ghost-app-generic")
			return d != nil && d.Status.Phase == "", fmt.Sprintf("%v", d)
		})
		report := func(phase appsv1alpha1.DescriptionPhase, reason string, deploy appsv1alpha1.FeedStatus) {
			t.Helper()
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				d := e.desc(e.ghost.ns, "ghost-app-generic")
				d.Status = appsv1alpha1.DescriptionStatus{Phase: phase, Reason: reason, ManifestStatuses: []appsv1alpha1.ManifestStatus{
					{Feed: appsv1alpha1.Feed{APIVersion: "v1", Kind: "Namespace", Name: "foo"}, FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}},
					{Feed: appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "my-nginx"}, FeedStatus: deploy},
				}}
				_, err := e.cs.AppsV1alpha1().Descriptions(e.ghost.ns).UpdateStatus(ctx, d, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		report(appsv1alpha1.DescriptionPhaseSuccess, "", appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3})
		waitFor(t, 30*time.Second, "Ready", func(context.Context) (bool, string) {
			s := e.sub("ghost-app")
			return condition(s, "Ready").Status == metav1.ConditionTrue && s.Status.CompletedReleases == 1, fmt.Sprintf("%+v", s.Status)
		})
		s := e.sub("ghost-app")
		want := []appsv1alpha1.AggregatedStatus{
			{Feed: appsv1alpha1.Feed{APIVersion: "v1", Kind: "Namespace", Name: "foo"},
				FeedStatusSummary: appsv1alpha1.FeedStatus{Applied: true, Available: true}, AvailableClusters: 1,
				FeedStatusDetails: []appsv1alpha1.FeedStatusPerCluster{{FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}, ClusterID: e.ghost.id, ClusterName: e.ghost.name}}},
			{Feed: appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "my-nginx"},
				FeedStatusSummary: appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}, AvailableClusters: 1,
				FeedStatusDetails: []appsv1alpha1.FeedStatusPerCluster{{FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}, ClusterID: e.ghost.id, ClusterName: e.ghost.name}}},
		}
		if diff := cmp.Diff(want, s.Status.AggregatedStatuses); diff != "" {
			t.Errorf("aggregated statuses (-want +got):\n%s", diff)
		}
		if s.Status.DesiredReleases != 1 {
			t.Errorf("desiredReleases = %d, want 1", s.Status.DesiredReleases)
		}

		report(appsv1alpha1.DescriptionPhaseFailure, `applying apps/v1 Deployment "foo/my-nginx": quota exceeded`, appsv1alpha1.FeedStatus{Reason: "quota exceeded"})
		waitFor(t, 30*time.Second, "Ready False, DeploymentFailed", func(context.Context) (bool, string) {
			r := condition(e.sub("ghost-app"), "Ready")
			return r.Reason == "DeploymentFailed" && strings.Contains(r.Message, "quota exceeded"), fmt.Sprintf("%+v", r)
		})
	})
	if !ok {
		return
	}

	t.Run("deleting a Subscription deletes its Bases and Descriptions; finalizers come off in order", func(t *testing.T) {
		for _, name := range []string{"ghost-app", "app-demo", "app-two"} {
			mustKubectl(t, e.parent, "", "delete", "subs", "-n", "default", name, "--wait=false")
		}
		waitFor(t, 30*time.Second, "ghost-app's Base and Description being deleted, the Subscription held", func(context.Context) (bool, string) {
			b, err := e.cs.AppsV1alpha1().Bases(e.ghost.ns).Get(ctx, "ghost-app", metav1.GetOptions{})
			d := e.desc(e.ghost.ns, "ghost-app-generic")
			s := e.sub("ghost-app")
			return err == nil && b.DeletionTimestamp != nil && d != nil && d.DeletionTimestamp != nil && s != nil && s.DeletionTimestamp != nil,
				fmt.Sprintf("base %v, description %v, subscription %v", err, d != nil, s != nil)
		})
		waitFor(t, 30*time.Second, "every Description being deleted", func(context.Context) (bool, string) {
			list, err := e.cs.AppsV1alpha1().Descriptions("").List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err.Error()
			}
			for _, d := range list.Items {
				if d.DeletionTimestamp == nil {
					return false, d.Namespace + "/" + d.Name
				}
			}
			return true, ""
		})
		for _, name := range []string{"ghost-app", "app-demo", "app-two"} {
			e.releaseGhostDescriptions(name)
		}
		waitFor(t, 60*time.Second, "Subscriptions, Bases, Descriptions and FeedInventories gone", func(context.Context) (bool, string) {
			out := mustKubectl(t, e.parent, "", "get", "subs,base,desc,feedinventories", "-A", "-o", "name")
			return out == "", out
		})
	})
}
