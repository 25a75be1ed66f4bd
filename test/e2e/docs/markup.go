// Package docs runs the commands of the tutorial pages on a real testbed
// and fails when what a page shows no longer happens.
//
// # Markup
//
// Every ```console block of a tested page runs (README.md,
// docs/troubleshooting.md and docs/tutorials/*.md). In a block, a line
// starting with "$ " is a command, and the lines after it, up to the next
// command or the end of the block, are its expected output. A command goes
// on over the next lines while a line ends with a backslash, and through a
// here-document (<<EOF ... EOF, <<'EOF', <<-EOF). Blocks in any other
// language (yaml, sh, text, none) are illustrations and do not run.
//
// An HTML comment right before a block, invisible on GitHub, changes how the
// block is run and compared:
//
//	<!-- doctest: match-lines -->   each expected line must appear, in order, among the output lines
//	<!-- doctest: wait 60s -->      run each command again (every second) until its output and exit code match, for up to 60s
//	<!-- doctest: exit 1 -->        each command must exit 1 (0 without it)
//	<!-- doctest: skip <reason> --> do not run the block (say why: it needs a new cluster, it is `make`)
//
// Several go in one comment, separated by commas: <!-- doctest: wait 30s, match-lines -->.
//
// # Comparing
//
// Columns are compared whitespace-insensitively (any run of spaces or tabs
// matches any other, and leading and trailing ones are ignored), and
// trailing empty lines of the output are dropped. What changes from run to
// run is written as a placeholder in the expected output:
//
//	<id>    generated names, uids, hashes: [a-z0-9] runs joined by '-' (clusternet-cluster-<id>, hello-<id>-<id>)
//	<age>   a kubectl age: 5s, 2m3s, 4h, <invalid>
//	<time>  an RFC 3339 time: 2026-12-06T15:54:09Z
//	<ip>    an IPv4 address
//	<n>     a whole number
//	...     in a line, any text; a line of its own, any number of lines
//
// Anything else between < and > (kubectl's <none>, <unset>) is literal.
//
// # Running
//
// The commands of one page run in one bash session, one after the other,
// so variables a command sets (EAST=$(kubectl ...)) hold for the rest of
// the page, in a fresh folder laid out like the repository root after
// `make local-up`: examples/ is the repository's, bin/ holds the built
// kubectl-clusternet, hub and agent, and _output/testbed is the running
// testbed (its logs, its kubeconfigs). KUBECONFIG is the parent's admin
// kubeconfig, and kubectl is the testbed's. A page must leave the parent
// as it found it (its Subscriptions, overrides, HelmCharts, templates and
// cluster labels): the test fails a page that does not, so that the pages
// stay independent and each runs on a fresh `make local-up`.
package docs

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Page is the runnable part of a Markdown page.
type Page struct {
	File   string
	Blocks []Block
}

// Block is one ```console block.
type Block struct {
	// Line is the line of the opening fence.
	Line int
	Opts Options
	// Steps are its commands, in order.
	Steps []Step
}

// Options are what the doctest comment before a block says.
type Options struct {
	// Skip, when not empty, says why the block does not run.
	Skip string
	// MatchLines: the expected lines must appear in order among the
	// output's; otherwise the output is the expected lines exactly.
	MatchLines bool
	// Wait is how long a command is run again until it matches (0: once).
	Wait time.Duration
	// Exit is the exit code each command must give.
	Exit int
}

// Step is a command and the output it must give.
type Step struct {
	// Line is the line of the command's "$ ".
	Line    int
	Command string
	Want    []WantLine
}

// WantLine is a line of expected output and where it stands in the page.
type WantLine struct {
	Line int
	Text string
}

// directiveComment is a doctest comment standing alone on its line.
var directiveComment = regexp.MustCompile(`^\s*<!--\s*doctest:(.*?)-->\s*$`)

// heredocStart finds a here-document in a command, and its end word.
// (<<< is a here-string, which ends on its line.)
var heredocStart = regexp.MustCompile(`(?:^|[^<])<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)

// Parse reads the runnable blocks of a Markdown page. Errors name the file
// and line, what is wrong and how to fix it.
func Parse(file string, src []byte) (*Page, error) {
	p := &parser{page: &Page{File: file}}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if err := p.line(n, sc.Text()); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p.page, p.end()
}

type parser struct {
	page *Page
	// pending is a doctest comment waiting for its block, and its line.
	pending     *Options
	pendingLine int
	// fence is the open fence ("" outside code blocks); block the console
	// block being read (nil in blocks of other languages).
	fence string
	block *Block
	// cont: the command goes on (a trailing backslash, or inside the
	// here-document that ends with the word heredoc).
	cont    bool
	heredoc string
}

func (p *parser) errorf(n int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.page.File, n, fmt.Sprintf(format, args...))
}

func (p *parser) line(n int, text string) error {
	if p.fence == "" {
		return p.prose(n, text)
	}
	if isFenceClose(text, p.fence) {
		p.fence = ""
		if p.block != nil {
			if p.cont {
				return p.errorf(n, "the block ends inside a command (a trailing backslash, or a here-document without its %q line): finish the command", p.heredoc)
			}
			trimWant(p.block)
			p.page.Blocks = append(p.page.Blocks, *p.block)
			p.block = nil
		}
		return nil
	}
	if p.block == nil {
		return nil
	}
	return p.consoleLine(n, text)
}

// prose handles a line outside code blocks: a doctest comment, or a fence
// that opens a block.
func (p *parser) prose(n int, text string) error {
	if m := directiveComment.FindStringSubmatch(text); m != nil {
		if p.pending != nil {
			return p.errorf(n, "a second doctest comment before one block (the first is on line %d): put all directives in one comment, separated by commas", p.pendingLine)
		}
		opts, err := parseDirectives(m[1])
		if err != nil {
			return p.errorf(n, "%v", err)
		}
		p.pending, p.pendingLine = &opts, n
		return nil
	}
	fence, lang, ok := fenceOpen(text)
	if !ok {
		if strings.TrimSpace(text) != "" && p.pending != nil {
			return p.errorf(p.pendingLine, "the doctest comment is not followed by a ```console block: put it on the line right before the block's fence")
		}
		return nil
	}
	p.fence = fence
	if lang != "console" {
		if p.pending != nil {
			return p.errorf(p.pendingLine, "the doctest comment is followed by a ```%s block, and only ```console blocks run: make the block console, or drop the comment", lang)
		}
		return nil
	}
	p.block = &Block{Line: n}
	if p.pending != nil {
		p.block.Opts = *p.pending
		p.pending = nil
	}
	return nil
}

func (p *parser) consoleLine(n int, text string) error {
	b := p.block
	if p.cont {
		s := &b.Steps[len(b.Steps)-1]
		s.Command += "\n" + text
		p.continues(text)
		return nil
	}
	if cmd, ok := strings.CutPrefix(text, "$ "); ok {
		b.Steps = append(b.Steps, Step{Line: n, Command: cmd})
		p.continues(cmd)
		return nil
	}
	if len(b.Steps) == 0 {
		if strings.TrimSpace(text) == "" {
			return nil
		}
		return p.errorf(n, "output before any command in the ```console block of line %d: start the block with a \"$ \" command line", b.Line)
	}
	s := &b.Steps[len(b.Steps)-1]
	s.Want = append(s.Want, WantLine{Line: n, Text: text})
	return nil
}

// continues says whether the command goes on after this line of it.
func (p *parser) continues(text string) {
	if p.heredoc != "" {
		if strings.TrimSpace(text) == p.heredoc {
			p.heredoc, p.cont = "", false
		}
		return
	}
	if m := heredocStart.FindStringSubmatch(text); m != nil {
		p.heredoc, p.cont = m[1], true
		return
	}
	p.cont = strings.HasSuffix(text, `\`)
}

func (p *parser) end() error {
	switch {
	case p.fence != "":
		return p.errorf(p.blockLine(), "the code block is not closed: add a closing %s", p.fence)
	case p.pending != nil:
		return p.errorf(p.pendingLine, "the doctest comment is not followed by a ```console block: put it on the line right before the block's fence")
	}
	return nil
}

func (p *parser) blockLine() int {
	if p.block != nil {
		return p.block.Line
	}
	return 0
}

// trimWant drops the empty lines that end each step's expected output:
// they only separate the output from the next command.
func trimWant(b *Block) {
	for i := range b.Steps {
		w := b.Steps[i].Want
		for len(w) > 0 && strings.TrimSpace(w[len(w)-1].Text) == "" {
			w = w[:len(w)-1]
		}
		b.Steps[i].Want = w
	}
}

var fenceRE = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})\\s*([^\\s`]*)")

func fenceOpen(text string) (fence, lang string, ok bool) {
	m := fenceRE.FindStringSubmatch(text)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

func isFenceClose(text, fence string) bool {
	t := strings.TrimSpace(text)
	return strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]) == ""
}

// parseDirectives reads what follows "doctest:".
func parseDirectives(s string) (Options, error) {
	var o Options
	s = strings.TrimSpace(s)
	if s == "" {
		return o, fmt.Errorf("an empty doctest comment: %s", allowed)
	}
	for _, d := range strings.Split(s, ",") {
		words := strings.Fields(d)
		if len(words) == 0 {
			return o, fmt.Errorf("an empty directive in %q: %s", s, allowed)
		}
		switch words[0] {
		case "skip":
			// The reason is the rest of the comment, commas included.
			_, reason, _ := strings.Cut(s, "skip")
			if o.Skip = strings.TrimSpace(reason); o.Skip == "" {
				return o, fmt.Errorf("skip without a reason: say why the block cannot run, as in \"skip it needs a new cluster\"")
			}
			return o, nil
		case "match-lines":
			if len(words) != 1 {
				return o, fmt.Errorf("%q: match-lines takes no value", d)
			}
			o.MatchLines = true
		case "wait":
			if len(words) != 2 {
				return o, fmt.Errorf("%q: wait takes a duration, as in \"wait 60s\"", d)
			}
			w, err := time.ParseDuration(words[1])
			if err != nil || w <= 0 {
				return o, fmt.Errorf("%q: %q is not a positive duration: write it as Go does, as in \"wait 60s\"", d, words[1])
			}
			o.Wait = w
		case "exit":
			if len(words) != 2 {
				return o, fmt.Errorf("%q: exit takes the exit code, as in \"exit 1\"", d)
			}
			code, err := strconv.Atoi(words[1])
			if err != nil || code < 0 || code > 255 {
				return o, fmt.Errorf("%q: %q is not an exit code (0 to 255)", d, words[1])
			}
			o.Exit = code
		default:
			return o, fmt.Errorf("unknown directive %q: %s", words[0], allowed)
		}
	}
	return o, nil
}

const allowed = `the directives are "match-lines", "wait <duration>", "exit <code>" and "skip <reason>", separated by commas`
