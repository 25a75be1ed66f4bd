// Package render turns one Base into the specs of its Descriptions: the
// templates in feed order with divided replicas and overrides applied
// (Generic), and the HelmCharts with their merged values and their spec as
// chart overrides leave it (Helm). It is pure: the controller reads the
// objects, render decides what they become.
package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	serializerjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
	"github.com/clusternet/clusternet/pkg/apps/feeds"
	"github.com/clusternet/clusternet/pkg/apps/override"
)

// Reasons of a failed render, as the Base's Rendered condition and the
// Subscription's say them.
const (
	// ReasonOverrideFailed: an override does not apply to its feed.
	ReasonOverrideFailed = "OverrideFailed"
	// ReasonRenderFailed: a template (with its divided replicas) is not a valid object.
	ReasonRenderFailed = "RenderFailed"
)

// Object is one of a Base's feeds with what it resolved to: a template or
// a HelmChart.
type Object struct {
	Feed     appsv1alpha1.Feed
	Template *unstructured.Unstructured
	Chart    *appsv1alpha1.HelmChart
}

func (o Object) labels() map[string]string {
	if o.Chart != nil {
		return o.Chart.Labels
	}
	if o.Template != nil {
		return o.Template.GetLabels()
	}
	return nil
}

// ReplicaSetting is a feed's divided replica count in one cluster, as the
// scheduler wrote it on the Base.
type ReplicaSetting struct {
	Feed     string `json:"feed"`
	Path     string `json:"path"`
	Replicas int32  `json:"replicas"`
}

// Ref identifies one override object at one generation.
type Ref struct {
	Kind       string    `json:"kind"`
	Namespace  string    `json:"namespace,omitempty"`
	Name       string    `json:"name"`
	UID        types.UID `json:"uid"`
	Generation int64     `json:"generation"`
}

func (r Ref) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Override is a Globalization or Localization as rendering uses it.
type Override struct {
	Ref
	Policy  appsv1alpha1.OverridePolicy
	Feed    appsv1alpha1.Feed
	Configs []appsv1alpha1.OverrideConfig
}

// Input is everything one Base renders from.
type Input struct {
	// Objects in the Base's feed order.
	Objects  []Object
	Replicas []ReplicaSetting
	// Overrides in the order they apply: Globalizations, then Localizations,
	// each by priority (lower first), creation time and name.
	Overrides []Override
	// Salt is folded into the inputs hash: what else makes a change (the
	// Subscription's uid and generation).
	Salt string
}

// Rendered is one Description's spec and what it was made from.
type Rendered struct {
	Spec appsv1alpha1.DescriptionSpec
	// InputsHash covers everything but the overrides.
	InputsHash string
	// Applied are the overrides that changed something in it, in order.
	Applied []Ref
}

// Error is a render that failed; the Description keeps its last good spec.
type Error struct {
	Reason string
	// Override and Config are set when an override failed.
	Override *Ref
	Config   int
	Type     appsv1alpha1.OverrideType
	// OverrideChart is the failing override's overrideChart.
	OverrideChart bool
	Feed          appsv1alpha1.Feed
	// Field is set when the override object itself is at fault (not one of its overrides).
	Field string
	Err   error
}

func (e *Error) Error() string {
	if e.Override != nil && e.Field != "" {
		return fmt.Sprintf("%s %s: %v: fix or delete the override", e.Override, e.Field, e.Err)
	}
	if e.Override == nil && feeds.IsChart(e.Feed) {
		return fmt.Sprintf("%s: %v", feeds.Describe(e.Feed), e.Err) // the HelmChart's errors name their fix
	}
	if e.Override == nil {
		return fmt.Sprintf("%s: %v: fix the template", feeds.Describe(e.Feed), e.Err)
	}
	typ := string(e.Type)
	if e.OverrideChart {
		typ += ", overrideChart"
	}
	return fmt.Sprintf("%s spec.overrides[%d] (%s) on %s: %v: fix or delete the override", e.Override, e.Config, typ, feeds.Describe(e.Feed), e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsChart says whether an object goes to the Helm Description.
func (o Object) IsChart() bool { return feeds.IsChart(o.Feed) }

// Matches says whether override feed of selects object o.
func Matches(of appsv1alpha1.Feed, o Object) (bool, error) {
	if feeds.Group(of.APIVersion) != feeds.Group(o.Feed.APIVersion) || of.Kind != o.Feed.Kind {
		return false, nil
	}
	if of.Name != "" {
		return of.Name == o.Feed.Name && of.Namespace == o.Feed.Namespace, nil
	}
	if of.Namespace != "" && of.Namespace != o.Feed.Namespace {
		return false, nil
	}
	if of.FeedSelector == nil {
		return false, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(of.FeedSelector)
	if err != nil {
		return false, err
	}
	return sel.Matches(labels.Set(o.labels())), nil
}

// Applicable are the overrides that select an object going to the Generic
// (chart false) or Helm (chart true) Description, in order. An override
// whose selector does not parse is returned with the error.
func Applicable(in Input, chart bool) ([]Override, error) {
	var out []Override
	for _, ov := range in.Overrides {
		for _, o := range in.Objects {
			if o.IsChart() != chart {
				continue
			}
			ok, err := Matches(ov.Feed, o)
			if err != nil {
				return nil, &Error{Reason: ReasonOverrideFailed, Override: &ov.Ref, Feed: ov.Feed, Field: "spec.feed.feedSelector", Err: err}
			}
			if ok {
				out = append(out, ov)
				break
			}
		}
	}
	return out, nil
}

// InputsHash hashes what a Description is made from, overrides aside.
func InputsHash(in Input, chart bool) string {
	h := sha256.New()
	write := func(v any) {
		b, _ := json.Marshal(v)
		h.Write(b)
		h.Write([]byte{0})
	}
	write(in.Salt)
	if chart {
		// Helm Descriptions carry the HelmChart's spec since this mark:
		// those rendered before are rendered again once.
		write("chart-options")
	}
	for _, o := range in.Objects {
		if o.IsChart() != chart {
			continue
		}
		write(o.Feed)
		switch {
		case o.Chart != nil:
			write([]any{o.Chart.UID, o.Chart.Generation, o.Chart.Labels})
		case o.Template != nil:
			write(o.Template.Object)
		}
		for _, r := range in.Replicas {
			if r.Feed == feeds.Key(o.Feed) {
				write(r)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Generic renders the Generic Description, or returns nil when the Base has
// no feed for it.
func Generic(in Input) (*Rendered, error) {
	overrides, err := Applicable(in, false)
	if err != nil {
		return nil, err
	}
	out := &Rendered{Spec: appsv1alpha1.DescriptionSpec{Deployer: appsv1alpha1.DescriptionGenericDeployer}, InputsHash: InputsHash(in, false)}
	applied := map[types.UID]bool{}
	for _, o := range in.Objects {
		if o.IsChart() {
			continue
		}
		if o.Template == nil {
			return nil, &Error{Reason: ReasonRenderFailed, Feed: o.Feed, Err: errors.New("no template")}
		}
		raw, err := json.Marshal(o.Template.Object)
		if err != nil {
			return nil, &Error{Reason: ReasonRenderFailed, Feed: o.Feed, Err: err}
		}
		if err := validate(raw, o.Template); err != nil {
			return nil, &Error{Reason: ReasonRenderFailed, Feed: o.Feed, Err: err}
		}
		for _, r := range in.Replicas {
			if r.Feed != feeds.Key(o.Feed) {
				continue
			}
			patch := fmt.Sprintf(`[{"op":"add","path":%q,"value":%d}]`, r.Path, r.Replicas)
			if raw, err = override.Apply(raw, appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, Value: patch}); err != nil {
				return nil, &Error{Reason: ReasonRenderFailed, Feed: o.Feed, Err: fmt.Errorf("writing %d divided replicas at %s: %w", r.Replicas, r.Path, err)}
			}
		}
		for _, ov := range overrides {
			if ok, _ := Matches(ov.Feed, o); !ok {
				continue
			}
			for i, cfg := range ov.Configs {
				if cfg.OverrideChart {
					return nil, &Error{Reason: ReasonOverrideFailed, Override: &ov.Ref, Config: i, Type: cfg.Type, OverrideChart: true, Feed: o.Feed,
						Err: errors.New("overrideChart: true patches the spec of a HelmChart and applies only to HelmChart feeds: remove overrideChart from this override, or set it to false")}
				}
				if cfg.Type == appsv1alpha1.HelmType {
					return nil, &Error{Reason: ReasonOverrideFailed, Override: &ov.Ref, Config: i, Type: cfg.Type, Feed: o.Feed,
						Err: errors.New("a Helm override sets chart values and applies only to HelmChart feeds: use JSONPatch or MergePatch for other kinds")}
				}
				next, err := override.Apply(raw, cfg)
				if err == nil {
					err = validate(next, o.Template)
				}
				if err != nil {
					return nil, &Error{Reason: ReasonOverrideFailed, Override: &ov.Ref, Config: i, Type: cfg.Type, Feed: o.Feed, Err: err}
				}
				raw = next
			}
			applied[ov.UID] = true
		}
		norm, err := Normalize(raw)
		if err != nil {
			return nil, &Error{Reason: ReasonRenderFailed, Feed: o.Feed, Err: err}
		}
		out.Spec.Raw = append(out.Spec.Raw, runtime.RawExtension{Raw: norm})
	}
	if len(out.Spec.Raw) == 0 {
		return nil, nil
	}
	out.Applied = inOrder(overrides, applied)
	return out, nil
}

// Helm renders the Helm Description, or returns nil when the Base has no
// HelmChart feed.
func Helm(in Input) (*Rendered, error) {
	overrides, err := Applicable(in, true)
	if err != nil {
		return nil, err
	}
	out := &Rendered{Spec: appsv1alpha1.DescriptionSpec{Deployer: appsv1alpha1.DescriptionHelmDeployer}, InputsHash: InputsHash(in, true)}
	applied := map[types.UID]bool{}
	for _, o := range in.Objects {
		if !o.IsChart() {
			continue
		}
		// Values and the chart's spec are two documents: each override
		// changes one of them, in the order overrides apply, so the last
		// one to set a value or a field wins.
		values := map[string]any{}
		opts := o.Chart.Spec.HelmOptions.DeepCopy()
		for _, ov := range overrides {
			if ok, _ := Matches(ov.Feed, o); !ok {
				continue
			}
			for i, cfg := range ov.Configs {
				fail := func(err error) error {
					return &Error{Reason: ReasonOverrideFailed, Override: &ov.Ref, Config: i, Type: cfg.Type, OverrideChart: cfg.OverrideChart, Feed: o.Feed, Err: err}
				}
				switch {
				case cfg.Type != appsv1alpha1.HelmType && cfg.OverrideChart:
					return nil, fail(fmt.Errorf("overrideChart: true takes type Helm, not %s: set type: Helm and give a merge patch on the HelmChart, such as %s", cfg.Type, exampleChartPatch))
				case cfg.Type != appsv1alpha1.HelmType:
					return nil, fail(fmt.Errorf("a HelmChart feed takes overrides of type Helm (chart values), not %s: set type: Helm and give the values", cfg.Type))
				case cfg.OverrideChart:
					next, err := patchChart(*opts, o.Chart, cfg.Value)
					if err != nil {
						return nil, fail(err)
					}
					opts = &next
				default:
					if err := override.MergeValues(values, cfg.Value); err != nil {
						return nil, fail(err)
					}
				}
			}
			applied[ov.UID] = true
		}
		raw, err := override.ValuesJSON(values)
		if err != nil {
			return nil, &Error{Reason: ReasonRenderFailed, Feed: o.Feed, Err: err}
		}
		out.Spec.Charts = append(out.Spec.Charts, appsv1alpha1.ChartReference{Namespace: o.Feed.Namespace, Name: o.Feed.Name, Options: opts})
		out.Spec.ChartRaw = append(out.Spec.ChartRaw, raw)
	}
	if len(out.Spec.Charts) == 0 {
		return nil, nil
	}
	out.Applied = inOrder(overrides, applied)
	return out, nil
}

// inOrder are the applied overrides in the order they apply.
func inOrder(overrides []Override, applied map[types.UID]bool) []Ref {
	var out []Ref
	for _, ov := range overrides {
		if applied[ov.UID] {
			out = append(out, ov.Ref)
		}
	}
	return out
}

// strict decodes built-in kinds rejecting unknown fields and wrong types.
var strict = serializerjson.NewSerializerWithOptions(serializerjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
	serializerjson.SerializerOptions{Strict: true})

// validate checks that raw is still the object the template is (same
// apiVersion, kind, namespace and name) and, for kinds the hub knows,
// that it decodes as that kind without unknown fields.
func validate(raw []byte, tmpl *unstructured.Unstructured) error {
	got := &unstructured.Unstructured{}
	if err := got.UnmarshalJSON(raw); err != nil {
		return fmt.Errorf("the result is not a Kubernetes object: %w", err)
	}
	for _, f := range []struct{ name, was, is string }{
		{"apiVersion", tmpl.GetAPIVersion(), got.GetAPIVersion()},
		{"kind", tmpl.GetKind(), got.GetKind()},
		{"metadata.namespace", tmpl.GetNamespace(), got.GetNamespace()},
		{"metadata.name", tmpl.GetName(), got.GetName()},
	} {
		if f.was != f.is {
			return fmt.Errorf("%s changed from %q to %q: overrides must not change which object this is", f.name, f.was, f.is)
		}
	}
	if _, _, err := strict.Decode(raw, nil, nil); err != nil && !runtime.IsNotRegisteredError(err) {
		return fmt.Errorf("the result is not a valid %s %s: %w", tmpl.GetAPIVersion(), tmpl.GetKind(), trimStrict(err))
	}
	return nil
}

func trimStrict(err error) error {
	msg := strings.TrimPrefix(err.Error(), "strict decoding error: ")
	return errors.New(msg)
}

// Normalize re-encodes JSON with sorted keys and numbers as written, the
// way the parent's API server stores it, so rendered and stored specs
// compare byte for byte.
func Normalize(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
