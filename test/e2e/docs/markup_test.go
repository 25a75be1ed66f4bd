package docs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    []Block
		wantErr string
	}{{
		name: "commands and their output; other languages do not run",
		src: "# Page\n" + // 1
			"```yaml\n" + // 2
			"$ not a command\n" + // 3
			"```\n" + // 4
			"```console\n" + // 5
			"$ kubectl get ns\n" + // 6
			"NAME   STATUS\n" + // 7
			"default Active\n" + // 8
			"\n" + // 9
			"$ true\n" + // 10
			"```\n", // 11
		want: []Block{{Line: 5, Steps: []Step{
			{Line: 6, Command: "kubectl get ns", Want: []WantLine{{7, "NAME   STATUS"}, {8, "default Active"}}},
			{Line: 10, Command: "true"},
		}}},
	}, {
		name: "directives apply to the next block",
		src: "<!-- doctest: wait 90s, match-lines, exit 1 -->\n" + // 1
			"```console\n" + // 2
			"$ false\n" + // 3
			"```\n" + // 4
			"```console\n" + // 5
			"$ true\n" + // 6
			"```\n", // 7
		want: []Block{
			{Line: 2, Opts: Options{Wait: 90 * time.Second, MatchLines: true, Exit: 1}, Steps: []Step{{Line: 3, Command: "false"}}},
			{Line: 5, Steps: []Step{{Line: 6, Command: "true"}}},
		},
	}, {
		name: "skip keeps its reason, commas and all",
		src:  "<!-- doctest: skip needs a new cluster, and a token -->\n```console\n$ make local-up\n```\n",
		want: []Block{{Line: 2, Opts: Options{Skip: "needs a new cluster, and a token"}, Steps: []Step{{Line: 3, Command: "make local-up"}}}},
	}, {
		name: "a backslash and a here-document continue the command",
		src: "```console\n" + // 1
			"$ kubectl apply \\\n" + // 2
			"    -f - <<'EOF'\n" + // 3
			"$ not a command: in the here-document\n" + // 4
			"EOF\n" + // 5
			"configured\n" + // 6
			"$ cat <<<'here-string'\n" + // 7
			"here-string\n" + // 8
			"```\n", // 9
		want: []Block{{Line: 1, Steps: []Step{
			{Line: 2, Command: "kubectl apply \\\n    -f - <<'EOF'\n$ not a command: in the here-document\nEOF", Want: []WantLine{{6, "configured"}}},
			{Line: 7, Command: "cat <<<'here-string'", Want: []WantLine{{8, "here-string"}}},
		}}},
	}, {
		name:    "unknown directive",
		src:     "<!-- doctest: retry 3 -->\n```console\n$ true\n```\n",
		wantErr: `page.md:1: unknown directive "retry": the directives are "match-lines", "wait <duration>", "exit <code>" and "skip <reason>"`,
	}, {
		name:    "a bad duration",
		src:     "<!-- doctest: wait soon -->\n```console\n$ true\n```\n",
		wantErr: `page.md:1: "wait soon": "soon" is not a positive duration`,
	}, {
		name:    "skip without a reason",
		src:     "<!-- doctest: skip -->\n```console\n$ true\n```\n",
		wantErr: `page.md:1: skip without a reason`,
	}, {
		name:    "a comment before a block of another language",
		src:     "<!-- doctest: wait 5s -->\n```yaml\na: b\n```\n",
		wantErr: "page.md:1: the doctest comment is followed by a ```yaml block, and only ```console blocks run",
	}, {
		name:    "a comment before prose",
		src:     "<!-- doctest: wait 5s -->\nSome text.\n```console\n$ true\n```\n",
		wantErr: "page.md:1: the doctest comment is not followed by a ```console block",
	}, {
		name:    "output before the first command",
		src:     "```console\nNAME\n$ true\n```\n",
		wantErr: `page.md:2: output before any command in the ` + "```console block of line 1",
	}, {
		name:    "an unfinished here-document",
		src:     "```console\n$ cat <<EOF\nno end\n```\n",
		wantErr: `page.md:4: the block ends inside a command`,
	}, {
		name:    "an unclosed block",
		src:     "```console\n$ true\n",
		wantErr: "page.md:1: the code block is not closed: add a closing ```",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("page.md", []byte(tc.src))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, p.Blocks); diff != "" {
				t.Errorf("blocks (-want +got):\n%s", diff)
			}
		})
	}
}

// step is a Step expecting want, its lines numbered from 11.
func step(want ...string) Step {
	s := Step{Line: 10, Command: "cmd"}
	for i, w := range want {
		s.Want = append(s.Want, WantLine{Line: 11 + i, Text: w})
	}
	return s
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name       string
		step       Step
		out        string
		matchLines bool
		want       *Mismatch // nil: matches
	}{{
		name: "columns whatever their widths, placeholders, trailing empty lines",
		step: step("NAMESPACE NAME AGE", "clusternet-<id>   clusternet-cluster-<id>   <age>", "pod hello-<id>-<id> <ip> <n> <time>"),
		out:  "NAMESPACE          NAME                       AGE\nclusternet-xqlpn   clusternet-cluster-vqt5c   2m3s\npod hello-64fc9698cc-87lhf 10.96.136.203 0 2026-12-06T15:54:09Z\n\n",
	}, {
		name: "kubectl's own <none> is literal",
		step: step("svc <none>"),
		out:  "svc  <unset>",
		want: &Mismatch{Line: 11, Want: "svc <none>", Got: "svc  <unset>", Why: "output line 1 does not match"},
	}, {
		name: "a mismatch names the expected line",
		step: step("web 3/3", "api 2/2"),
		out:  "web 3/3\napi 1/2",
		want: &Mismatch{Line: 12, Want: "api 2/2", Got: "api 1/2", Why: "output line 2 does not match"},
	}, {
		name: "missing output",
		step: step("web 3/3", "api 2/2"),
		out:  "web 3/3\n",
		want: &Mismatch{Line: 12, Want: "api 2/2", Why: "the output ended before this line"},
	}, {
		name: "more output than expected",
		step: step("web 3/3"),
		out:  "web 3/3\napi 2/2",
		want: &Mismatch{Line: 11, Got: "api 2/2", Why: "the output goes on after what is expected, from output line 2"},
	}, {
		name: "nothing expected, something printed",
		step: step(),
		out:  "error: oops",
		want: &Mismatch{Line: 10, Got: "error: oops", Why: "the output goes on after what is expected, from output line 1"},
	}, {
		name: "an ellipsis line takes any lines, ... in a line any text",
		step: step("first", "...", `I... "Deploying failed" ... reason="validating ...`, "last"),
		out:  "first\nnoise\nmore noise\nI1206 15:56:30.48 32135 controller.go:538] \"Deploying failed\" key=\"a/b\" reason=\"validating (dry-run)\"\nlast",
	}, {
		name: "an ellipsis line takes no lines too",
		step: step("first", "...", "last"),
		out:  "first\nlast",
	}, {
		name: "past an ellipsis, the line that got furthest is reported",
		step: step("first", "...", "second", "third"),
		out:  "first\nx\nsecond\nthird?",
		want: &Mismatch{Line: 14, Want: "third", Got: "third?", Why: "output line 4 does not match"},
	}, {
		name:       "match-lines: in order, among other lines",
		step:       step("b", "d"),
		out:        "a\nb\nc\nd\ne",
		matchLines: true,
	}, {
		name:       "match-lines: out of order",
		step:       step("d", "b"),
		out:        "a\nb\nc\nd\ne",
		matchLines: true,
		want:       &Mismatch{Line: 12, Want: "b", Why: "no line after output line 4 matches"},
	}, {
		name:       "match-lines: absent",
		step:       step("z"),
		out:        "a\nb",
		matchLines: true,
		want:       &Mismatch{Line: 11, Want: "z", Why: "no line in the output matches"},
	}, {
		name: "regular expression characters in the expected line are literal",
		step: step("a.b [x] (y)*"),
		out:  "aXb [x] (y)*",
		want: &Mismatch{Line: 11, Want: "a.b [x] (y)*", Got: "aXb [x] (y)*", Why: "output line 1 does not match"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(tc.step, tc.out, tc.matchLines)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// page parses src as page.md, failing the test on an error.
func page(t *testing.T, src string) *Page {
	t.Helper()
	p, err := Parse("page.md", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunPage(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "count")
	tests := []struct {
		name string
		src  string
		// wantErr is in the failure ("" when the page passes).
		wantErr []string
	}{{
		name: "variables and the folder hold from command to command, and block to block",
		src: "```console\n$ NAME=world; mkdir -p sub; cd sub\n$ echo \"hello $NAME from ${PWD##*/}\"\nhello world from sub\n```\n" +
			"```console\n$ echo $NAME\nworld\n```\n",
	}, {
		name: "standard error is output too, and a here-document is input",
		src:  "```console\n$ cat <<'EOF'\n$HOME stays as written\nEOF\n$HOME stays as written\n$ echo oops >&2\noops\n```\n",
	}, {
		name: "a command does not read the next ones as its input",
		src:  "```console\n$ cat\n$ echo next\nnext\n```\n",
	}, {
		name:    "a mismatch names the page, the line, the command, want and got",
		src:     "```console\n$ printf 'a\\nb\\n'\na\nc\n```\n",
		wantErr: []string{"page.md:2: $ printf 'a\\nb\\n'", "line 4: output line 2 does not match", "want: c", "got:  b", "  | a\n  | b"},
	}, {
		name:    "the exit code is checked",
		src:     "```console\n$ echo fails; false\nfails\n```\n",
		wantErr: []string{"page.md:2: $ echo fails; false", "exit code 1, the page expects 0", "doctest: exit N"},
	}, {
		name: "exit says which code the page shows",
		src:  "<!-- doctest: exit 3 -->\n```console\n$ echo no; exit_with() { return $1; }; exit_with 3\nno\n```\n",
	}, {
		name:    "exit fails a command that succeeds",
		src:     "<!-- doctest: exit 1 -->\n```console\n$ true\n```\n",
		wantErr: []string{"exit code 0, the page expects 1"},
	}, {
		name: "wait runs the command again until it matches",
		src:  "<!-- doctest: wait 20s -->\n```console\n$ echo x >> " + counter + "; wc -l < " + counter + "\n3\n```\n",
	}, {
		name:    "wait gives up, and says how long it tried",
		src:     "<!-- doctest: wait 2s -->\n```console\n$ echo never\nalways\n```\n",
		wantErr: []string{"want: always", "got:  never", "the block waits up to 2s", "whole output of the last run"},
	}, {
		name: "skipped blocks do not run",
		src:  "<!-- doctest: skip it would fail -->\n```console\n$ false\n```\n",
	}, {
		name:    "a command that exits the shell fails the page",
		src:     "```console\n$ exit 0\n$ true\n```\n",
		wantErr: []string{"page.md:2: $ exit 0", "the shell exited"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runner{Dir: dir, Env: os.Environ(), Timeout: 10 * time.Second, Interval: 100 * time.Millisecond}
			err := r.RunPage(page(t, tc.src))
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("the page passed; want a failure with %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("failure lacks %q:\n%s", w, err)
				}
			}
		})
	}
}

func TestRunTimeout(t *testing.T) {
	r := &Runner{Dir: t.TempDir(), Env: os.Environ(), Timeout: 300 * time.Millisecond}
	err := r.RunPage(page(t, "```console\n$ echo 'unclosed\n$ true\n```\n"))
	if err == nil || !strings.Contains(err.Error(), "did not finish within 300ms") {
		t.Fatalf("error %v, want a timeout", err)
	}
}

func TestChanges(t *testing.T) {
	before := []string{"subscription.apps.clusternet.io/app-demo", "cluster a labels {}"}
	if got := changes(before, slices.Clone(before)); got != "" {
		t.Errorf("changes of equal snapshots = %q, want none", got)
	}
	after := []string{"subscription.apps.clusternet.io/app-demo", "subscription.apps.clusternet.io/web", `cluster a labels {"region":"east"}`}
	want := "  + subscription.apps.clusternet.io/web\n  + cluster a labels {\"region\":\"east\"}\n  - cluster a labels {}\n"
	if got := changes(before, after); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
}
