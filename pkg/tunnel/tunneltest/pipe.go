// Package tunneltest gives tests both ends of a real tunnel session over an
// in-memory connection, so each test does not set one up its own way.
package tunneltest

import (
	"bytes"
	"compress/gzip"
	"net"
	"net/http"
	"testing"

	"github.com/hashicorp/yamux"

	"github.com/clusternet/clusternet/pkg/tunnel"
)

// Pipe is a tunnel over net.Pipe: hub is the end that opens streams (the
// hub's, tunnel.Server), agent the end that accepts them (tunnel.Client).
// Both close when the test ends. Neither constructor waits for the other
// end, so no goroutine is needed.
func Pipe(t testing.TB) (hub, agent *yamux.Session) {
	t.Helper()
	hubConn, agentConn := net.Pipe()
	hub, err := tunnel.Server(hubConn)
	if err != nil {
		t.Fatal(err)
	}
	agent, err = tunnel.Client(agentConn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Close(); _ = agent.Close() })
	return hub, agent
}

// HubHandler accepts tunnels as the hub's socket endpoint does (the same
// websocket upgrader and session), without its checks: it hands each hub
// end to add and holds the request until that session closes.
func HubHandler(add func(*yamux.Session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := tunnel.Upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s, err := tunnel.Server(tunnel.NewConn(ws))
		if err != nil {
			_ = ws.Close()
			return
		}
		add(s)
		<-s.CloseChan()
	})
}

// Gzipped is s compressed with gzip: the body of a child that compresses,
// for tests of what the proxy passes on untouched.
func Gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return b.Bytes()
}
