package deployer

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// DriftAction is what to do about an object of a deployed Description that
// changed in the child.
type DriftAction int

// The drift actions.
const (
	// NoDrift: the child's copy is as the Description wants it (fields the
	// Description does not set may differ: they are not ours).
	NoDrift DriftAction = iota
	// Correct: re-apply the Description's version.
	Correct
	// Report: the object opts out of correction; only report the change.
	Report
)

// Drift is a decision about one object.
type Drift struct {
	Action DriftAction
	// Deleted says the object is gone from the child.
	Deleted bool
	// Fields are the paths that differ (at most maxDriftFields).
	Fields []string
}

const maxDriftFields = 5

// DecideDrift decides about desired given its copy in the child (nil when
// deleted) and wouldBe, what a server-side dry-run apply of desired over
// live returns. The object drifted when applying would change it; it is
// corrected unless the Description's version or the child's copy carries
// apps.clusternet.io/drift-correction=disabled.
func DecideDrift(desired Object, live, wouldBe *unstructured.Unstructured) Drift {
	disabled := desired.DriftCorrectionDisabled() || driftCorrectionDisabled(live)
	action := Correct
	if disabled {
		action = Report
	}
	if live == nil {
		return Drift{Action: action, Deleted: true}
	}
	fields := Differences(wouldBe, live)
	if len(fields) == 0 {
		return Drift{Action: NoDrift}
	}
	return Drift{Action: action, Fields: fields}
}

// bookkeeping is what the apiserver changes on every write; it is never drift.
func withoutBookkeeping(u *unstructured.Unstructured, dropStatus bool) map[string]any {
	if u == nil {
		return nil
	}
	c := u.DeepCopy().Object
	for _, f := range []string{"resourceVersion", "managedFields", "generation", "creationTimestamp", "uid", "selfLink"} {
		unstructured.RemoveNestedField(c, "metadata", f)
	}
	if dropStatus {
		delete(c, "status")
	}
	return c
}

// Differences lists the paths (like "spec.replicas") where a and b differ,
// ignoring status and the apiserver's bookkeeping, sorted, at most
// maxDriftFields of them (the last entry says how many more).
func Differences(a, b *unstructured.Unstructured) []string {
	var out []string
	diffPaths("", withoutBookkeeping(a, true), withoutBookkeeping(b, true), &out)
	sort.Strings(out)
	if len(out) > maxDriftFields {
		more := len(out) - maxDriftFields + 1
		out = append(out[:maxDriftFields-1], fmt.Sprintf("and %d more", more))
	}
	return out
}

func diffPaths(path string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			diffPaths(p, am[k], bm[k], out)
		}
		return
	}
	if !equality.Semantic.DeepEqual(a, b) {
		if path == "" {
			path = "(object)"
		}
		*out = append(*out, path)
	}
}

// StatusOnlyChange says whether old and new differ only in status or the
// apiserver's bookkeeping: a controller reporting progress, not drift.
func StatusOnlyChange(old, new *unstructured.Unstructured) bool {
	return equality.Semantic.DeepEqual(withoutBookkeeping(old, true), withoutBookkeeping(new, true))
}

// LastWriter is the field manager (and its operation) that wrote live last,
// leaving out status writers; ours says it is FieldManager's apply, and only
// when no other manager wrote in the same second (managedFields keep time
// to the second).
func LastWriter(live *unstructured.Unstructured) (manager string, ours bool) {
	var latest metav1.Time
	var writers []string
	var oursLatest bool
	for _, e := range live.GetManagedFields() {
		if e.Subresource == "status" || e.Time == nil {
			continue
		}
		isOurs := e.Manager == FieldManager && e.Operation == metav1.ManagedFieldsOperationApply
		switch {
		case e.Time.After(latest.Time):
			latest, writers, oursLatest = *e.Time, nil, isOurs
		case e.Time.Equal(&latest):
			oursLatest = oursLatest && isOurs
		default:
			continue
		}
		if !isOurs {
			writers = append(writers, describeWriter(e))
		}
	}
	slices.Sort(writers)
	return strings.Join(slices.Compact(writers), ", "), oursLatest && len(writers) == 0
}

func describeWriter(e metav1.ManagedFieldsEntry) string {
	s := fmt.Sprintf("%q (%s", e.Manager, e.Operation)
	if e.Subresource != "" {
		s += " of " + e.Subresource
	}
	return s + ")"
}
