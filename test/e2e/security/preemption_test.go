package security

import (
	"fmt"
	"strings"
	"testing"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// prioritized is a Subscription of carol's in team-c with priority and,
// unless empty, preemptionPolicy.
func prioritized(name string, priority int, policy string) string {
	p := ""
	if policy != "" {
		p = fmt.Sprintf(`, "preemptionPolicy": %q`, policy)
	}
	return fmt.Sprintf(`{"apiVersion": "apps.clusternet.io/v1alpha1", "kind": "Subscription",
"metadata": {"name": %q, "namespace": "team-c"},
"spec": {"priority": %d%s, "subscribers": [{"clusterAffinity": {"matchLabels": {"team": "c"}}}],
"feeds": [{"apiVersion": "v1", "kind": "ConfigMap", "namespace": "team-c", "name": "settings"}]}}`, name, priority, p)
}

// TestPreemptionNeedsUse: a parent user who may write Subscriptions in their
// namespace cannot give one a priority that preempts (it would take other
// tenants' room in every cluster) unless an admin grants them "use" on
// subscriptions/priority; a priority that preempts nothing (PreemptNever,
// or 0) needs no grant, and neither does lowering one.
func TestPreemptionNeedsUse(t *testing.T) {
	tb := testbed.ForTest(t, 0)
	parent := tb.Parent
	e2eutil.SetUpParent(t, parent)
	e2eutil.MustKubectl(t, parent, `
apiVersion: v1
kind: Namespace
metadata: {name: team-c}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: carol, namespace: team-c}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: subscription-writer, namespace: team-c}
rules:
  - apiGroups: [apps.clusternet.io]
    resources: [subscriptions]
    verbs: [get, list, create, update, patch]
  - apiGroups: ["", shadow]
    resources: [configmaps]
    verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: carol-writes, namespace: team-c}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: subscription-writer}
subjects: [{kind: ServiceAccount, name: carol, namespace: team-c}]
`, "apply", "-f", "-")
	e2eutil.CreateTemplate(t, parent, `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "team-c"}, "data": {"k": "v"}}`)
	carol := asServiceAccount(t, parent, "team-c", "carol")

	apply := func(as *testbed.Cluster, obj string) (string, error) {
		t.Helper()
		out, errOut, err := e2eutil.Kubectl(t, as, obj, "apply", "-f", "-")
		return out + errOut, err
	}
	t.Run("refused: a priority that preempts", func(t *testing.T) {
		for _, obj := range []string{prioritized("urgent", 500, ""), prioritized("urgent", 500, "PreemptLowerPriority")} {
			errOut, err := apply(carol, obj)
			if err == nil || !strings.Contains(errOut, "needs verb use on subscriptions/priority (apps.clusternet.io) in namespace team-c") {
				t.Errorf("carol's preempting Subscription: err %v, stderr %q; want refused naming the grant", err, errOut)
			}
		}
	})
	t.Run("allowed: priorities that preempt nothing", func(t *testing.T) {
		for _, obj := range []string{prioritized("polite", 500, "PreemptNever"), prioritized("plain", 0, "")} {
			if errOut, err := apply(carol, obj); err != nil {
				t.Errorf("carol's Subscription: %v\n%s", err, errOut)
			}
		}
	})
	t.Run("refused: turning a polite one into a preempting one", func(t *testing.T) {
		errOut, err := apply(carol, prioritized("polite", 500, "PreemptLowerPriority"))
		if err == nil || !strings.Contains(errOut, "subscriptions/priority") {
			t.Errorf("err %v, stderr %q; want refused", err, errOut)
		}
	})
	t.Run("allowed with use on subscriptions/priority, and lowering needs nothing", func(t *testing.T) {
		e2eutil.MustKubectl(t, parent, `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: preemptor, namespace: team-c}
rules:
  - apiGroups: [apps.clusternet.io]
    resources: [subscriptions/priority]
    verbs: [use]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: carol-preempts, namespace: team-c}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: preemptor}
subjects: [{kind: ServiceAccount, name: carol, namespace: team-c}]
`, "apply", "-f", "-")
		if errOut, err := apply(carol, prioritized("urgent", 500, "")); err != nil {
			t.Fatalf("carol, granted use, creating a preempting Subscription: %v\n%s", err, errOut)
		}
		e2eutil.MustKubectl(t, parent, "", "delete", "rolebinding", "carol-preempts", "-n", "team-c")
		if errOut, err := apply(carol, prioritized("urgent", 300, "")); err != nil {
			t.Errorf("carol lowering her Subscription's priority after losing the grant: %v\n%s", err, errOut)
		}
	})
}
