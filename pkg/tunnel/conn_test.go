package tunnel

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

// rawPair is a websocket whose client end is wrapped by NewConn and whose
// server end is read message by message.
func rawPair(t *testing.T) (client *wsConn, server *websocket.Conn) {
	t.Helper()
	serverWS := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		serverWS <- ws
	}))
	t.Cleanup(srv.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return NewConn(ws).(*wsConn), <-serverWS
}

func TestWritesShareMessagesOnlyForDataFrames(t *testing.T) {
	dataHeader := []byte{0, yamuxTypeData, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5}
	windowUpdate := []byte{0, 1, 0, 1, 0, 0, 0, 3, 0, 4, 0, 0}
	emptyData := []byte{0, yamuxTypeData, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0} // a FIN: no body follows
	client, server := rawPair(t)
	for _, w := range [][]byte{dataHeader, []byte("hello"), windowUpdate, emptyData, dataHeader, []byte("again")} {
		if n, err := client.Write(w); err != nil || n != len(w) {
			t.Fatalf("Write(%v) = %d, %v", w, n, err)
		}
	}
	var got [][]byte
	for range 4 {
		_, r, err := server.NextReader()
		if err != nil {
			t.Fatal(err)
		}
		msg, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msg)
	}
	want := [][]byte{
		append(bytes.Clone(dataHeader), "hello"...),
		windowUpdate,
		emptyData,
		append(bytes.Clone(dataHeader), "again"...),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("websocket messages (-want +got):\n%s", diff)
	}
}
