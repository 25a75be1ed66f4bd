package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// A Helm override with overrideChart: true is, as in upstream Clusternet, a
// JSON merge patch (RFC 7386) on the HelmChart object, such as
// {"spec": {"version": "0.2.0"}}, applied for the clusters it selects only.
// Here it may change only the fields below of the HelmChart's spec; the
// result is what the Description carries as the chart's options, and so
// what that cluster's HelmRelease installs.

// chartFieldKind is the JSON type a HelmChart spec field takes.
type chartFieldKind int

const (
	kindString chartFieldKind = iota
	kindBool
	kindInt32
)

// chartField is a HelmChart spec field a chart override may set, with the
// rules the HelmChart CRD enforces on it (an override does not go through
// the CRD's validation, so render does it).
type chartField struct {
	kind    chartFieldKind
	min     int64
	example string
	// pattern, when set, is the CRD's pattern, said as rule.
	pattern *regexp.Regexp
	rule    string
}

// repoPattern is HelmOptions.Repository's kubebuilder pattern.
var repoPattern = regexp.MustCompile(`^(https?|oci)://.+`)

var settableChartFields = map[string]chartField{
	"repo": {kind: kindString, example: `"https://charts.example.com/stable"`, pattern: repoPattern,
		rule: "an http(s):// chart repository URL or an oci:// registry reference, as a HelmChart's spec.repo"},
	"version":         {kind: kindString, example: `"0.2.0"`},
	"createNamespace": {kind: kindBool},
	"timeoutSeconds":  {kind: kindInt32, min: 1, example: "300"},
	"wait":            {kind: kindBool},
	"atomic":          {kind: kindBool},
	"skipCRDs":        {kind: kindBool},
	"plainHTTP":       {kind: kindBool},
	"historyLimit":    {kind: kindInt32, min: 0, example: "5"},
}

const notActedOn = "it is accepted on HelmCharts but not acted on by this hub (docs/api.md), so an override does not set it either"

// fixedChartFields say why an override may not change these fields.
var fixedChartFields = map[string]string{
	// Upstream Clusternet drops these two from every chart override; here
	// the override is refused instead of silently doing less than it says.
	"chart":           "an override keeps the chart's name, as in upstream Clusternet: feed another HelmChart to this cluster instead",
	"targetNamespace": "an override keeps the release's namespace, as in upstream Clusternet: feed another HelmChart to this cluster instead",
	// Credentials are read only from the HelmChart's own namespace, chosen
	// by whoever may write the HelmChart: an override is written by others
	// (a Localization in a cluster's dedicated namespace).
	"chartPullSecret": "chart pull credentials are chosen only by whoever may write the HelmChart, in its own namespace: set spec.chartPullSecret on the HelmChart",
	"upgradeAtomic":   notActedOn,
	"waitForJob":      notActedOn,
	"disableHooks":    notActedOn,
	"force":           notActedOn,
	"replace":         notActedOn,
	"replaceCRDs":     notActedOn,
}

// credentialBound are the fields that say where, and how, a HelmChart's
// chart pull credentials are sent: changing them would send the
// credentials of the HelmChart's repository to another host, or in clear
// text, which its author did not choose.
var credentialBound = []string{"repo", "plainHTTP"}

// exampleChartPatch is what the errors show a chart override to look like.
const exampleChartPatch = `{"spec": {"version": "0.2.0"}}`

// patchChart applies one overrideChart override's value (JSON or YAML) to
// opts, the spec of HelmChart chart as the overrides before it left it.
// Every field is checked before any is set: a value that fails changes
// nothing.
func patchChart(opts appsv1alpha1.HelmOptions, chart *appsv1alpha1.HelmChart, value string) (appsv1alpha1.HelmOptions, error) {
	raw, err := yaml.YAMLToJSON([]byte(value))
	if err != nil {
		return opts, fmt.Errorf("value is neither JSON nor YAML: %w", err)
	}
	top, err := decodeNumbers(raw)
	if err != nil {
		return opts, fmt.Errorf("value is not a JSON object: %w", err)
	}
	obj, ok := top.(map[string]any)
	if !ok {
		return opts, fmt.Errorf("value must be a merge patch on the HelmChart, an object such as %s, not %s", exampleChartPatch, describeJSON(top))
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		switch {
		case k == "spec":
		case k == "metadata":
			return opts, errors.New("value sets metadata: a chart override changes only the HelmChart's spec here (a HelmRelease takes its labels from its Description): remove metadata from the value")
		case isChartField(k):
			return opts, fmt.Errorf("value sets %q at the top level: a chart override is a merge patch on the whole HelmChart, so spec fields go under spec: write %s", k, underSpec(k, obj[k]))
		default:
			return opts, fmt.Errorf("value sets %q, which is not part of a HelmChart's spec: a chart override is a merge patch on the HelmChart, such as %s: remove %q", k, exampleChartPatch, k)
		}
	}
	specValue, ok := obj["spec"]
	if !ok {
		return opts, nil
	}
	spec, ok := specValue.(map[string]any)
	if !ok {
		return opts, fmt.Errorf("value sets spec to %s: it must be an object of HelmChart spec fields, such as %s", describeJSON(specValue), exampleChartPatch)
	}

	fields, err := optionsFields(opts)
	if err != nil {
		return opts, err
	}
	for _, k := range slices.Sorted(maps.Keys(spec)) {
		v := spec[k]
		if why, fixed := fixedChartFields[k]; fixed {
			if !unchanged(opts, k, v) {
				return opts, fmt.Errorf("spec.%s cannot be overridden (the value sets it to %s): %s; remove spec.%s from the value", k, jsonText(v), why, k)
			}
			continue
		}
		f, ok := settableChartFields[k]
		if !ok {
			return opts, unknownChartField(k)
		}
		if chart.Spec.ChartPullSecret != nil && slices.Contains(credentialBound, k) && !unchanged(opts, k, v) {
			return opts, fmt.Errorf("spec.%s cannot be overridden for HelmChart %s/%s (the value sets it to %s): the HelmChart has spec.chartPullSecret, "+
				"and its credentials go only to the repository, and in the way, the HelmChart names: remove spec.%s from the value, "+
				"or feed this cluster a HelmChart of that repository (with credentials of its own if it needs them)",
				k, chart.Namespace, chart.Name, jsonText(v), k)
		}
		if err := f.check(k, v); err != nil {
			return opts, err
		}
		fields[k] = v
	}
	return optionsFrom(fields)
}

// check says why v is not a value of field k.
func (f chartField) check(k string, v any) error {
	if v == nil {
		return fmt.Errorf("spec.%s is null, which would remove it: an override does not remove HelmChart fields: set the value you want, such as %s", k, f.exampleOr(`""`))
	}
	switch f.kind {
	case kindString:
		s, ok := v.(string)
		if !ok {
			fix := "such as " + f.example
			if n, isNumber := v.(json.Number); isNumber {
				// YAML reads version: 1.10 as the number 1.1.
				fix = fmt.Sprintf("quote it, as %q", n.String())
			}
			return fmt.Errorf("spec.%s is %s, %s: it must be a string: %s", k, jsonText(v), describeJSON(v), fix)
		}
		if f.pattern != nil && !f.pattern.MatchString(s) {
			return fmt.Errorf("spec.%s is %q: it must be %s, such as %s", k, s, f.rule, f.example)
		}
	case kindBool:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("spec.%s is %s, %s: it must be true or false", k, jsonText(v), describeJSON(v))
		}
	case kindInt32:
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("spec.%s is %s, %s: it must be a whole number, such as %s", k, jsonText(v), describeJSON(v), f.example)
		}
		i, err := n.Int64()
		if err != nil {
			return fmt.Errorf("spec.%s is %s: it must be a whole number, such as %s", k, n, f.example)
		}
		if i < f.min || i > math.MaxInt32 {
			return fmt.Errorf("spec.%s is %d: it must be at least %d and at most %d", k, i, f.min, math.MaxInt32)
		}
	}
	return nil
}

func (f chartField) exampleOr(def string) string {
	switch {
	case f.example != "":
		return f.example
	case f.kind == kindBool:
		return "false"
	default:
		return def
	}
}

func isChartField(k string) bool {
	_, settable := settableChartFields[k]
	_, fixed := fixedChartFields[k]
	return settable || fixed
}

// unknownChartField names the field meant when k is a HelmChart spec field
// under another name (the Go name, ChartVersion, for version).
func unknownChartField(k string) error {
	settable := slices.Sorted(maps.Keys(settableChartFields))
	meant := map[string]string{"chartversion": "version", "repository": "repo"}
	for _, name := range settable {
		meant[strings.ToLower(name)] = name
	}
	hint := ""
	if name, ok := meant[strings.ToLower(k)]; ok {
		hint = fmt.Sprintf(": did you mean spec.%s?", name)
	}
	return fmt.Errorf("spec.%s is not a field of a HelmChart's spec%s (an override may set %s)", k, hint, strings.Join(settable, ", "))
}

// unchanged says whether setting field k to v leaves opts as they are.
func unchanged(opts appsv1alpha1.HelmOptions, k string, v any) bool {
	fields, err := optionsFields(opts)
	if err != nil {
		return false
	}
	fields[k] = v
	next, err := optionsFrom(fields)
	return err == nil && equality.Semantic.DeepEqual(next, opts)
}

// optionsFields are opts as their JSON fields.
func optionsFields(opts appsv1alpha1.HelmOptions) (map[string]any, error) {
	raw, err := json.Marshal(opts)
	if err != nil {
		return nil, err
	}
	v, err := decodeNumbers(raw)
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	return m, nil
}

// optionsFrom decodes JSON fields back into options, refusing a field the
// options do not have.
func optionsFrom(fields map[string]any) (appsv1alpha1.HelmOptions, error) {
	var out appsv1alpha1.HelmOptions
	raw, err := json.Marshal(fields)
	if err != nil {
		return out, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return out, errors.Join(errors.New("the overridden spec is not a HelmChart's spec"), err)
	}
	return out, nil
}

func decodeNumbers(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func describeJSON(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// underSpec is {"spec": {k: v}}, the way to write field k.
func underSpec(k string, v any) string {
	return jsonText(map[string]any{"spec": map[string]any{k: v}})
}
