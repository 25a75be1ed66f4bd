package feeds

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// ReplicasPath is where workloads keep their replica count.
const ReplicasPath = "/spec/replicas"

// defaultsToOneReplica are the workload kinds whose spec.replicas defaults
// to 1 when the template leaves it out.
var defaultsToOneReplica = map[string]bool{
	"apps/Deployment": true, "apps/StatefulSet": true, "apps/ReplicaSet": true, "/ReplicationController": true,
}

// Replicas is a resolved feed's replica count and where it lives; ok is
// false for kinds without replicas. A template with a number at
// spec.replicas is a workload, whatever its kind (CRDs included).
func Replicas(r Resolved) (n int32, path string, ok bool) {
	if r.Template == nil {
		return 0, "", false
	}
	v, found, err := unstructured.NestedFieldNoCopy(r.Template.Object, "spec", "replicas")
	if err == nil && found {
		switch x := v.(type) {
		case int64:
			return int32(x), ReplicasPath, true
		case float64:
			return int32(x), ReplicasPath, true
		}
	}
	if !found && defaultsToOneReplica[Group(r.Feed.APIVersion)+"/"+r.Feed.Kind] {
		return 1, ReplicasPath, true
	}
	return 0, "", false
}

// Requests sums what one replica of a workload template requests, from its
// pod template's containers (init containers run one at a time: the
// largest of them counts when it exceeds the sum).
func Requests(tmpl *unstructured.Unstructured) corev1.ResourceList {
	if tmpl == nil {
		return nil
	}
	sum := corev1.ResourceList{}
	read := func(field string) []corev1.ResourceList {
		cs, _, _ := unstructured.NestedSlice(tmpl.Object, "spec", "template", "spec", field)
		var out []corev1.ResourceList
		for _, c := range cs {
			cm, ok := c.(map[string]any)
			if !ok {
				continue
			}
			rl := corev1.ResourceList{}
			raw, _, _ := unstructured.NestedMap(cm, "resources", "requests")
			for name, v := range raw {
				switch x := v.(type) {
				case string:
					if q, err := resource.ParseQuantity(x); err == nil {
						rl[corev1.ResourceName(name)] = q
					}
				case int64:
					rl[corev1.ResourceName(name)] = *resource.NewQuantity(x, resource.DecimalSI)
				case float64:
					rl[corev1.ResourceName(name)] = *resource.NewMilliQuantity(int64(x*1000), resource.DecimalSI)
				}
			}
			out = append(out, rl)
		}
		return out
	}
	for _, rl := range read("containers") {
		for name, q := range rl {
			cur := sum[name]
			cur.Add(q)
			sum[name] = cur
		}
	}
	for _, rl := range read("initContainers") {
		for name, q := range rl {
			if cur, ok := sum[name]; !ok || q.Cmp(cur) > 0 {
				sum[name] = q
			}
		}
	}
	if len(sum) == 0 {
		return nil
	}
	return sum
}

// Inventory is the FeedInventory spec of resolved feeds: every feed in
// order, with its replicas and their path for workloads.
func Inventory(rs []Resolved) appsv1alpha1.FeedInventorySpec {
	spec := appsv1alpha1.FeedInventorySpec{Feeds: make([]appsv1alpha1.FeedOrder, 0, len(rs))}
	for _, r := range rs {
		fo := appsv1alpha1.FeedOrder{Feed: r.Feed}
		if n, path, ok := Replicas(r); ok {
			fo.DesiredReplicas, fo.ReplicaJSONPath = ptr.To(n), path
		}
		spec.Feeds = append(spec.Feeds, fo)
	}
	return spec
}
