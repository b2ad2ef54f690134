// Package webhook delivers channel lifecycle events (broker.Lifecycle) to
// an app's HTTP endpoints exactly as Pusher Channels' webhooks do, so a
// Laravel or other Pusher webhook controller works unchanged: a POST of
// {"time_ms":…,"events":[…]} signed with X-Pusher-Key and
// X-Pusher-Signature (hex HMAC-SHA256 of the body with the app secret).
//
// The Dispatcher is a broker.Observer. Observe is called on the paths that
// subscribe, unsubscribe and publish, so it never waits on the network: it
// encodes the event, takes one short per-app mutex and appends to a bounded
// queue. One goroutine per endpoint drains its own queue, batches events
// within a short window, and retries with exponential backoff; a slow or
// dead endpoint therefore holds up nothing but its own queue, and once that
// queue is full its events are dropped, counted and logged — never silently.
//
// channel_vacated and member_removed are held for Options.Delay (Pusher
// documents up to 3 s) and cancelled, together with the channel_occupied or
// member_added that follows, when the channel or member comes back in that
// time: a page reload does not send a vacated/occupied pair.
//
// Concurrency: a Dispatcher is safe for concurrent use. Locks: Dispatcher.mu
// guards the app table; app.mu guards that app's held events and the queues
// of its endpoints. They never nest (the app table lock is released before
// an app lock is taken). No lock is held across network I/O or logging.
package webhook

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/ratelog"
)

// Endpoint is one webhook URL of an app and the event names it wants
// (broker.ChannelOccupied, …); empty Events means every event.
type Endpoint struct {
	URL    string
	Events []string
}

// Lookup returns an app's key, secret and webhook endpoints; ok false (or no
// endpoints) means the app has no webhooks. The Dispatcher calls it once per
// app, on the app's first event, so it stays out of the hot path and this
// package needs no import of config or node.
type Lookup func(appID string) (key, secret string, endpoints []Endpoint, ok bool)

// Options configure a Dispatcher; a zero field takes the default named in
// its comment.
type Options struct {
	// Lookup finds an app's credentials and endpoints. Required.
	Lookup Lookup
	// Client sends the POSTs (default: a client that does not follow
	// redirects, so a 3xx is an answer, as it is for Pusher).
	Client *http.Client
	// Timeout bounds one POST, connection included (default 10 s): a hung
	// endpoint costs a retry, not a stuck queue.
	Timeout time.Duration
	// Batch is how long the first event of a batch waits for others
	// (default 250 ms, Pusher's batch window): one POST instead of many
	// when a page subscribes to several channels at once.
	Batch time.Duration
	// MaxBatch bounds the events of one POST (default 20, Pusher's batch
	// size), so a backlog is sent in bodies any receiver already handles.
	MaxBatch int
	// Delay holds channel_vacated and member_removed (default 3 s, Pusher's
	// documented bound); negative sends them at once.
	Delay time.Duration
	// MaxQueue bounds the events waiting for one endpoint, the batch being
	// sent included (default 10,000), and separately the events one app
	// holds for Delay. The bound is per endpoint so that a dead endpoint
	// cannot crowd out a healthy one of the same app; an app's memory is
	// thus bounded by MaxQueue × (its endpoints + 1) events.
	MaxQueue int
	// RetryFor is how long a batch is retried after its first attempt
	// (default 5 minutes, as Pusher). Backoff starts at RetryMin (default
	// 1 s) and doubles up to RetryMax (default 1 minute).
	RetryFor time.Duration
	RetryMin time.Duration
	RetryMax time.Duration
	// FlushTimeout bounds how long Close keeps delivering what is queued
	// (default 5 s); what is left then is dropped and counted.
	FlushTimeout time.Duration
	// Log receives warnings (default slog.Default()); each reason is
	// rate-limited so a dead endpoint cannot flood it.
	Log *slog.Logger
	// Now stamps time_ms (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Timeout, 10*time.Second)
	def(&o.Batch, 250*time.Millisecond)
	def(&o.Delay, 3*time.Second)
	def(&o.RetryFor, 5*time.Minute)
	def(&o.RetryMin, time.Second)
	def(&o.RetryMax, time.Minute)
	def(&o.FlushTimeout, 5*time.Second)
	if o.MaxBatch <= 0 {
		o.MaxBatch = 20
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 10_000
	}
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Lookup == nil {
		o.Lookup = func(string) (string, string, []Endpoint, bool) { return "", "", nil, false }
	}
	return o
}

// Stats are the Dispatcher's counters since New, in events (one event sent
// to two endpoints counts twice), except Failed and Retried, which count
// POST attempts.
type Stats struct {
	Queued    int64 // events accepted into an endpoint queue
	Delivered int64 // events in a POST answered 2xx
	Failed    int64 // POSTs that failed (network error or non-2xx)
	Retried   int64 // POSTs that were retries
	Dropped   int64 // events given up: queue full, retry window over, rejected (4xx), shut down
	Pending   int64 // events queued or in flight now (a gauge)
}

// Dispatcher batches, signs and delivers webhooks. Create it with New; it
// is safe for concurrent use (see the package doc for its locks).
type Dispatcher struct {
	opts  Options
	limit *ratelog.Limiter
	// closing is closed by Close: workers stop waiting for batch windows
	// and flush. ctx is cancelled when Close's flush deadline passes, which
	// aborts requests in flight and backoff waits.
	closing chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.RWMutex
	apps   map[string]*app
	closed bool

	queued, delivered, failed, retried, dropped, pending atomic.Int64
}

var _ broker.Observer = (*Dispatcher)(nil)

// New returns a running Dispatcher; call Close to stop it.
func New(opts Options) *Dispatcher {
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{
		opts:    opts.withDefaults(),
		limit:   ratelog.New(5, time.Minute),
		closing: make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
		apps:    map[string]*app{},
	}
}

// Stats returns the counters; see Stats.
func (d *Dispatcher) Stats() Stats {
	return Stats{
		Queued:    d.queued.Load(),
		Delivered: d.delivered.Load(),
		Failed:    d.failed.Load(),
		Retried:   d.retried.Load(),
		Dropped:   d.dropped.Load(),
		Pending:   d.pending.Load(),
	}
}

// Observe queues e for the app's endpoints that want it. It never blocks
// on the network: it is called on subscribe, unsubscribe and publish paths.
func (d *Dispatcher) Observe(appID string, e broker.Lifecycle) {
	a := d.app(appID)
	if a == nil {
		d.dropped.Add(1)
		d.warn("webhook: event after close dropped", "app", appID, "event", e.Name)
		return
	}
	if !a.wants[e.Name] {
		return
	}
	raw := encodeEvent(e)
	a.mu.Lock()
	var full []*endpoint
	if a.closed {
		a.mu.Unlock()
		d.dropped.Add(1)
		d.warn("webhook: event after close dropped", "app", appID, "event", e.Name)
		return
	}
	if !a.holdOrCancelLocked(e, raw) {
		full = a.enqueueLocked(e.Name, raw)
	}
	a.mu.Unlock()
	for _, ep := range full {
		d.warn("webhook: queue full, event dropped", "app", appID, "endpoint", ep.name, "event", e.Name)
	}
}

// app returns appID's state, building it (and starting its endpoint
// workers) on first use; nil once the Dispatcher is closed.
func (d *Dispatcher) app(appID string) *app {
	d.mu.RLock()
	a, closed := d.apps[appID], d.closed
	d.mu.RUnlock()
	if a != nil || closed {
		return a
	}
	key, secret, endpoints, ok := d.opts.Lookup(appID) // outside the lock: caller's code
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	if a := d.apps[appID]; a != nil {
		return a
	}
	if !ok {
		endpoints = nil
	}
	a = d.newApp(appID, key, secret, endpoints)
	d.apps[appID] = a
	for _, ep := range a.endpoints {
		d.wg.Go(ep.run)
	}
	return a
}

// Close stops the Dispatcher: held events are released at once, every
// worker flushes its queue for up to FlushTimeout, and what is still
// undelivered then is dropped and counted. Events observed after Close are
// dropped and counted. Close returns when every worker has stopped.
func (d *Dispatcher) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	apps := make([]*app, 0, len(d.apps))
	for _, a := range d.apps {
		apps = append(apps, a)
	}
	d.mu.Unlock()
	for _, a := range apps {
		a.mu.Lock()
		a.closed = true
		a.releaseAllLocked()
		a.mu.Unlock()
	}
	close(d.closing)
	stop := time.AfterFunc(d.opts.FlushTimeout, d.cancel)
	d.wg.Wait()
	stop.Stop()
	d.cancel()
}

// warn logs a rate-limited warning; key is a fixed reason, never
// request-chosen text, so the limiter's keys stay bounded.
func (d *Dispatcher) warn(key string, args ...any) {
	ok, suppressed := d.limit.Allow(key)
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	d.opts.Log.Warn(key, args...)
}

// logName is an endpoint as logs show it: scheme, host and path, without
// user info or query, which may carry credentials.
func logName(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.Path
}
