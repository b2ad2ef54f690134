package server

import (
	"container/list"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// pending tracks the connections that have not finished sending their
// first request: a slowloris holds thousands of them open, a byte at a
// time, each within the header timeout. Past max, the oldest is closed: an
// ordinary client sends its request line and headers in one packet, so it
// is never the oldest for long, while the flood evicts itself.
//
// Concurrency: safe for concurrent use; mu guards order and at.
type pending struct {
	max     int
	evicted atomic.Int64

	mu    sync.Mutex
	order list.List                  // of net.Conn, oldest first
	at    map[net.Conn]*list.Element // a conn's place in order
}

func newPending(max int) *pending {
	return &pending{max: max, at: map[net.Conn]*list.Element{}}
}

type connKey struct{}

// connContext is http.Server.ConnContext: it remembers the connection so
// that started can find it from the request.
func (p *pending) connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// connState is http.Server.ConnState: a new connection is pending; one
// closed or hijacked before its request is not any more.
func (p *pending) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		p.add(c)
	case http.StateClosed, http.StateHijacked:
		p.remove(c)
	}
}

func (p *pending) add(c net.Conn) {
	p.mu.Lock()
	p.at[c] = p.order.PushBack(c)
	var oldest net.Conn
	if p.order.Len() > p.max {
		e := p.order.Front()
		oldest = e.Value.(net.Conn)
		p.order.Remove(e)
		delete(p.at, oldest)
	}
	p.mu.Unlock()
	if oldest != nil {
		p.evicted.Add(1)
		closeNow(oldest)
	}
}

func (p *pending) remove(c net.Conn) {
	p.mu.Lock()
	if e, ok := p.at[c]; ok {
		p.order.Remove(e)
		delete(p.at, c)
	}
	p.mu.Unlock()
}

// started marks r's connection as past its handshake (its first request
// is being served).
func (p *pending) started(r *http.Request) {
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		p.remove(c)
	}
}

// closeNow closes a connection without a TLS close_notify, which would
// write to a peer that is not reading.
func closeNow(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		_ = tc.NetConn().Close()
		return
	}
	_ = c.Close()
}

// clientAddr sets r.RemoteAddr to the client's address when the request
// came through a trusted proxy (its X-Forwarded-For), so that everything
// after (per-address limits, logs, the HTTP transports' sessions) sees
// the client, not the proxy.
func (s *Server) clientAddr(r *http.Request) {
	xff := r.Header.Values("X-Forwarded-For")
	if len(xff) == 0 {
		return
	}
	if a, ok := s.trusted.Client(r.RemoteAddr, xff); ok {
		if _, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			r.RemoteAddr = net.JoinHostPort(a.String(), port)
		}
	}
}
