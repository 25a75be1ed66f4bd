package main

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Finding is one problem in the docs.
type Finding struct {
	File string
	Line int
	// Msg says what is wrong and how to fix it.
	Msg string
}

func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.Msg) }

// Checker checks Markdown files of one repository.
type Checker struct {
	root string
	cmds Commands
	// topDirs and topFiles are the repository's top-level entries: a word
	// starting with one of them is a repository path.
	topDirs, topFiles map[string]bool
	targets           map[string]bool
	// anyFlag is every flag of our commands and of the allow-listed tools:
	// what a flag named without its command must be one of.
	anyFlag map[string]bool
	anchors map[string][]string
	paths   []string // every file and directory, for suggestions
	// programs are the flags of the repository's Go programs, by directory.
	programs map[string]map[string]bool
}

// notInRepository are top-level folders that builds fill (.gitignore): docs
// name their files (bin/hub, _output/testbed/...), which a clean checkout
// does not have.
var notInRepository = map[string]bool{".git": true, "bin": true, "_output": true}

// NewChecker reads what the docs are checked against: the top-level entries
// of root, the targets of its Makefile and the flags of cmds.
func NewChecker(root string, cmds Commands) (*Checker, error) {
	c := &Checker{root: root, cmds: cmds, topDirs: map[string]bool{}, topFiles: map[string]bool{},
		anyFlag: map[string]bool{}, anchors: map[string][]string{}, programs: map[string]map[string]bool{}}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		switch {
		case notInRepository[e.Name()]:
		case e.IsDir():
			c.topDirs[e.Name()] = true
		default:
			c.topFiles[e.Name()] = true
		}
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		return nil, err
	}
	c.targets = makeTargets(string(makefile))
	for _, cmd := range []*cobra.Command{cmds.Hub, cmds.Agent, cmds.Plugin, cmds.Kubectl} {
		treeFlagNames(cmd, c.anyFlag)
	}
	for _, flags := range otherTools {
		for _, f := range flags {
			c.anyFlag[f] = true
		}
	}
	// The repository's programs (test/bench, local-up, hack/...): a doc may
	// name their flags too.
	c.walkPaths()
	for _, p := range c.paths {
		if path.Base(p) != "main.go" {
			continue
		}
		if flags, ok := c.programFlags(path.Dir(p)); ok {
			for f := range flags {
				c.anyFlag[f] = true
			}
		}
	}
	return c, nil
}

var makeRule = regexp.MustCompile(`^([A-Za-z0-9_.][^:=#\s]*(?:[ \t]+[^:=#\s]+)*)[ \t]*::?(?:[^=]|$)`)

// makeTargets are the explicit targets of a Makefile (pattern rules and
// targets built from variables are not targets one types).
func makeTargets(makefile string) map[string]bool {
	targets := map[string]bool{}
	for _, line := range strings.Split(makefile, "\n") {
		m := makeRule.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, t := range strings.Fields(m[1]) {
			if !strings.ContainsAny(t, "%$") && !strings.HasPrefix(t, ".") {
				targets[t] = true
			}
		}
	}
	return targets
}

// fileCheck is the state of checking one file.
type fileCheck struct {
	*Checker
	file     string // relative to root, forward slashes
	findings []Finding
}

func (f *fileCheck) report(line int, format string, args ...any) {
	f.findings = append(f.findings, Finding{File: f.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// CheckFile checks one Markdown file, named relative to the root.
func (c *Checker) CheckFile(file string) ([]Finding, error) {
	data, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(file)))
	if err != nil {
		return nil, err
	}
	f := &fileCheck{Checker: c, file: file}
	var (
		fenceMarker, lang string
		continued         bool   // the previous command line ended with \
		heredoc           string // the word ending a here-document
	)
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		if marker, l, ok := fenceLine(line); ok {
			switch {
			case fenceMarker == "":
				fenceMarker, lang, continued, heredoc = marker, l, false, ""
				continue
			case marker[0] == fenceMarker[0] && len(marker) >= len(fenceMarker):
				fenceMarker = ""
				continue
			}
		}
		if fenceMarker == "" {
			f.prose(n, line)
			continue
		}
		if heredoc != "" {
			if strings.TrimSpace(line) == heredoc {
				heredoc = ""
			}
			continue
		}
		cmd, isCmd := commandLine(lang, line, continued)
		continued = isCmd && strings.HasSuffix(strings.TrimSpace(line), `\`)
		switch {
		case isCmd:
			if m := heredocStart.FindStringSubmatch(cmd); m != nil {
				heredoc = m[1]
			}
			f.command(n, cmd, "")
		case lang == "yaml" || lang == "yml" || lang == "":
			f.yamlArg(n, line)
		}
	}
	slices.SortStableFunc(f.findings, func(a, b Finding) int { return a.Line - b.Line })
	return f.findings, nil
}

var heredocStart = regexp.MustCompile(`<<-?\s*['"]?([A-Za-z_]+)['"]?`)

// shellFirstWords start a command line in a code block without a prompt
// or language: the commands the docs show.
// (Not a bare hub or agent: output lines start with those words too.)
var shellFirstWords = map[string]bool{
	"kubectl": true, "kubectl-clusternet": true, "helm": true, "make": true, "go": true,
	"clusternet-hub": true, "clusternet-agent": true,
}

// commandLine says whether a line of a code block in language lang is a
// shell command, and returns the command without its prompt.
func commandLine(lang, line string, continued bool) (string, bool) {
	trimmed := strings.TrimSpace(line)
	if continued {
		return trimmed, true
	}
	if rest, ok := strings.CutPrefix(trimmed, "$ "); ok {
		return rest, true
	}
	switch lang {
	case "sh", "bash", "shell", "zsh":
		return trimmed, trimmed != "" && !strings.HasPrefix(trimmed, "#")
	case "":
		words := strings.Fields(trimmed)
		for len(words) > 0 && envAssignment.MatchString(words[0]) {
			words = words[1:]
		}
		if len(words) > 0 && (shellFirstWords[words[0]] || strings.HasPrefix(words[0], "bin/") || strings.HasPrefix(words[0], "./bin/")) {
			return trimmed, true
		}
	}
	return "", false
}

var yamlFlagArg = regexp.MustCompile(`^\s*-\s+["']?(--[A-Za-z0-9][A-Za-z0-9_-]*)`)

// yamlArg checks a container argument in YAML (- --flag=value). Which
// binary the manifest runs is not known here, so one of ours must have it.
func (f *fileCheck) yamlArg(n int, line string) {
	if m := yamlFlagArg.FindStringSubmatch(line); m != nil {
		f.anyFlagExists(n, m[1])
	}
}

// prose checks a line outside code blocks: its links and its code spans.
func (f *fileCheck) prose(n int, line string) {
	text, spans := codeSpans(line)
	shown := func(link string) string { return strings.ReplaceAll(link, spanMark, "`...`") }
	for _, m := range linkDest.FindAllStringSubmatch(text, -1) {
		f.link(n, shown(m[0]), m[1])
	}
	if m := linkDefinition.FindStringSubmatch(text); m != nil {
		f.link(n, shown(m[0]), m[1])
	}
	inTable := strings.HasPrefix(strings.TrimSpace(line), "|")
	for _, s := range spans {
		code := strings.TrimSpace(s.code)
		if inTable {
			code = strings.ReplaceAll(code, `\|`, "|")
		}
		before, _ := codeSpans(line[:s.start])
		f.span(n, code, strings.ToLower(before))
	}
}

var (
	linkDest       = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	linkDefinition = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	urlScheme      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// spanMark stands for a code span in the text around it.
const spanMark = "\x00"

type span struct {
	start int // byte offset of the opening backticks
	code  string
}

// codeSpans splits a line into its text outside code spans (each span
// replaced by spanMark, so link text keeps its brackets) and the spans.
func codeSpans(line string) (string, []span) {
	var text strings.Builder
	var spans []span
	for i := 0; i < len(line); {
		if line[i] == '\\' && i+1 < len(line) {
			text.WriteString(line[i : i+2])
			i += 2
			continue
		}
		if line[i] != '`' {
			text.WriteByte(line[i])
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] == '`' {
			j++
		}
		ticks := line[i:j]
		end := -1
		for k := j; k < len(line); {
			if line[k] != '`' {
				k++
				continue
			}
			e := k
			for e < len(line) && line[e] == '`' {
				e++
			}
			if e-k == len(ticks) {
				end = k
				break
			}
			k = e
		}
		if end < 0 {
			text.WriteString(ticks)
			i = j
			continue
		}
		spans = append(spans, span{start: i, code: line[j:end]})
		text.WriteString(spanMark)
		i = end + len(ticks)
	}
	return text.String(), spans
}

// link checks a relative link and its anchor.
func (f *fileCheck) link(n int, text, dest string) {
	if dest == "" || urlScheme.MatchString(dest) || strings.HasPrefix(dest, "//") {
		return
	}
	p, anchor, _ := strings.Cut(dest, "#")
	if unescaped, err := url.PathUnescape(p); err == nil {
		p = unescaped
	}
	target := f.file
	switch {
	case p == "":
	case strings.HasPrefix(p, "/"):
		target = path.Clean(strings.TrimPrefix(p, "/"))
	default:
		target = path.Join(path.Dir(f.file), p)
	}
	if target == ".." || strings.HasPrefix(target, "../") {
		f.report(n, "link %s points outside the repository (%s): link to a page on the web, or drop it", text, target)
		return
	}
	info, err := os.Stat(filepath.Join(f.root, filepath.FromSlash(target)))
	if err != nil {
		f.report(n, "link %s: %s does not exist: %s", text, target, f.pathFix(target, path.Dir(f.file)))
		return
	}
	if anchor == "" || info.IsDir() || path.Ext(target) != ".md" {
		return
	}
	have, err := f.anchorsOf(target)
	if err != nil {
		f.report(n, "link %s: %v", text, err)
		return
	}
	if slices.Contains(have, anchor) {
		return
	}
	shown := have
	if len(shown) > 8 {
		shown = append(slices.Clone(shown[:8]), "...")
	}
	fix := "link to one of its headings: " + strings.Join(shown, ", ")
	if best := closest(anchor, have); best != "" {
		fix = fmt.Sprintf("did you mean #%s?", best)
	}
	f.report(n, "link %s: %s has no heading with anchor #%s: %s", text, target, anchor, fix)
}

func (c *Checker) anchorsOf(file string) ([]string, error) {
	if a, ok := c.anchors[file]; ok {
		return a, nil
	}
	data, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(file)))
	if err != nil {
		return nil, err
	}
	c.anchors[file] = anchors(string(data))
	return c.anchors[file], nil
}

// span checks a code span in prose. before is the line up to the span, in
// lower case: what says whose flag a lone --flag is.
func (f *fileCheck) span(n int, code, before string) {
	words := strings.Fields(code)
	if len(words) == 0 {
		return
	}
	if strings.HasPrefix(words[0], "--") && words[0] != "--" {
		f.loneFlag(n, code, words, before)
		return
	}
	if f.isCommand(words) {
		f.command(n, code, code)
		return
	}
	for _, w := range words {
		f.pathWord(n, w)
	}
}

// isCommand says whether a code span in prose is a command line.
func (f *fileCheck) isCommand(words []string) bool {
	i := 0
	for i < len(words) && envAssignment.MatchString(words[i]) {
		i++
	}
	if i == len(words) {
		return false
	}
	w := words[i]
	if w == "$" {
		return true
	}
	if shellFirstWords[w] || w == "hub" || w == "agent" || otherTools[w] != nil || strings.HasPrefix(w, "bin/") || strings.HasPrefix(w, "./bin/") {
		// A lone `make` or `go` names the tool, not a command line.
		return len(words) > i+1 || w == "make"
	}
	// `get --clusters`: a command of the plugin, named without kubectl clusternet.
	return len(words) > i+1 && subcommand(f.cmds.Plugin, w) != nil && strings.HasPrefix(words[i+1], "-")
}

// A lone flag in prose is the command's that the words just before it name:
// "the hub's `--workers`", "agent flags: `--parent-url`, `--cluster-name`".
var (
	flagOwnerHub    = flagOwner(`clusternet-hub|\bhub`)
	flagOwnerAgent  = flagOwner(`clusternet-agent|\bagent`)
	flagOwnerPlugin = flagOwner(`kubectl clusternet|\bplugin`)
)

func flagOwner(names string) *regexp.Regexp {
	return regexp.MustCompile(`(?:` + names + `)(?:'s)?(?: flags?)?:?(?:\s*[,/]?\s*(?:` + spanMark + `|\([^()]*\)))*\s*[,/(]?\s*$`)
}

// loneFlag checks a span that starts with a flag: `--flag`, `--flag=value`
// or `--flag <value>`.
func (f *fileCheck) loneFlag(n int, code string, words []string, before string) {
	switch {
	case flagOwnerHub.MatchString(before):
		f.flagsOf(n, code, f.cmds.Hub, "clusternet-hub", words)
	case flagOwnerAgent.MatchString(before):
		f.flagsOf(n, code, f.cmds.Agent, "clusternet-agent", words)
	case flagOwnerPlugin.MatchString(before):
		f.flagsOf(n, code, f.cmds.Plugin, "kubectl clusternet", words)
	default:
		name, _, _ := strings.Cut(words[0], "=")
		f.anyFlagExists(n, name)
	}
}

// anyFlagExists checks a flag whose command the docs leave open: one of
// ours, or an allow-listed one of another tool, must have it.
func (f *fileCheck) anyFlagExists(n int, flag string) {
	name := strings.TrimPrefix(flag, "--")
	if matchFlag(name, f.anyFlag) {
		return
	}
	fix := "fix or drop it"
	if best := closest(name, keys(f.anyFlag)); best != "" {
		fix = fmt.Sprintf("did you mean --%s?", best)
	}
	f.report(n, "flag --%s: no such flag in clusternet-hub, clusternet-agent, kubectl clusternet, kubectl or this repository's programs, nor in hack/doccheck/allowlist.go: %s", name, fix)
}

// matchFlag says whether name, which may hold * (--chart-repository-*), is
// one of have.
func matchFlag(name string, have map[string]bool) bool {
	name = normalize(name)
	if !strings.Contains(name, "*") {
		return have[name]
	}
	re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(name), `\*`, ".*") + "$")
	for h := range have {
		if re.MatchString(h) {
			return true
		}
	}
	return false
}

var envAssignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// command checks one shell line: make targets, flags of the commands it
// runs, repository paths in its words. inline is the span's text when the
// line is a code span in prose, for the messages.
func (f *fileCheck) command(n int, line, inline string) {
	for _, words := range shellCommands(line) {
		for _, w := range pathWords(words) {
			f.pathWord(n, w)
		}
		f.simpleCommand(n, words, inline)
	}
}

// pathWords are the words of a command that may be paths: all of them,
// but for kubectl only the values of its file flags, since its other
// arguments are resources (deploy/clusternet-hub is a Deployment).
func pathWords(words []string) []string {
	isKubectl := false
	for _, w := range words {
		if !envAssignment.MatchString(w) {
			isKubectl = path.Base(w) == "kubectl" || path.Base(w) == "kubectl-clusternet"
			break
		}
	}
	if !isKubectl {
		return words
	}
	var out []string
	for i, w := range words {
		name, _, hasValue := strings.Cut(w, "=")
		switch name {
		case "-f", "--filename", "-k", "--kustomize", "--kubeconfig", "--manifest", "--archive":
			if hasValue {
				out = append(out, w)
			} else if i+1 < len(words) {
				out = append(out, words[i+1])
			}
		}
	}
	return out
}

// shellCommands splits a command line into its simple commands: words split
// at whitespace, quotes removed, a comment dropped, and a new command at
// each &&, ||, ;, | and $( (a | inside a word, as in --clusters all|a,b,
// is no pipe).
func shellCommands(line string) [][]string {
	var cmds [][]string
	var cur []string
	var word strings.Builder
	inWord := false
	flushWord := func() {
		if inWord {
			cur = append(cur, word.String())
			word.Reset()
			inWord = false
		}
	}
	flushCmd := func() {
		flushWord()
		if len(cur) > 0 {
			cmds = append(cmds, cur)
			cur = nil
		}
	}
	var quote byte
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			} else {
				word.WriteByte(ch)
			}
		case ch == '\'' || ch == '"':
			quote, inWord = ch, true
		case ch == ' ' || ch == '\t':
			flushWord()
		case ch == '#' && !inWord:
			flushCmd()
			return cmds
		case ch == '\\' && i == len(line)-1:
		case ch == ';' || ch == '`' || ch == '(' || ch == ')':
			flushCmd()
		case ch == '$' && i+1 < len(line) && line[i+1] == '(':
			flushCmd()
			i++
		case (ch == '&' || ch == '|') && !inWord:
			// && and || and a | between words end a command; & alone too.
			flushCmd()
			if i+1 < len(line) && line[i+1] == ch {
				i++
			}
		default:
			word.WriteByte(ch)
			inWord = true
		}
	}
	flushCmd()
	return cmds
}

// simpleCommand checks the flags and make targets of one command.
func (f *fileCheck) simpleCommand(n int, words []string, inline string) {
	i := 0
	for i < len(words) {
		switch w := words[i]; {
		case envAssignment.MatchString(w), w == "sudo", w == "time", w == "env", w == "exec":
			i++
		case w == "nice":
			i++
			if i+1 < len(words) && words[i] == "-n" {
				i += 2
			}
		default:
			goto found
		}
	}
	return
found:
	name, args := path.Base(words[i]), words[i+1:]
	shown := inline
	if shown == "" {
		shown = strings.Join(words, " ")
	}
	switch name {
	case "make":
		f.makeTargets(n, shown, args)
	case "hub", "clusternet-hub":
		f.flagsOf(n, shown, f.cmds.Hub, "clusternet-hub", args)
	case "agent", "clusternet-agent":
		f.flagsOf(n, shown, f.cmds.Agent, "clusternet-agent", args)
	case "kubectl-clusternet":
		f.flagsOf(n, shown, f.cmds.Plugin, "kubectl clusternet", args)
	case "kubectl":
		f.kubectl(n, shown, args)
	case "go":
		f.goCommand(n, shown, args)
	default:
		if dir := f.programDir(words[i]); dir != "" && strings.Contains(words[i], "/") {
			f.programFlagsOf(n, shown, dir, args)
		} else if otherTools[name] != nil {
			f.toolFlags(n, shown, name, args)
		} else if subcommand(f.cmds.Plugin, name) != nil && inline != "" {
			f.flagsOf(n, shown, f.cmds.Plugin, "kubectl clusternet", words[i:])
		}
	}
}

// kubectl checks `kubectl ...`: the plugin after `clusternet`, a plugin
// such as krew by the allow-list, kubectl's own commands by its flags.
func (f *fileCheck) kubectl(n int, shown string, args []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if fl := kubectlFlag(f.cmds.Kubectl, a); fl != nil && takesValue(fl) && !strings.Contains(a, "=") {
				i++
			}
			continue
		}
		switch {
		case a == "clusternet":
			f.flagsOf(n, shown, f.cmds.Plugin, "kubectl clusternet", append(slices.Clone(args[:i]), args[i+1:]...))
		case subcommand(f.cmds.Kubectl, a) == nil && otherTools[a] != nil:
			f.toolFlags(n, shown, a, args[i+1:])
		default:
			f.flagsOf(n, shown, f.cmds.Kubectl, "kubectl", args)
		}
		return
	}
	f.flagsOf(n, shown, f.cmds.Kubectl, "kubectl", args)
}

func kubectlFlag(cmd *cobra.Command, arg string) *pflag.Flag {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	if strings.HasPrefix(arg, "--") {
		return lookupFlag(cmd, name)
	}
	if len(name) == 1 {
		return lookupShorthand(cmd, name)
	}
	return nil
}

// goCommand checks `go run <package> flags...`: the flags after the
// package are the program's.
func (f *fileCheck) goCommand(n int, shown string, args []string) {
	if len(args) < 2 || args[0] != "run" {
		f.toolFlags(n, shown, "go", args)
		return
	}
	for i := 1; i < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			continue
		}
		f.toolFlags(n, shown, "go", args[1:i])
		if dir := f.programDir(args[i]); dir != "" {
			f.programFlagsOf(n, shown, dir, args[i+1:])
		}
		return
	}
}

// programFlagsOf checks the flags given to one of the repository's programs.
func (f *fileCheck) programFlagsOf(n int, shown, dir string, args []string) {
	have, ok := f.programFlags(dir)
	if !ok {
		f.report(n, "`%s`: %s holds no Go program: fix the command", shown, dir)
		return
	}
	for _, a := range args {
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if have[name] {
			continue
		}
		fix := "see its flags in " + dir
		if best := closest(name, keys(have)); best != "" {
			fix = fmt.Sprintf("did you mean --%s?", best)
		}
		f.report(n, "flag --%s in `%s`: the program in %s has no such flag: %s", name, shown, dir, fix)
	}
}

// toolFlags checks the long flags of another tool against the allow-list.
func (f *fileCheck) toolFlags(n int, shown, tool string, args []string) {
	have := map[string]bool{}
	for _, fl := range otherTools[tool] {
		have[fl] = true
	}
	for _, a := range args {
		if !strings.HasPrefix(a, "--") || a == "--" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if matchFlag(name, have) {
			continue
		}
		f.report(n, "flag --%s of %s (in `%s`) is not in the allow-list of other tools' flags: check it against %s's own help and add it to otherTools[%q] in hack/doccheck/allowlist.go, or fix the doc",
			name, tool, shown, tool, tool)
	}
}

// flagsOf checks args against a command tree: subcommands are followed
// while the words name them, each long flag must be one of the command
// reached (or its parents' persistent ones). The plugin's --cluster and
// --cluster-id hand the rest to kubectl's command tree.
func (f *fileCheck) flagsOf(n int, shown string, root *cobra.Command, display string, args []string) {
	cmd := root
	descend := true
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if strings.Contains(name, "*") {
				have := map[string]bool{}
				for _, fl := range flagNames(cmd) {
					have[fl] = true
				}
				if !matchFlag(name, have) {
					f.unknownFlag(n, shown, cmd, display, name)
				}
				continue
			}
			fl := lookupFlag(cmd, name)
			if fl == nil {
				f.unknownFlag(n, shown, cmd, display, name)
				continue
			}
			if !hasValue && takesValue(fl) && i+1 < len(args) {
				i++
				value = args[i]
			}
			if root == f.cmds.Plugin && (fl.Name == "cluster" || fl.Name == "cluster-id") && value != "" && !isKubeconfig(cmd) {
				// kubectl clusternet --cluster <child> <any kubectl command>:
				// the flag may stand anywhere, the rest is kubectl's.
				rest := append(slices.Clone(args[:i-1]), args[i+1:]...)
				if hasValue {
					rest = append(slices.Clone(args[:i]), args[i+1:]...)
				}
				f.flagsOf(n, shown, f.cmds.Kubectl, "kubectl clusternet --"+fl.Name+" <cluster>", rest)
				return
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			if fl := lookupShorthand(cmd, a[1:2]); fl != nil && len(a) == 2 && takesValue(fl) {
				i++
			}
		case descend:
			if sub := subcommand(cmd, a); sub != nil {
				cmd = sub
				display += " " + sub.Name()
			} else {
				descend = false
			}
		}
	}
}

// owners are those of our commands that have the flag.
func (f *fileCheck) owners(name string) []string {
	var out []string
	for _, o := range []struct {
		name string
		cmd  *cobra.Command
	}{{"clusternet-hub", f.cmds.Hub}, {"clusternet-agent", f.cmds.Agent}, {"kubectl clusternet", f.cmds.Plugin}} {
		have := map[string]bool{}
		treeFlagNames(o.cmd, have)
		if have[normalize(name)] {
			out = append(out, o.name)
		}
	}
	return out
}

func isKubeconfig(cmd *cobra.Command) bool { return cmd.Name() == "kubeconfig" }

func (f *fileCheck) unknownFlag(n int, shown string, cmd *cobra.Command, display, name string) {
	fix := fmt.Sprintf("see `%s --help`", display)
	if best := closest(name, flagNames(cmd)); best != "" {
		fix = fmt.Sprintf("did you mean --%s?", best)
	} else if owners := f.owners(name); len(owners) > 0 {
		fix = fmt.Sprintf("it is a flag of %s: name that command, or fix the flag", strings.Join(owners, " and "))
	}
	if shown == "--"+name {
		f.report(n, "flag --%s: %s has no such flag: %s", name, display, fix)
		return
	}
	f.report(n, "flag --%s in `%s`: %s has no such flag: %s", name, shown, display, fix)
}

// makeTargets checks `make [VAR=value] [flags] target...`.
func (f *fileCheck) makeTargets(n int, shown string, args []string) {
	for _, a := range args {
		switch {
		case a == "-C" || strings.HasPrefix(a, "--directory") || strings.HasPrefix(a, "-f"):
			return // another Makefile
		case strings.HasPrefix(a, "-"), envAssignment.MatchString(a), strings.ContainsAny(a, "$<>*"), a == "...":
		case !f.targets[a]:
			fix := "run `make help` for the targets"
			if best := closest(a, keys(f.targets)); best != "" {
				fix = fmt.Sprintf("did you mean `make %s`?", best)
			}
			f.report(n, "`%s`: the Makefile has no target %q: %s", shown, a, fix)
		}
	}
}

// pathWord checks a word that names a repository path: it starts with a
// top-level directory and a slash (pkg/..., ./docs/...), or is a top-level
// file (Makefile). A trailing :line, ~line or #Lline is allowed. What
// follows a glob, a <placeholder>, a {a,b} or a $VAR cannot be checked (it
// may name what is yet to be written), the directory before it is; Go's
// /... and a package-qualified name (pkg/cli.Run) are understood.
func (f *fileCheck) pathWord(n int, word string) {
	w := strings.Trim(word, `"'()[],;`)
	if strings.HasPrefix(w, "-") {
		_, w, _ = strings.Cut(w, "=")
	}
	w = strings.TrimPrefix(w, "./")
	w = lineSuffix.ReplaceAllString(w, "")
	w = strings.TrimRight(w, ".:")
	first, _, hasSlash := strings.Cut(w, "/")
	switch {
	case hasSlash && f.topDirs[first]:
	case !hasSlash && f.topFiles[w]:
		return
	default:
		return
	}
	p := strings.TrimSuffix(strings.TrimSuffix(w, "/..."), "/")
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if !strings.ContainsAny(s, "<>{}$*?[") {
			continue
		}
		dir := strings.Join(segs[:i], "/")
		if !f.isDir(dir) {
			f.report(n, "path `%s`: %s/ does not exist: %s", word, dir, f.pathFix(dir, ""))
		}
		return
	}
	if f.exists(p) {
		return
	}
	// pkg/server/hub.NewCommand: a Go package and one of its names.
	if dot := strings.LastIndex(p, "."); dot > strings.LastIndex(p, "/") && f.isDir(p[:dot]) {
		return
	}
	f.report(n, "path `%s`: %s does not exist: %s", word, p, f.pathFix(p, ""))
}

var lineSuffix = regexp.MustCompile(`(?::\d+(?:-\d+)?|~\d+|#L\d+(?:-L\d+)?)$`)

func (c *Checker) exists(p string) bool {
	_, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(p)))
	return err == nil
}

func (c *Checker) isDir(p string) bool {
	info, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(p)))
	return err == nil && info.IsDir()
}

// pathFix suggests what a missing path should be: a file of the same name
// elsewhere, else the closest path. from, when set, is the directory a
// link is relative to.
func (c *Checker) pathFix(missing, from string) string {
	c.walkPaths()
	var same []string
	for _, p := range c.paths {
		if path.Base(p) == path.Base(missing) {
			same = append(same, p)
		}
	}
	best := ""
	if len(same) == 1 {
		best = same[0]
	} else {
		best = closest(missing, c.paths)
	}
	if best == "" {
		return "fix the path or drop it"
	}
	if from != "" {
		if rel, err := filepath.Rel(filepath.FromSlash(from), filepath.FromSlash(best)); err == nil && filepath.ToSlash(rel) != best {
			return fmt.Sprintf("did you mean %s (%s)?", filepath.ToSlash(rel), best)
		}
	}
	return fmt.Sprintf("did you mean %s?", best)
}

// walkPaths lists every file and directory of the repository once.
func (c *Checker) walkPaths() {
	if c.paths != nil {
		return
	}
	c.paths = []string{}
	_ = filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(c.root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && (notInRepository[rel] || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if rel != "." {
			c.paths = append(c.paths, rel)
		}
		return nil
	})
}

// closest is the candidate nearest to s by edit distance, if near enough
// to be the one meant.
func closest(s string, candidates []string) string {
	best, bestD := "", len(s)/3+2
	better := func(c string, d int) bool {
		switch {
		case best == "" || d != bestD:
			return d < bestD
		case lengthGap(s, c) != lengthGap(s, best):
			return lengthGap(s, c) < lengthGap(s, best)
		}
		return c < best
	}
	for _, c := range candidates {
		if d := distance(s, c); better(c, d) {
			best, bestD = c, d
		}
	}
	return best
}

func lengthGap(a, b string) int { return max(len(a)-len(b), len(b)-len(a)) }

// distance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of neighbours cost one.
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
