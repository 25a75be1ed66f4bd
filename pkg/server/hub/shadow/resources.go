package shadow

import (
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
)

// resource is one of the parent's resources as the shadow API serves it.
type resource struct {
	// gvr is the parent's resource at the version its group prefers for it.
	gvr        schema.GroupVersionResource
	kind       string
	singular   string
	namespaced bool
	shortNames []string
	// versions are all versions of the group serving this resource: a
	// template may be written in any of them, and keeps its own.
	versions []string
	// hasStatus is true when the parent serves a status subresource: status
	// is then not part of what a user writes, and templates drop it.
	hasStatus bool
	// scale is set when the parent serves a scale subresource.
	scale *scalePaths
}

// scalePaths say where a template keeps what its Scale shows.
type scalePaths struct {
	replicas []string
	// selector is nil when the selector lives in status (most CRDs), which
	// a template does not have.
	selector []string
	// defaultReplicas is what the Scale shows when the template leaves
	// replicas out: the parent's default for built-in kinds.
	defaultReplicas int64
}

func (r *resource) gvk() schema.GroupVersionKind { return r.gvr.GroupVersion().WithKind(r.kind) }

func (r *resource) groupResource() schema.GroupResource { return r.gvr.GroupResource() }

func (r *resource) groupKind() schema.GroupKind {
	return schema.GroupKind{Group: r.gvr.Group, Kind: r.kind}
}

// builtIn says whether the kind is one client-go knows, which gets strategic
// merge patch like the real resource (kubectl uses JSON merge patch for
// the others).
func (r *resource) builtIn() bool { return builtIn.Recognizes(r.gvk()) }

// AcceptsGroupVersion is true for every version of the group serving the
// resource: templates written in any of them are kept as written.
func (r *resource) AcceptsGroupVersion(gv schema.GroupVersion) bool {
	if gv.Group != r.gvr.Group {
		return false
	}
	for _, v := range r.versions {
		if v == gv.Version {
			return true
		}
	}
	return false
}

// excludedGroup lists what the shadow API never serves: Clusternet's own
// groups (read from the parent directly), the shadow group itself, metrics
// (read-only, nothing to template) and apiregistration.
func excludedGroup(group string) bool {
	switch group {
	case GroupName, "metrics.k8s.io", "custom.metrics.k8s.io", "external.metrics.k8s.io", "apiregistration.k8s.io":
		return true
	}
	return group == "clusternet.io" || strings.HasSuffix(group, ".clusternet.io")
}

// discovered is the parent's discovery: groups in priority order, and the
// resources of each group version.
type discovered struct {
	groups    []metav1.APIGroup
	resources map[schema.GroupVersion][]metav1.APIResource
}

// has tells whether the parent serves group/resource in any version.
func (d discovered) has(gr schema.GroupResource) bool {
	for gv, list := range d.resources {
		if gv.Group != gr.Group {
			continue
		}
		for _, r := range list {
			if r.Name == gr.Resource {
				return true
			}
		}
	}
	return false
}

// crdScaleFunc returns the scale paths a CRD declares for group/resource at
// version, and whether it is a CRD with a scale subresource there.
type crdScaleFunc func(group, resource, version string) (*scalePaths, bool)

// buildResources picks what the shadow API serves from the parent's
// discovery: every resource that can be created and read, outside the
// excluded groups. A plural name served by two groups (events in core and
// in events.k8s.io) goes to the group the parent lists first, as kubectl
// resolves it. Each resource is served at the first version of its group
// (preferred first) that has it.
func buildResources(d discovered, crdScale crdScaleFunc) map[string]*resource {
	out := map[string]*resource{}
	for _, g := range d.groups {
		if excludedGroup(g.Name) {
			continue
		}
		var order []string
		inGroup := map[string]*resource{}
		for _, v := range versionsInOrder(g) {
			gv := schema.GroupVersion{Group: g.Name, Version: v}
			list := d.resources[gv]
			subresources := map[string]sets.Set[string]{}
			for _, ar := range list {
				if parent, sub, ok := strings.Cut(ar.Name, "/"); ok {
					if subresources[parent] == nil {
						subresources[parent] = sets.New[string]()
					}
					subresources[parent].Insert(sub)
				}
			}
			for _, ar := range list {
				if strings.Contains(ar.Name, "/") || !sets.New(ar.Verbs...).HasAll("create", "get") {
					continue
				}
				if r, ok := inGroup[ar.Name]; ok {
					if r.kind == ar.Kind {
						r.versions = append(r.versions, v)
					}
					continue
				}
				r := &resource{
					gvr:        gv.WithResource(ar.Name),
					kind:       ar.Kind,
					singular:   ar.SingularName,
					namespaced: ar.Namespaced,
					shortNames: ar.ShortNames,
					versions:   []string{v},
					hasStatus:  subresources[ar.Name].Has("status"),
				}
				if r.singular == "" {
					r.singular = strings.ToLower(ar.Kind)
				}
				if subresources[ar.Name].Has("scale") {
					r.scale = scaleFor(r, crdScale)
				}
				inGroup[ar.Name] = r
				order = append(order, ar.Name)
			}
		}
		for _, name := range order {
			if _, taken := out[name]; !taken {
				out[name] = inGroup[name]
			}
		}
	}
	return out
}

func versionsInOrder(g metav1.APIGroup) []string {
	out := []string{}
	if g.PreferredVersion.Version != "" {
		out = append(out, g.PreferredVersion.Version)
	}
	for _, v := range g.Versions {
		if v.Version != g.PreferredVersion.Version {
			out = append(out, v.Version)
		}
	}
	return out
}

// scaleFor finds where r's templates keep replicas and selector: the CRD's
// declared paths, or spec.replicas and spec.selector as every built-in
// scalable kind has them.
func scaleFor(r *resource, crdScale crdScaleFunc) *scalePaths {
	if crdScale != nil {
		if p, ok := crdScale(r.gvr.Group, r.gvr.Resource, r.gvr.Version); ok {
			return p
		}
	}
	p := &scalePaths{replicas: []string{"spec", "replicas"}, selector: []string{"spec", "selector"}}
	if r.builtIn() {
		p.defaultReplicas = 1
	}
	return p
}

// jsonPath splits a CRD scale path (".spec.replicas") into fields.
func jsonPath(p string) []string {
	p = strings.TrimPrefix(p, ".")
	if p == "" {
		return nil
	}
	return strings.Split(p, ".")
}

// selectorString renders a template's selector the way Scale.status.selector
// shows it: a label selector (apps kinds), a plain map (ReplicationController)
// or a string (CRDs that keep one).
func selectorString(v interface{}) string {
	switch s := v.(type) {
	case string:
		return s
	case map[string]interface{}:
		_, hasLabels := s["matchLabels"]
		_, hasExpressions := s["matchExpressions"]
		if hasLabels || hasExpressions {
			ls := &metav1.LabelSelector{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(s, ls); err != nil {
				return ""
			}
			sel, err := metav1.LabelSelectorAsSelector(ls)
			if err != nil {
				return ""
			}
			return sel.String()
		}
		set := labels.Set{}
		for k, v := range s {
			str, ok := v.(string)
			if !ok {
				return ""
			}
			set[k] = str
		}
		return labels.SelectorFromSet(set).String()
	}
	return ""
}

// apiResources lists the resources for discovery, sorted by name. Delete
// and deletecollection are served but not advertised: the parent's
// namespace controller, garbage collector and quota controller act on
// every resource advertising them, and templates are not objects in the
// parent's namespaces for them to delete, collect or count.
func apiResources(resources map[string]*resource) []metav1.APIResource {
	out := make([]metav1.APIResource, 0, len(resources)*2)
	for _, r := range resources {
		out = append(out, metav1.APIResource{
			Name:         r.gvr.Resource,
			SingularName: r.singular,
			Namespaced:   r.namespaced,
			Group:        r.gvr.Group,
			Version:      r.gvr.Version,
			Kind:         r.kind,
			Verbs:        advertisedVerbs,
			// No short names: the parent's own kinds own them. With them,
			// plain kubectl in the parent would warn on every `get deploy`
			// that the short name could also mean deployments.shadow.
		})
		if r.scale != nil {
			out = append(out, metav1.APIResource{
				Name:       r.gvr.Resource + "/scale",
				Namespaced: r.namespaced,
				Group:      "autoscaling",
				Version:    "v1",
				Kind:       "Scale",
				Verbs:      metav1.Verbs{"get", "patch", "update"},
			})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

var advertisedVerbs = metav1.Verbs{"create", "get", "list", "patch", "update", "watch"}
