// Package e2e holds the end-to-end tests: real kube-apiservers, etcd,
// controllers and kwok from the testbed, driven by the real kubectl.
package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	"github.com/clusternet/clusternet/pkg/generated/clientset/versioned"
	"github.com/clusternet/clusternet/test/testbed"
)

const clusterID = "dc91021d-2361-4f6d-a404-7c33b9e01118"

// TestAPIs installs the CRDs into a real parent and checks what a user sees:
// the seed README's printed columns, the seed's Subscription accepted as
// written, and bad input refused with the field named.
func TestAPIs(t *testing.T) {
	tb := testbed.ForTest(t, 0)
	parent := tb.Parent
	root := filepath.Join("..", "..")

	mustKubectl(t, parent, "", "apply", "--server-side", "-f", filepath.Join(root, "deploy", "crds"))
	mustKubectl(t, parent, "", "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")

	t.Run("ManagedCluster columns", func(t *testing.T) {
		mustKubectl(t, parent, "", "create", "namespace", "clusternet-dhxfs")
		mustKubectl(t, parent, `
apiVersion: clusters.clusternet.io/v1beta1
kind: ManagedCluster
metadata:
  name: clusternet-cluster-dzqkw
  namespace: clusternet-dhxfs
  labels:
    clusters.clusternet.io/cluster-id: `+clusterID+`
spec:
  clusterId: `+clusterID+`
  clusterType: EdgeClusterSelfProvisioned
  syncMode: Dual
`, "apply", "-f", "-")
		mustKubectl(t, parent, "", "patch", "mcls", "-n", "clusternet-dhxfs", "clusternet-cluster-dzqkw",
			"--subresource=status", "--type=merge", "-p",
			`{"status":{"k8sVersion":"v1.19.10","platform":"linux/amd64","apiserverURL":"http://10.0.0.10:8080",`+
				`"healthz":true,"livez":true,"readyz":true,"appPusher":true,"lastObservedTime":"2021-06-30T08:55:14Z"}}`)

		got := table(mustKubectl(t, parent, "", "get", "mcls", "-A", "-o", "wide"))
		want := [][]string{
			{"NAMESPACE", "NAME", "CLUSTER ID", "CLUSTER TYPE", "SYNC MODE", "KUBERNETES", "READYZ", "AGE"},
			{"clusternet-dhxfs", "clusternet-cluster-dzqkw", clusterID, "EdgeClusterSelfProvisioned", "Dual", "v1.19.10", "true"},
		}
		if diff := cmp.Diff(want, withoutAge(got)); diff != "" {
			t.Errorf("kubectl get mcls -A -o wide (-want +got):\n%s", diff)
		}

		got = table(mustKubectl(t, parent, "", "get", "mcls", "-A"))
		want = [][]string{
			{"NAMESPACE", "NAME", "CLUSTER ID", "SYNC MODE", "KUBERNETES", "READYZ", "AGE"},
			{"clusternet-dhxfs", "clusternet-cluster-dzqkw", clusterID, "Dual", "v1.19.10", "true"},
		}
		if diff := cmp.Diff(want, withoutAge(got)); diff != "" {
			t.Errorf("kubectl get mcls -A (-want +got):\n%s", diff)
		}
	})

	t.Run("ClusterRegistrationRequest columns", func(t *testing.T) {
		name := "clusternet-" + clusterID
		mustKubectl(t, parent, `
apiVersion: clusters.clusternet.io/v1beta1
kind: ClusterRegistrationRequest
metadata:
  name: `+name+`
spec:
  clusterId: `+clusterID+`
  clusterName: clusternet-cluster-dzqkw
  clusterType: EdgeClusterSelfProvisioned
`, "apply", "-f", "-")
		// token and caCertificate are []byte: base64 in JSON, and must round-trip.
		mustKubectl(t, parent, "", "patch", "clsrr", name, "--subresource=status", "--type=merge", "-p",
			`{"status":{"result":"Approved","dedicatedNamespace":"clusternet-dhxfs","managedClusterName":"clusternet-cluster-dzqkw",`+
				`"token":"c2VjcmV0LXRva2Vu","caCertificate":"LS0tLS1CRUdJTg=="}}`)
		if got := mustKubectl(t, parent, "", "get", "clsrr", name, "-o", "jsonpath={.status.token} {.status.caCertificate}"); got != "c2VjcmV0LXRva2Vu LS0tLS1CRUdJTg==" {
			t.Errorf("status byte fields = %q", got)
		}

		got := table(mustKubectl(t, parent, "", "get", "clsrr"))
		want := [][]string{
			{"NAME", "CLUSTER ID", "STATUS", "AGE"},
			{name, clusterID, "Approved"},
		}
		if diff := cmp.Diff(want, withoutAge(got)); diff != "" {
			t.Errorf("kubectl get clsrr (-want +got):\n%s", diff)
		}
	})

	t.Run("seed Subscription accepted as written", func(t *testing.T) {
		out := mustKubectl(t, parent, "", "apply", "-f", filepath.Join(root, "examples", "applications", "05-subscription.yaml"))
		if want := "subscription.apps.clusternet.io/app-demo created"; strings.TrimSpace(out) != want {
			t.Errorf("kubectl apply printed %q, want %q", out, want)
		}
		got := mustKubectl(t, parent, "", "get", "subs", "app-demo", "-o", "jsonpath={.spec.feeds[3].feedSelector.matchLabels}")
		if want := `{"clusternet-app":"multi-cluster-nginx"}`; got != want {
			t.Errorf("stored feedSelector = %s, want %s", got, want)
		}
		rows := withoutAge(table(mustKubectl(t, parent, "", "get", "subs", "-A")))
		if diff := cmp.Diff([][]string{{"NAMESPACE", "NAME", "AGE"}, {"default", "app-demo"}}, rows); diff != "" {
			t.Errorf("kubectl get subs -A (-want +got):\n%s", diff)
		}
	})

	t.Run("apps columns", func(t *testing.T) {
		mustKubectl(t, parent, "", "apply", "-f", filepath.Join(root, "examples", "applications", "01-helmchart.yaml"))
		mustKubectl(t, parent, "", "patch", "chart", "mysql", "--subresource=status", "--type=merge", "-p", `{"status":{"phase":"Found"}}`)
		mustKubectl(t, parent, `
apiVersion: apps.clusternet.io/v1alpha1
kind: Description
metadata: {name: app-demo-generic, namespace: clusternet-dhxfs}
spec:
  deployer: Generic
  raw:
  - {apiVersion: v1, kind: Namespace, metadata: {name: foo}}
---
apiVersion: apps.clusternet.io/v1alpha1
kind: Description
metadata: {name: app-demo-helm, namespace: clusternet-dhxfs}
spec:
  deployer: Helm
  charts:
  - {namespace: default, name: mysql}
---
apiVersion: apps.clusternet.io/v1alpha1
kind: HelmRelease
metadata: {name: helm-demo-mysql, namespace: clusternet-dhxfs}
spec: {repo: "https://charts.bitnami.com/bitnami", chart: mysql, version: 8.6.2, targetNamespace: abc}
`, "apply", "-f", "-")
		for _, desc := range []string{"app-demo-generic", "app-demo-helm"} {
			mustKubectl(t, parent, "", "patch", "desc", "-n", "clusternet-dhxfs", desc, "--subresource=status", "--type=merge", "-p", `{"status":{"phase":"Success"}}`)
		}
		mustKubectl(t, parent, "", "patch", "hr", "-n", "clusternet-dhxfs", "helm-demo-mysql", "--subresource=status", "--type=merge", "-p", `{"status":{"phase":"deployed"}}`)

		for _, tc := range []struct {
			args []string
			want [][]string
		}{
			{[]string{"get", "chart"}, [][]string{
				{"NAME", "CHART", "VERSION", "REPO", "STATUS", "AGE"},
				{"mysql", "mysql", "8.6.2", "https://charts.bitnami.com/bitnami", "Found"},
			}},
			{[]string{"get", "desc", "-A"}, [][]string{
				{"NAMESPACE", "NAME", "DEPLOYER", "STATUS", "AGE"},
				{"clusternet-dhxfs", "app-demo-generic", "Generic", "Success"},
				{"clusternet-dhxfs", "app-demo-helm", "Helm", "Success"},
			}},
			{[]string{"get", "hr", "-n", "clusternet-dhxfs"}, [][]string{
				{"NAME", "CHART", "VERSION", "REPO", "STATUS", "AGE"},
				{"helm-demo-mysql", "mysql", "8.6.2", "https://charts.bitnami.com/bitnami", "deployed"},
			}},
		} {
			if diff := cmp.Diff(tc.want, withoutAge(table(mustKubectl(t, parent, "", tc.args...)))); diff != "" {
				t.Errorf("kubectl %s (-want +got):\n%s", strings.Join(tc.args, " "), diff)
			}
		}
	})

	t.Run("typed clientset round trip with status", func(t *testing.T) {
		cfg, err := parent.RESTConfig()
		if err != nil {
			t.Fatal(err)
		}
		cs, err := versioned.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		mcls := cs.ClustersV1beta1().ManagedClusters("default")
		created, err := mcls.Create(ctx, &clusterv1beta1.ManagedCluster{
			ObjectMeta: metav1.ObjectMeta{Name: "typed"},
			Spec:       clusterv1beta1.ManagedClusterSpec{ClusterID: "6f0d5c1e-2b1a-4a43-9a39-2f3c3c1d7e55"},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if created.Spec.SyncMode != clusterv1beta1.DualSyncMode || created.Spec.ClusterType != clusterv1beta1.EdgeClusterSelfProvisioned {
			t.Errorf("schema defaults not applied: syncMode=%q clusterType=%q", created.Spec.SyncMode, created.Spec.ClusterType)
		}
		created.Status.K8sVersion, created.Status.Readyz = "v1.35.4", true
		created.Spec.SyncMode = clusterv1beta1.PushSyncMode // ignored: status writes cannot change spec
		if _, err := mcls.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := mcls.Get(ctx, "typed", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.K8sVersion != "v1.35.4" || !got.Status.Readyz || got.Spec.SyncMode != clusterv1beta1.DualSyncMode {
			t.Errorf("after UpdateStatus: status=%+v syncMode=%q", got.Status, got.Spec.SyncMode)
		}
	})

	for _, tc := range invalidObjects {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			out, errOut, err := kubectl(t, parent, tc.manifest, "apply", "-f", "-")
			if err == nil {
				t.Fatalf("kubectl apply accepted an invalid object:\n%s", out)
			}
			for _, want := range tc.wantInError {
				if !strings.Contains(errOut, want) {
					t.Errorf("error does not mention %q:\n%s", want, errOut)
				}
			}
			stored := mustKubectl(t, parent, "", "get", tc.kind, "-A", "--field-selector=metadata.name="+tc.objName, "-o", "name")
			if stored != "" {
				t.Errorf("a refused object was stored anyway: %s", stored)
			}
		})
	}
}

var invalidObjects = []struct {
	name, kind, objName, manifest string
	wantInError                   []string
}{
	{
		name: "Subscription without subscribers", kind: "subs", objName: "no-subscribers",
		manifest: `
apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: no-subscribers, namespace: default}
spec:
  feeds:
  - {apiVersion: v1, kind: Namespace, name: foo}
`,
		wantInError: []string{"spec.subscribers", "Required value"},
	},
	{
		name: "Localization priority 5000", kind: "loc", objName: "too-high",
		manifest: `
apiVersion: apps.clusternet.io/v1alpha1
kind: Localization
metadata: {name: too-high, namespace: default}
spec:
  priority: 5000
  feed: {apiVersion: apps/v1, kind: Deployment, name: my-nginx, namespace: foo}
  overrides:
  - {type: MergePatch, value: '{"spec":{"replicas":1}}'}
`,
		wantInError: []string{"spec.priority", "5000", "less than or equal to 1000"},
	},
	{
		name: "Globalization priority 5000", kind: "glob", objName: "too-high-glob",
		manifest: `
apiVersion: apps.clusternet.io/v1alpha1
kind: Globalization
metadata: {name: too-high-glob}
spec:
  priority: 5000
  feed: {apiVersion: apps/v1, kind: Deployment, name: my-nginx, namespace: foo}
  overrides:
  - {type: MergePatch, value: '{"spec":{"replicas":1}}'}
`,
		wantInError: []string{"spec.priority", "5000", "less than or equal to 1000"},
	},
	{
		name: "ManagedCluster with unknown syncMode", kind: "mcls", objName: "bad-sync",
		manifest: `
apiVersion: clusters.clusternet.io/v1beta1
kind: ManagedCluster
metadata: {name: bad-sync, namespace: default}
spec:
  clusterId: 0b4a8a55-6a0e-4c5e-8a53-3a3a0c0f1d11
  syncMode: Sideways
`,
		wantInError: []string{"spec.syncMode", `"Sideways"`, `"Push", "Pull", "Dual"`},
	},
	{
		name: "ClusterRegistrationRequest with unknown syncMode", kind: "clsrr", objName: "clusternet-0b4a8a55-6a0e-4c5e-8a53-3a3a0c0f1d11",
		manifest: `
apiVersion: clusters.clusternet.io/v1beta1
kind: ClusterRegistrationRequest
metadata: {name: clusternet-0b4a8a55-6a0e-4c5e-8a53-3a3a0c0f1d11}
spec:
  clusterId: 0b4a8a55-6a0e-4c5e-8a53-3a3a0c0f1d11
  syncMode: push
`,
		wantInError: []string{"spec.syncMode", `"push"`, `"Push", "Pull", "Dual"`},
	},
	{
		name: "Subscription with negative weight", kind: "subs", objName: "negative-weight",
		manifest: `
apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: negative-weight, namespace: default}
spec:
  subscribers:
  - clusterAffinity: {matchLabels: {env: prod}}
    weight: -1
  feeds:
  - {apiVersion: v1, kind: Namespace, name: foo}
`,
		wantInError: []string{"spec.subscribers[0].weight", "-1", "greater than or equal to 0"},
	},
	{
		name: "feed with both name and feedSelector", kind: "subs", objName: "both",
		manifest: `
apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: both, namespace: default}
spec:
  subscribers:
  - clusterAffinity: {matchLabels: {env: prod}}
  feeds:
  - {apiVersion: apps/v1, kind: Deployment, name: x, feedSelector: {matchLabels: {a: b}}}
`,
		wantInError: []string{"spec.feeds[0]", "exactly one of name or feedSelector"},
	},
	{
		name: "HelmChart with an ftp repo", kind: "chart", objName: "ftp",
		manifest: `
apiVersion: apps.clusternet.io/v1alpha1
kind: HelmChart
metadata: {name: ftp, namespace: default}
spec: {repo: "ftp://charts.example", chart: mysql, targetNamespace: abc}
`,
		wantInError: []string{"spec.repo", "ftp://charts.example"},
	},
}

// withoutAge drops each row's last field (AGE), which changes as the test runs.
func withoutAge(rows [][]string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		if i == 0 || len(r) == 0 {
			out[i] = r
			continue
		}
		out[i] = r[:len(r)-1]
	}
	return out
}
