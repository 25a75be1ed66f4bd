package docs

import (
	"fmt"
	"regexp"
	"strings"
)

// placeholders are what expected output may write for what changes from
// run to run (see the package doc).
var placeholders = map[string]string{
	"<id>":   `[a-z0-9]+(?:-[a-z0-9]+)*`,
	"<age>":  `(?:(?:\d+[smhdy])+|<invalid>)`,
	"<time>": `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)`,
	"<ip>":   `\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}`,
	"<n>":    `\d+`,
	"...":    `.*`,
}

// token splits an expected line into placeholders, whitespace and literal text.
var token = regexp.MustCompile(`<id>|<age>|<time>|<ip>|<n>|\.\.\.|[ \t]+`)

// ellipsis is an expected line that stands for any number of output lines.
const ellipsis = "..."

// pattern is one expected line, compiled.
type pattern struct {
	WantLine
	re *regexp.Regexp
}

func compile(want []WantLine) []pattern {
	out := make([]pattern, len(want))
	for i, w := range want {
		out[i] = pattern{WantLine: w, re: linePattern(w.Text)}
	}
	return out
}

// linePattern is the regular expression an output line must match to
// match the expected line text.
func linePattern(text string) *regexp.Regexp {
	text = strings.TrimSpace(text)
	var b strings.Builder
	b.WriteString(`^\s*`)
	last := 0
	for _, loc := range token.FindAllStringIndex(text, -1) {
		b.WriteString(regexp.QuoteMeta(text[last:loc[0]]))
		tok := text[loc[0]:loc[1]]
		if re, ok := placeholders[tok]; ok {
			b.WriteString(re)
		} else {
			b.WriteString(`\s+`)
		}
		last = loc[1]
	}
	b.WriteString(regexp.QuoteMeta(text[last:]))
	b.WriteString(`\s*$`)
	return regexp.MustCompile(b.String())
}

// Mismatch says where output differs from what a step expects.
type Mismatch struct {
	// Line is the page line of the expected line that failed; for output
	// beyond what is expected, the line of the last expected line (or of
	// the command, when nothing was expected).
	Line int
	// Want is the expected line ("" when the output has more lines); Got
	// the output line it was compared with ("" when the output ended).
	Want, Got string
	// Why says what is wrong.
	Why string
}

func (m *Mismatch) String() string {
	return fmt.Sprintf("line %d: %s\n    want: %s\n    got:  %s", m.Line, m.Why, m.Want, m.Got)
}

// outputLines splits output into lines, without the empty lines that end it.
func outputLines(out string) []string {
	out = strings.ReplaceAll(out, "\r\n", "\n")
	lines := strings.Split(out, "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// Compare checks the output of step s. It returns nil when the output
// matches.
func Compare(s Step, out string, matchLines bool) *Mismatch {
	got := outputLines(out)
	pats := compile(s.Want)
	if matchLines {
		return compareSubsequence(pats, got)
	}
	m := &matcher{pats: pats, got: got, lastLine: s.Line}
	if len(pats) > 0 {
		m.lastLine = pats[len(pats)-1].Line
	}
	if m.match(0, 0) {
		return nil
	}
	return m.worst
}

// compareSubsequence: each pattern matches an output line, in order.
func compareSubsequence(pats []pattern, got []string) *Mismatch {
	j := 0
	for _, p := range pats {
		if isEllipsis(p.Text) {
			continue
		}
		k := j
		for k < len(got) && !p.re.MatchString(got[k]) {
			k++
		}
		if k == len(got) {
			after := "in the output"
			if j > 0 {
				after = fmt.Sprintf("after output line %d", j)
			}
			return &Mismatch{Line: p.Line, Want: p.Text, Why: "no line " + after + " matches"}
		}
		j = k + 1
	}
	return nil
}

// matcher matches output lines one for one against patterns, where an
// ellipsis line takes any number of lines. Of the ways that fail, it keeps
// the one that got furthest into the patterns: the most useful to report.
type matcher struct {
	pats     []pattern
	got      []string
	lastLine int
	worst    *Mismatch
	worstAt  int
}

func (m *matcher) match(i, j int) bool {
	for i < len(m.pats) {
		p := m.pats[i]
		if isEllipsis(p.Text) {
			for k := len(m.got); k >= j; k-- {
				if m.match(i+1, k) {
					return true
				}
			}
			return false
		}
		if j == len(m.got) {
			m.fail(i, &Mismatch{Line: p.Line, Want: p.Text, Why: "the output ended before this line"})
			return false
		}
		if !p.re.MatchString(m.got[j]) {
			m.fail(i, &Mismatch{Line: p.Line, Want: p.Text, Got: m.got[j], Why: fmt.Sprintf("output line %d does not match", j+1)})
			return false
		}
		i, j = i+1, j+1
	}
	if j < len(m.got) {
		m.fail(i, &Mismatch{Line: m.lastLine, Got: m.got[j], Why: fmt.Sprintf("the output goes on after what is expected, from output line %d", j+1)})
		return false
	}
	return true
}

func (m *matcher) fail(at int, mm *Mismatch) {
	if m.worst == nil || at > m.worstAt {
		m.worst, m.worstAt = mm, at
	}
}

func isEllipsis(text string) bool { return strings.TrimSpace(text) == ellipsis }
