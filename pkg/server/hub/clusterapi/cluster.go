package clusterapi

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
)

// ClusterResource is the cluster-api Cluster as the hub reads it: the
// module's current API version (sigs.k8s.io/cluster-api/api/core/v1beta2).
var ClusterResource = clusterv1.GroupVersion.WithResource("clusters")

// clusterKind is Cluster's kind, for event references.
var clusterKind = clusterv1.GroupVersion.WithKind("Cluster")

// cluster-api's kubeconfig Secret convention (sigs.k8s.io/cluster-api
// util/secret, which this module does not import): Secret
// <cluster>-kubeconfig in the Cluster's own namespace, the kubeconfig under
// key "value".
const (
	kubeconfigSecretSuffix = "-kubeconfig"
	kubeconfigKey          = "value"
)

// KubeconfigSecretName is the name of cluster's kubeconfig Secret, in
// cluster's namespace: never another namespace, so that nobody can point a
// Cluster at a kubeconfig they could not read themselves.
func KubeconfigSecretName(cluster string) string { return cluster + kubeconfigSecretSuffix }

// clusterOfSecret is the Cluster a kubeconfig Secret belongs to, by name;
// "" for any other Secret.
func clusterOfSecret(secret string) string {
	name, ok := strings.CutSuffix(secret, kubeconfigSecretSuffix)
	if !ok {
		return ""
	}
	return name
}

// controlPlaneInitialized says whether cluster is provisioned far enough to
// install into: its ControlPlaneInitialized condition is True. cluster-api's
// own add-on installer (ClusterResourceSet) and its providers wait on this
// condition; cluster-api documents status.phase ("Provisioned") as a summary
// for people that software must not decide by. The condition, once True,
// never goes back, and the control plane provider writes the kubeconfig
// Secret by then.
func controlPlaneInitialized(cluster *clusterv1.Cluster) bool {
	return meta.IsStatusConditionTrue(cluster.Status.Conditions, clusterv1.ClusterControlPlaneInitializedCondition)
}

// deleting says whether cluster is on its way out: cluster-api keeps a
// deleted Cluster (its finalizer) while it tears the cluster down, which
// leaves nothing for an agent to report.
func deleting(cluster *clusterv1.Cluster) bool { return cluster.DeletionTimestamp != nil }

// clusterFrom converts what the dynamic informer holds.
func clusterFrom(obj any) (*clusterv1.Cluster, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("a %T where a cluster-api Cluster was expected", obj)
	}
	c := &clusterv1.Cluster{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, c); err != nil {
		return nil, fmt.Errorf("cluster-api Cluster %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	c.SetGroupVersionKind(clusterKind)
	return c, nil
}

// kubeconfigOf reads the kubeconfig from cluster's kubeconfig Secret.
func kubeconfigOf(secret *corev1.Secret) ([]byte, error) {
	data := secret.Data[kubeconfigKey]
	if len(data) == 0 {
		return nil, fmt.Errorf("no key %q in Secret %s/%s: cluster-api keeps the kubeconfig there", kubeconfigKey, secret.Namespace, secret.Name)
	}
	return data, nil
}

// eventScheme knows the Cluster kind, so that events can refer to it.
var eventScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clusterv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()
