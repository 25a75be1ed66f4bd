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
	corev1 "k8s.io/api/core/v1"
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

var (
	apiServices = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	crds        = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

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

func gone(ctx context.Context, err error) (bool, string) {
	if apierrors.IsNotFound(err) {
		return true, ""
	}
	return false, "still there (" + errString(err) + ")"
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestHubChart installs, upgrades and uninstalls clusternet-hub in a parent.
func TestHubChart(t *testing.T) {
	tb := testbed.ForTest(t, 0)
	parent := tb.Parent
	repo := helmrepo.NewRepo(t)
	for _, name := range []string{charts.Hub, charts.Agent} {
		ch, err := charts.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		repo.Add(t, ch)
	}
	kube, dyn := clients(t, parent)
	ctx := context.Background()
	restrictedNamespace(t, kube)

	// Values the chart refuses install nothing.
	_, err := install(t, parent, repo.URL, charts.Hub, map[string]any{"tls": map[string]any{"mode": "secret"}})
	if want := `tls.secretName is required when tls.mode is "secret"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("helm install with tls.mode=secret and no Secret: %v, want an error containing %q", err, want)
	}
	if _, err := action.NewGet(helmFor(t, parent)).Run(charts.Hub); !errors.Is(err, driver.ErrReleaseNotFound) {
		t.Fatalf("after a refused install, helm get = %v, want %v", err, driver.ErrReleaseNotFound)
	}

	rel, err := install(t, parent, repo.URL, charts.Hub, nil)
	if err != nil {
		t.Fatalf("helm install clusternet-hub: %v", err)
	}
	if rel.Info.Status != release.StatusDeployed || !strings.Contains(rel.Info.Notes, "kubectl clusternet create token --print-join-command") {
		t.Errorf("release %s, notes:\n%s", rel.Info.Status, rel.Info.Notes)
	}

	// The CRDs (the chart's crds/), Established.
	list, err := dyn.Resource(crds).List(ctx, metav1.ListOptions{})
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

	// The Deployment runs what the chart renders (what the testbed runs).
	rendered, err := framework.HubChartArgs()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kube.AppsV1().Deployments(ns).Get(ctx, "clusternet-hub", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rendered.Args, d.Spec.Template.Spec.Containers[0].Args); diff != "" {
		t.Errorf("installed hub args differ from the chart's (-rendered +installed):\n%s", diff)
	}
	waitPods(t, kube, "clusternet-hub")

	// RBAC, flow control, admission policies, the webhook, the APIServices
	// (no caBundle: the hub keeps it).
	for what, get := range map[string]func() error{
		"ServiceAccount clusternet-hub": func() error {
			_, err := kube.CoreV1().ServiceAccounts(ns).Get(ctx, "clusternet-hub", metav1.GetOptions{})
			return err
		},
		"ClusterRoleBinding clusternet-hub": func() error {
			_, err := kube.RbacV1().ClusterRoleBindings().Get(ctx, "clusternet-hub", metav1.GetOptions{})
			return err
		},
		"ClusterRole clusternet:system:bootstrapping": func() error {
			_, err := kube.RbacV1().ClusterRoles().Get(ctx, "clusternet:system:bootstrapping", metav1.GetOptions{})
			return err
		},
		"FlowSchema clusternet-registration": func() error {
			_, err := kube.FlowcontrolV1().FlowSchemas().Get(ctx, "clusternet-registration", metav1.GetOptions{})
			return err
		},
		"ValidatingAdmissionPolicy clusternet-agent-reports-status-only": func() error {
			_, err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, "clusternet-agent-reports-status-only", metav1.GetOptions{})
			return err
		},
		"ValidatingWebhookConfiguration clusternet-hub-subscriptions": func() error {
			_, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "clusternet-hub-subscriptions", metav1.GetOptions{})
			return err
		},
		"Service clusternet-hub": func() error {
			_, err := kube.CoreV1().Services(ns).Get(ctx, "clusternet-hub", metav1.GetOptions{})
			return err
		},
	} {
		if err := get(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	if _, err := kube.RbacV1().ClusterRoles().Get(ctx, "clusternet:anonymous-impersonation", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the anonymous pass-through is installed by default (%v)", err)
	}
	for _, name := range []string{"v1alpha1.proxies.clusternet.io", "v1alpha1.shadow"} {
		a, err := dyn.Resource(apiServices).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ca, found, _ := unstructured.NestedString(a.Object, "spec", "caBundle"); found {
			t.Errorf("APIService %s has caBundle %q, want none (tls.mode=hubManaged)", name, ca)
		}
	}

	// The hub writes the caBundle (tls.mode=hubManaged); an upgrade keeps
	// it, since the chart does not set it.
	ca, err := testbed.NewCA("hub-serving-ca")
	if err != nil {
		t.Fatal(err)
	}
	caBundle := []byte(`{"spec":{"caBundle":"` + base64.StdEncoding.EncodeToString(ca.CertPEM) + `"}}`)
	if _, err := dyn.Resource(apiServices).Patch(ctx, "v1alpha1.proxies.clusternet.io", "application/merge-patch+json", caBundle, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	rel = upgrade(t, parent, repo.URL, charts.Hub, map[string]any{
		"replicaCount": 2, "anonymousPassthrough": map[string]any{"enabled": true},
		"extraArgs": map[string]any{"registration-approval": "manual"},
	})
	if rel.Version != 2 || rel.Info.Status != release.StatusDeployed {
		t.Errorf("after helm upgrade: revision %d, %s", rel.Version, rel.Info.Status)
	}
	d, err = kube.AppsV1().Deployments(ns).Get(ctx, "clusternet-hub", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if args := d.Spec.Template.Spec.Containers[0].Args; *d.Spec.Replicas != 2 || args[len(args)-1] != "--registration-approval=manual" {
		t.Errorf("after helm upgrade: replicas %d, args %q", *d.Spec.Replicas, args)
	}
	if _, err := kube.RbacV1().ClusterRoleBindings().Get(ctx, "clusternet:anonymous-impersonation", metav1.GetOptions{}); err != nil {
		t.Errorf("anonymousPassthrough.enabled=true: %v", err)
	}
	a, err := dyn.Resource(apiServices).Get(ctx, "v1alpha1.proxies.clusternet.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructured.NestedString(a.Object, "spec", "caBundle"); got != base64.StdEncoding.EncodeToString(ca.CertPEM) {
		t.Errorf("helm upgrade dropped the caBundle the hub wrote: %q", got)
	}

	// Uninstall removes what the chart made but the CRDs (and so every
	// ManagedCluster, Subscription, ...), as helm does with crds/.
	uninstall(t, parent, charts.Hub)
	waitFor(t, "the hub's objects gone", func(ctx context.Context) (bool, string) {
		if _, err := kube.AppsV1().Deployments(ns).Get(ctx, "clusternet-hub", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return gone(ctx, err)
		}
		if _, err := dyn.Resource(apiServices).Get(ctx, "v1alpha1.shadow", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return gone(ctx, err)
		}
		if _, err := kube.RbacV1().ClusterRoles().Get(ctx, "clusternet:anonymous-impersonation", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return gone(ctx, err)
		}
		_, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "clusternet-hub-subscriptions", metav1.GetOptions{})
		return gone(ctx, err)
	})
	if _, err := dyn.Resource(crds).Get(ctx, "managedclusters.clusters.clusternet.io", metav1.GetOptions{}); err != nil {
		t.Errorf("helm uninstall removed the CRDs: %v", err)
	}
}

// TestAgentChart installs, upgrades and uninstalls clusternet-agent in a child.
func TestAgentChart(t *testing.T) {
	tb := testbed.ForTest(t, 1)
	parent, child := tb.Parent, tb.Children[0]
	repo := helmrepo.NewRepo(t)
	for _, name := range []string{charts.Hub, charts.Agent} {
		ch, err := charts.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		repo.Add(t, ch)
	}
	kube, _ := clients(t, child)
	ctx := context.Background()
	restrictedNamespace(t, kube)

	if _, err := install(t, child, repo.URL, charts.Agent, map[string]any{"parentURL": "http://" + strings.TrimPrefix(parent.URL, "https://")}); err == nil ||
		!strings.Contains(err.Error(), "at '/parentURL'") {
		t.Fatalf("helm install with an http parent URL: %v, want the schema's error", err)
	}

	// The same values the testbed's agents run with (framework.AgentChartValues).
	if err := framework.InstallParent(ctx, parent); err != nil {
		t.Fatal(err)
	}
	values, err := framework.AgentChartValues(parent)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := install(t, child, repo.URL, charts.Agent, values)
	if err != nil {
		t.Fatalf("helm install clusternet-agent: %v", err)
	}
	if rel.Info.Status != release.StatusDeployed {
		t.Errorf("release %s", rel.Info.Status)
	}
	s, err := kube.CoreV1().Secrets(ns).Get(ctx, "clusternet-agent-cluster-registration", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := map[string]string{"parentURL": string(s.Data["parentURL"]), "regToken": string(s.Data["regToken"]), "parentCA": strings.TrimSpace(string(s.Data["parentCA"]))}; !cmp.Equal(got, map[string]string{
		"parentURL": parent.URL, "regToken": framework.BootstrapToken(parent), "parentCA": strings.TrimSpace(values["parentCA"].(string)),
	}) {
		t.Errorf("registration Secret: %v", got)
	}
	rendered, err := framework.ChartArgs(charts.Agent, values)
	if err != nil {
		t.Fatal(err)
	}
	d, err := kube.AppsV1().Deployments(ns).Get(ctx, "clusternet-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rendered.Args, d.Spec.Template.Spec.Containers[0].Args); diff != "" {
		t.Errorf("installed agent args differ from the chart's (-rendered +installed):\n%s", diff)
	}
	waitPods(t, kube, "clusternet-agent")
	for _, name := range []string{"clusternet-agent", "clusternet-agent-impersonation", "clusternet-agent-deployer"} {
		if _, err := kube.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("ClusterRoleBinding %s: %v", name, err)
		}
	}

	// Upgrade: Pull mode, no deployer rights.
	values["syncMode"], values["rbac"] = "Pull", map[string]any{"deployer": false}
	rel = upgrade(t, child, repo.URL, charts.Agent, values)
	if rel.Version != 2 {
		t.Errorf("after helm upgrade: revision %d", rel.Version)
	}
	d, err = kube.AppsV1().Deployments(ns).Get(ctx, "clusternet-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--cluster-sync-mode=Pull") {
		t.Errorf("after helm upgrade: args %q", args)
	}
	waitFor(t, "ClusterRoleBinding clusternet-agent-deployer removed by the upgrade", func(ctx context.Context) (bool, string) {
		_, err := kube.RbacV1().ClusterRoleBindings().Get(ctx, "clusternet-agent-deployer", metav1.GetOptions{})
		return gone(ctx, err)
	})

	uninstall(t, child, charts.Agent)
	waitFor(t, "the agent's objects gone", func(ctx context.Context) (bool, string) {
		if _, err := kube.CoreV1().Secrets(ns).Get(ctx, "clusternet-agent-cluster-registration", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return gone(ctx, err)
		}
		if _, err := kube.RbacV1().ClusterRoles().Get(ctx, "clusternet-agent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return gone(ctx, err)
		}
		_, err := kube.AppsV1().Deployments(ns).Get(ctx, "clusternet-agent", metav1.GetOptions{})
		return gone(ctx, err)
	})
}
