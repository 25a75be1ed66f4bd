package security

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/clusternet/clusternet/test/e2e/e2eutil"
	"github.com/clusternet/clusternet/test/testbed"
)

// shadowTokenUser is parent as ServiceAccount namespace/name, holding only
// the token `kubectl create token` hands out for it.
func shadowTokenUser(t *testing.T, parent *testbed.Cluster, namespace, name string) *testbed.Cluster {
	t.Helper()
	token := strings.TrimSpace(e2eutil.MustKubectl(t, parent, "", "create", "token", name, "-n", namespace, "--duration=1h"))
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

// shadowApply runs `kubectl clusternet apply -f <obj>` as c.
func shadowApply(t *testing.T, c *testbed.Cluster, obj string) (string, string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(file, []byte(obj), 0o600); err != nil {
		t.Fatal(err)
	}
	return e2eutil.Plugin(t, c, "apply", "-f", file)
}

const (
	// rbacEscalation is how the parent's RBAC refuses a binding to rights
	// its author does not hold.
	rbacEscalation = "is attempting to grant RBAC permissions not currently held"
	// podSecurityRestricted is how Pod Security refuses a privileged Pod in
	// a namespace enforcing the restricted level.
	podSecurityRestricted = `violates PodSecurity "restricted:latest"`

	bindingToClusterAdmin = `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: everything, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: alice, namespace: team-a}]
`
	bindingToEdit = `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: editors, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: ServiceAccount, name: alice, namespace: team-a}]
`
	restrictedPod = `apiVersion: v1
kind: Pod
metadata: {name: fine, namespace: team-a}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: c
      image: nginx
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
`
	ordinaryDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team-a, labels: {app: web}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
`
)

// privilegedPod is a privileged Pod template in namespace.
func privilegedPod(namespace string) string {
	return `apiVersion: v1
kind: Pod
metadata: {name: root, namespace: ` + namespace + `}
spec:
  containers: [{name: c, image: nginx, securityContext: {privileged: true}}]
`
}

// TestShadowValidatesTemplatesAsTheirAuthor plays a parent user who may
// edit namespace team-a (alice: the built-in ClusterRole edit there) and
// one who administers it (owner: ClusterRole admin there), with tokens from
// `kubectl create token`, writing templates through `kubectl clusternet
// apply` and the raw shadow API. Whatever they could not create in the
// parent themselves must be refused, with the parent's own rule in the
// message, and not stored; the parent's admin writing the same objects
// shows each refusal is about its author.
func TestShadowValidatesTemplatesAsTheirAuthor(t *testing.T) {
	tb := testbed.ForTest(t, 0)
	parent := tb.Parent
	e2eutil.SetUpParent(t, parent)

	e2eutil.MustKubectl(t, parent, `
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
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
metadata: {name: owner, namespace: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-edit, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: ServiceAccount, name: alice, namespace: team-a}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: owner-admin, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{kind: ServiceAccount, name: owner, namespace: team-a}]
`, "apply", "-f", "-")
	// The admin's Secret template in team-b, which alice must not read.
	e2eutil.CreateTemplate(t, parent, `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "team-b"}, "stringData": {"password": "team-b's"}}`)

	alice := shadowTokenUser(t, parent, "team-a", "alice")
	owner := shadowTokenUser(t, parent, "team-a", "owner")
	const aliceName, ownerName = "system:serviceaccount:team-a:alice", "system:serviceaccount:team-a:owner"

	// An ordinary Deployment template by alice is accepted (waiting for the
	// aggregated roles and the hub's authorization cache), with Pod
	// Security's warning for team-a passed through as a warning.
	var warned string
	e2eutil.WaitFor(t, 60*time.Second, "alice may write an ordinary Deployment template in team-a", func(context.Context) (bool, string) {
		out, errOut, err := shadowApply(t, alice, ordinaryDeployment)
		warned = errOut
		return err == nil, out + errOut
	})
	if !strings.Contains(warned, "Warning: would violate PodSecurity") {
		t.Errorf("applying the Deployment template: no Pod Security warning passed through: %q", warned)
	}
	if got := e2eutil.MustKubectl(t, parent, "", "get", "--raw", "/apis/shadow/v1alpha1/namespaces/team-a/deployments/web"); !strings.Contains(got, `"name":"web"`) {
		t.Errorf("alice's Deployment template is not stored: %s", got)
	}

	// storedTemplate reads a template as the parent's admin: "" if none.
	storedTemplate := func(t *testing.T, path string) string {
		t.Helper()
		out, errOut, err := e2eutil.Kubectl(t, parent, "", "get", "--raw", path)
		if err != nil {
			if strings.Contains(errOut, "NotFound") || strings.Contains(errOut, "not found") {
				return ""
			}
			t.Fatalf("reading %s as the admin: %v %s", path, err, errOut)
		}
		return out
	}
	refused := func(t *testing.T, as *testbed.Cluster, obj, templatePath string, wants ...string) {
		t.Helper()
		out, errOut, err := shadowApply(t, as, obj)
		if err == nil {
			t.Fatalf("accepted:\n%s%s", out, errOut)
		}
		for _, want := range wants {
			if !strings.Contains(errOut, want) {
				t.Errorf("the refusal does not say %q:\n%s", want, errOut)
			}
		}
		if got := storedTemplate(t, templatePath); got != "" {
			t.Errorf("the refused template was stored: %s", got)
		}
	}
	// refusedRaw POSTs obj (JSON) to collection as as, which skips the GET
	// kubectl apply sends first: the create itself must be refused.
	refusedRaw := func(t *testing.T, as *testbed.Cluster, obj, collection, templatePath string, wants ...string) {
		t.Helper()
		out, errOut, err := e2eutil.Kubectl(t, as, obj, "create", "--raw", collection, "-f", "-")
		if err == nil {
			t.Fatalf("accepted:\n%s%s", out, errOut)
		}
		for _, want := range wants {
			if !strings.Contains(errOut, want) {
				t.Errorf("the refusal does not say %q:\n%s", want, errOut)
			}
		}
		if got := storedTemplate(t, templatePath); got != "" {
			t.Errorf("the refused template was stored: %s", got)
		}
	}
	accepted := func(t *testing.T, as *testbed.Cluster, obj, templatePath string) {
		t.Helper()
		if out, errOut, err := shadowApply(t, as, obj); err != nil {
			t.Fatalf("refused: %v\n%s%s", err, out, errOut)
		}
		if storedTemplate(t, templatePath) == "" {
			t.Errorf("accepted, but %s is not stored", templatePath)
		}
	}

	const rolebindings = "/apis/shadow/v1alpha1/namespaces/team-a/rolebindings/"
	t.Run("a RoleBinding to cluster-admin by an editor: RBAC refuses", func(t *testing.T) {
		// edit holds no RoleBinding permission at all: kubectl apply's
		// first GET is refused, and so is a create.
		const realKind = "a template needs the permission its real object needs"
		refused(t, alice, bindingToClusterAdmin, rolebindings+"everything",
			realKind, `user "`+aliceName+`" cannot get rolebindings.rbac.authorization.k8s.io in namespace "team-a"`)
		refusedRaw(t, alice, yamlToJSON(t, bindingToClusterAdmin), "/apis/shadow/v1alpha1/namespaces/team-a/rolebindings", rolebindings+"everything",
			realKind, `user "`+aliceName+`" cannot create rolebindings.rbac.authorization.k8s.io in namespace "team-a"`)
	})
	t.Run("a RoleBinding to cluster-admin by the namespace's admin: RBAC's escalation check refuses", func(t *testing.T) {
		// admin may create RoleBindings, but only to what it holds: the
		// dry run must run as owner for RBAC to see that.
		refused(t, owner, bindingToClusterAdmin, rolebindings+"everything",
			`rolebindings.rbac.authorization.k8s.io "everything" is forbidden: user "`+ownerName+`"`, rbacEscalation)
		accepted(t, owner, bindingToEdit, rolebindings+"editors")
	})
	t.Run("a RoleBinding to cluster-admin by the parent's admin: accepted", func(t *testing.T) {
		accepted(t, parent, bindingToClusterAdmin, rolebindings+"everything")
	})

	t.Run("a privileged Pod in a restricted namespace: Pod Security refuses", func(t *testing.T) {
		refused(t, alice, privilegedPod("team-a"), "/apis/shadow/v1alpha1/namespaces/team-a/pods/root",
			`pods "root" is forbidden: `+podSecurityRestricted, "privileged")
		// The refusal is about the Pod, not about alice...
		accepted(t, alice, restrictedPod, "/apis/shadow/v1alpha1/namespaces/team-a/pods/fine")
		// ...and about team-a's policy: team-b enforces none.
		accepted(t, parent, privilegedPod("team-b"), "/apis/shadow/v1alpha1/namespaces/team-b/pods/root")
	})

	const teamBConfigMap = `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs", "namespace": "team-b"}, "data": {"k": "v"}}`
	t.Run("a template in another namespace: refused", func(t *testing.T) {
		refused(t, alice, teamBConfigMap, "/apis/shadow/v1alpha1/namespaces/team-b/configmaps/theirs",
			`User "`+aliceName+`" cannot get resource "configmaps" in API group "shadow" in the namespace "team-b"`)
		refusedRaw(t, alice, teamBConfigMap, "/apis/shadow/v1alpha1/namespaces/team-b/configmaps", "/apis/shadow/v1alpha1/namespaces/team-b/configmaps/theirs",
			`User "`+aliceName+`" cannot create resource "configmaps" in API group "shadow" in the namespace "team-b"`)
		accepted(t, parent, teamBConfigMap, "/apis/shadow/v1alpha1/namespaces/team-b/configmaps/theirs")
	})

	t.Run("another namespace's Secret template cannot be read or overwritten", func(t *testing.T) {
		const secret = "/apis/shadow/v1alpha1/namespaces/team-b/secrets/db"
		const overwrite = `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "team-b"}, "stringData": {"password": "alice's"}}`
		before := storedTemplate(t, secret)
		if !strings.Contains(before, `"db"`) {
			t.Fatalf("the admin cannot read the Secret template: %q", before)
		}
		for _, tc := range []struct {
			name   string
			plugin bool
			args   []string
			stdin  string
			want   string
		}{
			{"get", false, []string{"get", "--raw", secret}, "",
				`cannot get resource "secrets" in API group "shadow" in the namespace "team-b"`},
			{"list across namespaces", false, []string{"get", "--raw", "/apis/shadow/v1alpha1/secrets"}, "",
				`cannot list resource "secrets" in API group "shadow" at the cluster scope`},
			{"kubectl clusternet get", true, []string{"get", "secrets", "-n", "team-b"}, "",
				`cannot list resource "secrets" in API group "shadow" in the namespace "team-b"`},
			// kubectl patch reads the object first.
			{"kubectl clusternet patch", true, []string{"patch", "secret", "db", "-n", "team-b", "--type=merge", "-p", `{"stringData":{"password":"alice's"}}`}, "",
				`cannot get resource "secrets" in API group "shadow" in the namespace "team-b"`},
			{"replace", false, []string{"replace", "--raw", secret, "-f", "-"}, overwrite,
				`cannot update resource "secrets" in API group "shadow" in the namespace "team-b"`},
			{"kubectl clusternet delete", true, []string{"delete", "secret", "db", "-n", "team-b"}, "",
				`cannot delete resource "secrets" in API group "shadow" in the namespace "team-b"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var out, errOut string
				var err error
				if tc.plugin {
					out, errOut, err = e2eutil.Plugin(t, alice, tc.args...)
				} else {
					out, errOut, err = e2eutil.Kubectl(t, alice, tc.stdin, tc.args...)
				}
				if err == nil || !strings.Contains(errOut, tc.want) {
					t.Errorf("alice: %v\n%s%s\nwant a refusal saying %q", err, out, errOut, tc.want)
				}
				if strings.Contains(out+errOut, "team-b's") || strings.Contains(out+errOut, base64.StdEncoding.EncodeToString([]byte("team-b's"))) {
					t.Errorf("the Secret's data reached alice: %s%s", out, errOut)
				}
			})
		}
		// From her own namespace, selectors naming team-b find nothing.
		for _, query := range []string{
			"labelSelector=apps.clusternet.io/config-namespace%3Dteam-b",
			"fieldSelector=metadata.namespace%3Dteam-b",
			"watch=1&timeoutSeconds=1&labelSelector=apps.clusternet.io/config-namespace%3Dteam-b",
		} {
			for _, resource := range []string{"secrets", "configmaps"} {
				t.Run(resource+" selecting "+query, func(t *testing.T) {
					out, errOut, err := e2eutil.Kubectl(t, alice, "", "get", "--raw", "/apis/shadow/v1alpha1/namespaces/team-a/"+resource+"?"+query)
					if err != nil {
						t.Fatalf("%v %s", err, errOut)
					}
					if strings.Contains(out, "team-b") {
						t.Errorf("alice's selection in team-a shows team-b's templates: %s", out)
					}
				})
			}
		}
		if _, errOut, err := e2eutil.Kubectl(t, alice, "", "get", "manifests.apps.clusternet.io", "-n", "clusternet-reserved"); err == nil ||
			!strings.Contains(errOut, `cannot list resource "manifests" in API group "apps.clusternet.io" in the namespace "clusternet-reserved"`) {
			t.Errorf("alice reading the Manifests that hold templates: %v %s", err, errOut)
		}
		if after := storedTemplate(t, secret); after != before {
			t.Errorf("the Secret template changed:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// yamlToJSON is obj as JSON, for raw requests.
func yamlToJSON(t *testing.T, obj string) string {
	t.Helper()
	b, err := yaml.YAMLToJSON([]byte(obj))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
