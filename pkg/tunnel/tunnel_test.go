package tunnel

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// pair connects a hub-side and an agent-side session over a real websocket
// on loopback, with the websocket ends the hub and the agent use.
func pair(t *testing.T) (hub, agent *yamux.Session) {
	return pairDialing(t, nil)
}

// pairDialing is pair with the agent's connection dialed by dial (nil: the
// default dialer).
func pairDialing(t *testing.T, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (hub, agent *yamux.Session) {
	t.Helper()
	hubSession := make(chan *yamux.Session, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := Upgrader.Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		s, err := Server(NewConn(ws))
		if err != nil {
			t.Error(err)
			return
		}
		hubSession <- s
	}))
	t.Cleanup(srv.Close)
	dialer := Dialer(nil)
	dialer.NetDialContext = dial
	ws, _, err := dialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	agent, err = Client(NewConn(ws))
	if err != nil {
		t.Fatal(err)
	}
	hub = <-hubSession
	t.Cleanup(func() { _ = hub.Close(); _ = agent.Close() })
	return hub, agent
}

func TestStreamsRoundTrip(t *testing.T) {
	hub, agent := pair(t)
	go func() { // the agent echoes every stream back
		for {
			s, err := agent.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(s, s); _ = s.Close() }()
		}
	}()
	payload := bytes.Repeat([]byte("clusternet"), 300_000) // 3 MB: many messages, several windows
	s, err := hub.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	// yamux Close is a half-close: it sends FIN and the echo can still be read.
	go func() { _, _ = s.Write(payload); _ = s.Close() }()
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo returned %d bytes, want %d identical", len(got), len(payload))
	}
}

// One stream whose reader stopped reading must not hold up another: its
// sender blocks on its own window while a small request completes.
func TestStalledStreamDoesNotBlockOthers(t *testing.T) {
	hub, agent := pair(t)
	stalledWriterDone := make(chan struct{})
	go func() {
		for {
			s, err := agent.Accept()
			if err != nil {
				return
			}
			go func() {
				first := make([]byte, 5)
				if _, err := io.ReadFull(s, first); err != nil {
					return
				}
				switch string(first) {
				case "flood": // write far more than one window to a reader that never reads
					_, _ = s.Write(make([]byte, 64*streamWindow))
					close(stalledWriterDone)
				case "ping!":
					_, _ = s.Write([]byte("pong!"))
				}
			}()
		}
	}()

	stalled, err := hub.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stalled.Close() }()
	if _, err := stalled.Write([]byte("flood")); err != nil {
		t.Fatal(err)
	}
	// Never read from stalled.

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 20 {
		small, err := hub.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		_ = small.SetDeadline(deadline(ctx))
		if _, err := small.Write([]byte("ping!")); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		reply := make([]byte, 5)
		if _, err := io.ReadFull(small, reply); err != nil || string(reply) != "pong!" {
			t.Fatalf("request %d beside a stalled stream: %q, %v", i, reply, err)
		}
		_ = small.Close()
	}
	select {
	case <-stalledWriterDone:
		t.Fatal("the flood finished although nobody read it: flow control is not per stream")
	default:
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func TestRegistryDialWaitsForReconnect(t *testing.T) {
	r := NewRegistry()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.Dial(ctx, "c1"); err == nil || !strings.Contains(err.Error(), "no tunnel") {
		t.Fatalf("dial without a tunnel: %v, want a no-tunnel error", err)
	}

	hub, agent := pair(t)
	go func() {
		for {
			s, err := agent.Accept()
			if err != nil {
				return
			}
			_, _ = s.Write([]byte("hi"))
			_ = s.Close()
		}
	}()
	dialed := make(chan net.Conn, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := r.Dial(ctx, "c1")
		if err != nil {
			t.Error(err)
		}
		dialed <- c
	}()
	r.Add("c1", hub) // the agent connects while the dial waits
	c := <-dialed
	if c == nil {
		t.Fatal("no stream")
	}
	got, _ := io.ReadAll(c)
	if string(got) != "hi" {
		t.Errorf("read %q over the new tunnel", got)
	}
	if !r.Has("c1") {
		t.Error("registry lost the tunnel")
	}
	r.Remove("c1", hub)
	if r.Has("c1") {
		t.Error("tunnel still listed after Remove")
	}
}
