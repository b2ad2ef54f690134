// Package node is Herald's core: per-app state (channels, connection
// counts, signed-in users and their watchlists) and the one publish path:
// a publish is serialized once, numbered by the channel's history (when
// the app keeps history for it), handed to the broker, and the broker's
// delivery puts the same bytes into every local subscriber's queue.
//
// Concurrency: a Node is safe for concurrent use. Channel state lives in
// each app's hub (sharded locks); users and watchlists are guarded by a
// per-app mutex that is never held while calling into the hub. On a
// channel with history, the history numbers a publish under the channel's
// lock and delivers it in offset order, possibly on another publisher's
// goroutine (flat combining: publishers never wait for each other's
// fan-out); a resuming subscribe (hub.Subscribe plus the replay) runs at a
// point of that delivery order, under the channel's history lock: lock
// order session → history channel → hub shard → session queue.
package node

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/history"
	"github.com/herald-ws/herald/internal/hub"
	"github.com/herald-ws/herald/internal/pusher"
)

// Conn is a connection as the node sees it: a hub subscriber that can
// also be closed (terminate, shutdown).
type Conn interface {
	hub.Subscriber
	// Close sends a pusher:error with code and closes the socket with it.
	// It must not block.
	Close(code int, message string)
}

// Node holds every app's state on this server.
type Node struct {
	apps    map[string]*App // by id; read-only after New
	byKey   map[string]*App
	broker  broker.Broker
	history broker.History
	log     *slog.Logger
	fanOut  Histogram // nil: not observed
}

// Histogram takes one observation (a prometheus.Histogram is one). Its
// Observe runs once per publish and channel, so it must be cheap and must
// not block.
type Histogram interface{ Observe(float64) }

// Options are a node's optional parts; zero fields take defaults.
type Options struct {
	// History numbers and keeps the events of channels with history; nil
	// means an in-memory store of history.DefaultMaxBytes.
	History broker.History
	// Observer is told of channel lifecycle events (webhooks); nil: none.
	Observer broker.Observer
	// FanOut observes how many local sockets each delivered publish was
	// queued to; nil: none.
	FanOut Histogram
}

// App is one app's live state.
type App struct {
	*apps.App
	Hub Channels // channel and presence state (local hub on a single node)

	history  broker.History
	observer broker.Observer // nil: nobody listens

	conns atomic.Int64
	watch watchers // HTTP readers waiting for channels' next events
	taps  taps     // the dashboard's copies of deliveries

	// Resumes (subscribes with since): served with a replay, failed
	// (herald:resume_failed), and the events replayed; for metrics.
	resumed, resumeFailed, replayed atomic.Int64

	mu       sync.Mutex                   // guards users, watchers
	users    map[string]map[Conn]struct{} // signed-in sockets by user id
	watchers map[string]map[Conn]struct{} // sockets watching a user id
}

// New builds a node for the registry's apps on broker b, with an
// in-memory history of the default size.
func New(reg *apps.Registry, b broker.Broker, log *slog.Logger) *Node {
	return NewWithOptions(reg, b, log, Options{})
}

// DeliverErrorLogger is the history's DeliverError for a node: a delivery
// that failed after its publisher had returned (another publisher was
// delivering it) is logged, since nobody else can report it.
func DeliverErrorLogger(log *slog.Logger) func(app, channel string, pos broker.Position, err error) {
	return func(app, channel string, pos broker.Position, err error) {
		log.Warn("history: delivery failed", "app", app, "channel", channel, "offset", pos.Offset, "err", err)
	}
}

// NewWithOptions is New with options.
func NewWithOptions(reg *apps.Registry, b broker.Broker, log *slog.Logger, opts Options) *Node {
	if opts.History == nil {
		opts.History = history.NewMemory(history.Options{DeliverError: DeliverErrorLogger(log)})
	}
	n := &Node{apps: map[string]*App{}, byKey: map[string]*App{}, broker: b, history: opts.History, log: log, fanOut: opts.FanOut}
	for _, a := range reg.All() {
		h := hub.New(hub.Options{MaxChannels: a.Limits.MaxChannels, CountSubscriptions: a.SubscriptionCount})
		st := &App{App: a, Hub: h, history: opts.History, observer: opts.Observer, users: map[string]map[Conn]struct{}{}, watchers: map[string]map[Conn]struct{}{}}
		st.watch.seed = maphash.MakeSeed()
		n.apps[a.ID] = st
		n.byKey[a.Key] = st
	}
	b.SetHandler(n.deliver)
	return n
}

// AppByID returns the app with id, or nil.
func (n *Node) AppByID(id string) *App { return n.apps[id] }

// AppByKey returns the app with key, or nil.
func (n *Node) AppByKey(key string) *App { return n.byKey[key] }

// Apps returns every app's state.
func (n *Node) Apps() []*App {
	out := make([]*App, 0, len(n.apps))
	for _, a := range n.apps {
		out = append(out, a)
	}
	return out
}

// Connect counts a new socket, refusing it when the app is at its limit.
func (a *App) Connect() error {
	c := a.conns.Add(1)
	if a.MaxConnections > 0 && c > int64(a.MaxConnections) {
		a.conns.Add(-1)
		return pusher.Fatalf(pusher.CodeOverQuota, "app %s is over its connection quota (%d)", a.ID, a.MaxConnections)
	}
	return nil
}

// Disconnect uncounts a socket counted by Connect.
func (a *App) Disconnect() { a.conns.Add(-1) }

// Connections is the number of open sockets of the app on this node.
func (a *App) Connections() int64 { return a.conns.Load() }

// Publish serializes an API event once per channel and publishes it.
func (n *Node) Publish(ctx context.Context, a *App, channels []string, event, data, exclude string) error {
	_, err := n.PublishOnce(ctx, a, channels, event, data, exclude, "")
	return err
}

// PublishOnce is Publish returning each channel's position after the
// event (positions[i] is channels[i]'s): its epoch and the event's offset,
// or the zero Position for a channel without history. On an error the
// channels before the failing one were published. key is an idempotency
// key (empty: none). On each channel with history, a publish whose key the channel's history
// still holds (an earlier publish with that key, within MaxEvents and TTL)
// is not delivered again; its position is the original event's. Keys are
// per app and channel, so a retried multi-channel publish that failed part
// way publishes only to the channels it missed. On a channel without
// history the key has no effect: every publish is delivered.
func (n *Node) PublishOnce(ctx context.Context, a *App, channels []string, event, data, exclude, key string) ([]broker.Position, error) {
	out := make([]broker.Position, len(channels))
	for i, ch := range channels {
		frame := pusher.Event(ch, event, data)
		info := pusher.ParseChannel(ch)
		pos, err := n.publish(ctx, a, broker.Message{App: a.ID, Channel: ch, Frame: frame, Exclude: exclude, Cache: info.Cache}, key)
		if err != nil {
			return out, fmt.Errorf("publish to %s: %w", ch, err)
		}
		out[i] = pos
	}
	return out, nil
}

// PublishFrame publishes an already serialized frame (client events).
// frame must end in '}' and not be used afterwards: the channel's
// position may be appended to it in place.
func (n *Node) PublishFrame(ctx context.Context, a *App, channel string, frame []byte, exclude string) error {
	_, err := n.publish(ctx, a, broker.Message{App: a.ID, Channel: channel, Frame: frame, Exclude: exclude}, "")
	return err
}

// publish sends m through the broker; on a channel with history the
// history first numbers it, and the broker publish happens in the
// channel's delivery order (the memory broker delivers synchronously, so
// subscribers see offsets strictly in order). That delivery may run after
// publish returned, on another publisher's goroutine: it gets ctx's values
// but not its cancellation. A non-empty key makes the publish idempotent
// on a channel with history (see PublishOnce).
func (n *Node) publish(ctx context.Context, a *App, m broker.Message, key string) (broker.Position, error) {
	if !a.History.Covers(m.Channel) {
		return broker.Position{}, n.broker.Publish(ctx, m)
	}
	if p, ok := n.history.(broker.Publisher); ok { // cluster engine: it publishes
		pos, _, err := p.AppendPublish(ctx, m, a.historyLimits(), key)
		return pos, err
	}
	ctx = context.WithoutCancel(ctx)
	pos, _, err := n.history.AppendOnce(a.ID, m.Channel, a.historyLimits(), key, m.Frame, func(_ broker.Position, frame []byte) error {
		m.Frame = frame
		return n.broker.Publish(ctx, m)
	})
	return pos, err
}

// deliver is the broker handler: the frame goes to local subscribers,
// and the channel's HTTP readers (Watch) are woken.
func (n *Node) deliver(m broker.Message) {
	a := n.apps[m.App]
	if a == nil {
		return
	}
	var sent int
	if m.Cache {
		sent = a.Hub.BroadcastCached(m.Channel, m.Frame, m.Exclude)
	} else {
		sent = a.Hub.Broadcast(m.Channel, m.Frame, m.Exclude)
	}
	if n.fanOut != nil {
		n.fanOut.Observe(float64(sent))
	}
	a.watch.notify(m.Channel)
	a.taps.send(m.Channel, m.Frame, m.Exclude)
}

// FlushSubscriptionCounts sends pusher_internal:subscription_count to the
// subscribers of the channels whose count changed since the last call; it
// does nothing unless the app counts subscriptions. Called periodically, it
// is the debounce. The changes it returns are the seam for the
// subscription_count webhook.
func (a *App) FlushSubscriptionCounts() []hub.CountChange {
	if !a.SubscriptionCount {
		return nil
	}
	changes := a.Hub.FlushCounts()
	for _, c := range changes {
		a.observe(broker.Lifecycle{Name: broker.SubscriptionCount, Channel: c.Channel, SubscriptionCount: c.Count})
	}
	return changes
}

// SignIn records c as signed in as u. It returns the watched users that are
// online now, and tells the watchers of u when c is u's first socket.
func (a *App) SignIn(c Conn, u pusher.User) (onlineWatched []string) {
	a.mu.Lock()
	set := a.users[u.ID]
	first := len(set) == 0
	if set == nil {
		set = map[Conn]struct{}{}
		a.users[u.ID] = set
	}
	set[c] = struct{}{}
	for _, w := range u.Watchlist {
		ws := a.watchers[w]
		if ws == nil {
			ws = map[Conn]struct{}{}
			a.watchers[w] = ws
		}
		ws[c] = struct{}{}
		if len(a.users[w]) > 0 {
			onlineWatched = append(onlineWatched, w)
		}
	}
	var notify []Conn
	if first {
		notify = a.watchersOf(u.ID, c)
	}
	a.mu.Unlock()
	sendAll(notify, func() []byte { return pusher.WatchlistEvents("online", []string{u.ID}) })
	return onlineWatched
}

// SignOut forgets c (signed in as u); when it was u's last socket, u's
// watchers are told u went offline.
func (a *App) SignOut(c Conn, u pusher.User) {
	a.mu.Lock()
	set := a.users[u.ID]
	delete(set, c)
	last := set != nil && len(set) == 0
	if last {
		delete(a.users, u.ID)
	}
	for _, w := range u.Watchlist {
		if ws := a.watchers[w]; ws != nil {
			delete(ws, c)
			if len(ws) == 0 {
				delete(a.watchers, w)
			}
		}
	}
	var notify []Conn
	if last {
		notify = a.watchersOf(u.ID, nil)
	}
	a.mu.Unlock()
	sendAll(notify, func() []byte { return pusher.WatchlistEvents("offline", []string{u.ID}) })
}

// sendAll sends one frame, built only when needed, to every conn.
func sendAll(conns []Conn, frame func() []byte) {
	if len(conns) == 0 {
		return
	}
	f := frame()
	for _, c := range conns {
		c.Send(f)
	}
}

func (a *App) watchersOf(userID string, except Conn) []Conn {
	var out []Conn
	for w := range a.watchers[userID] {
		if w != except {
			out = append(out, w)
		}
	}
	return out
}

// Terminate closes every socket signed in as userID and returns how many.
func (a *App) Terminate(userID string) int {
	a.mu.Lock()
	conns := make([]Conn, 0, len(a.users[userID]))
	for c := range a.users[userID] {
		conns = append(conns, c)
	}
	a.mu.Unlock()
	for _, c := range conns {
		c.Close(pusher.CodeUnauthorized, "connection terminated by the application")
	}
	return len(conns)
}

// UserOnline reports whether userID has a signed-in socket.
func (a *App) UserOnline(userID string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.users[userID]) > 0
}
