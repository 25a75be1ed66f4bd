package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
)

// command builds a cobra command with long flags; a name ending in = takes
// a value.
func command(use string, flags ...string) *cobra.Command {
	c := &cobra.Command{Use: use}
	for _, f := range flags {
		if name, ok := strings.CutSuffix(f, "="); ok {
			c.Flags().String(name, "", "")
		} else {
			c.Flags().Bool(f, false, "")
		}
	}
	return c
}

// fakeCommands stand in for the hub, agent, plugin and kubectl: a few flags
// each, the plugin's --cluster and kubectl's subcommands as the real ones
// have them.
func fakeCommands() Commands {
	hub := command("clusternet-hub", "workers=", "kubeconfig=", "leader-elect", "leader-elect-lease-duration=")
	hub.Version = "v0.0.0"
	agent := command("clusternet-agent", "parent-url=", "kubeconfig=")
	plugin := command("kubectl-clusternet")
	plugin.PersistentFlags().String("cluster", "", "")
	plugin.PersistentFlags().StringP("namespace", "n", "", "")
	plugin.AddCommand(command("get", "clusters="))
	kubectl := command("kubectl")
	kubectl.PersistentFlags().String("kubeconfig", "", "")
	kubectl.PersistentFlags().StringP("namespace", "n", "", "")
	kubectl.AddCommand(command("get", "watch"), command("logs", "follow"), command("apply", "filename="), command("delete"))
	return Commands{Hub: hub, Agent: agent, Plugin: plugin, Kubectl: kubectl}
}

func TestCheckFile(t *testing.T) {
	c, err := NewChecker("testdata/repo", fakeCommands())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		want []Finding
	}{{
		file: "README.md",
	}, {
		file: "docs/guide.md",
	}, {
		file: "examples/demo/README.md",
	}, {
		file: "docs/broken-link.md",
		want: []Finding{
			{"docs/broken-link.md", 3, "link [missing file](guid.md): docs/guid.md does not exist: did you mean guide.md (docs/guide.md)?"},
			{"docs/broken-link.md", 3, "link [missing anchor](guide.md#instal): docs/guide.md has no heading with anchor #instal: did you mean #install?"},
			{"docs/broken-link.md", 4, "link [missing local anchor](#nothing-here): docs/broken-link.md has no heading with anchor #nothing-here: link to one of its headings: broken-links"},
			{"docs/broken-link.md", 4, "link [out of the repo](../../../x.md) points outside the repository (../../x.md): link to a page on the web, or drop it"},
		},
	}, {
		file: "docs/missing-path.md",
		want: []Finding{
			{"docs/missing-path.md", 3, "path `pkg/server/server.go`: pkg/server/server.go does not exist: did you mean pkg/server/server.txt?"},
			{"docs/missing-path.md", 3, "path `pkg/servers/<name>.go`: pkg/servers/ does not exist: did you mean pkg/server?"},
			{"docs/missing-path.md", 3, "path `pkg/servr/*.yaml`: pkg/servr/ does not exist: did you mean pkg/server?"},
			{"docs/missing-path.md", 7, "path `pkg/serve/`: pkg/serve does not exist: did you mean pkg/server?"},
		},
	}, {
		file: "docs/unknown-target.md",
		want: []Finding{
			{"docs/unknown-target.md", 3, "`make bild`: the Makefile has no target \"bild\": did you mean `make build`?"},
			{"docs/unknown-target.md", 6, "`make test deploy`: the Makefile has no target \"deploy\": run `make help` for the targets"},
		},
	}, {
		file: "docs/unknown-flag.md",
		want: []Finding{
			{"docs/unknown-flag.md", 3, "flag --parent-url: clusternet-hub has no such flag: it is a flag of clusternet-agent: name that command, or fix the flag"},
			{"docs/unknown-flag.md", 3, "flag --no-such-flag: no such flag in clusternet-hub, clusternet-agent, kubectl clusternet, kubectl or this repository's programs, nor in hack/doccheck/allowlist.go: fix or drop it"},
			{"docs/unknown-flag.md", 6, "flag --parent-urls in `clusternet-agent --parent-urls https://p`: clusternet-agent has no such flag: did you mean --parent-url?"},
			{"docs/unknown-flag.md", 7, "flag --no-such in `kubectl clusternet get --cluster c1 --no-such`: kubectl clusternet --cluster <cluster> get has no such flag: see `kubectl clusternet --cluster <cluster> get --help`"},
			{"docs/unknown-flag.md", 8, "flag --clustres in `kubectl clusternet get deploy --clustres all`: kubectl clusternet get has no such flag: did you mean --clusters?"},
			{"docs/unknown-flag.md", 9, "flag --no-helm-flag of helm (in `helm install x y --no-helm-flag`) is not in the allow-list of other tools' flags: check it against helm's own help and add it to otherTools[\"helm\"] in hack/doccheck/allowlist.go, or fix the doc"},
			{"docs/unknown-flag.md", 10, "flag --output in `go run ./cmd/tool --output x`: the program in cmd/tool has no such flag: did you mean --out?"},
		},
	}} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := c.CheckFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDocFiles(t *testing.T) {
	got, err := docFiles("testdata/repo")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"README.md", "docs/broken-link.md", "docs/guide.md", "docs/missing-path.md",
		"docs/unknown-flag.md", "docs/unknown-target.md", "examples/demo/README.md"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestRunFailsOnEveryBrokenFile(t *testing.T) {
	findings, err := run("testdata/repo", fakeCommands())
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, f := range findings {
		files[f.File] = true
	}
	want := map[string]bool{"docs/broken-link.md": true, "docs/missing-path.md": true, "docs/unknown-target.md": true, "docs/unknown-flag.md": true}
	if diff := cmp.Diff(want, files); diff != "" {
		t.Errorf("files with findings (-want +got):\n%s", diff)
	}
}

func TestAnchors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"punctuation and code", "## Per-cluster chart versions: `overrideChart`", []string{"per-cluster-chart-versions-overridechart"}},
		{"links and emphasis", "# The [kubectl plugin](cli.md): **fast**", []string{"the-kubectl-plugin-fast"}},
		{"repeats numbered", "## Status\n## Status\n## Status", []string{"status", "status-1", "status-2"}},
		{"underscores and dots kept or dropped as on GitHub", "### snake_case v1.2", []string{"snake_case-v12"}},
		{"closing hashes", "## Closed ##", []string{"closed"}},
		{"not in code", "```\n# comment\n```\n~~~\n# no\n~~~", nil},
		{"html anchor", `<a name="here"></a>`, []string{"here"}},
		{"no space is no heading", "#hashtag", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, anchors(tc.doc)); diff != "" {
				t.Errorf("anchors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestShellCommands(t *testing.T) {
	for _, tc := range []struct {
		line string
		want [][]string
	}{
		{"make build && kubectl get pods | grep x", [][]string{{"make", "build"}, {"kubectl", "get", "pods"}, {"grep", "x"}}},
		{`kubectl clusternet get deploy --clusters all|a,b`, [][]string{{"kubectl", "clusternet", "get", "deploy", "--clusters", "all|a,b"}}},
		{`helm install x --set 'a=b c' # a comment --flag`, [][]string{{"helm", "install", "x", "--set", "a=b c"}}},
		{`export ID=$(kubectl get mcls -o name); echo "$ID"`, [][]string{{"export", "ID="}, {"kubectl", "get", "mcls", "-o", "name"}, {"echo", "$ID"}}},
		{`clusternet-hub --workers=3 \`, [][]string{{"clusternet-hub", "--workers=3"}}},
	} {
		t.Run(tc.line, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, shellCommands(tc.line)); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMakeTargets(t *testing.T) {
	got := makeTargets("a: b\nb c:: d\n.PHONY: a\n$(X)/%: y\nV := 1\nW ?= 2\n\tcmd: not a rule\n# c: comment\n")
	want := map[string]bool{"a": true, "b": true, "c": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
}

// TestRealCommands: the flags are read from the commands the binaries run,
// so a flag the docs name is checked against what ships.
func TestRealCommands(t *testing.T) {
	cmds := realCommands()
	for _, tc := range []struct {
		name string
		cmd  *cobra.Command
		path []string
		flag string
		want bool
	}{
		{"hub", cmds.Hub, nil, "registration-approval", true},
		{"hub logging", cmds.Hub, nil, "v", true},
		{"hub version", cmds.Hub, nil, "version", true},
		{"hub, an agent flag", cmds.Hub, nil, "parent-url", false},
		{"agent", cmds.Agent, nil, "parent-url", true},
		{"agent, a hub flag", cmds.Agent, nil, "registration-approval", false},
		{"plugin", cmds.Plugin, nil, "cluster", true},
		{"plugin, kubectl's global flag", cmds.Plugin, []string{"get"}, "kubeconfig", true},
		{"plugin get", cmds.Plugin, []string{"get"}, "clusters", true},
		{"plugin create token", cmds.Plugin, []string{"create", "token"}, "print-join-command", true},
		{"kubectl logs", cmds.Kubectl, []string{"logs"}, "follow", true},
		{"kubectl get, the plugin's flag", cmds.Kubectl, []string{"get"}, "clusters", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := tc.cmd
			for _, p := range tc.path {
				if cmd = subcommand(cmd, p); cmd == nil {
					t.Fatalf("no subcommand %q", p)
				}
			}
			if got := lookupFlag(cmd, tc.flag) != nil; got != tc.want {
				t.Errorf("--%s found = %v, want %v", tc.flag, got, tc.want)
			}
		})
	}
}
