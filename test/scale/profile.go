package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/clusternet/clusternet/test/framework"
	"github.com/clusternet/clusternet/test/testbed"
)

// cpuSplit is the CPU each party used over one phase, and the machine's:
// on 2 cores shared by the parent, the hub and a thousand stand-ins, a
// phase's time is only the hub's to cut if the cores were not all busy
// with someone else's work.
type cpuSplit struct {
	wall time.Duration
	// busy is every core's non-idle time, whoever's (other work too).
	busy time.Duration
	// by is CPU time by party: the parent's processes by name, the hub,
	// the stand-ins (this process) and the two real children with their
	// agents.
	by map[string]time.Duration
}

// parties are the processes a phase's CPU is split between.
type parties struct {
	parent   *testbed.Cluster
	hub      int
	children []*testbed.Cluster
	agents   []int
}

// Party names, in the order the report prints them.
const (
	partyHub      = "hub"
	partyStandIns = "stand-ins (this process)"
	partyChildren = "2 real children and agents"
)

var partyOrder = []string{"kube-apiserver", "etcd", "kube-controller-manager", partyHub, partyStandIns, partyChildren}

type cpuSnapshot struct {
	at   time.Time
	busy time.Duration
	by   map[string]time.Duration
}

func (p parties) snapshot() cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), busy: machineBusy(), by: map[string]time.Duration{}}
	for _, proc := range p.parent.Processes {
		s.by[proc.Name] += framework.CPUTime(proc.Pid)
	}
	s.by[partyHub] = framework.CPUTime(p.hub)
	s.by[partyStandIns] = framework.CPUTime(os.Getpid())
	for _, c := range p.children {
		for _, proc := range c.Processes {
			s.by[partyChildren] += framework.CPUTime(proc.Pid)
		}
	}
	for _, pid := range p.agents {
		s.by[partyChildren] += framework.CPUTime(pid)
	}
	return s
}

func (s cpuSnapshot) until(e cpuSnapshot) cpuSplit {
	out := cpuSplit{wall: e.at.Sub(s.at), busy: e.busy - s.busy, by: map[string]time.Duration{}}
	for k, v := range e.by {
		out.by[k] = v - s.by[k]
	}
	return out
}

// machineBusy is the time every core spent not idle (nor waiting for
// I/O) since boot, from /proc/stat's first line.
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already counted in user
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// profiler saves CPU profiles of the hub, the parent apiserver and this
// process over a phase, and the hub's heap and goroutines after it, into dir
// (--profile): where a phase's time and the hub's memory go.
type profiler struct {
	dir       string
	hubURL    string
	hubClient *http.Client
	token     string
	kube      kubernetes.Interface
	seconds   int
}

func newProfiler(ctx context.Context, dir string, parent *testbed.Cluster, hubPort int, kube kubernetes.Interface) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	token, err := framework.ProfilerToken(ctx, parent, "scale-profiler")
	if err != nil {
		return nil, err
	}
	client, err := framework.HubClient(ctx, parent)
	if err != nil {
		return nil, err
	}
	return &profiler{dir: dir, hubURL: fmt.Sprintf("https://127.0.0.1:%d", hubPort), hubClient: client, token: token, kube: kube, seconds: 20}, nil
}

// cpu profiles the hub, the parent apiserver and this process for the
// profiler's seconds from now, in the background; wait for the files with
// the returned func. A nil profiler does nothing.
func (p *profiler) cpu(ctx context.Context, phase string) (wait func()) {
	if p == nil {
		return func() {}
	}
	var wg sync.WaitGroup
	q := "/debug/pprof/profile?seconds=" + strconv.Itoa(p.seconds)
	wg.Go(func() { p.fromHub(ctx, q, phase+".hub.cpu.pb.gz") })
	wg.Go(func() {
		raw, err := p.kube.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", strconv.Itoa(p.seconds)).DoRaw(ctx)
		p.save(phase+".kube-apiserver.cpu.pb.gz", raw, err)
	})
	wg.Go(func() {
		f, err := os.Create(filepath.Join(p.dir, phase+".stand-ins.cpu.pb.gz"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "scale: profile:", err)
			return
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "scale: profile:", err)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(p.seconds) * time.Second):
		}
		pprof.StopCPUProfile()
	})
	return wg.Wait
}

// heap saves the hub's heap and goroutine profiles now: its resident
// memory is the heap, with the collector's headroom, and the goroutines'
// stacks, which a heap profile does not show.
func (p *profiler) heap(ctx context.Context, phase string) {
	if p != nil {
		p.fromHub(ctx, "/debug/pprof/heap", phase+".hub.heap.pb.gz")
		p.fromHub(ctx, "/debug/pprof/goroutine", phase+".hub.goroutine.pb.gz")
	}
}

func (p *profiler) fromHub(ctx context.Context, path, file string) {
	code, body, err := framework.Get(ctx, p.hubClient, p.hubURL+path, p.token)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET %s: %d: %.300s", path, code, body)
	}
	p.save(file, []byte(body), err)
}

// save writes a profile, or says why there is none: a missing profile
// costs the run nothing else.
func (p *profiler) save(file string, data []byte, err error) {
	if err == nil {
		err = os.WriteFile(filepath.Join(p.dir, file), data, 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "scale: profile %s: %v\n", file, err)
		return
	}
	fmt.Fprintf(os.Stderr, "scale: profile %s\n", filepath.Join(p.dir, file))
}
