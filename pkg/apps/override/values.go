package override

import (
	"encoding/json"
	"errors"
	"fmt"

	appsv1alpha1 "github.com/clusternet/clusternet/pkg/apis/apps/v1alpha1"
)

// MergeValues merges one Helm override's value (a YAML or JSON object) into
// values, as Helm merges values files: maps merge key by key, anything else
// is replaced, and a null removes the key.
func MergeValues(values map[string]any, value string) error {
	fail := func(err error) error { return &Error{Type: appsv1alpha1.HelmType, Operation: -1, Err: err} }
	raw, err := toJSON(value)
	if err != nil {
		return fail(err)
	}
	var src any
	if err := json.Unmarshal(raw, &src); err != nil {
		return fail(err)
	}
	m, ok := src.(map[string]any)
	if !ok {
		return fail(fmt.Errorf("value must be an object of chart values, such as {\"replicaCount\": 2}, not %s", describe(src)))
	}
	merge(values, m)
	return nil
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
			fresh := map[string]any{}
			merge(fresh, sm)
			dst[k] = fresh
			continue
		}
		dst[k] = v
	}
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "a list"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// ValuesJSON is values as JSON, "{}" when empty.
func ValuesJSON(values map[string]any) ([]byte, error) {
	if len(values) == 0 {
		return []byte("{}"), nil
	}
	out, err := json.Marshal(values)
	if err != nil {
		return nil, errors.Join(errors.New("encoding Helm values"), err)
	}
	return out, nil
}
