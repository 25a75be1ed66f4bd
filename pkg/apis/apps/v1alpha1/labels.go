package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// ReservedNamespace holds the templates that the shadow API stores as
// Manifests. Nothing in it runs: it only feeds Subscriptions.
const ReservedNamespace = "clusternet-reserved"

// Labels on a Manifest saying which template it holds. Group is empty for
// the core group. The template's own name and namespace are in the template;
// the Manifest's name (ManifestName) is derived from all four.
const (
	LabelConfigGroup     = "apps.clusternet.io/config-group"
	LabelConfigVersion   = "apps.clusternet.io/config-version"
	LabelConfigKind      = "apps.clusternet.io/config-kind"
	LabelConfigNamespace = "apps.clusternet.io/config-namespace"
)

// Labels the hub sets on each Base, Description and HelmRelease it makes, and
// that deployers set on every object they create in a child, so what a
// Subscription made can always be found and cleaned up.
const (
	LabelSubscriptionName      = "apps.clusternet.io/subs.name"
	LabelSubscriptionNamespace = "apps.clusternet.io/subs.namespace"
	LabelSubscriptionUID       = "apps.clusternet.io/subs.uid"
	// LabelDescriptionName and LabelDescriptionNamespace are set on objects in
	// a child: the Description (in the cluster's dedicated namespace) that put them there.
	LabelDescriptionName      = "apps.clusternet.io/description.name"
	LabelDescriptionNamespace = "apps.clusternet.io/description.namespace"
	// LabelClusterID on a Base or Description is the cluster it is bound to.
	LabelClusterID = "clusters.clusternet.io/cluster-id"
)

// Annotations.
const (
	// AnnotationDriftCorrection set to "disabled" on an object (template or
	// live object in a child) lets hand edits in the child stand: drift is
	// still reported, but not reverted.
	AnnotationDriftCorrection = "apps.clusternet.io/drift-correction"

	// AnnotationFeedProtection is set by the hub on a template's Manifest or
	// a HelmChart whose deletion FeedInUseProtection holds: which
	// Subscriptions hold it and how to release it (upstream Clusternet's
	// name). The shadow API shows it on the template.
	AnnotationFeedProtection = "apps.clusternet.io/feed-protection"
)

// FeedProtectionFinalizer is what the hub (feature gate FeedInUseProtection)
// keeps on a template's Manifest or a HelmChart while a Subscription of its
// namespace uses it as a feed, so that deleting it waits until none does
// (upstream Clusternet's name).
const FeedProtectionFinalizer = "apps.clusternet.io/feed-protection"

// Finalizer is what the hub and agents put on Subscriptions, Bases,
// Descriptions and HelmReleases: removed only once what the object made is
// gone from every child.
const Finalizer = "apps.clusternet.io/finalizer"

// Suffixes of the two Descriptions made from one Base, as upstream Clusternet names them
// (app-demo-generic, app-demo-helm).
const (
	DescriptionGenericSuffix = "-generic"
	DescriptionHelmSuffix    = "-helm"
)

var dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// ManifestName is the name of the Manifest holding the template of kind
// (in group; "" for core) named name in namespace (empty when cluster-scoped).
// It is readable and unique: the hash of all four parts tells apart tuples
// that read alike once joined, and keeps the name within 253 characters.
// The version is not part of it: one object has one template whatever
// version it was written in.
func ManifestName(group, kind, namespace, name string) string {
	sum := sha256.Sum256([]byte(group + "\x00" + kind + "\x00" + namespace + "\x00" + name))
	// 80 bits: finding another tuple with the same name is out of reach, so
	// nobody can take the name of a template they do not own before it is
	// written (readers still check what a Manifest holds).
	suffix := "-" + hex.EncodeToString(sum[:])[:20]
	parts := []string{strings.ToLower(kind)}
	if namespace != "" {
		parts = append(parts, namespace)
	}
	parts = append(parts, strings.ToLower(name))
	readable := strings.Join(parts, "-")
	if !dns1123Subdomain.MatchString(readable) {
		// Some kinds allow names no object name can hold (RBAC's
		// "system:aggregate-to-admin"): such characters become dashes; the
		// hash still tells the objects apart.
		readable = strings.Trim(strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return '-'
		}, readable), "-")
	}
	const maxLen = 253
	if len(readable) > maxLen-len(suffix) {
		readable = strings.TrimRight(readable[:maxLen-len(suffix)], "-.")
	}
	return readable + suffix
}
