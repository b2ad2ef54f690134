// Package servertest starts an in-process Herald on a random loopback port
// for tests, and gives them a small raw WebSocket client.
package servertest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/server"
)

// Server is a running test server.
type Server struct {
	*server.Server
	Config *config.Config
	Addr   string // host:port
}

// Start runs a server for cfg (Server.Host/Port are overridden with a free
// loopback port) and stops it when the test ends.
func Start(t testing.TB, cfg *config.Config) *Server {
	t.Helper()
	cfg.Server.Host, cfg.Server.Port = "127.0.0.1", 0
	if cfg.Server.DrainWindow == config.DefaultDrainWindow {
		// Tests stop at once unless they test the drain (and set a window).
		cfg.Server.DrainWindow = 0
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := server.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &Server{Server: s, Config: cfg, Addr: s.Addr().String()}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// Client is a raw WebSocket client speaking JSON frames.
type Client struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
	// CloseCode is set when the server's close frame was read.
	CloseCode int
}

// Message is a decoded server frame.
type Message struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	UserID  string          `json:"user_id"`
	Raw     string          `json:"-"`
}

// DataString unwraps a string-encoded data field.
func (m Message) DataString() string {
	var s string
	if json.Unmarshal(m.Data, &s) == nil {
		return s
	}
	return string(m.Data)
}

// Dial connects to path (e.g. "/app/key?protocol=7").
func (s *Server) Dial(t testing.TB, path string) *Client {
	t.Helper()
	return s.DialHeader(t, path, nil)
}

// Send writes a text frame.
func (c *Client) Send(v any) {
	c.t.Helper()
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := wsutil.WriteClientText(c.conn, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// Next reads the next data frame (answering nothing); on a close frame it
// records CloseCode and returns an error.
func (c *Client) Next(timeout time.Duration) (Message, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			return Message{}, err
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c.br, p); err != nil {
			return Message{}, err
		}
		if h.OpCode == ws.OpClose {
			if len(p) >= 2 {
				c.CloseCode = int(p[0])<<8 | int(p[1])
			}
			return Message{}, fmt.Errorf("closed with %d: %s", c.CloseCode, p[min(2, len(p)):])
		}
		if h.OpCode.IsControl() {
			continue
		}
		var m Message
		if err := json.Unmarshal(p, &m); err != nil {
			return Message{}, fmt.Errorf("bad frame %q: %v", p, err)
		}
		m.Raw = string(p)
		return m, nil
	}
}

// Expect reads frames until one with event arrives, failing after timeout.
func (c *Client) Expect(event string) Message {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := c.Next(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", event, err)
		}
		if m.Event == event {
			return m
		}
	}
}

// ExpectClose reads until the server's close frame and returns its code.
func (c *Client) ExpectClose() int {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.Next(time.Until(deadline)); err != nil {
			if c.CloseCode == 0 {
				c.t.Fatalf("connection ended without a close frame: %v", err)
			}
			return c.CloseCode
		}
	}
}

// ExpectClosed reads until the connection ends, with or without a close
// frame (a server that drops a client sends none), failing after 5 s.
func (c *Client) ExpectClosed() {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.Next(time.Until(deadline)); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.t.Fatalf("connection still open after 5 s")
			}
			return
		}
	}
}

// Conn is the underlying connection (to stop reading, for slow-client tests).
func (c *Client) Conn() net.Conn { return c.conn }
