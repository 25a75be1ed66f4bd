package helm

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/helmrepo"
)

// TestOverrideChart: a Localization with overrideChart: true gives one
// cluster another chart version through a real Subscription, the other
// cluster keeps the HelmChart's, and deleting the Localization rolls the
// release back; a Localization may not send a HelmChart's credentials
// elsewhere.
func TestOverrideChart(t *testing.T) {
	// The canary is s.push, the cluster the hub pushes to, so that the
	// hub's check of what it pushes (the HelmRelease is what it makes from
	// the Description) sees the overridden version.
	s := newSuite(t)
	mustKubectl(t, s.parent, helmChartYAML("mysql", s.repo.URL, "mysql", "8.6.2"), "apply", "-f", "-")

	t.Run("one cluster gets another version, and back when the Localization goes", s.canaryVersion)
	t.Run("a Localization cannot send a HelmChart's credentials elsewhere", s.overrideKeepsCredentials)
}

// chartLocalization is a Localization in c's dedicated namespace whose one
// override is a chart override of HelmChart default/<chart> with value.
func chartLocalization(c *e2eutil.Child, name, chart, value string) string {
	return fmt.Sprintf(`apiVersion: apps.clusternet.io/v1alpha1
kind: Localization
metadata: {name: %s, namespace: %s}
spec:
  overridePolicy: ApplyNow
  feed: {apiVersion: apps.clusternet.io/v1alpha1, kind: HelmChart, namespace: default, name: %s}
  overrides:
    - name: chart
      type: Helm
      overrideChart: true
      value: '%s'
`, name, c.Namespace, chart, value)
}

func (s *suite) canaryVersion(t *testing.T) {
	mustKubectl(t, s.parent, subscriptionOf("canary", "mysql", s.push, s.pull), "apply", "-f", "-")
	s.waitDescriptionsSuccess(t, "canary", s.push, s.pull)
	onA := []release{{Name: "canary-mysql", Chart: "mysql-8.6.2", Status: "deployed", Revision: 1}}
	for _, c := range []*e2eutil.Child{s.push, s.pull} {
		s.waitReleases(t, c, onA)
	}

	mustKubectl(t, s.parent, chartLocalization(s.push, "mysql-canary", "mysql", `{"spec": {"version": "8.6.3"}}`), "apply", "-f", "-")
	s.waitCanary(t, "8.6.3", 2)
	if got := mustKubectl(t, s.parent, "", "get", "desc", "-n", s.push.Namespace, "canary-helm", "-o", "jsonpath={.spec.charts[0].options.version}"); got != "8.6.3" {
		t.Errorf("the canary's Description carries version %q, want 8.6.3", got)
	}
	// The HelmChart is as it was, and so is the other cluster.
	if got := mustKubectl(t, s.parent, "", "get", "chart", "mysql", "-o", "jsonpath={.spec.version}"); got != "8.6.2" {
		t.Errorf("HelmChart default/mysql: version %q, want 8.6.2", got)
	}
	if got := s.hrStatus(t, s.pull.Namespace, "canary-mysql"); got != "8.6.2 deployed 1" {
		t.Errorf("HelmRelease canary-mysql of the other cluster: %q, want 8.6.2 deployed 1", got)
	}
	if diff := cmp.Diff(onA, s.helmLs(t, s.pull)); diff != "" {
		t.Errorf("helm ls in the other cluster (-want +got):\n%s", diff)
	}
	s.waitDescriptionsSuccess(t, "canary", s.push, s.pull)

	// Deleting it rolls the canary back, whatever its policy.
	mustKubectl(t, s.parent, "", "delete", "localization", "-n", s.push.Namespace, "mysql-canary")
	s.waitCanary(t, "8.6.2", 3)
	if diff := cmp.Diff(onA, s.helmLs(t, s.pull)); diff != "" {
		t.Errorf("helm ls in the other cluster (-want +got):\n%s", diff)
	}
	s.waitDescriptionsSuccess(t, "canary", s.push, s.pull)
}

// waitCanary waits until release canary-mysql in s.push is chart mysql
// at version and revision, deployed, by helm ls and by its HelmRelease,
// and checks that its ConfigMap is the chart's at version with its default
// values.
func (s *suite) waitCanary(t *testing.T, version string, revision int) {
	t.Helper()
	s.waitReleases(t, s.push, []release{{Name: "canary-mysql", Chart: "mysql-" + version, Status: "deployed", Revision: revision}})
	want := fmt.Sprintf("%s deployed %d", version, revision)
	waitFor(t, wait, "HelmRelease canary-mysql of "+s.push.Namespace+" "+want, func(context.Context) (bool, string) {
		got := s.hrStatus(t, s.push.Namespace, "canary-mysql")
		return got == want, got
	})
	if got := s.configMap(t, s.push, "canary-mysql-config"); got != version+" hello" {
		t.Errorf("ConfigMap of the canary: %q, want the chart's %s with its default values", got, version)
	}
}

// overrideKeepsCredentials plays whoever may write Localizations in a
// cluster's dedicated namespace but not the HelmChart: a chart override
// that would send the HelmChart's repository credentials to a repository
// of theirs, or use another pull Secret, is refused, the release stays as
// it is, and their repository is never asked.
func (s *suite) overrideKeepsCredentials(t *testing.T) {
	private := helmrepo.NewRepo(t, helmrepo.WithBasicAuth("alice", "pw"))
	private.Add(t, helmrepo.DemoChart("vault", "1.0.0"))
	mustKubectl(t, s.parent, "", "create", "secret", "generic", "vault-creds", "-n", "default",
		"--type=kubernetes.io/basic-auth", "--from-literal=username=alice", "--from-literal=password=pw")
	mustKubectl(t, s.parent, "", "create", "secret", "generic", "registry-creds", "-n", "kube-system",
		"--type=kubernetes.io/basic-auth", "--from-literal=username=admin", "--from-literal=password=parent-secret")
	// What earlier cases installed in the cluster stays; this case adds one.
	installed := append(s.helmLs(t, s.push), release{Name: "private-vault", Chart: "vault-1.0.0", Status: "deployed", Revision: 1})
	slices.SortFunc(installed, func(a, b release) int { return strings.Compare(a.Name, b.Name) })
	mustKubectl(t, s.parent, helmChartYAML("vault", private.URL, "vault", "1.0.0", "  chartPullSecret:", "    name: vault-creds"), "apply", "-f", "-")
	mustKubectl(t, s.parent, subscriptionOf("private", "vault", s.push), "apply", "-f", "-")
	s.waitDescriptionsSuccess(t, "private", s.push)
	s.waitReleases(t, s.push, installed)

	prefix := fmt.Sprintf(`Localization %s/steal spec.overrides[0] (Helm, overrideChart) on apps.clusternet.io/v1alpha1 HelmChart "default/vault": `, s.push.Namespace)
	const suffix = `: fix or delete the override; the Descriptions stay as they were`
	for _, tc := range []struct {
		name, value, want string
	}{{
		name:  "another repository",
		value: fmt.Sprintf(`{"spec": {"repo": %q}}`, s.attacker.URL+"/charts"),
		want: prefix + fmt.Sprintf(`spec.repo cannot be overridden for HelmChart default/vault (the value sets it to %q): the HelmChart has spec.chartPullSecret, `+
			`and its credentials go only to the repository, and in the way, the HelmChart names: remove spec.repo from the value, `+
			`or feed this cluster a HelmChart of that repository (with credentials of its own if it needs them)`, s.attacker.URL+"/charts") + suffix,
	}, {
		name:  "a pull Secret of another namespace",
		value: `{"spec": {"chartPullSecret": {"name": "registry-creds", "namespace": "kube-system"}}}`,
		want: prefix + `spec.chartPullSecret cannot be overridden (the value sets it to {"name":"registry-creds","namespace":"kube-system"}): ` +
			`chart pull credentials are chosen only by whoever may write the HelmChart, in its own namespace: set spec.chartPullSecret on the HelmChart; ` +
			`remove spec.chartPullSecret from the value` + suffix,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			mustKubectl(t, s.parent, chartLocalization(s.push, "steal", "vault", tc.value), "apply", "-f", "-")
			waitFor(t, wait, "Base "+s.push.Namespace+"/private Rendered=False, OverrideFailed", func(context.Context) (bool, string) {
				out, errOut, err := kubectl(t, s.parent, "", "get", "bases", "-n", s.push.Namespace, "private",
					"-o", `jsonpath={.status.conditions[?(@.type=="Rendered")].status}|{.status.conditions[?(@.type=="Rendered")].reason}|{.status.conditions[?(@.type=="Rendered")].message}`)
				if err != nil {
					return false, errOut
				}
				return out == "False|OverrideFailed|"+tc.want, out
			})
			waitFor(t, wait, "Subscription default/private Rendered=False, OverrideFailed", func(context.Context) (bool, string) {
				out, errOut, err := kubectl(t, s.parent, "", "get", "subs", "-n", "default", "private",
					"-o", `jsonpath={.status.conditions[?(@.type=="Rendered")].reason}|{.status.conditions[?(@.type=="Rendered")].message}`)
				if err != nil {
					return false, errOut
				}
				return out == "OverrideFailed|cluster of namespace "+s.push.Namespace+": "+tc.want, out
			})
			hr := mustKubectl(t, s.parent, "", "get", "hr", "-n", s.push.Namespace, "private-vault",
				"-o", "jsonpath={.spec.repo} {.spec.chartPullSecret.namespace}/{.spec.chartPullSecret.name}")
			if want := private.URL + " " + s.push.Namespace + "/private-vault-chart-pull"; hr != want {
				t.Errorf("HelmRelease private-vault: %q, want %q (as the HelmChart has it)", hr, want)
			}
			if diff := cmp.Diff(installed, s.helmLs(t, s.push)); diff != "" {
				t.Errorf("helm ls (-want +got):\n%s", diff)
			}
			if got := s.attacker.requests(); len(got) != 0 {
				t.Errorf("the Localization's repository was asked: %v", got)
			}
		})
	}

	// Without it, the Base renders again.
	mustKubectl(t, s.parent, "", "delete", "localization", "-n", s.push.Namespace, "steal")
	waitFor(t, wait, "Base "+s.push.Namespace+"/private Rendered=True", func(context.Context) (bool, string) {
		out, _, _ := kubectl(t, s.parent, "", "get", "bases", "-n", s.push.Namespace, "private",
			"-o", `jsonpath={.status.conditions[?(@.type=="Rendered")].status}`)
		return out == "True", out
	})
	if got := s.attacker.requests(); len(got) != 0 {
		t.Errorf("the Localization's repository was asked: %v", got)
	}
}
