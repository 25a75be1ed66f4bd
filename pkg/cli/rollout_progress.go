package cli

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// Condition types the hub sets on Subscriptions and Bases, as
// docs/distribution.md ("Conditions and events") names them. The plugin
// links no hub package, so they are spelled here.
const (
	conditionFeedsResolved = "FeedsResolved"
	conditionScheduled     = "Scheduled"
	conditionRendered      = "Rendered"
	conditionReady         = "Ready"
)

// rolloutState is how far one part of a rollout is.
type rolloutState int

const (
	stateWaiting rolloutState = iota
	stateDone
	stateFailed
)

// and is the state of a whole made of parts in s and o: failed if either
// failed, done if both are done, waiting otherwise.
func (s rolloutState) and(o rolloutState) rolloutState {
	switch {
	case s == stateFailed || o == stateFailed:
		return stateFailed
	case s == stateDone && o == stateDone:
		return stateDone
	default:
		return stateWaiting
	}
}

func (s rolloutState) String() string {
	switch s {
	case stateDone:
		return "Done"
	case stateFailed:
		return "Failed"
	default:
		return "Waiting"
	}
}

// subscriptionData is what the parent holds about one Subscription's
// rollout: the Subscription and the Bases and Descriptions made for it.
// The children are never asked: deployers report into the Descriptions.
type subscriptionData struct {
	Sub          *appsv1alpha1.Subscription
	Bases        []*appsv1alpha1.Base
	Descriptions []*appsv1alpha1.Description
	// ClusterNames are the ManagedClusters' names by dedicated namespace,
	// read only to name the clusters a truncated status.bindingClusters
	// leaves out; nil when not read.
	ClusterNames map[string]string
}

// subscriptionProgress is a Subscription's rollout judged cluster by cluster.
type subscriptionProgress struct {
	Sub   *appsv1alpha1.Subscription
	State rolloutState
	// Waiting is what the Subscription itself waits for before its clusters
	// count (feeds to resolve, the hub to schedule it); empty otherwise.
	Waiting string
	// Failure is why the Subscription as a whole cannot roll out.
	Failure  string
	Clusters []clusterProgress
}

// clusterProgress is one bound cluster.
type clusterProgress struct {
	// Name is the ManagedCluster's name, Namespace its dedicated namespace.
	Name, Namespace, ID string
	Base                *appsv1alpha1.Base
	State               rolloutState
	// Message says what stops the cluster before its Descriptions count
	// (no Base yet, rendering, rendering failed); empty otherwise.
	Message      string
	Descriptions []descriptionProgress
}

// descriptionProgress is one Description the cluster's Base renders into.
type descriptionProgress struct {
	// Name is <base>-generic or <base>-helm; Description is nil until rendered.
	Name        string
	Namespace   string
	Description *appsv1alpha1.Description
	State       rolloutState
	// Message is what it waits for or why it failed; empty when done.
	Message  string
	Objects  []objectProgress
	Replicas replicaCount
}

// objectProgress is one object of a Description as its deployer reported it.
type objectProgress struct {
	Feed     appsv1alpha1.Feed
	Status   appsv1alpha1.FeedStatus
	Reported bool
	Replicas replicaCount
}

// replicaCount is ready of desired replicas of workloads; Known is false
// where there is no workload.
type replicaCount struct {
	Ready, Desired int32
	Known          bool
}

func (c replicaCount) add(o replicaCount) replicaCount {
	if !o.Known {
		return c
	}
	return replicaCount{Ready: c.Ready + o.Ready, Desired: c.Desired + o.Desired, Known: true}
}

func (c replicaCount) String() string {
	if !c.Known {
		return "-"
	}
	return fmt.Sprintf("%d/%d", c.Ready, c.Desired)
}

// evaluate judges a Subscription's rollout: done when the hub has
// scheduled its current spec and, in every bound cluster, the Base is
// rendered and every Description is applied (phase Success for its latest
// spec) with its workloads available; failed as soon as a Base does not
// render or a Description is in phase Failure.
func evaluate(d subscriptionData) subscriptionProgress {
	sub := d.Sub
	p := subscriptionProgress{Sub: sub}
	if sub.DeletionTimestamp != nil {
		p.State, p.Failure = stateFailed, "it is being deleted"
		return p
	}
	p.Waiting = subscriptionWaiting(sub)
	bases := map[string]*appsv1alpha1.Base{}
	for _, b := range d.Bases {
		if b.Name == sub.Name && ownedBy(b, sub) {
			bases[b.Namespace] = b
		}
	}
	descs := map[string]*appsv1alpha1.Description{}
	for _, desc := range d.Descriptions {
		if ownedBy(desc, sub) {
			descs[desc.Namespace+"/"+desc.Name] = desc
		}
	}
	for _, c := range allBoundClusters(d) {
		p.Clusters = append(p.Clusters, evaluateCluster(c, bases[c.Namespace], descs))
	}
	if p.Waiting == "" {
		p.Waiting = unseenClusters(sub, len(p.Clusters))
	}
	p.State = stateDone
	if p.Waiting != "" {
		p.State = stateWaiting
	}
	for _, c := range p.Clusters {
		p.State = p.State.and(c.State)
	}
	return p
}

// subscriptionWaiting says what the Subscription waits for before its
// clusters can be judged, from the conditions the hub wrote for its
// current generation.
func subscriptionWaiting(sub *appsv1alpha1.Subscription) string {
	current := func(typ string) *metav1.Condition {
		c := meta.FindStatusCondition(sub.Status.Conditions, typ)
		if c == nil || c.ObservedGeneration < sub.Generation {
			return nil
		}
		return c
	}
	if c := current(conditionFeedsResolved); c != nil && c.Status == metav1.ConditionFalse {
		return fmt.Sprintf("its feeds do not resolve (%s): %s", c.Reason, c.Message)
	}
	c := current(conditionScheduled)
	switch {
	case c == nil:
		return fmt.Sprintf("waiting for the hub to schedule generation %d", sub.Generation)
	case c.Status != metav1.ConditionTrue:
		return fmt.Sprintf("not scheduled (%s): %s", c.Reason, c.Message)
	case len(sub.Status.BindingClusters) == 0:
		return "no cluster is bound"
	}
	return ""
}

// unseenClusters says why a rollout cannot be judged done when the hub
// bound more clusters (status.boundClusters) than the seen ones: the status
// lists only some when they do not all fit it, and the others are found
// from their Bases, which a user who may list Bases only namespace by
// namespace does not see. Judging by the seen ones alone would call a
// rollout done while a cluster left out fails.
func unseenClusters(sub *appsv1alpha1.Subscription, seen int) string {
	if sub.Status.BindingClustersOmitted == 0 || int(sub.Status.BoundClusters) <= seen {
		return ""
	}
	return fmt.Sprintf("%d of its %d bound clusters are not seen: the status lists %d, and the others' Bases cannot be listed with these credentials "+
		"(list bases and descriptions in all namespaces to follow every cluster, or read its Ready condition and READY column)",
		int(sub.Status.BoundClusters)-seen, sub.Status.BoundClusters, len(sub.Status.BindingClusters))
}

// ownedBy says whether obj was made for sub: its labels name sub, and its
// uid label, when set, is sub's (not an earlier Subscription of that name).
func ownedBy(obj metav1.Object, sub *appsv1alpha1.Subscription) bool {
	l := obj.GetLabels()
	if l[appsv1alpha1.LabelSubscriptionName] != sub.Name || l[appsv1alpha1.LabelSubscriptionNamespace] != sub.Namespace {
		return false
	}
	uid := l[appsv1alpha1.LabelSubscriptionUID]
	return uid == "" || uid == string(sub.UID)
}

// boundClusters are status.bindingClusters ("<dedicated-namespace>/<name>"),
// sorted by name: all bound clusters unless the hub truncated the list
// (allBoundClusters).
func boundClusters(sub *appsv1alpha1.Subscription) []clusterProgress {
	var out []clusterProgress
	for _, b := range sub.Status.BindingClusters {
		ns, name, ok := strings.Cut(b, "/")
		if !ok {
			ns, name = "", b
		}
		out = append(out, clusterProgress{Name: name, Namespace: ns})
	}
	sortClusters(out)
	return out
}

// allBoundClusters are the clusters d.Sub is bound to, sorted by name:
// status.bindingClusters, and, when the hub truncated that list
// (status.bindingClustersOmitted), the clusters of the Subscription's other
// Bases, one per bound cluster, named from d.ClusterNames (by their
// dedicated namespace when that does not know it).
func allBoundClusters(d subscriptionData) []clusterProgress {
	out := boundClusters(d.Sub)
	if d.Sub.Status.BindingClustersOmitted == 0 {
		return out
	}
	listed := map[string]bool{}
	for _, c := range out {
		listed[c.Namespace] = true
	}
	for _, b := range d.Bases {
		if b.Name != d.Sub.Name || !ownedBy(b, d.Sub) || listed[b.Namespace] {
			continue
		}
		listed[b.Namespace] = true
		name := d.ClusterNames[b.Namespace]
		if name == "" {
			name = b.Namespace
		}
		out = append(out, clusterProgress{Name: name, Namespace: b.Namespace})
	}
	sortClusters(out)
	return out
}

func sortClusters(cs []clusterProgress) {
	slices.SortFunc(cs, func(a, b clusterProgress) int { return strings.Compare(a.Name+"/"+a.Namespace, b.Name+"/"+b.Namespace) })
}

func evaluateCluster(c clusterProgress, base *appsv1alpha1.Base, descs map[string]*appsv1alpha1.Description) clusterProgress {
	c.Base = base
	if base == nil {
		c.Message = "waiting for the hub to create its Base"
		return c
	}
	c.ID = base.Labels[appsv1alpha1.LabelClusterID]
	where := fmt.Sprintf("Base %s/%s", base.Namespace, base.Name)
	rendered := meta.FindStatusCondition(base.Status.Conditions, conditionRendered)
	switch {
	case base.DeletionTimestamp != nil:
		c.Message = where + " is being deleted"
		return c
	case rendered == nil || rendered.ObservedGeneration < base.Generation:
		c.Message = fmt.Sprintf("waiting for the hub to render %s into Descriptions", where)
		return c
	case rendered.Status == metav1.ConditionFalse:
		c.State, c.Message = stateFailed, fmt.Sprintf("rendering %s failed (%s): %s", where, rendered.Reason, rendered.Message)
		return c
	}
	c.State = stateDone
	for _, name := range descriptionNames(base) {
		dp := evaluateDescription(base.Namespace, name, descs[base.Namespace+"/"+name])
		c.Descriptions = append(c.Descriptions, dp)
		c.State = c.State.and(dp.State)
	}
	return c
}

// descriptionNames are the Descriptions a Base renders into: one per
// deployer that has feeds (docs/distribution.md, "Descriptions").
func descriptionNames(base *appsv1alpha1.Base) []string {
	generic, helm := false, false
	for _, f := range base.Spec.Feeds {
		if isChartFeed(f) {
			helm = true
		} else {
			generic = true
		}
	}
	var out []string
	if generic {
		out = append(out, base.Name+appsv1alpha1.DescriptionGenericSuffix)
	}
	if helm {
		out = append(out, base.Name+appsv1alpha1.DescriptionHelmSuffix)
	}
	return out
}

func isChartFeed(f appsv1alpha1.Feed) bool {
	return (schema.GroupKind{Group: groupOf(f.APIVersion), Kind: f.Kind}) == helmChartKind
}

func groupOf(apiVersion string) string {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return apiVersion
	}
	return gv.Group
}

func evaluateDescription(namespace, name string, d *appsv1alpha1.Description) descriptionProgress {
	p := descriptionProgress{Name: name, Namespace: namespace, Description: d}
	if d == nil {
		p.Message = "not rendered yet"
		return p
	}
	p.Objects = objectsOf(d)
	for _, o := range p.Objects {
		p.Replicas = p.Replicas.add(o.Replicas)
	}
	switch {
	case d.DeletionTimestamp != nil:
		p.Message = "being deleted"
	case d.Status.ObservedGeneration != 0 && d.Status.ObservedGeneration < d.Generation:
		// The same rule as the hub's aggregation: a report on an earlier spec
		// does not count; deployers that set no observedGeneration are taken
		// at their word.
		p.Message = fmt.Sprintf("waiting for the deployer to report on generation %d (it reported on %d)", d.Generation, d.Status.ObservedGeneration)
	case d.Status.Phase == appsv1alpha1.DescriptionPhaseFailure:
		p.State, p.Message = stateFailed, orDefault(d.Status.Reason, "no reason given")
	case d.Status.Phase == appsv1alpha1.DescriptionPhaseSuccess:
		p.State, p.Message = objectsState(p.Objects)
	default:
		// Pending, or one of upstream's phases (Installing, Upgrading...):
		// the phase has its own column.
		p.Message = orDefault(d.Status.Reason, "waiting for its deployer to apply it")
	}
	return p
}

// objectsState is done when every object is applied and available, and
// otherwise names the first that is not (and how many more).
func objectsState(objs []objectProgress) (rolloutState, string) {
	var waiting []string
	for _, o := range objs {
		switch {
		case !o.Reported:
			waiting = append(waiting, objectName(o.Feed)+": not reported by the deployer yet")
		case !o.Status.Applied:
			waiting = append(waiting, objectName(o.Feed)+": "+orDefault(o.Status.Reason, "not applied"))
		case !o.Status.Available:
			waiting = append(waiting, objectName(o.Feed)+": "+orDefault(o.Status.Reason, "not available"))
		}
	}
	switch len(waiting) {
	case 0:
		return stateDone, ""
	case 1:
		return stateWaiting, waiting[0]
	default:
		return stateWaiting, fmt.Sprintf("%s; and %d more", waiting[0], len(waiting)-1)
	}
}

// objectName names an object in messages: "Deployment foo/my-nginx".
func objectName(f appsv1alpha1.Feed) string {
	if f.Namespace == "" {
		return f.Kind + " " + f.Name
	}
	return f.Kind + " " + f.Namespace + "/" + f.Name
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// objectsOf lists what a Description deploys, with what its deployer
// reported about each: the objects of spec.raw (Generic) or the charts
// (Helm), in order.
func objectsOf(d *appsv1alpha1.Description) []objectProgress {
	reported := map[string]appsv1alpha1.FeedStatus{}
	for _, ms := range d.Status.ManifestStatuses {
		reported[feedKey(ms.Feed)] = ms.FeedStatus
	}
	var out []objectProgress
	add := func(f appsv1alpha1.Feed, obj *unstructured.Unstructured) {
		st, ok := reported[feedKey(f)]
		op := objectProgress{Feed: f, Status: st, Reported: ok}
		if desired, workload := desiredReplicas(f, obj, st); workload {
			op.Replicas = replicaCount{Ready: st.ReadyReplicas, Desired: desired, Known: true}
		}
		out = append(out, op)
	}
	for _, raw := range d.Spec.Raw {
		// Decoded as the apiserver decodes objects: numbers stay integers.
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw.Raw); err != nil {
			continue
		}
		add(appsv1alpha1.Feed{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}, obj)
	}
	for _, c := range d.Spec.Charts {
		add(appsv1alpha1.Feed{APIVersion: appsv1alpha1.SchemeGroupVersion.String(), Kind: helmChartKind.Kind, Namespace: c.Namespace, Name: c.Name}, nil)
	}
	return out
}

// feedKey matches an object with its report by group, kind, namespace and
// name: the version it is reported in may differ.
func feedKey(f appsv1alpha1.Feed) string {
	return groupOf(f.APIVersion) + "/" + f.Kind + "/" + f.Namespace + "/" + f.Name
}

// desiredReplicas is how many replicas a workload asks for in this
// cluster, as rendered (so after dividing and overrides). The kinds are
// those whose readiness deployers report (pkg/deployer's WorkloadStatus);
// a DaemonSet's desired count is what its controller schedules, as reported.
func desiredReplicas(f appsv1alpha1.Feed, obj *unstructured.Unstructured, st appsv1alpha1.FeedStatus) (int32, bool) {
	field := ""
	switch gk := (schema.GroupKind{Group: groupOf(f.APIVersion), Kind: f.Kind}); gk {
	case schema.GroupKind{Group: "apps", Kind: "Deployment"}, schema.GroupKind{Group: "apps", Kind: "StatefulSet"},
		schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}:
		field = "replicas"
	case schema.GroupKind{Group: "batch", Kind: "Job"}:
		field = "parallelism"
	case schema.GroupKind{Group: "apps", Kind: "DaemonSet"}:
		return st.Replicas, true
	default:
		return 0, false
	}
	if obj == nil {
		return 1, true
	}
	n, found, err := unstructured.NestedInt64(obj.Object, "spec", field)
	if err != nil || !found {
		return 1, true
	}
	return int32(n), true
}

// doneCount is how many bound clusters are done.
func (p subscriptionProgress) doneCount() int {
	n := 0
	for _, c := range p.Clusters {
		if c.State == stateDone {
			n++
		}
	}
	return n
}

// clustersIn lists "cluster <name>: <what>" for each cluster in state,
// what being what it waits for or why it failed.
func (p subscriptionProgress) clustersIn(state rolloutState) []string {
	var out []string
	for _, c := range p.Clusters {
		if c.State != state {
			continue
		}
		out = append(out, fmt.Sprintf("cluster %s: %s", c.Name, c.why(state)))
	}
	return out
}

// why is what a cluster waits for, or why it failed.
func (c clusterProgress) why(state rolloutState) string {
	if c.Message != "" {
		return c.Message
	}
	var parts []string
	for _, d := range c.Descriptions {
		if d.State == state {
			parts = append(parts, fmt.Sprintf("Description %s/%s: %s", d.Namespace, d.Name, d.Message))
		}
	}
	return strings.Join(parts, "; ")
}
