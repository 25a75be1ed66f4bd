// Package upstreamtest holds what the tests of upstream Clusternet's API
// shapes share: the unit test that admits and round-trips them and the e2e
// test that writes them to a real parent compare objects the same way.
package upstreamtest

import (
	"fmt"
	"reflect"
	"sort"
)

// Lost lists the leaves of in that out lacks or holds another value at,
// each with its path. A leaf whose value is the zero of its type may be
// missing from out: the Go types leave zero values out (omitempty), as
// upstream's do. in and out are JSON decoded into any.
func Lost(path string, in, out any) []string {
	switch iv := in.(type) {
	case map[string]any:
		ov, ok := out.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %v became %v", path, in, out)}
		}
		var diffs []string
		for k, v := range iv {
			o, ok := ov[k]
			if !ok {
				if !isZero(v) {
					diffs = append(diffs, fmt.Sprintf("%s.%s: dropped (was %v)", path, k, v))
				}
				continue
			}
			diffs = append(diffs, Lost(path+"."+k, v, o)...)
		}
		sort.Strings(diffs)
		return diffs
	case []any:
		ov, ok := out.([]any)
		if !ok || len(ov) != len(iv) {
			return []string{fmt.Sprintf("%s: %v became %v", path, in, out)}
		}
		var diffs []string
		for i := range iv {
			diffs = append(diffs, Lost(fmt.Sprintf("%s[%d]", path, i), iv[i], ov[i])...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(in, out) {
			return []string{fmt.Sprintf("%s: %v (%T) became %v (%T)", path, in, in, out, out)}
		}
		return nil
	}
}

func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case bool:
		return !v
	case int64:
		return v == 0
	case float64:
		return v == 0
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}
