package tunnel

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
)

// countingConn counts the writes to the connection under a websocket.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestLargeFrameIsOneWrite: a 32 KiB chunk of a response that the agent
// writes into a stream reaches the connection below the websocket in one
// write (one TLS write, one message for the parent to relay), not one per
// 4 KiB of gorilla's default buffer.
func TestLargeFrameIsOneWrite(t *testing.T) {
	var writes atomic.Int64
	hub, agent := pairDialing(t, func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		return countingConn{Conn: conn, writes: &writes}, err
	})
	received := make(chan []byte, 1)
	go func() {
		stream, err := hub.OpenStream()
		if err != nil {
			t.Error(err)
			received <- nil
			return
		}
		body, err := io.ReadAll(stream)
		if err != nil {
			t.Error(err)
		}
		received <- body
	}()
	stream, err := agent.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	chunk := strings.Repeat("x", 32<<10)
	before := writes.Load()
	if _, err := stream.Write([]byte(chunk)); err != nil {
		t.Fatal(err)
	}
	if err := stream.Close(); err != nil {
		t.Fatal(err)
	}
	if got := <-received; string(got) != chunk {
		t.Fatalf("the hub read %d bytes, want the %d written", len(got), len(chunk))
	}
	// The chunk's frame, then the stream's FIN: two writes.
	if n := writes.Load() - before; n > 2 {
		t.Errorf("a 32 KiB chunk took %d writes to the connection, want at most 2 (the chunk, the FIN)", n)
	}
}
