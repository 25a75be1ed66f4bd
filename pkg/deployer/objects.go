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
//     longer lists are deleted (pruned), but only those Clusternet created
//     (annotation apps.clusternet.io/created-by) and no other Description of
//     the cluster still lists: what existed before is only released;
//   - status.phase, status.reason and one status.manifestStatuses entry per
//     object, kept current by watching the objects in the child;
//   - hand edits and deletions in the child are reported and reverted,
//     unless the object carries apps.clusternet.io/drift-correction=disabled;
//   - a deleted Description's objects are removed from the child, by the same
//     rules as pruning, before its finalizer is removed.
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

// AnnotationCreatedBy on an object in a child names the Description
// ("<namespace>/<name>") whose apply created it: the object did not exist
// before Clusternet applied it. It is set only by the apply that creates the
// object and carried over by every later apply (whichever Description makes
// it). Only objects carrying it are ever deleted; an object that existed
// before (a namespace a team already had, "default") is updated as the
// Description says, but on prune or cleanup only released: Clusternet's
// labels, annotations and field ownership are removed, the object stays.
const AnnotationCreatedBy = "apps.clusternet.io/created-by"

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
	// Creator is the Description ("<namespace>/<name>") o comes from: the
	// value of AnnotationCreatedBy when applying o creates it.
	Creator string
}

// Marked is o as it is applied over live, its copy in the child (nil when
// there is none): with the AnnotationCreatedBy live carries, or with o's
// Creator when there is no live copy (the apply creates the object). Every
// Description applies with the same field manager, so an apply without the
// annotation would remove it: each apply carries it over, and an object
// that existed before Clusternet never gets it.
func (o Object) Marked(live *unstructured.Unstructured) Object {
	creator := o.Creator
	if live != nil {
		creator = live.GetAnnotations()[AnnotationCreatedBy]
	}
	if creator == "" {
		return o
	}
	o.Obj = o.Obj.DeepCopy()
	annotations := o.Obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationCreatedBy] = creator
	o.Obj.SetAnnotations(annotations)
	return o
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
		delete(annotations, AnnotationCreatedBy) // decided per apply (Object.Marked)
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
		o := Object{Index: i, Obj: u, Hash: hash, Creator: desc.Namespace + "/" + desc.Name}
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

// PruneSet is what to remove from the child: objects the Description's
// status lists (it applied them) that are no longer among objs. What
// becomes of each is DecideRemoval's.
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

// Removal is what becomes of an object in a child when a Description stops
// listing it: it was pruned from the Description, or the Description is
// deleted.
type Removal int

// The removals.
const (
	// RemoveNothing: the child has no copy, or its copy is not Clusternet's
	// for this cluster (no Description label of the cluster's dedicated
	// namespace: a user took it over, or it was released already).
	RemoveNothing Removal = iota
	// RemoveKeep: another Description of the cluster still lists it: it is
	// left as it is, for that Description.
	RemoveKeep
	// RemoveRelease: Clusternet did not create it (no AnnotationCreatedBy:
	// it existed before), or it is one of the child's system namespaces: it
	// stays, without Clusternet's labels, annotations and field ownership.
	RemoveRelease
	// RemoveWait: Clusternet created it and it is being deleted already.
	RemoveWait
	// RemoveDelete: Clusternet created it and nothing else lists it.
	RemoveDelete
)

// systemNamespaces are the child's own: never deleted, even if Clusternet
// re-created one (the apiserver refuses to delete the first three anyway).
var systemNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true}

// DecideRemoval decides about live, the child's copy of r (nil when there
// is none), when a Description of the dedicated namespace descNamespace
// stops listing r. sharedWith are the other Descriptions of that cluster,
// not being deleted, that still list r.
//
// The rule: Clusternet deletes only what it created, and only once no
// Description of the cluster lists it any more; a Namespace it created goes
// with whatever is in it. Anything that existed before is released.
func DecideRemoval(r Ref, live *unstructured.Unstructured, descNamespace string, sharedWith []string) Removal {
	if live == nil {
		return RemoveNothing
	}
	if l := live.GetLabels(); l[appsv1alpha1.LabelDescriptionName] == "" || l[appsv1alpha1.LabelDescriptionNamespace] != descNamespace {
		return RemoveNothing
	}
	switch {
	case len(sharedWith) > 0:
		return RemoveKeep
	case live.GetAnnotations()[AnnotationCreatedBy] == "", isNamespace(r.GroupKind()) && systemNamespaces[r.Name]:
		return RemoveRelease
	case live.GetDeletionTimestamp() != nil:
		return RemoveWait
	}
	return RemoveDelete
}

// ListedKeys are the keys of the objects d lists: in spec.raw (what it is
// about to apply) and in status.manifestStatuses (what it applied, or
// started to). Namespaced defaults namespaces as Objects does; entries that
// do not decode are left out (Objects reports them).
func ListedKeys(d *appsv1alpha1.Description, namespaced func(schema.GroupVersionKind) (bool, error)) map[string]bool {
	out := map[string]bool{}
	for _, ms := range d.Status.ManifestStatuses {
		if ms.Name != "" {
			out[RefOf(ms).Key()] = true
		}
	}
	for _, raw := range d.Spec.Raw {
		var m struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(raw.Raw, &m); err != nil || m.Kind == "" || m.Metadata.Name == "" {
			continue
		}
		r := Ref{APIVersion: m.APIVersion, Kind: m.Kind, Namespace: m.Metadata.Namespace, Name: m.Metadata.Name}
		if namespacedKind, err := namespaced(schema.FromAPIVersionAndKind(m.APIVersion, m.Kind)); err == nil {
			switch {
			case !namespacedKind:
				r.Namespace = ""
			case r.Namespace == "":
				r.Namespace = "default"
			}
		}
		out[r.Key()] = true
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
