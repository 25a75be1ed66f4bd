package override

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// overrideTypes are every type Apply is given, indexed by the fuzzer's byte;
// the last is a type nobody defined.
var overrideTypes = []appsv1alpha1.OverrideType{
	appsv1alpha1.JSONPatchType, appsv1alpha1.MergePatchType,
	appsv1alpha1.FieldJSONPatchType, appsv1alpha1.FieldMergePatchType,
	appsv1alpha1.HelmType, "Strategic",
}

// FuzzApply applies any override of any type to any object. Invariants:
// it never panics; it either fails with an *Error naming the override's
// type (and, for Field* types, the field), returning no object, or returns
// valid JSON; it never changes its input; it is deterministic; applying an
// object that is not JSON fails; a merge patch applied twice is the merge
// patch applied once (RFC 7386 is idempotent).
func FuzzApply(f *testing.F) {
	// The unit tests' overrides, each under its own type.
	for _, tc := range []struct {
		obj                    string
		typ                    appsv1alpha1.OverrideType
		value, field, fieldFmt string
	}{
		{deployment, appsv1alpha1.JSONPatchType, `[{"op":"replace","path":"/spec/replicas","value":1}]`, "", ""},
		{deployment, appsv1alpha1.JSONPatchType, "- op: add\n  path: /metadata/labels/tier\n  value: edge\n- op: replace\n  path: /spec/template/spec/containers/0/image\n  value: nginx:1.25\n- op: remove\n  path: /metadata/labels/app\n", "", ""},
		{deployment, appsv1alpha1.JSONPatchType, `[{"op":"test","path":"/spec/replicas","value":3},{"op":"copy","from":"/metadata/labels","path":"/spec/template/metadata"}]`, "", ""},
		{deployment, appsv1alpha1.JSONPatchType, `[{"op":"move","from":"/metadata/labels","path":"/metadata/annotations"}]`, "", ""},
		{deployment, appsv1alpha1.JSONPatchType, `[{"op":"add","path":"/spec/template/spec/containers/-","value":{"name":"side"}}]`, "", ""},
		{deployment, appsv1alpha1.JSONPatchType, `[{"op":"replace","path":"/spec/template/spec/containers/3/image","value":"x"}]`, "", ""},
		{deployment, appsv1alpha1.JSONPatchType, `[]`, "", ""},
		{"not json", appsv1alpha1.JSONPatchType, `[]`, "", ""},
		{deployment, appsv1alpha1.MergePatchType, "metadata:\n  labels:\n    app: null\n    zone: a\nspec:\n  replicas: 5\n", "", ""},
		{deployment, appsv1alpha1.MergePatchType, `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"busybox"}]}}}}`, "", ""},
		{deployment, appsv1alpha1.MergePatchType, "spec: [unclosed", "", ""},
		{configMap, appsv1alpha1.FieldMergePatchType, `{"server":{"port":8080}}`, "/data/config.yaml", ""},
		{configMap, appsv1alpha1.FieldJSONPatchType, "- op: replace\n  path: /server/tls\n  value: true\n", "/data/config.yaml", FormatYAML},
		{configMap, appsv1alpha1.FieldJSONPatchType, `[{"op":"replace","path":"/debug","value":true}]`, "/data/settings.json", FormatJSON},
		{configMap, appsv1alpha1.FieldMergePatchType, `{"b":2}`, "/data/flat.json", FormatJSON},
		{configMap, appsv1alpha1.FieldMergePatchType, `{"a":1}`, "/data/empty.yaml", ""},
		{configMap, appsv1alpha1.FieldMergePatchType, `{"a":1}`, "/data/number", FormatJSON},
		{`{"data":{"a/b":"x: 1\n"}}`, appsv1alpha1.FieldMergePatchType, `{"x":2}`, "/data/a~1b", ""},
		{`{"data":["x: 1\n"]}`, appsv1alpha1.FieldMergePatchType, `{"x":2}`, "/data/0", ""},
		{configMap, appsv1alpha1.FieldMergePatchType, `{"a":1}`, "/data/config.yaml", "TOML"},
		{deployment, appsv1alpha1.HelmType, `{"a":1}`, "", ""},
	} {
		f.Add([]byte(tc.obj), typeIndex(tc.typ), tc.value, tc.field, tc.fieldFmt)
	}
	f.Fuzz(func(t *testing.T, obj []byte, typ uint8, value, fieldPath, fieldFormat string) {
		cfg := appsv1alpha1.OverrideConfig{
			Type:        overrideTypes[int(typ)%len(overrideTypes)],
			Value:       value,
			FieldPath:   fieldPath,
			FieldFormat: fieldFormat,
		}
		before := bytes.Clone(obj)
		got, err := Apply(obj, cfg)
		if !bytes.Equal(obj, before) {
			t.Fatalf("Apply changed its input:\n was %q\n now %q", before, obj)
		}
		again, againErr := Apply(obj, cfg)
		if (err == nil) != (againErr == nil) || !bytes.Equal(got, again) {
			t.Fatalf("Apply is not deterministic: %q, %v then %q, %v", got, err, again, againErr)
		}
		if err != nil {
			if got != nil {
				t.Fatalf("Apply failed (%v) and still returned an object: %q", err, got)
			}
			var oe *Error
			if !errors.As(err, &oe) {
				t.Fatalf("error %T %v is not an *override.Error", err, err)
			}
			if oe.Type != cfg.Type || !strings.HasPrefix(err.Error(), string(cfg.Type)) {
				t.Fatalf("error %q does not name the override's type %q", err, cfg.Type)
			}
			if oe.Err == nil {
				t.Fatalf("error %+v has no cause", oe)
			}
			isField := cfg.Type == appsv1alpha1.FieldJSONPatchType || cfg.Type == appsv1alpha1.FieldMergePatchType
			if isField && oe.Pointer != cfg.FieldPath && oe.Field != cfg.FieldPath {
				t.Fatalf("error %q on a %s override does not name its fieldPath %q", err, cfg.Type, cfg.FieldPath)
			}
			return
		}
		if !json.Valid(obj) {
			t.Fatalf("Apply accepted an object that is not JSON: %q gave %q", obj, got)
		}
		if !json.Valid(got) {
			t.Fatalf("Apply returned what is not JSON: %q", got)
		}
		if cfg.Type == appsv1alpha1.MergePatchType {
			twice, err := Apply(got, cfg)
			if err != nil {
				t.Fatalf("merge patch applied once, then failed on its own result: %v", err)
			}
			if !sameJSON(t, got, twice) {
				t.Fatalf("merge patch is not idempotent:\n once  %s\n twice %s", got, twice)
			}
		}
	})
}

// FuzzMergeValues merges two Helm overrides' values, as a HelmChart feed
// with two overrides gets them. Invariants: a value that fails leaves the
// values as they were (nothing half-merged); the merge is deterministic and
// idempotent; the later value wins for every key it sets, and a null
// removes the key; the result encodes as a JSON object.
func FuzzMergeValues(f *testing.F) {
	f.Add("image:\n  tag: \"8.0\"\n  repository: mysql\nauth:\n  rootPassword: a\nextra: [1, 2]\n",
		`{"image":{"tag":"8.1"},"auth":null,"extra":[3],"primary":{"persistence":{"enabled":false}}}`)
	f.Add(`{"a":1}`, `{"a":{"b":2}}`)
	f.Add(`{"a":{"b":2}}`, `{"a":1}`)
	f.Add(`{"a":{"b":{"c":null}}}`, `{"a":{"b":null}}`)
	f.Add(`[1]`, `{"a":1}`)
	f.Add(`replicaCount: 2`, `"just a string"`)
	f.Add(``, `null`)
	f.Add(`{"a":1}`, "a: {b: [unclosed")
	f.Fuzz(func(t *testing.T, first, second string) {
		merged := func() (map[string]any, error, error) {
			values := map[string]any{}
			err1 := MergeValues(values, first)
			snapshot := deepCopyJSON(t, values)
			err2 := MergeValues(values, second)
			if err2 != nil && !reflect.DeepEqual(snapshot, values) {
				t.Fatalf("MergeValues(%q) failed (%v) and changed the values:\n was %v\n now %v", second, err2, snapshot, values)
			}
			return values, err1, err2
		}
		values, err1, err2 := merged()
		for _, err := range []error{err1, err2} {
			var oe *Error
			if err != nil && (!errors.As(err, &oe) || oe.Type != appsv1alpha1.HelmType) {
				t.Fatalf("error %v is not an *override.Error of a Helm override", err)
			}
		}
		out, err := ValuesJSON(values)
		if err != nil {
			t.Fatalf("ValuesJSON: %v", err)
		}
		var decoded map[string]any
		if err := json.Unmarshal(out, &decoded); err != nil {
			t.Fatalf("values are not a JSON object: %v: %s", err, out)
		}
		again, _, _ := merged()
		if out2, _ := ValuesJSON(again); !bytes.Equal(out, out2) {
			t.Fatalf("merging the same values twice gave\n %s\n %s", out, out2)
		}
		if err2 != nil {
			return
		}
		// Idempotent: the second value merged once more changes nothing.
		if err := MergeValues(again, second); err != nil {
			t.Fatalf("merging %q again failed: %v", second, err)
		}
		if out3, _ := ValuesJSON(again); !bytes.Equal(out, out3) {
			t.Fatalf("merging %q twice is not merging it once:\n once  %s\n twice %s", second, out, out3)
		}
		// The later value wins.
		var src map[string]any
		raw, _ := toJSON(second)
		_ = json.Unmarshal(raw, &src)
		for k, v := range src {
			got, present := values[k]
			switch v.(type) {
			case nil:
				if present {
					t.Fatalf("key %q set to null is still there: %v", k, got)
				}
			case map[string]any:
				if _, ok := got.(map[string]any); !ok {
					t.Fatalf("key %q set to a map holds %T", k, got)
				}
			default:
				if !reflect.DeepEqual(got, v) {
					t.Fatalf("key %q is %v, want the later value %v", k, got, v)
				}
			}
		}
	})
}

// The regression FuzzMergeValues found: YAML keys of different types that
// become one JSON key made the same value merge differently from run to run.
func TestKeysOfDifferentYAMLTypesAreRefused(t *testing.T) {
	const rule = `keys of different YAML types (such as 1 and "1") become the same JSON key, which holds either value at random: keep one of them`
	for _, tc := range []struct {
		name    string
		apply   func() error
		wantErr string
	}{{
		name:    "Helm values",
		apply:   func() error { return MergeValues(map[string]any{}, "a:\n  1: x\n  \"1\": y\n") },
		wantErr: `Helm: value: key "1" is written twice: ` + rule,
	}, {
		name: "MergePatch value, the first of two keys named",
		apply: func() error {
			_, err := Apply([]byte(deployment), appsv1alpha1.OverrideConfig{Type: appsv1alpha1.MergePatchType, Value: "true: a\n\"true\": b\n0: c\n\"0\": d\n"})
			return err
		},
		wantErr: `MergePatch: value: key "0" is written twice: ` + rule,
	}, {
		name: "YAML text of a field",
		apply: func() error {
			_, err := Apply([]byte(`{"data":{"c.yaml":"1.0: a\n\"1\": b\n"}}`),
				appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldMergePatchType, FieldPath: "/data/c.yaml", Value: `{"x":1}`})
			return err
		},
		wantErr: `FieldMergePatch at "/data/c.yaml": the field's text: key "1" is written twice: ` + rule,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			for range 10 { // the old failure was random
				if err := tc.apply(); err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error:\n got %v\nwant %s", err, tc.wantErr)
				}
			}
		})
	}
}

func typeIndex(typ appsv1alpha1.OverrideType) uint8 {
	for i, t := range overrideTypes {
		if t == typ {
			return uint8(i)
		}
	}
	return uint8(len(overrideTypes) - 1)
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("not JSON: %v: %s", err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return reflect.DeepEqual(va, vb)
}

func deepCopyJSON(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if out == nil {
		out = map[string]any{}
	}
	return out
}
