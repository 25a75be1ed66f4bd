package sockets

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"sigs.k8s.io/yaml"

	"github.com/clusternet/clusternet/pkg/tunnel/wire"
)

// This file is the one place that decides as whom a parent user reaches a
// child (docs/tunnel.md, "Who the child sees"). The agent sends the child
// exactly what it is told, so every rule below is enforced here.
//
// The rules, in order:
//   - user "clusternet" with child credentials in its extras passes those
//     credentials through (upstream Clusternet's way); without them it is refused.
//   - groups prefixed "system:" (system:masters, system:authenticated,
//     system:serviceaccounts, ...) are the parent's own: a parent admin
//     must not be system:masters in every child. They are never forwarded;
//     an admin may map them to child groups with a mapping rule.
//   - user names prefixed "system:" (ServiceAccounts, nodes, control-plane
//     components, system:anonymous) name parent workloads: a child
//     ServiceAccount of the same name is another workload. They are refused
//     unless a rule maps them to a child user.
//   - extras the parent's authenticators write (authentication.kubernetes.io/*:
//     the credential id, the pod and node a token is bound to) and the
//     pass-through credentials (clusternet-*) describe parent credentials:
//     dropped. Other extras (scopes, claims) travel, so restrictions do too.
//   - every rule whose from matches the caller and whose clusterSelector
//     matches the child's ManagedCluster adds its to.groups; the first such
//     rule (in file order) with a to.user names the child user.

// IdentityMappingAPIVersion and IdentityMappingKind head a mapping file.
const (
	IdentityMappingAPIVersion = "proxies.clusternet.io/v1alpha1"
	IdentityMappingKind       = "IdentityMapping"
)

// reservedPrefix marks names Kubernetes reserves for itself.
const reservedPrefix = "system:"

// droppedExtraPrefixes are user extras that describe a parent credential,
// not a person: meaningless (or worse, trusted) in a child.
var droppedExtraPrefixes = []string{"authentication.kubernetes.io/", "clusternet-"}

// IdentityMappingFile is what --identity-mapping-file holds.
type IdentityMappingFile struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Rules      []IdentityRule `json:"rules"`
}

// IdentityRule maps a parent user or group to a child user and/or groups in
// the clusters its selector matches.
type IdentityRule struct {
	// Name names the rule in errors and logs.
	Name string `json:"name"`
	// ClusterSelector selects ManagedClusters by their labels (which an agent
	// cannot change); absent, the rule holds for every cluster.
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`
	From            ParentSubject         `json:"from"`
	To              ChildSubject          `json:"to"`
}

// ParentSubject is a parent user or a parent group (exactly one), compared
// exactly; system: names are allowed here, that is how they are mapped.
type ParentSubject struct {
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
}

// ChildSubject is what a matching caller becomes, or gains, in the child.
type ChildSubject struct {
	User   string   `json:"user,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

type identityRule struct {
	IdentityRule
	selector labels.Selector // nil: every cluster
}

// IdentityMapper decides how a child sees a parent caller. The zero value
// (and nil) maps nothing: system: groups and users stop at the parent.
type IdentityMapper struct {
	rules []identityRule
}

// LoadIdentityMapping reads a mapping file; an empty path maps nothing.
func LoadIdentityMapping(path string) (*IdentityMapper, error) {
	if path == "" {
		return &IdentityMapper{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--identity-mapping-file %q: %w", path, err)
	}
	m, err := ParseIdentityMapping(data)
	if err != nil {
		return nil, fmt.Errorf("--identity-mapping-file %q: %w", path, err)
	}
	return m, nil
}

// ParseIdentityMapping validates a whole mapping file: one bad rule and
// none of it is used.
func ParseIdentityMapping(data []byte) (*IdentityMapper, error) {
	var f IdentityMappingFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("not an %s: %w", IdentityMappingKind, err)
	}
	var errs field.ErrorList
	if f.APIVersion != IdentityMappingAPIVersion {
		errs = append(errs, field.Invalid(field.NewPath("apiVersion"), f.APIVersion, "must be "+IdentityMappingAPIVersion))
	}
	if f.Kind != IdentityMappingKind {
		errs = append(errs, field.Invalid(field.NewPath("kind"), f.Kind, "must be "+IdentityMappingKind))
	}
	m := &IdentityMapper{}
	names := sets.New[string]()
	for i, r := range f.Rules {
		p := field.NewPath("rules").Index(i)
		rule := identityRule{IdentityRule: r}
		switch {
		case r.Name == "":
			errs = append(errs, field.Required(p.Child("name"), "name each rule: errors and logs quote it"))
		case names.Has(r.Name):
			errs = append(errs, field.Duplicate(p.Child("name"), r.Name))
		}
		names.Insert(r.Name)
		if (r.From.User == "") == (r.From.Group == "") {
			errs = append(errs, field.Invalid(p.Child("from"), r.From, "set exactly one of user and group"))
		}
		if r.From.User == wire.PassThroughUser {
			errs = append(errs, field.Invalid(p.Child("from", "user"), r.From.User,
				"is the pass-through user: it carries child credentials and is never mapped"))
		}
		if r.To.User == "" && len(r.To.Groups) == 0 {
			errs = append(errs, field.Required(p.Child("to"), "set user, groups or both"))
		}
		if r.To.User == wire.PassThroughUser {
			errs = append(errs, field.Invalid(p.Child("to", "user"), r.To.User, "is the pass-through user: map to a user of the child"))
		}
		for j, g := range r.To.Groups {
			switch g {
			case "":
				errs = append(errs, field.Required(p.Child("to", "groups").Index(j), "a group needs a name"))
			case user.SystemPrivilegedGroup:
				// system:masters bypasses the child's authorization entirely and
				// the agent refuses it: grant admin rights visibly instead.
				errs = append(errs, field.Invalid(p.Child("to", "groups").Index(j), g,
					"bypasses the child's RBAC and agents refuse it: map to a group of your own (e.g. clusternet:cluster-admins) and bind it to cluster-admin in the child"))
			}
		}
		if r.ClusterSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(r.ClusterSelector)
			if err != nil {
				errs = append(errs, field.Invalid(p.Child("clusterSelector"), r.ClusterSelector, err.Error()))
			}
			rule.selector = sel
		}
		m.rules = append(m.rules, rule)
	}
	if err := errs.ToAggregate(); err != nil {
		return nil, err
	}
	return m, nil
}

// NeedsClusterLabels says whether some rule selects clusters by label.
func (m *IdentityMapper) NeedsClusterLabels() bool {
	if m == nil {
		return false
	}
	for _, r := range m.rules {
		if r.selector != nil {
			return true
		}
	}
	return false
}

// errNotForwarded is a caller the hub will not make anyone in the child.
var errNotForwarded = errors.New("identity not forwarded")

// IdentityFor decides how the child whose ManagedClusters carry
// clusterLabels sees caller u. A rule with a clusterSelector holds only if
// it matches every ManagedCluster of that cluster id (there should be one).
func (m *IdentityMapper) IdentityFor(u user.Info, clusterLabels []map[string]string) (wire.Identity, error) {
	name, extra := u.GetName(), u.GetExtra()
	if name == wire.PassThroughUser {
		if tokens := extra[wire.ExtraToken]; len(tokens) > 0 && tokens[0] != "" {
			return wire.Identity{Token: tokens[0]}, nil
		}
		if certs, keys := extra[wire.ExtraCertificate], extra[wire.ExtraPrivateKey]; len(certs) > 0 && len(keys) > 0 && certs[0] != "" && keys[0] != "" {
			return wire.Identity{Certificate: certs[0], PrivateKey: keys[0]}, nil
		}
		// The optional deploy/optional/anonymous-passthrough.yaml lets anyone
		// impersonate "clusternet": impersonating it in the child would let
		// anyone who reaches the parent into every child.
		return wire.Identity{}, fmt.Errorf("user %q passes the caller's child credentials through and carries none: set user extra %s (a child token), or %s and %s (a child client certificate and key, base64 PEM), as in the kubeconfig of \"Visit ManagedCluster With RBAC\" in upstream Clusternet's README",
			wire.PassThroughUser, wire.ExtraToken, wire.ExtraCertificate, wire.ExtraPrivateKey)
	}

	var groups []string
	add := func(gs ...string) {
		for _, g := range gs {
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
	}
	for _, g := range u.GetGroups() {
		if !strings.HasPrefix(g, reservedPrefix) {
			add(g)
		}
	}
	childUser := ""
	if m != nil {
		for _, r := range m.rules {
			if !r.matchesCaller(name, u.GetGroups()) || !r.matchesCluster(clusterLabels) {
				continue
			}
			if childUser == "" {
				childUser = r.To.User
			}
			add(r.To.Groups...)
		}
	}
	id := wire.Identity{User: childUser, Groups: groups}
	if childUser == "" {
		if strings.HasPrefix(name, reservedPrefix) {
			return wire.Identity{}, notForwarded(name)
		}
		// The same name: the same person, and the parent's uid with it.
		id.User, id.UID = name, u.GetUID()
	}
	for k, v := range extra {
		if !hasAnyPrefix(k, droppedExtraPrefixes) {
			if id.Extra == nil {
				id.Extra = map[string][]string{}
			}
			id.Extra[k] = v
		}
	}
	return id, nil
}

func notForwarded(name string) error {
	const fix = "map it to a child user with a rule in the hub's --identity-mapping-file (from.user: %q, to.user: <a child user>; docs/tunnel.md)"
	if _, _, err := serviceaccount.SplitUsername(name); err == nil {
		return fmt.Errorf("%w: parent ServiceAccount %q is not forwarded to children, since a child ServiceAccount of that name is another workload: "+fix, errNotForwarded, name, name)
	}
	return fmt.Errorf("%w: parent user %q has a reserved name (prefix %q) and is not forwarded to children: "+fix, errNotForwarded, name, reservedPrefix, name)
}

func (r identityRule) matchesCaller(name string, groups []string) bool {
	if r.From.User != "" {
		return r.From.User == name
	}
	return slices.Contains(groups, r.From.Group)
}

func (r identityRule) matchesCluster(clusterLabels []map[string]string) bool {
	if r.selector == nil {
		return true
	}
	if len(clusterLabels) == 0 {
		return false
	}
	for _, l := range clusterLabels {
		if !r.selector.Matches(labels.Set(l)) {
			return false
		}
	}
	return true
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
