package deployer

import (
	"encoding/json"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// obj builds an object map: apiVersion, kind, namespace, name, then
// optional top-level fields.
func obj(apiVersion, kind, namespace, name string, fields ...map[string]any) map[string]any {
	meta := map[string]any{"name": name}
	if namespace != "" {
		meta["namespace"] = namespace
	}
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta}
	for _, f := range fields {
		for k, v := range f {
			o[k] = v
		}
	}
	return o
}

func namespaceObj(name string) map[string]any { return obj("v1", "Namespace", "", name) }

func deploymentObj(namespace, name string, replicas int64) map[string]any {
	return obj("apps/v1", "Deployment", namespace, name, map[string]any{"spec": map[string]any{
		"replicas": replicas,
		"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
		"template": map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": name}},
			"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": "nginx"}}},
		},
	}})
}

func serviceObj(namespace, name string) map[string]any {
	return obj("v1", "Service", namespace, name, map[string]any{"spec": map[string]any{
		"ports": []any{map[string]any{"port": int64(80)}},
	}})
}

func crdObj(group, kind, plural string) map[string]any {
	return obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", plural+"."+group, map[string]any{"spec": map[string]any{
		"group": group, "scope": "Namespaced",
		"names":    map[string]any{"kind": kind, "plural": plural},
		"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true}},
	}})
}

// description builds a Generic Description in namespace clusternet-abcde
// made by Subscription default/app-demo, holding objs.
func description(name string, objs ...map[string]any) *appsv1alpha1.Description {
	d := &appsv1alpha1.Description{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "clusternet-abcde", UID: "desc-uid", Generation: 1,
			Labels: map[string]string{
				appsv1alpha1.LabelSubscriptionName:      "app-demo",
				appsv1alpha1.LabelSubscriptionNamespace: "default",
				appsv1alpha1.LabelSubscriptionUID:       "sub-uid",
				appsv1alpha1.LabelClusterID:             "cluster-1",
			},
			Finalizers: []string{appsv1alpha1.Finalizer},
		},
		Spec: appsv1alpha1.DescriptionSpec{Deployer: appsv1alpha1.DescriptionGenericDeployer},
	}
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			panic(err)
		}
		d.Spec.Raw = append(d.Spec.Raw, runtime.RawExtension{Raw: b})
	}
	return d
}

// scopes says which kinds are namespaced, as a child's RESTMapper would.
func scopes(gvk schema.GroupVersionKind) (bool, error) {
	switch gvk.Kind {
	case "Namespace", "CustomResourceDefinition", "ClusterRole":
		return false, nil
	case "Deployment", "Service", "ConfigMap", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
		return true, nil
	}
	return false, fmt.Errorf("no kind %q", gvk.Kind)
}

func mustObjects(t *testing.T, d *appsv1alpha1.Description) []Object {
	t.Helper()
	objs, err := Objects(d, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func unstr(o map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: runtime.DeepCopyJSON(o)}
}

func keysOf(objs []Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Ref().String()
	}
	return out
}
