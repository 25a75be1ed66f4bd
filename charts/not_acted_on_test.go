package charts

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"
)

// upstreamObjects are the upstream-shaped objects of every kind that
// pkg/apis decodes (pkg/apis/testdata/upstream/README.md).
var upstreamObjects = filepath.Join("..", "pkg", "apis", "testdata", "upstream")

// notActedOnPrefix names the hub chart's policies that warn of upstream
// fields accepted but not acted on.
const notActedOnPrefix = "clusternet-not-acted-on-"

// kindOf is the kind of each resource those policies match.
var kindOf = map[string]string{
	"subscriptions": "Subscription", "localizations": "Localization", "globalizations": "Globalization",
	"helmcharts": "HelmChart", "helmreleases": "HelmRelease", "feedinventories": "FeedInventory",
	"managedclusters": "ManagedCluster",
}

// resourceOf is kindOf the other way round.
func resourceOf(kind string) string {
	for r, k := range kindOf {
		if k == kind {
			return r
		}
	}
	return ""
}

// TestNotActedOnWarnings runs the hub chart's not-acted-on policies, as the
// parent's apiserver does, on the upstream-shaped object of every kind: each
// upstream field this hub does not act on gets one warning naming it, and
// nothing else does. The policies only warn, and skip writes that leave the
// spec as it was and the hub's own writes.
func TestNotActedOnWarnings(t *testing.T) {
	policies := notActedOnPolicies(t)

	hubUser := "system:serviceaccount:" + Namespace + ":clusternet-hub"
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"subscription.yaml", []string{
			"spec.dividingScheduling.dynamicDividing.topologySpreadConstraints",
		}},
		{"localization.yaml", nil},
		{"globalization.yaml", nil},
		{"helmchart.yaml", []string{"spec.disableHooks", "spec.force", "spec.replace", "spec.replaceCRDs", "spec.upgradeAtomic", "spec.waitForJob"}},
		{"helmrelease.yaml", []string{"spec.disableHooks", "spec.force", "spec.replace", "spec.replaceCRDs", "spec.upgradeAtomic", "spec.waitForJob"}},
		{"feedinventory.yaml", []string{"spec.feeds[].replicaRequirements"}},
		{"managedcluster.yaml", []string{"spec.clusterInitBaseName"}},
		{"base.yaml", nil},
		{"description.yaml", nil},
		{"manifest.yaml", nil},
		{"clusterregistrationrequest.yaml", nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			obj := readObject(t, filepath.Join(upstreamObjects, tc.file))
			got := warnings(t, policies, admission.Create, obj, nil, "alice")
			if diff := cmp.Diff(tc.want, fieldsOf(t, got)); diff != "" {
				t.Errorf("warnings on create (-want +got):\n%s\nall: %q", diff, got)
			}

			changed := obj.DeepCopy()
			changed.SetLabels(map[string]string{"changed": "spec"})
			if err := unstructured.SetNestedField(changed.Object, "x", "spec", "clusternetTestChanged"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, warnings(t, policies, admission.Update, changed, obj, "alice")); diff != "" {
				t.Errorf("an update of the spec warns otherwise than the create (-create +update):\n%s", diff)
			}
			if got := warnings(t, policies, admission.Update, withLabel(obj), obj, "alice"); len(got) != 0 {
				t.Errorf("an update that leaves the spec as it was warns: %q", got)
			}
			if got := warnings(t, policies, admission.Create, obj, nil, hubUser); len(got) != 0 {
				t.Errorf("clusternet-hub's own create warns: %q", got)
			}
		})
	}

	t.Run("false or unset", func(t *testing.T) {
		for _, o := range []string{`
apiVersion: apps.clusternet.io/v1alpha1
kind: Subscription
metadata: {name: app-demo, namespace: default}
spec:
  schedulingBySubGroup: false
  subscribers: [{clusterAffinity: {matchLabels: {clusters.clusternet.io/cluster-id: dc91021d-2361-4f6d-a404-7c33b9e01118}}}]
  feeds: [{apiVersion: apps/v1, kind: Deployment, feedSelector: {matchLabels: {clusternet-app: multi-cluster-nginx}}}]
`, `
apiVersion: apps.clusternet.io/v1alpha1
kind: Globalization
metadata: {name: helm-values}
spec:
  feed: {apiVersion: apps.clusternet.io/v1alpha1, kind: HelmChart, namespace: default, name: mysql}
  overrides: [{type: Helm, value: '{"replicaCount":2}', overrideChart: false}]
`, `
apiVersion: apps.clusternet.io/v1alpha1
kind: HelmChart
metadata: {name: mysql, namespace: default}
spec: {repo: https://charts.bitnami.com/bitnami, chart: mysql, targetNamespace: abc, force: false, atomic: true}
`} {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(o), &obj.Object); err != nil {
				t.Fatal(err)
			}
			if got := warnings(t, policies, admission.Create, obj, nil, "alice"); len(got) != 0 {
				t.Errorf("%s %s warns: %q", obj.GetKind(), obj.GetName(), got)
			}
		}
	})
}

// TestNotActedOnDocumented checks docs/api.md's table of the fields accepted
// but not acted on against the policies: the same fields of the same kinds.
func TestNotActedOnDocumented(t *testing.T) {
	var fromPolicies []string
	for _, p := range notActedOnPolicies(t) {
		for _, v := range p.policy.Spec.Validations {
			for _, r := range p.policy.Spec.MatchConstraints.ResourceRules {
				for _, res := range r.Resources {
					fromPolicies = append(fromPolicies, kindOf[res]+" "+fieldOf(t, v.Message))
				}
			}
		}
	}
	sort.Strings(fromPolicies)

	doc, err := os.ReadFile(filepath.Join("..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "### Accepted, not acted on yet")
	if !ok {
		t.Fatal(`docs/api.md has no "### Accepted, not acted on yet"`)
	}
	section, _, _ = strings.Cut(section, "\n#")
	row := regexp.MustCompile("(?m)^\\| ([A-Za-z, ]+) \\| `([^`]+)` \\|")
	var fromDoc []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		for _, kind := range strings.Split(m[1], ",") {
			fromDoc = append(fromDoc, strings.TrimSpace(kind)+" "+m[2])
		}
	}
	sort.Strings(fromDoc)
	if diff := cmp.Diff(fromPolicies, fromDoc); diff != "" {
		t.Errorf("docs/api.md, Accepted, not acted on yet (-policies +docs):\n%s", diff)
	}
}

type notActedOn struct {
	policy    *admissionregistrationv1.ValidatingAdmissionPolicy
	validator validating.Validator
}

// notActedOnPolicies renders the hub chart and compiles its not-acted-on
// policies as the apiserver does when they are created, checking each is
// bound to warn only and that a failure to evaluate never refuses a write.
func notActedOnPolicies(t *testing.T) []notActedOn {
	t.Helper()
	objects := mustTemplate(t, Hub, nil)
	var out []notActedOn
	for _, key := range sorted(keys(objects)) {
		name, ok := strings.CutPrefix(key, "ValidatingAdmissionPolicy/"+notActedOnPrefix)
		if !ok {
			continue
		}
		p := decode[admissionregistrationv1.ValidatingAdmissionPolicy](t, objects, key)
		b := decode[admissionregistrationv1.ValidatingAdmissionPolicyBinding](t, objects, "ValidatingAdmissionPolicyBinding/"+notActedOnPrefix+name)
		if b.Spec.PolicyName != p.Name || !cmp.Equal(b.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn}) {
			t.Errorf("binding %s: policy %q, actions %v: want %s, [Warn]", b.Name, b.Spec.PolicyName, b.Spec.ValidationActions, p.Name)
		}
		if p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy != admissionregistrationv1.Ignore {
			t.Errorf("policy %s: failurePolicy %v, want Ignore: a warning must never refuse a write", p.Name, p.Spec.FailurePolicy)
		}
		out = append(out, notActedOn{policy: p, validator: compile(t, p)})
	}
	if len(out) == 0 {
		t.Fatalf("the hub chart renders no ValidatingAdmissionPolicy %s*", notActedOnPrefix)
	}
	return out
}

// compile is what the apiserver's ValidatingAdmissionPolicy plugin does
// with a policy (k8s.io/apiserver's validating.compilePolicy), with the
// environment it checks new expressions in.
func compile(t *testing.T, p *admissionregistrationv1.ValidatingAdmissionPolicy) validating.Validator {
	t.Helper()
	compiler, err := plugincel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		t.Fatal(err)
	}
	var opts plugincel.OptionalVariableDeclarations
	compiler.CompileAndStoreVariables(nil, opts, environment.NewExpressions)
	match := make([]plugincel.ExpressionAccessor, len(p.Spec.MatchConditions))
	for i := range p.Spec.MatchConditions {
		match[i] = (*matchconditions.MatchCondition)(&p.Spec.MatchConditions[i])
	}
	validations := make([]plugincel.ExpressionAccessor, len(p.Spec.Validations))
	messages := make([]plugincel.ExpressionAccessor, len(p.Spec.Validations))
	for i, v := range p.Spec.Validations {
		validations[i] = &validating.ValidationCondition{Expression: v.Expression, Message: v.Message}
		if v.MessageExpression != "" {
			messages[i] = &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression}
		}
	}
	conditions := compiler.CompileCondition(validations, opts, environment.NewExpressions)
	matcher := compiler.CompileCondition(match, opts, environment.NewExpressions)
	for _, errs := range [][]error{conditions.CompilationErrors(), matcher.CompilationErrors()} {
		for _, err := range errs {
			t.Errorf("policy %s: %v", p.Name, err)
		}
	}
	return validating.NewValidator(conditions,
		matchconditions.NewMatcher(matcher, p.Spec.FailurePolicy, "policy", "validate", p.Name),
		compiler.CompileCondition(nil, opts, environment.NewExpressions),
		compiler.CompileCondition(messages, opts, environment.NewExpressions),
		p.Spec.FailurePolicy, nil)
}

// warnings are the messages of the warnings a write gets from the policies
// matching its resource. An expression that fails to evaluate fails the test.
func warnings(t *testing.T, policies []notActedOn, op admission.Operation, obj, old *unstructured.Unstructured, username string) []string {
	t.Helper()
	gvk := obj.GroupVersionKind()
	gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: resourceOf(gvk.Kind)}
	var oldObj runtime.Object
	if old != nil {
		oldObj = old
	}
	attrs := admission.NewAttributesRecord(obj, oldObj, gvk, obj.GetNamespace(), obj.GetName(), gvr, "", op, nil, false, &user.DefaultInfo{Name: username})
	versioned := &admission.VersionedAttributes{Attributes: attrs, VersionedKind: gvk,
		VersionedObject: admission.NewLazyObject(obj), VersionedOldObject: admission.NewLazyObject(oldObj)}
	var out []string
	for _, p := range policies {
		if !matches(p.policy, gvr, op) {
			continue
		}
		res := p.validator.Validate(context.Background(), gvr, versioned, nil, nil, celconfig.RuntimeCELCostBudget, nil)
		for _, d := range res.Decisions {
			switch {
			case d.Evaluation == validating.EvalError:
				t.Errorf("policy %s on %s %s: %s", p.policy.Name, gvk.Kind, obj.GetName(), d.Message)
			case d.Action == validating.ActionDeny:
				out = append(out, d.Message)
			}
		}
	}
	sort.Strings(out)
	return out
}

func matches(p *admissionregistrationv1.ValidatingAdmissionPolicy, gvr schema.GroupVersionResource, op admission.Operation) bool {
	for _, r := range p.Spec.MatchConstraints.ResourceRules {
		if contains(r.APIGroups, gvr.Group) && contains(r.APIVersions, gvr.Version) && contains(r.Resources, gvr.Resource) &&
			contains(r.Operations, admissionregistrationv1.OperationType(op)) {
			return true
		}
	}
	return false
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// fieldOf is the field a warning names: what comes before " is accepted but
// not acted on yet: ". A warning that does not say so fails the test.
func fieldOf(t *testing.T, message string) string {
	t.Helper()
	field, why, ok := strings.Cut(message, " is accepted but not acted on yet: ")
	if !ok || !strings.HasPrefix(field, "spec.") || !strings.HasSuffix(why, "(docs/api.md)") {
		t.Errorf("warning %q: want %q, then what happens instead, then (docs/api.md)", message, "<field> is accepted but not acted on yet: ")
	}
	return field
}

func fieldsOf(t *testing.T, messages []string) []string {
	var out []string
	for _, m := range messages {
		out = append(out, fieldOf(t, m))
	}
	sort.Strings(out)
	return out
}

func readObject(t *testing.T, file string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &obj.Object); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return obj
}

func withLabel(obj *unstructured.Unstructured) *unstructured.Unstructured {
	out := obj.DeepCopy()
	out.SetLabels(map[string]string{"only": "metadata"})
	return out
}
