package server_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/server/servertest"
)

// refused expects a connection refused over capacity: pusher:error 4100,
// then the close with 4100 (pusher-js reconnects after a backoff).
func refused(t *testing.T, c *servertest.Client) {
	t.Helper()
	m := c.Expect("pusher:error")
	if !strings.Contains(m.DataString(), `"code":4100`) {
		t.Fatalf("refusal %s", m.Raw)
	}
	if code := c.ExpectClose(); code != pusher.CodeOverCapacity {
		t.Fatalf("close code %d, want 4100", code)
	}
}

// server.max_connections_per_ip: one address holds at most that many
// sockets; a closed one frees its slot, and the refusals are counted.
func TestMaxConnectionsPerIP(t *testing.T) {
	s := start(t, func(c *config.Config) { c.Server.MaxConnectionsPerIP = 2 })
	a, _ := connect(t, s)
	connect(t, s)
	refused(t, s.Dial(t, wsPath))
	a.Close()
	// The slot comes back once the server has seen a go: retry until then.
	deadline := time.Now().Add(guard)
	for {
		c := s.Dial(t, wsPath)
		m, err := c.Next(guard)
		if err == nil && m.Event == "pusher:connection_established" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after the close: %s %v", m.Raw, err)
		}
	}
	if got := s.Stats(); got.Connections != 2 {
		t.Fatalf("connections %d, want 2", got.Connections)
	}
	if n := s.IPRefused(); n < 1 {
		t.Fatalf("refusals counted: %d", n)
	}
}

// server.max_new_connections_per_ip: bursts of twice the rate, then 4100.
func TestMaxNewConnectionsPerIP(t *testing.T) {
	s := start(t, func(c *config.Config) { c.Server.MaxNewConnectionsPerIP = 1 })
	connect(t, s)
	connect(t, s)                 // the burst of 2
	refused(t, s.Dial(t, wsPath)) // within the same second
}

// Behind a trusted proxy each client is counted by its X-Forwarded-For;
// from an untrusted peer the header is ignored (else anyone could pick
// their address).
func TestTrustedProxies(t *testing.T) {
	xff := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {"198.51.100.9, " + ip}} }
	s := start(t, func(c *config.Config) {
		c.Server.MaxConnectionsPerIP = 1
		c.Server.TrustedProxies = []string{"127.0.0.0/8"}
	})
	s.DialHeader(t, wsPath, xff("203.0.113.1")).Expect("pusher:connection_established")
	s.DialHeader(t, wsPath, xff("203.0.113.2")).Expect("pusher:connection_established")
	refused(t, s.DialHeader(t, wsPath, xff("203.0.113.1")))

	u := start(t, func(c *config.Config) { c.Server.MaxConnectionsPerIP = 1 }) // no trusted proxy
	u.DialHeader(t, wsPath, xff("203.0.113.1")).Expect("pusher:connection_established")
	refused(t, u.DialHeader(t, wsPath, xff("203.0.113.2")))
}

// 2,000 slowloris connections, each sending a request line and then
// nothing, next to an ordinary client: past server.max_pending_handshakes
// the oldest unfinished ones are closed, and the ordinary client connects,
// subscribes and receives as usual.
func TestSlowlorisEvicted(t *testing.T) {
	const flood, limit = 2000, 200
	s := start(t, func(c *config.Config) { c.Server.MaxPendingHandshakes = limit })
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range flood / 8 {
				c, err := net.Dial("tcp", s.Addr)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = c.Write([]byte("GET " + wsPath + " HTTP/1.1\r\nHost: x\r\n"))
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Each eviction is counted before the next connection is accepted.
	deadline := time.Now().Add(guard)
	for s.HandshakesEvicted() < flood-limit {
		if time.Now().After(deadline) {
			t.Fatalf("evicted %d of %d over the cap", s.HandshakesEvicted(), flood-limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := subscribed(t, s, "news")
	app := s.Node().AppByKey(config.DefaultAppKey)
	if err := s.Node().Publish(context.Background(), app, []string{"news"}, "e", "{}", ""); err != nil {
		t.Fatal(err)
	}
	c.Expect("e")
	// The oldest half of the flood was closed by the server.
	closed := 0
	for _, fc := range conns[:flood/2] {
		_ = fc.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := fc.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			closed++
		}
	}
	if closed < flood/2-limit {
		t.Errorf("%d of the oldest %d slowloris connections closed", closed, flood/2)
	}
}
