package deployer

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// Reasons a ManifestStatus gives when an object is not applied.
const (
	reasonNotApplied = "not applied yet"
	reasonMissing    = "not found in the child"
	// reasonDeletedKept marks an object deleted by hand whose drift
	// correction is disabled: it is not re-created while the Description's
	// generation stays the same.
	reasonDeletedKept = "deleted in the child by hand; not re-created because it has annotation " +
		appsv1alpha1.AnnotationDriftCorrection + "=" + DriftCorrectionDisabled
	reasonNotOurs  = "the child's object is labelled for another Description; not applied"
	reasonOutdated = "the child holds another version than the Description's"
	reasonPrune    = "no longer in the Description: deleted from the child once the Description deploys"
	reasonDeleting = "being deleted in the child"
)

// ManifestStatusOf is the status of desired o given its copy in the child
// (nil when there is none). The object is applied when the child's copy
// carries the Description's labels and the hash of this version; a
// workload is available when its controller reports the rollout complete,
// anything else as soon as it is applied.
func ManifestStatusOf(o Object, live *unstructured.Unstructured, descNamespace, descName string) appsv1alpha1.ManifestStatus {
	ms := appsv1alpha1.ManifestStatus{Feed: o.Ref().Feed()}
	switch {
	case live == nil:
		ms.Reason = reasonMissing
		return ms
	case !OwnedBy(live, descNamespace, descName):
		ms.Reason = reasonNotOurs
		return ms
	case live.GetAnnotations()[AnnotationAppliedHash] != o.Hash:
		ms.Reason = reasonOutdated
		return ms
	case live.GetDeletionTimestamp() != nil:
		ms.Reason = reasonDeleting
		return ms
	}
	ms.FeedStatus = WorkloadStatus(live)
	return ms
}

// WorkloadStatus is how far a live object's rollout is: replicas of
// Deployments, StatefulSets, DaemonSets and ReplicaSets, completion of
// Jobs; any other kind is available as it is. Applied is set.
func WorkloadStatus(live *unstructured.Unstructured) appsv1alpha1.FeedStatus {
	fs := appsv1alpha1.FeedStatus{Applied: true}
	gvk := live.GroupVersionKind()
	var err error
	switch {
	case gvk.Group == "apps" && gvk.Kind == "Deployment":
		err = fromUnstructured(live, deploymentStatus, &fs)
	case gvk.Group == "apps" && gvk.Kind == "StatefulSet":
		err = fromUnstructured(live, statefulSetStatus, &fs)
	case gvk.Group == "apps" && gvk.Kind == "DaemonSet":
		err = fromUnstructured(live, daemonSetStatus, &fs)
	case gvk.Group == "apps" && gvk.Kind == "ReplicaSet":
		err = fromUnstructured(live, replicaSetStatus, &fs)
	case gvk.Group == "batch" && gvk.Kind == "Job":
		err = fromUnstructured(live, jobStatus, &fs)
	default:
		fs.Available = true
	}
	if err != nil {
		fs.Available = false
		fs.Reason = fmt.Sprintf("cannot read its status: %v", err)
	}
	return fs
}

func fromUnstructured[T any](live *unstructured.Unstructured, f func(*T, *appsv1alpha1.FeedStatus), fs *appsv1alpha1.FeedStatus) error {
	var typed T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(live.Object, &typed); err != nil {
		return err
	}
	f(&typed, fs)
	return nil
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// observed is the reason when the controller has not seen the latest spec yet.
func observed(observedGeneration, generation int64, fs *appsv1alpha1.FeedStatus) bool {
	if observedGeneration < generation {
		fs.Reason = fmt.Sprintf("waiting for its controller to observe generation %d (observed %d)", generation, observedGeneration)
		return false
	}
	return true
}

// deploymentStatus: complete as `kubectl rollout status` sees it: every
// replica updated, no old ones left, all available.
func deploymentStatus(d *appsv1.Deployment, fs *appsv1alpha1.FeedStatus) {
	want := replicasOf(d.Spec.Replicas)
	fs.Replicas, fs.ReadyReplicas, fs.AvailableReplicas = d.Status.Replicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas
	if !observed(d.Status.ObservedGeneration, d.Generation, fs) {
		return
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			fs.Reason = fmt.Sprintf("rollout exceeded its progress deadline: %s", c.Message)
			return
		}
	}
	switch {
	case d.Status.UpdatedReplicas < want:
		fs.Reason = fmt.Sprintf("%d of %d replicas updated", d.Status.UpdatedReplicas, want)
	case d.Status.Replicas > d.Status.UpdatedReplicas:
		fs.Reason = fmt.Sprintf("%d old replicas pending termination", d.Status.Replicas-d.Status.UpdatedReplicas)
	case d.Status.AvailableReplicas < d.Status.UpdatedReplicas:
		fs.Reason = fmt.Sprintf("%d of %d updated replicas available", d.Status.AvailableReplicas, d.Status.UpdatedReplicas)
	default:
		fs.Available = true
	}
}

func statefulSetStatus(s *appsv1.StatefulSet, fs *appsv1alpha1.FeedStatus) {
	want := replicasOf(s.Spec.Replicas)
	fs.Replicas, fs.ReadyReplicas, fs.AvailableReplicas = s.Status.Replicas, s.Status.ReadyReplicas, s.Status.AvailableReplicas
	if !observed(s.Status.ObservedGeneration, s.Generation, fs) {
		return
	}
	partitioned := s.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType &&
		s.Spec.UpdateStrategy.RollingUpdate != nil && s.Spec.UpdateStrategy.RollingUpdate.Partition != nil &&
		*s.Spec.UpdateStrategy.RollingUpdate.Partition > 0
	switch {
	case s.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType && !partitioned &&
		s.Status.UpdateRevision != "" && s.Status.CurrentRevision != s.Status.UpdateRevision:
		fs.Reason = fmt.Sprintf("%d of %d replicas updated to revision %s", s.Status.UpdatedReplicas, want, s.Status.UpdateRevision)
	case s.Status.ReadyReplicas < want:
		fs.Reason = fmt.Sprintf("%d of %d replicas ready", s.Status.ReadyReplicas, want)
	case s.Status.AvailableReplicas < want:
		fs.Reason = fmt.Sprintf("%d of %d replicas available", s.Status.AvailableReplicas, want)
	default:
		fs.Available = true
	}
}

func daemonSetStatus(d *appsv1.DaemonSet, fs *appsv1alpha1.FeedStatus) {
	want := d.Status.DesiredNumberScheduled
	fs.Replicas, fs.ReadyReplicas, fs.AvailableReplicas = want, d.Status.NumberReady, d.Status.NumberAvailable
	if !observed(d.Status.ObservedGeneration, d.Generation, fs) {
		return
	}
	switch {
	case d.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType && d.Status.UpdatedNumberScheduled < want:
		fs.Reason = fmt.Sprintf("%d of %d scheduled pods updated", d.Status.UpdatedNumberScheduled, want)
	case d.Status.NumberAvailable < want:
		fs.Reason = fmt.Sprintf("%d of %d scheduled pods available", d.Status.NumberAvailable, want)
	default:
		fs.Available = true
	}
}

func replicaSetStatus(r *appsv1.ReplicaSet, fs *appsv1alpha1.FeedStatus) {
	want := replicasOf(r.Spec.Replicas)
	fs.Replicas, fs.ReadyReplicas, fs.AvailableReplicas = r.Status.Replicas, r.Status.ReadyReplicas, r.Status.AvailableReplicas
	if !observed(r.Status.ObservedGeneration, r.Generation, fs) {
		return
	}
	if r.Status.AvailableReplicas < want {
		fs.Reason = fmt.Sprintf("%d of %d replicas available", r.Status.AvailableReplicas, want)
		return
	}
	fs.Available = true
}

// jobStatus: a Job is available once complete. Replicas is its
// parallelism, ReadyReplicas its ready pods, AvailableReplicas its
// succeeded pods.
func jobStatus(j *batchv1.Job, fs *appsv1alpha1.FeedStatus) {
	fs.Replicas = replicasOf(j.Spec.Parallelism)
	if j.Status.Ready != nil {
		fs.ReadyReplicas = *j.Status.Ready
	}
	fs.AvailableReplicas = j.Status.Succeeded
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			fs.Available = true
			return
		case batchv1.JobFailed:
			fs.Reason = fmt.Sprintf("failed: %s: %s", c.Reason, c.Message)
			return
		}
	}
	completions := replicasOf(j.Spec.Completions)
	fs.Reason = fmt.Sprintf("%d of %d completions succeeded", j.Status.Succeeded, completions)
}
