package englishhelp

import (
	"regexp"
	"strings"

	"github.com/spf13/cobra"
)

// unfit are command lines of kubectl's examples that cannot work on
// templates, each with the reason. The plugin runs kubectl's commands on
// templates in the parent, so an example that needs a live object, a node,
// a terminal or a resource version no template has would only teach users
// a command that fails.
var unfit = []struct {
	line *regexp.Regexp
	why  string
}{
	{regexp.MustCompile(`--subresource[= ]'?status'?`), "templates have no status: the shadow API serves only the scale subresource"},
	{regexp.MustCompile(`\bnodes? \S|node\.json`), "nodes are the parent's own, never templates"},
	{regexp.MustCompile(`--resource-version=1\b`), "no template has resource version 1: the precondition always fails"},
	{regexp.MustCompile(`KUBE_EDITOR=`), "picks an interactive editor"},
}

// absolutePath is a sample path of kubectl's examples that would need a
// folder at the root of the file system ("--from-file=key1=/path/to/bar");
// the examples name the same files relative to the current folder.
var absolutePath = regexp.MustCompile(`=/path/to/`)

// FitExamples drops, from the examples of cmd and every command under it,
// each paragraph (a comment and its command lines) with a command line
// that cannot work on templates (unfit), and makes absolute sample paths
// relative. Only command lines are matched, never comments, so it works
// whatever language kubectl's help is in.
func FitExamples(cmd *cobra.Command) {
	cmd.Example = absolutePath.ReplaceAllString(fitExample(cmd.Example), "=path/to/")
	for _, c := range cmd.Commands() {
		FitExamples(c)
	}
}

// fitExample is example without its unfit paragraphs. Paragraphs are
// separated by blank lines (templates.Examples indents those too).
func fitExample(example string) string {
	seps := blankLine.FindAllString(example, -1)
	if len(seps) == 0 {
		if unfitParagraph(example) {
			return ""
		}
		return example
	}
	var kept []string
	for _, p := range blankLine.Split(example, -1) {
		if !unfitParagraph(p) {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, seps[0])
}

var blankLine = regexp.MustCompile(`\n[ \t]*\n`)

func unfitParagraph(p string) bool {
	for _, line := range strings.Split(p, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, u := range unfit {
			if u.line.MatchString(line) {
				return true
			}
		}
	}
	return false
}
