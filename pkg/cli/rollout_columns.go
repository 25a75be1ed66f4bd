package cli

import (
	"strings"
	"unicode/utf8"
)

// cell is one cell of a table the plugin draws itself (rollout status and
// tree): kubectl's table printer cannot colour a cell, nor truncate lines.
type cell struct {
	text string
	// colour paints the cell by state on terminals that allow colour.
	colour bool
	state  rolloutState
}

func plainCells(texts ...string) []cell {
	out := make([]cell, len(texts))
	for i, t := range texts {
		out[i] = cell{text: t}
	}
	return out
}

// ANSI colours of the states: done green, waiting yellow, failed red.
var stateColours = map[rolloutState]string{stateDone: "\x1b[32m", stateWaiting: "\x1b[33m", stateFailed: "\x1b[31m"}

const colourReset = "\x1b[0m"

// columnGap separates columns, as in kubectl's tables.
const columnGap = 3

// formatRows aligns rows into columns and returns one line per row, each
// cut to width characters (0: no limit) so that a terminal never wraps it,
// with coloured cells when colour is set. Widths count runes: the tree's
// box-drawing characters are one column wide.
func formatRows(rows [][]cell, width int, colour bool) []string {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
		}
	}
	lines := make([]string, 0, len(rows))
	for _, r := range rows {
		var b strings.Builder
		left := width
		if width <= 0 {
			left = -1
		}
		pending := 0 // padding owed before the next non-empty cell
		for i, c := range r {
			if c.text == "" {
				pending += widths[i] + columnGap
				continue
			}
			if i > 0 {
				left = writeLimited(&b, strings.Repeat(" ", pending), left, "")
			}
			code := ""
			if colour && c.colour {
				code = stateColours[c.state]
			}
			left = writeLimited(&b, c.text, left, code)
			pending = widths[i] - utf8.RuneCountInString(c.text) + columnGap
		}
		lines = append(lines, b.String())
	}
	return lines
}

// writeLimited writes at most left runes of s (left < 0: all of it), in
// colour code when set, and returns what is left.
func writeLimited(b *strings.Builder, s string, left int, code string) int {
	if left == 0 || s == "" {
		return left
	}
	if left > 0 && utf8.RuneCountInString(s) > left {
		s = string([]rune(s)[:left])
	}
	if code != "" {
		b.WriteString(code + s + colourReset)
	} else {
		b.WriteString(s)
	}
	if left < 0 {
		return left
	}
	return left - utf8.RuneCountInString(s)
}
