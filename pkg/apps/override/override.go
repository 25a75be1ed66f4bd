// Package override applies Localization and Globalization overrides to one
// object: JSON patches (RFC 6902), merge patches (RFC 7386), the same two
// applied to text held in one field (a ConfigMap key holding YAML or JSON),
// and Helm values. It is pure: no clients, no clocks.
package override

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	goyaml "go.yaml.in/yaml/v2"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// Field formats of FieldJSONPatch and FieldMergePatch overrides.
const (
	FormatYAML = "YAML"
	FormatJSON = "JSON"
)

// Error is an override that does not apply.
type Error struct {
	Type appsv1alpha1.OverrideType
	// Operation is the index of the failing JSON patch operation, -1 when
	// the whole value is at fault.
	Operation int
	// Pointer is the JSON pointer that failed: the operation's path (inside
	// the field's text for Field* types).
	Pointer string
	// Field is the fieldPath of Field* types.
	Field string
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Type))
	if e.Operation >= 0 {
		fmt.Fprintf(&b, " operation %d", e.Operation)
	}
	if e.Pointer != "" {
		fmt.Fprintf(&b, " at %q", e.Pointer)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " in the text of field %q", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Apply applies one override to obj, a JSON object, and returns the result.
// Helm overrides do not apply to objects: use Values for them.
func Apply(obj []byte, cfg appsv1alpha1.OverrideConfig) ([]byte, error) {
	switch cfg.Type {
	case appsv1alpha1.JSONPatchType:
		return applyJSONPatch(obj, cfg.Value, cfg.Type, "")
	case appsv1alpha1.MergePatchType:
		return applyMergePatch(obj, cfg.Value, cfg.Type, "")
	case appsv1alpha1.FieldJSONPatchType, appsv1alpha1.FieldMergePatchType:
		return applyToField(obj, cfg)
	case appsv1alpha1.HelmType:
		return nil, &Error{Type: cfg.Type, Operation: -1,
			Err: errors.New("a Helm override sets chart values and applies only to HelmChart feeds: use JSONPatch or MergePatch for other kinds")}
	default:
		return nil, &Error{Type: cfg.Type, Operation: -1,
			Err: fmt.Errorf("unknown override type %q: use one of Helm, JSONPatch, MergePatch, FieldJSONPatch, FieldMergePatch", cfg.Type)}
	}
}

// toJSON reads an override's value, written as JSON or YAML.
func toJSON(value string) ([]byte, error) {
	out, err := yamlToJSON([]byte(value))
	if errors.Is(err, errKeyTwice) {
		return nil, fmt.Errorf("value: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("value is neither JSON nor YAML: %w", err)
	}
	return out, nil
}

// errKeyTwice is YAML with two keys that become one JSON key.
var errKeyTwice = errors.New("keys of different YAML types (such as 1 and \"1\") become the same JSON key, which holds either value at random: keep one of them")

// yamlToJSON is yaml.YAMLToJSON refusing a mapping with two keys that
// become the same JSON key (1 and "1", true and "true"): one would replace
// the other, a different one on each run, so the same override would
// render differently each time.
func yamlToJSON(y []byte) ([]byte, error) {
	var doc any
	if goyaml.Unmarshal(y, &doc) == nil {
		var twice []string
		collidingKeys(doc, &twice)
		if len(twice) > 0 {
			slices.Sort(twice)
			return nil, fmt.Errorf("key %q is written twice: %w", twice[0], errKeyTwice)
		}
	}
	return yaml.YAMLToJSON(y)
}

// collidingKeys appends to out the keys of mappings in v that two YAML keys
// become, named as sigs.k8s.io/yaml names non-string keys in JSON.
func collidingKeys(v any, out *[]string) {
	switch v := v.(type) {
	case map[any]any:
		seen := make(map[string]bool, len(v))
		for k, item := range v {
			var s string
			switch k := k.(type) {
			case string:
				s = k
			case int:
				s = strconv.Itoa(k)
			case int64:
				s = strconv.FormatInt(k, 10)
			case uint64:
				s = strconv.FormatUint(k, 10)
			case float64:
				s = strconv.FormatFloat(k, 'g', -1, 32)
				switch s {
				case "+Inf":
					s = ".inf"
				case "-Inf":
					s = "-.inf"
				case "NaN":
					s = ".nan"
				}
			case bool:
				s = strconv.FormatBool(k)
			default:
				s = fmt.Sprint(k)
			}
			if seen[s] {
				*out = append(*out, s)
			}
			seen[s] = true
			collidingKeys(item, out)
		}
	case []any:
		for _, item := range v {
			collidingKeys(item, out)
		}
	}
}

func applyJSONPatch(doc []byte, value string, typ appsv1alpha1.OverrideType, field string) ([]byte, error) {
	fail := func(op int, pointer string, err error) error {
		return &Error{Type: typ, Operation: op, Pointer: pointer, Field: field, Err: err}
	}
	if !json.Valid(doc) { // an empty patch would return it as it is
		return nil, fail(-1, "", errors.New("the object is not JSON"))
	}
	raw, err := toJSON(value)
	if err != nil {
		return nil, fail(-1, "", err)
	}
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		return nil, fail(-1, "", errors.New(`value must be a list of operations, such as [{"op": "replace", "path": "/spec/replicas", "value": 2}]`))
	}
	patch, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		return nil, fail(-1, "", fmt.Errorf("value is not a JSON patch: %w", err))
	}
	for i, op := range patch {
		path, _ := op.Path()
		switch op.Kind() {
		case "add", "remove", "replace", "move", "copy", "test":
		default:
			return nil, fail(i, path, fmt.Errorf("unknown op %q: use add, remove, replace, move, copy or test", op.Kind()))
		}
		if _, ok := op["path"]; !ok {
			return nil, fail(i, "", fmt.Errorf("op %q has no path", op.Kind()))
		}
		if path != "" && !strings.HasPrefix(path, "/") {
			return nil, fail(i, path, fmt.Errorf("path %q is not a JSON pointer: it must start with \"/\"", path))
		}
		if op.Kind() == "replace" && path != "" && !exists(doc, path) {
			// RFC 6902 4.3: the target must exist (the library would add it).
			return nil, fail(i, path, explainPatchError("replace", jsonpatch.ErrMissing))
		}
		out, err := jsonpatch.Patch{op}.Apply(doc)
		if err != nil {
			return nil, fail(i, path, explainPatchError(op.Kind(), err))
		}
		doc = out
	}
	return doc, nil
}

// explainPatchError says in words why an operation failed.
func explainPatchError(kind string, err error) error {
	switch {
	case errors.Is(err, jsonpatch.ErrTestFailed):
		return errors.New("test failed: the object holds a different value there")
	case errors.Is(err, jsonpatch.ErrMissing), errors.Is(err, jsonpatch.ErrInvalidIndex):
		if kind == "add" {
			return errors.New("the object has no parent at that path to add to (add creates only the last key): add the parents first")
		}
		return fmt.Errorf("the object has nothing at that path to %s", kind)
	default:
		return err
	}
}

func applyMergePatch(doc []byte, value string, typ appsv1alpha1.OverrideType, field string) ([]byte, error) {
	fail := func(err error) error { return &Error{Type: typ, Operation: -1, Field: field, Err: err} }
	raw, err := toJSON(value)
	if err != nil {
		return nil, fail(err)
	}
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return nil, fail(errors.New(`value must be an object, such as {"spec": {"replicas": 2}}`))
	}
	out, err := jsonpatch.MergePatch(doc, raw)
	if err != nil {
		return nil, fail(err)
	}
	return out, nil
}

// applyToField patches the text held in the string field at cfg.FieldPath,
// read and written back in cfg.FieldFormat.
func applyToField(obj []byte, cfg appsv1alpha1.OverrideConfig) ([]byte, error) {
	fail := func(err error) error {
		return &Error{Type: cfg.Type, Operation: -1, Pointer: cfg.FieldPath, Err: err}
	}
	format := cfg.FieldFormat
	if format == "" {
		format = FormatYAML
	}
	if format != FormatYAML && format != FormatJSON {
		return nil, fail(fmt.Errorf("fieldFormat %q: use YAML or JSON", cfg.FieldFormat))
	}
	tokens, err := parsePointer(cfg.FieldPath)
	if err != nil {
		return nil, fail(err)
	}
	if len(tokens) == 0 {
		return nil, fail(errors.New("fieldPath must point at a field holding text, such as /data/config.yaml"))
	}
	var root any
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return nil, fail(fmt.Errorf("the object is not JSON: %w", err))
	}
	parent, last, err := walk(root, tokens)
	if err != nil {
		return nil, fail(err)
	}
	text, ok := parent[last].(string)
	if !ok {
		if _, present := parent[last]; !present {
			return nil, fail(errors.New("the object has no field there"))
		}
		return nil, fail(fmt.Errorf("the field holds %T, not text", parent[last]))
	}
	var doc []byte
	if format == FormatJSON {
		if !json.Valid([]byte(text)) {
			return nil, fail(errors.New("the field's text is not JSON: set fieldFormat to YAML if it holds YAML"))
		}
		doc = []byte(text)
	} else if doc, err = yamlToJSON([]byte(text)); errors.Is(err, errKeyTwice) {
		return nil, fail(fmt.Errorf("the field's text: %w", err))
	} else if err != nil {
		return nil, fail(fmt.Errorf("the field's text is not YAML: %w", err))
	}
	if bytes.Equal(bytes.TrimSpace(doc), []byte("null")) {
		doc = []byte("{}") // an empty YAML document patches like an empty object
	}
	if cfg.Type == appsv1alpha1.FieldJSONPatchType {
		doc, err = applyJSONPatch(doc, cfg.Value, cfg.Type, cfg.FieldPath)
	} else {
		doc, err = applyMergePatch(doc, cfg.Value, cfg.Type, cfg.FieldPath)
	}
	if err != nil {
		return nil, err
	}
	if format == FormatJSON {
		if strings.Contains(text, "\n") {
			var indented bytes.Buffer
			if err := json.Indent(&indented, doc, "", "  "); err == nil {
				doc = append(indented.Bytes(), '\n')
			}
		}
		parent[last] = string(doc)
	} else {
		out, err := yaml.JSONToYAML(doc)
		if err != nil {
			return nil, fail(err)
		}
		parent[last] = string(out)
	}
	return json.Marshal(root)
}

// parsePointer splits an RFC 6901 JSON pointer into unescaped tokens.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("fieldPath %q is not a JSON pointer: it must start with \"/\", such as /data/config.yaml", p)
	}
	parts := strings.Split(p[1:], "/")
	for i, part := range parts {
		parts[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
	}
	return parts, nil
}

// walk follows tokens down to the object holding the last one.
func walk(root any, tokens []string) (map[string]any, string, error) {
	cur := root
	for i, tok := range tokens[:len(tokens)-1] {
		switch node := cur.(type) {
		case map[string]any:
			next, ok := node[tok]
			if !ok {
				return nil, "", fmt.Errorf("the object has nothing at %q", "/"+strings.Join(tokens[:i+1], "/"))
			}
			cur = next
		case []any:
			idx, err := strconv.Atoi(tok)
			if err != nil || idx < 0 || idx >= len(node) {
				return nil, "", fmt.Errorf("the object has no item %q at %q", tok, "/"+strings.Join(tokens[:i], "/"))
			}
			cur = node[idx]
		default:
			return nil, "", fmt.Errorf("the object has nothing at %q", "/"+strings.Join(tokens[:i+1], "/"))
		}
	}
	parent, ok := cur.(map[string]any)
	if !ok {
		return nil, "", errors.New("the field's parent is not an object")
	}
	return parent, tokens[len(tokens)-1], nil
}

// exists says whether the JSON pointer path names a value in doc.
func exists(doc []byte, path string) bool {
	tokens, err := parsePointer(path)
	if err != nil {
		return false
	}
	var cur any
	if err := json.Unmarshal(doc, &cur); err != nil {
		return false
	}
	for _, tok := range tokens {
		switch node := cur.(type) {
		case map[string]any:
			next, ok := node[tok]
			if !ok {
				return false
			}
			cur = next
		case []any:
			idx, err := strconv.Atoi(tok)
			if err != nil || idx < 0 || idx >= len(node) {
				return false
			}
			cur = node[idx]
		default:
			return false
		}
	}
	return true
}
