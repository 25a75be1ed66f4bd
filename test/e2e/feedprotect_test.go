package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/helmrepo"
	"github.com/clusternet/clusternet/test/testbed"
)

// feedHeld is the hub's note (annotation and event) on an object whose
// deletion Subscription <holder> holds through spec.feeds[<index>].
func feedHeld(what, holder string, index int) string {
	return fmt.Sprintf("%s is being deleted, and FeedInUseProtection holds it while Subscriptions use it as a feed: "+
		"Subscription %s (spec.feeds[%d]); remove it from their spec.feeds or delete them, and the deletion completes", what, holder, index)
}

// TestFeedInUseProtection: with the hub's FeedInUseProtection on, deleting
// a template (kubectl through the shadow API) or a HelmChart that a
// Subscription of its namespace uses is held, the object still there and
// still distributed, until the Subscription drops it; a Subscription of
// another namespace naming the same objects, created by a user of that
// namespace with their own token, holds nothing.
func TestFeedInUseProtection(t *testing.T) {
	tb := testbed.ForTest(t, 1)
	parent := tb.Parent
	e2eutil.SetUpParent(t, parent, "--feature-gates=FeedInUseProtection=true")
	child := e2eutil.RegisterChildren(t, parent, tb.Children, nil)[0]
	cs := e2eutil.ClusternetClient(t, parent)
	ctx := context.Background()

	// Subscriptions hold only what is in their own namespace, so the
	// application lives in team-a, in the parent too.
	mustKubectl(t, parent, "", "create", "namespace", "team-a")
	const configMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  namespace: team-a
data:
  greeting: hello
`
	e2eutil.CreateTemplate(t, parent, `apiVersion: v1
kind: Namespace
metadata:
  name: team-a
---
`+configMap)
	repo := helmrepo.NewRepo(t)
	repo.Add(t, helmrepo.DemoChart("mysql", "8.6.2"))
	mustKubectl(t, parent, fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: HelmChart
metadata:
  name: mysql
  namespace: team-a
spec:
  repo: %s
  chart: mysql
  version: 8.6.2
  targetNamespace: team-a
`, repo.URL), "apply", "-f", "-")
	waitFor(t, 60*time.Second, "HelmChart team-a/mysql Found", func(ctx context.Context) (bool, string) {
		ch, err := cs.AppsV1alpha1().HelmCharts("team-a").Get(ctx, "mysql", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return ch.Status.Phase == appsv1alpha1.HelmChartFound, fmt.Sprintf("status %+v", ch.Status)
	})

	mustKubectl(t, parent, fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata:
  name: app
  namespace: team-a
spec:
  subscribers:
    - clusterAffinity:
        matchLabels:
          clusters.clusternet.io/cluster-id: %s
  feeds:
    - {apiVersion: v1, kind: Namespace, name: team-a}
    - {apiVersion: v1, kind: ConfigMap, namespace: team-a, name: web}
    - {apiVersion: apps.clusternet.io/v1alpha1, kind: HelmChart, namespace: team-a, name: mysql}
`, child.ID), "apply", "-f", "-")

	// The party kept out: a parent user who may create Subscriptions only in
	// default and read team-a's templates and HelmCharts, so the
	// Subscription webhook admits a Subscription of theirs naming them. It
	// is applied with exactly that user's token; it must hold neither.
	thief := thiefOfDefault(t, parent)
	if out, errOut, err := kubectl(t, thief, `apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata:
  name: thief
  namespace: default
spec:
  subscribers:
    - clusterAffinity:
        matchLabels:
          clusters.clusternet.io/cluster-id: nobody
  feeds:
    - {apiVersion: v1, kind: ConfigMap, namespace: team-a, name: web}
    - {apiVersion: apps.clusternet.io/v1alpha1, kind: HelmChart, namespace: team-a, name: mysql}
`, "create", "-f", "-"); err != nil {
		t.Fatalf("the thief's Subscription default/thief, naming team-a's objects it may read, was refused: %v\n%s%s", err, out, errOut)
	}

	finalizers := func(ctx context.Context) map[string]string {
		got := map[string]string{}
		for _, tmpl := range []struct{ group, kind, ns, name string }{{"", "Namespace", "", "team-a"}, {"", "ConfigMap", "team-a", "web"}} {
			m, err := cs.AppsV1alpha1().Manifests(appsv1alpha1.ReservedNamespace).Get(ctx,
				appsv1alpha1.ManifestName(tmpl.group, tmpl.kind, tmpl.ns, tmpl.name), metav1.GetOptions{})
			if err == nil {
				got[tmpl.kind+" template"] = strings.Join(m.Finalizers, ",")
			}
		}
		if ch, err := cs.AppsV1alpha1().HelmCharts("team-a").Get(ctx, "mysql", metav1.GetOptions{}); err == nil {
			got["HelmChart"] = strings.Join(ch.Finalizers, ",")
		}
		return got
	}
	want := map[string]string{
		// Cluster-scoped: no namespace's Subscriptions hold it.
		"Namespace template": "",
		"ConfigMap template": appsv1alpha1.FeedProtectionFinalizer,
		"HelmChart":          appsv1alpha1.FeedProtectionFinalizer,
	}
	waitFor(t, 30*time.Second, "the feeds in use protected", func(ctx context.Context) (bool, string) {
		got := finalizers(ctx)
		return cmp.Equal(want, got), cmp.Diff(want, got)
	})
	waitFor(t, 90*time.Second, "ConfigMap team-a/web in the child", func(context.Context) (bool, string) {
		out, errOut, err := kubectl(t, child.Cluster, "", "get", "configmap", "web", "-n", "team-a", "-o", "jsonpath={.data.greeting}")
		return err == nil && out == "hello", out + errOut
	})

	template := func(t *testing.T) (map[string]any, string, error) {
		out, errOut, err := e2eutil.Plugin(t, parent, "get", "configmap", "web", "-n", "team-a", "-o", "json")
		if err != nil {
			return nil, out + errOut, err
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(out), &obj); err != nil {
			return nil, out, err
		}
		return obj, out, nil
	}
	tmplWhat := `the template of v1 ConfigMap "team-a/web"`
	heldNote := feedHeld(tmplWhat, "team-a/app", 1)

	ok := t.Run("deleting a template in use is held until its Subscription drops it", func(t *testing.T) {
		out, errOut, err := e2eutil.Plugin(t, parent, "delete", "configmap", "web", "-n", "team-a", "--wait=false")
		if err != nil || !strings.Contains(out, `"web" deleted`) {
			t.Fatalf("kubectl clusternet delete configmap web = %v\n%s%s", err, out, errOut)
		}
		waitFor(t, 30*time.Second, "the held template showing its deletion and who holds it", func(context.Context) (bool, string) {
			obj, raw, err := template(t)
			if err != nil {
				return false, raw
			}
			md, _ := obj["metadata"].(map[string]any)
			ann, _ := md["annotations"].(map[string]any)
			return md["deletionTimestamp"] != nil && ann[appsv1alpha1.AnnotationFeedProtection] == heldNote, raw
		})
		// The controller writes the note first and records its events
		// through an asynchronous broadcaster: wait for them.
		wantEvent := "Warning " + tmplWhat + " is being deleted, and FeedInUseProtection holds it while this Subscription uses it (spec.feeds[1]): " +
			"remove it from spec.feeds (drop the feed, or narrow its feedSelector) or delete this Subscription, and the deletion completes; until then it is still distributed"
		waitFor(t, 30*time.Second, "a FeedInUse event on Subscription team-a/app saying it holds the template: "+wantEvent, func(context.Context) (bool, string) {
			events, errOut, err := feedInUseEvents(t, parent, "team-a", "Subscription", "app")
			return err == nil && strings.Contains(events, wantEvent), events + errOut
		})
		noThiefEvents(t, parent)

		// The name stays taken, saying by whom.
		file := filepath.Join(t.TempDir(), "cm.yaml")
		if err := os.WriteFile(file, []byte(configMap), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, err = e2eutil.Plugin(t, parent, "create", "-f", file)
		wantErr := `object is being deleted: configmaps "web" already exists: ` + heldNote + `; create it again once it is gone`
		if err == nil || !strings.Contains(errOut, "(AlreadyExists)") || !strings.Contains(errOut, wantErr) {
			t.Errorf("kubectl clusternet create of the held template = %v\n%s%s\nwant an AlreadyExists error saying %q", err, out, errOut, wantErr)
		}

		// Held, it is still what the Subscription distributes.
		sub, err := cs.AppsV1alpha1().Subscriptions("team-a").Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range sub.Status.Conditions {
			if c.Type == "FeedsResolved" && c.Status != metav1.ConditionTrue {
				t.Errorf("Subscription team-a/app FeedsResolved = %s %s: %s, want True while the template is held", c.Status, c.Reason, c.Message)
			}
		}
		if out, errOut, err := kubectl(t, child.Cluster, "", "get", "configmap", "web", "-n", "team-a", "-o", "name"); err != nil {
			t.Errorf("ConfigMap team-a/web left the child while its template is held: %v\n%s%s", err, out, errOut)
		}

		// team-a/app drops it; default/thief still names it, and holds nothing.
		mustKubectl(t, parent, "", "patch", "subscription", "app", "-n", "team-a", "--type=json",
			"-p", `[{"op":"test","path":"/spec/feeds/1/name","value":"web"},{"op":"remove","path":"/spec/feeds/1"}]`)
		waitFor(t, 30*time.Second, "the released template gone from the shadow API", func(context.Context) (bool, string) {
			_, raw, err := template(t)
			return err != nil && strings.Contains(raw, "NotFound"), raw
		})
		waitFor(t, 90*time.Second, "ConfigMap team-a/web pruned from the child", func(context.Context) (bool, string) {
			out, errOut, err := kubectl(t, child.Cluster, "", "get", "configmap", "web", "-n", "team-a", "-o", "name")
			return err != nil && strings.Contains(errOut, "NotFound"), out + errOut
		})
		// The name is free again. Once team-a/app uses the new template,
		// it is protected again.
		e2eutil.CreateTemplate(t, parent, configMap)
		mustKubectl(t, parent, "", "patch", "subscription", "app", "-n", "team-a", "--type=json",
			"-p", `[{"op":"add","path":"/spec/feeds/-","value":{"apiVersion":"v1","kind":"ConfigMap","namespace":"team-a","name":"web"}}]`)
		waitFor(t, 30*time.Second, "the new template, which team-a/app uses again (spec.feeds[2]), protected", func(ctx context.Context) (bool, string) {
			got, ok := finalizers(ctx)["ConfigMap template"]
			return ok && got == appsv1alpha1.FeedProtectionFinalizer, fmt.Sprintf("present %v, finalizers %q", ok, got)
		})
		// Dropped again, it is unprotected and stays: only a deletion
		// waits for the last user.
		mustKubectl(t, parent, "", "patch", "subscription", "app", "-n", "team-a", "--type=json",
			"-p", `[{"op":"test","path":"/spec/feeds/2/name","value":"web"},{"op":"remove","path":"/spec/feeds/2"}]`)
		waitFor(t, 30*time.Second, "the template team-a/app no longer uses unprotected, and still there", func(ctx context.Context) (bool, string) {
			got, ok := finalizers(ctx)["ConfigMap template"]
			return ok && got == "", fmt.Sprintf("present %v, finalizers %q", ok, got)
		})
	})
	if !ok {
		return
	}

	t.Run("deleting a HelmChart in use is held until its Subscription is deleted", func(t *testing.T) {
		out, errOut, err := kubectl(t, parent, "", "delete", "helmchart", "mysql", "-n", "team-a", "--wait=false")
		if err != nil || !strings.Contains(out, `"mysql" deleted`) {
			t.Fatalf("kubectl delete helmchart mysql = %v\n%s%s", err, out, errOut)
		}
		// The ConfigMap feed is gone, so the HelmChart is spec.feeds[1] now.
		chartNote := feedHeld("HelmChart team-a/mysql", "team-a/app", 1)
		waitFor(t, 30*time.Second, "the held HelmChart saying who holds it", func(ctx context.Context) (bool, string) {
			ch, err := cs.AppsV1alpha1().HelmCharts("team-a").Get(ctx, "mysql", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return ch.DeletionTimestamp != nil && ch.Annotations[appsv1alpha1.AnnotationFeedProtection] == chartNote,
				fmt.Sprintf("deletionTimestamp %v, annotations %v", ch.DeletionTimestamp, ch.Annotations)
		})
		waitFor(t, 30*time.Second, "a FeedInUse event on HelmChart team-a/mysql naming its holder: Warning "+chartNote, func(context.Context) (bool, string) {
			events, errOut, err := feedInUseEvents(t, parent, "team-a", "HelmChart", "mysql")
			return err == nil && strings.Contains(events, "Warning "+chartNote), events + errOut
		})

		mustKubectl(t, parent, "", "delete", "subscription", "app", "-n", "team-a", "--wait=false")
		waitFor(t, 90*time.Second, "the released HelmChart gone", func(context.Context) (bool, string) {
			out, errOut, err := kubectl(t, parent, "", "get", "helmchart", "mysql", "-n", "team-a", "-o", "name")
			return err != nil && strings.Contains(errOut, "NotFound"), out + errOut
		})
		noThiefEvents(t, parent)
	})
}

// feedInUseEvents lists the FeedInUse events of the parent about one object
// as "type message" lines.
func feedInUseEvents(t *testing.T, parent *testbed.Cluster, namespace, kind, name string) (string, string, error) {
	t.Helper()
	return kubectl(t, parent, "", "get", "events", "-n", namespace, "--field-selector",
		"involvedObject.kind="+kind+",involvedObject.name="+name+",reason=FeedInUse", "-o", `jsonpath={range .items[*]}{.type} {.message}{"\n"}{end}`)
}

// noThiefEvents fails the test if any FeedInUse event is in namespace
// default: its Subscription thief names team-a's objects, and holds none.
// Called once the holders' own events are there, which the same syncs
// record.
func noThiefEvents(t *testing.T, parent *testbed.Cluster) {
	t.Helper()
	if events := mustKubectl(t, parent, "", "get", "events", "-n", "default", "--field-selector", "reason=FeedInUse", "-o", "name"); events != "" {
		t.Errorf("Subscription default/thief holds objects of another namespace: events %s", events)
	}
}

// thiefOfDefault sets up ServiceAccount default/thief, who may create
// Subscriptions in default and read team-a's templates and HelmCharts (the
// real kind too, as --shadow-authorize-real-kind asks) and nothing more,
// and returns the parent as that user: a kubeconfig holding only the token
// `kubectl create token` hands out for it.
func thiefOfDefault(t *testing.T, parent *testbed.Cluster) *testbed.Cluster {
	t.Helper()
	mustKubectl(t, parent, `apiVersion: v1
kind: ServiceAccount
metadata: {name: thief, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: subscription-creator, namespace: default}
rules:
  - apiGroups: [apps.clusternet.io]
    resources: [subscriptions]
    verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: thief-creates-subscriptions, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: subscription-creator}
subjects: [{kind: ServiceAccount, name: thief, namespace: default}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: template-reader, namespace: team-a}
rules:
  - apiGroups: [shadow]
    resources: [configmaps]
    verbs: [get, list, watch]
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get, list, watch]
  - apiGroups: [apps.clusternet.io]
    resources: [helmcharts]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: thief-reads-templates, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: template-reader}
subjects: [{kind: ServiceAccount, name: thief, namespace: default}]
`, "apply", "-f", "-")
	token := strings.TrimSpace(mustKubectl(t, parent, "", "create", "token", "thief", "-n", "default", "--duration=1h"))
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["parent"] = &clientcmdapi.Cluster{Server: parent.URL, CertificateAuthority: parent.CAFile}
	cfg.AuthInfos["thief"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["thief"] = &clientcmdapi.Context{Cluster: "parent", AuthInfo: "thief"}
	cfg.CurrentContext = "thief"
	file := filepath.Join(t.TempDir(), "thief.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, file); err != nil {
		t.Fatal(err)
	}
	thief := *parent
	thief.Kubeconfig = file

	// Asked as the thief: RBAC takes its bindings in a moment; and what it
	// may not do, so that what it holds below is all its Subscription's.
	waitFor(t, 30*time.Second, "the thief's rights in effect", func(context.Context) (bool, string) {
		out, errOut, _ := kubectl(t, &thief, "", "auth", "can-i", "create", "subscriptions.apps.clusternet.io", "-n", "default")
		return strings.TrimSpace(out) == "yes", out + errOut
	})
	for _, verb := range []string{"create", "update", "delete"} {
		if out, _, _ := kubectl(t, &thief, "", "auth", "can-i", verb, "subscriptions.apps.clusternet.io", "-n", "team-a"); strings.TrimSpace(out) != "no" {
			t.Fatalf("the thief may %s Subscriptions in team-a (%q): it is no longer the party kept out", verb, out)
		}
	}
	return &thief
}
