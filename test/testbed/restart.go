package testbed

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Kill sends SIGKILL to the process (no graceful shutdown: what a crash or
// an OOM kill looks like) and returns once it is gone. A process that has
// already exited is left as it is.
func (p *Process) Kill() error {
	if !p.alive() {
		return nil
	}
	if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s (pid %d): %w", p.Name, p.Pid, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for p.alive() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) still running 30s after SIGKILL", p.Name, p.Pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// Restart starts a copy of p (same binary, flags and log file) and returns
// it. p itself is not stopped: Kill or Stop it first.
func (p *Process) Restart() (*Process, error) {
	dir := p.dir
	if dir == "" {
		dir = filepath.Dir(p.Log)
	}
	return startProcess(dir, p.Name, p.Binary, p.Args...)
}

// KillAndRestart kills one of the cluster's processes (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler or kwok) with
// SIGKILL, starts it again with the same flags, ports and data, and returns
// once it serves again (etcd's /health, kube-apiserver's /readyz; the others
// once started). etcd keeps its data directory, so nothing stored is lost.
//
// The killed process's connections are closed by the kernel, not by it:
// until their peers close too, they hold its port (FIN_WAIT), and the new
// process cannot listen ("address already in use"). It is started again
// until it can, for up to a minute.
func (c *Cluster) KillAndRestart(ctx context.Context, name string) error {
	old := c.Process(name)
	if old == nil {
		return fmt.Errorf("cluster %s has no process %q", c.Name, name)
	}
	if err := old.Kill(); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		p, err := old.Restart()
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		for i := range c.Processes {
			if c.Processes[i] == old {
				c.Processes[i] = p
			}
		}
		old = p
		err = c.waitServing(ctx, p)
		if err == nil || !p.Exited() || !strings.Contains(p.LogTail(4000), "address already in use") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitServing waits until p, one of c's processes, serves.
func (c *Cluster) waitServing(ctx context.Context, p *Process) error {
	switch p.Name {
	case "etcd":
		url := flagValue(p.Args, "--listen-client-urls")
		if url == "" {
			return fmt.Errorf("cluster %s: etcd has no --listen-client-urls", c.Name)
		}
		return c.waitHTTP(ctx, "etcd", strings.Split(url, ",")[0]+"/health", nil)
	case "kube-apiserver":
		admin, err := tlsClientConfig(c.CAFile, filepath.Join(c.Dir, "pki", "admin.crt"), filepath.Join(c.Dir, "pki", "admin.key"))
		if err != nil {
			return err
		}
		return c.waitHTTP(ctx, "kube-apiserver", c.URL+"/readyz", admin)
	}
	return nil
}

// flagValue is the value of --name=value in args ("" when absent).
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}
