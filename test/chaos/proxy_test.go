package chaos

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers each line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, line string) (string, error) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return got, err
}

func TestProxy(t *testing.T) {
	p, err := NewProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}()

	t.Run("forwards both ways", func(t *testing.T) {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		if got, err := roundTrip(t, c, "hello"); err != nil || got != "hello\n" {
			t.Fatalf("round trip: %q, %v", got, err)
		}
	})

	t.Run("latency delays each way", func(t *testing.T) {
		p.SetLatency(150 * time.Millisecond)
		defer p.SetLatency(0)
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		start := time.Now()
		if got, err := roundTrip(t, c, "slow"); err != nil || got != "slow\n" {
			t.Fatalf("round trip: %q, %v", got, err)
		}
		if took := time.Since(start); took < 300*time.Millisecond {
			t.Errorf("a round trip through 150ms each way took %s, want at least 300ms", took)
		}
	})

	t.Run("cut drops open connections and refuses new ones until restored", func(t *testing.T) {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		if _, err := roundTrip(t, c, "before"); err != nil {
			t.Fatal(err)
		}
		if n := p.Cut(); n < 1 {
			t.Errorf("Cut closed %d connections, want at least the open one", n)
		}
		if got, err := roundTrip(t, c, "after"); err == nil {
			t.Errorf("a cut connection still answered %q", got)
		}
		c2, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c2.Close() }()
		if got, err := roundTrip(t, c2, "refused"); err == nil {
			t.Errorf("a new connection during the cut answered %q", got)
		}
		p.Restore()
		c3, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c3.Close() }()
		if got, err := roundTrip(t, c3, "back"); err != nil || got != "back\n" {
			t.Fatalf("after Restore: %q, %v", got, err)
		}
	})
}
