// Package mcs is the pure logic of multi-cluster services (KEP-1645,
// sigs.k8s.io/mcs-api v1alpha1) that the hub and the agent share: the
// labels and names of the EndpointSlices that carry an export through the
// parent, how an export's properties are written and read, and how
// conflicting exports of one service are resolved. The controllers are in
// pkg/server/agent/mcs and pkg/server/hub/mcs; docs/mcs.md tells the whole
// flow and who may reach what.
package mcs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
)

const (
	// LabelServiceNamespace names the namespace of the exported Service
	// an EndpointSlice in the parent belongs to (its name is in mcs-api's
	// multicluster.kubernetes.io/service-name). Upstream Clusternet's name.
	LabelServiceNamespace = "services.clusternet.io/multi-cluster-service-namespace"

	// ManagedByExport marks the slices an agent publishes in its own
	// dedicated namespace of the parent: copies of its child's slices of an
	// exported Service. The agent is their only writer.
	ManagedByExport = "export.mcs.clusternet.io"
	// ManagedByImport marks the slices the hub writes in an importing
	// cluster's dedicated namespace, and the copies the importing agent
	// makes in its child: the hub is the only writer of the former, the
	// agent of the latter. It is the endpointslice.kubernetes.io/managed-by
	// value mcs-api asks an implementation to set.
	ManagedByImport = "mcs-controller.clusternet.io"

	// AnnotationExport holds, on every exported slice, the properties of the
	// exported Service that conflicts are decided on (ExportedProperties, JSON).
	AnnotationExport = "mcs.clusternet.io/exported-service"

	// ConflictsConfigMap is the ConfigMap in each exporting cluster's
	// dedicated namespace where the hub writes how each of its exports fares
	// against the others' (key ExportKey, value a Conflict in JSON). The
	// hub is its only writer; the agent reads it into its ServiceExports'
	// Conflict condition.
	ConflictsConfigMap = "clusternet-mcs-conflicts"

	// AgentBinding is the RoleBinding the hub makes in each dedicated
	// namespace while the gate is on, granting the agent what it needs
	// there; an agent refused names it in its ServiceExports' Ready.
	AgentBinding = "clusternet-agent-mcs"
)

// ServiceKey names an exported Service: namespace and name, the same in
// every cluster (KEP-1645's namespace sameness).
type ServiceKey struct{ Namespace, Name string }

func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// ExportKey is k as a ConfigMap key (namespaces and Service names are DNS
// labels, so the dot cannot be ambiguous).
func (k ServiceKey) ExportKey() string { return k.Namespace + "." + k.Name }

// ReportedServices are the Services a conflicts ConfigMap holds entries
// for (ServiceKey strings, in no particular order): the keys hub and agent
// queue when it changes. Anything else holds none.
func ReportedServices(obj any) []string {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return nil
	}
	var keys []string
	for k := range cm.Data {
		// A namespace, a DNS label, holds no dot.
		if ns, name, ok := strings.Cut(k, "."); ok && ns != "" && name != "" {
			keys = append(keys, ServiceKey{Namespace: ns, Name: name}.String())
		}
	}
	return keys
}

// ServiceOf is the exported Service an EndpointSlice in the parent is for,
// from its labels; ok is false when it names none.
func ServiceOf(s *discoveryv1.EndpointSlice) (ServiceKey, bool) {
	k := ServiceKey{Namespace: s.Labels[LabelServiceNamespace], Name: s.Labels[mcsv1alpha1.LabelServiceName]}
	return k, k.Namespace != "" && k.Name != ""
}

// ExportedProperties are the properties of an exported Service that must
// agree across clusters (KEP-1645 "Constraints and Conflict Resolution"):
// its type (ClusterSetIP, or Headless for a Service without a cluster IP)
// and its ports.
type ExportedProperties struct {
	Type  mcsv1alpha1.ServiceImportType `json:"type"`
	Ports []mcsv1alpha1.ServicePort     `json:"ports,omitempty"`
}

// PropertiesOf are svc's exported properties, or an error naming why svc
// cannot be exported (an ExternalName Service: mcs-api's InvalidServiceType).
func PropertiesOf(svc *corev1.Service) (ExportedProperties, error) {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return ExportedProperties{}, fmt.Errorf("service %s/%s has type %q, which KEP-1645 does not export: export a ClusterIP or headless Service",
			svc.Namespace, svc.Name, svc.Spec.Type)
	}
	p := ExportedProperties{Type: mcsv1alpha1.ClusterSetIP}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		p.Type = mcsv1alpha1.Headless
	}
	for _, sp := range svc.Spec.Ports {
		p.Ports = append(p.Ports, mcsv1alpha1.ServicePort{Name: sp.Name, Protocol: sp.Protocol, AppProtocol: sp.AppProtocol, Port: sp.Port})
	}
	return p, nil
}

// Encode is p as AnnotationExport's value.
func (p ExportedProperties) Encode() string {
	b, _ := json.Marshal(p) // plain strings and numbers: cannot fail
	return string(b)
}

// DecodeProperties reads AnnotationExport's value; an agent wrote it, so
// it is checked.
func DecodeProperties(s string) (ExportedProperties, error) {
	var p ExportedProperties
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return p, fmt.Errorf("annotation %s: %w", AnnotationExport, err)
	}
	if p.Type != mcsv1alpha1.ClusterSetIP && p.Type != mcsv1alpha1.Headless {
		return p, fmt.Errorf("annotation %s: type %q is neither %q nor %q", AnnotationExport, p.Type, mcsv1alpha1.ClusterSetIP, mcsv1alpha1.Headless)
	}
	return p, nil
}

// Export is one cluster's export of a Service, as the hub sees it.
type Export struct {
	// Cluster is the exporting cluster's id, from the registration record
	// of the namespace its slices are in (never from a label).
	Cluster string
	// Since is when the parent first held a slice of this export (the
	// oldest creationTimestamp the parent's apiserver stamped on them), so
	// an agent cannot make its export older than it is to win conflicts.
	Since      metav1.Time
	Properties ExportedProperties
}

// Conflict is how one export fares against the other exports of its
// Service: what the hub tells its cluster, and what becomes its
// ServiceExport's Conflict condition (mcs-api's reasons).
type Conflict struct {
	Conflict bool                                     `json:"conflict"`
	Reason   mcsv1alpha1.ServiceExportConditionReason `json:"reason"`
	Message  string                                   `json:"message,omitempty"`
	// Since is when the hub first saw this cluster's export (the oldest
	// creationTimestamp of its slices it has seen while the export lasted).
	// The hub keeps it here, in a ConfigMap only it writes, so that the
	// export's age survives kube-controller-manager replacing its oldest
	// slice, which would otherwise make a younger export win.
	Since *metav1.Time `json:"since,omitempty"`
}

// Condition is c as the ServiceExport's Conflict condition (without a
// transition time: meta.SetStatusCondition stamps it when the status changes).
func (c Conflict) Condition(generation int64) metav1.Condition {
	status := metav1.ConditionFalse
	if c.Conflict {
		status = metav1.ConditionTrue
	}
	return metav1.Condition{Type: string(mcsv1alpha1.ServiceExportConditionConflict), Status: status, Reason: string(c.Reason),
		Message: c.Message, ObservedGeneration: generation}
}

// Resolution is what the exports of one Service resolve to.
type Resolution struct {
	// Properties are the derived service's: the oldest export's type and
	// the union of the exported ports, a conflicting port resolved in
	// favour of the oldest export.
	Properties ExportedProperties
	// Conflict is the same for every export of the Service: KEP-1645 sets
	// the Conflict condition on all of them, with which cluster won and why.
	Conflict Conflict
}

// Resolve applies KEP-1645's conflict resolution to the exports of one
// Service: precedence goes to the oldest export, ties to the cluster name
// (here, its id) in alphabetical order. The type is the winner's; ports are
// the union, keyed by name, and a port whose name another export gives a
// different number, protocol or app protocol (or whose number and protocol
// it names differently) takes the older export's definition.
func Resolve(exports []Export) Resolution {
	if len(exports) == 0 {
		return Resolution{Conflict: Conflict{Reason: mcsv1alpha1.ServiceExportReasonNoConflicts}}
	}
	ordered := slices.Clone(exports)
	slices.SortFunc(ordered, func(a, b Export) int {
		if c := a.Since.Compare(b.Since.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Cluster, b.Cluster)
	})
	winner := ordered[0]
	res := Resolution{Properties: ExportedProperties{Type: winner.Properties.Type}}
	var typeLosers, portLosers []string
	for _, e := range ordered {
		if e.Properties.Type != winner.Properties.Type {
			typeLosers = append(typeLosers, e.Cluster)
		}
		lost := false
		for _, p := range e.Properties.Ports {
			if i := slices.IndexFunc(res.Properties.Ports, func(have mcsv1alpha1.ServicePort) bool { return samePort(have, p) }); i >= 0 {
				if !equalPort(res.Properties.Ports[i], p) {
					lost = true
				}
				continue
			}
			res.Properties.Ports = append(res.Properties.Ports, p)
		}
		if lost {
			portLosers = append(portLosers, e.Cluster)
		}
	}
	why := fmt.Sprintf("cluster %s holds the oldest export (%s) and takes precedence", winner.Cluster, winner.Since.UTC().Format("2006-01-02T15:04:05Z"))
	switch {
	case len(typeLosers) > 0:
		res.Conflict = Conflict{Conflict: true, Reason: mcsv1alpha1.ServiceExportReasonTypeConflict,
			Message: fmt.Sprintf("type: cluster(s) %s export it as other than %s; %s", strings.Join(typeLosers, ", "), winner.Properties.Type, why)}
	case len(portLosers) > 0:
		res.Conflict = Conflict{Conflict: true, Reason: mcsv1alpha1.ServiceExportReasonPortConflict,
			Message: fmt.Sprintf("ports: cluster(s) %s define a port differently from an older export; %s", strings.Join(portLosers, ", "), why)}
	default:
		res.Conflict = Conflict{Reason: mcsv1alpha1.ServiceExportReasonNoConflicts}
	}
	return res
}

// samePort says whether a and b are meant as the same port of the derived
// service: the same name, or the same number and protocol.
func samePort(a, b mcsv1alpha1.ServicePort) bool {
	return a.Name == b.Name || (a.Port == b.Port && protocol(a) == protocol(b))
}

func equalPort(a, b mcsv1alpha1.ServicePort) bool {
	return a.Name == b.Name && a.Port == b.Port && protocol(a) == protocol(b) && ptrEqual(a.AppProtocol, b.AppProtocol)
}

// protocol defaults to TCP as a Service's does.
func protocol(p mcsv1alpha1.ServicePort) corev1.Protocol {
	if p.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return p.Protocol
}

func ptrEqual(a, b *string) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// hash is a short stable digest of parts, for object names that must be
// unique and fit.
func hash(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:8]) // 64 bits: collisions are not expected, and SyncSlices refuses one
}
