package deployer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

func toUnstructured(t *testing.T, o runtime.Object, apiVersion, kind string) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	return u
}

func TestWorkloadStatus(t *testing.T) {
	gen := metav1.ObjectMeta{Name: "w", Namespace: "foo", Generation: 2}
	deployment := func(s appsv1.DeploymentStatus, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
		s.Conditions = conds
		return &appsv1.Deployment{ObjectMeta: gen, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3)}, Status: s}
	}
	statefulSet := func(s appsv1.StatefulSetStatus) *appsv1.StatefulSet {
		return &appsv1.StatefulSet{ObjectMeta: gen, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2),
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}}, Status: s}
	}
	daemonSet := func(s appsv1.DaemonSetStatus) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: gen, Spec: appsv1.DaemonSetSpec{
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType}}, Status: s}
	}
	replicaSet := func(s appsv1.ReplicaSetStatus) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: gen, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](3)}, Status: s}
	}
	job := func(s batchv1.JobStatus) *batchv1.Job {
		return &batchv1.Job{ObjectMeta: gen, Spec: batchv1.JobSpec{Parallelism: ptr.To[int32](2), Completions: ptr.To[int32](4)}, Status: s}
	}
	tests := []struct {
		name       string
		obj        runtime.Object
		apiVersion string
		kind       string
		want       appsv1alpha1.FeedStatus
	}{
		{"Deployment complete", deployment(appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}),
			"apps/v1", "Deployment", appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}},
		{"Deployment not observed", deployment(appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}),
			"apps/v1", "Deployment", appsv1alpha1.FeedStatus{Applied: true, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3,
				Reason: "waiting for its controller to observe generation 2 (observed 1)"}},
		{"Deployment rolling", deployment(appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3}),
			"apps/v1", "Deployment", appsv1alpha1.FeedStatus{Applied: true, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, Reason: "1 of 3 replicas updated"}},
		{"Deployment old replicas", deployment(appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 4, UpdatedReplicas: 3, ReadyReplicas: 4, AvailableReplicas: 4}),
			"apps/v1", "Deployment", appsv1alpha1.FeedStatus{Applied: true, Replicas: 4, ReadyReplicas: 4, AvailableReplicas: 4, Reason: "1 old replicas pending termination"}},
		{"Deployment not available", deployment(appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 1, AvailableReplicas: 1}),
			"apps/v1", "Deployment", appsv1alpha1.FeedStatus{Applied: true, Replicas: 3, ReadyReplicas: 1, AvailableReplicas: 1, Reason: "1 of 3 updated replicas available"}},
		{"Deployment past deadline", deployment(appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3},
			appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: "ReplicaSet \"w-1\" has timed out progressing."}),
			"apps/v1", "Deployment", appsv1alpha1.FeedStatus{Applied: true, Replicas: 3,
				Reason: "rollout exceeded its progress deadline: ReplicaSet \"w-1\" has timed out progressing."}},
		{"StatefulSet complete", statefulSet(appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, CurrentRevision: "r2", UpdateRevision: "r2"}),
			"apps/v1", "StatefulSet", appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}},
		{"StatefulSet updating", statefulSet(appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, UpdatedReplicas: 1, CurrentRevision: "r1", UpdateRevision: "r2"}),
			"apps/v1", "StatefulSet", appsv1alpha1.FeedStatus{Applied: true, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, Reason: "1 of 2 replicas updated to revision r2"}},
		{"StatefulSet not ready", statefulSet(appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 2, ReadyReplicas: 1, AvailableReplicas: 1, CurrentRevision: "r2", UpdateRevision: "r2"}),
			"apps/v1", "StatefulSet", appsv1alpha1.FeedStatus{Applied: true, Replicas: 2, ReadyReplicas: 1, AvailableReplicas: 1, Reason: "1 of 2 replicas ready"}},
		{"DaemonSet complete", daemonSet(appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 5, UpdatedNumberScheduled: 5, NumberReady: 5, NumberAvailable: 5}),
			"apps/v1", "DaemonSet", appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 5, ReadyReplicas: 5, AvailableReplicas: 5}},
		{"DaemonSet updating", daemonSet(appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 5, UpdatedNumberScheduled: 2, NumberReady: 5, NumberAvailable: 5}),
			"apps/v1", "DaemonSet", appsv1alpha1.FeedStatus{Applied: true, Replicas: 5, ReadyReplicas: 5, AvailableReplicas: 5, Reason: "2 of 5 scheduled pods updated"}},
		{"DaemonSet not available", daemonSet(appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 5, UpdatedNumberScheduled: 5, NumberReady: 4, NumberAvailable: 3}),
			"apps/v1", "DaemonSet", appsv1alpha1.FeedStatus{Applied: true, Replicas: 5, ReadyReplicas: 4, AvailableReplicas: 3, Reason: "3 of 5 scheduled pods available"}},
		{"ReplicaSet complete", replicaSet(appsv1.ReplicaSetStatus{ObservedGeneration: 2, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}),
			"apps/v1", "ReplicaSet", appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}},
		{"ReplicaSet short", replicaSet(appsv1.ReplicaSetStatus{ObservedGeneration: 2, Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 2}),
			"apps/v1", "ReplicaSet", appsv1alpha1.FeedStatus{Applied: true, Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, Reason: "2 of 3 replicas available"}},
		{"Job complete", job(batchv1.JobStatus{Succeeded: 4, Ready: ptr.To[int32](0),
			Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}),
			"batch/v1", "Job", appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 2, AvailableReplicas: 4}},
		{"Job running", job(batchv1.JobStatus{Succeeded: 1, Ready: ptr.To[int32](2)}),
			"batch/v1", "Job", appsv1alpha1.FeedStatus{Applied: true, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 1, Reason: "1 of 4 completions succeeded"}},
		{"Job failed", job(batchv1.JobStatus{Failed: 6,
			Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"}}}),
			"batch/v1", "Job", appsv1alpha1.FeedStatus{Applied: true, Replicas: 2, Reason: "failed: BackoffLimitExceeded: Job has reached the specified backoff limit"}},
		{"Service is available once applied", &corev1.Service{ObjectMeta: gen}, "v1", "Service", appsv1alpha1.FeedStatus{Applied: true, Available: true}},
		{"a custom kind named Deployment is not a workload", &corev1.ConfigMap{ObjectMeta: gen}, "example.com/v1", "Deployment", appsv1alpha1.FeedStatus{Applied: true, Available: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := WorkloadStatus(toUnstructured(t, tc.obj, tc.apiVersion, tc.kind))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("WorkloadStatus (-want +got):\n%s", diff)
			}
		})
	}
}

func TestManifestStatusOf(t *testing.T) {
	d := description("web", deploymentObj("foo", "web", 3))
	o := mustObjects(t, d)[0]
	feed := appsv1alpha1.Feed{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "foo", Name: "web"}
	ready := func(u *unstructured.Unstructured) *unstructured.Unstructured {
		u.SetGeneration(1)
		_ = unstructured.SetNestedMap(u.Object, map[string]any{"observedGeneration": int64(1), "replicas": int64(3),
			"updatedReplicas": int64(3), "readyReplicas": int64(3), "availableReplicas": int64(3)}, "status")
		return u
	}
	otherDesc := ready(o.Obj.DeepCopy())
	otherDesc.SetLabels(map[string]string{appsv1alpha1.LabelDescriptionName: "other", appsv1alpha1.LabelDescriptionNamespace: d.Namespace})
	terminating := ready(o.Obj.DeepCopy())
	now := metav1.Now()
	terminating.SetDeletionTimestamp(&now)
	outdated := ready(o.Obj.DeepCopy())
	outdated.SetAnnotations(map[string]string{AnnotationAppliedHash: "0123456789abcdef"})
	tests := []struct {
		name string
		live *unstructured.Unstructured
		want appsv1alpha1.FeedStatus
	}{
		{"missing", nil, appsv1alpha1.FeedStatus{Reason: reasonMissing}},
		{"another Description's", otherDesc, appsv1alpha1.FeedStatus{Reason: reasonNotOurs}},
		{"older version", outdated, appsv1alpha1.FeedStatus{Reason: reasonOutdated}},
		{"being deleted", terminating, appsv1alpha1.FeedStatus{Reason: reasonDeleting}},
		{"applied and available", ready(o.Obj.DeepCopy()), appsv1alpha1.FeedStatus{Applied: true, Available: true, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := appsv1alpha1.ManifestStatus{Feed: feed, FeedStatus: tc.want}
			if diff := cmp.Diff(want, ManifestStatusOf(o, tc.live, d.Namespace, d.Name)); diff != "" {
				t.Errorf("ManifestStatusOf (-want +got):\n%s", diff)
			}
		})
	}
}
