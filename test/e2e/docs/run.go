package docs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Runner runs the blocks of pages in a shell.
type Runner struct {
	// Dir is the folder commands start in; Env their environment.
	Dir string
	Env []string
	// Timeout bounds one run of a command (default 3 minutes): a command
	// that waits for something uses its own timeout flag, or the block
	// waits (doctest: wait) and runs it again.
	Timeout time.Duration
	// Interval is the pause between runs of a waiting command (default 1s).
	Interval time.Duration
	// Logf reports each command as it finishes, and how long it took.
	Logf func(format string, args ...any)
}

// Failure is a step that did not do what its page shows.
type Failure struct {
	File string
	Step Step
	// Mismatch is where the output differs (nil when it matched, or the
	// command could not run).
	Mismatch *Mismatch
	Exit     int
	WantExit int
	Output   string
	// Err: the command could not run (the shell broke).
	Err error
	// Attempts and Waited, for a waiting block.
	Attempts int
	Waited   time.Duration
	Wait     time.Duration
}

func (f *Failure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: $ %s\n", f.File, f.Step.Line, f.Step.Command)
	switch {
	case f.Err != nil:
		fmt.Fprintf(&b, "%v\n", f.Err)
	case f.Exit != f.WantExit:
		fmt.Fprintf(&b, "exit code %d, the page expects %d", f.Exit, f.WantExit)
		if f.WantExit == 0 {
			b.WriteString(" (if the failure is what the page means to show, put <!-- doctest: exit N --> before its block)")
		}
		b.WriteString("\n")
		if f.Mismatch != nil {
			fmt.Fprintf(&b, "and %s\n", f.Mismatch)
		}
	case f.Mismatch != nil:
		fmt.Fprintf(&b, "%s\n", f.Mismatch)
	}
	if f.Wait > 0 {
		fmt.Fprintf(&b, "(ran %d times in %s: the block waits up to %s)\n", f.Attempts, f.Waited.Round(time.Second), f.Wait)
	}
	b.WriteString("whole output")
	if f.Attempts > 1 {
		b.WriteString(" of the last run")
	}
	b.WriteString(":\n")
	for _, l := range outputLines(f.Output) {
		fmt.Fprintf(&b, "  | %s\n", l)
	}
	return b.String()
}

// RunPage runs every block of p that does not skip, in one shell session.
// It stops at the first step that fails: the steps after it build on it.
func (r *Runner) RunPage(p *Page) error {
	sh, err := StartShell(r.Dir, r.Env)
	if err != nil {
		return fmt.Errorf("%s: starting bash: %w", p.File, err)
	}
	defer sh.Close()
	for _, b := range p.Blocks {
		if b.Opts.Skip != "" {
			continue
		}
		for _, s := range b.Steps {
			if f := r.runStep(sh, p.File, b.Opts, s); f != nil {
				return f
			}
		}
	}
	return nil
}

// runStep runs s, again and again while its block waits, until it matches.
func (r *Runner) runStep(sh *Shell, file string, o Options, s Step) *Failure {
	timeout, interval := r.Timeout, r.Interval
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	if interval <= 0 {
		interval = time.Second
	}
	start := time.Now()
	f := &Failure{File: file, Step: s, WantExit: o.Exit, Wait: o.Wait}
	attempt := func(context.Context) (bool, error) {
		f.Attempts++
		f.Output, f.Exit, f.Err = sh.Run(s.Command, timeout)
		f.Waited = time.Since(start)
		if f.Err != nil {
			return false, f.Err // the shell is gone: no use trying again
		}
		f.Mismatch = Compare(s, f.Output, o.MatchLines)
		return f.Mismatch == nil && f.Exit == o.Exit, nil
	}
	var ok bool
	if o.Wait > 0 {
		ok = wait.PollUntilContextTimeout(context.Background(), interval, o.Wait, true, attempt) == nil
	} else {
		ok, _ = attempt(context.Background())
	}
	if !ok {
		return f
	}
	if r.Logf != nil {
		r.Logf("%s:%d: $ %s (%s, %d runs)", file, s.Line, firstLine(s.Command), f.Waited.Round(10*time.Millisecond), f.Attempts)
	}
	return nil
}

func firstLine(s string) string {
	first, _, more := strings.Cut(s, "\n")
	if more {
		return first + " ..."
	}
	return first
}
