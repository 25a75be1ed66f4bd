package security

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// The rule the hub's Subscription webhook enforces (deploy/hub/webhook.yaml,
// docs/distribution.md "Who may distribute what"), as its refusals state it.
const subscriptionRule = "a Subscription may only name what its author may read"

// asServiceAccount is parent as ServiceAccount namespace/name: a kubeconfig
// holding only a token the TokenRequest API issued for it, exactly what
// `kubectl create token` hands a user.
func asServiceAccount(t *testing.T, parent *testbed.Cluster, namespace, name string) *testbed.Cluster {
	t.Helper()
	token := strings.TrimSpace(e2eutil.MustKubectl(t, parent, "", "create", "token", name, "-n", namespace))
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["parent"] = &clientcmdapi.Cluster{Server: parent.URL, CertificateAuthority: parent.CAFile}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: "parent", AuthInfo: name}
	cfg.CurrentContext = name
	file := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, file); err != nil {
		t.Fatal(err)
	}
	as := *parent
	as.Kubeconfig = file
	return &as
}

// subscription is a Subscription in team-a with feeds (JSON), to any cluster.
func subscription(name string, feeds ...string) string {
	return fmt.Sprintf(`{"apiVersion": "apps.clusternet.io/v1alpha1", "kind": "Subscription",
"metadata": {"name": %q, "namespace": "team-a"},
"spec": {"subscribers": [{"clusterAffinity": {"matchLabels": {"team": "a"}}}], "feeds": [%s]}}`, name, strings.Join(feeds, ", "))
}

const (
	teamBSecret     = `{"apiVersion": "v1", "kind": "Secret", "namespace": "team-b", "name": "db"}`
	teamADeployment = `{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "team-a", "name": "web"}`
	teamASecret     = `{"apiVersion": "v1", "kind": "Secret", "namespace": "team-a", "name": "token"}`
	allDeployments  = `{"apiVersion": "apps/v1", "kind": "Deployment", "feedSelector": {"matchLabels": {"app": "web"}}}`
)

// TestSubscriptionNamesOnlyWhatItsAuthorMayRead: a parent user who may write
// Subscriptions in their namespace cannot use one to ship what they may not
// read (another namespace's Secret template, every namespace's Deployments)
// to a cluster they choose; nor keep such a feed when they rewrite someone
// else's Subscription.
func TestSubscriptionNamesOnlyWhatItsAuthorMayRead(t *testing.T) {
	tb := testbed.ForTest(t, 0)
	parent := tb.Parent
	e2eutil.SetUpParent(t, parent)

	// alice: ClusterRole edit in team-a, which does not include
	// Subscriptions, so a Role adds them. bob: view in team-a, whose RBAC
	// grants get on templates of every kind there, Secret templates
	// included (deploy/hub/rbac.yaml's shadow aggregation), but not on
	// Secrets.
	e2eutil.MustKubectl(t, parent, `
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: alice, namespace: team-a}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: bob, namespace: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: subscription-writer, namespace: team-a}
rules:
  - apiGroups: [apps.clusternet.io]
    resources: [subscriptions]
    verbs: [get, list, create, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-edit, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: ServiceAccount, name: alice, namespace: team-a}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-view, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: bob, namespace: team-a}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: subscription-writers, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: subscription-writer}
subjects:
  - {kind: ServiceAccount, name: alice, namespace: team-a}
  - {kind: ServiceAccount, name: bob, namespace: team-a}
`, "apply", "-f", "-")
	if out, _, _ := e2eutil.Kubectl(t, parent, "", "auth", "can-i", "create", "subscriptions.apps.clusternet.io", "-n", "team-a",
		"--as=system:serviceaccount:team-a:alice", "--as-group=system:serviceaccounts"); strings.TrimSpace(out) != "yes" {
		t.Fatalf("alice may not create Subscriptions in team-a (%q): the refusals below would prove nothing", out)
	}
	e2eutil.CreateTemplate(t, parent, `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "team-b"}, "stringData": {"password": "team-b's"}}`)
	e2eutil.CreateTemplate(t, parent, `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token", "namespace": "team-a"}, "stringData": {"token": "team-a's"}}`)
	e2eutil.CreateTemplate(t, parent, `{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "team-a", "labels": {"app": "web"}},
"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}`)

	alice := asServiceAccount(t, parent, "team-a", "alice")
	bob := asServiceAccount(t, parent, "team-a", "bob")
	const aliceName = "system:serviceaccount:team-a:alice"

	refused := func(t *testing.T, as *testbed.Cluster, obj, verb string, wants ...string) {
		t.Helper()
		out, errOut, err := e2eutil.Kubectl(t, as, obj, verb, "-f", "-")
		if err == nil {
			t.Fatalf("kubectl %s succeeded, want a refusal:\n%s", verb, out)
		}
		t.Logf("refused:\n%s", errOut)
		for _, want := range append([]string{`admission webhook "subscriptions.apps.clusternet.io" denied the request`, subscriptionRule}, wants...) {
			if !strings.Contains(errOut, want) {
				t.Errorf("the refusal does not say %q:\n%s", want, errOut)
			}
		}
	}
	absent := func(t *testing.T, name string) {
		t.Helper()
		if out, _, err := e2eutil.Kubectl(t, parent, "", "get", "subscription", name, "-n", "team-a", "-o", "name"); err == nil {
			t.Errorf("Subscription team-a/%s was stored: %s", name, out)
		}
	}

	t.Run("edit in team-a may not feed team-b's Secret template", func(t *testing.T) {
		refused(t, alice, subscription("steal", teamADeployment, teamBSecret), "create",
			`spec.feeds[1]: Forbidden: user "`+aliceName+`" may not get secrets.shadow "db" in namespace "team-b" (the template of v1 Secret "team-b/db")`,
			`ask for get on secrets.shadow "db" in namespace "team-b", or remove the feed`,
			`may not get secrets "db" in namespace "team-b"`)
		absent(t, "steal")
	})
	t.Run("edit in team-a may not select from every namespace", func(t *testing.T) {
		refused(t, alice, subscription("everything", allDeployments), "create",
			`spec.feeds[0]: Forbidden: user "`+aliceName+`" may not list deployments.shadow cluster-wide (the templates of the feedSelector over apps/v1 Deployment)`,
			`ask for list on deployments.shadow cluster-wide, or remove the feed`)
		absent(t, "everything")
	})
	t.Run("view in team-a may not feed a Secret template without Secret read rights", func(t *testing.T) {
		refused(t, bob, subscription("peek", teamASecret), "create",
			`spec.feeds[0]: Forbidden: user "system:serviceaccount:team-a:bob" may not get secrets "token" in namespace "team-a" (a template needs the permission its real object needs: v1 Secret "team-a/token")`)
		absent(t, "peek")
	})
	t.Run("edit in team-a may feed team-a's Deployment template", func(t *testing.T) {
		if out, errOut, err := e2eutil.Kubectl(t, alice, subscription("mine", teamADeployment), "create", "-f", "-"); err != nil {
			t.Fatalf("alice's own Subscription refused: %v\n%s%s", err, out, errOut)
		}
	})
	t.Run("the admin may feed team-b's Secret template and every namespace's Deployments", func(t *testing.T) {
		e2eutil.MustKubectl(t, parent, subscription("shared", teamADeployment, teamBSecret, allDeployments), "create", "-f", "-")
	})
	t.Run("edit in team-a may not rewrite the admin's Subscription and keep its feeds", func(t *testing.T) {
		// Send the admin's feeds to another cluster: the whole new spec is
		// checked with alice's rights.
		_, errOut, err := e2eutil.Kubectl(t, alice, "", "patch", "subscription", "shared", "-n", "team-a", "--type=merge",
			"-p", `{"spec": {"subscribers": [{"clusterAffinity": {"matchLabels": {"owner": "alice"}}}]}}`)
		if err == nil {
			t.Fatal("alice re-aimed the admin's Subscription")
		}
		for _, want := range []string{`admission webhook "subscriptions.apps.clusternet.io" denied the request`, subscriptionRule,
			`spec.feeds[1]: Forbidden: user "` + aliceName + `" may not get secrets.shadow "db" in namespace "team-b"`,
			`spec.feeds[2]: Forbidden: user "` + aliceName + `" may not list deployments.shadow cluster-wide`} {
			if !strings.Contains(errOut, want) {
				t.Errorf("the refusal does not say %q:\n%s", want, errOut)
			}
		}
		got := e2eutil.MustKubectl(t, parent, "", "get", "subscription", "shared", "-n", "team-a", "-o", "jsonpath={.spec.subscribers[0].clusterAffinity.matchLabels}")
		if got != `{"team":"a"}` {
			t.Errorf("subscribers are now %s, want the admin's {\"team\":\"a\"}", got)
		}
	})
	t.Run("a change that leaves the spec as it was is not checked", func(t *testing.T) {
		// What the hub's finalizer handling relies on while no hub answers:
		// the webhook is not called for it (deploy/hub/webhook.yaml's
		// matchConditions), so alice's label goes through.
		if out, errOut, err := e2eutil.Kubectl(t, alice, "", "label", "subscription", "shared", "-n", "team-a", "reviewed=yes"); err != nil {
			t.Fatalf("labelling refused: %v\n%s%s", err, out, errOut)
		}
	})
}
