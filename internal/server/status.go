package server

import (
	"encoding/json"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/herald-ws/herald/internal/httpapi"
)

// statusAnswer is GET /test's answer: enough for a curl check that Herald
// runs and which build it is, nothing an outsider could use (no app, no
// key, no configuration).
type statusAnswer struct {
	OK          bool   `json:"ok"`
	Version     string `json:"version"`
	Connections int    `json:"connections"`
	UptimeS     int64  `json:"uptime_s"`
}

// status answers GET /test; while shutting down, 503 with "ok": false.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ok := s.accepting()
	answerStatus(w, r, ok, statusAnswer{
		OK:          ok,
		Version:     s.version(),
		Connections: s.mgr.Count(),
		UptimeS:     int64(time.Since(s.started) / time.Second),
	})
}

// accepting reports whether the server takes new clients (not stopping).
func (s *Server) accepting() bool { return !s.stopping.Load() && s.mgr.Accepting() }

// answerStatus writes a small status answer v for GET or HEAD, with 503
// when ok is false; other methods get 405.
func answerStatus(w http.ResponseWriter, r *http.Request, ok bool, v any) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpapi.WriteError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use GET")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	b, _ := json.Marshal(v) // structs of plain fields: cannot fail
	_, _ = w.Write(append(b, '\n'))
}

func (s *Server) version() string {
	if s.Version != "" {
		return s.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// readyAnswer is GET /ready's answer.
type readyAnswer struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

// ready answers GET /ready: whether this node should receive traffic.
// /up says the process is alive; /ready turns 503 as soon as a graceful
// stop begins (draining), so a load balancer stops sending new clients
// before their sockets are closed. In cluster mode it is 503 too while
// the engine (Redis) is unreachable.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ans := readyAnswer{Ready: true}
	if !s.accepting() {
		ans = readyAnswer{Reason: "draining: the server is shutting down"}
	} else if reason := s.clusterReady(); reason != "" {
		ans = readyAnswer{Reason: reason}
	}
	answerStatus(w, r, ans.Ready, ans)
}
