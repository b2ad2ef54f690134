package broker

import (
	"context"
	"time"
)

// Position is a place in a channel's history: the epoch names one unbroken
// run of offsets (a new epoch means the history behind older offsets was
// lost), and Offset is the last event's offset in it (0 before the first).
type Position struct {
	Epoch  string
	Offset uint64
}

// Event is one stored event: its offset and its frame exactly as it was
// delivered (epoch and offset included). Frame is shared and read-only.
type Event struct {
	Offset uint64
	Frame  []byte
	Time   int64 // unix nanos of the publish
}

// HistoryLimits bound one channel's history: at most MaxEvents events, none
// older than TTL. They come from the channel's app and are passed on every
// call so a store shared by apps (or nodes) needs no configuration of its own.
type HistoryLimits struct {
	MaxEvents int
	TTL       time.Duration
}

// Deliver hands a finished frame (offset included) on to subscribers.
// History calls it in the channel's offset order: each call starts after
// the previous frame's returned. It may run on another publisher's
// goroutine after its own AppendOnce returned, so it must not depend on
// anything that ends with that call (a request's context). An error does
// not give the offset back: the frame stays stored (a resume replays it)
// and later frames keep their numbers.
type Deliver func(pos Position, frame []byte) error

// Reader is called by History.Read at a point of the channel's delivery
// order, while its deliveries wait: cur is the channel's position there
// (every event up to cur delivered, none after it started), and when ok
// events are the stored events after the requested position up to cur,
// oldest first (nil when there are none). events is only valid during the
// call; its frames may be kept.
type Reader func(cur Position, events []Event, ok bool)

// History is the channel-history seam: it numbers every publish to a
// channel and keeps a bounded tail of them, so a subscriber can resume
// after a disconnect without a gap and without a duplicate. The in-memory
// store (internal/history) is the single-node implementation; a shared
// one (Redis streams, NATS JetStream) plugs in here for cluster mode.
//
// Implementations are safe for concurrent use. AppendOnce and Read calls for
// one channel are ordered (that is the channel's order: offsets, and the
// points where reads happen); an AppendOnce need not wait for an earlier
// one's delivery, only for its numbering. Calls for different channels
// never wait for each other beyond short bookkeeping.
type History interface {
	// AppendOnce gives frame (a JSON object whose last byte is '}') the
	// channel's next offset, appends ,"epoch":…,"offset":N to it — in
	// place when frame has the capacity, so the caller must not reuse it —
	// stores it and has deliver called with it in offset order, before
	// any later Read of the channel runs. It returns the frame's position;
	// the error is deliver's when the caller delivered its own frame (a
	// frame delivered by another caller has its error reported elsewhere).
	//
	// A History that is also the cluster's Broker (a Publisher: Redis)
	// never calls deliver: it publishes the finished frame itself, in the
	// same atomic step that numbers it, and every node's Handler gets it
	// in offset order — this node's before any later Read of the channel
	// on this node runs. Callers that know the message's Exclude and
	// Cache use Publisher.AppendPublish instead, which carries them.
	//
	// With a non-empty key the publish is idempotent: when the channel's
	// history still holds an event appended with the same key, frame is
	// neither stored nor delivered, and the answer is that event's
	// position with dup true. Keys are per app and channel and live
	// exactly as long as their event stays in history (MaxEvents, TTL,
	// memory cap).
	AppendOnce(app, channel string, lim HistoryLimits, key string, frame []byte, deliver Deliver) (pos Position, dup bool, err error)
	// Read calls fn, in the channel's order, with the channel's delivered
	// position and the events after since. ok is false (and events nil)
	// when since cannot be served exactly: another epoch, an offset ahead
	// of the channel's, or events after it already dropped.
	//
	// A channel that has no history (never published to, or forgotten
	// after its events expired) is at the zero Position (epoch "", offset
	// 0), and reading it must not store anything. The zero Position as
	// since means "nothing seen yet": it is served from the start of the
	// channel's epoch (offset 1) while history still holds that start.
	Read(app, channel string, lim HistoryLimits, since Position, fn Reader)
}

// Publisher is a History that is also the cluster's Broker: the engine
// numbers, stores and publishes a message in one atomic step, so the
// order every node delivers a channel in is the order its offsets were
// given, whichever node published. A node publishes to a channel with
// history through AppendPublish when its History is a Publisher, and
// through History.AppendOnce with the Broker as deliver otherwise.
type Publisher interface {
	History
	// AppendPublish is AppendOnce for m (m.Frame is numbered as frame
	// is there), delivered through every node's Handler with m's
	// Exclude and Cache instead of through a deliver callback. The error
	// is the engine's: m was maybe not numbered and not delivered (retry
	// with the same key to publish it exactly once).
	AppendPublish(ctx context.Context, m Message, lim HistoryLimits, key string) (pos Position, dup bool, err error)
}
