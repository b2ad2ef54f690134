package servertest

import (
	"bufio"
	"context"
	"net/http"
	"testing"

	"github.com/gobwas/ws"
)

// DialHeader is Dial with extra handshake headers (X-Forwarded-For, …).
func (s *Server) DialHeader(t testing.TB, path string, h http.Header) *Client {
	t.Helper()
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(h)}
	conn, br, _, err := d.Dial(context.Background(), "ws://"+s.Addr+path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	if br == nil {
		br = bufio.NewReader(conn)
	}
	c := &Client{t: t, conn: conn, br: br}
	t.Cleanup(func() { _ = conn.Close() })
	return c
}
