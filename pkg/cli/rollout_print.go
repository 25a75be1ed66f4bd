package cli

import (
	"fmt"
	"io"
	"strings"
)

// progressRow is one line of rollout status: a Description of a cluster,
// or the cluster alone while its Base stops it.
type progressRow struct {
	cluster, description, phase, ready, status string
	state                                      rolloutState
}

func progressRows(p subscriptionProgress) []progressRow {
	var rows []progressRow
	for _, c := range p.Clusters {
		if c.Message != "" || len(c.Descriptions) == 0 {
			rows = append(rows, progressRow{cluster: c.Name, description: "-", phase: "-", ready: "-",
				status: statusText(c.State, orDefault(c.Message, "nothing to deploy")), state: c.State})
			continue
		}
		for _, d := range c.Descriptions {
			phase := "-"
			if d.Description != nil {
				phase = orDefault(string(d.Description.Status.Phase), "-")
			}
			rows = append(rows, progressRow{cluster: c.Name, description: d.Name, phase: phase, ready: d.Replicas.String(),
				status: statusText(d.State, d.Message), state: d.State})
		}
	}
	return rows
}

func statusText(state rolloutState, message string) string {
	switch state {
	case stateDone:
		return orDefault(message, "available")
	case stateFailed:
		return "failed: " + message
	default:
		return message
	}
}

// headline sums up the rollout in one line, as kubectl rollout status
// words its own.
func headline(p subscriptionProgress) string {
	name := p.Sub.Name
	switch {
	case p.State == stateDone:
		return fmt.Sprintf("subscription %q successfully rolled out to %d clusters", name, len(p.Clusters))
	case p.State == stateFailed && p.Failure != "":
		return fmt.Sprintf("subscription %q cannot roll out: %s", name, p.Failure)
	case p.State == stateFailed:
		return fmt.Sprintf("subscription %q failed in %d of %d clusters", name, len(p.clustersIn(stateFailed)), len(p.Clusters))
	case p.Waiting != "":
		return fmt.Sprintf("Waiting for subscription %q: %s", name, p.Waiting)
	default:
		return fmt.Sprintf("Waiting for subscription %q rollout to finish: %d of %d clusters done", name, p.doneCount(), len(p.Clusters))
	}
}

// progressPrinter shows a rollout as it goes.
type progressPrinter interface {
	// show prints p, or what changed since the last p.
	show(p subscriptionProgress)
	// note shows a passing problem (a watch the informers retry).
	note(msg string)
}

// tablePrinter draws the whole table on a terminal, redrawing it in place:
// the cursor goes back up over the previous drawing, which is cleared.
type tablePrinter struct {
	out io.Writer
	// size is the terminal's width and height (0 when unknown): lines are
	// cut to the width and the drawing to the height, since the cursor
	// cannot go back over lines that scrolled off the screen.
	size   func() (width, height int)
	colour bool

	p        *subscriptionProgress
	lastNote string
	// drawn is the previous drawing.
	drawn []string
}

func (t *tablePrinter) show(p subscriptionProgress) {
	t.p = &p
	t.draw()
}

func (t *tablePrinter) note(msg string) {
	t.lastNote = msg
	t.draw()
}

func (t *tablePrinter) draw() {
	width, height := 0, 0
	if t.size != nil {
		width, height = t.size()
	}
	var lines []string
	if t.p != nil {
		lines = append(formatRows([][]cell{plainCells(headline(*t.p))}, width, false), t.table(*t.p, width)...)
	}
	if t.lastNote != "" {
		lines = append(lines, formatRows([][]cell{plainCells("warning: " + t.lastNote)}, width, false)...)
	}
	if height > 1 && len(lines) > height-1 {
		hidden := len(lines) - (height - 2)
		lines = append(lines[:height-2], fmt.Sprintf("... and %d more lines: widen the terminal or pipe the output", hidden))
	}
	if strings.Join(lines, "\n") == strings.Join(t.drawn, "\n") {
		return
	}
	var b strings.Builder
	if len(t.drawn) > 0 {
		// Up to the first line drawn, then clear to the end of the screen.
		fmt.Fprintf(&b, "\x1b[%dA\r\x1b[J", len(t.drawn))
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	_, _ = io.WriteString(t.out, b.String())
	t.drawn = lines
}

func (t *tablePrinter) table(p subscriptionProgress, width int) []string {
	rows := [][]cell{plainCells("CLUSTER", "DESCRIPTION", "PHASE", "READY", "STATUS")}
	for _, r := range progressRows(p) {
		rows = append(rows, []cell{{text: r.cluster}, {text: r.description}, {text: r.phase, colour: true, state: r.state}, {text: r.ready}, {text: r.status}})
	}
	return formatRows(rows, width, t.colour)
}

// linePrinter prints plain lines when the output is not a terminal: the
// headline and each row, whenever they change. No escape codes.
type linePrinter struct {
	out, errOut  io.Writer
	lastHeadline string
	lastRow      map[string]string
}

// show prints the rows that changed, then the headline if it changed: the
// sum after what it sums.
func (l *linePrinter) show(p subscriptionProgress) {
	if l.lastRow == nil {
		l.lastRow = map[string]string{}
	}
	for _, r := range progressRows(p) {
		key, line := r.cluster+"/"+r.description, rowLine(r)
		if l.lastRow[key] != line {
			_, _ = fmt.Fprintln(l.out, line)
			l.lastRow[key] = line
		}
	}
	if h := headline(p); h != l.lastHeadline {
		_, _ = fmt.Fprintln(l.out, h)
		l.lastHeadline = h
	}
}

func (l *linePrinter) note(msg string) {
	_, _ = fmt.Fprintln(l.errOut, "warning: "+msg)
}

// rowLine is a row as one line: "child1 app-demo-generic: Success, 3/3
// ready: available", or "child2: <what its Base waits for>".
func rowLine(r progressRow) string {
	var b strings.Builder
	b.WriteString(r.cluster)
	if r.description != "-" {
		b.WriteString(" " + r.description)
	}
	b.WriteString(":")
	var facts []string
	if r.phase != "-" {
		facts = append(facts, r.phase)
	}
	if r.ready != "-" {
		facts = append(facts, r.ready+" ready")
	}
	if len(facts) > 0 {
		b.WriteString(" " + strings.Join(facts, ", ") + ":")
	}
	b.WriteString(" " + r.status)
	return b.String()
}
