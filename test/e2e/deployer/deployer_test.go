package deployer

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

var (
	waitFor     = e2eutil.WaitFor
	kubectl     = e2eutil.Kubectl
	mustKubectl = e2eutil.MustKubectl
)

// mode is one way a child gets its Descriptions applied.
type mode struct {
	name      string
	agentArgs []string
	appPusher bool
	// from is the component that applies, as events name it.
	from string
}

var modes = []mode{
	{name: "push (Dual, AppPusher on)", agentArgs: []string{"--cluster-sync-mode=Dual"}, appPusher: true, from: "clusternet-hub"},
	{name: "pull", agentArgs: []string{"--cluster-sync-mode=Pull"}, appPusher: true, from: "clusternet-agent"},
	{name: "Dual with AppPusher off", agentArgs: []string{"--cluster-sync-mode=Dual", "--feature-gates=AppPusher=false"}, from: "clusternet-agent"},
}

// TestGenericDescriptions applies the seed's application (Namespace foo,
// Deployment my-nginx, Service my-nginx-svc) through hand-made Generic
// Descriptions in each mode, and then prunes, corrects drift, fails whole
// on a bad object, deletes, and survives a restart of whoever applies.
func TestGenericDescriptions(t *testing.T) {
	tb := testbed.ForTest(t, len(modes))
	parent := tb.Parent
	hub := e2eutil.SetUpParent(t, parent)
	children := e2eutil.RegisterChildren(t, parent, tb.Children, func(i int) []string { return modes[i].agentArgs })
	cs := e2eutil.ClusternetClient(t, parent)
	for i, c := range children {
		want := strconv.FormatBool(modes[i].appPusher)
		waitFor(t, 30*time.Second, "ManagedCluster of "+c.Cluster.Name+" reporting appPusher "+want, func(context.Context) (bool, string) {
			got, _, _ := kubectl(t, parent, "", "get", "mcls", "-n", c.Namespace, c.Name, "-o", "jsonpath={.status.appPusher}")
			return got == want, got
		})
	}
	for i, m := range modes {
		c := children[i]
		kube, err := c.Clientset()
		if err != nil {
			t.Fatal(err)
		}
		e := &env{parent: parent, hub: hub, cs: cs, child: c, kube: kube, mode: m}
		t.Run(m.name, func(t *testing.T) {
			for _, step := range []struct {
				name string
				run  func(*testing.T)
			}{
				{"delivers the seed's application", e.deliver},
				{"corrects a hand edit in the child", e.correctsDrift},
				{"reports a hand edit of an opted-out object", e.reportsOptedOutDrift},
				{"prunes an object removed from the Description", e.prunes},
				{"an opted-out object deleted by hand stays deleted", e.keepsOptedOutDeletion},
				{"a bad object fails the Description and applies nothing", e.badObject},
				{"deleting the Description deletes its objects", e.deletes},
				{"what existed before Clusternet stays when the Description goes", e.keepsPreExisting},
				{"a restart mid-rollout completes it", e.restartMidRollout},
			} {
				if !t.Run(step.name, step.run) {
					return // later steps build on this one
				}
			}
		})
	}
}

type env struct {
	parent *testbed.Cluster
	hub    *framework.Hub
	cs     versioned.Interface
	child  *e2eutil.Child
	kube   kubernetes.Interface
	mode   mode
}

func (e *env) descriptions() interface {
	Get(context.Context, string, metav1.GetOptions) (*appsv1alpha1.Description, error)
} {
	return e.cs.AppsV1alpha1().Descriptions(e.child.Namespace)
}

func (e *env) create(t *testing.T, d *appsv1alpha1.Description) {
	t.Helper()
	if _, err := e.cs.AppsV1alpha1().Descriptions(d.Namespace).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitPhase waits until the Description's status is phase for its current generation.
func (e *env) waitPhase(t *testing.T, name string, phase appsv1alpha1.DescriptionPhase, timeout time.Duration) *appsv1alpha1.Description {
	t.Helper()
	var got *appsv1alpha1.Description
	waitFor(t, timeout, fmt.Sprintf("Description %s/%s %s", e.child.Namespace, name, phase), func(ctx context.Context) (bool, string) {
		d, err := e.descriptions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		got = d
		return d.Status.Phase == phase && d.Status.ObservedGeneration == d.Generation,
			fmt.Sprintf("phase %q (generation %d observed %d) reason %q", d.Status.Phase, d.Generation, d.Status.ObservedGeneration, d.Status.Reason)
	})
	return got
}

// events lists "type|reason|source|message" of the events on a Description.
func (e *env) events(t *testing.T, name, reason string) []string {
	t.Helper()
	out := mustKubectl(t, e.parent, "", "get", "events", "-n", e.child.Namespace,
		"--field-selector", "involvedObject.kind=Description,involvedObject.name="+name+",reason="+reason,
		"-o", `jsonpath={range .items[*]}{.type}|{.reason}|{.source.component}|{.count}|{.message}{"\n"}{end}`)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func (e *env) waitEvent(t *testing.T, name, reason, contains string) string {
	t.Helper()
	var found string
	waitFor(t, 60*time.Second, "event "+reason+" on "+name+" containing "+strconv.Quote(contains), func(context.Context) (bool, string) {
		evs := e.events(t, name, reason)
		for _, ev := range evs {
			if strings.Contains(ev, contains) {
				found = ev
				return true, ""
			}
		}
		return false, strings.Join(evs, "\n")
	})
	return found
}

// childGet is `kubectl get` in the child: its output, and whether it exists.
func (e *env) childGet(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	out, errOut, err := kubectl(t, e.child.Cluster, "", append([]string{"get"}, args...)...)
	if err != nil {
		if strings.Contains(errOut, "NotFound") || strings.Contains(errOut, "not found") {
			return "", false
		}
		t.Fatalf("kubectl get %s in the child: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out, true
}

func (e *env) waitGone(t *testing.T, args ...string) {
	t.Helper()
	waitFor(t, 90*time.Second, strings.Join(args, " ")+" gone from the child", func(context.Context) (bool, string) {
		out, exists := e.childGet(t, args...)
		return !exists, out
	})
}

func seedObjects(t *testing.T) (ns, deploy, svc []byte) {
	return e2eutil.ExampleObject(t, "02-namespace.yaml"), e2eutil.ExampleObject(t, "03-deployment.yaml"), e2eutil.ExampleObject(t, "04-service.yaml")
}

const appDemo = "app-demo-generic"

func (e *env) deliver(t *testing.T) {
	ns, deploy, svc := seedObjects(t)
	e.create(t, e2eutil.GenericDescription(e.child, "app-demo", ns, deploy, svc))
	start := time.Now()
	e.waitPhase(t, appDemo, appsv1alpha1.DescriptionPhaseSuccess, 60*time.Second)
	t.Logf("%s: Description Success %s after creation", e.mode.name, time.Since(start).Round(time.Millisecond))

	// The objects, labelled with what owns them.
	labels := mustKubectl(t, e.child.Cluster, "", "get", "deploy", "my-nginx", "-n", "foo", "-o", "jsonpath={.metadata.labels}")
	var got map[string]string
	if err := json.Unmarshal([]byte(labels), &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"clusternet-app":                        "multi-cluster-nginx",
		appsv1alpha1.LabelSubscriptionName:      "app-demo",
		appsv1alpha1.LabelSubscriptionNamespace: "default",
		appsv1alpha1.LabelDescriptionName:       appDemo,
		appsv1alpha1.LabelDescriptionNamespace:  e.child.Namespace,
	} {
		if got[k] != v {
			t.Errorf("Deployment label %s = %q, want %q (labels %v)", k, got[k], v, got)
		}
	}
	mustKubectl(t, e.child.Cluster, "", "get", "ns", "foo")
	mustKubectl(t, e.child.Cluster, "", "get", "svc", "my-nginx-svc", "-n", "foo")
	if m := mustKubectl(t, e.child.Cluster, "", "get", "deploy", "my-nginx", "-n", "foo", "-o", "jsonpath={.metadata.managedFields[?(@.operation==\"Apply\")].manager}"); m != "clusternet" {
		t.Errorf("server-side apply field manager %q, want clusternet", m)
	}

	// Pods Running on kwok, and the status following them.
	waitFor(t, 90*time.Second, "3 my-nginx pods Running", func(context.Context) (bool, string) {
		out, _, _ := kubectl(t, e.child.Cluster, "", "get", "pods", "-n", "foo", "-l", "app=nginx", "-o", "jsonpath={.items[*].status.phase}")
		return out == "Running Running Running", out
	})
	waitFor(t, 60*time.Second, "manifest statuses: all applied, my-nginx available 3/3", func(ctx context.Context) (bool, string) {
		d, err := e.descriptions().Get(ctx, appDemo, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		want := []appsv1alpha1.ManifestStatus{
			{Feed: appsv1alpha1.Feed{APIVersion: "v1", Kind: "Namespace", Name: "foo"}, FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}},
			{Feed: appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "my-nginx"},
				FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}},
			{Feed: appsv1alpha1.Feed{APIVersion: "v1", Kind: "Service", Namespace: "foo", Name: "my-nginx-svc"}, FeedStatus: appsv1alpha1.FeedStatus{Applied: true, Available: true}},
		}
		diff := cmp.Diff(want, d.Status.ManifestStatuses)
		return diff == "" && d.Status.Phase == appsv1alpha1.DescriptionPhaseSuccess,
			fmt.Sprintf("phase %q reason %q, statuses (-want +got):\n%s", d.Status.Phase, d.Status.Reason, diff)
	})

	// What the seed shows.
	rows := e2eutil.Table(mustKubectl(t, e.parent, "", "get", "desc", "-n", e.child.Namespace))
	if diff := cmp.Diff([][]string{{"NAME", "DEPLOYER", "STATUS", "AGE"}, {appDemo, "Generic", "Success"}}, withoutAge(rows)); diff != "" {
		t.Errorf("kubectl get desc (-want +got):\n%s", diff)
	}
	e.waitEvent(t, appDemo, "SuccessfullyDeployed", "is deployed successfully") // sent after the status
	describe := mustKubectl(t, e.parent, "", "describe", "desc", "-n", e.child.Namespace, appDemo)
	line := regexp.MustCompile(`(?m)^\s+Normal\s+SuccessfullyDeployed\s+\S+\s+` + regexp.QuoteMeta(e.mode.from) +
		`\s+Description ` + regexp.QuoteMeta(e.child.Namespace+"/"+appDemo) + ` is deployed successfully$`)
	if !line.MatchString(describe) || !regexp.MustCompile(`(?m)^\s+Phase:\s+Success$`).MatchString(describe) {
		t.Errorf("kubectl describe desc does not show Phase Success and the SuccessfullyDeployed event from %s:\n%s", e.mode.from, describe)
	}
}

func withoutAge(rows [][]string) [][]string {
	out := [][]string{rows[0]}
	for _, r := range rows[1:] {
		out = append(out, r[:len(r)-1])
	}
	return out
}

func (e *env) correctsDrift(t *testing.T) {
	got := mustKubectl(t, e.child.Cluster, "", "patch", "deploy", "my-nginx", "-n", "foo", "--type=merge",
		"-p", `{"spec":{"replicas":1}}`, "-o", "jsonpath={.spec.replicas}")
	if got != "1" {
		t.Fatalf("the hand edit did not take: replicas %q", got)
	}
	ev := e.waitEvent(t, appDemo, "DriftCorrected",
		`Deployment foo/my-nginx was changed in the child by field manager "kubectl-patch" (Update) (spec.replicas); re-applied the Description's version`)
	if !strings.HasPrefix(ev, "Warning|DriftCorrected|"+e.mode.from+"|") {
		t.Errorf("event %q: want a Warning from %s", ev, e.mode.from)
	}
	waitFor(t, 30*time.Second, "my-nginx back to 3 replicas", func(context.Context) (bool, string) {
		out, _ := e.childGet(t, "deploy", "my-nginx", "-n", "foo", "-o", "jsonpath={.spec.replicas}")
		return out == "3", out
	})
	// Deleted by hand: re-created.
	mustKubectl(t, e.child.Cluster, "", "delete", "svc", "my-nginx-svc", "-n", "foo")
	e.waitEvent(t, appDemo, "DriftCorrected", "Service foo/my-nginx-svc was deleted from the child; re-created it")
	waitFor(t, 30*time.Second, "my-nginx-svc back", func(context.Context) (bool, string) {
		_, exists := e.childGet(t, "svc", "my-nginx-svc", "-n", "foo")
		return exists, ""
	})
}

func (e *env) reportsOptedOutDrift(t *testing.T) {
	mustKubectl(t, e.child.Cluster, "", "patch", "deploy", "my-nginx", "-n", "foo", "--type=merge",
		"-p", `{"metadata":{"annotations":{"apps.clusternet.io/drift-correction":"disabled"}},"spec":{"replicas":2}}`)
	e.waitEvent(t, appDemo, "DriftDetected",
		`Deployment foo/my-nginx was changed in the child by field manager "kubectl-patch" (Update) (spec.replicas); left as is because it has annotation apps.clusternet.io/drift-correction=disabled`)
	// The decision is made: the hand edit stands.
	if out, _ := e.childGet(t, "deploy", "my-nginx", "-n", "foo", "-o", "jsonpath={.spec.replicas}"); out != "2" {
		t.Errorf("replicas %q after DriftDetected, want the hand-set 2", out)
	}
}

func (e *env) prunes(t *testing.T) {
	ns, deploy, _ := seedObjects(t)
	d, err := e.descriptions().Get(context.Background(), appDemo, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// my-nginx-svc goes; a ConfigMap that opts out of drift correction comes.
	d.Spec.Raw = e2eutil.GenericDescription(e.child, "app-demo", ns, deploy, keptConfigMap).Spec.Raw
	if _, err := e.cs.AppsV1alpha1().Descriptions(d.Namespace).Update(context.Background(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone(t, "svc", "my-nginx-svc", "-n", "foo")
	got := e.waitPhase(t, appDemo, appsv1alpha1.DescriptionPhaseSuccess, 30*time.Second)
	var listed []string
	for _, ms := range got.Status.ManifestStatuses {
		listed = append(listed, ms.Kind+"/"+ms.Name)
	}
	if diff := cmp.Diff([]string{"Namespace/foo", "Deployment/my-nginx", "ConfigMap/kept"}, listed); diff != "" {
		t.Errorf("manifest statuses after pruning (-want +got):\n%s", diff)
	}
	e.waitEvent(t, appDemo, "Pruned", "Deleted Service foo/my-nginx-svc from the child: no longer in the Description")
	// The opted-out Deployment kept its hand edit through the update.
	if out, _ := e.childGet(t, "deploy", "my-nginx", "-n", "foo", "-o", "jsonpath={.spec.replicas}"); out != "2" {
		t.Errorf("replicas %q, want the hand-set 2 (drift correction disabled on the child's copy)", out)
	}
}

var keptConfigMap = []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kept","namespace":"foo",` +
	`"annotations":{"apps.clusternet.io/drift-correction":"disabled"}},"data":{"k":"v"}}`)

func (e *env) keepsOptedOutDeletion(t *testing.T) {
	mustKubectl(t, e.child.Cluster, "", "delete", "configmap", "kept", "-n", "foo")
	e.waitEvent(t, appDemo, "DriftDetected",
		"ConfigMap foo/kept was deleted from the child; left as is because it has annotation apps.clusternet.io/drift-correction=disabled")
	waitFor(t, 30*time.Second, "status of ConfigMap kept: deleted by hand, not re-created", func(ctx context.Context) (bool, string) {
		d, err := e.descriptions().Get(ctx, appDemo, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, ms := range d.Status.ManifestStatuses {
			if ms.Kind == "ConfigMap" {
				return !ms.Applied && strings.HasPrefix(ms.Reason, "deleted in the child by hand; not re-created"), fmt.Sprintf("%+v", ms)
			}
		}
		return false, "no ConfigMap in manifest statuses"
	})
	if _, exists := e.childGet(t, "configmap", "kept", "-n", "foo"); exists {
		t.Error("the opted-out ConfigMap was re-created")
	}
	d, err := e.descriptions().Get(context.Background(), appDemo, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.Phase != appsv1alpha1.DescriptionPhaseSuccess {
		t.Errorf("Description phase %q after an opted-out deletion, want Success", d.Status.Phase)
	}
}

func (e *env) badObject(t *testing.T) {
	const name = "bad-demo-generic"
	ns := e2eutil.MustJSON(t, []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bad-ns"}}`))
	broken := e2eutil.MustJSON(t, []byte(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken, namespace: bad-ns}
spec:
  replicas: -1
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec: {containers: [{name: c, image: nginx}]}
`))
	svc := e2eutil.MustJSON(t, []byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"ok-svc","namespace":"bad-ns"},"spec":{"ports":[{"port":80}]}}`))
	e.create(t, e2eutil.GenericDescription(e.child, "bad-demo", ns, broken, svc))
	d := e.waitPhase(t, name, appsv1alpha1.DescriptionPhaseFailure, 60*time.Second)
	for _, want := range []string{"Deployment bad-ns/broken", "spec.replicas: Invalid value: -1", "fix the object's template"} {
		if !strings.Contains(d.Status.Reason, want) {
			t.Errorf("reason %q does not contain %q", d.Status.Reason, want)
		}
	}
	for _, ms := range d.Status.ManifestStatuses {
		if ms.Applied {
			t.Errorf("%s %s reported applied in a failed Description", ms.Kind, ms.Name)
		}
	}
	e.waitEvent(t, name, "FailedDeploying", "Deployment bad-ns/broken")
	// Nothing of it stays: the namespace created to dry-run its objects is deleted again.
	e.waitGone(t, "ns", "bad-ns")
	if out := mustKubectl(t, e.child.Cluster, "", "get", "deploy,svc", "-A", "-l", appsv1alpha1.LabelDescriptionName+"="+name, "-o", "name"); out != "" {
		t.Errorf("objects of the failed Description in the child:\n%s", out)
	}
	// And it deletes cleanly.
	mustKubectl(t, e.parent, "", "delete", "desc", "-n", e.child.Namespace, name, "--wait=false")
	waitFor(t, 30*time.Second, "failed Description deleted", func(ctx context.Context) (bool, string) {
		_, err := e.descriptions().Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

func (e *env) deletes(t *testing.T) {
	mustKubectl(t, e.parent, "", "delete", "desc", "-n", e.child.Namespace, appDemo, "--wait=false")
	waitFor(t, 90*time.Second, "Description deleted", func(ctx context.Context) (bool, string) {
		d, err := e.descriptions().Get(ctx, appDemo, metav1.GetOptions{})
		if err == nil {
			return false, fmt.Sprintf("finalizers %v", d.Finalizers)
		}
		return apierrors.IsNotFound(err), err.Error()
	})
	// The finalizer goes only once the objects are gone.
	for _, args := range [][]string{{"deploy", "my-nginx", "-n", "foo"}, {"ns", "foo"}} {
		if out, exists := e.childGet(t, args...); exists {
			t.Errorf("%s still in the child after its Description is gone:\n%s", strings.Join(args, " "), out)
		}
	}
	e.waitEvent(t, appDemo, "DeletedFromChild", "Deleted the Description's objects from the child")
}

// keepsPreExisting delivers a Description listing a namespace a team
// already had (with its own data in it), the child's "default" namespace
// and a ConfigMap of its own, then deletes it: only the ConfigMap goes;
// both namespaces stay, no longer carrying anything of Clusternet, and the
// Description's deletion does not hang on "default".
func (e *env) keepsPreExisting(t *testing.T) {
	const name = "monitoring-generic"
	mustKubectl(t, e.child.Cluster, "", "create", "namespace", "monitoring")
	t.Cleanup(func() { _, _, _ = kubectl(t, e.child.Cluster, "", "delete", "namespace", "monitoring", "--wait=false") })
	mustKubectl(t, e.child.Cluster, "", "label", "namespace", "monitoring", "team=observability")
	mustKubectl(t, e.child.Cluster, "", "create", "configmap", "team-data", "-n", "monitoring", "--from-literal=alerts=on")

	ns := []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"monitoring","labels":{"purpose":"metrics"}}}`)
	def := []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"}}`)
	cm := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ours","namespace":"monitoring"},"data":{"from":"clusternet"}}`)
	e.create(t, e2eutil.GenericDescription(e.child, "monitoring", ns, def, cm))
	e.waitPhase(t, name, appsv1alpha1.DescriptionPhaseSuccess, 60*time.Second)

	// Adopted: labelled for the Description, not marked as created by it.
	meta := func(args ...string) (labels, annotations map[string]string, managers string) {
		t.Helper()
		out := mustKubectl(t, e.child.Cluster, "", append([]string{"get"}, append(args, "-o", "json")...)...)
		var o metav1.PartialObjectMetadata
		if err := json.Unmarshal([]byte(out), &o); err != nil {
			t.Fatal(err)
		}
		var m []string
		for _, mf := range o.ManagedFields {
			m = append(m, mf.Manager+"/"+string(mf.Operation))
		}
		return o.Labels, o.Annotations, strings.Join(m, ",")
	}
	createdBy := "apps.clusternet.io/created-by"
	for _, args := range [][]string{{"namespace", "monitoring"}, {"namespace", "default"}} {
		labels, annotations, _ := meta(args...)
		if labels[appsv1alpha1.LabelDescriptionName] != name {
			t.Errorf("%s: labels %v, want %s=%s", strings.Join(args, " "), labels, appsv1alpha1.LabelDescriptionName, name)
		}
		if v, ok := annotations[createdBy]; ok {
			t.Errorf("%s existed before Clusternet, but carries %s=%s", strings.Join(args, " "), createdBy, v)
		}
	}
	if _, annotations, _ := meta("configmap", "ours", "-n", "monitoring"); annotations[createdBy] != e.child.Namespace+"/"+name {
		t.Errorf("ConfigMap monitoring/ours annotations %v, want %s=%s/%s", annotations, createdBy, e.child.Namespace, name)
	}

	mustKubectl(t, e.parent, "", "delete", "desc", "-n", e.child.Namespace, name, "--wait=false")
	waitFor(t, 60*time.Second, "Description "+name+" deleted", func(ctx context.Context) (bool, string) {
		d, err := e.descriptions().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return false, fmt.Sprintf("finalizers %v, phase %q, reason %q", d.Finalizers, d.Status.Phase, d.Status.Reason)
		}
		return apierrors.IsNotFound(err), err.Error()
	})
	e.waitGone(t, "configmap", "ours", "-n", "monitoring")
	if phase := mustKubectl(t, e.child.Cluster, "", "get", "namespace", "monitoring", "-o", "jsonpath={.status.phase}"); phase != "Active" {
		t.Errorf("namespace monitoring is %q, want it Active: it existed before Clusternet", phase)
	}
	if data := mustKubectl(t, e.child.Cluster, "", "get", "configmap", "team-data", "-n", "monitoring", "-o", "jsonpath={.data.alerts}"); data != "on" {
		t.Errorf("the team's ConfigMap monitoring/team-data holds alerts=%q, want on", data)
	}
	for _, args := range [][]string{{"namespace", "monitoring"}, {"namespace", "default"}} {
		labels, annotations, managers := meta(args...)
		for k := range labels {
			if strings.HasPrefix(k, "apps.clusternet.io/") {
				t.Errorf("%s still has label %s after its Description is gone", strings.Join(args, " "), k)
			}
		}
		for k := range annotations {
			if strings.HasPrefix(k, "apps.clusternet.io/") {
				t.Errorf("%s still has annotation %s after its Description is gone", strings.Join(args, " "), k)
			}
		}
		if strings.Contains(managers, "clusternet/") {
			t.Errorf("%s still lists field manager clusternet: %s", strings.Join(args, " "), managers)
		}
	}
	if labels, _, _ := meta("namespace", "monitoring"); labels["team"] != "observability" || labels["purpose"] != "metrics" {
		t.Errorf("namespace monitoring labels %v: want the team's (team=observability) and what the Description set (purpose=metrics)", labels)
	}
	e.waitEvent(t, name, "LeftInChild", "Left Namespace monitoring in the child: it existed before Clusternet applied it")
	e.waitEvent(t, name, "LeftInChild", "Left Namespace default in the child: it is one of the child's system namespaces")
}

// restartMidRollout kills whoever applies (the hub for push, the agent for
// pull) while a large Description's objects are being applied, and checks
// the restarted one completes it, once.
func (e *env) restartMidRollout(t *testing.T) {
	const name, configMaps = "rollout-generic", 100
	objs := [][]byte{e2eutil.MustJSON(t, []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"roll"}}`))}
	for i := range configMaps {
		objs = append(objs, e2eutil.MustJSON(t, fmt.Appendf(nil, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-%03d","namespace":"roll"},"data":{"i":"%d"}}`, i, i)))
	}
	var deploy map[string]any
	_, raw, _ := seedObjects(t)
	if err := json.Unmarshal(raw, &deploy); err != nil {
		t.Fatal(err)
	}
	deploy["metadata"].(map[string]any)["namespace"] = "roll"
	depJSON, _ := json.Marshal(deploy)
	objs = append(objs, depJSON)
	e.create(t, e2eutil.GenericDescription(e.child, "rollout", objs...))

	ctx := context.Background()
	selector := metav1.ListOptions{LabelSelector: appsv1alpha1.LabelDescriptionName + "=" + name}
	// Kill as soon as the first ConfigMap is applied: the Namespace is
	// there, every dry-run passed, and the real applies are under way.
	waitFor(t, 60*time.Second, "the first ConfigMap in the child", func(ctx context.Context) (bool, string) {
		cms, err := e.kube.CoreV1().ConfigMaps("roll").List(ctx, selector)
		return err == nil && len(cms.Items) > 0, fmt.Sprint(err)
	})
	if e.mode.from == "clusternet-hub" {
		e2eutil.KillHub(t, e.hub)
	} else {
		e2eutil.KillAgent(t, e.child)
	}
	cms, err := e.kube.CoreV1().ConfigMaps("roll").List(ctx, selector)
	if err != nil {
		t.Fatal(err)
	}
	_, depErr := e.kube.AppsV1().Deployments("roll").Get(ctx, "my-nginx", metav1.GetOptions{})
	t.Logf("%s killed with %d of %d ConfigMaps applied, Deployment applied: %v", e.mode.from, len(cms.Items), configMaps, depErr == nil)
	if len(cms.Items) == configMaps && depErr == nil {
		t.Fatalf("the rollout finished before %s was killed: this run shows no restart mid-rollout", e.mode.from)
	}
	start := time.Now()
	e.waitPhase(t, name, appsv1alpha1.DescriptionPhaseSuccess, 120*time.Second)
	t.Logf("%s restarted: rollout complete %s after the kill", e.mode.from, time.Since(start).Round(time.Millisecond))

	cms, err = e.kube.CoreV1().ConfigMaps("roll").List(ctx, selector)
	if err != nil {
		t.Fatal(err)
	}
	if len(cms.Items) != configMaps {
		t.Errorf("%d ConfigMaps in the child, want %d", len(cms.Items), configMaps)
	}
	waitFor(t, 90*time.Second, "3 my-nginx pods Running in roll, one ReplicaSet", func(context.Context) (bool, string) {
		pods, _, _ := kubectl(t, e.child.Cluster, "", "get", "pods", "-n", "roll", "-l", "app=nginx", "-o", "jsonpath={.items[*].status.phase}")
		rs, _, _ := kubectl(t, e.child.Cluster, "", "get", "rs", "-n", "roll", "-o", "name")
		return pods == "Running Running Running" && strings.Count(strings.TrimSpace(rs), "\n") == 0 && rs != "", pods + " / " + rs
	})
	// One SuccessfullyDeployed, however many times it was applied (sent in
	// the background after the status the wait above saw).
	e.waitEvent(t, name, "SuccessfullyDeployed", "is deployed successfully")
	evs := e.events(t, name, "SuccessfullyDeployed")
	if len(evs) != 1 || !strings.HasSuffix(evs[0], "|1|Description "+e.child.Namespace+"/"+name+" is deployed successfully") {
		t.Errorf("SuccessfullyDeployed events (type|reason|source|count|message):\n%s\nwant exactly one, counted once", strings.Join(evs, "\n"))
	}
	mustKubectl(t, e.parent, "", "delete", "desc", "-n", e.child.Namespace, name, "--wait=false")
	e.waitGone(t, "ns", "roll")
}
