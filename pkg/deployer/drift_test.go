package deployer

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

func TestDecideDrift(t *testing.T) {
	plain := mustObjects(t, description("d", deploymentObj("foo", "web", 3)))[0]
	optedOutTemplate := deploymentObj("foo", "web", 3)
	optedOutTemplate["metadata"].(map[string]any)["annotations"] = map[string]any{appsv1alpha1.AnnotationDriftCorrection: "disabled"}
	optedOut := mustObjects(t, description("d", optedOutTemplate))[0]

	// live is the child's copy: the template as applied plus what the
	// apiserver adds; wouldBe is what a dry-run apply of desired returns.
	live := func(replicas int64, annotations map[string]string) *unstructured.Unstructured {
		u := plain.Obj.DeepCopy()
		_ = unstructured.SetNestedField(u.Object, replicas, "spec", "replicas")
		_ = unstructured.SetNestedField(u.Object, "RollingUpdate", "spec", "strategy", "type") // defaulted
		u.SetResourceVersion("7")
		u.SetGeneration(2)
		_ = unstructured.SetNestedField(u.Object, int64(1), "status", "readyReplicas")
		a := u.GetAnnotations()
		for k, v := range annotations {
			a[k] = v
		}
		u.SetAnnotations(a)
		return u
	}
	wouldBe := func(l *unstructured.Unstructured, replicas int64) *unstructured.Unstructured {
		u := l.DeepCopy()
		_ = unstructured.SetNestedField(u.Object, replicas, "spec", "replicas")
		u.SetResourceVersion("8")
		u.SetGeneration(3)
		return u
	}
	handEdited := live(1, nil)
	untouched := live(3, nil)
	labelledByHand := live(3, map[string]string{"note": "hand"}) // a field we do not set
	liveOptOut := live(1, map[string]string{appsv1alpha1.AnnotationDriftCorrection: "disabled"})

	tests := []struct {
		name    string
		desired Object
		live    *unstructured.Unstructured
		wouldBe *unstructured.Unstructured
		want    Drift
	}{
		{"unchanged", plain, untouched, wouldBe(untouched, 3), Drift{Action: NoDrift}},
		{"a field the Description does not set", plain, labelledByHand, wouldBe(labelledByHand, 3), Drift{Action: NoDrift}},
		{"replicas edited", plain, handEdited, wouldBe(handEdited, 3), Drift{Action: Correct, Fields: []string{"spec.replicas"}}},
		{"deleted", plain, nil, nil, Drift{Action: Correct, Deleted: true}},
		{"edited, template opts out", optedOut, handEdited, wouldBe(handEdited, 3), Drift{Action: Report, Fields: []string{"spec.replicas"}}},
		{"edited, child's copy opts out", plain, liveOptOut, wouldBe(liveOptOut, 3), Drift{Action: Report, Fields: []string{"spec.replicas"}}},
		{"deleted, template opts out", optedOut, nil, nil, Drift{Action: Report, Deleted: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, DecideDrift(tc.desired, tc.live, tc.wouldBe)); diff != "" {
				t.Errorf("DecideDrift (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDifferencesCapped(t *testing.T) {
	a := unstr(obj("v1", "ConfigMap", "foo", "c", map[string]any{"data": map[string]any{"a": "1", "b": "1", "c": "1", "d": "1", "e": "1", "f": "1"}}))
	b := unstr(obj("v1", "ConfigMap", "foo", "c", map[string]any{"data": map[string]any{"a": "2", "b": "2", "c": "2", "d": "2", "e": "2", "f": "2"}}))
	want := []string{"data.a", "data.b", "data.c", "data.d", "and 2 more"}
	if diff := cmp.Diff(want, Differences(a, b)); diff != "" {
		t.Errorf("Differences (-want +got):\n%s", diff)
	}
}

func TestStatusOnlyChange(t *testing.T) {
	base := unstr(deploymentObj("foo", "web", 3))
	status := base.DeepCopy()
	_ = unstructured.SetNestedField(status.Object, int64(2), "status", "readyReplicas")
	status.SetResourceVersion("9")
	status.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Subresource: "status"}})
	spec := base.DeepCopy()
	_ = unstructured.SetNestedField(spec.Object, int64(1), "spec", "replicas")
	if !StatusOnlyChange(base, status) {
		t.Error("a status update is a status-only change")
	}
	if StatusOnlyChange(base, spec) {
		t.Error("a replicas change is not a status-only change")
	}
}

func TestLastWriter(t *testing.T) {
	at := func(s int) *metav1.Time { return &metav1.Time{Time: time.Date(2026, 1, 1, 0, 0, s, 0, time.UTC)} }
	ours := metav1.ManagedFieldsEntry{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply, Time: at(10)}
	entry := func(manager string, op metav1.ManagedFieldsOperationType, sub string, s int) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: sub, Time: at(s)}
	}
	tests := []struct {
		name     string
		entries  []metav1.ManagedFieldsEntry
		want     string
		wantOurs bool
	}{
		{"only ours", []metav1.ManagedFieldsEntry{ours}, "", true},
		{"status writer after us is ignored", []metav1.ManagedFieldsEntry{ours, entry("kube-controller-manager", "Update", "status", 20)}, "", true},
		{"hand edit after us", []metav1.ManagedFieldsEntry{ours, entry("kubectl-edit", "Update", "", 20)}, `"kubectl-edit" (Update)`, false},
		{"scale after us", []metav1.ManagedFieldsEntry{ours, entry("kubectl", "Update", "scale", 20)}, `"kubectl" (Update of scale)`, false},
		{"hand edit before our last apply", []metav1.ManagedFieldsEntry{entry("kubectl-edit", "Update", "", 5), ours}, "", true},
		{"same second is not ours", []metav1.ManagedFieldsEntry{ours, entry("kubectl-patch", "Update", "", 10)}, `"kubectl-patch" (Update)`, false},
		{"our manager updating is not our apply", []metav1.ManagedFieldsEntry{entry(FieldManager, "Update", "", 10)}, `"clusternet" (Update)`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := unstr(deploymentObj("foo", "web", 3))
			u.SetManagedFields(tc.entries)
			got, gotOurs := LastWriter(u)
			if got != tc.want || gotOurs != tc.wantOurs {
				t.Errorf("LastWriter = %q, %v; want %q, %v", got, gotOurs, tc.want, tc.wantOurs)
			}
		})
	}
}
