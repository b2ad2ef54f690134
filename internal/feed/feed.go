// Package feed serves a channel's events over plain HTTP, for clients that
// cannot keep a WebSocket (blocked by a proxy, a short-lived script) or
// prefer not to: polling, long-polling and Server-Sent Events over the
// channel history kept by the node, plus the reader sessions that let
// private, presence and encrypted channels be read with the app's own
// auth endpoint.
//
//	POST {prefix}/app/{key}/sessions                       a socket id to have signed
//	GET  {prefix}/app/{key}/channels/{channel}/events      poll, long-poll (?wait=), SSE (Accept: text/event-stream)
//
// Readers are not connections: they take no place in presence or channel
// counts, and they read what they missed from history, so a reader never
// sees a gap or a duplicate that its position would not reveal.
//
// Concurrency: a Handler is safe for concurrent use; each held request
// (a long-poll waiting, an SSE stream) runs on its own net/http goroutine
// and waits on a node.Watch, which a delivery wakes without blocking.
package feed

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/ratelog"
	"github.com/herald-ws/herald/internal/signature"
)

// Defaults for the Handler's zero fields.
const (
	DefaultMaxWaiting   = 10_000
	DefaultMaxWait      = 30 * time.Second
	DefaultHeartbeat    = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultSessionTTL   = 24 * time.Hour
	// RetryMillis is the SSE reconnection delay sent to EventSource
	// clients (browsers default to about 3 s).
	RetryMillis = 1000
)

// Handler serves the feed endpoints of every app of a node.
type Handler struct {
	node   *node.Node
	prefix string
	log    *slog.Logger
	warns  *ratelog.Limiter

	// MaxWaiting bounds the requests held at once (long-polls waiting and
	// SSE streams); past it new ones get 503. 0 means DefaultMaxWaiting.
	MaxWaiting int
	// MaxWait caps a long-poll's wait parameter; 0 means DefaultMaxWait.
	MaxWait time.Duration
	// Heartbeat is how often an idle SSE stream gets a comment line, so
	// proxies and load balancers keep it open; 0 means DefaultHeartbeat.
	Heartbeat time.Duration
	// WriteTimeout is how long a reader may refuse our data before its
	// stream is dropped; 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// SessionTTL is how long a reader session's socket id stays valid;
	// 0 means DefaultSessionTTL.
	SessionTTL time.Duration

	blocks  blockCache // SSE blocks of recent events, rendered once
	now     func() time.Time
	held    func()       // test hook: a request is about to wait
	waiting atomic.Int64 // held requests now
	busy    atomic.Int64 // requests refused with 503 for MaxWaiting

	closeOnce sync.Once
	done      chan struct{} // closed by Close: held requests end
}

// New returns the feed handler of node n, its paths under prefix.
func New(n *node.Node, prefix string, log *slog.Logger) *Handler {
	return &Handler{node: n, prefix: prefix, log: log, warns: ratelog.New(0, 0), now: time.Now, done: make(chan struct{})}
}

// Match reports whether path is one of the feed's.
func (h *Handler) Match(path string) bool {
	_, _, _, ok := h.route(path)
	return ok
}

// Waiting is the number of requests held now.
func (h *Handler) Waiting() int64 { return h.waiting.Load() }

// Busy is the number of requests refused because MaxWaiting were held.
func (h *Handler) Busy() int64 { return h.busy.Load() }

// Close ends every held request (a long-poll answers at once, an SSE
// stream ends and its client reconnects elsewhere) and refuses new ones
// with 503. Call it before http.Server.Shutdown, which waits for them.
func (h *Handler) Close() { h.closeOnce.Do(func() { close(h.done) }) }

func (h *Handler) closed() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// route splits a feed path: its app key, and the channel of an events
// path ("" for the sessions path).
func (h *Handler) route(path string) (key, channel string, events, ok bool) {
	rest, ok := strings.CutPrefix(path, h.prefix+"/app/")
	if !ok {
		return "", "", false, false
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] != "" && parts[1] == "sessions":
		return parts[0], "", false, true
	case len(parts) == 4 && parts[0] != "" && parts[1] == "channels" && parts[2] != "" && parts[3] == "events":
		return parts[0], parts[2], true, true
	}
	return "", "", false, false
}

// ServeHTTP serves one feed request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, channel, events, ok := h.route(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, "path "+r.URL.Path+" not found")
		return
	}
	a := h.node.AppByKey(key)
	if a == nil {
		// No app, so no origins to check: let any page read the error,
		// or its developer sees only an opaque CORS failure.
		if origin := r.Header.Get("Origin"); origin != "" {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
		}
		writeError(w, http.StatusNotFound, "unknown app key "+strconv.Quote(clip(key)))
		return
	}
	if !h.cors(w, r, a) {
		return
	}
	if !a.Enabled {
		writeError(w, http.StatusForbidden, "app "+a.ID+" is disabled")
		return
	}
	want := http.MethodPost
	if events {
		want = http.MethodGet
	}
	switch {
	case r.Method == http.MethodOptions:
		w.WriteHeader(http.StatusNoContent) // a preflight: cors set the headers
	case r.Method != want:
		w.Header().Set("Allow", want+", OPTIONS")
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+want)
	case h.closed():
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "server shutting down: retry on another node")
	case !events:
		h.session(w, a)
	default:
		h.events(w, r, a, channel)
	}
}

// cors answers browsers from the app's allowed origins: a request with an
// Origin header from elsewhere is refused (403), exactly as its WebSocket
// would be; an allowed one gets the headers that let its page read the
// answer. It reports whether to go on.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request, a *node.App) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	hd := w.Header()
	hd.Add("Vary", "Origin")
	if !a.OriginAllowed(origin) {
		h.warn(r, a, "origin not allowed", origin)
		writeError(w, http.StatusForbidden, "origin "+clip(origin)+" is not allowed for app "+a.ID)
		return false
	}
	hd.Set("Access-Control-Allow-Origin", origin)
	if r.Method == http.MethodOptions {
		hd.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		hd.Set("Access-Control-Allow-Headers", "Accept, Cache-Control, Content-Type, Last-Event-ID")
		hd.Set("Access-Control-Max-Age", "600")
	}
	return true
}

// sessionAnswer is POST /app/{key}/sessions's answer.
type sessionAnswer struct {
	SocketID  string `json:"socket_id"`
	ExpiresIn int64  `json:"expires_in"` // seconds
}

// session issues a reader session: a socket id for the app's auth
// endpoint to sign. It costs the server nothing to keep (see
// signature.SessionID), so it needs no limit of its own.
func (h *Handler) session(w http.ResponseWriter, a *node.App) {
	ttl := h.sessionTTL()
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := signature.SessionID(a.Secret, binary.LittleEndian.Uint64(b[:]), h.now().Add(ttl))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, sessionAnswer{SocketID: id, ExpiresIn: int64(ttl / time.Second)})
}

func (h *Handler) sessionTTL() time.Duration {
	if h.SessionTTL > 0 {
		return h.SessionTTL
	}
	return DefaultSessionTTL
}

// warn logs a refused request at warn, rate-limited per reason.
func (h *Handler) warn(r *http.Request, a *node.App, reason, detail string) {
	ok, suppressed := h.warns.Allow(reason)
	args := []any{"app", a.ID, "reason", reason, "remote", r.RemoteAddr}
	if detail != "" {
		args = append(args, "detail", clip(detail))
	}
	if !ok { // over the rate: at debug (--debug, the dashboard's console)
		h.log.Debug("feed request refused", args...)
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	h.log.Warn("feed request refused", args...)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v) // plain maps and structs: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// clip cuts s short for an error message or a log line.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

var _ http.Handler = (*Handler)(nil)
