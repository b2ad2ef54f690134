package server

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/httpapi"
	"github.com/herald-ws/herald/internal/metrics"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/session"
)

// metricsOn reports whether the configuration asks for /metrics: on its
// own address, on the main port behind a token, or both. Without either
// nothing is observed as it happens (no fan-out histogram, no API timing).
func metricsOn(c config.Server) bool { return c.MetricsAddr != "" || c.MetricsToken != "" }

// kindNames are the channel kind label values, by pusher.Kind.
var kindNames = [...]string{
	pusher.Public:           "public",
	pusher.Private:          "private",
	pusher.Presence:         "presence",
	pusher.PrivateEncrypted: "private-encrypted",
	pusher.ServerToUser:     "server-to-user",
}

// metricsSnapshot reads the counters the collector turns into metrics at
// scrape time.
func (s *Server) metricsSnapshot() metrics.Snapshot {
	st := s.Stats()
	snap := metrics.Snapshot{
		Closes:     s.mgr.Closes(),
		SlowClosed: st.SlowClosed, Stalled: st.Stalled, Panics: st.Panics, APIBusy: st.APIBusy,
		IPRefused: s.mgr.IPRefused(), HandshakesEvicted: s.pending.evicted.Load(),
		Readers: st.Readers, ReadersBusy: st.ReadersBusy,
		HistoryBytes: s.hist.Bytes(),
	}
	snap.Traffic[session.KindWebSocket] = s.ws.Traffic()
	snap.Traffic[session.KindHTTP] = s.poll.Traffic()
	for _, a := range s.node.Apps() {
		resumed, failed, events := a.ResumeStats()
		snap.Resumed += resumed
		snap.ResumeFailed += failed
		snap.ResumedEvents += events
		as := metrics.AppSnapshot{ID: a.ID, Channels: map[string]int64{}, Subscriptions: map[string]int64{}}
		as.Open, as.Opened = s.mgr.Connections(a)
		for _, ch := range a.Hub.Channels("") {
			k := kindNames[pusher.ParseChannel(ch.Name).Kind]
			as.Channels[k]++
			as.Subscriptions[k] += int64(ch.SubscriptionCount)
		}
		snap.Apps = append(snap.Apps, as)
	}
	if s.hooks != nil {
		h := s.hooks.Stats()
		snap.Webhooks = &metrics.WebhookSnapshot{Queued: h.Queued, Delivered: h.Delivered, Dropped: h.Dropped, Pending: h.Pending, Failed: h.Failed, Retried: h.Retried}
	}
	return snap
}

// serveMetricsToken answers GET /metrics on the main port: only with
// server.metrics_token as a bearer token (401 otherwise).
func (s *Server) serveMetricsToken(w http.ResponseWriter, r *http.Request) {
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(auth), []byte(s.cfg.Server.MetricsToken)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="herald metrics"`)
		httpapi.WriteError(w, http.StatusUnauthorized, "GET /metrics needs \"Authorization: Bearer <server.metrics_token>\"")
		return
	}
	s.serveMetrics(w, r)
}

// serveMetrics serves the registry; only GET and HEAD.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpapi.WriteError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use GET")
		return
	}
	s.metricsHTTP.ServeHTTP(w, r)
}

// serveMetricsListener serves /metrics on server.metrics_addr until Serve
// returns.
func (s *Server) serveMetricsListener() {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", s.serveMetrics)
	s.metSrv = s.serveAside(s.metLn, mux, "metrics listener (GET /metrics)")
}

// apiEndpoint names the API endpoint of path (below the prefix) for the
// endpoint label: a fixed set, never the app id or a channel name.
func apiEndpoint(path string) string {
	if path == "/broadcast" {
		return metrics.EndpointBroadcast
	}
	rest, ok := strings.CutPrefix(path, "/apps/")
	if !ok {
		return metrics.EndpointOther
	}
	_, rest, _ = strings.Cut(rest, "/") // the app id
	switch {
	case rest == "events":
		return metrics.EndpointEvents
	case rest == "batch_events":
		return metrics.EndpointBatchEvents
	case rest == "channels":
		return metrics.EndpointChannels
	case strings.HasPrefix(rest, "users/") && strings.HasSuffix(rest, "/terminate_connections"):
		return metrics.EndpointTerminate
	case strings.HasPrefix(rest, "channels/") && strings.HasSuffix(rest, "/users"):
		return metrics.EndpointUsers
	case strings.HasPrefix(rest, "channels/"):
		return metrics.EndpointChannel
	}
	return metrics.EndpointOther
}

// timeAPI serves an API request through h and observes its endpoint,
// status and latency.
func (s *Server) timeAPI(w http.ResponseWriter, r *http.Request, h func(http.ResponseWriter, *http.Request)) {
	s.apiRequests.Add(1)
	if s.metrics == nil {
		h(w, r)
		return
	}
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	h(sw, r)
	s.metrics.API.Observe(apiEndpoint(strings.TrimPrefix(r.URL.Path, s.prefix)), sw.status, time.Since(start))
}

// statusWriter records the status an API handler answers with. Unwrap
// keeps http.ResponseController (the handler's read deadline) working.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
