package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// runRender runs `kubectl clusternet render args...` in namespace default
// against the fake parent cs.
func runRender(t *testing.T, cs versioned.Interface, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	o := NewRenderOptions(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, &ClusterFlags{})
	o.namespace = "default"
	o.mapper = testMapper(t)
	o.newClient = func() (versioned.Interface, error) { return cs, nil }
	cmd := newCmdRender(o, nil, nil)
	// The root's persistent --cluster, as the plugin's root gives it.
	o.clusterFlags.AddFlags(cmd.Flags())
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceErrors = true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// localized is child1's Description as a Localization makes it: 5 replicas
// instead of the template's 3.
func localized(d *appsv1alpha1.Description) {
	d.Spec.Raw[1].Raw = []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"my-nginx","namespace":"foo"},"spec":{"replicas":5}}`)
}

// generation says which generation of the Subscription a Base was written from.
func generation(g string) func(*appsv1alpha1.Base) {
	return func(b *appsv1alpha1.Base) {
		b.Annotations = map[string]string{annotationSubscriptionGeneration: g}
	}
}

// renderedFor is app-demo rendered for both clusters, child1's with its
// Localization, from the Subscription sub and Bases made by base1 and base2
// (their generation annotation, their Rendered condition).
func renderedFor(sub *appsv1alpha1.Subscription, base1, base2 []func(*appsv1alpha1.Base)) []runtime.Object {
	return []runtime.Object{
		sub, testBase(nsChild1, id1, base1...), testBase(nsChild2, id2, base2...),
		testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3, localized),
		testDescription(nsChild2, id2, appsv1alpha1.DescriptionPhaseSuccess, 3),
	}
}

// rendered is app-demo rendered for both clusters from generation 1; mods
// change the Subscription.
func rendered(mods ...func(*appsv1alpha1.Subscription)) []runtime.Object {
	return renderedFor(testSubscription(mods...), bases(generation("1")), bases(generation("1")))
}

func bases(mods ...func(*appsv1alpha1.Base)) []func(*appsv1alpha1.Base) { return mods }

const (
	namespaceFoo = `apiVersion: v1
kind: Namespace
metadata:
  name: foo
`
	nginx5 = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-nginx
  namespace: foo
spec:
  replicas: 5
`
	nginx3 = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-nginx
  namespace: foo
spec:
  replicas: 3
`
)

// generationTwo is a Subscription edited once more (generation 2).
func generationTwo(scheduled bool) func(*appsv1alpha1.Subscription) {
	return func(s *appsv1alpha1.Subscription) {
		s.Generation = 2
		if scheduled {
			for i := range s.Status.Conditions {
				s.Status.Conditions[i].ObservedGeneration = 2
			}
		}
	}
}

func TestRender(t *testing.T) {
	boundTo := `it is bound to child1 (namespace clusternet-5l82l, id ` + id1 + `), child2 (namespace clusternet-8x2kq, id ` + id2 + `)`
	for _, tc := range []struct {
		name            string
		objs            []runtime.Object
		args            []string
		wantOut         string
		wantErr, errOut string
		// usage: a mistake on the command line prints the usage.
		usage bool
	}{
		{
			name: "one cluster by name: its objects as they are, the Localization's change included",
			objs: rendered(), args: []string{"subscription/app-demo", "--cluster", "child1"},
			wantOut: namespaceFoo + "---\n" + nginx5,
		},
		{
			name: "one cluster by id: the other cluster's objects, without the change",
			objs: rendered(), args: []string{"subs", "app-demo", "--cluster", id2},
			wantOut: namespaceFoo + "---\n" + nginx3,
		},
		{
			name: "one cluster by <namespace>/<name>",
			objs: rendered(), args: []string{"subscription/app-demo", "--cluster-id", nsChild2 + "/child2"},
			wantOut: namespaceFoo + "---\n" + nginx3,
		},
		{
			name: "every bound cluster, each document after its cluster's name",
			objs: rendered(), args: []string{"subscription/app-demo"},
			wantOut: "# cluster: child1\n" + namespaceFoo + "---\n# cluster: child1\n" + nginx5 +
				"---\n# cluster: child2\n" + namespaceFoo + "---\n# cluster: child2\n" + nginx3,
		},
		{
			name: "a cluster that is not bound: an error listing the bound ones",
			objs: rendered(), args: []string{"subscription/app-demo", "--cluster", "child3"},
			wantErr: `--cluster "child3": subscription "app-demo" in namespace "default" is not bound to that cluster; ` + boundTo,
		},
		{
			name: "a Subscription the hub has not scheduled since its last edit: stale everywhere, nothing printed",
			objs: rendered(generationTwo(false)), args: []string{"subscription/app-demo"},
			errOut: "error: cluster child1: its Descriptions are not rendered from the Subscription's current generation (2): waiting for the hub to schedule generation 2; " +
				"wait for the hub (`kubectl clusternet rollout status subscription/app-demo -n default`), or pass --allow-stale to print them as they are\n" +
				"error: cluster child2: its Descriptions are not rendered from the Subscription's current generation (2): waiting for the hub to schedule generation 2; " +
				"wait for the hub (`kubectl clusternet rollout status subscription/app-demo -n default`), or pass --allow-stale to print them as they are\n",
			wantErr: `error: subscription "app-demo" in namespace "default": 2 of 2 clusters not printed: child1, child2`,
		},
		{
			name: "--allow-stale prints them with a warning",
			objs: rendered(generationTwo(false)), args: []string{"subscription/app-demo", "--cluster", "child1", "--allow-stale"},
			wantOut: namespaceFoo + "---\n" + nginx5,
			errOut:  "warning: cluster child1: printing Descriptions not rendered from the Subscription's current generation (2): waiting for the hub to schedule generation 2\n",
		},
		{
			name:    "scheduled, but one Base is still of the earlier generation: the other cluster is printed",
			objs:    renderedFor(testSubscription(generationTwo(true)), bases(generation("2")), bases(generation("1"))),
			args:    []string{"subscription/app-demo"},
			wantOut: "# cluster: child1\n" + namespaceFoo + "---\n# cluster: child1\n" + nginx5,
			errOut: "error: cluster child2: its Descriptions are not rendered from the Subscription's current generation (2): Base clusternet-8x2kq/app-demo was written from generation 1 of the Subscription; " +
				"wait for the hub (`kubectl clusternet rollout status subscription/app-demo -n default`), or pass --allow-stale to print them as they are\n",
			wantErr: `error: subscription "app-demo" in namespace "default": 1 of 2 clusters not printed: child2`,
		},
		{
			name: "a Base whose rendering failed keeps its Descriptions as they were: stale",
			objs: renderedFor(testSubscription(), bases(generation("1"), renderFailed), bases(generation("1"))),
			args: []string{"subscription/app-demo", "--cluster", "child1"},
			errOut: "error: cluster child1: its Descriptions are not rendered from the Subscription's current generation (1): rendering Base clusternet-5l82l/app-demo failed (OverrideFailed): " +
				"Localization clusternet-5l82l/bad: the patch does not apply; the Descriptions stay as they were; wait for the hub (`kubectl clusternet rollout status subscription/app-demo -n default`), or pass --allow-stale to print them as they are\n",
			wantErr: `error: subscription "app-demo" in namespace "default": 1 of 1 clusters not printed: child1`,
		},
		{
			name: "a cluster with nothing rendered yet fails even with --allow-stale",
			objs: []runtime.Object{
				testSubscription(),
				testBase(nsChild1, id1, generation("1")),
			},
			args:    []string{"subscription/app-demo", "--cluster", "child1", "--allow-stale"},
			errOut:  "error: cluster child1: nothing is rendered for it yet: Description clusternet-5l82l/app-demo-generic is not rendered yet\n",
			wantErr: `error: subscription "app-demo" in namespace "default": 1 of 1 clusters not printed: child1`,
		},
		{
			name: "a Subscription bound to no cluster",
			objs: []runtime.Object{testSubscription(func(s *appsv1alpha1.Subscription) { s.Status.BindingClusters = nil })},
			args: []string{"subscription/app-demo"},
			wantErr: `subscription "app-demo" in namespace "default" is bound to no cluster (its status.bindingClusters is empty): ` +
				"`kubectl clusternet rollout status subscription/app-demo -n default` says why",
		},
		{
			name:    "not a Subscription",
			objs:    rendered(),
			args:    []string{"deploy/my-nginx"},
			wantErr: "deployment/my-nginx is a Deployment, not a Subscription: render prints what a Subscription sends",
			usage:   true,
		},
		{
			name:    "an output render does not have",
			objs:    rendered(),
			args:    []string{"subscription/app-demo", "-o", "wide"},
			wantErr: `--output "wide": give yaml or json`,
			usage:   true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runRender(t, fake.NewClientset(tc.objs...), tc.args...)
			if tc.usage {
				if !strings.HasPrefix(out, "Usage:\n  render ") {
					t.Errorf("output %q, want the usage", out)
				}
			} else if diff := cmp.Diff(tc.wantOut, out); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.errOut, errOut); diff != "" {
				t.Errorf("error stream (-want +got):\n%s", diff)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.HasPrefix(exitMessage(err), "error: "+strings.TrimPrefix(tc.wantErr, "error: "))):
				t.Errorf("error %q, want it to start %q", exitMessage(err), tc.wantErr)
			}
		})
	}
}

func renderFailed(b *appsv1alpha1.Base) {
	b.Status.Conditions[0].Status, b.Status.Conditions[0].Reason = "False", "OverrideFailed"
	b.Status.Conditions[0].Message = "Localization clusternet-5l82l/bad: the patch does not apply; the Descriptions stay as they were"
}

// helmRendered is app-demo with the chart mysql too, rendered for child1
// with the values a Localization gives it.
func helmRendered() []runtime.Object {
	chartFeed := appsv1alpha1.Feed{APIVersion: appsv1alpha1.SchemeGroupVersion.String(), Kind: "HelmChart", Namespace: "default", Name: "mysql"}
	withChart := func(b *appsv1alpha1.Base) { b.Spec.Feeds = append(b.Spec.Feeds, chartFeed) }
	helm := testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3, func(d *appsv1alpha1.Description) {
		d.Name = "app-demo-helm"
		d.Spec = appsv1alpha1.DescriptionSpec{
			Deployer: appsv1alpha1.DescriptionHelmDeployer,
			Charts: []appsv1alpha1.ChartReference{{Namespace: "default", Name: "mysql", Options: &appsv1alpha1.HelmOptions{
				Repository: "https://charts.bitnami.com/bitnami", Chart: "mysql", ChartVersion: "8.6.2", TargetNamespace: "abc",
			}}},
			ChartRaw: [][]byte{[]byte(`{"auth":{"rootPassword":"s3cret"},"primary":{"persistence":{"enabled":false}}}`)},
		}
	})
	return []runtime.Object{
		testSubscription(), testBase(nsChild1, id1, generation("1"), withChart),
		testDescription(nsChild1, id1, appsv1alpha1.DescriptionPhaseSuccess, 3), helm,
	}
}

func TestRenderHelm(t *testing.T) {
	cs := fake.NewClientset(helmRendered()...)
	out, errOut, err := runRender(t, cs, "subscription/app-demo", "--cluster", "child1")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	want := namespaceFoo + "---\n" + nginx3 + `---
# Helm values (spec.overrides):
#   auth:
#     rootPassword: s3cret
#   primary:
#     persistence:
#       enabled: false
apiVersion: apps.clusternet.io/v1alpha1
kind: HelmRelease
metadata:
  labels:
    apps.clusternet.io/subs.name: app-demo
    apps.clusternet.io/subs.namespace: default
    apps.clusternet.io/subs.uid: ` + subUID + `
    clusters.clusternet.io/cluster-id: ` + id1 + `
  name: app-demo-mysql
  namespace: clusternet-5l82l
spec:
  chart: mysql
  overrides: eyJhdXRoIjp7InJvb3RQYXNzd29yZCI6InMzY3JldCJ9LCJwcmltYXJ5Ijp7InBlcnNpc3RlbmNlIjp7ImVuYWJsZWQiOmZhbHNlfX19
  repo: https://charts.bitnami.com/bitnami
  targetNamespace: abc
  version: 8.6.2
`
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}

	// As JSON the HelmRelease is what the API takes: kubectl could apply it.
	out, _, err = runRender(t, cs, "subscription/app-demo", "--cluster", "child1", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kind": "List"`, `"kind": "HelmRelease"`, `"overrides": "eyJhdXRo`, `"targetNamespace": "abc"`} {
		if !strings.Contains(out, want) {
			t.Errorf("-o json lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cluster-name") {
		t.Errorf("-o json of one cluster names its cluster in the objects, which are not as rendered then:\n%s", out)
	}
}

func TestRenderJSONOfSeveralClustersNamesThem(t *testing.T) {
	out, _, err := runRender(t, fake.NewClientset(rendered()...), "subscription/app-demo", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"clusters.clusternet.io/cluster-name": "child1"`, `"clusters.clusternet.io/cluster-id": "` + id1 + `"`,
		`"clusters.clusternet.io/cluster-name": "child2"`, `"replicas": 5`, `"replicas": 3`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("-o json lacks %q:\n%s", want, out)
		}
	}
}

// TestRenderReadsWithTheCallersCredentials: a reader who may not list
// Descriptions in one bound cluster's dedicated namespace gets a Forbidden
// naming that namespace and cluster, and nothing is printed.
func TestRenderReadsWithTheCallersCredentials(t *testing.T) {
	r := newRolloutRun(rendered()...)
	r.forbid("list", "descriptions", "")
	r.forbid("list", "descriptions", nsChild2)
	out, _, err := runRender(t, r.cs, "subscription/app-demo", "--cluster", "child1")
	want := `you may not list descriptions.apps.clusternet.io in namespace "clusternet-8x2kq" (the dedicated namespace of cluster child2) of the parent: ` +
		"ask a parent admin for get, list and watch on them there (check with `kubectl auth can-i list descriptions.apps.clusternet.io -n clusternet-8x2kq`): "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("error %v, want it to start %q", err, want)
	}
	if out != "" {
		t.Errorf("printed %q", out)
	}
}

// TestRenderTakesClusterItself: --cluster after render is render's, not
// per-cluster mode's (which would run kubectl's "render" in the child).
func TestRenderTakesClusterItself(t *testing.T) {
	fs := rootFlagSet(newConfigFlags(streamsForTest()))
	for _, args := range [][]string{
		{"render", "subscription/app-demo", "--cluster", "child1"},
		{"-n", "team-a", "render", "subs", "app-demo", "--cluster-id=" + id1},
	} {
		if _, _, ok := perClusterArgs(args, fs); ok {
			t.Errorf("%q goes to per-cluster mode", args)
		}
	}
}

// TestRenderHelmOfAnOlderHub: a Description that carries no chart options
// (an older hub wrote it) is installed from the HelmChart as it is now, so
// render shows that; a missing HelmChart is an error naming it.
func TestRenderHelmOfAnOlderHub(t *testing.T) {
	objs := helmRendered()
	helm := objs[len(objs)-1].(*appsv1alpha1.Description)
	helm.Spec.Charts[0].Options, helm.Spec.ChartRaw = nil, nil
	_, _, err := runRender(t, fake.NewClientset(objs...), "subscription/app-demo", "--cluster", "child1")
	want := `spec.charts[0] of Description clusternet-5l82l/app-demo-helm carries no options (an older hub wrote it; the HelmChart as it is now is installed): helmcharts.apps.clusternet.io "mysql" not found`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}

	chart := &appsv1alpha1.HelmChart{ObjectMeta: metav1.ObjectMeta{Name: "mysql", Namespace: "default"},
		Spec: appsv1alpha1.HelmChartSpec{HelmOptions: appsv1alpha1.HelmOptions{Repository: "https://charts.example.com", Chart: "mysql", ChartVersion: "9.0.0", TargetNamespace: "db"}}}
	out, errOut, err := runRender(t, fake.NewClientset(append(objs, chart)...), "subscription/app-demo", "--cluster", "child1")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	wantSpec := "spec:\n  chart: mysql\n  repo: https://charts.example.com\n  targetNamespace: db\n  version: 9.0.0\n"
	if !strings.HasSuffix(out, "  name: app-demo-mysql\n  namespace: clusternet-5l82l\n"+wantSpec) {
		t.Errorf("output does not end with the HelmRelease of the HelmChart as it is (%q):\n%s", wantSpec, out)
	}
}
