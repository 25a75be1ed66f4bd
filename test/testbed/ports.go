package testbed

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Ports are picked below the kernel's ephemeral range (32768+), so an outgoing
// connection cannot take one between our pick and the server's bind.
const (
	portMin = 20000
	portMax = 32000
)

// portLock reserves a TCP port across processes: test packages run in parallel
// as separate processes, and each holds an flock on a file per port it uses for
// as long as it lives. The kernel drops the lock when the process dies, so a
// crashed test leaves nothing reserved.
type portLock struct {
	Port int
	file *os.File
}

func (p *portLock) release() {
	if p.file != nil {
		_ = p.file.Close()
		p.file = nil
	}
}

// ReservePort reserves a free loopback port for a program the caller starts
// (a hub, say), with the same guarantees as the testbed's own ports; release
// it once that program has bound it, or when done.
func ReservePort() (port int, release func(), err error) {
	p, err := reservePort()
	if err != nil {
		return 0, nil, err
	}
	return p.Port, p.release, nil
}

// reservePort finds a port that is free now and that no other testbed process holds.
func reservePort() (*portLock, error) {
	return reservePortFrom(filepath.Join(os.TempDir(), "clusternet-testbed-ports"), randomPort)
}

func randomPort() int { return portMin + rand.IntN(portMax-portMin) }

// reservePortFrom tries the candidates next returns, keeping lock files in dir.
func reservePortFrom(dir string, next func() int) (*portLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for range 200 {
		port := next()
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			_ = f.Close()
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			_ = f.Close()
			continue
		}
		_ = ln.Close()
		return &portLock{Port: port, file: f}, nil
	}
	return nil, fmt.Errorf("no free port between %d and %d after 200 tries", portMin, portMax)
}
