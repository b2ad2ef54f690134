// Package server is Herald's composition root: it builds the node, the
// session manager, the WebSocket transport and the HTTP API from a
// configuration, serves them on one listener, and runs the graceful
// lifecycle (stop accepting, close sockets with 4200, wait, exit).
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker/redis"
	"github.com/herald-ws/herald/internal/config"
	"github.com/herald-ws/herald/internal/dashboard"
	"github.com/herald-ws/herald/internal/feed"
	"github.com/herald-ws/herald/internal/history"
	"github.com/herald-ws/herald/internal/httpapi"
	"github.com/herald-ws/herald/internal/metrics"
	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/peer"
	"github.com/herald-ws/herald/internal/session"
	"github.com/herald-ws/herald/internal/transport/poll"
	"github.com/herald-ws/herald/internal/transport/ws"
	"github.com/herald-ws/herald/internal/web"
	"github.com/herald-ws/herald/internal/webhook"
)

// Server is one running Herald.
type Server struct {
	cfg    *config.Config
	log    *slog.Logger
	node   *node.Node
	mgr    *session.Manager
	ws     *ws.Server
	api    *httpapi.Handler
	feed   *feed.Handler
	hooks  *webhook.Dispatcher // nil when no app has webhooks
	dash   *dashboard.Handler  // nil unless the dashboard has credentials
	poll   *poll.Server        // pusher-js's HTTP transports
	http   *http.Server
	ln     net.Listener
	dbg    *http.Server // debug listener (pprof), when configured
	dbgLn  net.Listener
	prefix string
	hist   *history.Memory
	cert   *certificate // nil without TLS; see tls.go
	// trusted are the proxies whose X-Forwarded-For names the client;
	// pending the connections still sending their first request.
	trusted peer.Trusted
	pending *pending

	// cluster is the Redis engine (broker and history) when
	// cluster.url is set, nil on a single node; see cluster.go.
	cluster *redis.Engine

	// metrics is nil unless server.metrics_addr or server.metrics_token
	// is set; metricsHTTP serves its registry.
	metrics     *metrics.Metrics
	metricsHTTP http.Handler
	metSrv      *http.Server // metrics listener, when configured
	metLn       net.Listener

	// Version is what GET /test answers as "version"; "" means the
	// module version recorded in the binary. Set it before Serve.
	Version string
	started time.Time

	stopping    atomic.Bool
	apiRequests atomic.Int64 // HTTP API and /broadcast requests served
}

// New builds a server from cfg; it does not listen yet.
func New(cfg *config.Config, log *slog.Logger) (_ *Server, err error) {
	reg, err := apps.NewRegistry(cfg.Apps)
	if err != nil {
		return nil, fmt.Errorf("apps: %w", err)
	}
	var console *dashboard.Console
	if cfg.Server.DashboardOn() {
		// The console tees the log: built first, so every part logs to it.
		console = dashboard.NewConsole()
		log = slog.New(console.Handler(log.Handler()))
	}
	hist := history.NewMemory(history.Options{MaxBytes: cfg.History.MaxBytes, DeliverError: node.DeliverErrorLogger(log)})
	hooks := newWebhooks(reg, log)
	opts := node.Options{History: hist}
	if hooks != nil { // a nil *Dispatcher in the interface would not be nil
		opts.Observer = hooks
	}
	s := &Server{cfg: cfg, log: log, hooks: hooks, hist: hist, prefix: cfg.Server.Path, started: time.Now()}
	if metricsOn(cfg.Server) {
		s.metrics = metrics.New(s.metricsSnapshot) // read only at scrape time, once s is built
		s.metricsHTTP = s.metrics.Handler()
		opts.FanOut = s.metrics.FanOut
	}
	b, h, cluster, err := engine(cfg.Cluster, opts.History, log)
	if err != nil {
		return nil, err
	}
	if cluster != nil {
		s.cluster = cluster
		defer func() {
			if err != nil {
				_ = cluster.Close()
			}
		}()
	}
	opts.History = h
	n := node.NewWithOptions(reg, b, log, opts)
	mgr := session.NewManager(n, log, sweepTick(cfg.Apps))
	mgr.LogFrames = cfg.Log.Debug
	s.trusted, err = peer.ParseTrusted(cfg.Server.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	mgr.IPLimits = peer.NewLimiter(peer.Limits{
		MaxConns: cfg.Server.MaxConnectionsPerIP,
		Rate:     float64(cfg.Server.MaxNewConnectionsPerIP),
		Burst:    2 * cfg.Server.MaxNewConnectionsPerIP,
	})
	s.node, s.mgr = n, mgr
	s.ws, err = ws.New(mgr, s.prefix, cfg.Server.Transport, cfg.Server.CoalesceWindow, log)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	if cfg.Server.WriteTimeout > 0 {
		s.ws.WriteTimeout = cfg.Server.WriteTimeout
	}
	s.api = httpapi.New(n, s.prefix, log)
	s.api.ReadTimeout = s.requestTimeout()
	s.poll = poll.New(mgr, s.prefix, log)
	s.poll.ReadTimeout = s.requestTimeout()
	s.poll.Linger = cfg.Server.XHRSessionTimeout
	if cfg.Server.WriteTimeout > 0 {
		s.poll.WriteTimeout = cfg.Server.WriteTimeout
	}
	s.feed = feed.New(n, s.prefix, log)
	s.feed.MaxWaiting = cfg.History.MaxReaders
	if cfg.Server.WriteTimeout > 0 {
		s.feed.WriteTimeout = cfg.Server.WriteTimeout
	}
	if cfg.Server.TLSOn() {
		if s.cert, err = newCertificate(cfg.Server.TLSCert, cfg.Server.TLSKey); err != nil {
			return nil, err
		}
	}
	if console != nil {
		s.dash = dashboard.New(dashboard.Options{
			Node: n, Prefix: s.prefix, Console: console, Log: log, Version: s.version(),
			Token: cfg.Server.DashboardToken, User: cfg.Server.DashboardUser, Password: cfg.Server.DashboardPassword,
			Numbers: s.dashboardNumbers,
		})
	}
	s.pending = newPending(cmp.Or(cfg.Server.MaxPendingHandshakes, config.DefaultMaxPendingHandshakes))
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cmp.Or(cfg.Server.HeaderTimeout, 10*time.Second),
		ConnContext:       s.pending.connContext,
		ConnState:         s.pending.connState,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// sweepTick is fine enough for the shortest configured timer.
func sweepTick(list []*apps.App) time.Duration {
	tick := 500 * time.Millisecond
	for _, a := range list {
		for _, d := range []time.Duration{a.PingInterval, a.PongTimeout, a.AuthorizedConnectionsTimeout} {
			if d > 0 && d/4 < tick {
				tick = max(d/4, 10*time.Millisecond)
			}
		}
	}
	return tick
}

// Listen binds the configured address.
func (s *Server) Listen() error {
	addr := net.JoinHostPort(s.cfg.Server.Host, strconv.Itoa(s.cfg.Server.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if s.cert != nil {
		ln = tls.NewListener(ln, s.cert.tlsConfig())
	}
	s.ln = ln
	if a := s.cfg.Server.DebugAddr; a != "" {
		if s.dbgLn, err = net.Listen("tcp", a); err != nil {
			ln.Close()
			return fmt.Errorf("debug listener on %s: %w", a, err)
		}
	}
	if a := s.cfg.Server.MetricsAddr; a != "" {
		if s.metLn, err = net.Listen("tcp", a); err != nil {
			ln.Close()
			if s.dbgLn != nil {
				s.dbgLn.Close()
			}
			return fmt.Errorf("metrics listener on %s: %w", a, err)
		}
	}
	return nil
}

// MetricsAddr is the metrics listener's bound address, nil without one.
func (s *Server) MetricsAddr() net.Addr {
	if s.metLn == nil {
		return nil
	}
	return s.metLn.Addr()
}

// Addr is the bound address (after Listen).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// DebugAddr is the debug listener's bound address, nil without one.
func (s *Server) DebugAddr() net.Addr {
	if s.dbgLn == nil {
		return nil
	}
	return s.dbgLn.Addr()
}

// Node is the server's core (for in-process tests).
func (s *Server) Node() *node.Node { return s.node }

// Serve runs until ctx is done, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	if s.dbgLn != nil {
		s.serveDebug()
		defer s.dbg.Close()
	}
	if s.metLn != nil {
		s.serveMetricsListener()
		defer s.metSrv.Close()
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	go s.mgr.Run(sweepCtx)
	if s.dash != nil {
		go s.dash.Run(sweepCtx)
	}

	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()
	s.log.Info("herald listening", "addr", s.ln.Addr().String(), "path", s.prefix, "apps", len(s.cfg.Apps), "tls", s.cert != nil)
	if s.cert != nil {
		s.logTLS()
	}
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	return s.shutdown()
}

// shutdown stops accepting, closes every socket with 4200 so clients
// reconnect, spread over the drain window (session.Manager.Drain), lets
// in-flight HTTP requests finish meanwhile, and waits up to the shutdown
// timeout. HTTP requests still running then (a client stalled mid-body)
// are cut off: they are the client's failure, not the server's, so
// shutdown still succeeds.
func (s *Server) shutdown() error {
	s.stopping.Store(true)
	s.log.Info("shutting down", "connections", s.mgr.Count())
	timeout := s.cfg.Server.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	drained := make(chan struct{})
	go func() { defer close(drained); s.mgr.Drain(ctx, s.drainWindow(timeout)) }()
	s.feed.Close() // held long-polls answer, SSE streams end: Shutdown waits for them
	if s.dash != nil {
		s.dash.Close() // likewise the dashboard's live streams
	}
	err := s.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("shutdown timeout: closing HTTP requests still running", "timeout", timeout)
		_ = s.http.Close() // closes the stalled connections (the listener is closed already)
		err = nil
	}
	<-drained      // at the latest when ctx ends
	s.poll.Close() // HTTP sessions no receive request came for
	done := make(chan struct{})
	go func() { s.ws.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("shutdown timeout: some connections did not close", "connections", s.mgr.Count())
	}
	if s.hooks != nil {
		s.hooks.Close() // what the closed sockets caused (member_removed, vacated) goes out
	}
	if s.cluster != nil {
		_ = s.cluster.Close() // after the sockets: nothing publishes any more
	}
	s.log.Info("stopped")
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// ServeHTTP routes: health, WebSocket upgrades, the API, /broadcast and
// /test.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.pending.started(r)
	if len(s.trusted) > 0 {
		s.clientAddr(r)
	}
	path := r.URL.Path
	switch {
	case path == s.prefix+"/up" || path == "/up":
		s.bodyless(w, r)
		s.health(w)
	case path == s.prefix+"/ready" || path == "/ready":
		s.bodyless(w, r)
		s.ready(w, r)
	case ws.IsUpgrade(r):
		// No read deadline: the socket outlives the request, and the
		// transport owns its deadlines after the hijack.
		s.ws.ServeHTTP(w, r)
	case strings.HasPrefix(path, s.prefix+"/apps/"):
		s.timeAPI(w, r, s.api.ServeHTTP) // sets its own deadline
	case path == s.prefix+"/broadcast":
		s.timeAPI(w, r, s.api.ServeBroadcast) // sets its own deadline
	case (path == s.prefix+"/metrics" || path == "/metrics") && s.cfg.Server.MetricsToken != "":
		s.bodyless(w, r)
		s.serveMetricsToken(w, r)
	case s.dash != nil && s.dash.Match(path):
		// The page, its API and its live stream (which clears this).
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.requestTimeout()))
		s.dash.ServeHTTP(w, r)
	case strings.HasPrefix(path, s.prefix+"/") && web.Has(path[len(s.prefix):]):
		s.bodyless(w, r)
		web.Serve(w, r, path[len(s.prefix):])
	case path == s.prefix+"/test":
		s.bodyless(w, r)
		s.status(w, r)
	case s.poll.Match(path):
		if !strings.HasSuffix(path, "/xhr_send") {
			s.bodyless(w, r) // a receive request clears the read deadline
		}
		s.poll.ServeHTTP(w, r)
	case s.feed.Match(path):
		s.bodyless(w, r) // a held request clears the read deadline
		s.feed.ServeHTTP(w, r)
	case strings.HasPrefix(path, s.prefix+"/app/") && !strings.Contains(path[len(s.prefix+"/app/"):], "/"):
		s.bodyless(w, r)
		httpapi.WriteError(w, http.StatusUpgradeRequired, "this endpoint is a WebSocket: connect with a Pusher client")
	default:
		s.bodyless(w, r)
		httpapi.WriteError(w, http.StatusNotFound, "path "+path+" not found")
	}
}

// bodyless prepares the answer to a request whose body nobody reads. Left
// alone, net/http reads up to 256 KiB of that body before answering, with
// no deadline: a client trickling a byte a second would hold its socket
// and goroutine for days. So the read gets the request deadline, and a
// request with a body is answered at once and its connection closed.
func (s *Server) bodyless(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.requestTimeout()))
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// requestTimeout is server.request_timeout, or its default.
func (s *Server) requestTimeout() time.Duration {
	if d := s.cfg.Server.RequestTimeout; d > 0 {
		return d
	}
	return httpapi.DefaultReadTimeout
}

func (s *Server) health(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	if !s.accepting() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"health":"stopping"}` + "\n"))
		return
	}
	_, _ = fmt.Fprintf(w, `{"health":"OK","connections":%d}`+"\n", s.mgr.Count())
}

// APIBusy is the number of API requests refused with 503 because too many
// were being served at once.
func (s *Server) APIBusy() int64 { return s.api.Busy() }

// Shutdown closes every session with 4200 (for tests; Serve does the same
// when its context ends).
func (s *Server) Shutdown() {
	s.stopping.Store(true)
	s.mgr.Shutdown()
	s.feed.Close()
	if s.dash != nil {
		s.dash.Close()
	}
}
