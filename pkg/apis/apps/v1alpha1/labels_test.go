package v1alpha1

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestManifestName(t *testing.T) {
	long := strings.Repeat("a.b-", 70) + "z"
	for _, tc := range []struct {
		name                        string
		group, kind, namespace, obj string
		wantPrefix                  string
	}{
		{"namespaced core", "", "Service", "foo", "my-nginx-svc", "service-foo-my-nginx-svc-"},
		{"cluster-scoped", "", "Namespace", "", "foo", "namespace-foo-"},
		{"dotted name", "apps", "Deployment", "foo", "web.v2", "deployment-foo-web.v2-"},
		{"too long", "example.com", "Widget", "ns", long, "widget-ns-a.b-a.b"},
		{"RBAC name", "rbac.authorization.k8s.io", "ClusterRole", "", "system:aggregate-to-Admin", "clusterrole-system-aggregate-to-admin-"},
		{"path-segment name", "rbac.authorization.k8s.io", "Role", "ns", "a..b@c", "role-ns-a--b-c-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ManifestName(tc.group, tc.kind, tc.namespace, tc.obj)
			if !strings.HasPrefix(got, tc.wantPrefix) {
				t.Errorf("ManifestName = %q, want prefix %q", got, tc.wantPrefix)
			}
			// 80 bits of hash: a name nobody can collide with on purpose.
			if i := strings.LastIndex(got, "-"); len(got)-i-1 != 20 {
				t.Errorf("ManifestName = %q ends in %d characters of hash, want 20", got, len(got)-i-1)
			}
			if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
				t.Errorf("ManifestName = %q is not a valid object name: %v", got, errs)
			}
		})
	}
	// Tuples that join to the same text stay apart.
	if a, b := ManifestName("", "Secret", "a-b", "c"), ManifestName("", "Secret", "a", "b-c"); a == b {
		t.Errorf("two different objects share Manifest name %q", a)
	}
	if a, b := ManifestName("apps", "Deployment", "x", "y"), ManifestName("extensions", "Deployment", "x", "y"); a == b {
		t.Errorf("two groups share Manifest name %q", a)
	}
}
