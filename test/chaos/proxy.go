package chaos

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a fault-injecting TCP proxy on 127.0.0.1 in front of one
// address: an agent's --parent-url points at it, so everything the agent
// says to the parent (its API calls and its tunnel) goes through it. Cut
// drops every connection and refuses new ones until Restore; SetLatency
// delays every chunk of bytes, both ways, by a fixed time.
type Proxy struct {
	Addr   string
	target string
	ln     net.Listener

	latency atomic.Int64 // nanoseconds
	mu      sync.Mutex
	cut     bool
	conns   map[*proxyConn]struct{}
	wg      sync.WaitGroup
	// Accepted counts the connections accepted (refused ones included).
	Accepted atomic.Int64
}

type proxyConn struct {
	client net.Conn
	mu     sync.Mutex
	server net.Conn
	closed bool
}

// close closes both sides (closing a net.Conn twice is harmless).
func (pc *proxyConn) close() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.closed = true
	_ = pc.client.Close()
	if pc.server != nil {
		_ = pc.server.Close()
	}
}

// NewProxy listens on a free port of 127.0.0.1 and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.Accepted.Add(1)
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		pc := &proxyConn{client: c}
		p.conns[pc] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.handle(pc)
	}
}

func (p *Proxy) handle(pc *proxyConn) {
	defer p.wg.Done()
	defer func() {
		pc.close()
		p.mu.Lock()
		delete(p.conns, pc)
		p.mu.Unlock()
	}()
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	pc.mu.Lock()
	if pc.closed {
		pc.mu.Unlock()
		_ = server.Close()
		return
	}
	pc.server = server
	pc.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, pc.client); done <- struct{}{} }()
	go func() { p.pipe(pc.client, server); done <- struct{}{} }()
	<-done // one side closed: close both, so the other copy ends too
	pc.close()
	<-done
}

type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, holding each chunk until the latency in force
// when it was read has passed. Order is kept; a write error ends the copy.
func (p *Proxy) pipe(dst, src net.Conn) {
	queue := make(chan chunk, 256)
	go func() {
		defer close(queue)
		for {
			buf := make([]byte, 32*1024)
			n, err := src.Read(buf)
			if n > 0 {
				queue <- chunk{data: buf[:n], due: time.Now().Add(time.Duration(p.latency.Load()))}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range queue {
		if d := time.Until(c.due); d > 0 {
			// Injected latency, not synchronization: the chunk is held back.
			time.Sleep(d)
		}
		if _, err := dst.Write(c.data); err != nil {
			_ = src.Close()
			for range queue { // drain until the reader ends
			}
			return
		}
	}
	// src ended: tell dst, so the peer sees EOF (or a reset for a cut).
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else {
		_ = dst.Close()
	}
}

// Cut closes every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	p.cut = true
	conns := make([]*proxyConn, 0, len(p.conns))
	for pc := range p.conns {
		conns = append(conns, pc)
	}
	p.mu.Unlock()
	for _, pc := range conns {
		pc.close()
	}
	return len(conns)
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// SetLatency delays every chunk read from now on by d, both ways (0: none).
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// Open is how many connections are open through the proxy.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops listening, closes every connection and waits for the copies to end.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

var _ io.Closer = (*Proxy)(nil)
