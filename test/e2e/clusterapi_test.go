package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/bootstraptoken"
	"github.com/clusternet/clusternet/pkg/server/hub/clusterapi"
	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestClusterAPIDiscovery: a cluster-api Cluster in a namespace the hub
// discovers, provisioned and with its kubeconfig Secret pointing at a
// testbed child, gets clusternet-agent installed there (the agent chart,
// with a bootstrap token made for it alone); the agent, run locally with
// exactly the args of the Deployment the hub applied (kwok runs no
// containers), registers with a live tunnel; deleting the Cluster
// deregisters it. A namespaced user of another namespace, with every right
// on Clusters and Secrets there, gets nothing installed anywhere.
//
// This machine runs no cluster-api controllers: the test writes each
// Cluster's status as they would (condition ControlPlaneInitialized), and
// deletes the Cluster as they would once the cluster is torn down.
func TestClusterAPIDiscovery(t *testing.T) {
	const fleet, tenant = "capi-fleet", "tenant"
	tb := testbed.ForTest(t, 2)
	parent, workload, tenantTarget := tb.Parent, tb.Children[0], tb.Children[1]
	installClusterCRD(t, parent)
	for _, ns := range []string{fleet, tenant} {
		mustKubectl(t, parent, "", "create", "namespace", ns)
	}
	setUpParent(t, parent, "--cluster-api-namespaces="+fleet, "--cluster-api-parent-url="+parent.URL)
	admin := dynamicClient(t, parent, nil)

	// The tenant: a namespaced edit user of the parent, who may also do
	// anything with Clusters in their namespace, acting with the token
	// the TokenRequest API hands out for them.
	mustKubectl(t, parent, fmt.Sprintf(`
apiVersion: v1
kind: ServiceAccount
metadata: {name: alice, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-edit, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: ServiceAccount, name: alice, namespace: %[1]s}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: clusters-admin, namespace: %[1]s}
rules: [{apiGroups: [cluster.x-k8s.io], resources: [clusters, clusters/status], verbs: ["*"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-clusters, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: clusters-admin}
subjects: [{kind: ServiceAccount, name: alice, namespace: %[1]s}]
`, tenant), "apply", "-f", "-")
	aliceToken := strings.TrimSpace(mustKubectl(t, parent, "", "create", "token", "alice", "-n", tenant, "--duration=1h"))
	alice := dynamicClient(t, parent, &aliceToken)

	t.Run("the tenant cannot reach the discovered namespace", func(t *testing.T) {
		kube := kubeClient(t, parent, &aliceToken)
		_, err := kube.CoreV1().Secrets(fleet).List(context.Background(), metav1.ListOptions{})
		expectForbidden(t, err, `cannot list resource "secrets" in API group "" in the namespace "capi-fleet"`)
		_, err = alice.Resource(clusterapi.ClusterResource).Namespace(fleet).Create(context.Background(), clusterObject(fleet, "sneaky"), metav1.CreateOptions{})
		expectForbidden(t, err, `cannot create resource "clusters" in API group "cluster.x-k8s.io" in the namespace "capi-fleet"`)
	})
	// What the tenant can do: a provisioned Cluster of their own with a
	// kubeconfig Secret of the other child, and one named as the fleet's
	// (whose kubeconfig they cannot read).
	createCluster(t, alice, tenant, "evil", tenantTarget, kubeClient(t, parent, &aliceToken))
	createCluster(t, alice, tenant, "prod", nil, nil)

	// The stand-in for cluster-api: the fleet's Cluster, its kubeconfig
	// Secret as cluster-api writes it, and its status.
	createCluster(t, admin, fleet, "prod", workload, kubeClient(t, parent, nil))
	prodUID := string(getCluster(t, admin, fleet, "prod").GetUID())
	id := kubeSystemUID(t, workload)

	var deploy appsv1.Deployment
	t.Run("the agent is installed in the cluster", func(t *testing.T) {
		waitFor(t, 60*time.Second, "event "+clusterapi.ReasonAgentInstalled+" on Cluster prod", func(ctx context.Context) (bool, string) {
			ev := eventsOf(t, parent, fleet, "prod")
			return strings.Contains(ev, clusterapi.ReasonAgentInstalled), ev
		})
		if err := json.Unmarshal([]byte(mustKubectl(t, workload, "", "-n", "clusternet-system", "get", "deployment", "clusternet-agent", "-o", "json")), &deploy); err != nil {
			t.Fatal(err)
		}
		args := deploy.Spec.Template.Spec.Containers[0].Args
		for _, want := range []string{"--cluster-name=prod", "--registration-secret=clusternet-system/clusternet-agent-cluster-registration"} {
			if !slices.Contains(args, want) {
				t.Errorf("agent args %q lack %s", args, want)
			}
		}
		reg := secretData(t, workload, "clusternet-system", "clusternet-agent-cluster-registration")
		if reg["parentURL"] != parent.URL {
			t.Errorf("registration Secret parentURL = %q, want %q", reg["parentURL"], parent.URL)
		}
		ca, err := os.ReadFile(parent.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(reg["parentCA"]) != strings.TrimSpace(string(ca)) {
			t.Error("registration Secret parentCA is not the parent's CA")
		}
		tok, err := bootstraptoken.Parse(reg["regToken"])
		if err != nil {
			t.Fatalf("registration Secret regToken: %v", err)
		}
		// The token is the Cluster's own, bound to it by the hub's labels.
		labels := mustKubectl(t, parent, "", "-n", "kube-system", "get", "secret", tok.SecretName(), "-o", "jsonpath={.metadata.labels}")
		for _, want := range []string{`"` + clusterapi.LabelUID + `":"` + prodUID + `"`, `"` + clusterapi.LabelNamespace + `":"` + fleet + `"`, `"clusters.clusternet.io/cluster-id":"` + id + `"`} {
			if !strings.Contains(labels, want) {
				t.Errorf("token Secret labels %s lack %s", labels, want)
			}
		}
	})

	t.Run("the agent registers with a live tunnel", func(t *testing.T) {
		agent := e2eutil.StartDeployedAgent(t, "agent-capi", &deploy, workload, "--cluster-status-update-frequency=2s")
		var mcNamespace string
		waitFor(t, 90*time.Second, "ManagedCluster prod Ready with its tunnel up and bound to its Cluster", func(ctx context.Context) (bool, string) {
			out, _, err := kubectl(t, parent, "", "get", "mcls", "-A", "-l", clusterv1beta1.LabelClusterID+"="+id, "-o",
				`jsonpath={range .items[*]}{.metadata.namespace} {.metadata.name} {.status.readyz} {.status.useSocket} {.metadata.labels.clusters\.clusternet\.io/cluster-api-uid}{end}`)
			f := strings.Fields(out)
			if err != nil || len(f) != 5 || f[1] != "prod" || f[2] != "true" || f[3] != "true" || f[4] != prodUID {
				return false, out + agent.LogTail(1000)
			}
			mcNamespace = f[0]
			return true, ""
		})
		version := mustKubectl(t, parent, "", "get", "--raw", "/apis/proxies.clusternet.io/v1alpha1/sockets/"+id+"/proxy/direct/version")
		if !strings.Contains(version, `"gitVersion"`) {
			t.Errorf("the child's /version through the tunnel = %s", version)
		}
		waitFor(t, 30*time.Second, "the Cluster's bootstrap token deleted", func(ctx context.Context) (bool, string) {
			out := mustKubectl(t, parent, "", "-n", "kube-system", "get", "secrets", "-l", clusterapi.LabelUID+"="+prodUID, "-o", "name")
			return strings.TrimSpace(out) == "", out
		})
		// Events are sent in the background, after what the test waited for.
		waitFor(t, 30*time.Second, "a "+clusterapi.ReasonRegistered+" event on Cluster prod", func(ctx context.Context) (bool, string) {
			ev := eventsOf(t, parent, fleet, "prod")
			return strings.Contains(ev, clusterapi.ReasonRegistered), ev
		})

		t.Run("a rotated kubeconfig applies again, without a token", func(t *testing.T) {
			before := mustKubectl(t, parent, "", "-n", mcNamespace, "get", "mcls", "prod", "-o", `jsonpath={.metadata.annotations.clusters\.clusternet\.io/cluster-api-applied}`)
			generation := mustKubectl(t, workload, "", "-n", "clusternet-system", "get", "deployment", "clusternet-agent", "-o", "jsonpath={.metadata.generation}")
			mustKubectl(t, parent, "", "-n", fleet, "annotate", "secret", clusterapi.KubeconfigSecretName("prod"), "rotated-at="+time.Now().Format("150405"))
			waitFor(t, 30*time.Second, "the new kubeconfig applied", func(ctx context.Context) (bool, string) {
				after := mustKubectl(t, parent, "", "-n", mcNamespace, "get", "mcls", "prod", "-o", `jsonpath={.metadata.annotations.clusters\.clusternet\.io/cluster-api-applied}`)
				return after != "" && after != before, after
			})
			if got := mustKubectl(t, workload, "", "-n", "clusternet-system", "get", "deployment", "clusternet-agent", "-o", "jsonpath={.metadata.generation}"); got != generation {
				t.Errorf("the agent Deployment changed (generation %s, was %s): the same manifests applied again must change nothing", got, generation)
			}
			if tokens := mustKubectl(t, parent, "", "-n", "kube-system", "get", "secrets", "-l", clusterapi.LabelUID+"="+prodUID, "-o", "name"); strings.TrimSpace(tokens) != "" {
				t.Errorf("a registered cluster got a new bootstrap token: %s", tokens)
			}
		})

		t.Run("the tenant got nothing installed", func(t *testing.T) {
			if _, errOut, err := kubectl(t, tenantTarget, "", "get", "namespace", "clusternet-system"); err == nil || !strings.Contains(errOut, "NotFound") {
				t.Errorf("the tenant's target cluster has namespace clusternet-system (%v %s): the hub installed an agent for a namespace it does not discover", err, errOut)
			}
			if out := mustKubectl(t, parent, "", "-n", "kube-system", "get", "secrets", "-l", clusterapi.LabelNamespace+"="+tenant, "-o", "name"); strings.TrimSpace(out) != "" {
				t.Errorf("bootstrap tokens made for the tenant's Clusters: %s", out)
			}
			if ev := eventsOf(t, parent, tenant, ""); strings.Contains(ev, "clusternet-hub") {
				t.Errorf("the hub acted on the tenant's Clusters:\n%s", ev)
			}
		})

		t.Run("deleting the Cluster deregisters it", func(t *testing.T) {
			// cluster-api deletes a Cluster once it tore the cluster down:
			// nothing answers there any more.
			if err := agent.Stop(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			if err := admin.Resource(clusterapi.ClusterResource).Namespace(fleet).Delete(context.Background(), "prod", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 90*time.Second, "the registration gone from the parent", func(ctx context.Context) (bool, string) {
				var left []string
				for _, args := range [][]string{
					{"get", "mcls", "-A", "-l", clusterv1beta1.LabelClusterID + "=" + id, "-o", "name"},
					{"get", "namespaces", "-l", clusterv1beta1.LabelClusterID + "=" + id, "-o", "name"},
					{"get", "clsrr,clusterrole,clusterrolebinding", "--ignore-not-found", "-o", "name", "--field-selector", "metadata.name=" + clusterv1beta1.NamePrefix + id},
				} {
					if out, errOut, err := kubectl(t, parent, "", args...); err != nil || strings.TrimSpace(out) != "" {
						left = append(left, out+errOut)
					}
				}
				return len(left) == 0, strings.Join(left, "; ")
			})
		})
	})
}

// TestClusterAPIDiscoveryErrors: a kubeconfig the hub refuses and a
// cluster it cannot reach are Warning events on their Cluster, the latter
// retried with back-off.
func TestClusterAPIDiscoveryErrors(t *testing.T) {
	const fleet = "capi-fleet"
	tb := testbed.ForTest(t, 1)
	parent, workload := tb.Parent, tb.Children[0]
	installClusterCRD(t, parent)
	mustKubectl(t, parent, "", "create", "namespace", fleet)
	setUpParent(t, parent, "--cluster-api-namespaces="+fleet, "--cluster-api-parent-url="+parent.URL)
	admin := dynamicClient(t, parent, nil)
	kube := kubeClient(t, parent, nil)

	plugin := flatKubeconfig(t, workload)
	plugin["users"].([]any)[0].(map[string]any)["user"] = map[string]any{
		"exec": map[string]any{"command": "/bin/sh", "args": []any{"-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/token"}, "apiVersion": "client.authentication.k8s.io/v1"},
	}
	unreachable := flatKubeconfig(t, workload)
	unreachable["clusters"].([]any)[0].(map[string]any)["cluster"].(map[string]any)["server"] = "https://127.0.0.1:1"
	createClusterWith(t, admin, kube, fleet, "plugin", plugin)
	createClusterWith(t, admin, kube, fleet, "unreachable", unreachable)

	waitFor(t, 60*time.Second, "Warning "+clusterapi.ReasonKubeconfigRefused+" on Cluster plugin", func(ctx context.Context) (bool, string) {
		ev := eventsOf(t, parent, fleet, "plugin")
		return strings.Contains(ev, clusterapi.ReasonKubeconfigRefused) && strings.Contains(ev, "a credential plugin would run a program inside the hub"), ev
	})
	waitFor(t, 60*time.Second, "Warning "+clusterapi.ReasonInstallFailed+" on Cluster unreachable", func(ctx context.Context) (bool, string) {
		ev := eventsOf(t, parent, fleet, "unreachable")
		return strings.Contains(ev, clusterapi.ReasonInstallFailed) && strings.Contains(ev, "retrying in"), ev
	})
	if out := mustKubectl(t, parent, "", "-n", "kube-system", "get", "secrets", "-l", clusterapi.LabelNamespace+"="+fleet, "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("bootstrap tokens made for clusters nothing was installed in: %s", out)
	}
}

// installClusterCRD installs cluster-api's Cluster CRD in c, generated by
// the repository's controller-gen (hack/tools) from the types of the
// sigs.k8s.io/cluster-api/api module the hub is built with: that module
// ships no CRD files.
func installClusterCRD(t *testing.T, c *testbed.Cluster) {
	t.Helper()
	dir := t.TempDir()
	root := framework.Root()
	gen := filepath.Join(dir, "controller-gen")
	build := exec.Command("go", "build", "-o", gen, "sigs.k8s.io/controller-tools/cmd/controller-gen")
	build.Dir = filepath.Join(root, "hack", "tools")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building controller-gen: %v\n%s", err, out)
	}
	run := exec.Command(gen, "crd:crdVersions=v1", "paths=sigs.k8s.io/cluster-api/api/core/v1beta2", "output:crd:artifacts:config="+dir)
	run.Dir = root
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, out)
	}
	mustKubectl(t, c, "", "apply", "--server-side", "-f", filepath.Join(dir, "cluster.x-k8s.io_clusters.yaml"))
	// kubectl wait fails outright on a CRD without status conditions yet.
	waitFor(t, 60*time.Second, "the Cluster CRD Established", func(ctx context.Context) (bool, string) {
		out, errOut, err := kubectl(t, c, "", "get", "crd", "clusters.cluster.x-k8s.io", "-o", `jsonpath={.status.conditions[?(@.type=="Established")].status}`)
		return err == nil && out == "True", out + errOut
	})
}

// restConfig is c as its admin, or as the holder of token.
func restConfig(t *testing.T, c *testbed.Cluster, token *string) *rest.Config {
	t.Helper()
	if token != nil {
		return &rest.Config{Host: c.URL, BearerToken: *token, TLSClientConfig: rest.TLSClientConfig{CAFile: c.CAFile}}
	}
	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func dynamicClient(t *testing.T, c *testbed.Cluster, token *string) dynamic.Interface {
	t.Helper()
	d, err := dynamic.NewForConfig(restConfig(t, c, token))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func kubeClient(t *testing.T, c *testbed.Cluster, token *string) kubernetes.Interface {
	t.Helper()
	k, err := kubernetes.NewForConfig(restConfig(t, c, token))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func expectForbidden(t *testing.T, err error, want string) {
	t.Helper()
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want Forbidden: %s", err, want)
	}
}

// clusterObject is a cluster-api Cluster, its spec as small as the CRD allows.
func clusterObject(ns, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec":     map[string]any{"controlPlaneEndpoint": map[string]any{"host": "127.0.0.1", "port": int64(6443)}},
	}}
}

// createCluster creates Cluster ns/name and, when target is set, its
// kubeconfig Secret reaching target (through secrets), then marks the
// Cluster provisioned as cluster-api's controllers would.
func createCluster(t *testing.T, client dynamic.Interface, ns, name string, target *testbed.Cluster, secrets kubernetes.Interface) {
	t.Helper()
	var kubeconfig map[string]any
	if target != nil {
		kubeconfig = flatKubeconfig(t, target)
	}
	createClusterWith(t, client, secrets, ns, name, kubeconfig)
}

// createClusterWith is createCluster with the kubeconfig given (none: nil).
func createClusterWith(t *testing.T, client dynamic.Interface, secrets kubernetes.Interface, ns, name string, kubeconfig map[string]any) {
	t.Helper()
	ctx := context.Background()
	if kubeconfig != nil {
		data, err := yaml.Marshal(kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: clusterapi.KubeconfigSecretName(name), Labels: map[string]string{"cluster.x-k8s.io/cluster-name": name}},
			Type:       "cluster.x-k8s.io/secret",
			Data:       map[string][]byte{"value": data},
		}
		if _, err := secrets.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating Secret %s/%s: %v", ns, secret.Name, err)
		}
	}
	clusters := client.Resource(clusterapi.ClusterResource).Namespace(ns)
	created, err := clusters.Create(ctx, clusterObject(ns, name), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating Cluster %s/%s: %v", ns, name, err)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	if err := unstructured.SetNestedField(created.Object, map[string]any{
		"phase": "Provisioned",
		"conditions": []any{map[string]any{"type": "ControlPlaneInitialized", "status": "True", "reason": "Initialized",
			"message": "", "lastTransitionTime": now}},
		"initialization": map[string]any{"controlPlaneInitialized": true, "infrastructureProvisioned": true},
	}, "status"); err != nil {
		t.Fatal(err)
	}
	if _, err := clusters.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("writing the status of Cluster %s/%s: %v", ns, name, err)
	}
}

func getCluster(t *testing.T, client dynamic.Interface, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := client.Resource(clusterapi.ClusterResource).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// flatKubeconfig is c's admin kubeconfig with its certificates inline, as
// cluster-api writes a <cluster>-kubeconfig Secret.
func flatKubeconfig(t *testing.T, c *testbed.Cluster) map[string]any {
	t.Helper()
	out := mustKubectl(t, c, "", "config", "view", "--raw", "--minify", "--flatten")
	kc := map[string]any{}
	if err := yaml.Unmarshal([]byte(out), &kc); err != nil {
		t.Fatal(err)
	}
	return kc
}

func secretData(t *testing.T, c *testbed.Cluster, ns, name string) map[string]string {
	t.Helper()
	var s corev1.Secret
	if err := json.Unmarshal([]byte(mustKubectl(t, c, "", "-n", ns, "get", "secret", name, "-o", "json")), &s); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out
}

// eventsOf are the events of Cluster ns/name (all of ns when name is
// empty): source, type, reason and message, one a line.
func eventsOf(t *testing.T, c *testbed.Cluster, ns, name string) string {
	t.Helper()
	args := []string{"-n", ns, "get", "events", "-o", `jsonpath={range .items[*]}{.source.component} {.type} {.reason} {.message}{"\n"}{end}`}
	if name != "" {
		args = append(args, "--field-selector", "involvedObject.kind=Cluster,involvedObject.name="+name)
	}
	out, _, _ := kubectl(t, c, "", args...)
	return out
}
