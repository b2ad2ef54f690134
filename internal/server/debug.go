package server

import (
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/herald-ws/herald/internal/dashboard"
	"github.com/herald-ws/herald/internal/metrics"
)

// Stats are the server's own counters, read by the metrics collector
// (metrics.go) at scrape time: /metrics is where an operator watches them.
type Stats struct {
	Connections int `json:"connections"`
	// SlowClosed counts clients cut off with 4100 because their outbound
	// queue passed its bound (4,096 frames or 8 MiB).
	SlowClosed int64 `json:"slow_clients_closed"`
	// Stalled counts clients dropped because the socket took none of our
	// data for server.write_timeout.
	Stalled int64 `json:"stalled_clients_dropped"`
	// Panics counts panics recovered on connection goroutines and pool
	// workers; each closed only the connection it happened on. Anything
	// but 0 is a bug worth reporting, with the stack from the error log.
	Panics int64 `json:"connection_panics"`
	// APIBusy counts HTTP API requests refused with 503 because the
	// in-flight cap was reached.
	APIBusy int64 `json:"api_requests_refused_busy"`
	// Readers are the HTTP readers held now (long-polls waiting, SSE
	// streams); ReadersBusy those refused with 503 at history.max_readers.
	Readers     int64 `json:"http_readers"`
	ReadersBusy int64 `json:"http_readers_refused_busy"`
	// Webhook events delivered, dropped (queue full, retries over, refused
	// by the endpoint: each also logged) and pending now; POST attempts
	// that failed and were retried. Absent without webhooks.
	Webhooks *WebhookStats `json:"webhooks,omitempty"`
}

// WebhookStats are the webhook dispatcher's counters.
type WebhookStats struct {
	Delivered int64 `json:"events_delivered"`
	Dropped   int64 `json:"events_dropped"`
	Pending   int64 `json:"events_pending"`
	Failed    int64 `json:"posts_failed"`
	Retried   int64 `json:"posts_retried"`
}

// Stats reads the counters.
func (s *Server) Stats() Stats {
	st := Stats{Connections: s.mgr.Count(), SlowClosed: s.mgr.SlowClosed(), Stalled: s.ws.Stalled(), Panics: s.ws.Panics(), APIBusy: s.APIBusy(), Readers: s.feed.Waiting(), ReadersBusy: s.feed.Busy()}
	if s.hooks != nil {
		h := s.hooks.Stats()
		st.Webhooks = &WebhookStats{Delivered: h.Delivered, Dropped: h.Dropped, Pending: h.Pending, Failed: h.Failed, Retried: h.Retried}
	}
	return st
}

// serveDebug serves pprof on the debug listener until Serve returns: an
// operator's opt-in (--debug-addr), never on the public listener. (The
// counters once served here as /debug/stats are Prometheus metrics.)
func (s *Server) serveDebug() {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.dbg = s.serveAside(s.dbgLn, mux, "debug listener (pprof)")
}

// serveAside serves mux on ln, a listener beside the public one (debug,
// metrics), until it is closed; what names it in the logs.
func (s *Server) serveAside(ln net.Listener, mux *http.ServeMux, what string) *http.Server {
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.log.Info(what, "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error(what+" stopped", "err", err)
		}
	}()
	return srv
}

// dashboardNumbers are the totals the dashboard graphs, read once a second.
func (s *Server) dashboardNumbers() dashboard.Numbers {
	n := dashboard.Numbers{Connections: int64(s.mgr.Count()), APIRequests: s.apiRequests.Load()}
	for _, a := range s.node.Apps() {
		n.Channels += int64(a.Hub.ChannelCount())
	}
	for _, t := range [...]metrics.TrafficSnapshot{s.ws.Traffic(), s.poll.Traffic()} {
		n.MessagesIn += t.MessagesIn
		n.MessagesOut += t.MessagesOut
	}
	return n
}

// IPRefused is how many connections the per-address limits refused.
func (s *Server) IPRefused() int64 { return s.mgr.IPRefused() }

// HandshakesEvicted is how many unfinished connections were closed at
// server.max_pending_handshakes.
func (s *Server) HandshakesEvicted() int64 { return s.pending.evicted.Load() }
