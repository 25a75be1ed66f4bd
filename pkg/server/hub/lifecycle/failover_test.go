package lifecycle

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
	clusternetfake "github.com/clusternet/clusternet/pkg/generated/clientset/versioned/fake"
	"github.com/clusternet/clusternet/pkg/generated/informers/externalversions"
	clusterinformers "github.com/clusternet/clusternet/pkg/generated/informers/externalversions/clusters/v1beta1"
)

var (
	failoverStart = time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)
	hubTaint      = corev1.Taint{Key: clusterv1beta1.TaintClusterUnschedulable, Value: ReasonHeartbeatMissed, Effect: corev1.TaintEffectNoSchedule}
	adminTaint    = corev1.Taint{Key: clusterv1beta1.TaintClusterUnschedulable, Value: "maintenance", Effect: corev1.TaintEffectNoSchedule}
	otherTaint    = corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
)

const testGrace = 10 * time.Second

// failoverCluster is a ManagedCluster whose Ready condition is status,
// with taints. Its lastTransitionTime is the agent's word, a day before
// failoverStart: the hub counts from its own records, so it never matters.
func failoverCluster(status metav1.ConditionStatus, taints ...corev1.Taint) *clusterv1beta1.ManagedCluster {
	m := &clusterv1beta1.ManagedCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "clusternet-abcde"},
		Spec:       clusterv1beta1.ManagedClusterSpec{Taints: taints},
		Status: clusterv1beta1.ManagedClusterStatus{Conditions: []metav1.Condition{{Type: clusterv1beta1.ClusterReady, Status: status,
			Reason: ReasonHeartbeatMissed, LastTransitionTime: metav1.NewTime(failoverStart.Add(-24 * time.Hour))}}},
	}
	if status == metav1.ConditionTrue {
		m.Status.Conditions[0].Reason = "ClusterReady"
	}
	return m
}

// at is failoverStart+d as the hub writes it in its annotations.
func at(d time.Duration) string { return failoverStart.Add(d).Format(time.RFC3339) }

// annotated is m with annotations kv (key, value, ...).
func annotated(m *clusterv1beta1.ManagedCluster, kv ...string) *clusterv1beta1.ManagedCluster {
	m.Annotations = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Annotations[kv[i]] = kv[i+1]
	}
	return m
}

// failoverHarness runs Failover.sync against a fake clientset on a fake
// clock, feeding the informer cache what was last written, as the watch
// would.
type failoverHarness struct {
	t        *testing.T
	cs       *clusternetfake.Clientset
	informer clusterinformers.ManagedClusterInformer
	clk      *clocktesting.FakePassiveClock
	f        *Failover
}

func newFailoverHarness(t *testing.T, mc *clusterv1beta1.ManagedCluster, grace time.Duration) *failoverHarness {
	t.Helper()
	h := &failoverHarness{t: t, cs: clusternetfake.NewClientset(mc), clk: clocktesting.NewFakePassiveClock(failoverStart)}
	h.informer = externalversions.NewSharedInformerFactory(h.cs, 0).Clusters().V1beta1().ManagedClusters()
	var err error
	if h.f, err = NewFailover(h.cs, h.informer, h.clk, grace); err != nil {
		t.Fatal(err)
	}
	return h
}

// get is the cluster as last written.
func (h *failoverHarness) get() *clusterv1beta1.ManagedCluster {
	h.t.Helper()
	m, err := h.cs.ClustersV1beta1().ManagedClusters("clusternet-abcde").Get(context.Background(), "edge", metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// report sets Ready to status at failoverStart+d, as the agent or the
// lifecycle controller would, and syncs then; it returns the recheck.
func (h *failoverHarness) report(d time.Duration, status metav1.ConditionStatus) time.Duration {
	h.t.Helper()
	m := h.get()
	m.Status.Conditions[0].Status = status
	if _, err := h.cs.ClustersV1beta1().ManagedClusters("clusternet-abcde").UpdateStatus(context.Background(), m, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	return h.syncAt(d)
}

// syncAt syncs at failoverStart+d with the cache as last written.
func (h *failoverHarness) syncAt(d time.Duration) time.Duration {
	h.t.Helper()
	h.clk.SetTime(failoverStart.Add(d))
	if err := h.informer.Informer().GetIndexer().Update(h.get()); err != nil {
		h.t.Fatal(err)
	}
	recheck, err := h.f.sync(context.Background(), "clusternet-abcde/edge")
	if err != nil {
		h.t.Fatal(err)
	}
	return recheck
}

func TestFailoverTaint(t *testing.T) {
	tests := []struct {
		name string
		mc   *clusterv1beta1.ManagedCluster
		// at is how long after failoverStart the check runs.
		at          time.Duration
		grace       time.Duration
		wantTaints  []corev1.Taint
		wantAnn     map[string]string
		wantRecheck time.Duration
	}{
		{name: "Unknown, first seen: the hub records when, and looks again when the grace period ends",
			mc: failoverCluster(metav1.ConditionUnknown), at: time.Second, grace: testGrace,
			wantAnn: map[string]string{AnnotationNotReadySince: at(time.Second)}, wantRecheck: testGrace},
		// The agent wrote Ready's lastTransitionTime a day back: the grace
		// period still counts from when the hub saw it.
		{name: "False, first seen, the agent's lastTransitionTime a day old: not tainted",
			mc: failoverCluster(metav1.ConditionFalse), at: 0, grace: testGrace,
			wantAnn: map[string]string{AnnotationNotReadySince: at(0)}, wantRecheck: testGrace},
		{name: "Unknown within the grace period: not yet",
			mc: annotated(failoverCluster(metav1.ConditionUnknown), AnnotationNotReadySince, at(0)), at: 4 * time.Second, grace: testGrace,
			wantAnn: map[string]string{AnnotationNotReadySince: at(0)}, wantRecheck: 6 * time.Second},
		{name: "Unknown past the grace period: tainted, the taint the hub's",
			mc: annotated(failoverCluster(metav1.ConditionUnknown, otherTaint), AnnotationNotReadySince, at(0)), at: testGrace, grace: testGrace,
			wantTaints: []corev1.Taint{otherTaint, hubTaint}, wantAnn: map[string]string{AnnotationNotReadySince: at(0), AnnotationFailoverTaint: at(testGrace)}},
		{name: "False (the agent reports its apiserver failing) counts too",
			mc: annotated(failoverCluster(metav1.ConditionFalse), AnnotationNotReadySince, at(0)), at: time.Minute, grace: testGrace,
			wantTaints: []corev1.Taint{hubTaint}, wantAnn: map[string]string{AnnotationNotReadySince: at(0), AnnotationFailoverTaint: at(time.Minute)}},
		{name: "Ready before the grace period ended: the record goes",
			mc: annotated(failoverCluster(metav1.ConditionTrue), AnnotationNotReadySince, at(0)), at: 4 * time.Second, grace: testGrace,
			wantAnn: map[string]string{}},
		{name: "Ready: nothing to do",
			mc: failoverCluster(metav1.ConditionTrue), at: time.Hour, grace: testGrace},
		{name: "never reported: no Ready condition, not tainted",
			mc: &clusterv1beta1.ManagedCluster{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "clusternet-abcde"}}, at: time.Hour, grace: testGrace},
		{name: "tainted, Ready again: the taint stays until Ready has lasted the grace period",
			mc: annotated(failoverCluster(metav1.ConditionTrue, otherTaint, hubTaint), AnnotationFailoverTaint, at(0), AnnotationNotReadySince, at(0)),
			at: time.Hour, grace: testGrace,
			wantTaints: []corev1.Taint{otherTaint, hubTaint},
			wantAnn:    map[string]string{AnnotationFailoverTaint: at(0), AnnotationNotReadySince: at(0), AnnotationReadySince: at(time.Hour)}, wantRecheck: testGrace},
		{name: "tainted, Ready for the grace period: the hub's taint and its records go, others stay",
			mc: annotated(failoverCluster(metav1.ConditionTrue, otherTaint, hubTaint), AnnotationFailoverTaint, at(0), AnnotationNotReadySince, at(0), AnnotationReadySince, at(time.Minute)),
			at: time.Minute + testGrace, grace: testGrace,
			wantTaints: []corev1.Taint{otherTaint}, wantAnn: map[string]string{}},
		{name: "an admin removed the hub's taint while the cluster is not Ready: it is back",
			mc: annotated(failoverCluster(metav1.ConditionUnknown), AnnotationFailoverTaint, at(0), AnnotationNotReadySince, at(0)), at: time.Hour, grace: testGrace,
			wantTaints: []corev1.Taint{hubTaint}, wantAnn: map[string]string{AnnotationNotReadySince: at(0), AnnotationFailoverTaint: at(time.Hour)}},
		{name: "Ready: an admin's taint of the same key stays",
			mc: failoverCluster(metav1.ConditionTrue, adminTaint), at: time.Hour, grace: testGrace,
			wantTaints: []corev1.Taint{adminTaint}},
		{name: "an admin's taint already there: the hub adds none beside it, and claims none",
			mc: failoverCluster(metav1.ConditionUnknown, adminTaint), at: time.Hour, grace: testGrace,
			wantTaints: []corev1.Taint{adminTaint}},
		{name: "gate off (no grace period): the hub's taint and records go though the cluster is still lost",
			mc: annotated(failoverCluster(metav1.ConditionUnknown, hubTaint), AnnotationFailoverTaint, at(0), AnnotationNotReadySince, at(0)), at: time.Hour,
			wantAnn: map[string]string{}},
		{name: "gate off: an admin's taint stays",
			mc: failoverCluster(metav1.ConditionUnknown, adminTaint), at: time.Hour,
			wantTaints: []corev1.Taint{adminTaint}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newFailoverHarness(t, tc.mc, tc.grace)
			if recheck := h.syncAt(tc.at); recheck != tc.wantRecheck {
				t.Errorf("recheck in %s, want %s", recheck, tc.wantRecheck)
			}
			got := h.get()
			if diff := cmp.Diff(tc.wantTaints, got.Spec.Taints); diff != "" {
				t.Errorf("taints (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantAnn, got.Annotations); diff != "" {
				t.Errorf("annotations (-want +got):\n%s", diff)
			}
		})
	}
}

// A cluster flapping faster than the grace period is never tainted: each
// time Ready turns True and back, the grace period starts again from when
// the hub saw it.
func TestFailoverFlapping(t *testing.T) {
	h := newFailoverHarness(t, failoverCluster(metav1.ConditionTrue), testGrace)
	// Down 8 s, up 1 s, down 8 s, ...: down 40 s of 45, never 10 s at once.
	for i := range 5 {
		down := time.Duration(i) * 9 * time.Second
		if recheck := h.report(down, metav1.ConditionUnknown); recheck != testGrace {
			t.Errorf("flap %d: recheck in %s, want the grace period", i, recheck)
		}
		if recheck := h.syncAt(down + 8*time.Second); recheck != 2*time.Second {
			t.Errorf("flap %d: recheck in %s, want 2s", i, recheck)
		}
		h.report(down+8*time.Second, metav1.ConditionTrue)
	}
	if got := h.get(); clusterv1beta1.HasFailoverTaint(got.Spec.Taints) || len(got.Annotations) != 0 {
		t.Errorf("taints %v, annotations %v: want none", got.Spec.Taints, got.Annotations)
	}
}

// Hysteresis: a tainted cluster that reports Ready True for 1 s and then
// Unknown again keeps its taint; it goes only once Ready has stayed True
// for the grace period, on the hub's clock.
func TestFailoverStabilisation(t *testing.T) {
	h := newFailoverHarness(t, failoverCluster(metav1.ConditionTrue), testGrace)
	h.report(0, metav1.ConditionUnknown)
	h.syncAt(testGrace)
	if !clusterv1beta1.HasFailoverTaint(h.get().Spec.Taints) {
		t.Fatalf("not tainted after the grace period: %v", h.get().Spec.Taints)
	}
	if recheck := h.report(time.Minute, metav1.ConditionTrue); recheck != testGrace {
		t.Errorf("Ready again: recheck in %s, want the grace period", recheck)
	}
	h.report(time.Minute+time.Second, metav1.ConditionUnknown)
	// Long after the first True report, and True again: it counts afresh.
	h.report(time.Minute+testGrace, metav1.ConditionTrue)
	h.syncAt(time.Minute + testGrace + testGrace/2)
	got := h.get()
	if !clusterv1beta1.HasFailoverTaint(got.Spec.Taints) {
		t.Fatalf("untainted after Ready True for 1 s, then Unknown, then True for half the grace period: annotations %v", got.Annotations)
	}
	if recheck := h.syncAt(time.Minute + 2*testGrace - time.Second); recheck != time.Second {
		t.Errorf("recheck in %s, want the 1s left", recheck)
	}
	h.syncAt(time.Minute + 2*testGrace)
	if got := h.get(); clusterv1beta1.HasFailoverTaint(got.Spec.Taints) || len(got.Annotations) != 0 {
		t.Errorf("Ready for the grace period: taints %v, annotations %v, want none", got.Spec.Taints, got.Annotations)
	}
}
