// Package hub is the local registry of one app's channels on this node:
// which sockets are subscribed to what, presence members counted per user,
// and the last event of cache channels. Broadcast only enqueues the same
// pre-serialized bytes to every subscriber; it never blocks on a socket.
//
// Concurrency: a Hub is safe for concurrent use. Channels are spread over
// shards by name, each guarded by its own RWMutex; there is no global lock.
// Subscriber.Send is called with a shard lock held, so it must not block
// and must not call back into the Hub.
package hub

import (
	"hash/maphash"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/internal/pusher"
)

// Subscriber is one socket as the hub sees it.
type Subscriber interface {
	// SocketID is the Pusher socket id, used for exclusion.
	SocketID() string
	// Send enqueues a frame without blocking. The frame is shared by all
	// recipients and must not be modified.
	Send(frame []byte)
}

// Excluder is an optional part of a Subscriber: told of each frame it was
// excluded from (the sender of a client event, or the socket_id of an API
// publish: Laravel's toOthers), with the hub's lock held, so that a client
// tracking positions can move past it instead of seeing a gap. It must not
// block.
type Excluder interface {
	Excluded(channel string, frame []byte)
}

const shardCount = 64

// CacheTTL is how long a cache channel keeps its last event (Pusher: 30 min).
const CacheTTL = 30 * time.Minute

// Options configure a Hub; the zero value is a hub without limits that
// does not count subscriptions.
type Options struct {
	// MaxChannels bounds the distinct occupied channels; 0 means no bound.
	// Subscribe refuses a new channel past it (the server-to-user channels
	// of Join are counted but never refused: a sign-in cannot fail on it).
	MaxChannels int
	// CountSubscriptions records the non-presence channels whose
	// subscriber count changed, for FlushCounts.
	CountSubscriptions bool
}

// Hub holds one app's channels.
type Hub struct {
	seed     maphash.Seed
	shards   [shardCount]shard
	now      func() time.Time
	opts     Options
	channels atomic.Int64 // occupied channels, across shards
}

type shard struct {
	mu       sync.RWMutex
	channels map[string]*channel
	cache    map[string]cached
	dirty    map[string]struct{} // channels whose count changed since FlushCounts
}

type channel struct {
	subs    map[Subscriber]struct{}
	members map[string]*member // presence channels only
	counted bool               // count changes are recorded in dirty
}

type member struct {
	info    []byte
	sockets int
}

type cached struct {
	frame []byte
	at    time.Time
}

// New returns an empty hub.
func New(opts Options) *Hub {
	h := &Hub{seed: maphash.MakeSeed(), now: time.Now, opts: opts}
	for i := range h.shards {
		h.shards[i].channels = map[string]*channel{}
		h.shards[i].cache = map[string]cached{}
		h.shards[i].dirty = map[string]struct{}{}
	}
	return h
}

// ChannelCount is the number of occupied channels.
func (h *Hub) ChannelCount() int { return int(h.channels.Load()) }

// addChannel creates name's channel in sh (locked), or returns nil when the
// hub is at MaxChannels and enforce is set.
func (h *Hub) addChannel(sh *shard, name string, info pusher.ChannelInfo, enforce bool) *channel {
	if n := h.channels.Add(1); enforce && h.opts.MaxChannels > 0 && n > int64(h.opts.MaxChannels) {
		h.channels.Add(-1)
		return nil
	}
	ch := &channel{subs: map[Subscriber]struct{}{}}
	ch.counted = h.opts.CountSubscriptions && info.Kind != pusher.Presence && info.Kind != pusher.ServerToUser
	sh.channels[name] = ch
	return ch
}

func (h *Hub) shard(name string) *shard {
	return &h.shards[maphash.String(h.seed, name)%shardCount]
}

// SubscribeResult tells the caller what a subscription changed.
type SubscribeResult struct {
	AlreadySubscribed bool
	Occupied          bool // the channel had no subscribers before
	MemberAdded       bool // the user's first socket on a presence channel
	CacheMiss         bool // a cache channel had nothing to replay
}

// ErrPresenceFull is returned when a presence channel is at its member limit.
var ErrPresenceFull = pusher.Errorf(pusher.CodeUnauthorized, "presence channel is full")

// Subscribe adds s to name and, under the channel's lock so that no event
// can slip in between, sends s its subscription_succeeded (with the member
// list on presence channels), the cached event or cache miss, and announces
// a new presence member to the other subscribers. m is nil except on
// presence channels; maxMembers bounds distinct users there.
func (h *Hub) Subscribe(name string, info pusher.ChannelInfo, s Subscriber, m *pusher.Member, maxMembers int) (SubscribeResult, error) {
	sh := h.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ch := sh.channels[name]
	if ch != nil {
		if _, ok := ch.subs[s]; ok {
			return SubscribeResult{AlreadySubscribed: true}, nil
		}
	}
	if m != nil && ch != nil && ch.members[m.UserID] == nil && len(ch.members) >= maxMembers {
		return SubscribeResult{}, pusher.Errorf(pusher.CodeUnauthorized, "presence channel %s is full (%d members)", name, maxMembers)
	}
	var res SubscribeResult
	if ch == nil {
		if ch = h.addChannel(sh, name, info, true); ch == nil {
			return SubscribeResult{}, pusher.Errorf(pusher.CodeOverChannelLimit, "subscription to %s refused: the app is at its limit of %d channels", name, h.opts.MaxChannels)
		}
		res.Occupied = true
	}
	ch.subs[s] = struct{}{}
	if ch.counted {
		sh.dirty[name] = struct{}{}
	}
	if m == nil {
		s.Send(pusher.SubscriptionSucceeded(name, nil))
	} else {
		if ch.members == nil {
			ch.members = map[string]*member{}
		}
		mem := ch.members[m.UserID]
		if mem == nil {
			mem = &member{info: m.Info}
			ch.members[m.UserID] = mem
			res.MemberAdded = true
		}
		mem.sockets++
		s.Send(pusher.SubscriptionSucceeded(name, pusher.PresenceData(ch.memberList())))
		if res.MemberAdded {
			frame := pusher.MemberAdded(name, *m)
			for sub := range ch.subs {
				if sub != s {
					sub.Send(frame)
				}
			}
		}
	}
	if info.Cache {
		if c, ok := sh.cache[name]; ok && h.now().Sub(c.at) < CacheTTL {
			s.Send(c.frame)
		} else {
			s.Send(pusher.CacheMiss(name))
			res.CacheMiss = true
		}
	}
	return res, nil
}

// Join adds s to name without sending it anything (the server-to-user
// channel a sign-in implies).
func (h *Hub) Join(name string, s Subscriber) {
	sh := h.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ch := sh.channels[name]
	if ch == nil {
		ch = h.addChannel(sh, name, pusher.ChannelInfo{Kind: pusher.ServerToUser}, false)
	}
	ch.subs[s] = struct{}{}
}

// UnsubscribeResult tells the caller what an unsubscription changed.
type UnsubscribeResult struct {
	WasSubscribed bool
	Vacated       bool // the channel has no subscribers left
	MemberRemoved bool // the user's last socket left a presence channel
}

// Unsubscribe removes s from name; userID is the presence member it joined
// as ("" on other channels). The last socket of a user leaving a presence
// channel is announced to the remaining subscribers.
func (h *Hub) Unsubscribe(name string, s Subscriber, userID string) UnsubscribeResult {
	sh := h.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ch := sh.channels[name]
	if ch == nil {
		return UnsubscribeResult{}
	}
	if _, ok := ch.subs[s]; !ok {
		return UnsubscribeResult{}
	}
	res := UnsubscribeResult{WasSubscribed: true}
	delete(ch.subs, s)
	if mem := ch.members[userID]; mem != nil {
		mem.sockets--
		if mem.sockets == 0 {
			delete(ch.members, userID)
			res.MemberRemoved = true
			frame := pusher.MemberRemoved(name, userID)
			for sub := range ch.subs {
				sub.Send(frame)
			}
		}
	}
	if len(ch.subs) == 0 {
		delete(sh.channels, name)
		delete(sh.dirty, name)
		h.channels.Add(-1)
		res.Vacated = true
	} else if ch.counted {
		sh.dirty[name] = struct{}{}
	}
	return res
}

// CountChange is a channel's new subscription count.
type CountChange struct {
	Channel string
	Count   int
}

// FlushCounts sends pusher_internal:subscription_count to the subscribers
// of every channel whose count changed since the last call, and returns the
// changes (for the subscription_count webhook). Calling it periodically
// debounces the counts: a burst of joins costs one frame per subscriber
// per call, and the last count is always sent by the next call.
func (h *Hub) FlushCounts() []CountChange {
	var out []CountChange
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for name := range sh.dirty {
			ch := sh.channels[name]
			n := len(ch.subs) // dirty names are occupied: Unsubscribe forgets vacated ones
			frame := pusher.SubscriptionCount(name, n)
			for s := range ch.subs {
				s.Send(frame)
			}
			out = append(out, CountChange{Channel: name, Count: n})
		}
		clear(sh.dirty)
		sh.mu.Unlock()
	}
	return out
}

// Broadcast sends frame to every subscriber of name except the socket with
// id exclude ("" for none) and returns how many got it.
func (h *Hub) Broadcast(name string, frame []byte, exclude string) int {
	sh := h.shard(name)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.broadcastLocked(name, frame, exclude)
}

// BroadcastCached is Broadcast on a cache channel: frame also becomes the
// event replayed to later subscribers. Storing and sending happen under one
// lock so the cached event is always the last one subscribers saw.
func (h *Hub) BroadcastCached(name string, frame []byte, exclude string) int {
	sh := h.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.cache[name] = cached{frame: frame, at: h.now()}
	return sh.broadcastLocked(name, frame, exclude)
}

func (sh *shard) broadcastLocked(name string, frame []byte, exclude string) int {
	ch := sh.channels[name]
	if ch == nil {
		return 0
	}
	n := 0
	for s := range ch.subs {
		if exclude != "" && s.SocketID() == exclude {
			if x, ok := s.(Excluder); ok {
				x.Excluded(name, frame)
			}
			continue
		}
		s.Send(frame)
		n++
	}
	return n
}

// Cached returns the live cached event frame of name and its remaining
// time to live; ok is false when there is none.
func (h *Hub) Cached(name string) (frame []byte, ttl time.Duration, ok bool) {
	sh := h.shard(name)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	c, found := sh.cache[name]
	if age := h.now().Sub(c.at); found && age < CacheTTL {
		return c.frame, CacheTTL - age, true
	}
	return nil, 0, false
}

// IsSubscribed reports whether s is subscribed to name.
func (h *Hub) IsSubscribed(name string, s Subscriber) bool {
	sh := h.shard(name)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	ch := sh.channels[name]
	if ch == nil {
		return false
	}
	_, ok := ch.subs[s]
	return ok
}

// ChannelStats is what the HTTP API reports about a channel.
type ChannelStats struct {
	Name              string
	SubscriptionCount int
	UserCount         int
}

// Stats returns the stats of name; ok is false when it is not occupied.
func (h *Hub) Stats(name string) (ChannelStats, bool) {
	sh := h.shard(name)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	ch := sh.channels[name]
	if ch == nil {
		return ChannelStats{Name: name}, false
	}
	return ChannelStats{Name: name, SubscriptionCount: len(ch.subs), UserCount: len(ch.members)}, true
}

// Channels returns the stats of every occupied channel whose name starts
// with prefix, sorted by name.
func (h *Hub) Channels(prefix string) []ChannelStats {
	var out []ChannelStats
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for name, ch := range sh.channels {
			if strings.HasPrefix(name, prefix) && !strings.HasPrefix(name, pusher.PrefixServerToUser) {
				out = append(out, ChannelStats{Name: name, SubscriptionCount: len(ch.subs), UserCount: len(ch.members)})
			}
		}
		sh.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Members returns a presence channel's members sorted by user id.
func (h *Hub) Members(name string) []pusher.Member {
	sh := h.shard(name)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	ch := sh.channels[name]
	if ch == nil {
		return nil
	}
	return ch.memberList()
}

func (c *channel) memberList() []pusher.Member {
	out := make([]pusher.Member, 0, len(c.members))
	for id, m := range c.members {
		out = append(out, pusher.Member{UserID: id, Info: m.info})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out
}
