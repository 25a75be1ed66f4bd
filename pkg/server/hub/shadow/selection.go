package shadow

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// templateSelection says which templates a list or watch wants: what the
// parent filters on the Manifests' labels and names, and what the hub
// checks again on each template.
type templateSelection struct {
	r *resource
	// namespace of the templates wanted; empty for all.
	namespace string
	// manifestLabels and manifestFields go to the parent.
	manifestLabels labels.Selector
	manifestFields fields.Selector
	// labels and fields are the client's, matched on each template.
	labels labels.Selector
	fields fields.Selector
	// exact is true when the parent's filtering alone is the answer, so
	// its remainingItemCount holds for the templates too.
	exact bool
}

// selection turns a list or watch request in requestNamespace into a
// templateSelection. Field selectors may name metadata.name and
// metadata.namespace; an exact name with a known namespace becomes the
// Manifest's own name.
func (r *resource) selection(requestNamespace string, opts *metainternalversion.ListOptions) (*templateSelection, error) {
	s := &templateSelection{r: r, namespace: r.templateNamespace(requestNamespace), labels: labels.Everything(), fields: fields.Everything(), exact: true}
	if opts != nil && opts.LabelSelector != nil {
		s.labels = opts.LabelSelector
	}
	if opts != nil && opts.FieldSelector != nil {
		s.fields = opts.FieldSelector
	}
	for _, req := range s.fields.Requirements() {
		if req.Field != "metadata.name" && req.Field != "metadata.namespace" {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("field selector %q is not supported for templates: use metadata.name or metadata.namespace", req.Field))
		}
	}
	if !s.fields.Empty() {
		s.exact = false
	}
	namespace := s.namespace
	if ns, ok := s.fields.RequiresExactMatch("metadata.namespace"); ok && r.namespaced && namespace == "" {
		namespace = ns
	}

	reqs := []labels.Requirement{}
	add := func(key, value string) error {
		req, err := labels.NewRequirement(key, selection.Equals, []string{value})
		if err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("selecting templates: %v", err))
		}
		reqs = append(reqs, *req)
		return nil
	}
	if err := add(appsv1alpha1.LabelConfigGroup, r.gvr.Group); err != nil {
		return nil, err
	}
	if err := add(appsv1alpha1.LabelConfigKind, r.kind); err != nil {
		return nil, err
	}
	if r.namespaced && namespace != "" {
		if err := add(appsv1alpha1.LabelConfigNamespace, namespace); err != nil {
			return nil, err
		}
	}
	userReqs, _ := s.labels.Requirements()
	for _, req := range userReqs {
		// A template label with a config key is shadowed by the config
		// label on its Manifest: only the hub can check it.
		if isConfigLabel(req.Key()) {
			s.exact = false
			continue
		}
		reqs = append(reqs, req)
	}
	s.manifestLabels = labels.NewSelector().Add(reqs...)

	s.manifestFields = fields.Everything()
	if name, ok := s.fields.RequiresExactMatch("metadata.name"); ok && (!r.namespaced || namespace != "") {
		s.manifestFields = fields.OneTermEqualSelector("metadata.name", r.manifestName(namespace, name))
	}
	return s, nil
}

// matches checks a template (and the Manifest labels it came with) against
// everything the client asked for.
func (s *templateSelection) matches(manifestLabels map[string]string, u *unstructured.Unstructured) bool {
	if manifestLabels[appsv1alpha1.LabelConfigGroup] != s.r.gvr.Group || manifestLabels[appsv1alpha1.LabelConfigKind] != s.r.kind {
		return false
	}
	if u.GetKind() != s.r.kind || u.GroupVersionKind().Group != s.r.gvr.Group {
		return false
	}
	if s.namespace != "" && u.GetNamespace() != s.namespace {
		return false
	}
	if !s.labels.Matches(labels.Set(u.GetLabels())) {
		return false
	}
	return s.fields.Matches(fields.Set{"metadata.name": u.GetName(), "metadata.namespace": u.GetNamespace()})
}
