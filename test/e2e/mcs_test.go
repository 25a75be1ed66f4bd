package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// mcsWait is how long an endpoint change may take to travel: child 1's
// kube-controller-manager, its agent, the parent, the hub, child 2's agent.
const mcsWait = 60 * time.Second

// TestMultiClusterServices (docs/mcs.md): with the MultiClusterService
// gate on in the hub and the agents, a Service of kwok pods in child 1,
// which a Subscription sent a ServiceExport, makes child 2, which a
// Subscription sent a ServiceImport, hold EndpointSlices with child 1's
// pod IPs, labelled as mcs-api
// prescribes; they follow the Deployment as it scales; a second export with
// another type is a Conflict on both ServiceExports, resolved for the older;
// withdrawing the ServiceExport removes the imported endpoints.
func TestMultiClusterServices(t *testing.T) {
	tb := testbed.ForTest(t, 2)
	parent := tb.Parent
	exporter, importer := e2eutil.SetUpMCS(t, tb, 2)

	t.Run("the ServiceExport is Valid and Ready, without conflict", func(t *testing.T) {
		waitForExportConditions(t, exporter, "Valid=True/Valid Ready=True/Exported Conflict=False/NoConflicts")
	})
	t.Run("child 2 holds child 1's pod IPs, labelled as mcs-api prescribes", func(t *testing.T) {
		waitForImported(t, exporter, importer, 2)
		out := mustKubectl(t, importer.Cluster, "", "get", "endpointslices", "-n", e2eutil.MCSNamespace,
			"-l", "multicluster.kubernetes.io/service-name=web", "-o",
			`jsonpath={range .items[*]}{.metadata.labels.multicluster\.kubernetes\.io/source-cluster} {.metadata.labels.endpointslice\.kubernetes\.io/managed-by} {.metadata.ownerReferences[0].kind}{"\n"}{end}`)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if want := exporter.ID + " mcs-controller.clusternet.io ServiceImport"; line != want {
				t.Errorf("slice labels and owner %q, want %q", line, want)
			}
		}
	})
	t.Run("scaling the Deployment in child 1 updates them", func(t *testing.T) {
		mustKubectl(t, exporter.Cluster, "", "scale", "deployment", "web", "-n", e2eutil.MCSNamespace, "--replicas=4")
		waitForImported(t, exporter, importer, 4)
		mustKubectl(t, exporter.Cluster, "", "scale", "deployment", "web", "-n", e2eutil.MCSNamespace, "--replicas=1")
		waitForImported(t, exporter, importer, 1)
	})
	t.Run("a newer export of another type is a conflict on both, resolved for the older", func(t *testing.T) {
		mustKubectl(t, importer.Cluster, e2eutil.MCSService(0, true), "apply", "-f", "-")
		mustKubectl(t, parent, e2eutil.MCSExportSubscription(exporter.ID, importer.ID), "apply", "-f", "-")
		for _, c := range []*e2eutil.Child{exporter, importer} {
			waitForExportConditions(t, c, "Valid=True/Valid Ready=True/Exported Conflict=True/TypeConflict")
		}
		msg := mustKubectl(t, importer.Cluster, "", "get", "serviceexport", "web", "-n", e2eutil.MCSNamespace,
			"-o", `jsonpath={.status.conditions[?(@.type=="Conflict")].message}`)
		if want := "cluster " + exporter.ID + " holds the oldest export"; !strings.Contains(msg, want) {
			t.Errorf("Conflict message %q does not say %q", msg, want)
		}
		mustKubectl(t, parent, e2eutil.MCSExportSubscription(exporter.ID), "apply", "-f", "-")
		waitForExportConditions(t, exporter, "Valid=True/Valid Ready=True/Exported Conflict=False/NoConflicts")
		waitForImported(t, exporter, importer, 1)
	})
	t.Run("withdrawing the ServiceExport removes the imported endpoints", func(t *testing.T) {
		mustKubectl(t, parent, "", "delete", "subscription", "mcs-export", "-n", e2eutil.MCSNamespace)
		waitFor(t, mcsWait, "child 1's ServiceExport gone", func(context.Context) (bool, string) {
			out := mustKubectl(t, exporter.Cluster, "", "get", "serviceexports", "-n", e2eutil.MCSNamespace, "-o", "name")
			return strings.TrimSpace(out) == "", out
		})
		waitFor(t, mcsWait, "child 2's imported slices gone", func(context.Context) (bool, string) {
			out := mustKubectl(t, importer.Cluster, "", "get", "endpointslices", "-n", e2eutil.MCSNamespace,
				"-l", "endpointslice.kubernetes.io/managed-by=mcs-controller.clusternet.io", "-o", "name")
			return strings.TrimSpace(out) == "", out
		})
		waitFor(t, mcsWait, "child 1's exported slices gone from the parent", func(context.Context) (bool, string) {
			out := mustKubectl(t, parent, "", "get", "endpointslices", "-n", exporter.Namespace, "-o", "name")
			return strings.TrimSpace(out) == "", out
		})
	})
}

// waitForExportConditions waits until c's ServiceExport web has the
// conditions want ("Type=Status/Reason ...", in Valid, Ready, Conflict order).
func waitForExportConditions(t *testing.T, c *e2eutil.Child, want string) {
	t.Helper()
	waitFor(t, mcsWait, c.Cluster.Name+"'s ServiceExport "+want, func(context.Context) (bool, string) {
		var got []string
		for _, typ := range []string{"Valid", "Ready", "Conflict"} {
			out, _, err := e2eutil.Kubectl(t, c.Cluster, "", "get", "serviceexport", "web", "-n", e2eutil.MCSNamespace, "-o",
				fmt.Sprintf(`jsonpath={.status.conditions[?(@.type=="%[1]s")].status}/{.status.conditions[?(@.type=="%[1]s")].reason}`, typ))
			if err != nil {
				return false, err.Error()
			}
			got = append(got, typ+"="+out)
		}
		return strings.Join(got, " ") == want, strings.Join(got, " ")
	})
}

// waitForImported waits until exporter runs n Ready pods of web and
// importer's imported slices from exporter hold exactly their IPs.
func waitForImported(t *testing.T, exporter, importer *e2eutil.Child, n int) {
	t.Helper()
	var podIPs []string
	waitFor(t, mcsWait, fmt.Sprintf("%d pods of web with IPs in %s", n, exporter.Cluster.Name), func(context.Context) (bool, string) {
		out := mustKubectl(t, exporter.Cluster, "", "get", "pods", "-n", e2eutil.MCSNamespace, "-l", "app=web", "-o",
			`jsonpath={range .items[*]}{.metadata.deletionTimestamp}/{.status.podIP}/{.status.conditions[?(@.type=="Ready")].status} {end}`)
		podIPs = nil
		for _, f := range strings.Fields(out) {
			parts := strings.Split(f, "/")
			if len(parts) == 3 && parts[0] == "" && parts[1] != "" && parts[2] == "True" {
				podIPs = append(podIPs, parts[1])
			}
		}
		slices.Sort(podIPs)
		return len(podIPs) == n && len(strings.Fields(out)) == n, out
	})
	waitFor(t, mcsWait, fmt.Sprintf("%s holding %s's pod IPs %v", importer.Cluster.Name, exporter.Cluster.Name, podIPs), func(context.Context) (bool, string) {
		got := strings.Fields(e2eutil.ImportedAddresses(t, importer.Cluster, exporter.ID))
		slices.Sort(got)
		return cmp.Equal(podIPs, got), fmt.Sprintf("imported %v", got)
	})
}
