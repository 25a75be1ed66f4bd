// Package install is the end-to-end test of installing Clusternet the way a
// platform team does: `helm install` of the clusternet-hub chart into a
// parent and of the clusternet-agent chart into a child, from a chart
// repository served on loopback, through Helm's own Go packages against the
// testbed's real apiservers (so every object is validated and admitted
// server-side, the pods under the restricted Pod Security Standard), then
// `helm upgrade` and `helm uninstall`. kwok runs no containers: the test
// checks what the apiservers accepted, and that it is what the charts render.
package install

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/clusternet/clusternet/charts"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/helmrepo"
	"github.com/clusternet/clusternet/test/testbed"
)

const ns = charts.Namespace

// helmFor is Helm's action configuration for c, releases stored as Secrets
// in namespace ns, as the helm CLI keeps them.
func helmFor(t *testing.T, c *testbed.Cluster) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, namespace := c.Kubeconfig, ns
	flags.KubeConfig, flags.Namespace = &kubeconfig, &namespace
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, ns, "secret", t.Logf); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// settings are the helm CLI's, with its cache and repository files in the test's folder.
func settings(t *testing.T) *cli.EnvSettings {
	s := cli.New()
	dir := t.TempDir()
	s.RepositoryCache, s.RepositoryConfig, s.RegistryConfig = dir+"/cache", dir+"/repositories.yaml", dir+"/registry.json"
	return s
}

// fetch is what `helm install --repo <url> <name>` downloads: the chart
// from the loopback repository, not from this checkout.
func fetch(t *testing.T, opts *action.ChartPathOptions, repoURL, name string) *chart.Chart {
	t.Helper()
	opts.RepoURL, opts.Version = repoURL, "0.1.0"
	path, err := opts.LocateChart(name, settings(t))
	if err != nil {
		t.Fatalf("locating %s in %s: %v", name, repoURL, err)
	}
	ch, err := loader.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func install(t *testing.T, c *testbed.Cluster, repoURL, name string, values map[string]any) (*release.Release, error) {
	t.Helper()
	i := action.NewInstall(helmFor(t, c))
	i.ReleaseName, i.Namespace, i.Timeout = name, ns, 2*time.Minute
	ch := fetch(t, &i.ChartPathOptions, repoURL, name)
	return i.Run(ch, values)
}

func upgrade(t *testing.T, c *testbed.Cluster, repoURL, name string, values map[string]any) *release.Release {
	t.Helper()
	u := action.NewUpgrade(helmFor(t, c))
	u.Namespace, u.Timeout = ns, 2*time.Minute
	ch := fetch(t, &u.ChartPathOptions, repoURL, name)
	rel, err := u.Run(name, ch, values)
	if err != nil {
		t.Fatalf("helm upgrade %s: %v", name, err)
	}
	return rel
}

func uninstall(t *testing.T, c *testbed.Cluster, name string) {
	t.Helper()
	if _, err := action.NewUninstall(helmFor(t, c)).Run(name); err != nil {
		t.Fatalf("helm uninstall %s: %v", name, err)
	}
}

// restrictedNamespace makes ns enforce the restricted Pod Security
// Standard, so pods of a chart that asks for more are refused.
func restrictedNamespace(t *testing.T, kube kubernetes.Interface) {
	t.Helper()
	_, err := kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func clients(t *testing.T, c *testbed.Cluster) (kubernetes.Interface, dynamic.Interface) {
	t.Helper()
	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kube, dyn
}

func waitFor(t *testing.T, what string, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, why := cond(ctx)
		last = why
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last: %s)", what, err, last)
	}
}

// waitPods waits until the Deployment labelled app=name has a pod: the
// apiserver admitted it under the restricted standard.
func waitPods(t *testing.T, kube kubernetes.Interface, name string) {
	t.Helper()
	waitFor(t, name+"'s pod admitted under the restricted Pod Security Standard", func(ctx context.Context) (bool, string) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil || len(pods.Items) == 0 {
			events, _ := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=FailedCreate"})
			var why []string
			for _, e := range events.Items {
				why = append(why, e.Message)
			}
			return false, strings.Join(why, "; ")
		}
		return true, ""
	})
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// resource is a kind of object the charts make, read through the dynamic
// client so that one check serves every kind.
type resource struct {
	kind       string
	gvr        schema.GroupVersionResource
	namespaced bool // in ns
}

var (
	apiServices                 = resource{"APIService", schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}, false}
	crds                        = resource{"CustomResourceDefinition", schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}, false}
	clusterRoles                = resource{"ClusterRole", rbacv1.SchemeGroupVersion.WithResource("clusterroles"), false}
	clusterRoleBindings         = resource{"ClusterRoleBinding", rbacv1.SchemeGroupVersion.WithResource("clusterrolebindings"), false}
	flowSchemas                 = resource{"FlowSchema", flowcontrolv1.SchemeGroupVersion.WithResource("flowschemas"), false}
	validatingAdmissionPolicies = resource{"ValidatingAdmissionPolicy", admissionregistrationv1.SchemeGroupVersion.WithResource("validatingadmissionpolicies"), false}
	validatingWebhooks          = resource{"ValidatingWebhookConfiguration", admissionregistrationv1.SchemeGroupVersion.WithResource("validatingwebhookconfigurations"), false}
	deployments                 = resource{"Deployment", appsv1.SchemeGroupVersion.WithResource("deployments"), true}
	secrets                     = resource{"Secret", corev1.SchemeGroupVersion.WithResource("secrets"), true}
	serviceAccounts             = resource{"ServiceAccount", corev1.SchemeGroupVersion.WithResource("serviceaccounts"), true}
	services                    = resource{"Service", corev1.SchemeGroupVersion.WithResource("services"), true}
)

// object is one object a chart makes.
type object struct {
	resource
	name string
}

func (r resource) named(name string) object { return object{r, name} }

func (o object) String() string { return o.kind + " " + o.name }

// chartEnv is the testbed a chartTest installs its chart in.
type chartEnv struct {
	parent *testbed.Cluster
	// kube and dyn are clients of the cluster the chart goes into.
	kube kubernetes.Interface
	dyn  dynamic.Interface
}

func (e *chartEnv) get(ctx context.Context, o object) (*unstructured.Unstructured, error) {
	if o.namespaced {
		return e.dyn.Resource(o.gvr).Namespace(ns).Get(ctx, o.name, metav1.GetOptions{})
	}
	return e.dyn.Resource(o.gvr).Get(ctx, o.name, metav1.GetOptions{})
}

func (e *chartEnv) deployment(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	d, err := e.kube.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitGone waits until every one of objects is gone.
func (e *chartEnv) waitGone(t *testing.T, what string, objects []object) {
	t.Helper()
	waitFor(t, what, func(ctx context.Context) (bool, string) {
		for _, o := range objects {
			if _, err := e.get(ctx, o); !apierrors.IsNotFound(err) {
				return false, o.String() + " still there (" + errString(err) + ")"
			}
		}
		return true, ""
	})
}

// chartTest is one chart's helm install, upgrade and uninstall.
type chartTest struct {
	// chart names the chart, its release, its Deployment and its pods' app label.
	chart string
	// intoChild installs the chart into a child of the parent, not into the parent.
	intoChild bool
	// refused are values the chart refuses; refusedErr is part of the error.
	refused    func(parent *testbed.Cluster) map[string]any
	refusedErr string
	// values are what the chart is installed with (nil values when nil).
	values func(t *testing.T, e *chartEnv) map[string]any
	// notes is part of the release notes.
	notes string
	// installed are made by the install; absent are not, with these values.
	installed, absent []object
	// checkInstall checks more of what the install made.
	checkInstall func(t *testing.T, e *chartEnv, values map[string]any)
	// upgrade prepares helm upgrade and returns its values, and what to
	// check of the Deployment after it.
	upgrade func(t *testing.T, e *chartEnv, values map[string]any) (map[string]any, func(d *appsv1.Deployment))
	// upgradeMakes are made by the upgrade; upgradeRemoves removed by it.
	upgradeMakes, upgradeRemoves []object
	// uninstalled are removed by helm uninstall, besides the Deployment;
	// kept are not (the CRDs of crds/, as helm keeps them).
	uninstalled, kept []object
}

// TestCharts installs, upgrades and uninstalls clusternet-hub in a parent
// and clusternet-agent in a child.
func TestCharts(t *testing.T) {
	for _, tc := range []chartTest{{
		chart:      charts.Hub,
		refused:    func(*testbed.Cluster) map[string]any { return map[string]any{"tls": map[string]any{"mode": "secret"}} },
		refusedErr: `tls.secretName is required when tls.mode is "secret"`,
		notes:      "kubectl clusternet create token --print-join-command",
		// RBAC, flow control, admission policies, the webhook.
		installed: []object{
			serviceAccounts.named("clusternet-hub"),
			clusterRoleBindings.named("clusternet-hub"),
			clusterRoles.named("clusternet:system:bootstrapping"),
			flowSchemas.named("clusternet-registration"),
			validatingAdmissionPolicies.named("clusternet-agent-reports-status-only"),
			validatingWebhooks.named("clusternet-hub-subscriptions"),
			services.named("clusternet-hub"),
		},
		// The anonymous pass-through is off by default.
		absent:       []object{clusterRoles.named("clusternet:anonymous-impersonation")},
		checkInstall: checkHubInstall,
		upgrade:      upgradeHub,
		upgradeMakes: []object{clusterRoleBindings.named("clusternet:anonymous-impersonation")},
		// Uninstall removes what the chart made but the CRDs (and so every
		// ManagedCluster, Subscription, ...), as helm does with crds/.
		uninstalled: []object{
			apiServices.named("v1alpha1.shadow"),
			clusterRoles.named("clusternet:anonymous-impersonation"),
			validatingWebhooks.named("clusternet-hub-subscriptions"),
		},
		kept: []object{crds.named("managedclusters.clusters.clusternet.io")},
	}, {
		chart:     charts.Agent,
		intoChild: true,
		refused: func(parent *testbed.Cluster) map[string]any {
			return map[string]any{"parentURL": "http://" + strings.TrimPrefix(parent.URL, "https://")}
		},
		refusedErr: "at '/parentURL'", // the schema's error
		// The same values the testbed's agents run with (framework.AgentChartValues).
		values: func(t *testing.T, e *chartEnv) map[string]any {
			if err := framework.InstallParent(t.Context(), e.parent); err != nil {
				t.Fatal(err)
			}
			values, err := framework.AgentChartValues(e.parent)
			if err != nil {
				t.Fatal(err)
			}
			return values
		},
		installed: []object{
			clusterRoleBindings.named("clusternet-agent"),
			clusterRoleBindings.named("clusternet-agent-impersonation"),
			clusterRoleBindings.named("clusternet-agent-deployer"),
		},
		checkInstall: checkAgentInstall,
		// Pull mode, no deployer rights.
		upgrade: func(t *testing.T, e *chartEnv, values map[string]any) (map[string]any, func(d *appsv1.Deployment)) {
			values["syncMode"], values["rbac"] = "Pull", map[string]any{"deployer": false}
			return values, func(d *appsv1.Deployment) {
				if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--cluster-sync-mode=Pull") {
					t.Errorf("after helm upgrade: args %q", args)
				}
			}
		},
		upgradeRemoves: []object{clusterRoleBindings.named("clusternet-agent-deployer")},
		uninstalled: []object{
			secrets.named("clusternet-agent-cluster-registration"),
			clusterRoles.named("clusternet-agent"),
		},
	}} {
		t.Run(tc.chart, tc.run)
	}
}

func (tc chartTest) run(t *testing.T) {
	ctx := t.Context()
	children := 0
	if tc.intoChild {
		children = 1
	}
	tb := testbed.ForTest(t, children)
	into := tb.Parent
	if tc.intoChild {
		into = tb.Children[0]
	}
	repo := helmrepo.NewRepo(t)
	for _, name := range []string{charts.Hub, charts.Agent} {
		ch, err := charts.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		repo.Add(t, ch)
	}
	kube, dyn := clients(t, into)
	e := &chartEnv{parent: tb.Parent, kube: kube, dyn: dyn}
	restrictedNamespace(t, kube)

	// Values the chart refuses install nothing.
	refused := tc.refused(tb.Parent)
	if _, err := install(t, into, repo.URL, tc.chart, refused); err == nil || !strings.Contains(err.Error(), tc.refusedErr) {
		t.Fatalf("helm install %s with %v: %v, want an error containing %q", tc.chart, refused, err, tc.refusedErr)
	}
	if _, err := action.NewGet(helmFor(t, into)).Run(tc.chart); !errors.Is(err, driver.ErrReleaseNotFound) {
		t.Fatalf("after a refused install, helm get = %v, want %v", err, driver.ErrReleaseNotFound)
	}

	var values map[string]any
	if tc.values != nil {
		values = tc.values(t, e)
	}
	rel, err := install(t, into, repo.URL, tc.chart, values)
	if err != nil {
		t.Fatalf("helm install %s: %v", tc.chart, err)
	}
	if rel.Info.Status != release.StatusDeployed || !strings.Contains(rel.Info.Notes, tc.notes) {
		t.Errorf("release %s, notes:\n%s", rel.Info.Status, rel.Info.Notes)
	}
	// The Deployment runs what the chart renders (what the testbed runs).
	rendered, err := framework.ChartArgs(tc.chart, values)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rendered.Args, e.deployment(t, tc.chart).Spec.Template.Spec.Containers[0].Args); diff != "" {
		t.Errorf("installed %s args differ from the chart's (-rendered +installed):\n%s", tc.chart, diff)
	}
	waitPods(t, kube, tc.chart)
	for _, o := range tc.installed {
		if _, err := e.get(ctx, o); err != nil {
			t.Errorf("%s: %v", o, err)
		}
	}
	for _, o := range tc.absent {
		if _, err := e.get(ctx, o); !apierrors.IsNotFound(err) {
			t.Errorf("%s is installed by default (%v)", o, err)
		}
	}
	if tc.checkInstall != nil {
		tc.checkInstall(t, e, values)
	}

	upgradeValues, checkUpgrade := tc.upgrade(t, e, values)
	rel = upgrade(t, into, repo.URL, tc.chart, upgradeValues)
	if rel.Version != 2 || rel.Info.Status != release.StatusDeployed {
		t.Errorf("after helm upgrade: revision %d, %s", rel.Version, rel.Info.Status)
	}
	checkUpgrade(e.deployment(t, tc.chart))
	for _, o := range tc.upgradeMakes {
		if _, err := e.get(ctx, o); err != nil {
			t.Errorf("after helm upgrade, %s: %v", o, err)
		}
	}
	e.waitGone(t, "the objects helm upgrade removes", tc.upgradeRemoves)

	uninstall(t, into, tc.chart)
	e.waitGone(t, "the objects helm uninstall removes", append([]object{deployments.named(tc.chart)}, tc.uninstalled...))
	for _, o := range tc.kept {
		if _, err := e.get(ctx, o); err != nil {
			t.Errorf("helm uninstall removed %s: %v", o, err)
		}
	}
}

// checkHubInstall checks that every CRD of the chart's crds/ is installed,
// and that the APIServices have no caBundle: the hub keeps it
// (tls.mode=hubManaged).
func checkHubInstall(t *testing.T, e *chartEnv, _ map[string]any) {
	list, err := e.dyn.Resource(crds.gvr).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, crd := range list.Items {
		if strings.HasSuffix(crd.GetName(), ".clusternet.io") {
			ours = append(ours, crd.GetName())
		}
	}
	if len(ours) != 11 {
		t.Errorf("CRDs installed: %v, want the 11 of deploy/crds", ours)
	}
	for _, name := range []string{"v1alpha1.proxies.clusternet.io", "v1alpha1.shadow"} {
		a, err := e.get(t.Context(), apiServices.named(name))
		if err != nil {
			t.Fatal(err)
		}
		if ca, found, _ := unstructured.NestedString(a.Object, "spec", "caBundle"); found {
			t.Errorf("APIService %s has caBundle %q, want none (tls.mode=hubManaged)", name, ca)
		}
	}
}

// upgradeHub writes a caBundle as the hub does (tls.mode=hubManaged), and
// upgrades to two replicas, the anonymous pass-through and manual approval;
// the upgrade keeps the caBundle, since the chart does not set it.
func upgradeHub(t *testing.T, e *chartEnv, _ map[string]any) (map[string]any, func(d *appsv1.Deployment)) {
	ca, err := testbed.NewCA("hub-serving-ca")
	if err != nil {
		t.Fatal(err)
	}
	want := base64.StdEncoding.EncodeToString(ca.CertPEM)
	proxies := apiServices.named("v1alpha1.proxies.clusternet.io")
	if _, err := e.dyn.Resource(proxies.gvr).Patch(t.Context(), proxies.name, "application/merge-patch+json",
		[]byte(`{"spec":{"caBundle":"`+want+`"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	values := map[string]any{
		"replicaCount": 2, "anonymousPassthrough": map[string]any{"enabled": true},
		"extraArgs": map[string]any{"registration-approval": "manual"},
	}
	return values, func(d *appsv1.Deployment) {
		if args := d.Spec.Template.Spec.Containers[0].Args; *d.Spec.Replicas != 2 || args[len(args)-1] != "--registration-approval=manual" {
			t.Errorf("after helm upgrade: replicas %d, args %q", *d.Spec.Replicas, args)
		}
		a, err := e.get(t.Context(), proxies)
		if err != nil {
			t.Fatal(err)
		}
		if got, _, _ := unstructured.NestedString(a.Object, "spec", "caBundle"); got != want {
			t.Errorf("helm upgrade dropped the caBundle the hub wrote: %q", got)
		}
	}
}

// checkAgentInstall checks the registration Secret: the parent's URL and
// CA, and the bootstrap token.
func checkAgentInstall(t *testing.T, e *chartEnv, values map[string]any) {
	s, err := e.kube.CoreV1().Secrets(ns).Get(t.Context(), "clusternet-agent-cluster-registration", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{"parentURL": string(s.Data["parentURL"]), "regToken": string(s.Data["regToken"]), "parentCA": strings.TrimSpace(string(s.Data["parentCA"]))}
	want := map[string]string{"parentURL": e.parent.URL, "regToken": framework.BootstrapToken(e.parent), "parentCA": strings.TrimSpace(values["parentCA"].(string))}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("registration Secret (-want +got):\n%s", diff)
	}
}
