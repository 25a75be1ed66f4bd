// Package tunnel carries many streams between the hub and an agent over one
// websocket: the websocket gets through proxies and the parent apiserver's
// upgrade path, and yamux on top gives each stream its own flow-control
// window, so one stalled stream never holds up the others.
package tunnel

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsConn adapts a websocket to the byte stream yamux needs: each Write is one
// binary message (except a data frame's header, held back to share the
// message of the body that follows it), and Read drains messages in order.
type wsConn struct {
	ws *websocket.Conn

	readMu sync.Mutex
	reader io.Reader

	// gorilla/websocket allows one concurrent writer; yamux writes from its
	// send loop and from keepalives.
	writeMu sync.Mutex
	// header is a yamux data frame header waiting for its body. yamux writes
	// header and body separately; on this path every message is a TLS
	// record that crosses the parent apiserver twice, so sending them
	// together halves the messages a request and its response take.
	header [yamuxHeaderSize]byte
	held   bool
}

// yamux's frame header: version, type, flags (2), stream id (4), length (4).
const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
)

// isDataHeader says whether p is a yamux data frame header announcing a body:
// only then does another Write (the body) follow at once from the same send loop.
func isDataHeader(p []byte) bool {
	return len(p) == yamuxHeaderSize && p[0] == 0 && p[1] == yamuxTypeData &&
		(p[8]|p[9]|p[10]|p[11]) != 0
}

// WriteBufferPool lends websocket write buffers only while a message is being
// written: an idle tunnel then holds none, which is most of its memory.
var WriteBufferPool = &sync.Pool{}

// writeBufferSize is a websocket write buffer's size: a yamux frame of up to
// this much goes out as one websocket frame, and so as one write to the TLS
// connection below (TLS cuts it into 16 KiB records in one system call).
// With gorilla's default (4 KiB) a 32 KiB frame of a large response took
// eight frames, writes and system calls at the agent, and as many messages
// for the parent apiserver to relay. Buffers are lent from WriteBufferPool
// only while a message is written, so an idle tunnel holds none; the pool
// serves both ends (the bench runs them in one process), and gorilla wants
// one pool per buffer size: Upgrader and Dialer share this one.
const writeBufferSize = 64 << 10

// Upgrader is the hub's end of a tunnel's websocket.
var Upgrader = websocket.Upgrader{
	// Zero read size reuses the HTTP server's buffer; writes borrow from a pool.
	WriteBufferPool: WriteBufferPool,
	WriteBufferSize: writeBufferSize,
	// Agents are not browsers: no Origin to check.
	CheckOrigin: func(*http.Request) bool { return true },
}

// Dialer is the agent's end of a tunnel's websocket, over tlsConfig.
func Dialer(tlsConfig *tls.Config) *websocket.Dialer {
	return &websocket.Dialer{TLSClientConfig: tlsConfig, HandshakeTimeout: 10 * time.Second,
		WriteBufferPool: WriteBufferPool, WriteBufferSize: writeBufferSize}
}

// NewConn wraps an established websocket as a net.Conn.
func NewConn(ws *websocket.Conn) net.Conn {
	return &wsConn{ws: ws}
}

var errTextMessage = errors.New("tunnel: unexpected text message on a binary tunnel")

func (c *wsConn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		if c.reader == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, errTextMessage
			}
			c.reader = r
		}
		n, err := c.reader.Read(p)
		if errors.Is(err, io.EOF) {
			c.reader = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if !c.held && isDataHeader(p) {
		copy(c.header[:], p)
		c.held = true
		return len(p), nil
	}
	if !c.held {
		if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	c.held = false
	w, err := c.ws.NextWriter(websocket.BinaryMessage)
	if err != nil {
		return 0, err
	}
	if _, err := w.Write(c.header[:]); err != nil {
		return 0, err
	}
	if _, err := w.Write(p); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error                       { return c.ws.Close() }
func (c *wsConn) LocalAddr() net.Addr                { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr               { return c.ws.RemoteAddr() }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }

func (c *wsConn) SetDeadline(t time.Time) error {
	return errors.Join(c.ws.SetReadDeadline(t), c.ws.SetWriteDeadline(t))
}
