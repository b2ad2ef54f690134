// Package poll carries Pusher connections over plain HTTP, for pusher-js's
// own fallback transports: xhr_streaming (one long response that frames
// arrive on) and xhr_polling (one response per batch), with the SockJS-style
// framing pusher-js reads, where WebSockets are blocked by a proxy. Each
// HTTP session is a session.Session like a socket's, so channels, auth,
// presence, client events, limits, history and close codes are the same.
//
//	POST {base}/{server}/{session}/xhr_streaming?protocol=7…   receive, streaming
//	POST {base}/{server}/{session}/xhr?protocol=7…             receive, one response per batch
//	POST {base}/{server}/{session}/xhr_send                    send: a JSON array of messages
//
// where base is {prefix}/pusher/app/{key} (pusher-js's default httpPath,
// "/pusher") or {prefix}/app/{key} (httpPath set to the server path).
// The client names its session ({0-999}/{8 characters}); the session is
// bound to the app key and the client address of its first request, and
// a session nobody receives for during Linger is closed, as a dropped
// socket would be (member_removed and all).
//
// Concurrency: a Server is safe for concurrent use. Each conn has a mutex
// for its receive bookkeeping and another that serializes its inbound
// messages (Session.Handle is one at a time); the receive request running
// for a session (at most one: a new one replaces it) is the only writer of
// its frames, woken through a channel by Wake.
package poll

import (
	"hash/maphash"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/internal/metrics"
	"github.com/herald-ws/herald/internal/session"
)

// Defaults for the Server's zero fields.
const (
	// DefaultHeartbeat is how often an idle stream (or a held poll) gets
	// "h": below pusher-js's activity timeout, so it never pings for
	// nothing, and below proxies' idle timeouts.
	DefaultHeartbeat = 25 * time.Second
	// DefaultLinger is how long a session may go without a receive
	// request before it is closed: pusher-js opens the next one at once.
	DefaultLinger = 10 * time.Second
	// DefaultWriteTimeout is how long a receiver may refuse our data.
	DefaultWriteTimeout = 10 * time.Second
	// maxSendBody bounds an xhr_send body: pusher-js sends one message
	// per request, and the app's max_message_bytes bounds each.
	maxSendBody = 1 << 20
)

// Server is the HTTP transport of a session manager.
type Server struct {
	mgr    *session.Manager
	prefix string
	log    *slog.Logger

	Heartbeat    time.Duration // 0: DefaultHeartbeat
	Linger       time.Duration // 0: DefaultLinger
	WriteTimeout time.Duration // 0: DefaultWriteTimeout
	// ReadTimeout bounds reading an xhr_send body (0: 10 s).
	ReadTimeout time.Duration

	held    func() // test hook: a poll is about to wait
	seed    maphash.Seed
	shards  [16]shard
	count   atomic.Int64
	closed  atomic.Bool
	traffic metrics.Traffic
	stripes atomic.Uint32 // hands out traffic stripes to sessions
}

type shard struct {
	mu    sync.Mutex
	conns map[string]*conn
}

// New returns the HTTP transport for mgr's sessions, below prefix.
func New(mgr *session.Manager, prefix string, log *slog.Logger) *Server {
	s := &Server{mgr: mgr, prefix: prefix, log: log, seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].conns = map[string]*conn{}
	}
	return s
}

// route is a parsed transport path.
type route struct {
	key  string // app key
	id   string // "{server}/{session}"
	verb string // "xhr_streaming", "xhr" or "xhr_send"
}

// Match reports whether path is one of the transport's.
func (s *Server) Match(path string) bool {
	_, ok := s.parse(path)
	return ok
}

func (s *Server) parse(path string) (route, bool) {
	rest, ok := strings.CutPrefix(path, s.prefix)
	if !ok {
		return route{}, false
	}
	rest = strings.TrimPrefix(rest, "/pusher")
	rest, ok = strings.CutPrefix(rest, "/app/")
	if !ok {
		return route{}, false
	}
	p := strings.Split(rest, "/")
	if len(p) != 4 || p[0] == "" || !validID(p[1], 3, true) || !validID(p[2], 32, false) {
		return route{}, false
	}
	switch p[3] {
	case "xhr_streaming", "xhr", "xhr_send":
		return route{key: p[0], id: p[1] + "/" + p[2], verb: p[3]}, true
	}
	return route{}, false
}

// validID checks a server number (digits) or a session name (letters,
// digits, '_' and '-'): both are chosen by the client.
func validID(s string, max int, digits bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
		case digits:
			return false
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Traffic is the messages and bytes carried so far.
func (s *Server) Traffic() metrics.TrafficSnapshot { return s.traffic.Snapshot() }

// Count is the number of HTTP sessions.
func (s *Server) Count() int { return int(s.count.Load()) }

func (s *Server) shard(k string) *shard {
	return &s.shards[maphash.String(s.seed, k)%uint64(len(s.shards))]
}

// ServeHTTP serves one request of pusher-js's HTTP transports.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := s.parse(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	if origin := r.Header.Get("Origin"); origin != "" {
		// The app's allowed origins are checked when the session opens
		// (4009, as for a socket); the answer must be readable to say so.
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	}
	switch r.Method {
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
	default:
		h.Set("Allow", "POST, OPTIONS")
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	if rt.verb == "xhr_send" {
		s.send(w, r, rt)
		return
	}
	s.receive(w, r, rt, rt.verb == "xhr_streaming")
}

// lookup finds the session of rt for a request from host, or opens it
// when create is set and there is none. A session of another host is
// not found: its name alone does not give it away.
func (s *Server) lookup(rt route, host string, create func(k string) *conn) *conn {
	k := rt.key + "/" + rt.id
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c := sh.conns[k]; c != nil {
		if c.host != host {
			return nil
		}
		return c
	}
	if create == nil {
		return nil
	}
	c := create(k)
	if c != nil && c.sess != nil {
		sh.conns[k] = c
		s.count.Add(1)
	}
	return c
}

// forget removes c from the registry.
func (s *Server) forget(c *conn) {
	sh := s.shard(c.key)
	sh.mu.Lock()
	if sh.conns[c.key] == c {
		delete(sh.conns, c.key)
		s.count.Add(-1)
	}
	sh.mu.Unlock()
}

// Close ends every HTTP session (shutdown): those still waiting for a
// receiver will not get one.
func (s *Server) Close() {
	s.closed.Store(true)
	var all []*conn
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, c := range sh.conns {
			all = append(all, c)
		}
		sh.mu.Unlock()
	}
	for _, c := range all {
		c.finish()
	}
}

func (s *Server) heartbeat() time.Duration {
	if s.Heartbeat > 0 {
		return s.Heartbeat
	}
	return DefaultHeartbeat
}

func (s *Server) linger() time.Duration {
	if s.Linger > 0 {
		return s.Linger
	}
	return DefaultLinger
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return DefaultWriteTimeout
}

// hostOf is the host part of a remote address.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
