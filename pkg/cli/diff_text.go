package cli

import (
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/clusternet/clusternet/pkg/deployer"
)

// childNoise is what a child's API server writes into every copy (or the
// deployer's bookkeeping): it changes on each write and says nothing about
// what the user changed, so the per-cluster diff leaves it out.
var childNoise = []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"}

// stripChildNoise is obj as the per-cluster diff shows it: nil stays nil.
func stripChildNoise(obj *unstructured.Unstructured) *unstructured.Unstructured {
	if obj == nil {
		return nil
	}
	obj = obj.DeepCopy()
	for _, f := range childNoise {
		unstructured.RemoveNestedField(obj.Object, "metadata", f)
	}
	delete(obj.Object, "status")
	// The hash of the applied object changes with any change the diff
	// already shows line by line.
	unstructured.RemoveNestedField(obj.Object, "metadata", "annotations", deployer.AnnotationAppliedHash)
	if a, found, _ := unstructured.NestedMap(obj.Object, "metadata", "annotations"); found && len(a) == 0 {
		unstructured.RemoveNestedField(obj.Object, "metadata", "annotations")
	}
	return obj
}

// yamlLines is obj as YAML lines; none for nil (an object that does not exist).
func yamlLines(obj *unstructured.Unstructured) ([]string, error) {
	if obj == nil {
		return nil, nil
	}
	y, err := yaml.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(y), "\n"), "\n"), nil
}

// writeUnifiedDiff writes the diff of a to b (lines) with the given file
// labels, whole-file context (objects are short, and the surrounding keys
// say where a change is); nothing when they are equal. It says whether
// they differ.
func writeUnifiedDiff(w io.Writer, fromLabel, toLabel string, a, b []string) (bool, error) {
	ops := diffLines(a, b)
	changed := false
	for _, op := range ops {
		if op.kind != ' ' {
			changed = true
			break
		}
	}
	if !changed {
		return false, nil
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n@@ -%s +%s @@\n", fromLabel, toLabel, hunkRange(len(a)), hunkRange(len(b)))
	for _, op := range ops {
		sb.WriteByte(op.kind)
		sb.WriteString(op.line)
		sb.WriteByte('\n')
	}
	_, err := io.WriteString(w, sb.String())
	return true, err
}

func hunkRange(n int) string {
	if n == 0 {
		return "0,0"
	}
	return fmt.Sprintf("1,%d", n)
}

type lineOp struct {
	kind byte // ' ', '-' or '+'
	line string
}

// diffLines is a longest-common-subsequence line diff: objects are a few
// hundred lines at most, so the quadratic table is cheap.
func diffLines(a, b []string) []lineOp {
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []lineOp
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			ops = append(ops, lineOp{' ', a[i]})
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			ops = append(ops, lineOp{'-', a[i]})
			i++
		default:
			ops = append(ops, lineOp{'+', b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		ops = append(ops, lineOp{'-', a[i]})
	}
	for ; j < len(b); j++ {
		ops = append(ops, lineOp{'+', b[j]})
	}
	return ops
}
