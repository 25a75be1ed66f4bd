// Package e2e holds the end-to-end tests: real kube-apiservers, etcd,
// controllers and kwok from the testbed, driven by the real kubectl.
package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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
		mustKubectl(t, parent, "", "patch", "clsrr", name, "--subresource=status", "--type=merge", "-p",
			`{"status":{"result":"Approved","dedicatedNamespace":"clusternet-dhxfs","managedClusterName":"clusternet-cluster-dzqkw"}}`)

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
		out := mustKubectl(t, parent, "", "apply", "-f", filepath.Join(root, "examples", "applications", "subscription.yaml"))
		if want := "subscription.apps.clusternet.io/app-demo created"; strings.TrimSpace(out) != want {
			t.Errorf("kubectl apply printed %q, want %q", out, want)
		}
		got := mustKubectl(t, parent, "", "get", "subs", "app-demo", "-o", "jsonpath={.spec.feeds[3].feedSelector.matchLabels}")
		if want := `{"clusternet-app":"multi-cluster-nginx"}`; got != want {
			t.Errorf("stored feedSelector = %s, want %s", got, want)
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
