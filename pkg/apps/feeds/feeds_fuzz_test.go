package feeds

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

var selectorOperators = []metav1.LabelSelectorOperator{
	metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist,
}

var reasons = []string{ReasonKindNotServed, ReasonKindNotAllowed, ReasonNamespaceInvalid, ReasonSelectorInvalid,
	ReasonNotFound, ReasonChartNotFound, ReasonChartNotResolved}

// FuzzResolve resolves any feed (named, or by any label selector) against
// the unit tests' templates and HelmCharts plus one template and one chart
// labelled by the fuzzer. Invariants: no panic; every error names its
// feed's index with a known reason; every resolved object is of the feed's
// group and kind, in its namespace when it sets one, with labels the
// selector matches (or the very name the feed gives); no object twice;
// selectors miss no template or chart they match; each feed's objects come
// sorted by namespace and name; resolving is deterministic.
func FuzzResolve(f *testing.F) {
	type seed struct {
		apiVersion, kind, namespace, name string
		selector                          bool
		key                               string
		op                                uint8
		values, labelValue                string
	}
	for _, s := range []seed{
		{"apps.clusternet.io/v1alpha1", "HelmChart", "default", "mysql", false, "", 0, "", ""},
		{"v1", "Namespace", "", "foo", false, "", 0, "", ""},
		{"v1", "Service", "foo", "my-nginx-svc", false, "", 0, "", ""},
		{"apps/v1", "Deployment", "", "", true, "clusternet-app", 4, "multi-cluster-nginx", "multi-cluster-nginx"},
		{"apps/v1", "Deployment", "foo", "", true, "clusternet-app", 0, "multi-cluster-nginx,other", "other"},
		{"apps/v1", "Deployment", "", "", true, "clusternet-app", 1, "multi-cluster-nginx", "x"},
		{"apps/v1", "Deployment", "", "", true, "clusternet-app", 3, "", "x"},
		{"apps/v1", "Deployment", "bar", "", true, "fuzz", 2, "", "y"},
		{"apps.clusternet.io/v1alpha1", "HelmChart", "default", "", true, "tier", 4, "db", "db"},
		{"apps.clusternet.io/v1alpha1", "HelmChart", "", "", true, "fuzz", 2, "", "v"},
		{"apps/v1", "Service", "foo", "my-nginx-svc", false, "", 0, "", ""},
		{"apps/v1", "deployment", "foo", "my-nginx", false, "", 0, "", ""},
		{"apps.clusternet.io/v1alpha1", "Subscription", "default", "x", false, "", 0, "", ""},
		{"v1", "Namespace", "foo", "", true, "a", 0, "", ""},
		{"apps/v1", "Deployment", "foo", "", true, "bad key!", 0, "v", "v"},
		{"apps/v1", "Deployment", "", "", true, "", 5, "", ""}, // an empty selector: everything
		{"//", "Deployment", "foo", "x", false, "", 0, "", ""},
	} {
		f.Add(s.apiVersion, s.kind, s.namespace, s.name, s.selector, s.key, s.op, s.values, s.labelValue)
	}
	f.Fuzz(func(t *testing.T, apiVersion, kind, namespace, name string, bySelector bool, key string, op uint8, values, labelValue string) {
		feed := appsv1alpha1.Feed{APIVersion: apiVersion, Kind: kind, Namespace: namespace, Name: name}
		if bySelector {
			feed.FeedSelector = &metav1.LabelSelector{}
			var vs []string
			if values != "" {
				vs = strings.Split(values, ",")
			}
			switch i := int(op) % (len(selectorOperators) + 2); {
			case i < len(selectorOperators):
				feed.FeedSelector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: key, Operator: selectorOperators[i], Values: vs}}
			case i == len(selectorOperators):
				feed.FeedSelector.MatchLabels = map[string]string{key: values}
			}
		}
		src := seedSource()
		fuzzed := manifest(obj("apps/v1", "Deployment", "foo", "fuzzed", map[string]any{key: labelValue, "fuzz": labelValue}, nil))
		src.manifests[fuzzed.Name] = fuzzed
		c := chart("default", "fuzzed", appsv1alpha1.HelmChartFound, "")
		c.Labels = map[string]string{key: labelValue, "fuzz": labelValue}
		src.charts = append(src.charts, c)

		// The same feed twice: its objects appear once, under the first.
		feeds := []appsv1alpha1.Feed{feed, feed}
		got, errs := Resolve(feeds, src, Mapper())
		again, errsAgain := Resolve(feeds, src, Mapper())
		if diff := cmp.Diff(describeResolved(got, errs), describeResolved(again, errsAgain)); diff != "" {
			t.Fatalf("Resolve is not deterministic (-first +second):\n%s", diff)
		}
		if len(errs) != 0 && len(errs) != 2 {
			t.Fatalf("the same feed twice gave %d errors: %v", len(errs), errs)
		}
		for i, e := range errs {
			if e.Index != i || !slices.Contains(reasons, e.Reason) || e.Message == "" {
				t.Fatalf("error %d: %+v", i, e)
			}
			if !strings.HasPrefix(e.Error(), fmt.Sprintf("spec.feeds[%d]: ", i)) {
				t.Fatalf("error %q does not name spec.feeds[%d]", e, i)
			}
		}
		if len(errs) > 0 {
			if len(got) != 0 {
				t.Fatalf("a feed that does not resolve still resolved to %v", describeResolved(got, nil))
			}
			return
		}
		if len(got) == 0 {
			t.Fatalf("feed %+v resolved to nothing and no error", feed)
		}

		var sel labels.Selector
		if feed.FeedSelector != nil {
			var err error
			if sel, err = metav1.LabelSelectorAsSelector(feed.FeedSelector); err != nil {
				t.Fatalf("Resolve accepted selector %v, which does not parse: %v", feed.FeedSelector, err)
			}
		}
		group := Group(apiVersion)
		seen := map[string]bool{}
		for i, r := range got {
			if r.Index != 0 {
				t.Fatalf("object %s came from feed %d, not from the first feed naming it", Describe(r.Feed), r.Index)
			}
			k := ObjectKey(Group(r.Feed.APIVersion), r.Feed.Kind, r.Feed.Namespace, r.Feed.Name)
			if seen[k] {
				t.Fatalf("object %s resolved twice", k)
			}
			seen[k] = true
			if r.Feed.APIVersion != apiVersion || r.Feed.Name == "" || r.Feed.FeedSelector != nil {
				t.Fatalf("resolved feed %+v for feed %+v", r.Feed, feed)
			}
			if namespace != "" && r.Feed.Namespace != namespace {
				t.Fatalf("feed in namespace %q resolved %s", namespace, Describe(r.Feed))
			}
			if sel == nil && (r.Feed.Name != name || r.Feed.Namespace != namespace) {
				t.Fatalf("feed naming %s/%s resolved %s", namespace, name, Describe(r.Feed))
			}
			if i > 0 && sel != nil {
				prev := got[i-1].Feed
				if prev.Namespace > r.Feed.Namespace || (prev.Namespace == r.Feed.Namespace && prev.Name >= r.Feed.Name) {
					t.Fatalf("objects not sorted: %s before %s", Describe(prev), Describe(r.Feed))
				}
			}
			var objLabels map[string]string
			switch {
			case r.Chart != nil:
				if !IsChart(feed) || r.Template != nil || r.Chart.Status.Phase != appsv1alpha1.HelmChartFound ||
					r.Chart.Namespace != r.Feed.Namespace || r.Chart.Name != r.Feed.Name {
					t.Fatalf("chart %s/%s (phase %q) resolved for feed %+v as %+v", r.Chart.Namespace, r.Chart.Name, r.Chart.Status.Phase, feed, r.Feed)
				}
				objLabels = r.Chart.Labels
			case r.Template != nil:
				gvk := r.Template.GroupVersionKind()
				if gvk.Group != group || gvk.Kind != r.Feed.Kind || r.Template.GetNamespace() != r.Feed.Namespace || r.Template.GetName() != r.Feed.Name {
					t.Fatalf("template %v %s/%s resolved as %s", gvk, r.Template.GetNamespace(), r.Template.GetName(), Describe(r.Feed))
				}
				if _, ok := r.Template.Object["status"]; ok {
					t.Fatalf("template %s keeps its status", Describe(r.Feed))
				}
				objLabels = r.Template.GetLabels()
			default:
				t.Fatalf("resolved %s to neither a template nor a chart", Describe(r.Feed))
			}
			if sel != nil && !sel.Matches(labels.Set(objLabels)) {
				t.Fatalf("selector %q resolved %s, labelled %v", sel, Describe(r.Feed), objLabels)
			}
		}
		// A selector misses nothing it matches.
		if sel == nil {
			return
		}
		if IsChart(feed) {
			for _, c := range src.charts {
				if (namespace == "" || c.Namespace == namespace) && sel.Matches(labels.Set(c.Labels)) &&
					!seen[ObjectKey(group, HelmChartKind, c.Namespace, c.Name)] {
					t.Fatalf("selector %q matches HelmChart %s/%s, which is not resolved", sel, c.Namespace, c.Name)
				}
			}
			return
		}
		for _, m := range src.manifests {
			tmpl, err := Template(m)
			if err != nil {
				t.Fatal(err)
			}
			gvk := tmpl.GroupVersionKind()
			if gvk.Group != group || gvk.Kind != got[0].Feed.Kind || (namespace != "" && tmpl.GetNamespace() != namespace) {
				continue
			}
			if sel.Matches(labels.Set(tmpl.GetLabels())) && !seen[ObjectKey(group, gvk.Kind, tmpl.GetNamespace(), tmpl.GetName())] {
				t.Fatalf("selector %q matches template %s %s/%s, which is not resolved", sel, gvk.Kind, tmpl.GetNamespace(), tmpl.GetName())
			}
		}
	})
}

// describeResolved is what Resolve returned, comparable with cmp.
func describeResolved(rs []Resolved, errs []*Error) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%d %s", r.Index, Describe(r.Feed)))
	}
	for _, e := range errs {
		out = append(out, fmt.Sprintf("%s %s", e.Reason, e.Error()))
	}
	return out
}
