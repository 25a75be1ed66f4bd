// Package deployer applies Generic Descriptions into a child cluster. The hub
// uses it to push through a cluster's tunnel, the agent to pull with its own
// credentials; both get the same behaviour:
//
//   - every object is dry-run in the child (server-side apply) before any is
//     applied, so a Description with one bad object changes nothing;
//   - Namespaces, then CustomResourceDefinitions (waited for until
//     Established), then the rest in the Description's order, by server-side
//     apply with field manager "clusternet", forced;
//   - each object is labelled with the Subscription and the Description it
//     comes from, and annotated with the hash of what was applied;
//   - objects the Description listed before (status.manifestStatuses) and no
//     longer lists are deleted (pruned);
//   - status.phase, status.reason and one status.manifestStatuses entry per
//     object, kept current by watching the objects in the child;
//   - hand edits and deletions in the child are reported and reverted,
//     unless the object carries apps.clusternet.io/drift-correction=disabled;
//   - a deleted Description's objects are deleted from the child before its
//     finalizer is removed.
//
// It imports only Clusternet's API packages and client-go.
package deployer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// FieldManager is the server-side apply field manager of every object the
// deployers apply, whether the hub pushes or the agent pulls: one owner, so
// switching between Push and Pull hands objects over without conflicts.
const FieldManager = "clusternet"

// AnnotationAppliedHash on an object in a child is the hash of the object as
// the deployer last applied it (labels included). An object whose drift
// correction is disabled is re-applied only when this differs from the
// Description's version: hand edits stand until the Description changes.
const AnnotationAppliedHash = "apps.clusternet.io/applied-hash"

// DriftCorrectionDisabled is the value of
// appsv1alpha1.AnnotationDriftCorrection that opts an object out of drift correction.
const DriftCorrectionDisabled = "disabled"

// Ref identifies an object in a child, as a ManifestStatus names it.
type Ref struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
}

// GroupKind is r's group and kind.
func (r Ref) GroupKind() schema.GroupKind {
	return schema.FromAPIVersionAndKind(r.APIVersion, r.Kind).GroupKind()
}

// Key identifies r whatever version it is written in.
func (r Ref) Key() string {
	gk := r.GroupKind()
	return gk.Group + "/" + gk.Kind + "/" + r.Namespace + "/" + r.Name
}

// String is "Kind namespace/name" (or "Kind name" when cluster-scoped), as
// events and reasons name objects.
func (r Ref) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Feed is r as a ManifestStatus identity.
func (r Ref) Feed() appsv1alpha1.Feed {
	return appsv1alpha1.Feed{APIVersion: r.APIVersion, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

// RefOf is the identity of a ManifestStatus.
func RefOf(ms appsv1alpha1.ManifestStatus) Ref {
	return Ref{APIVersion: ms.APIVersion, Kind: ms.Kind, Namespace: ms.Namespace, Name: ms.Name}
}

// Object is one of a Description's objects, ready to apply: normalized,
// labelled and annotated with its hash.
type Object struct {
	// Index is its position in spec.raw.
	Index int
	Obj   *unstructured.Unstructured
	// Hash is the hash of Obj without the hash annotation.
	Hash string
}

// Ref is o's identity.
func (o Object) Ref() Ref {
	return Ref{APIVersion: o.Obj.GetAPIVersion(), Kind: o.Obj.GetKind(), Namespace: o.Obj.GetNamespace(), Name: o.Obj.GetName()}
}

// IsNamespace and IsCRD say whether o is one of the kinds applied first.
func (o Object) IsNamespace() bool { return isNamespace(o.Ref().GroupKind()) }

// IsCRD says whether o is a CustomResourceDefinition.
func (o Object) IsCRD() bool { return isCRD(o.Ref().GroupKind()) }

// DriftCorrectionDisabled says whether the Description's version of o opts out of drift correction.
func (o Object) DriftCorrectionDisabled() bool { return driftCorrectionDisabled(o.Obj) }

func isNamespace(gk schema.GroupKind) bool { return gk.Group == "" && gk.Kind == "Namespace" }

func isCRD(gk schema.GroupKind) bool {
	return gk.Group == "apiextensions.k8s.io" && gk.Kind == "CustomResourceDefinition"
}

func driftCorrectionDisabled(u *unstructured.Unstructured) bool {
	return u != nil && u.GetAnnotations()[appsv1alpha1.AnnotationDriftCorrection] == DriftCorrectionDisabled
}

// OwnedBy says whether live was applied for the Description namespace/name.
func OwnedBy(live *unstructured.Unstructured, namespace, name string) bool {
	l := live.GetLabels()
	return l[appsv1alpha1.LabelDescriptionName] == name && l[appsv1alpha1.LabelDescriptionNamespace] == namespace
}

// metadata the child owns: never sent, so an apply neither conflicts with
// the child's bookkeeping nor points at the parent's objects (owner
// references to parent UIDs would let the child's garbage collector delete it).
var droppedMetadata = []string{"resourceVersion", "uid", "creationTimestamp", "deletionTimestamp",
	"deletionGracePeriodSeconds", "generation", "managedFields", "selfLink", "ownerReferences"}

// Objects decodes desc's spec.raw into the objects to apply, in spec.raw's
// order. Namespaced must say whether a kind is namespaced (from the child's
// RESTMapper); it may return an error for kinds the child does not serve
// yet, in which case the object keeps the namespace it was written with.
// An entry that is not an object with apiVersion, kind and name is an error
// naming it.
func Objects(desc *appsv1alpha1.Description, namespaced func(schema.GroupVersionKind) (bool, error)) ([]Object, error) {
	objs := make([]Object, 0, len(desc.Spec.Raw))
	seen := map[string]int{}
	for i, raw := range desc.Spec.Raw {
		u := &unstructured.Unstructured{}
		// utiljson keeps integers int64, as unstructured helpers expect.
		if err := utiljson.Unmarshal(raw.Raw, &u.Object); err != nil || u.Object == nil {
			if err == nil {
				err = fmt.Errorf("it is null")
			}
			return nil, fmt.Errorf("spec.raw[%d] is not a JSON object: %w; the hub writes one object per entry", i, err)
		}
		gvk := u.GroupVersionKind()
		switch {
		case u.GetAPIVersion() == "" || gvk.Version == "":
			return nil, fmt.Errorf("spec.raw[%d] has no apiVersion: set apiVersion (for example \"v1\" or \"apps/v1\")", i)
		case gvk.Kind == "":
			return nil, fmt.Errorf("spec.raw[%d] (apiVersion %q) has no kind: set kind", i, u.GetAPIVersion())
		case u.GetName() == "":
			return nil, fmt.Errorf("spec.raw[%d] (%s) has no metadata.name: set metadata.name (generateName cannot be applied)", i, gvk.Kind)
		}
		if namespacedKind, err := namespaced(gvk); err == nil {
			switch {
			case !namespacedKind:
				u.SetNamespace("")
			case u.GetNamespace() == "":
				u.SetNamespace("default")
			}
		}
		for _, f := range droppedMetadata {
			unstructured.RemoveNestedField(u.Object, "metadata", f)
		}
		delete(u.Object, "status")
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		for _, k := range []string{appsv1alpha1.LabelSubscriptionName, appsv1alpha1.LabelSubscriptionNamespace} {
			if v, ok := desc.Labels[k]; ok {
				labels[k] = v
			}
		}
		labels[appsv1alpha1.LabelDescriptionName] = desc.Name
		labels[appsv1alpha1.LabelDescriptionNamespace] = desc.Namespace
		u.SetLabels(labels)
		annotations := u.GetAnnotations()
		delete(annotations, AnnotationAppliedHash)
		if len(annotations) == 0 {
			annotations = nil
		}
		u.SetAnnotations(annotations)
		hash, err := hashOf(u)
		if err != nil {
			return nil, fmt.Errorf("spec.raw[%d]: %w", i, err)
		}
		if hash != "" {
			if annotations == nil {
				annotations = map[string]string{}
			}
			annotations[AnnotationAppliedHash] = hash
			u.SetAnnotations(annotations)
		}
		o := Object{Index: i, Obj: u, Hash: hash}
		if j, dup := seen[o.Ref().Key()]; dup {
			return nil, fmt.Errorf("spec.raw[%d] and spec.raw[%d] are both %s: list each object once", j, i, o.Ref())
		}
		seen[o.Ref().Key()] = i
		objs = append(objs, o)
	}
	return objs, nil
}

func hashOf(u *unstructured.Unstructured) (string, error) {
	b, err := json.Marshal(u.Object) // maps marshal with sorted keys: stable
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16], nil
}

// ApplyOrder is the order objects are applied in: Namespaces, then
// CustomResourceDefinitions, then everything else, each group in the
// Description's order.
func ApplyOrder(objs []Object) []Object {
	rank := func(o Object) int {
		switch {
		case o.IsNamespace():
			return 0
		case o.IsCRD():
			return 1
		}
		return 2
	}
	out := slices.Clone(objs)
	slices.SortStableFunc(out, func(a, b Object) int { return rank(a) - rank(b) })
	return out
}

// DeleteOrder is the reverse: everything else (last applied first), then
// CustomResourceDefinitions, then Namespaces, so a namespace goes only once
// what the Description put in it is gone.
func DeleteOrder(refs []Ref) []Ref {
	rank := func(r Ref) int {
		switch gk := r.GroupKind(); {
		case isNamespace(gk):
			return 2
		case isCRD(gk):
			return 1
		}
		return 0
	}
	out := slices.Clone(refs)
	slices.Reverse(out)
	slices.SortStableFunc(out, func(a, b Ref) int { return rank(a) - rank(b) })
	return out
}

// PruneSet is what to delete from the child: objects the Description's
// status lists (it applied them) that are no longer among objs. The child's
// copy is deleted only if it still carries the Description's labels.
func PruneSet(previous []appsv1alpha1.ManifestStatus, objs []Object) []Ref {
	want := make(map[string]bool, len(objs))
	for _, o := range objs {
		want[o.Ref().Key()] = true
	}
	var out []Ref
	seen := map[string]bool{}
	for _, ms := range previous {
		r := RefOf(ms)
		if r.Name == "" || want[r.Key()] || seen[r.Key()] {
			continue
		}
		seen[r.Key()] = true
		out = append(out, r)
	}
	return out
}

// refs are the identities of objs.
func refs(objs []Object) []Ref {
	out := make([]Ref, len(objs))
	for i, o := range objs {
		out[i] = o.Ref()
	}
	return out
}

// crdDefines says whether the CustomResourceDefinitions among objs define gk.
func crdDefines(objs []Object, gk schema.GroupKind) bool {
	for _, o := range objs {
		if !o.IsCRD() {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Obj.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Obj.Object, "spec", "names", "kind")
		if strings.EqualFold(group, gk.Group) && kind == gk.Kind {
			return true
		}
	}
	return false
}
