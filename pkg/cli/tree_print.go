package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"
)

// printTreeText prints the tree as a table whose NAME column draws it, as
// kubectl-tree does: NAMESPACE, NAME, STATUS, READY, AGE, MESSAGE.
func printTreeText(w io.Writer, root TreeNode, now time.Time, colour bool) error {
	rows := [][]cell{plainCells("NAMESPACE", "NAME", "STATUS", "READY", "AGE", "MESSAGE")}
	var walk func(n TreeNode, prefix, childPrefix string)
	walk = func(n TreeNode, prefix, childPrefix string) {
		age := ""
		if n.CreationTimestamp != nil {
			age = duration.HumanDuration(now.Sub(n.CreationTimestamp.Time))
		}
		ready := ""
		if n.Ready != nil {
			ready = fmt.Sprintf("%d/%d", n.Ready.Ready, n.Ready.Total)
		}
		rows = append(rows, []cell{{text: n.Namespace}, {text: prefix + n.label()}, {text: n.Status, colour: true, state: n.state},
			{text: ready}, {text: age}, {text: n.Message}})
		for i, c := range n.Children {
			if i == len(n.Children)-1 {
				walk(c, childPrefix+"└─", childPrefix+"  ")
			} else {
				walk(c, childPrefix+"├─", childPrefix+"│ ")
			}
		}
	}
	walk(root, "", "")
	for _, l := range formatRows(rows, 0, colour) {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return err
		}
	}
	return nil
}

// label is the node in the NAME column: Kind/name, or the selector of a
// feed that selects.
func (n TreeNode) label() string {
	if n.Selector != "" {
		return n.Kind + " -l " + n.Selector
	}
	return n.Kind + "/" + n.Name
}

// printTreeData prints the tree as JSON (indented as kubectl's -o json) or YAML.
func printTreeData(w io.Writer, root TreeNode, format string) error {
	var out []byte
	var err error
	if format == "yaml" {
		out, err = yaml.Marshal(root)
	} else {
		out, err = json.MarshalIndent(root, "", "    ")
		out = append(out, '\n')
	}
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}
