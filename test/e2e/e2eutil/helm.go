package e2eutil

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/helm"
	"github.com/clusternet/clusternet/test/testbed"
)

// HelmDescription is a Helm Description of HelmCharts default/<chart> for
// child, as the hub makes one for Subscription default/<subscription>: in
// the child's dedicated namespace, named <subscription>-helm, with the
// Subscription and cluster labels and the deployers' finalizer. values[i],
// when given, are chart i's merged values (spec.chartRaw).
func HelmDescription(child *Child, subscription string, charts []string, values ...string) *appsv1alpha1.Description {
	d := &appsv1alpha1.Description{
		ObjectMeta: metav1.ObjectMeta{
			Name:      subscription + appsv1alpha1.DescriptionHelmSuffix,
			Namespace: child.Namespace,
			Labels: map[string]string{
				appsv1alpha1.LabelSubscriptionName:      subscription,
				appsv1alpha1.LabelSubscriptionNamespace: "default",
				appsv1alpha1.LabelSubscriptionUID:       "00000000-0000-0000-0000-00000000e2e1",
				appsv1alpha1.LabelClusterID:             child.ID,
			},
			Finalizers: []string{appsv1alpha1.Finalizer},
		},
		Spec: appsv1alpha1.DescriptionSpec{Deployer: appsv1alpha1.DescriptionHelmDeployer},
	}
	for _, c := range charts {
		d.Spec.Charts = append(d.Spec.Charts, appsv1alpha1.ChartReference{Namespace: "default", Name: c})
	}
	for _, v := range values {
		d.Spec.ChartRaw = append(d.Spec.ChartRaw, []byte(v))
	}
	return d
}

// Plugin runs `kubectl clusternet args...` against c: the real kubectl
// finding the kubectl-clusternet plugin Main built on its PATH.
func Plugin(t *testing.T, c *testbed.Cluster, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.Kubectl(ctx, append([]string{"clusternet"}, args...)...)
	cmd.Env = append(cmd.Env, "PATH="+BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// HelmReleases lists the Helm releases in namespace of cluster c, read as
// `helm ls -n namespace --all` reads them (release Secrets there).
func HelmReleases(t *testing.T, c *testbed.Cluster, namespace string) []*release.Release {
	t.Helper()
	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	actionCfg, err := helm.Configuration(context.Background(), helm.NewCluster(cfg), namespace)
	if err != nil {
		t.Fatal(err)
	}
	list := action.NewList(actionCfg)
	list.All = true
	rels, err := list.Run()
	if err != nil {
		t.Fatalf("helm ls -n %s in %s: %v", namespace, c.Name, err)
	}
	return rels
}
