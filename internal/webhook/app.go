package webhook

import (
	"net/url"
	"sync"
	"time"

	"github.com/herald-ws/herald/internal/broker"
)

// app is one app's webhook state: its credentials, its endpoints and the
// events it holds back for Options.Delay.
//
// Concurrency: id, key, secret, endpoints and wants are set by newApp and
// only read afterwards. mu guards closed, held and every endpoint's queue
// and pending count.
type app struct {
	d         *Dispatcher
	id        string
	key       string
	secret    string
	endpoints []*endpoint
	// wants holds the event names some endpoint wants, plus the partner of
	// each delayed name (channel_occupied for channel_vacated, member_added
	// for member_removed): the partner cancels a held event even when no
	// endpoint wants the partner itself.
	wants map[string]bool

	mu     sync.Mutex
	closed bool
	held   map[heldKey]*held
}

// heldKey names what a held event is about: a channel (channel_vacated) or
// a member of a channel (member_removed).
type heldKey struct {
	member  bool
	channel string
	userID  string
}

type held struct {
	name  string
	raw   []byte
	timer *time.Timer
}

var allEvents = []string{
	broker.ChannelOccupied, broker.ChannelVacated, broker.MemberAdded, broker.MemberRemoved,
	broker.ClientEvent, broker.CacheMiss, broker.SubscriptionCount,
}

// newApp builds the state of an app; endpoints with a URL that is not
// absolute http(s) are logged and skipped (config validation should have
// refused them).
func (d *Dispatcher) newApp(id, key, secret string, endpoints []Endpoint) *app {
	a := &app{d: d, id: id, key: key, secret: secret, wants: map[string]bool{}, held: map[heldKey]*held{}}
	for _, e := range endpoints {
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.opts.Log.Error("webhook: endpoint URL is not an absolute http(s) URL; skipped", "app", id)
			continue
		}
		ep := &endpoint{d: d, app: a, url: e.URL, name: logName(u), wake: make(chan struct{}, 1)}
		names := e.Events
		if len(names) == 0 {
			names = allEvents
		}
		ep.wants = map[string]bool{}
		for _, n := range names {
			ep.wants[n] = true
			a.wants[n] = true
		}
		a.endpoints = append(a.endpoints, ep)
	}
	if a.wants[broker.ChannelVacated] {
		a.wants[broker.ChannelOccupied] = true
	}
	if a.wants[broker.MemberRemoved] {
		a.wants[broker.MemberAdded] = true
	}
	return a
}

// holdOrCancelLocked applies the delay rules and reports whether e was
// consumed: a channel_vacated or member_removed is held for Delay; a
// channel_occupied or member_added that finds its partner held cancels it
// and is itself dropped, so a quick re-join sends nothing at all.
func (a *app) holdOrCancelLocked(e broker.Lifecycle, raw []byte) bool {
	opts := &a.d.opts
	switch e.Name {
	case broker.ChannelVacated, broker.MemberRemoved:
		// With the hold table full the event is sent at once: it loses
		// its debounce, never its delivery.
		if opts.Delay < 0 || len(a.held) >= opts.MaxQueue {
			return false
		}
		k := keyOf(e)
		if old := a.held[k]; old != nil { // the node reported it twice; keep one
			old.timer.Stop()
		}
		h := &held{name: e.Name, raw: raw}
		h.timer = time.AfterFunc(opts.Delay, func() { a.release(k, h) })
		a.held[k] = h
		return true
	case broker.ChannelOccupied, broker.MemberAdded:
		k := keyOf(e)
		if h := a.held[k]; h != nil {
			h.timer.Stop()
			delete(a.held, k)
			return true
		}
	}
	return false
}

func keyOf(e broker.Lifecycle) heldKey {
	if e.Name == broker.MemberAdded || e.Name == broker.MemberRemoved {
		return heldKey{member: true, channel: e.Channel, userID: e.UserID}
	}
	return heldKey{channel: e.Channel}
}

// release sends a held event whose delay has passed, unless it was
// cancelled (or released by Close) meanwhile: the map, not the timer, says
// whether it is still held, so a timer that fires while its cancellation
// holds mu does nothing.
func (a *app) release(k heldKey, h *held) {
	a.mu.Lock()
	if a.held[k] != h {
		a.mu.Unlock()
		return
	}
	delete(a.held, k)
	full := a.enqueueLocked(h.name, h.raw)
	a.mu.Unlock()
	for _, ep := range full {
		a.d.warn("webhook: queue full, event dropped", "app", a.id, "endpoint", ep.name, "event", h.name)
	}
}

// releaseAllLocked queues every held event now (Close: the channels are
// being vacated for good). Queue-full drops are counted by enqueueLocked.
func (a *app) releaseAllLocked() {
	for k, h := range a.held {
		h.timer.Stop()
		delete(a.held, k)
		a.enqueueLocked(h.name, h.raw)
	}
}

// enqueueLocked appends raw to the queue of every endpoint that wants name
// and wakes its worker; it returns the endpoints whose queue was full (the
// event is dropped and counted for those) so the caller logs after
// unlocking.
func (a *app) enqueueLocked(name string, raw []byte) (full []*endpoint) {
	d := a.d
	now := time.Now()
	for _, ep := range a.endpoints {
		if !ep.wants[name] {
			continue
		}
		if ep.pending >= d.opts.MaxQueue {
			d.dropped.Add(1)
			full = append(full, ep)
			continue
		}
		ep.queue = append(ep.queue, queued{raw: raw, at: now})
		ep.pending++
		d.queued.Add(1)
		d.pending.Add(1)
		select {
		case ep.wake <- struct{}{}:
		default: // already awake or about to be
		}
	}
	return full
}
