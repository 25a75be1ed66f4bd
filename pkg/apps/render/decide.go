package render

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/types"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// Annotations the hub keeps on each Description it renders, so that a
// restarted hub knows what the Description was made from.
const (
	// AnnotationInputsHash is InputsHash of the inputs it was rendered from.
	AnnotationInputsHash = "apps.clusternet.io/inputs-hash"
	// AnnotationOverrides lists the overrides (kind, namespace, name, uid,
	// generation) rendered into it, as JSON.
	AnnotationOverrides = "apps.clusternet.io/overrides"
)

// Recorded reads what an existing Description says it was rendered from.
func Recorded(desc *appsv1alpha1.Description) (inputsHash string, refs []Ref) {
	if desc == nil {
		return "", nil
	}
	inputsHash = desc.Annotations[AnnotationInputsHash]
	if raw := desc.Annotations[AnnotationOverrides]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &refs); err != nil {
			return "", nil // unreadable: render anew
		}
	}
	return inputsHash, refs
}

// EncodeRefs is the AnnotationOverrides value for refs.
func EncodeRefs(refs []Ref) string {
	if refs == nil {
		refs = []Ref{}
	}
	b, _ := json.Marshal(refs)
	return string(b)
}

// Decision says whether a Description is rendered anew now.
type Decision struct {
	Regenerate bool
	// Why names what changed, for logs and events.
	Why string
	// Pending are ApplyLater overrides, new or edited, that wait for the
	// next change of the Subscription or its feeds.
	Pending []Ref
}

// Decide applies the override policies to one Description:
//   - no Description yet, or its inputs (Subscription, templates, charts,
//     replicas) changed: render now, with every override in force, ApplyLater included;
//   - an override it was rendered with no longer applies (deleted, or its
//     feed or clusterAffinity no longer select it): render now, so deleting
//     an override always rolls it back;
//   - an ApplyNow override is new or edited (its generation moved): render now;
//   - an ApplyLater override is new or edited: wait (listed in Pending).
//
// applicable are the overrides that select something in the Description now.
func Decide(exists bool, recordedHash string, recorded []Ref, inputsHash string, applicable []Override) Decision {
	if !exists {
		return Decision{Regenerate: true, Why: "the Description does not exist yet"}
	}
	if recordedHash != inputsHash {
		return Decision{Regenerate: true, Why: "the Subscription, its feeds or the divided replicas changed"}
	}
	current := make(map[types.UID]Override, len(applicable))
	for _, ov := range applicable {
		current[ov.UID] = ov
	}
	was := make(map[types.UID]Ref, len(recorded))
	for _, r := range recorded {
		was[r.UID] = r
		if _, ok := current[r.UID]; !ok {
			return Decision{Regenerate: true, Why: fmt.Sprintf("%s no longer applies: rolling it back", r)}
		}
	}
	var d Decision
	for _, ov := range applicable {
		old, ok := was[ov.UID]
		if ok && old.Generation == ov.Generation {
			continue
		}
		if ov.Policy == appsv1alpha1.ApplyLater {
			d.Pending = append(d.Pending, ov.Ref)
			continue
		}
		if !d.Regenerate {
			d.Regenerate = true
			if ok {
				d.Why = fmt.Sprintf("%s (ApplyNow) changed", ov.Ref)
			} else {
				d.Why = fmt.Sprintf("%s (ApplyNow) is new", ov.Ref)
			}
		}
	}
	if d.Regenerate {
		d.Pending = nil // they ride along
	}
	return d
}
