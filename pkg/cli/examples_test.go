package cli

import (
	"slices"
	"strings"
	"testing"
)

// TestOwnCommandExamplesAreValid parses every command line of the examples
// of the plugin's own commands (those kubectl has no equivalent of) as the
// plugin would: it does not go to per-cluster mode, it runs the command
// whose example it is, its flags parse, and its argument names what the
// command takes.
func TestOwnCommandExamplesAreValid(t *testing.T) {
	root := NewCmdClusternet(streamsForTest())
	mapper, err := testMapper(t)()
	if err != nil {
		t.Fatal(err)
	}
	// takes is what a command's argument must be: "subscription", "any"
	// resource, or "" (not a resource: logs takes kubectl's own).
	for _, tc := range []struct {
		path  []string
		leaf  []string // commands an example of path may run
		takes string
	}{
		{path: []string{"rollout"}, leaf: []string{"status"}, takes: "subscription"},
		{path: []string{"rollout", "status"}, leaf: []string{"status"}, takes: "subscription"},
		{path: []string{"tree"}, leaf: []string{"tree"}, takes: "any"},
		{path: []string{"render"}, leaf: []string{"render"}, takes: "subscription"},
		{path: []string{"diff"}, leaf: []string{"diff"}},
		{path: []string{"logs"}, leaf: []string{"logs"}},
		{path: []string{"exec"}, leaf: []string{"exec"}},
		{path: []string{"top", "clusters"}, leaf: []string{"clusters"}},
		{path: []string{"join"}, leaf: []string{"join"}},
		{path: []string{"unjoin"}, leaf: []string{"unjoin"}},
	} {
		cmd, _, err := root.Find(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, line := range strings.Split(cmd.Example, "\n") {
			words, ok := strings.CutPrefix(strings.TrimSpace(line), "kubectl clusternet ")
			if !ok {
				continue
			}
			checked++
			args := strings.Fields(words)
			if _, _, perCluster := perClusterArgs(args, rootFlagSet(newConfigFlags(streamsForTest()))); perCluster {
				t.Errorf("%q runs in per-cluster mode", line)
				continue
			}
			found, rest, err := root.Find(args)
			if err != nil || !slices.Contains(tc.leaf, found.Name()) {
				t.Errorf("%q runs %v (%v), not %v", line, found.Name(), err, tc.leaf)
				continue
			}
			if err := found.ParseFlags(rest); err != nil {
				t.Errorf("%q: %v", line, err)
				continue
			}
			if tc.takes == "" {
				continue
			}
			r, err := parseResourceArgs(mapper, found.Flags().Args(), "")
			switch {
			case err != nil:
				t.Errorf("%q: %v", line, err)
			case tc.takes == "subscription" && !r.isSubscription():
				t.Errorf("%q: %s of a %s, want a Subscription", line, found.Name(), r.mapping.GroupVersionKind.Kind)
			}
		}
		if checked == 0 {
			t.Errorf("%v has no example command lines", tc.path)
		}
	}
}
