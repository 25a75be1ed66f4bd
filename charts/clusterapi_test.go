package charts

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// TestTemplateHubClusterAPI: the hub chart's cluster-api discovery values
// become the hub's --cluster-api-* flags, and, when the parent is the
// management cluster, RBAC for exactly the discovered namespaces.
func TestTemplateHubClusterAPI(t *testing.T) {
	const url = "https://parent.example.com:6443"
	tests := []struct {
		name     string
		values   map[string]any
		wantArgs []string
		// wantRBAC are the objects of templates/clusterapi-rbac.yaml.
		wantRBAC []string
		// wantNamespaces are where the Roles are; empty for cluster-wide.
		wantNamespaces []string
		wantMount      bool
	}{
		{name: "off by default", values: nil},
		{name: "two namespaces of the parent",
			values:   with(nil, "clusterAPI.namespaces=[capi-a, capi-b]", "clusterAPI.parentURL="+url),
			wantArgs: []string{"--cluster-api-namespaces=capi-a,capi-b", "--cluster-api-parent-url=" + url},
			wantRBAC: []string{"ClusterRole/clusternet-hub-cluster-api-identity", "ClusterRoleBinding/clusternet-hub-cluster-api-identity",
				"Role/clusternet-hub-cluster-api", "RoleBinding/clusternet-hub-cluster-api"},
			wantNamespaces: []string{"capi-a", "capi-b"}},
		{name: "every namespace of the parent",
			values:   with(nil, "clusterAPI.namespaces=['*']", "clusterAPI.parentURL="+url),
			wantArgs: []string{"--cluster-api-namespaces=*", "--cluster-api-parent-url=" + url},
			wantRBAC: []string{"ClusterRole/clusternet-hub-cluster-api", "ClusterRole/clusternet-hub-cluster-api-identity",
				"ClusterRoleBinding/clusternet-hub-cluster-api", "ClusterRoleBinding/clusternet-hub-cluster-api-identity"}},
		{name: "a separate management cluster",
			values: with(nil, "clusterAPI.namespaces=[capi-a]", "clusterAPI.parentURL="+url, "clusterAPI.kubeconfigSecret=capi-management"),
			wantArgs: []string{"--cluster-api-namespaces=capi-a", "--cluster-api-parent-url=" + url,
				"--cluster-api-kubeconfig=/etc/clusternet-hub/cluster-api/kubeconfig"},
			wantMount: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := Load(Hub)
			if err != nil {
				t.Fatal(err)
			}
			rendered, err := Render(ch, Options{Values: tc.values})
			if err != nil {
				t.Fatal(err)
			}
			var rbac []string
			var namespaces []string
			if doc, err := rendered.Template("clusterapi-rbac.yaml"); err == nil {
				for _, r := range rbacObjects(t, doc) {
					rbac = append(rbac, r.Kind+"/"+r.Metadata.Name)
					if r.Kind == "Role" {
						namespaces = append(namespaces, r.Metadata.Namespace)
						if !slices.ContainsFunc(r.Rules, func(p rbacv1.PolicyRule) bool {
							return slices.Equal(p.Resources, []string{"secrets"}) && slices.Equal(p.Verbs, []string{"get", "list", "watch"})
						}) {
							t.Errorf("Role in %s does not let the hub read Secrets there: %v", r.Metadata.Namespace, r.Rules)
						}
					}
				}
			}
			slices.Sort(rbac)
			rbac = slices.Compact(rbac)
			slices.Sort(namespaces)
			if diff := cmp.Diff(tc.wantRBAC, rbac); diff != "" {
				t.Errorf("clusterapi-rbac.yaml objects (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantNamespaces, namespaces); diff != "" {
				t.Errorf("Role namespaces (-want +got):\n%s", diff)
			}
			objects := mustTemplate(t, Hub, tc.values)
			d := decode[appsv1.Deployment](t, objects, "Deployment/clusternet-hub")
			c := d.Spec.Template.Spec.Containers[0]
			var got []string
			for _, a := range c.Args {
				if strings.HasPrefix(a, "--cluster-api-") {
					got = append(got, a)
				}
			}
			if diff := cmp.Diff(tc.wantArgs, got); diff != "" {
				t.Errorf("--cluster-api-* args (-want +got):\n%s", diff)
			}
			mounted := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "cluster-api-kubeconfig" })
			if mounted != tc.wantMount {
				t.Errorf("management kubeconfig mounted: %v, want %v", mounted, tc.wantMount)
			}
		})
	}
}

// rbacDoc is what the test reads of an RBAC object.
type rbacDoc struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Rules []rbacv1.PolicyRule `json:"rules"`
}

// rbacObjects are the objects of a template's output.
func rbacObjects(t *testing.T, doc string) []rbacDoc {
	t.Helper()
	var out []rbacDoc
	for i, part := range strings.Split(doc, "\n---") {
		var obj rbacDoc
		if err := yaml.Unmarshal([]byte(part), &obj); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, part)
		}
		if obj.Kind != "" {
			out = append(out, obj)
		}
	}
	return out
}

func TestLintRefusesClusterAPI(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"namespaces without a parent URL", with(nil, "clusterAPI.namespaces=[capi]"),
			"clusterAPI.parentURL is required with clusterAPI.namespaces"},
		{"a kubeconfig without namespaces", with(nil, "clusterAPI.kubeconfigSecret=capi-management"),
			"clusterAPI.parentURL and clusterAPI.kubeconfigSecret need clusterAPI.namespaces"},
		{"star among names", with(nil, "clusterAPI.namespaces=[a, '*']", "clusterAPI.parentURL=https://p:6443"),
			`clusterAPI.namespaces: "*" means every namespace and stands alone`},
		{"http parent", with(nil, "clusterAPI.namespaces=[a]", "clusterAPI.parentURL=http://p:6443"),
			"at '/clusterAPI/parentURL': 'http://p:6443' does not match pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := Load(Hub)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := templateChart(t, ch, tc.values); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
