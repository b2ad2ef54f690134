package ws

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/session"
)

// These tests drive each transport the way a client does: a real HTTP
// upgrade on a loopback socket, then raw frames, and they assert the exact
// close frame the client gets back.

// transports are the kinds to test here: the goroutine transport always,
// the epoll transport where it exists.
func transports() []string {
	if pollerSupported {
		return []string{TransportEpoll, TransportGoroutine}
	}
	return []string{TransportGoroutine}
}

// syncBuffer is a log sink safe for the connection goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveKind starts a WebSocket server of the given transport kind on a
// loopback listener; it returns the server, its ws:// URL for app key "k"
// and its log.
func serveKind(t *testing.T, kind string) (*Server, string, *syncBuffer) {
	t.Helper()
	a := &apps.App{ID: "1", Key: "k", Secret: "s", Enabled: true, ActivityTimeout: 30 * time.Second,
		PingInterval: time.Minute, PongTimeout: time.Minute, MaxMessageBytes: 10000, Limits: apps.DefaultLimits}
	reg, err := apps.NewRegistry([]*apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	n := node.New(reg, memory.New(), log)
	srv, err := New(session.NewManager(n, log, 0), "", kind, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return srv, "ws" + strings.TrimPrefix(hs.URL, "http") + "/app/k?protocol=7", logs
}

// wsClient is a raw WebSocket client that sends whatever bytes it is told.
type wsClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// dial connects to url and reads connection_established.
func dial(t *testing.T, url string) *wsClient {
	t.Helper()
	nc, br, _, err := ws.Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if br == nil {
		br = bufio.NewReader(nc)
	}
	c := &wsClient{t: t, nc: nc, br: br}
	if op, p := c.next(); op != ws.OpText || !bytes.Contains(p, []byte("connection_established")) {
		t.Fatalf("first frame %v %q", op, p)
	}
	return c
}

func (c *wsClient) send(frames ...[]byte) {
	c.t.Helper()
	if _, err := c.nc.Write(bytes.Join(frames, nil)); err != nil {
		c.t.Fatal(err)
	}
}

// frameOrEOF reads the next server frame; err is io.EOF when the server
// ended the stream.
func (c *wsClient) frameOrEOF() (ws.OpCode, []byte, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := ws.ReadHeader(c.br)
	if err != nil {
		return 0, nil, err
	}
	if h.Masked || h.Rsv != 0 {
		c.t.Fatalf("server frame header %+v", h)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return 0, nil, err
	}
	return h.OpCode, p, nil
}

func (c *wsClient) next() (ws.OpCode, []byte) {
	c.t.Helper()
	op, p, err := c.frameOrEOF()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return op, p
}

// closed reads until the server's close frame and returns its payload (a
// client without one reports 1006), then checks that the server ends the
// stream after it.
func (c *wsClient) closed() []byte {
	c.t.Helper()
	for {
		op, p, err := c.frameOrEOF()
		if err != nil {
			c.t.Fatalf("no close frame before the stream ended (a client sees 1006): %v", err)
		}
		if op != ws.OpClose {
			continue
		}
		if _, _, err := c.frameOrEOF(); !errors.Is(err, io.EOF) {
			c.t.Fatalf("after the close frame: %v, want the end of the stream", err)
		}
		return p
	}
}

// closeCode is the status code of the server's close frame.
func (c *wsClient) closeCode() int {
	c.t.Helper()
	p := c.closed()
	if len(p) < 2 {
		c.t.Fatalf("close frame payload %q has no code", p)
	}
	return int(binary.BigEndian.Uint16(p))
}

// roundTrip proves the connection works: pusher:ping gets pusher:pong.
func (c *wsClient) roundTrip() {
	c.t.Helper()
	c.send(frame(0x81, []byte(`{"event":"pusher:ping","data":{}}`)))
	for {
		op, p := c.next()
		if op == ws.OpText && bytes.Equal(p, pusher.PongFrame) {
			return
		}
		if op == ws.OpClose {
			c.t.Fatalf("closed instead of pong: %q", p)
		}
	}
}

// frame encodes a masked client frame; b0 holds FIN, RSV and the opcode.
func frame(b0 byte, payload []byte) []byte {
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xffff:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = binary.BigEndian.AppendUint64(append(out, 0x80|127), uint64(n))
	}
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	p := append([]byte(nil), payload...)
	ws.Cipher(p, mask, 0)
	return append(append(out, mask[:]...), p...)
}

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

const (
	fin    = 0x80
	opCont = 0x0
	opText = 0x1
	opBin  = 0x2
	opCls  = 0x8
	opPing = 0x9
)

var ping = []byte(`{"event":"pusher:ping","data":{}}`)

// A frame that breaks RFC 6455 fails the connection with the close code of
// §7.4.1 (1002, or 1007 for data that is not UTF-8) on both transports,
// and the close frame reaches the client before the server hangs up.
func TestFrameValidationCloseCodes(t *testing.T) {
	type tc struct {
		name   string
		frames [][]byte
		want   int
	}
	cases := []tc{
		{"unmasked", [][]byte{{fin | opText, 2, 'h', 'i'}}, 1002},
		{"rsv1", [][]byte{frame(fin|0x40|opText, ping)}, 1002},
		{"rsv2", [][]byte{frame(fin|0x20|opText, ping)}, 1002},
		{"rsv3 on a ping", [][]byte{frame(fin|0x10|opPing, nil)}, 1002},
		{"continuation first", [][]byte{frame(fin|opCont, ping)}, 1002},
		{"text inside a fragmented message", [][]byte{frame(opText, ping[:5]), frame(fin|opText, ping)}, 1002},
		{"binary inside a fragmented message", [][]byte{frame(opBin, ping[:5]), frame(fin|opBin, ping)}, 1002},
		{"fragmented ping", [][]byte{frame(opPing, []byte("a")), frame(fin|opCont, []byte("b"))}, 1002},
		{"ping of 126 bytes", [][]byte{frame(fin|opPing, make([]byte, 126))}, 1002},
		{"64-bit length with the top bit set", [][]byte{{fin | opText, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4}}, 1002},
		{"close of one byte", [][]byte{frame(fin|opCls, []byte{3})}, 1002},
		{"close reason not UTF-8", [][]byte{frame(fin|opCls, closePayload(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"))}, 1007},
		{"text not UTF-8", [][]byte{frame(fin|opText, []byte("{\"event\":\"client-x\",\"channel\":\"private-a\",\"data\":\"\xff\xfe\"}"))}, 1007},
		{"text not UTF-8 in the last fragment", [][]byte{frame(opText, []byte(`{"event":`)), frame(fin, []byte("\"\xc3\x28\"}"))}, 1007},
		{"surrogate half in text", [][]byte{frame(fin|opText, []byte("\"\xed\xa0\x80\""))}, 1007},
		{"bad frame followed by more data", [][]byte{frame(fin|0x40|opText, ping), bytes.Repeat(frame(fin|opText, ping), 3000)}, 1002},
		{"message too big (unchanged)", [][]byte{frame(fin|opText, make([]byte, 10001))}, pusher.CodeMessageTooBig},
	}
	for _, op := range []byte{3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf} {
		cases = append(cases, tc{"reserved opcode " + itoa(int(op)), [][]byte{frame(fin|op, nil)}, 1002})
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, tc{"close code " + itoa(int(code)), [][]byte{frame(fin|opCls, closePayload(code, ""))}, 1002})
	}
	for _, kind := range transports() {
		_, url, _ := serveKind(t, kind)
		for _, c := range cases {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				cl := dial(t, url)
				cl.send(c.frames...)
				if got := cl.closeCode(); got != c.want {
					t.Fatalf("close code %d, want %d", got, c.want)
				}
			})
		}
	}
}

// A client's close is answered with the echo of its code (an empty close
// for an empty one) before the server hangs up, on both transports: the
// client sees a clean close, not 1006. Autobahn 7.7: every code a peer may
// send, including the 3000–4999 ranges.
func TestCloseHandshakeEchoesCode(t *testing.T) {
	for _, kind := range transports() {
		_, url, _ := serveKind(t, kind)
		for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
			t.Run(kind+"/"+itoa(int(code)), func(t *testing.T) {
				cl := dial(t, url)
				cl.send(frame(fin|opCls, closePayload(code, "bye")))
				if got := cl.closeCode(); got != int(code) {
					t.Fatalf("close code %d, want the echo %d", got, code)
				}
			})
		}
		t.Run(kind+"/empty", func(t *testing.T) {
			cl := dial(t, url)
			cl.send(frame(fin|opCls, nil))
			if p := cl.closed(); len(p) != 0 {
				t.Fatalf("close payload %q, want an empty close", p)
			}
		})
		t.Run(kind+"/pending frames are not sent after the echo", func(t *testing.T) {
			cl := dial(t, url)
			cl.send(frame(fin|opText, ping), frame(fin|opCls, closePayload(1000, "")))
			for {
				op, p := cl.next()
				if op == ws.OpClose {
					if code := binary.BigEndian.Uint16(p); code != 1000 {
						t.Fatalf("close code %d", code)
					}
					break
				}
			}
			if _, _, err := cl.frameOrEOF(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the echo: %v, want the end of the stream", err)
			}
		})
	}
}

// UTF-8 is checked on the whole text message, never per fragment: a
// character split across fragments (with a ping between them) is fine,
// and binary messages are not checked at all.
func TestUTF8CheckedPerMessage(t *testing.T) {
	msg := []byte(`{"event":"pusher:ping","data":{"x":"é"}}`)
	cut := bytes.IndexByte(msg, 0xc3) + 1 // between the two bytes of é
	for _, kind := range transports() {
		t.Run(kind, func(t *testing.T) {
			_, url, _ := serveKind(t, kind)
			cl := dial(t, url)
			cl.send(frame(opText, msg[:cut]), frame(fin|opPing, []byte("p")), frame(fin|opCont, msg[cut:]))
			if op, p := cl.next(); op != ws.OpPong || string(p) != "p" {
				t.Fatalf("got %v %q, want the pong frame", op, p)
			}
			if op, p := cl.next(); op != ws.OpText || !bytes.Equal(p, pusher.PongFrame) {
				t.Fatalf("got %v %q, want the pong", op, p)
			}
			// Not UTF-8, binary: handed on (the session answers that it is
			// not JSON) and the connection stays.
			cl.send(frame(fin|opBin, []byte{0xff, 0xfe, 0xfd}))
			cl.roundTrip()
		})
	}
}

// A panic while handling one connection's message closes that connection
// alone (pusher:error 4200, then close 4200), is logged with its stack
// and socket, and counted; every other connection keeps working, and on
// the epoll transport the pool workers survive: more connections panic
// than there are workers, and work still gets done.
func TestPanicClosesOnlyItsConnection(t *testing.T) {
	for _, kind := range transports() {
		t.Run(kind, func(t *testing.T) {
			srv, url, logs := serveKind(t, kind)
			srv.onMessage = func(msg []byte) {
				if bytes.Contains(msg, []byte("boom")) {
					panic("boom")
				}
			}
			other := dial(t, url)
			victims := 1
			if srv.pool != nil {
				victims = 4*runtime.GOMAXPROCS(0) + 1 // newPool's workers, plus one
			}
			for range victims {
				cl := dial(t, url)
				cl.send(frame(fin|opText, []byte(`{"event":"boom","data":{}}`)))
				op, p := cl.next()
				if op != ws.OpText || !bytes.Contains(p, []byte("pusher:error")) || !bytes.Contains(p, []byte("4200")) {
					t.Fatalf("got %v %q, want pusher:error 4200", op, p)
				}
				if code := cl.closeCode(); code != pusher.CodeGeneric {
					t.Fatalf("close code %d, want 4200", code)
				}
			}
			other.roundTrip()
			dial(t, url).roundTrip()
			if got := srv.Panics(); got != int64(victims) {
				t.Fatalf("Panics() = %d, want %d", got, victims)
			}
			log := logs.String()
			if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "socket_id=") || !strings.Contains(log, "goroutine ") {
				t.Fatalf("the panic is not logged at error with its socket and stack:\n%s", log)
			}
		})
	}
}

// A panic while opening the session (none exists yet) refuses that
// connection with a bare close 1011 (no pusher:error: not a Pusher code)
// and is counted.
func TestOpenPanicRefusesWith1011(t *testing.T) {
	srv := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), WriteTimeout: time.Second}
	_, err := srv.open(&node.App{App: &apps.App{ID: "1"}}, nil) // no manager: Open panics
	var pe *pusher.Error
	if !errors.As(err, &pe) || pe.Code != 1011 || srv.Panics() != 1 {
		t.Fatalf("open = %v, Panics() = %d; want a 1011 refusal, counted", err, srv.Panics())
	}
	server, client := net.Pipe()
	go srv.reject(server, pe)
	cl := &wsClient{t: t, nc: client, br: bufio.NewReader(client)}
	op, p := cl.next()
	if op != ws.OpClose || binary.BigEndian.Uint16(p) != 1011 {
		t.Fatalf("got %v %q, want only a close 1011", op, p)
	}
	client.Close()
}
