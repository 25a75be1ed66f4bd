package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// hijacked is the server side of a websocket handshake over one end of a
// net.Pipe: the Upgrader hijacks it as it would a real server's connection.
type hijacked struct {
	conn   net.Conn
	brw    *bufio.ReadWriter
	header http.Header
}

func (h *hijacked) Header() http.Header                          { return h.header }
func (h *hijacked) Write(p []byte) (int, error)                  { return h.conn.Write(p) }
func (h *hijacked) WriteHeader(int)                              {}
func (h *hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) { return h.conn, h.brw, nil }

// pipePair is a websocket over net.Pipe: client is the dialing end, server
// the upgraded one, as the agent and the hub hold them.
func pipePair(t testing.TB) (client, server *websocket.Conn) {
	t.Helper()
	c1, c2 := net.Pipe()
	type result struct {
		ws  *websocket.Conn
		err error
	}
	upgraded := make(chan result, 1)
	go func() {
		br := bufio.NewReader(c2)
		req, err := http.ReadRequest(br)
		if err != nil {
			upgraded <- result{err: err}
			return
		}
		w := &hijacked{conn: c2, brw: bufio.NewReadWriter(br, bufio.NewWriter(c2)), header: http.Header{}}
		ws, err := (&websocket.Upgrader{}).Upgrade(w, req, nil)
		upgraded <- result{ws, err}
	}()
	dialer := websocket.Dialer{NetDialContext: func(context.Context, string, string) (net.Conn, error) { return c1, nil }}
	client, _, err := dialer.Dial("ws://tunnel.invalid/", nil)
	if err != nil {
		_ = c1.Close()
		_ = c2.Close()
		t.Fatalf("websocket handshake over a pipe: %v", err)
	}
	r := <-upgraded
	if r.err != nil {
		_ = c1.Close()
		t.Fatalf("upgrading over a pipe: %v", r.err)
	}
	return client, r.ws
}

// heapAllocated is the bytes allocated so far by the whole process.
func heapAllocated() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// frame is one websocket frame from the hub (servers do not mask) with
// opcode op, whose header claims length bytes whatever follows.
func frame(op byte, length uint64, payload []byte) []byte {
	b := []byte{0x80 | op}
	switch {
	case length < 126:
		b = append(b, byte(length))
	case length <= 0xffff:
		b = append(b, 126, byte(length>>8), byte(length))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, length)
	}
	return append(b, payload...)
}

// yamuxFrame is a yamux frame header (version 0) followed by body.
func yamuxFrame(typ byte, flags uint16, stream, length uint32, body []byte) []byte {
	b := []byte{0, typ}
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint32(b, stream)
	b = binary.BigEndian.AppendUint32(b, length)
	return append(b, body...)
}

// maxFuzzAlloc bounds what one input may make the tunnel allocate: a
// yamux stream's receive window (1 MiB at most), buffers, goroutines, and
// a few times the input. A length header believed would be far more.
func maxFuzzAlloc(input int) uint64 { return 8<<20 + 8*uint64(input) }

// FuzzConnRead feeds the agent's end of the websocket whatever bytes a peer
// may send after the handshake. Invariants: Read never panics, never
// returns more bytes than arrived, ends with an error once the peer is gone,
// and allocates no more than the input warrants, whatever a frame's length
// header claims.
func FuzzConnRead(f *testing.F) {
	f.Add(frame(websocket.BinaryMessage, 5, []byte("hello")))
	f.Add(append(frame(websocket.BinaryMessage, 0, nil), frame(websocket.BinaryMessage, 3, []byte("abc"))...))
	f.Add(frame(websocket.TextMessage, 2, []byte("hi")))
	f.Add(frame(websocket.BinaryMessage, 1<<62, []byte("short")))  // a length header far beyond what follows
	f.Add(frame(websocket.BinaryMessage, 0xffff, []byte("short"))) // 16-bit length
	f.Add(frame(websocket.PingMessage, 4, []byte("ping")))
	f.Add(frame(websocket.CloseMessage, 2, []byte{0x03, 0xe8}))
	f.Add([]byte{0x02, 0x03, 'a', 'b', 'c', 0x80, 0x00})           // a fragmented message: binary, then continuation
	f.Add([]byte{0x82, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'}) // masked by the server: a protocol error
	f.Fuzz(func(t *testing.T, raw []byte) {
		client, server := pipePair(t)
		defer func() { _ = client.Close() }()
		go func() {
			_, _ = server.NetConn().Write(raw)
			_ = server.NetConn().Close()
		}()
		conn := NewConn(client)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		before := heapAllocated()
		var total int
		buf := make([]byte, 4096)
		var err error
		for err == nil {
			var n int
			n, err = conn.Read(buf)
			total += n
		}
		if total > len(raw) {
			t.Fatalf("read %d bytes out of %d bytes of frames", total, len(raw))
		}
		if isTimeout(err) {
			t.Fatalf("Read still waiting after the peer closed: %v", err)
		}
		if got := heapAllocated() - before; got > maxFuzzAlloc(len(raw)) {
			t.Fatalf("reading %d bytes allocated %d bytes", len(raw), got)
		}
	})
}

// FuzzSessionFrames feeds an agent's yamux session whatever the hub's end
// may send inside binary messages. Invariants: the session never panics,
// closes once the peer is gone, and allocates no more than the input and
// one stream window warrant, whatever a frame's length says.
func FuzzSessionFrames(f *testing.F) {
	const syn, fin, rst = 1, 4, 8
	f.Add(yamuxFrame(0, syn, 1, 5, []byte("hello")))
	f.Add(append(yamuxFrame(0, syn, 1, 0, nil), yamuxFrame(0, fin, 1, 0, nil)...))
	f.Add(yamuxFrame(0, syn, 1, 0xffffffff, []byte("claims 4 GiB")))
	f.Add(yamuxFrame(0, syn, 1, streamWindow, nil))        // a full window announced, nothing sent
	f.Add(yamuxFrame(0, 0, 7, 1<<30, []byte("no stream"))) // data for a stream nobody opened
	f.Add(yamuxFrame(1, syn, 3, 1<<31, nil))               // window update: a huge window
	f.Add(yamuxFrame(2, syn, 0, 42, nil))                  // ping
	f.Add(yamuxFrame(3, 0, 0, 1, nil))                     // go away
	f.Add(yamuxFrame(0, syn|rst, 1, 0, nil))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}) // unknown version
	f.Fuzz(func(t *testing.T, raw []byte) {
		client, server := pipePair(t)
		go func() {
			// One binary message, as the hub's wsConn sends a data frame.
			// A pipe's Write returns once the agent's end has read it all:
			// the hub's end then goes away.
			_ = server.WriteMessage(websocket.BinaryMessage, raw)
			_ = server.NetConn().Close()
		}()
		before := heapAllocated()
		session, err := Client(NewConn(client))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				s, err := session.Accept()
				if err != nil {
					return
				}
				go func() { _, _ = io.Copy(io.Discard, s); _ = s.Close() }()
			}
		}()
		select {
		case <-session.CloseChan():
		case <-time.After(10 * time.Second):
			_ = session.Close()
			t.Fatal("the session did not close after its peer went away")
		}
		if got := heapAllocated() - before; got > maxFuzzAlloc(len(raw)) {
			t.Fatalf("%d bytes of frames made the session allocate %d bytes", len(raw), got)
		}
	})
}

// FuzzConnRoundTrip writes data through one end of a websocket in pieces cut
// where cuts say (yamux writes a data frame's 12-byte header and its body
// separately) and reads the other end. Invariant: the reader gets exactly the
// bytes written, in order, whatever the pieces look like.
func FuzzConnRoundTrip(f *testing.F) {
	dataHeader := yamuxFrame(0, 0, 1, 5, nil)
	f.Add(append(bytes.Clone(dataHeader), "hello"...), []byte{12})
	f.Add(append(append(bytes.Clone(dataHeader), "hello"...), yamuxFrame(1, 0, 1, 1<<16, nil)...), []byte{12, 5, 12})
	f.Add(append(bytes.Clone(dataHeader), dataHeader...), []byte{12, 12}) // a header whose body looks like a header
	f.Add(yamuxFrame(0, fin, 1, 0, nil), []byte{12})                      // a FIN: no body, nothing held
	f.Add(bytes.Repeat([]byte("clusternet"), 1000), []byte{1, 200, 0, 7})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		client, server := pipePair(t)
		defer func() { _ = client.Close(); _ = server.Close() }()
		writer, reader := NewConn(client), NewConn(server)
		// yamux never ends on a data header (its body follows at once):
		// the last write here is never one either.
		trailer := yamuxFrame(2, 0, 0, 1, nil)
		want := append(bytes.Clone(data), trailer...)
		written := make(chan error, 1)
		go func() {
			rest := data
			for _, c := range cuts {
				n := min(int(c), len(rest))
				if _, err := writer.Write(rest[:n]); err != nil {
					written <- err
					return
				}
				rest = rest[n:]
			}
			if len(rest) > 0 {
				if _, err := writer.Write(rest); err != nil {
					written <- err
					return
				}
			}
			_, err := writer.Write(trailer)
			written <- err
		}()
		_ = reader.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, len(want))
		if _, err := io.ReadFull(reader, got); err != nil {
			t.Fatalf("reading %d bytes back: %v", len(want), err)
		}
		if err := <-written; err != nil {
			t.Fatalf("writing: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read back\n %q\nwant\n %q", got, want)
		}
		// Nothing more arrives than was written.
		_ = reader.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if n, err := reader.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
			t.Fatalf("read %d more bytes (%v) after everything written", n, err)
		}
	})
}

const fin = 4

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
