//go:build linux

package ws

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"strings"
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
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
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

func newEvented(t *testing.T, nc net.Conn, writeTimeout time.Duration) (*Server, *session.Session) {
	a := &apps.App{ID: "1", Key: "k", Secret: "s", Enabled: true, ActivityTimeout: 30 * time.Second,
		PingInterval: time.Minute, PongTimeout: time.Minute, MaxMessageBytes: 10000, Limits: apps.DefaultLimits}
	reg, err := apps.NewRegistry([]*apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := node.New(reg, memory.New(), log)
	srv, err := New(session.NewManager(n, log, 0), "", TransportEpoll, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.WriteTimeout = writeTimeout
	c, ok := newEconn(srv, nc)
	if !ok {
		t.Fatal("no fd")
	}
	sess, err := srv.mgr.Open(n.AppByID("1"), c)
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
	return srv, sess
}

func readEvent(t *testing.T, br *bufio.Reader, nc net.Conn) string {
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
// the client reads again it gets everything in order and the connection
// returns to the pool and keeps working, also after the slow path's write
// timeout has passed.
func TestSlowPathThenRecover(t *testing.T) {
	server, client := tcpPair(t)
	srv, sess := newEvented(t, server, 500*time.Millisecond)
	br := bufio.NewReader(client)
	if ev := readEvent(t, br, client); !strings.Contains(ev, "connection_established") {
		t.Fatalf("first frame %s", ev)
	}
	frame := pusher.Event("c", "e", strings.Repeat("x", 8000))
	for range 25 { // 200 KB, not read yet
		sess.Send(frame)
	}
	// Await the server's handoff to the slow path before reading.
	waitUntil := time.Now().Add(5 * time.Second)
	for srv.slowWrites.Load() == 0 && time.Now().Before(waitUntil) {
		time.Sleep(time.Millisecond)
	}
	for range 25 {
		if ev := readEvent(t, br, client); ev != string(frame) {
			t.Fatalf("got %.60s", ev)
		}
	}
	if srv.slowWrites.Load() == 0 {
		t.Fatal("the slow path was not exercised")
	}
	// Outlive the slow path's deadline with real traffic, then deliver.
	until := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(until) {
		if err := wsutil.WriteClientText(client, []byte(`{"event":"pusher:ping","data":{}}`)); err != nil {
			t.Fatal(err)
		}
		if ev := readEvent(t, br, client); ev != string(pusher.PongFrame) {
			t.Fatalf("got %s", ev)
		}
	}
	sess.Send(frame)
	if ev := readEvent(t, br, client); ev != string(frame) {
		t.Fatalf("after the deadline: got %.60s", ev)
	}
}
