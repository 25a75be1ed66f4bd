package registration

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8sfake "k8s.io/client-go/kubernetes/fake"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
)

// TestDeregisterDeletesOnlyTheHubs: the namespace, ClusterRole and
// ClusterRoleBinding of a cluster go when the hub made them; ones of the
// same cluster id or name that someone else made stay.
func TestDeregisterDeletesOnlyTheHubs(t *testing.T) {
	const id = "0b3c"
	name := clusterv1beta1.NamePrefix + id
	hubs := func(extra map[string]string) metav1.ObjectMeta {
		l := map[string]string{clusterv1beta1.LabelClusterID: id, clusterv1beta1.LabelCreatedBy: CreatedByHub}
		for k, v := range extra {
			l[k] = v
		}
		return metav1.ObjectMeta{Labels: l}
	}
	others := metav1.ObjectMeta{Labels: map[string]string{clusterv1beta1.LabelClusterID: id, clusterv1beta1.LabelCreatedBy: "someone"}}
	named := func(m metav1.ObjectMeta, n string) metav1.ObjectMeta { m.Name = n; return m }

	for _, tc := range []struct {
		name        string
		objects     []runtime.Object
		wantDeleted bool
		wantLeft    []string
	}{
		{name: "the hub's", wantDeleted: true, objects: []runtime.Object{
			&corev1.Namespace{ObjectMeta: named(hubs(nil), "clusternet-abcde")},
			&rbacv1.ClusterRole{ObjectMeta: named(hubs(nil), name)},
			&rbacv1.ClusterRoleBinding{ObjectMeta: named(hubs(nil), name)},
		}},
		{name: "someone else's", objects: []runtime.Object{
			&corev1.Namespace{ObjectMeta: named(others, "team-a")},
			&rbacv1.ClusterRole{ObjectMeta: named(others, name)},
			&rbacv1.ClusterRoleBinding{ObjectMeta: named(metav1.ObjectMeta{}, name)},
		}, wantLeft: []string{"namespace team-a", "clusterrole " + name, "clusterrolebinding " + name}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			kube := k8sfake.NewClientset(tc.objects...)
			deleted, err := Deregister(ctx, kube, clusternetfake.NewSimpleClientset(), id)
			if err != nil {
				t.Fatal(err)
			}
			if deleted != tc.wantDeleted {
				t.Errorf("deleted = %v, want %v", deleted, tc.wantDeleted)
			}
			var left []string
			nss, _ := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			for _, ns := range nss.Items {
				left = append(left, "namespace "+ns.Name)
			}
			crs, _ := kube.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
			for _, r := range crs.Items {
				left = append(left, "clusterrole "+r.Name)
			}
			crbs, _ := kube.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
			for _, b := range crbs.Items {
				left = append(left, "clusterrolebinding "+b.Name)
			}
			if diff := cmp.Diff(tc.wantLeft, left); diff != "" {
				t.Errorf("left in the parent (-want +got):\n%s", diff)
			}
		})
	}
}
