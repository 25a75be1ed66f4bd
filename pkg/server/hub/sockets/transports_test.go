package sockets

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/clusternet/clusternet/pkg/tunnel/tunneltest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/yamux"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/clusternet/clusternet/pkg/tunnel"
)

// agentTunnel is a tunnel whose agent end answers every request "ok"; each
// stream the agent's server closes is sent on closed.
func agentTunnel(t *testing.T, closed chan<- struct{}) *yamux.Session {
	t.Helper()
	hub, agent := tunneltest.Pipe(t)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed && closed != nil {
				closed <- struct{}{}
			}
		},
	}
	go func() { _ = srv.Serve(agent) }()
	t.Cleanup(func() { _ = srv.Close(); _ = hub.Close() })
	return hub
}

func get(t *testing.T, tr http.RoundTripper) string {
	t.Helper()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://cluster-c1/")
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

func (t *Transports) has(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.transports[id]
	return ok
}

// A cluster's transport outlives a reconnect of its agent (requests made
// meanwhile wait for the new tunnel through it) and is dropped, its idle
// streams closed, once its tunnel has stayed down for dropAfter.
func TestTransportsDropClustersThatLeave(t *testing.T) {
	t.Run("a brief reconnect keeps the transport", func(t *testing.T) {
		reg := tunnel.NewRegistry()
		clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
		tr := newTransports(reg, 8, clk)
		first := agentTunnel(t, nil)
		reg.Add("c1", first)
		kept := tr.For("c1")
		var got []string
		got = append(got, get(t, kept))

		reg.Remove("c1", first) // the agent reconnects
		clk.Step(dialWait)
		got = append(got, get(t, tr.ChildConfig("c1").Transport)) // waits for the new tunnel, or finds it
		reg.Add("c1", agentTunnel(t, nil))
		got = append(got, get(t, tr.ChildConfig("c1").Transport))
		clk.Step(2 * dropAfter) // the tunnel is up: nothing to drop
		got = append(got, get(t, kept))

		if diff := cmp.Diff([]string{"ok", "ok", "ok", "ok"}, got); diff != "" {
			t.Errorf("responses (-want +got):\n%s", diff)
		}
		if tr.For("c1") != kept {
			t.Error("the transport was replaced across a reconnect")
		}
	})

	t.Run("a cluster gone for dropAfter loses its transport", func(t *testing.T) {
		reg := tunnel.NewRegistry()
		clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
		tr := newTransports(reg, 8, clk)
		closed := make(chan struct{}, 8)
		hub := agentTunnel(t, closed)
		reg.Add("c1", hub)
		if got := get(t, tr.For("c1")); got != "ok" {
			t.Fatalf("request before the cluster left: %q", got)
		}

		reg.Remove("c1", hub) // the cluster leaves
		clk.Step(dropAfter - time.Second)
		if !tr.has("c1") {
			t.Fatal("transport dropped before dropAfter")
		}
		clk.Step(time.Second)
		if tr.has("c1") {
			t.Fatal("transport still held dropAfter after the tunnel went down")
		}
		select {
		case <-closed: // the pooled idle stream was closed
		case <-time.After(10 * time.Second):
			t.Fatal("the idle stream was not closed when the transport was dropped")
		}
	})
}

// A cluster that left (Forget) loses its transport at once, with its idle
// streams; a transport built for a cluster whose tunnel is down (a request
// for a cluster that never comes back) does not stay forever either.
func TestTransportsForget(t *testing.T) {
	t.Run("Forget drops the transport now", func(t *testing.T) {
		reg := tunnel.NewRegistry()
		clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
		tr := newTransports(reg, 8, clk)
		closed := make(chan struct{}, 8)
		reg.Add("c1", agentTunnel(t, closed))
		if got := get(t, tr.For("c1")); got != "ok" {
			t.Fatalf("request before the cluster left: %q", got)
		}
		tr.Forget("c1")
		if diff := cmp.Diff([]string{}, tr.Held(), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("transports held after Forget (-want +got):\n%s", diff)
		}
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the idle stream was not closed when the cluster left")
		}
	})

	t.Run("a transport built while the tunnel is down is dropped", func(t *testing.T) {
		reg := tunnel.NewRegistry()
		clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
		tr := newTransports(reg, 8, clk)
		tr.For("gone")
		if diff := cmp.Diff([]string{"gone"}, tr.Held()); diff != "" {
			t.Fatalf("transports held (-want +got):\n%s", diff)
		}
		clk.Step(dropAfter)
		if diff := cmp.Diff([]string{}, tr.Held(), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("transports held dropAfter later (-want +got):\n%s", diff)
		}
	})

	t.Run("unless the tunnel comes up meanwhile", func(t *testing.T) {
		reg := tunnel.NewRegistry()
		clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
		tr := newTransports(reg, 8, clk)
		tr.For("c1")
		reg.Add("c1", agentTunnel(t, nil))
		clk.Step(2 * dropAfter)
		if diff := cmp.Diff([]string{"c1"}, tr.Held()); diff != "" {
			t.Errorf("transports held (-want +got):\n%s", diff)
		}
	})
}
