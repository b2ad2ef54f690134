package session

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/internal/node"
	"github.com/herald-ws/herald/internal/peer"
	"github.com/herald-ws/herald/internal/pusher"
	"github.com/herald-ws/herald/internal/ratelog"
)

// countEvery is how often changed subscription counts are sent: at most one
// pusher_internal:subscription_count per channel and second. A count is
// read by people, for whom a second's lag is nothing, and a busy channel's
// churn then costs each subscriber one frame a second instead of one per
// join or leave.
const countEvery = time.Second

// Manager creates sessions, tracks them, runs their timers with one sweep
// over all sessions instead of a timer per socket, and sends the apps'
// changed subscription counts.
//
// Concurrency: safe for concurrent use; mu guards sessions.
type Manager struct {
	node  *node.Node
	log   *slog.Logger
	now   func() time.Time
	tick  time.Duration
	warns *ratelog.Limiter // refusals and closes logged, per reason or code
	ready atomic.Bool

	// LogFrames logs every frame in and out of every session at debug
	// level, redacted (framelog.go). Set it before the first Open.
	LogFrames bool
	// IPLimits limits connections per client address (the transport's
	// RemoteAddr); nil: none. Set it before the first Open.
	IPLimits *peer.Limiter

	mu       sync.Mutex
	sessions map[*Session]struct{}

	slowClosed atomic.Int64
	ipRefused  atomic.Int64
	counts     map[*node.App]*appCounts // read-only after NewManager: apps are fixed
	closes     closeCounts
}

// Transport kinds, in the order of metrics.Transports.
const (
	KindWebSocket = iota
	KindHTTP
	numKinds
)

// KindNames name the transport kinds in logs.
var KindNames = [numKinds]string{KindWebSocket: "websocket", KindHTTP: "http"}

// kinded is the optional part of a Transport naming its kind; a transport
// without it is a WebSocket.
type kinded interface{ Kind() int }

// appCounts are one app's connections by transport kind.
type appCounts struct {
	open, opened [numKinds]atomic.Int64
}

// closeCounts counts error close codes: the WebSocket codes 1001-1015 and
// Pusher's 4000-4399, each in its own slot so counting takes no lock;
// anything else in other.
type closeCounts struct {
	ws     [16]atomic.Int64
	pusher [400]atomic.Int64
	other  atomic.Int64
}

func (c *closeCounts) add(code int) {
	switch {
	case code == 1000: // a normal close is no error
	case code >= 1000 && code < 1016:
		c.ws[code-1000].Add(1)
	case code >= 4000 && code < 4400:
		c.pusher[code-4000].Add(1)
	default:
		c.other.Add(1)
	}
}

// snapshot returns the non-zero counts by code (other as code 0).
func (c *closeCounts) snapshot() map[int]int64 {
	out := map[int]int64{}
	for i := range c.ws {
		if n := c.ws[i].Load(); n > 0 {
			out[1000+i] = n
		}
	}
	for i := range c.pusher {
		if n := c.pusher[i].Load(); n > 0 {
			out[4000+i] = n
		}
	}
	if n := c.other.Load(); n > 0 {
		out[0] = n
	}
	return out
}

// NewManager returns a manager for n's apps. tick is the sweep period
// (default 250 ms).
func NewManager(n *node.Node, log *slog.Logger, tick time.Duration) *Manager {
	if tick <= 0 {
		tick = 250 * time.Millisecond
	}
	m := &Manager{node: n, log: log, now: time.Now, tick: tick, warns: ratelog.New(0, 0), sessions: map[*Session]struct{}{}, counts: map[*node.App]*appCounts{}}
	for _, a := range n.Apps() {
		m.counts[a] = &appCounts{}
	}
	m.ready.Store(true)
	return m
}

// Node is the node sessions publish to.
func (m *Manager) Node() *node.Node { return m.node }

// Open counts a new socket on app a and returns its session with the
// connection_established frame already queued. The error is a closing
// *pusher.Error (4004) when the app is at its connection limit.
func (m *Manager) Open(a *node.App, t Transport) (*Session, error) {
	if !m.ready.Load() {
		return nil, pusher.Fatalf(pusher.CodeGeneric, "server is shutting down")
	}
	now := m.now()
	held, err := m.acquireIP(t, now)
	if err != nil {
		return nil, err
	}
	if err := a.Connect(); err != nil {
		m.releaseIP(t, held)
		return nil, err
	}
	s := &Session{mgr: m, app: a, id: pusher.NewSocketID(), t: t, created: now, ipHeld: held}
	if k, ok := t.(kinded); ok {
		s.kind = k.Kind()
	}
	if c := m.counts[a]; c != nil {
		c.open[s.kind].Add(1)
		c.opened[s.kind].Add(1)
	}
	s.log = m.log.With("app", a.ID, "socket_id", s.id)
	if s.log.Enabled(context.Background(), slog.LevelDebug) { // --debug, or the dashboard's console watching
		s.log.Debug("connected", s.describe()...)
	}
	s.lastSeen.Store(now.UnixNano())
	m.mu.Lock()
	m.sessions[s] = struct{}{}
	m.mu.Unlock()
	s.queue = append(s.queue, pusher.ConnectionEstablished(s.id, int(a.ActivityTimeout/time.Second)))
	return s, nil
}

func (m *Manager) forget(s *Session) {
	m.mu.Lock()
	delete(m.sessions, s)
	m.mu.Unlock()
	m.releaseIP(s.t, s.ipHeld)
	if c := m.counts[s.app]; c != nil {
		c.open[s.kind].Add(-1)
	}
}

// Connections returns app a's connections open now and opened since
// start, by transport kind (KindWebSocket, KindHTTP).
func (m *Manager) Connections(a *node.App) (open, opened [2]int64) {
	if c := m.counts[a]; c != nil {
		for k := range numKinds {
			open[k], opened[k] = c.open[k].Load(), c.opened[k].Load()
		}
	}
	return open, opened
}

// CountClose counts a connection closed or refused with code; sessions
// count their own closes, transports call it for the connections they
// fail or refuse themselves.
func (m *Manager) CountClose(code int) {
	if m != nil {
		m.closes.add(code)
	}
}

// Closes returns the close codes counted so far, by code; codes outside
// 1001-1015 and 4000-4399 are summed under 0; 1000 (normal) is not
// counted.
func (m *Manager) Closes() map[int]int64 { return m.closes.snapshot() }

// Count is the number of open sessions.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// SlowClosed is how many sessions were cut off for falling behind.
func (m *Manager) SlowClosed() int64 { return m.slowClosed.Load() }

// Run sweeps the sessions' timers, and sends changed subscription counts
// every countEvery, until ctx is done.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.tick)
	defer t.Stop()
	var counts, ips <-chan time.Time
	if m.IPLimits != nil {
		it := time.NewTicker(10 * time.Second)
		defer it.Stop()
		ips = it.C
	}
	if m.countsSubscriptions() {
		ct := time.NewTicker(countEvery)
		defer ct.Stop()
		counts = ct.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.sweep()
		case <-counts:
			m.flushCounts()
		case now := <-ips:
			m.IPLimits.Sweep(now)
		}
	}
}

func (m *Manager) countsSubscriptions() bool {
	for _, a := range m.node.Apps() {
		if a.SubscriptionCount {
			return true
		}
	}
	return false
}

// flushCounts sends each app's changed subscription counts.
func (m *Manager) flushCounts() {
	for _, a := range m.node.Apps() {
		a.FlushSubscriptionCounts()
	}
}

func (m *Manager) sweep() {
	now := m.now()
	for _, s := range m.snapshot() {
		s.sweep(now)
	}
}

func (m *Manager) snapshot() []*Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Session, 0, len(m.sessions))
	for s := range m.sessions {
		out = append(out, s)
	}
	return out
}

// Shutdown refuses new sessions and closes every open one with code 4200
// at once (clients reconnect at once, to another instance or this one
// restarted); Drain spreads the closes over a window instead.
func (m *Manager) Shutdown() { m.Drain(context.Background(), 0) }

// Accepting reports whether new sessions are accepted.
func (m *Manager) Accepting() bool { return m.ready.Load() }
