package testbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is one program the testbed started. Stop signals only this pid, and
// only while /proc still shows it running the binary we started, so a reused
// pid is never hit.
type Process struct {
	Name   string   `json:"name"`
	Binary string   `json:"binary"`
	Pid    int      `json:"pid"`
	Log    string   `json:"log"`
	Args   []string `json:"args"`
	dir    string

	cmd  *exec.Cmd
	done chan struct{}
}

// StartProcess runs binary with args like the testbed's own components
// (own session, log in dir/name.log), for tests that run Clusternet's binaries.
func StartProcess(dir, name, binary string, args ...string) (*Process, error) {
	return startProcess(dir, name, binary, args...)
}

// startProcess runs binary with args in its own session (so a terminal's ^C
// reaches the testbed, which stops its children in order), logging to dir/name.log.
func startProcess(dir, name, binary string, args ...string) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, Binary: binary, Pid: cmd.Process.Pid, Log: logPath, Args: args, dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether a process started in this process has exited.
func (p *Process) Exited() bool {
	if p.done == nil {
		return !p.alive()
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop asks the process to exit and kills it after grace.
func (p *Process) Stop(grace time.Duration) error {
	defer p.reaped()
	if !p.alive() {
		return nil
	}
	if err := syscall.Kill(p.Pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping %s (pid %d): %w", p.Name, p.Pid, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !p.alive() {
		return nil
	}
	_ = syscall.Kill(p.Pid, syscall.SIGKILL)
	// SIGKILL cannot be ignored, but the port is free only once the process
	// is gone: wait, so a caller that releases its port locks next is right to.
	for p.alive() {
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// alive is true while the pid runs our binary and is not a zombie.
// reaped waits, for a process this one started, until its Wait returned: a
// process that left /proc/<pid>/exe (alive is false) may still be a zombie
// its Wait goroutine has not reaped, and Exited reads the Wait.
func (p *Process) reaped() {
	if p.done == nil {
		return
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

func (p *Process) alive() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return false
		default:
		}
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.Pid))
	if err != nil {
		return false
	}
	want, _ := filepath.EvalSymlinks(p.Binary)
	if strings.TrimSuffix(exe, " (deleted)") != want {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid))
	if err != nil {
		return false
	}
	// Field 3 of stat is the state; Z is a zombie waiting for its parent.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// LogTail returns the last n bytes of the process log, for error messages.
func (p *Process) LogTail(n int64) string {
	f, err := os.Open(p.Log)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, 0)
	}
	buf := make([]byte, n)
	k, _ := f.Read(buf)
	return string(buf[:k])
}
