package docs

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Shell is one bash session: the commands of a page run in it one after
// the other, as a reader types them into one terminal, so what a command
// sets (variables, the working folder) holds for the next ones.
type Shell struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// lines are the session's output lines, standard output and error
	// together as a terminal shows them; closed when bash exits.
	lines chan string
	// marker ends each command's output: a line no command prints.
	marker string
	// broken is set once a command did not finish: the session is
	// unusable after that.
	broken error
}

// StartShell starts bash in dir with env. Close stops it.
func StartShell(dir string, env []string) (*Shell, error) {
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = pw, pw
	// Its own process group, so that Close stops what the commands
	// started too (a port-forward left in the background).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		_ = pr.Close()
		_ = pw.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		_ = pr.Close()
		_ = pw.Close()
		return nil, err
	}
	_ = pw.Close() // bash and its children hold the write end now
	s := &Shell{cmd: cmd, stdin: stdin, lines: make(chan string, 256), marker: "__doctest_" + hex.EncodeToString(nonce)}
	go s.read(pr)
	return s, nil
}

func (s *Shell) read(r io.ReadCloser) {
	defer close(s.lines)
	defer func() { _ = r.Close() }()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			s.lines <- strings.TrimSuffix(line, "\n")
		}
		if err != nil {
			return
		}
	}
}

// Run runs command and returns its output (standard output and error
// together) and exit code. A command that does not finish within timeout
// stops the session: every later Run fails.
func (s *Shell) Run(command string, timeout time.Duration) (string, int, error) {
	if s.broken != nil {
		return "", 0, s.broken
	}
	// The braces run the command in this shell (its variables stay) with
	// standard input from /dev/null: a command reading its input must
	// not swallow the next commands. The marker line follows whatever
	// the command printed, on a line of its own.
	script := fmt.Sprintf("{\n%s\n} </dev/null\nprintf '\\n%s %%d\\n' \"$?\"\n", command, s.marker)
	if _, err := io.WriteString(s.stdin, script); err != nil {
		s.broken = fmt.Errorf("the shell is gone: %w", err)
		return "", 0, s.broken
	}
	var out []string
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				s.broken = errors.New("the shell exited (did a command run exit?)")
				return strings.Join(out, "\n"), 0, s.broken
			}
			if rest, found := strings.CutPrefix(line, s.marker+" "); found {
				code, err := strconv.Atoi(rest)
				if err != nil {
					return "", 0, fmt.Errorf("reading the exit code from %q: %w", line, err)
				}
				// Drop the newline printed before the marker.
				if n := len(out); n > 0 && out[n-1] == "" {
					out = out[:n-1]
				}
				return strings.Join(out, "\n"), code, nil
			}
			out = append(out, line)
		case <-deadline.C:
			s.broken = fmt.Errorf("the command did not finish within %s (an unclosed quote or here-document waits for more input)", timeout)
			s.kill()
			return strings.Join(out, "\n"), 0, s.broken
		}
	}
}

// Close ends the session and everything its commands started.
func (s *Shell) Close() {
	_ = s.stdin.Close()
	done := make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	s.kill()
	<-done
	// Drain what is left, so the reader ends; a process that left the
	// group may hold the pipe open, so only for a while.
	drained := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-s.lines:
			if !ok {
				return
			}
		case <-drained:
			return
		}
	}
}

// kill stops the session's process group.
func (s *Shell) kill() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
}
