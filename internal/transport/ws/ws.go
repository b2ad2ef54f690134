// Package ws carries Pusher sessions over WebSocket (RFC 6455, via
// github.com/gobwas/ws). It is the only server code that touches the
// WebSocket library.
//
// Two transports carry a session. The epoll transport (econn, the default
// on Linux) holds an idle socket with no goroutine and no buffer: a poller
// reports it readable, and a fixed pool of workers reads what arrived and
// flushes each socket's queue in one non-blocking write. The goroutine
// transport (conn) gives each socket a reader goroutine (readPump) and a
// writer goroutine (writePump); its goroutines are tracked so Shutdown
// can wait for them. In both, the session is the only shared state, and
// it guards itself.
package ws

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-ws/herald/internal/metrics"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/session"
)

// Server upgrades HTTP requests to Pusher WebSocket sessions.
type Server struct {
	mgr    *session.Manager
	prefix string // path prefix before /app/{key}, "" or "/x"
	log    *slog.Logger

	WriteTimeout time.Duration // per flush (default 10 s)
	wg           sync.WaitGroup
	stalled      atomic.Int64 // connections dropped after WriteTimeout
	traffic      metrics.Traffic
	stripes      atomic.Uint32 // hands out traffic stripes to goroutine-transport conns
	panics       atomic.Int64  // panics recovered on connection goroutines

	// Event-driven mode (epoll): idle sockets hold no goroutine or buffer.
	poller  *poller
	pool    *pool
	delayer *delayer

	// Test hooks, nil in production. onSlowFlush runs as a write leaves the
	// pool for the connection's own goroutine; onFlush gets the number of
	// queued frames each write carries; onHold runs as a hot socket's flush
	// is handed to the delayer; onMessage runs before the session handles
	// a complete inbound message.
	onSlowFlush func()
	onFlush     func(frames int)
	onHold      func()
	onMessage   func(msg []byte)
}

// Transport kinds.
const (
	TransportEpoll     = "epoll"     // event-driven; Linux only
	TransportGoroutine = "goroutine" // a reader and a writer goroutine per socket
)

// New returns a WebSocket server for mgr's node; prefix is the configured
// server path; kind is TransportEpoll or TransportGoroutine ("" picks epoll
// where available); coalesce is the window a hot socket's flush waits so
// that more frames share its write (epoll only; 0 writes at once).
func New(mgr *session.Manager, prefix, kind string, coalesce time.Duration, log *slog.Logger) (*Server, error) {
	s := &Server{mgr: mgr, prefix: prefix, log: log, WriteTimeout: 10 * time.Second}
	if kind == "" && pollerSupported {
		kind = TransportEpoll
	}
	if kind == TransportEpoll {
		s.pool = newPool(0)
		if coalesce > 0 {
			s.delayer = newDelayer(coalesce, s.pool)
		}
		p, err := newPoller(s.pool)
		if err != nil {
			return nil, err
		}
		s.poller = p
	}
	return s, nil
}

// Stalled is how many connections were dropped because the client took
// none of our data for the write timeout.
func (s *Server) Stalled() int64 { return s.stalled.Load() }

// Panics is how many panics were recovered on connection goroutines and
// pool workers; each cost only the connection it happened on.
func (s *Server) Panics() int64 { return s.panics.Load() }

// Traffic is the messages and bytes carried so far.
func (s *Server) Traffic() metrics.TrafficSnapshot { return s.traffic.Snapshot() }

// handle hands a complete inbound message to the session; stripe is the
// connection's traffic stripe.
func (s *Server) handle(sess *session.Session, stripe uint32, msg []byte) {
	s.traffic.In(stripe, len(msg))
	if s.onMessage != nil {
		s.onMessage(msg)
	}
	sess.Handle(msg)
}

// panicked logs and counts a recovered panic; log carries the app and
// socket_id when a session exists.
func (s *Server) panicked(log *slog.Logger, where string, r any) {
	s.panics.Add(1)
	log.Error("panic on a connection's "+where+" path; closing that connection", "panic", r, "stack", string(debug.Stack()))
}

// open opens a session for t; a panic in the session manager costs only
// this connection, which is refused with 1011 (no session exists).
func (s *Server) open(a *node.App, t session.Transport) (sess *session.Session, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.panicked(s.log.With("app", a.ID), "open", r)
			sess, err = nil, pusher.Fatalf(int(ws.StatusInternalServerError), "internal server error")
		}
	}()
	return s.mgr.Open(a, t)
}

// go runs f as a tracked connection goroutine.
func (s *Server) goTracked(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Wait blocks until every connection goroutine has ended.
func (s *Server) Wait() { s.wg.Wait() }

// IsUpgrade reports whether r asks for a WebSocket.
func IsUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// ServeHTTP handles a WebSocket request to any path: /app/{key} gets a
// session; anything else is upgraded and closed with 4005 so the client
// learns why.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	a, perr := s.admit(r)
	if perr != nil {
		s.log.Info("connection refused", "remote", r.RemoteAddr, "path", r.URL.Path, "code", perr.Code, "reason", perr.Message)
		s.reject(conn, perr)
		return
	}
	if s.poller != nil {
		if ec, ok := newEconn(s, conn); ok {
			ec.remote = r.RemoteAddr
			s.serveEvented(ec, a, r)
			return
		}
	}
	c := newConn(s, conn)
	c.remote = r.RemoteAddr
	sess, err := s.open(a, c)
	if err != nil {
		s.refuse(conn, a, r, err)
		return
	}
	c.sess = sess
	s.goTracked(c.writePump)
	s.goTracked(c.readPump)
	c.wake()
}

// admit checks the path, app, protocol version and origin.
func (s *Server) admit(r *http.Request) (*node.App, *pusher.Error) {
	path := strings.TrimPrefix(r.URL.Path, s.prefix)
	key, ok := strings.CutPrefix(path, "/app/")
	if !ok || key == "" || strings.Contains(key, "/") || (s.prefix != "" && !strings.HasPrefix(r.URL.Path, s.prefix)) {
		return nil, pusher.Fatalf(pusher.CodePathNotFound, "path %s not found: connect to %s/app/{key}", r.URL.Path, s.prefix)
	}
	return s.mgr.Admit(key, r.URL.Query(), r.Header.Get("Origin"))
}

// serveEvented hands an admitted socket to the poller.
func (s *Server) serveEvented(c *econn, a *node.App, r *http.Request) {
	sess, err := s.open(a, c)
	if err != nil {
		s.refuse(c.nc, a, r, err)
		return
	}
	c.sess = sess
	s.wg.Add(1) // Done in finish
	if err := s.poller.add(c); err != nil {
		s.log.Error("epoll registration failed", "err", err)
		c.finish()
		return
	}
	c.Wake() // connection_established
}

// refuse answers a connection the session manager would not open (4004
// over quota, 4200 shutting down) and logs why.
func (s *Server) refuse(nc net.Conn, a *node.App, r *http.Request, err error) {
	var pe *pusher.Error
	if !errors.As(err, &pe) {
		pe = pusher.Fatalf(pusher.CodeGeneric, "%s", err.Error())
	}
	s.log.Info("connection refused", "app", a.ID, "remote", r.RemoteAddr, "code", pe.Code, "reason", pe.Message)
	s.reject(nc, pe)
}
