package security

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/helmrepo"
	"github.com/clusternet/clusternet/test/testbed"
)

// TestChartRepositoryAllowList: a parent user who may create HelmCharts (and
// nothing else) names a chart repository the hub's
// --chart-repository-allowed-hosts does not list. The real hub refuses to
// fetch from it, and the HelmChart's status names the host, the rule and
// the flag.
func TestChartRepositoryAllowList(t *testing.T) {
	tb := testbed.ForTest(t, 0)
	parent := tb.Parent
	e2eutil.SetUpParent(t, parent, "--chart-repository-allowed-hosts=example.invalid")

	// The same loopback chart server the helm e2e tests use.
	repo := helmrepo.NewRepo(t)
	repo.Add(t, helmrepo.DemoChart("mysql", "8.6.2"))

	// alice may write HelmCharts in team-a, nothing more.
	e2eutil.MustKubectl(t, parent, "", "create", "namespace", "team-a")
	e2eutil.MustKubectl(t, parent, "", "-n", "team-a", "create", "role", "helmcharts",
		"--verb=get,list,watch,create", "--resource=helmcharts.apps.clusternet.io")
	e2eutil.MustKubectl(t, parent, "", "-n", "team-a", "create", "rolebinding", "alice-helmcharts", "--role=helmcharts", "--user=alice")
	e2eutil.MustKubectl(t, parent, fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: HelmChart
metadata:
  name: mysql
  namespace: team-a
spec:
  repo: %s
  chart: mysql
  version: 8.6.2
  targetNamespace: demo
`, repo.URL), "--as=alice", "apply", "-f", "-")

	client := e2eutil.ClusternetClient(t, parent)
	want := fmt.Sprintf(`chart repository %q is refused: host "127.0.0.1" is not allowed by --chart-repository-allowed-hosts of clusternet-hub: use an allowed repository, or ask the clusternet-hub admin to add the host to the flag`, repo.URL)
	e2eutil.WaitFor(t, 2*time.Minute, "the HelmChart to be refused", func(ctx context.Context) (bool, string) {
		hc, err := client.AppsV1alpha1().HelmCharts("team-a").Get(ctx, "mysql", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return hc.Status.Phase == "NotFound" && hc.Status.Reason == want, fmt.Sprintf("phase %q reason %q", hc.Status.Phase, hc.Status.Reason)
	})
}
