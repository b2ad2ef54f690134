package poll

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/session"
)

// conn is one HTTP session: the session.Transport of a Session whose
// frames leave through whichever receive request is running.
type conn struct {
	srv    *Server
	key    string // registry key: app key + "/" + server + "/" + session
	host   string // the client's address (host) at the first request
	remote string // and with its port, for logs
	app    *node.App
	sess   *session.Session

	wake   chan struct{} // cap 1: Wake never blocks
	stripe uint32        // the session's stripe of the traffic counters

	hmu sync.Mutex // serializes Session.Handle

	mu     sync.Mutex // guards the fields below
	gen    uint64     // receive requests so far; the newest one runs
	cancel chan struct{}
	opened bool // "o" was sent
	done   bool // finished: the session is closed and forgotten
	linger *time.Timer
}

var _ session.Transport = (*conn)(nil)

func newConn(s *Server, key, remote string, a *node.App) *conn {
	return &conn{srv: s, key: key, host: hostOf(remote), remote: remote, app: a, wake: make(chan struct{}, 1), stripe: s.stripes.Add(1)}
}

// Kind tells the session manager this is an HTTP transport.
func (c *conn) Kind() int { return session.KindHTTP }

// Wake implements session.Transport.
func (c *conn) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// RemoteAddr is the client's address, for the session's logs.
func (c *conn) RemoteAddr() string { return c.remote }

// receive serves xhr_streaming (streaming) or xhr (one response per
// batch) for the session of rt, opening it on its first request.
func (s *Server) receive(w http.ResponseWriter, r *http.Request, rt route, streaming bool) {
	var refused *pusher.Error
	c := s.lookup(rt, hostOf(r.RemoteAddr), func(k string) *conn {
		if s.closed.Load() {
			refused = pusher.Fatalf(pusher.CodeGeneric, "server is shutting down: reconnect")
			return nil
		}
		a, perr := s.mgr.Admit(rt.key, r.URL.Query(), r.Header.Get("Origin"))
		if perr != nil {
			refused = perr
			return nil
		}
		c := newConn(s, k, r.RemoteAddr, a)
		sess, err := s.mgr.Open(a, c)
		if err != nil {
			if !errors.As(err, &refused) {
				refused = pusher.Fatalf(pusher.CodeGeneric, "%s", err.Error())
			}
			return nil
		}
		c.sess = sess
		return c
	})
	h := w.Header()
	h.Set("Content-Type", "application/javascript; charset=UTF-8")
	h.Set("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0")
	switch {
	case refused != nil:
		// Refused as a socket is: opened, told why, closed with the code.
		s.log.Info("connection refused", "transport", transportName(streaming), "remote", r.RemoteAddr, "code", refused.Code, "reason", refused.Message)
		s.mgr.CountClose(refused.Code)
		b := append([]byte(nil), openFrame...)
		b = appendBatch(b, [][]byte{pusher.ErrorFrame(refused.Code, refused.Message)})
		_, _ = w.Write(appendClose(b, refused.Code, refused.Message))
	case c == nil:
		http.Error(w, "session not found", http.StatusNotFound) // another client's name
	default:
		c.serve(w, r, streaming)
	}
}

func transportName(streaming bool) string {
	if streaming {
		return "xhr_streaming"
	}
	return "xhr_polling"
}

// serve runs one receive request: "o" first on a new session; then the
// session's frames as "a" lines (and "c" when it closes), with "h" while
// idle. A polling request answers once; a streaming one runs until the
// session closes, the client goes, or a newer request replaces it.
func (c *conn) serve(w http.ResponseWriter, r *http.Request, streaming bool) {
	gen, cancel, first, ok := c.attach()
	if !ok {
		http.Error(w, "session closed", http.StatusNotFound)
		return
	}
	defer c.detach(gen)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // held: net/http cancels a request at its read deadline
	if !streaming {
		c.poll(w, r, rc, cancel, first)
		return
	}
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush() // the headers now: the stream is under way
	var b []byte
	if first {
		b = append(b, openFrame...)
	}
	heartbeat := time.NewTimer(c.srv.heartbeat())
	defer heartbeat.Stop()
	var frames [][]byte
	sent := 0 // characters written on this response
	for {
		if sent > streamLimit {
			// pusher-js has read it all and is reopening its stream: what
			// is queued now goes on the next response, not this one.
			c.spent(heartbeat, cancel, r)
			return
		}
		var closing bool
		b, frames, closing = c.take(b, frames)
		if closing {
			c.write(w, rc, b)
			c.finish()
			return
		}
		if len(b) > 0 {
			if !c.write(w, rc, b) {
				return
			}
			sent += jsLength(b)
			b = b[:0]
			heartbeat.Reset(c.srv.heartbeat())
		}
		select {
		case <-c.wake:
		case <-heartbeat.C:
			b = append(b, heartbeatFrame...)
		case <-cancel:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// take appends what the session has queued to b: an "a" line of its
// frames and, when it is closing, the "c" line.
func (c *conn) take(b []byte, frames [][]byte) ([]byte, [][]byte, bool) {
	frames, closing, code, reason := c.sess.Drain(frames)
	if len(frames) > 0 {
		start := len(b)
		b = appendBatch(b, frames)
		c.srv.traffic.Out(c.stripe, len(frames), len(b)-start)
		clear(frames)
	}
	if closing {
		b = appendClose(b, code, reason)
	}
	return b, frames, closing
}

// poll answers one xhr request: "o" on a new session, else what is queued,
// waiting for it (or for the heartbeat) when nothing is. The answer is one
// write with its length: a poll per batch is the transport's whole cost,
// and an early header flush or a chunked body would each add a syscall.
func (c *conn) poll(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, cancel chan struct{}, first bool) {
	var b []byte
	closing := false
	if first {
		b = append(b, openFrame...)
	}
	var heartbeat *time.Timer
	for len(b) == 0 {
		b, _, closing = c.take(b, nil)
		if len(b) > 0 {
			break
		}
		if heartbeat == nil {
			heartbeat = time.NewTimer(c.srv.heartbeat())
			defer heartbeat.Stop()
			if c.srv.held != nil {
				c.srv.held()
			}
		}
		select {
		case <-c.wake:
		case <-heartbeat.C:
			b = append(b, heartbeatFrame...)
		case <-cancel:
			return
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_ = rc.SetWriteDeadline(time.Now().Add(c.srv.writeTimeout()))
	_, _ = w.Write(b)
	if closing {
		c.finish()
	}
}

// streamLimit is pusher-js's MAX_BUFFER_LENGTH: once a streaming response
// is longer than this many characters (JavaScript's: UTF-16 units) and it
// has read every line, pusher-js drops the request and opens a new one on
// the same session. Frames written after that point would be lost, so a
// response stops taking frames once it is past the limit.
const streamLimit = 256 * 1024

// jsLength is the length of UTF-8 text b in UTF-16 units, as JavaScript
// counts a response's characters: one per code point, two above U+FFFF.
func jsLength(b []byte) int {
	n := 0
	for _, c := range b {
		switch {
		case c&0xC0 == 0x80: // a continuation byte
		case c >= 0xF0: // starts a 4-byte sequence: a surrogate pair
			n += 2
		default:
			n++
		}
	}
	return n
}

// spent holds a streaming response that is past streamLimit until the
// client replaces or drops it, as pusher-js does at once; a client that
// does neither is ended after a heartbeat period (it will reconnect).
func (c *conn) spent(heartbeat *time.Timer, cancel chan struct{}, r *http.Request) {
	heartbeat.Reset(c.srv.heartbeat())
	select {
	case <-heartbeat.C:
	case <-cancel:
	case <-r.Context().Done():
	}
}

// attach makes the caller the session's receive request, replacing (and
// ending) a running one, and stops the linger timer.
func (c *conn) attach() (gen uint64, cancel chan struct{}, first, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return 0, nil, false, false
	}
	if c.cancel != nil {
		close(c.cancel)
	}
	if c.linger != nil {
		c.linger.Stop()
		c.linger = nil
	}
	c.gen++
	c.cancel = make(chan struct{})
	first, c.opened = !c.opened, true
	return c.gen, c.cancel, first, true
}

// detach ends receive request gen; when no newer one came, the session
// lingers: it is closed unless a receive request arrives in time.
func (c *conn) detach(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.done {
		return
	}
	c.cancel = nil
	c.linger = time.AfterFunc(c.srv.linger(), func() { c.expire(gen) })
}

// expire closes a session whose client stopped receiving, as a dropped
// socket is closed.
func (c *conn) expire(gen uint64) {
	c.mu.Lock()
	stale := c.gen != gen || c.done || c.cancel != nil
	c.mu.Unlock()
	if !stale {
		c.sess.Log().Debug("HTTP session expired: no receive request", "linger", c.srv.linger())
		c.finish()
	}
}

// finish closes the session for good (once): it leaves its channels, as
// for a dropped socket, and is forgotten.
func (c *conn) finish() {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return
	}
	c.done = true
	if c.cancel != nil {
		close(c.cancel)
		c.cancel = nil
	}
	if c.linger != nil {
		c.linger.Stop()
		c.linger = nil
	}
	c.mu.Unlock()
	c.srv.forget(c)
	c.sess.Closed()
}

// write sends b and flushes it, within the write timeout.
func (c *conn) write(w http.ResponseWriter, rc *http.ResponseController, b []byte) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(c.srv.writeTimeout()))
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}

// send serves xhr_send: each message of the body goes to the session, in
// order, as a socket's would.
func (s *Server) send(w http.ResponseWriter, r *http.Request, rt route) {
	c := s.lookup(rt, hostOf(r.RemoteAddr), nil)
	if c == nil {
		http.Error(w, "session not found", http.StatusNotFound)
		return
	}
	timeout := s.ReadTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSendBody))
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	msgs, err := parseSend(body, c.app.MaxMessageBytes)
	switch {
	case errors.Is(err, errTooBig):
		c.sess.Close(pusher.CodeMessageTooBig, "message too big: the limit is "+strconv.Itoa(c.app.MaxMessageBytes)+" bytes")
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.hmu.Lock()
	for _, m := range msgs {
		c.srv.traffic.In(c.stripe, len(m))
		c.sess.Handle(m)
	}
	c.hmu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
