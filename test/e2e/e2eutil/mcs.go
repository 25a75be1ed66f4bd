package e2eutil

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// MCSNamespace holds the exported Service in one child and the
// ServiceImport in another (KEP-1645's namespace sameness).
const MCSNamespace = "mcs-e2e"

// MCSServiceExport exports Service web of MCSNamespace.
var MCSServiceExport = fmt.Sprintf(`apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata: {name: web, namespace: %s}
`, MCSNamespace)

// SetUpMCS starts a hub and agents with the MultiClusterService gate on
// over tb's parent and children (the ServiceExport and ServiceImport CRDs
// installed from the agent chart), runs a Deployment of replicas kwok pods
// behind Service web in the first child, and from the parent, as
// upstream's scheduling-with-mcs-api does, distributes a ServiceExport of
// web to the first child (Subscription MCSExportSubscription, which is
// what authorises its export) and a ServiceImport of web to the second;
// both Subscriptions are in MCSNamespace, the Service's namespace. It
// returns the exporting and the importing child.
func SetUpMCS(t *testing.T, tb *testbed.Testbed, replicas int) (exporter, importer *Child) {
	t.Helper()
	parent := tb.Parent
	SetUpParent(t, parent, "--feature-gates=MultiClusterService=true")
	for _, c := range tb.Children {
		MustKubectl(t, c, "", "apply", "--server-side", "-f", filepath.Join(framework.Root(), "charts", "clusternet-agent", "crds"))
		MustKubectl(t, c, "", "wait", "--for=condition=Established", "--timeout=60s",
			"crd/serviceexports.multicluster.x-k8s.io", "crd/serviceimports.multicluster.x-k8s.io")
	}
	children := RegisterChildren(t, parent, tb.Children, func(int) []string {
		return []string{"--feature-gates=MultiClusterService=true"}
	})
	exporter, importer = children[0], children[1]
	MustKubectl(t, exporter.Cluster, MCSService(replicas, false), "apply", "-f", "-")
	MustKubectl(t, parent, "", "create", "namespace", MCSNamespace)
	CreateTemplate(t, parent, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {name: web, namespace: %[1]s}
spec:
  type: ClusterSetIP
  ports:
    - {name: http, protocol: TCP, port: 80}
---
%[2]s`, MCSNamespace, MCSServiceExport))
	MustKubectl(t, parent, fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: mcs-import, namespace: %[1]s}
spec:
  subscribers:
    - clusterAffinity: {matchLabels: {clusters.clusternet.io/cluster-id: %[2]s}}
  feeds:
    - {apiVersion: v1, kind: Namespace, name: %[1]s}
    - {apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceImport, namespace: %[1]s, name: web}
`, MCSNamespace, importer.ID), "apply", "-f", "-")
	MustKubectl(t, parent, MCSExportSubscription(exporter.ID), "apply", "-f", "-")
	return exporter, importer
}

// MCSExportSubscription distributes the ServiceExport of web to the
// clusters of ids: the parent's say that they serve it.
func MCSExportSubscription(ids ...string) string {
	return fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: mcs-export, namespace: %[1]s}
spec:
  subscribers:
    - clusterAffinity:
        matchExpressions:
          - {key: clusters.clusternet.io/cluster-id, operator: In, values: [%[2]s]}
  feeds:
    - {apiVersion: multicluster.x-k8s.io/v1alpha1, kind: ServiceExport, namespace: %[1]s, name: web}
`, MCSNamespace, strings.Join(ids, ", "))
}

// MCSService is a Deployment of kwok pods and its Service web (headless,
// or with a cluster IP) in MCSNamespace.
func MCSService(replicas int, headless bool) string {
	clusterIP := ""
	if headless {
		clusterIP = "clusterIP: None"
	}
	return WebApp(MCSNamespace, replicas, "ports: [{name: http, containerPort: 8080}]") + fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %s}
spec:
  %s
  selector: {app: web}
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: http}
`, MCSNamespace, clusterIP)
}

// WebApp is Namespace ns and Deployment web in it (pods labelled app: web,
// one nginx container with container's extra fields, a YAML flow line such
// as a ports or resources field), as templates for the e2e tests.
func WebApp(ns string, replicas int, container string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %[1]s}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.25
          %[3]s
`, ns, replicas, container)
}

// ImportedAddresses are the endpoint addresses of the slices of web from
// sourceCluster in c's MCSNamespace.
func ImportedAddresses(t *testing.T, c *testbed.Cluster, sourceCluster string) string {
	t.Helper()
	return MustKubectl(t, c, "", "get", "endpointslices", "-n", MCSNamespace,
		"-l", "multicluster.kubernetes.io/service-name=web,multicluster.kubernetes.io/source-cluster="+sourceCluster,
		"-o", `jsonpath={range .items[*]}{range .endpoints[*]}{.addresses[0]} {end}{end}`)
}
