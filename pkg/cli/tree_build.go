package cli

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	clusterv1beta1 "github.com/clusternet/clusternet/pkg/apis/clusters/v1beta1"
)

// TreeNode is one line of `kubectl clusternet tree`, and its shape in
// `-o json`: an object, what it says about itself, and what it led to.
type TreeNode struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name,omitempty"`
	// Selector is a feed's label selector, for a feed that selects.
	Selector string `json:"selector,omitempty"`
	// Role is what the node is where its kind does not say: "feed" (of a
	// Subscription) or "template" (the object a template tree starts from).
	Role string `json:"role,omitempty"`
	// ClusterID is a ManagedCluster's cluster id.
	ClusterID string `json:"clusterId,omitempty"`
	// Status is the node's state: a Subscription's Ready reason, a
	// cluster's Done/Waiting/Failed, a Base's Rendered reason, a
	// Description's phase, an object's Available/Applied/NotApplied.
	Status string     `json:"status,omitempty"`
	Ready  *TreeCount `json:"ready,omitempty"`
	// Message says what the node waits for, or why it failed.
	Message           string       `json:"message,omitempty"`
	CreationTimestamp *metav1.Time `json:"creationTimestamp,omitempty"`
	Children          []TreeNode   `json:"children,omitempty"`

	// state colours the status on terminals.
	state rolloutState
}

// TreeCount is what the READY column counts: ready of total replicas of
// workloads, or clusters (of a Subscription: clusters done; of a feed or a
// template: clusters where it is available).
type TreeCount struct {
	Ready int32  `json:"ready"`
	Total int32  `json:"total"`
	Of    string `json:"of"`
}

const (
	countReplicas = "replicas"
	countClusters = "clusters"
)

func replicasCount(c replicaCount) *TreeCount {
	if !c.Known {
		return nil
	}
	return &TreeCount{Ready: c.Ready, Total: c.Desired, Of: countReplicas}
}

func timeOf(obj metav1.Object) *metav1.Time {
	t := obj.GetCreationTimestamp()
	if t.IsZero() {
		return nil
	}
	return &t
}

// subscriptionTree is a Subscription, its feeds, and per bound cluster its
// Base, the Descriptions and the objects in them, as the deployers report
// them.
func subscriptionTree(p subscriptionProgress) TreeNode {
	root := subscriptionNode(p)
	root.Ready = &TreeCount{Ready: int32(p.doneCount()), Total: int32(len(p.Clusters)), Of: countClusters}
	root.Children = append(root.Children, feedNodes(p.Sub)...)
	for _, c := range p.Clusters {
		root.Children = append(root.Children, clusterNode(c))
	}
	return root
}

// subscriptionNode is the Subscription's own line: the hub's Ready
// condition, and what the rollout waits for or failed on.
func subscriptionNode(p subscriptionProgress) TreeNode {
	sub := p.Sub
	n := TreeNode{Kind: "Subscription", APIVersion: appsv1alpha1.SchemeGroupVersion.String(), Namespace: sub.Namespace, Name: sub.Name,
		Status: "Unknown", CreationTimestamp: timeOf(sub), state: p.State}
	if c := meta.FindStatusCondition(sub.Status.Conditions, conditionReady); c != nil {
		n.Status = c.Reason
		if c.Status != metav1.ConditionTrue {
			n.Message = c.Message
		}
	}
	switch {
	case p.Failure != "":
		n.Message = p.Failure
	case p.Waiting != "":
		n.Message = p.Waiting
	}
	return n
}

// feedNodes are the resolved feeds with their state summed over the
// clusters (status.aggregatedStatuses), or the feeds as written while
// none is resolved.
func feedNodes(sub *appsv1alpha1.Subscription) []TreeNode {
	var out []TreeNode
	for _, a := range sub.Status.AggregatedStatuses {
		n := feedNode(a.Feed)
		n.Status, n.state = objectStatus(a.FeedStatusSummary, true)
		n.Ready = &TreeCount{Ready: availableClusters(a), Total: int32(len(a.FeedStatusDetails)) + a.FeedStatusDetailsOmitted, Of: countClusters}
		n.Message = a.FeedStatusSummary.Reason
		out = append(out, n)
	}
	if len(out) > 0 {
		return out
	}
	for _, f := range sub.Spec.Feeds {
		out = append(out, feedNode(f))
	}
	return out
}

// availableClusters counts the clusters where a feed is available: its
// details are every cluster unless the hub truncated them, and a hub of
// before availableClusters did not truncate.
func availableClusters(a appsv1alpha1.AggregatedStatus) int32 {
	if a.FeedStatusDetailsOmitted > 0 {
		return a.AvailableClusters
	}
	available := int32(0)
	for _, d := range a.FeedStatusDetails {
		if d.Available {
			available++
		}
	}
	return available
}

func feedNode(f appsv1alpha1.Feed) TreeNode {
	n := TreeNode{Kind: f.Kind, APIVersion: f.APIVersion, Namespace: f.Namespace, Name: f.Name, Role: "feed"}
	if f.FeedSelector != nil {
		n.Selector = metav1.FormatLabelSelector(f.FeedSelector)
	}
	return n
}

// objectStatus words a reported object's state; reported is false when
// the deployer has not reported on it.
func objectStatus(st appsv1alpha1.FeedStatus, reported bool) (string, rolloutState) {
	switch {
	case !reported:
		return "NotReported", stateWaiting
	case st.Available:
		return "Available", stateDone
	case st.Applied:
		return "Applied", stateWaiting
	default:
		return "NotApplied", stateWaiting
	}
}

func clusterNode(c clusterProgress) TreeNode {
	n := TreeNode{Kind: "ManagedCluster", APIVersion: clusterv1beta1.SchemeGroupVersion.String(), Namespace: c.Namespace, Name: c.Name,
		ClusterID: c.ID, Status: c.State.String(), Message: c.Message, state: c.State}
	var replicas replicaCount
	for _, d := range c.Descriptions {
		replicas = replicas.add(d.Replicas)
	}
	n.Ready = replicasCount(replicas)
	if c.Base != nil {
		n.Children = []TreeNode{baseNode(c)}
	}
	return n
}

func baseNode(c clusterProgress) TreeNode {
	b := c.Base
	n := TreeNode{Kind: "Base", APIVersion: appsv1alpha1.SchemeGroupVersion.String(), Namespace: b.Namespace, Name: b.Name,
		Status: "Rendering", CreationTimestamp: timeOf(b), state: stateDone}
	if c.Message != "" {
		n.state = c.State
	}
	if r := meta.FindStatusCondition(b.Status.Conditions, conditionRendered); r != nil && r.ObservedGeneration >= b.Generation {
		n.Status = r.Reason
		if r.Status != metav1.ConditionTrue {
			n.Message = r.Message
		}
	}
	for _, d := range c.Descriptions {
		n.Children = append(n.Children, descriptionNode(d))
	}
	return n
}

func descriptionNode(d descriptionProgress) TreeNode {
	n := TreeNode{Kind: "Description", APIVersion: appsv1alpha1.SchemeGroupVersion.String(), Namespace: d.Namespace, Name: d.Name,
		Status: "NotRendered", Ready: replicasCount(d.Replicas), Message: d.Message, state: d.State}
	if d.Description == nil {
		return n
	}
	// The hub creates a Description with no status; its deployer's first
	// write says Pending.
	n.Status = orDefault(string(d.Description.Status.Phase), "NotPickedUp")
	n.CreationTimestamp = timeOf(d.Description)
	for _, o := range d.Objects {
		n.Children = append(n.Children, objectNode(o, d.State))
	}
	return n
}

// objectNode is an object as its Description's deployer reports it; in a
// failed Description, one not applied failed too.
func objectNode(o objectProgress, descState rolloutState) TreeNode {
	n := TreeNode{Kind: o.Feed.Kind, APIVersion: o.Feed.APIVersion, Namespace: o.Feed.Namespace, Name: o.Feed.Name,
		Ready: replicasCount(o.Replicas), Message: o.Status.Reason}
	n.Status, n.state = objectStatus(o.Status, o.Reported)
	if descState == stateFailed && !o.Status.Applied {
		n.state = stateFailed
	}
	return n
}

// usesTemplate says whether a feed of sub names or selects the template
// obj (of kind gk): by group, kind, namespace and name (the version does
// not matter: one object has one template), or by its labels.
func usesTemplate(sub *appsv1alpha1.Subscription, gk schema.GroupKind, obj *unstructured.Unstructured) bool {
	for _, f := range sub.Spec.Feeds {
		if groupOf(f.APIVersion) != gk.Group || f.Kind != gk.Kind {
			continue
		}
		if f.FeedSelector == nil {
			if f.Namespace == obj.GetNamespace() && f.Name == obj.GetName() {
				return true
			}
			continue
		}
		selector, err := metav1.LabelSelectorAsSelector(f.FeedSelector)
		if err == nil && (f.Namespace == "" || f.Namespace == obj.GetNamespace()) && selector.Matches(labels.Set(obj.GetLabels())) {
			return true
		}
	}
	return false
}

// templateTree is a template (or HelmChart) and, under it, each
// Subscription that uses it with the object's state in each of its clusters.
func templateTree(obj *unstructured.Unstructured, uses []subscriptionProgress) TreeNode {
	root := TreeNode{Kind: obj.GetKind(), APIVersion: obj.GetAPIVersion(), Namespace: obj.GetNamespace(), Name: obj.GetName(),
		Role: "template", CreationTimestamp: timeOf(obj), state: stateDone}
	key := feedKey(appsv1alpha1.Feed{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()})
	var total, available int32
	for _, p := range uses {
		n := subscriptionNode(p)
		var count TreeCount
		count.Of = countClusters
		for _, c := range p.Clusters {
			cn := templateClusterNode(c, key)
			count.Total++
			if cn.Status == "Available" {
				count.Ready++
			}
			n.Children = append(n.Children, cn)
		}
		n.Ready = &count
		total, available = total+count.Total, available+count.Ready
		root.Children = append(root.Children, n)
	}
	root.Ready = &TreeCount{Ready: available, Total: total, Of: countClusters}
	if available < total {
		root.state = stateWaiting
	}
	return root
}

// templateClusterNode is one cluster of a Subscription, with the state of
// the object keyed key in it; the cluster's own state while no
// Description of it holds the object.
func templateClusterNode(c clusterProgress, key string) TreeNode {
	n := clusterNode(c)
	n.Children, n.Ready = nil, nil
	for _, d := range c.Descriptions {
		for _, o := range d.Objects {
			if feedKey(o.Feed) != key {
				continue
			}
			on := objectNode(o, d.State)
			n.Status, n.Ready, n.Message, n.state = on.Status, on.Ready, on.Message, on.state
			if d.State == stateFailed {
				n.Message = d.Message
			}
			return n
		}
	}
	if n.Message == "" {
		n.Message = "not in its Descriptions yet"
	}
	return n
}
