package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/clusternet/clusternet/pkg/registration"
)

// Upstream Clusternet's defaults for --label-aggregate-prefix and
// --label-aggregate-threshold.
const (
	DefaultLabelAggregatePrefix    = "node.clusternet.io/"
	DefaultLabelAggregateThreshold = 0.8
)

// AnnotationAggregatedNodeLabels lists, comma-separated and sorted, the keys
// of the ManagedCluster labels the agent added from its nodes' labels.
//
// The agent removes a label it aggregated once too few nodes carry it, but a
// label under the same prefix may also have been set by a parent user or at
// registration (--cluster-labels): the agent must never remove or overwrite
// those. Label values do not say who wrote them, and managedFields name a
// field manager, not why it wrote; so the agent records what it owns here,
// on the object, in the same patch as the labels themselves (one write: the
// list and the labels never disagree). A label present but not listed is
// someone else's and is left alone; a listed label is the agent's to change
// and remove. A user who wants to keep an aggregated label for good takes it
// over by removing its key from this annotation.
const AnnotationAggregatedNodeLabels = "clusters.clusternet.io/aggregated-node-labels"

// reservedLabelPrefixes are the label domains the hub refuses in a
// registration's labels (pkg/server/hub/approver): no more may an agent
// aggregate node labels into them.
var reservedLabelPrefixes = []string{"clusters.clusternet.io/", "clusternet.io/", "kubernetes.io/", "k8s.io/"}

// controlPlaneRoleLabels mark the nodes that do not count, as upstream
// Clusternet leaves them out: what a cluster offers workloads is what its
// worker nodes have.
var controlPlaneRoleLabels = []string{"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"}

// validateLabelAggregation checks --label-aggregate-prefix and
// --label-aggregate-threshold.
func validateLabelAggregation(prefixes []string, threshold float64) []error {
	var errs []error
	if !(threshold > 0 && threshold <= 1) { // NaN fails too
		errs = append(errs, fmt.Errorf("--label-aggregate-threshold %s: must be more than 0 and at most 1 (the share of worker nodes that must carry a label), e.g. %g",
			formatThreshold(threshold), float64(DefaultLabelAggregateThreshold)))
	}
	for _, p := range prefixes {
		if err := validateLabelPrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("--label-aggregate-prefix %q: %w", p, err))
		}
	}
	return errs
}

func formatThreshold(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprint(f)
	}
	return fmt.Sprintf("%g", f)
}

// validateLabelPrefix accepts the start of a label key that names its
// domain: "<DNS subdomain>/" and optionally the beginning of the name
// ("node.clusternet.io/gpu-"). A prefix without a domain would let the agent
// set unprefixed labels such as env, which the parent's users own.
func validateLabelPrefix(p string) error {
	domain, name, ok := strings.Cut(p, "/")
	if !ok || domain == "" {
		return errors.New("a prefix starts with a label domain and its slash, e.g. feature.node.kubernetes.io/ or node.clusternet.io/gpu-")
	}
	if msgs := validation.IsDNS1123Subdomain(domain); len(msgs) > 0 {
		return fmt.Errorf("domain %q: %s", domain, strings.Join(msgs, "; "))
	}
	if name != "" {
		// Any key under the prefix is the prefix and more name characters:
		// the shortest one must be a valid key.
		if msgs := validation.IsQualifiedName(p + "x"); len(msgs) > 0 {
			return fmt.Errorf("%q does not start a valid label name: %s", name, strings.Join(msgs, "; "))
		}
	}
	for _, r := range reservedLabelPrefixes {
		if strings.HasPrefix(p, r) {
			return fmt.Errorf("labels under %q are reserved for Clusternet and Kubernetes: pick a prefix of another domain, e.g. %s", r, DefaultLabelAggregatePrefix)
		}
	}
	return nil
}

// underPrefixes says whether key starts with one of prefixes.
func underPrefixes(key string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(key, p) })
}

// aggregateNodeLabels returns the node labels under prefixes that at least
// threshold of the worker nodes carry. Nodes with a control-plane role label
// do not count, as in upstream Clusternet; nor does readiness: a node that
// is down for a moment still has its hardware. For each key the most common
// value is the one that counts; when two values are equally common (possible
// only with a threshold of 0.5 or less) the smaller wins, so that the result
// does not change from one heartbeat to the next.
func aggregateNodeLabels(nodes []corev1.Node, prefixes []string, threshold float64) map[string]string {
	if len(prefixes) == 0 {
		return nil
	}
	counts := map[string]map[string]int{}
	workers := 0
	for i := range nodes {
		labels := nodes[i].Labels
		if slices.ContainsFunc(controlPlaneRoleLabels, func(r string) bool { _, ok := labels[r]; return ok }) {
			continue
		}
		workers++
		for k, v := range labels {
			if !underPrefixes(k, prefixes) {
				continue
			}
			if counts[k] == nil {
				counts[k] = map[string]int{}
			}
			counts[k][v]++
		}
	}
	out := map[string]string{}
	for key, values := range counts {
		best, n := "", 0
		for v, c := range values {
			if c > n || (c == n && v < best) {
				best, n = v, c
			}
		}
		if float64(n)/float64(workers) >= threshold {
			out[key] = best
		}
	}
	return out
}

// parseOwned reads AnnotationAggregatedNodeLabels.
func parseOwned(annotation string) sets.Set[string] {
	owned := sets.New[string]()
	for k := range strings.SplitSeq(annotation, ",") {
		if k = strings.TrimSpace(k); k != "" {
			owned.Insert(k)
		}
	}
	return owned
}

// nodeLabelChanges are what the agent changes on its ManagedCluster.
type nodeLabelChanges struct {
	// Set are labels the agent adds or corrects, Remove those it takes off.
	Set    map[string]string
	Remove []string
	// Owned is the new value of AnnotationAggregatedNodeLabels ("" removes it).
	Owned string
}

func (c nodeLabelChanges) empty(currentOwned string) bool {
	return len(c.Set) == 0 && len(c.Remove) == 0 && c.Owned == currentOwned
}

// planNodeLabels compares the ManagedCluster's labels and ownership
// annotation with the labels the nodes call for. The agent changes only
// labels under prefixes, and of those only the ones it owns or that nobody
// has set:
//
//   - a wanted label that is absent is added and owned;
//   - a wanted label the agent owns is set to the nodes' value;
//   - a wanted label present but not owned (a user's, or the registration's)
//     is left as it is and not owned;
//   - an owned label no longer wanted is removed and no longer owned.
//
// Owned keys outside prefixes (the flag changed since, or someone listed a
// key there by hand) stay listed and their labels stay put: the agent
// touches no label outside its current prefixes, whatever the annotation says.
func planNodeLabels(labels map[string]string, ownedAnnotation string, want map[string]string, prefixes []string) nodeLabelChanges {
	owned := parseOwned(ownedAnnotation)
	keep := sets.New[string]()
	changes := nodeLabelChanges{Set: map[string]string{}}
	for k := range owned {
		if !underPrefixes(k, prefixes) {
			keep.Insert(k)
		}
	}
	for k, v := range want {
		cur, present := labels[k]
		switch {
		case present && !owned.Has(k):
			continue // someone else's
		case !present || cur != v:
			changes.Set[k] = v
		}
		keep.Insert(k)
	}
	for k := range owned {
		if _, wanted := want[k]; wanted || !underPrefixes(k, prefixes) {
			continue
		}
		if _, present := labels[k]; present {
			changes.Remove = append(changes.Remove, k)
		}
	}
	slices.Sort(changes.Remove)
	changes.Owned = strings.Join(sets.List(keep), ",")
	return changes
}

// mergePatch is changes as a JSON merge patch of a ManagedCluster at
// resourceVersion: a patch that fails with a Conflict when the object
// changed since it was read, so it never undoes a write it did not see.
func (c nodeLabelChanges) mergePatch(resourceVersion string) ([]byte, error) {
	labels := map[string]any{}
	for k, v := range c.Set {
		labels[k] = v
	}
	for _, k := range c.Remove {
		labels[k] = nil
	}
	var owned any = c.Owned
	if c.Owned == "" {
		owned = nil
	}
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": resourceVersion,
		"labels":          labels,
		"annotations":     map[string]any{AnnotationAggregatedNodeLabels: owned},
	}})
}

// syncNodeLabels brings the ManagedCluster's aggregated labels in line with
// nodes (the heartbeat's list of the child's nodes). Failures are logged and
// tried again at the next heartbeat.
func (a *Agent) syncNodeLabels(ctx context.Context, nodes []corev1.Node) {
	prefixes := a.opts.LabelAggregatePrefixes
	if len(prefixes) == 0 {
		return
	}
	logger := klog.FromContext(ctx)
	want := aggregateNodeLabels(nodes, prefixes, a.opts.LabelAggregateThreshold)
	mcs := a.parent.ClustersV1beta1().ManagedClusters(a.creds.DedicatedNamespace)
	var done nodeLabelChanges
	// The heartbeat's own status write has just returned the object: start
	// from it, so that a beat with no label to change costs no read. The
	// patch carries its resourceVersion, so a stale copy conflicts and the
	// retry reads it.
	mc := a.statusWriter.Last()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		done = nodeLabelChanges{}
		if !registration.Same(mc, a.creds.DedicatedNamespace, a.creds.ManagedClusterName) {
			got, err := mcs.Get(ctx, a.creds.ManagedClusterName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			mc = got
			a.statusWriter.Seen(got) // fresher than the writer's, which may be why the patch conflicted
		}
		current := mc.Annotations[AnnotationAggregatedNodeLabels]
		changes := planNodeLabels(mc.Labels, current, want, prefixes)
		if changes.empty(current) {
			return nil
		}
		patch, err := changes.mergePatch(mc.ResourceVersion)
		if err != nil {
			return err
		}
		patched, err := mcs.Patch(ctx, mc.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "clusternet-agent"})
		if err != nil {
			mc = nil
			return err
		}
		a.statusWriter.Seen(patched) // the next beat's write starts from it
		done = changes
		return nil
	})
	switch {
	case apierrors.IsForbidden(err):
		logger.Error(err, "Copying node labels onto the ManagedCluster was refused: the parent's hub must grant agents patch on their ManagedCluster "+
			"and its ValidatingAdmissionPolicy clusternet-agent-reports-status-only must allow the prefixes of --label-aggregate-prefix",
			"managedCluster", klog.KRef(a.creds.DedicatedNamespace, a.creds.ManagedClusterName), "prefixes", prefixes)
	case err != nil:
		logger.Error(err, "Copying node labels onto the ManagedCluster failed", "managedCluster", klog.KRef(a.creds.DedicatedNamespace, a.creds.ManagedClusterName))
	case len(done.Set) > 0 || len(done.Remove) > 0:
		logger.Info("Aggregated node labels onto the ManagedCluster", "managedCluster", klog.KRef(a.creds.DedicatedNamespace, a.creds.ManagedClusterName),
			"set", done.Set, "removed", done.Remove)
	}
}
