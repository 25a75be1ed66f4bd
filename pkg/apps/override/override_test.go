package override

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

const deployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"foo","labels":{"app":"web"}},"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.14.2"}]}}}}`

const configMap = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"conf","namespace":"foo"},"data":{"config.yaml":"server:\n  port: 80\n  tls: false\n","settings.json":"{\n  \"debug\": false,\n  \"level\": 1\n}","flat.json":"{\"a\":1}","empty.yaml":"","number":"7"}}`

// asMap decodes JSON so results compare by meaning, not key order.
func asMap(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

func TestApply(t *testing.T) {
	tests := []struct {
		name string
		obj  string
		cfg  appsv1alpha1.OverrideConfig
		want string
	}{{
		name: "JSONPatch replace replicas, value as JSON",
		obj:  deployment,
		cfg:  appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, Value: `[{"op":"replace","path":"/spec/replicas","value":1}]`},
		want: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"foo","labels":{"app":"web"}},"spec":{"replicas":1,"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.14.2"}]}}}}`,
	}, {
		name: "JSONPatch as YAML, several operations in order",
		obj:  deployment,
		cfg: appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, Value: `
- op: add
  path: /metadata/labels/tier
  value: edge
- op: replace
  path: /spec/template/spec/containers/0/image
  value: nginx:1.25
- op: remove
  path: /metadata/labels/app
`},
		want: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"foo","labels":{"tier":"edge"}},"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.25"}]}}}}`,
	}, {
		name: "JSONPatch test passes",
		obj:  deployment,
		cfg:  appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, Value: `[{"op":"test","path":"/spec/replicas","value":3},{"op":"copy","from":"/metadata/labels","path":"/spec/template/metadata"}]`},
		want: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"foo","labels":{"app":"web"}},"spec":{"replicas":3,"template":{"metadata":{"app":"web"},"spec":{"containers":[{"name":"nginx","image":"nginx:1.14.2"}]}}}}`,
	}, {
		name: "MergePatch as YAML, null removes",
		obj:  deployment,
		cfg:  appsv1alpha1.OverrideConfig{Type: appsv1alpha1.MergePatchType, Value: "metadata:\n  labels:\n    app: null\n    zone: a\nspec:\n  replicas: 5\n"},
		want: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"foo","labels":{"zone":"a"}},"spec":{"replicas":5,"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.14.2"}]}}}}`,
	}, {
		name: "MergePatch replaces lists whole",
		obj:  deployment,
		cfg:  appsv1alpha1.OverrideConfig{Type: appsv1alpha1.MergePatchType, Value: `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"busybox"}]}}}}`},
		want: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"foo","labels":{"app":"web"}},"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"app","image":"busybox"}]}}}}`,
	}, {
		name: "FieldMergePatch on YAML text (default format)",
		obj:  configMap,
		cfg:  appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldMergePatchType, FieldPath: "/data/config.yaml", Value: `{"server":{"port":8080}}`},
		want: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"conf","namespace":"foo"},"data":{"config.yaml":"server:\n  port: 8080\n  tls: false\n","settings.json":"{\n  \"debug\": false,\n  \"level\": 1\n}","flat.json":"{\"a\":1}","empty.yaml":"","number":"7"}}`,
	}, {
		name: "FieldJSONPatch on YAML text",
		obj:  configMap,
		cfg:  appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldJSONPatchType, FieldPath: "/data/config.yaml", FieldFormat: "YAML", Value: "- op: replace\n  path: /server/tls\n  value: true\n"},
		want: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"conf","namespace":"foo"},"data":{"config.yaml":"server:\n  port: 80\n  tls: true\n","settings.json":"{\n  \"debug\": false,\n  \"level\": 1\n}","flat.json":"{\"a\":1}","empty.yaml":"","number":"7"}}`,
	}, {
		name: "FieldJSONPatch on indented JSON text keeps it indented",
		obj:  configMap,
		cfg:  appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldJSONPatchType, FieldPath: "/data/settings.json", FieldFormat: "JSON", Value: `[{"op":"replace","path":"/debug","value":true}]`},
		want: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"conf","namespace":"foo"},"data":{"config.yaml":"server:\n  port: 80\n  tls: false\n","settings.json":"{\n  \"debug\": true,\n  \"level\": 1\n}\n","flat.json":"{\"a\":1}","empty.yaml":"","number":"7"}}`,
	}, {
		name: "FieldMergePatch on compact JSON text stays compact",
		obj:  configMap,
		cfg:  appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldMergePatchType, FieldPath: "/data/flat.json", FieldFormat: "JSON", Value: `{"b":2}`},
		want: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"conf","namespace":"foo"},"data":{"config.yaml":"server:\n  port: 80\n  tls: false\n","settings.json":"{\n  \"debug\": false,\n  \"level\": 1\n}","flat.json":"{\"a\":1,\"b\":2}","empty.yaml":"","number":"7"}}`,
	}, {
		name: "FieldMergePatch on an empty YAML field",
		obj:  configMap,
		cfg:  appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldMergePatchType, FieldPath: "/data/empty.yaml", Value: `{"a":1}`},
		want: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"conf","namespace":"foo"},"data":{"config.yaml":"server:\n  port: 80\n  tls: false\n","settings.json":"{\n  \"debug\": false,\n  \"level\": 1\n}","flat.json":"{\"a\":1}","empty.yaml":"a: 1\n","number":"7"}}`,
	}, {
		name: "field path with an escaped slash",
		obj:  `{"data":{"a/b":"x: 1\n"}}`,
		cfg:  appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldMergePatchType, FieldPath: "/data/a~1b", Value: `{"x":2}`},
		want: `{"data":{"a/b":"x: 2\n"}}`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Apply([]byte(tc.obj), tc.cfg)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if diff := cmp.Diff(asMap(t, tc.want), asMap(t, string(got))); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name    string
		obj     string
		cfg     appsv1alpha1.OverrideConfig
		wantErr string
		want    Error // Err is not compared
	}{{
		name:    "replace a path that is not there",
		obj:     deployment,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, Value: `[{"op":"replace","path":"/spec/replica","value":1}]`},
		wantErr: `JSONPatch operation 0 at "/spec/replica": the object has nothing at that path to replace`,
		want:    Error{Type: appsv1alpha1.JSONPatchType, Operation: 0, Pointer: "/spec/replica"},
	}, {
		name:    "second operation fails: its index and pointer are named",
		obj:     deployment,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, Value: `[{"op":"replace","path":"/spec/replicas","value":1},{"op":"add","path":"/spec/strategy/type","value":"Recreate"}]`},
		wantErr: `JSONPatch operation 1 at "/spec/strategy/type": the object has no parent at that path to add to (add creates only the last key): add the parents first`,
		want:    Error{Type: appsv1alpha1.JSONPatchType, Operation: 1, Pointer: "/spec/strategy/type"},
	}, {
		name:    "remove a missing key",
		obj:     deployment,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, Value: `[{"op":"remove","path":"/metadata/annotations"}]`},
		wantErr: `JSONPatch operation 0 at "/metadata/annotations": the object has nothing at that path to remove`,
		want:    Error{Type: appsv1alpha1.JSONPatchType, Operation: 0, Pointer: "/metadata/annotations"},
	}, {
		name:    "test fails",
		obj:     deployment,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, Value: `[{"op":"test","path":"/spec/replicas","value":4}]`},
		wantErr: `JSONPatch operation 0 at "/spec/replicas": test failed: the object holds a different value there`,
		want:    Error{Type: appsv1alpha1.JSONPatchType, Operation: 0, Pointer: "/spec/replicas"},
	}, {
		name:    "array index out of range",
		obj:     deployment,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, Value: `[{"op":"replace","path":"/spec/template/spec/containers/3/image","value":"x"}]`},
		wantErr: `JSONPatch operation 0 at "/spec/template/spec/containers/3/image": the object has nothing at that path to replace`,
		want:    Error{Type: appsv1alpha1.JSONPatchType, Operation: 0, Pointer: "/spec/template/spec/containers/3/image"},
	}, {
		name:    "JSONPatch value is an object",
		obj:     deployment,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, Value: `{"spec":{"replicas":1}}`},
		wantErr: `JSONPatch: value must be a list of operations, such as [{"op": "replace", "path": "/spec/replicas", "value": 2}]`,
		want:    Error{Type: appsv1alpha1.JSONPatchType, Operation: -1},
	}, {
		name:    "unknown op",
		obj:     deployment,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, Value: `[{"op":"upsert","path":"/spec/replicas","value":1}]`},
		wantErr: `JSONPatch operation 0 at "/spec/replicas": unknown op "upsert": use add, remove, replace, move, copy or test`,
		want:    Error{Type: appsv1alpha1.JSONPatchType, Operation: 0, Pointer: "/spec/replicas"},
	}, {
		name:    "path that is not a pointer",
		obj:     deployment,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.JSONPatchType, Value: `[{"op":"replace","path":"spec.replicas","value":1}]`},
		wantErr: `JSONPatch operation 0 at "spec.replicas": path "spec.replicas" is not a JSON pointer: it must start with "/"`,
		want:    Error{Type: appsv1alpha1.JSONPatchType, Operation: 0, Pointer: "spec.replicas"},
	}, {
		name:    "value is not YAML",
		obj:     deployment,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.MergePatchType, Value: "spec: [unclosed"},
		wantErr: "MergePatch: value is neither JSON nor YAML: ",
		want:    Error{Type: appsv1alpha1.MergePatchType, Operation: -1},
	}, {
		name:    "MergePatch value is a list",
		obj:     deployment,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.MergePatchType, Value: `[{"op":"replace","path":"/spec/replicas","value":1}]`},
		wantErr: `MergePatch: value must be an object, such as {"spec": {"replicas": 2}}`,
		want:    Error{Type: appsv1alpha1.MergePatchType, Operation: -1},
	}, {
		name:    "field missing",
		obj:     configMap,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldMergePatchType, FieldPath: "/data/other.yaml", Value: `{"a":1}`},
		wantErr: `FieldMergePatch at "/data/other.yaml": the object has no field there`,
		want:    Error{Type: appsv1alpha1.FieldMergePatchType, Operation: -1, Pointer: "/data/other.yaml"},
	}, {
		name:    "field parent missing",
		obj:     configMap,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldMergePatchType, FieldPath: "/binaryData/x", Value: `{"a":1}`},
		wantErr: `FieldMergePatch at "/binaryData/x": the object has nothing at "/binaryData"`,
		want:    Error{Type: appsv1alpha1.FieldMergePatchType, Operation: -1, Pointer: "/binaryData/x"},
	}, {
		name:    "field is not text",
		obj:     deployment,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldMergePatchType, FieldPath: "/spec/replicas", Value: `{"a":1}`},
		wantErr: `FieldMergePatch at "/spec/replicas": the field holds json.Number, not text`,
		want:    Error{Type: appsv1alpha1.FieldMergePatchType, Operation: -1, Pointer: "/spec/replicas"},
	}, {
		name:    "field text is not JSON",
		obj:     configMap,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldMergePatchType, FieldPath: "/data/config.yaml", FieldFormat: "JSON", Value: `{"a":1}`},
		wantErr: `FieldMergePatch at "/data/config.yaml": the field's text is not JSON: set fieldFormat to YAML if it holds YAML`,
		want:    Error{Type: appsv1alpha1.FieldMergePatchType, Operation: -1, Pointer: "/data/config.yaml"},
	}, {
		name:    "field patch fails inside the text: inner pointer and field named",
		obj:     configMap,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldJSONPatchType, FieldPath: "/data/config.yaml", Value: `[{"op":"replace","path":"/server/host","value":"x"}]`},
		wantErr: `FieldJSONPatch operation 0 at "/server/host" in the text of field "/data/config.yaml": the object has nothing at that path to replace`,
		want:    Error{Type: appsv1alpha1.FieldJSONPatchType, Operation: 0, Pointer: "/server/host", Field: "/data/config.yaml"},
	}, {
		name:    "field path not a pointer",
		obj:     configMap,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldMergePatchType, FieldPath: "data.config", Value: `{"a":1}`},
		wantErr: `FieldMergePatch at "data.config": fieldPath "data.config" is not a JSON pointer: it must start with "/", such as /data/config.yaml`,
		want:    Error{Type: appsv1alpha1.FieldMergePatchType, Operation: -1, Pointer: "data.config"},
	}, {
		name:    "bad field format",
		obj:     configMap,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.FieldMergePatchType, FieldPath: "/data/config.yaml", FieldFormat: "TOML", Value: `{"a":1}`},
		wantErr: `FieldMergePatch at "/data/config.yaml": fieldFormat "TOML": use YAML or JSON`,
		want:    Error{Type: appsv1alpha1.FieldMergePatchType, Operation: -1, Pointer: "/data/config.yaml"},
	}, {
		name:    "Helm on an object",
		obj:     deployment,
		cfg:     appsv1alpha1.OverrideConfig{Type: appsv1alpha1.HelmType, Value: `{"a":1}`},
		wantErr: "Helm: a Helm override sets chart values and applies only to HelmChart feeds: use JSONPatch or MergePatch for other kinds",
		want:    Error{Type: appsv1alpha1.HelmType, Operation: -1},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Apply([]byte(tc.obj), tc.cfg)
			if err == nil {
				t.Fatalf("Apply succeeded with %s, want error %q", got, tc.wantErr)
			}
			if msg := err.Error(); len(msg) < len(tc.wantErr) || msg[:len(tc.wantErr)] != tc.wantErr {
				t.Errorf("error:\n got %q\nwant %q", msg, tc.wantErr)
			}
			var oe *Error
			if !errors.As(err, &oe) {
				t.Fatalf("error %T is not an *Error", err)
			}
			gotErr := *oe
			gotErr.Err = nil
			if diff := cmp.Diff(tc.want, gotErr); diff != "" {
				t.Errorf("error fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMergeValues(t *testing.T) {
	tests := []struct {
		name    string
		values  []string
		want    string
		wantErr string
	}{{
		name: "nothing",
		want: `{}`,
	}, {
		name:   "later wins, maps merge, lists replace, null removes",
		values: []string{"image:\n  tag: \"8.0\"\n  repository: mysql\nauth:\n  rootPassword: a\nextra: [1, 2]\n", `{"image":{"tag":"8.1"},"auth":null,"extra":[3],"primary":{"persistence":{"enabled":false}}}`},
		want:   `{"image":{"tag":"8.1","repository":"mysql"},"extra":[3],"primary":{"persistence":{"enabled":false}}}`,
	}, {
		name:   "a map replaces a scalar",
		values: []string{`{"a":1}`, `{"a":{"b":2}}`},
		want:   `{"a":{"b":2}}`,
	}, {
		name:    "not an object",
		values:  []string{`[1]`},
		wantErr: `Helm: value must be an object of chart values, such as {"replicaCount": 2}, not a list`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			values := map[string]any{}
			var err error
			for _, v := range tc.values {
				if err = MergeValues(values, v); err != nil {
					break
				}
			}
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := ValuesJSON(values)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(asMap(t, tc.want), asMap(t, string(out))); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	keys := []Key{
		{Priority: 600, Created: t0, Name: "high"},
		{Priority: 500, Created: t0.Add(time.Minute), Name: "default-newer"},
		{Priority: 500, Created: t0, Name: "default-b"},
		{Priority: 500, Created: t0, Name: "default-a"},
		{Priority: 0, Created: t0.Add(time.Hour), Name: "lowest"},
	}
	slices.SortFunc(keys, Compare)
	var got []string
	for _, k := range keys {
		got = append(got, k.Name)
	}
	want := []string{"lowest", "default-a", "default-b", "default-newer", "high"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if Priority(nil) != 500 {
		t.Errorf("Priority(nil) = %d, want 500", Priority(nil))
	}
	zero := int32(0)
	if Priority(&zero) != 0 {
		t.Errorf("Priority(&0) = %d, want 0 (an explicit 0 is not the default)", Priority(&zero))
	}
}
