package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clusternet/clusternet/test/testbed"
)

// kubectl runs the real kubectl against c and returns stdout, stderr and the error.
func kubectl(t *testing.T, c *testbed.Cluster, stdin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.Kubectl(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// mustKubectl runs kubectl and fails the test if it fails.
func mustKubectl(t *testing.T, c *testbed.Cluster, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := kubectl(t, c, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// table splits kubectl's column output into rows of fields. Fields are
// separated by runs of two or more spaces, as kubectl's tab writer pads them,
// so a header such as "CLUSTER ID" stays one field.
func table(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		var fields []string
		for _, f := range strings.Split(line, "  ") {
			if f = strings.TrimSpace(f); f != "" {
				fields = append(fields, f)
			}
		}
		rows = append(rows, fields)
	}
	return rows
}
