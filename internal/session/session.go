// Package session is one Pusher connection, whatever carries it: the
// protocol state machine (subscribe, auth, presence, client events,
// sign-in, ping, timeouts), its bounded outbound queue and its close codes.
//
// A transport owns the socket. It feeds each inbound message to Handle
// (one at a time), writes what Drain returns when Wake is called, and calls
// Closed once when the socket is gone. Sessions never block on a socket:
// Send only enqueues, and a session whose queue overflows is cut off (4100).
// Inbound, each connection has a message budget (a token bucket); a client
// flooding past it is cut off too (4100), and a session that is closing
// drops what it is still handed without reading it.
package session

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/signature"
)

// Transport is what a session needs from the connection carrying it.
// Wake must not block: it is called with hub locks held.
//
// A transport that also has a method RemoteAddr() string (the client's
// address) gets it logged with refused subscriptions and sign-ins.
type Transport interface {
	// Wake tells the transport that Drain has frames (or a close) for it.
	Wake()
}

// remoteAddresser is the optional part of a Transport.
type remoteAddresser interface{ RemoteAddr() string }

// Outbound queue bounds: past either, the client is too far behind.
const (
	maxQueuedFrames = 4096
	maxQueuedBytes  = 8 << 20
)

// Session is one connection's protocol state.
//
// Concurrency: Handle is called by one goroutine at a time (the transport's
// reader). Send, Close and the sweep run on any goroutine. qmu guards the
// outbound queue; mu guards subs, user and closed; neither is held while
// calling into the hub, except that the hub calls Send (which takes only
// qmu) under its own locks. Lock order: mu before hub shard locks before qmu.
type Session struct {
	mgr  *Manager
	app  *node.App
	id   string
	t    Transport
	kind int // KindWebSocket or KindHTTP
	// ipHeld: the session holds a slot of the Manager's IPLimits.
	ipHeld bool
	log    *slog.Logger

	created    time.Time
	lastSeen   atomic.Int64 // unix nanos of the last inbound message
	pingedAt   atomic.Int64 // unix nanos of an unanswered server ping, or 0
	authorized atomic.Bool  // signed in or subscribed to an authorized channel
	dead       atomic.Bool  // closing or closed: Handle drops messages
	// positions: the client tracks positions (it subscribed with since or
	// "position": true), so it is told of the events it is excluded from.
	positions atomic.Bool

	qmu         sync.Mutex
	queue       [][]byte
	queuedBytes int
	closing     bool
	closeCode   int
	closeReason string

	mu     sync.Mutex
	subs   map[string]string // channel → presence user id ("" elsewhere)
	user   *pusher.User
	closed bool

	// Client-event rate window; touched only by Handle.
	ceSecond int64
	ceCount  int

	// Inbound message budget, a token bucket kept as one timestamp (GCRA):
	// inNext is when the bucket would be full again, in unix nanos. A
	// message is allowed while inNext is at most (burst-1) × cost ahead of
	// now, and moves it on by cost, the nanoseconds per message at the
	// sustained rate. Only the timestamp is per session (an idle socket
	// pays 8 bytes); the rest comes from the app's limits. Touched only by
	// Handle.
	inNext int64
}

// SocketID implements hub.Subscriber.
func (s *Session) SocketID() string { return s.id }

// Excluded implements hub.Excluder: a client that tracks positions gets
// herald:position for an event it was excluded from (its own client event,
// or an API publish with its socket_id: Laravel's toOthers), so that the
// next event's offset is no gap to it. Stock Pusher clients, which never
// ask for positions, get nothing, as from Pusher.
func (s *Session) Excluded(channel string, frame []byte) {
	if !s.positions.Load() {
		return
	}
	if epoch, off, ok := pusher.FramePosition(frame); ok {
		s.Send(pusher.PositionFrame(channel, epoch, off))
	}
}

// App is the session's app.
func (s *Session) App() *node.App { return s.app }

// Send implements hub.Subscriber: it enqueues frame without blocking. A
// session whose queue is over its bounds drops the backlog and is closed
// with 4100.
func (s *Session) Send(frame []byte) {
	s.qmu.Lock()
	if s.closing {
		s.qmu.Unlock()
		return
	}
	if len(s.queue) >= maxQueuedFrames || s.queuedBytes+len(frame) > maxQueuedBytes {
		s.queue = append(s.queue[:0], pusher.ErrorFrame(pusher.CodeOverCapacity, "client too slow: outbound queue full"))
		s.queuedBytes = 0
		s.closing, s.closeCode, s.closeReason = true, pusher.CodeOverCapacity, "client too slow: outbound queue full"
		s.dead.Store(true)
		s.qmu.Unlock()
		s.mgr.slowClosed.Add(1)
		s.mgr.closes.add(pusher.CodeOverCapacity)
		s.logClose(slog.LevelWarn, pusher.CodeOverCapacity, "client too slow: outbound queue full")
		s.t.Wake()
		return
	}
	s.queue = append(s.queue, frame)
	s.queuedBytes += len(frame)
	s.qmu.Unlock()
	s.t.Wake()
}

// Close queues a pusher:error with code and message and then a close with
// code; the transport flushes what is queued before closing. Code 1000 or
// CodeMessageTooBig send no pusher:error.
func (s *Session) Close(code int, message string) { s.closeWith(code, code, message) }

// closeWith is Close with the pusher:error's code (errCode) apart from the
// close code.
func (s *Session) closeWith(errCode, code int, message string) {
	if s.startClose(errCode, code, message) {
		s.logClose(slog.LevelInfo, code, message)
	}
}

// startClose queues the close without logging it and reports whether the
// session was not already closing.
func (s *Session) startClose(errCode, code int, message string) bool {
	s.qmu.Lock()
	if s.closing {
		s.qmu.Unlock()
		return false
	}
	if code >= 4000 {
		frame := pusher.ErrorFrame(errCode, message)
		s.queue = append(s.queue, frame)
		s.queuedBytes += len(frame)
	}
	s.closing, s.closeCode, s.closeReason = true, code, message
	s.dead.Store(true)
	s.qmu.Unlock()
	s.mgr.closes.add(code)
	s.t.Wake()
	return true
}

// Drain moves the queued frames into dst (reusing its backing array) and
// reports whether the session must be closed after they are written.
func (s *Session) Drain(dst [][]byte) (frames [][]byte, closing bool, code int, reason string) {
	s.qmu.Lock()
	dst = append(dst[:0], s.queue...)
	clear(s.queue)
	if cap(s.queue) > 64 {
		s.queue = nil // let an idle connection shrink back
	} else {
		s.queue = s.queue[:0]
	}
	s.queuedBytes = 0
	closing, code, reason = s.closing, s.closeCode, s.closeReason
	s.qmu.Unlock()
	if s.mgr.LogFrames { // logged here, by the writer, not in Send under hub locks
		for _, f := range dst {
			s.logFrame("out", f)
		}
	}
	return dst, closing, code, reason
}

// Pending reports whether Drain has anything to hand out: frames, or a
// close to perform.
func (s *Session) Pending() bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return len(s.queue) > 0 || s.closing
}

// Closed is called once by the transport when the socket is gone: the
// session leaves its channels, signs out and is forgotten.
func (s *Session) Closed() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	subs := s.subs
	s.subs = nil
	user := s.user
	s.mu.Unlock()

	s.qmu.Lock()
	code, reason := s.closeCode, s.closeReason
	s.closing = true
	s.dead.Store(true)
	s.queue = nil
	s.qmu.Unlock()
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		attrs := s.describe()
		if code != 0 { // the server closed it; otherwise the client did, or the network
			attrs = append(attrs, "code", code, "reason", hexSignature.ReplaceAllLiteralString(reason, redacted))
		}
		s.log.Debug("disconnected", attrs...)
	}

	// Forgotten first: once others see this session's member_removed,
	// the manager no longer counts it.
	s.mgr.forget(s)
	for ch, uid := range subs {
		s.app.Unsubscribe(ch, s, uid)
	}
	if user != nil {
		s.app.SignOut(s, *user)
	}
	s.app.Disconnect()
}

// Handle processes one inbound message. Once the session is closing it
// drops messages unread; past the inbound budget it closes the session.
func (s *Session) Handle(msg []byte) {
	if s.dead.Load() {
		return
	}
	if s.mgr.LogFrames {
		s.logFrame("in", msg)
	}
	now := s.touch()
	if lim := &s.app.Limits; lim.MaxMessagesPerSecond > 0 {
		cost := int64(time.Second) / int64(lim.MaxMessagesPerSecond)
		next := max(s.inNext, now)
		if next-now > int64(max(lim.MaxMessagesBurst-1, 0))*cost {
			s.flooded()
			return
		}
		s.inNext = next + cost
	}
	f, err := pusher.DecodeFrame(msg)
	if err != nil {
		s.fail(err)
		return
	}
	switch f.Event {
	case "pusher:ping":
		s.Send(pusher.PongFrame)
	case "pusher:pong":
		// touch already cleared the pending ping
	case "pusher:subscribe":
		s.fail(s.subscribe(f))
	case "pusher:unsubscribe":
		s.fail(s.unsubscribe(f))
	case "pusher:signin":
		s.fail(s.signin(f))
	default:
		if strings.HasPrefix(f.Event, pusher.PrefixClientEvent) {
			s.fail(s.clientEvent(f))
			return
		}
		if strings.HasPrefix(f.Event, "pusher:") {
			// A newer client's protocol event: ignore it, as Pusher does.
			s.log.Debug("ignoring unknown protocol event", "event", f.Event)
			return
		}
		s.fail(pusher.Errorf(pusher.CodeGeneric, "unsupported event %q: clients may send pusher:* protocol events and client-* events on private and presence channels", truncate(f.Event)))
	}
}

// fail reports err to the client: a pusher:error, and a close when the
// error demands one. nil is a no-op.
func (s *Session) fail(err error) {
	if err == nil {
		return
	}
	pe, ok := err.(*pusher.Error)
	if !ok {
		pe = pusher.Errorf(pusher.CodeGeneric, "%s", err.Error())
	}
	if pe.Close {
		s.Close(pe.Code, pe.Message)
		return
	}
	s.Send(pusher.ErrorFrame(pe.Code, pe.Message))
}

// touch records inbound activity and returns the time, in unix nanos.
func (s *Session) touch() int64 {
	now := s.mgr.now().UnixNano()
	s.lastSeen.Store(now)
	s.pingedAt.Store(0)
	return now
}

// flooded closes a session over its inbound budget: a pusher:error 4301,
// as for client events, then the close. The close code is 4100 (over
// capacity): pusher-js reconnects after a backoff, so a buggy client
// retries slowly instead of at once (4200) and a legitimate one is not told
// never to come back (4000-4099).
func (s *Session) flooded() {
	lim := s.app.Limits
	msg := fmt.Sprintf("too many messages: over %d per second (bursts of %d); reconnect later", lim.MaxMessagesPerSecond, lim.MaxMessagesBurst)
	if s.startClose(pusher.CodeClientEventRejected, pusher.CodeOverCapacity, msg) {
		s.logClose(slog.LevelWarn, pusher.CodeOverCapacity, msg)
	}
}

// sweep runs the heartbeat and authorization timers; now is the sweep time.
func (s *Session) sweep(now time.Time) {
	a := s.app
	if a.AuthorizedConnectionsTimeout > 0 && !s.authorized.Load() && now.Sub(s.created) > a.AuthorizedConnectionsTimeout {
		s.Close(pusher.CodeUnauthorized, "connection not authorized within the timeout: sign in or subscribe to a private or presence channel")
		return
	}
	if p := s.pingedAt.Load(); p != 0 {
		if now.Sub(time.Unix(0, p)) > a.PongTimeout {
			s.Close(pusher.CodePongNotReceived, "pong not received in time")
		}
		return
	}
	if now.Sub(time.Unix(0, s.lastSeen.Load())) > a.PingInterval {
		s.pingedAt.Store(now.UnixNano())
		s.Send(pusher.PingFrame)
	}
}

func (s *Session) verifyChannel(channel, channelData, auth string) error {
	if auth == "" {
		return s.refuseSubscription(channel, "missing auth", pusher.Errorf(pusher.CodeUnauthorized, "subscription to %s refused: missing auth", channel))
	}
	if err := signature.VerifyChannelAuth(s.app.Key, s.app.Secret, s.id, channel, channelData, auth); err != nil {
		return s.refuseSubscription(channel, authReason(err), pusher.Errorf(pusher.CodeUnauthorized, "subscription to %s refused: %s", channel, err.Error()))
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Log is the session's logger (with app and socket_id).
func (s *Session) Log() *slog.Logger { return s.log }
