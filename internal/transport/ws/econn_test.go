//go:build linux

package ws

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/session"
)

// tcpPair returns a connected loopback pair with fixed socket buffers
// (explicit sizes turn off autotuning): a tiny send buffer on the server
// side makes backpressure certain once ~80 KB are unread.
func tcpPair(t testing.TB) (server, client *net.TCPConn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client0, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server0, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	server, client = server0.(*net.TCPConn), client0.(*net.TCPConn)
	_ = server.SetWriteBuffer(4096)
	_ = client.SetReadBuffer(64 << 10) // tiny windows stall on delayed ACKs
	t.Cleanup(func() { client.Close() })
	return server, client
}

func newTestServer(t *testing.T, writeTimeout time.Duration, onSlowFlush func()) (*Server, *node.App) {
	return newCoalescingServer(t, writeTimeout, 0, onSlowFlush)
}

func newCoalescingServer(t testing.TB, writeTimeout, window time.Duration, onSlowFlush func()) (*Server, *node.App) {
	a := &apps.App{ID: "1", Key: "k", Secret: "s", Enabled: true, ActivityTimeout: 30 * time.Second,
		PingInterval: time.Minute, PongTimeout: time.Minute, MaxMessageBytes: 10000, Limits: apps.DefaultLimits}
	reg, err := apps.NewRegistry([]*apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := node.New(reg, memory.New(), log)
	srv, err := New(session.NewManager(n, log, 0), "", TransportEpoll, window, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.WriteTimeout = writeTimeout
	srv.onSlowFlush = onSlowFlush
	return srv, n.AppByID("1")
}

// attach serves nc on srv as an evented connection.
func attach(t testing.TB, srv *Server, a *node.App, nc net.Conn) *session.Session {
	c, ok := newEconn(srv, nc)
	if !ok {
		t.Fatal("no fd")
	}
	sess, err := srv.mgr.Open(a, c)
	if err != nil {
		t.Fatal(err)
	}
	c.sess = sess
	srv.wg.Add(1)
	if err := srv.poller.add(c); err != nil {
		t.Fatal(err)
	}
	c.Wake()
	t.Cleanup(c.finish)
	return sess
}

func newEvented(t *testing.T, nc net.Conn, writeTimeout time.Duration, onSlowFlush func()) *session.Session {
	srv, a := newTestServer(t, writeTimeout, onSlowFlush)
	return attach(t, srv, a, nc)
}

func readEvent(t testing.TB, br *bufio.Reader, nc net.Conn) string {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatalf("read: %v", err)
		}
		if h.OpCode == ws.OpText {
			return string(p)
		}
	}
}

// A socket that could not take its data goes through the slow path; once
// the client reads again it gets everything in order, and the connection
// returns to the pool and keeps working both ways.
func TestSlowPathThenRecover(t *testing.T) {
	server, client := tcpPair(t)
	slowed := make(chan struct{})
	var once sync.Once
	sess := newEvented(t, server, 500*time.Millisecond, func() { once.Do(func() { close(slowed) }) })
	br := bufio.NewReader(client)
	if ev := readEvent(t, br, client); !strings.Contains(ev, "connection_established") {
		t.Fatalf("first frame %s", ev)
	}
	frame := pusher.Event("c", "e", strings.Repeat("x", 8000))
	for range 25 { // 200 KB, not read yet
		sess.Send(frame)
	}
	select { // the server hands the write to the slow path before we read
	case <-slowed:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow path was not exercised")
	}
	for range 25 {
		if ev := readEvent(t, br, client); ev != string(frame) {
			t.Fatalf("got %.60s", ev)
		}
	}
	if err := wsutil.WriteClientText(client, []byte(`{"event":"pusher:ping","data":{}}`)); err != nil {
		t.Fatal(err)
	}
	if ev := readEvent(t, br, client); ev != string(pusher.PongFrame) {
		t.Fatalf("got %s", ev)
	}
	sess.Send(frame)
	if ev := readEvent(t, br, client); ev != string(frame) {
		t.Fatalf("after recovery: got %.60s", ev)
	}
}

// Frames split at every byte boundary, several per read, and a client
// that stalls mid-frame: the reader keeps only the unfinished frame and
// never waits on the socket.
func TestPartialFrames(t *testing.T) {
	server, client := tcpPair(t)
	sess := newEvented(t, server, time.Second, nil)
	br := bufio.NewReader(client)
	readEvent(t, br, client) // connection_established
	var all []byte
	for range 3 {
		var b bytes.Buffer
		if err := wsutil.WriteClientText(&b, []byte(`{"event":"pusher:ping","data":{}}`)); err != nil {
			t.Fatal(err)
		}
		all = append(all, b.Bytes()...)
	}
	// Byte by byte: each write is a separate readable event.
	for i := range all {
		if _, err := client.Write(all[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if ev := readEvent(t, br, client); ev != string(pusher.PongFrame) {
			t.Fatalf("got %s", ev)
		}
	}
	// Half a frame, then nothing: the session still delivers meanwhile.
	if _, err := client.Write(all[:5]); err != nil {
		t.Fatal(err)
	}
	frame := pusher.Event("c", "e", "d")
	sess.Send(frame)
	if ev := readEvent(t, br, client); ev != string(frame) {
		t.Fatalf("got %s", ev)
	}
	if _, err := client.Write(all[5 : len(all)/3]); err != nil {
		t.Fatal(err)
	}
	if ev := readEvent(t, br, client); ev != string(pusher.PongFrame) {
		t.Fatalf("got %s", ev)
	}
}

// More clients stalled mid-frame than the pool has workers must not hold
// up anyone: a reader never waits on a socket for the rest of a frame.
func TestStalledReadersDoNotBlockOthers(t *testing.T) {
	srv, a := newTestServer(t, time.Second, nil)
	ping := func() []byte {
		var b bytes.Buffer
		_ = wsutil.WriteClientText(&b, []byte(`{"event":"pusher:ping","data":{}}`))
		return b.Bytes()
	}()
	for range 4*runtime.GOMAXPROCS(0) + 4 {
		server, client := tcpPair(t)
		attach(t, srv, a, server)
		readEvent(t, bufio.NewReader(client), client)
		if _, err := client.Write(ping[:5]); err != nil { // and never the rest
			t.Fatal(err)
		}
	}
	server, client := tcpPair(t)
	attach(t, srv, a, server)
	br := bufio.NewReader(client)
	readEvent(t, br, client)
	if _, err := client.Write(ping); err != nil {
		t.Fatal(err)
	}
	if ev := readEvent(t, br, client); ev != string(pusher.PongFrame) { // within 5 s
		t.Fatalf("got %s", ev)
	}
}

// coalescingClient attaches a client to a server with the given window and
// records what each write carried and how often a flush was held back.
// Unless idle, the server counts as busy whatever its queue.
func coalescingClient(t *testing.T, window time.Duration, idle bool) (sess *session.Session, read func() string, writes func() []int, holds func() int) {
	srv, a := newCoalescingServer(t, time.Second, window, nil)
	if srv.delayer != nil && !idle {
		srv.delayer.busy = 0
	}
	var mu sync.Mutex
	var counts []int
	held := 0
	srv.onFlush = func(n int) { mu.Lock(); counts = append(counts, n); mu.Unlock() }
	srv.onHold = func() { mu.Lock(); held++; mu.Unlock() }
	server, client := tcpPair(t)
	sess = attach(t, srv, a, server)
	br := bufio.NewReader(client)
	read = func() string { return readEvent(t, br, client) }
	read() // connection_established
	writes = func() []int { mu.Lock(); defer mu.Unlock(); return append([]int(nil), counts...) }
	holds = func() int { mu.Lock(); defer mu.Unlock(); return held }
	return sess, read, writes, holds
}

// Events that come close together on one socket leave in one write: the
// first goes at once (the socket was idle); the next is held for the
// window, and the ones that follow 10 ms later join it, in order. Without
// the hold the second event would leave alone, before the rest exist.
func TestHotSocketCoalesces(t *testing.T) {
	const window = 100 * time.Millisecond
	sess, read, writes, holds := coalescingClient(t, window, false)
	time.Sleep(2*window + 10*time.Millisecond) // the input's spacing: connection_established is long past
	first := pusher.Event("c", "e", "0")
	sess.Send(first)
	if ev := read(); ev != string(first) {
		t.Fatalf("got %s", ev)
	}
	var burst [][]byte
	for i := range 10 {
		if i == 1 {
			time.Sleep(10 * time.Millisecond) // the input's spacing: the rest come well after the second
		}
		f := pusher.Event("c", "e", itoa(i+1))
		burst = append(burst, f)
		sess.Send(f)
	}
	for _, f := range burst {
		if ev := read(); ev != string(f) {
			t.Fatalf("got %s, want %s", ev, f)
		}
	}
	if w := writes(); len(w) != 3 || w[1] != 1 || w[2] != 10 { // connection_established, first, burst
		t.Fatalf("frames per write %v, want [1 1 10]", w)
	}
	if h := holds(); h != 1 {
		t.Fatalf("%d flushes held, want 1", h)
	}
}

// A socket whose events come further apart than two windows is never held
// back; neither is any socket when coalescing is off.
func TestColdSocketWritesAtOnce(t *testing.T) {
	for _, window := range []time.Duration{5 * time.Millisecond, 0} {
		sess, read, writes, holds := coalescingClient(t, window, false)
		for i := range 4 {
			time.Sleep(3 * max(window, time.Millisecond)) // the input's spacing, not a wait for a result
			f := pusher.Event("c", "e", itoa(i))
			sess.Send(f)
			if ev := read(); ev != string(f) {
				t.Fatalf("window %s: got %s", window, ev)
			}
		}
		if h := holds(); h != 0 {
			t.Fatalf("window %s: %d flushes held, want 0 (writes %v)", window, h, writes())
		}
	}
}

// An idle server never holds a flush back, however hot the socket: a
// client in lock-step with its publisher gets each event at once.
func TestIdleServerDoesNotHold(t *testing.T) {
	sess, read, writes, holds := coalescingClient(t, 50*time.Millisecond, true)
	for i := range 20 {
		f := pusher.Event("c", "e", itoa(i))
		sess.Send(f)
		if ev := read(); ev != string(f) {
			t.Fatalf("got %s", ev)
		}
	}
	if h := holds(); h != 0 {
		t.Fatalf("%d flushes held on an idle server, want 0 (writes %v)", h, writes())
	}
}
