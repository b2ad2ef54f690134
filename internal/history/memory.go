// Package history is the single-node channel history: a broker.History
// kept in this process's memory, bounded per channel (events, age) and in
// total (bytes, oldest evicted first).
//
// Concurrency: a Memory is safe for concurrent use. Each channel has its
// own mutex, which orders its publishes and reads; channels are found
// through 64 sharded maps; one short mutex guards the node-wide queue of
// stored events (oldest first) that eviction follows. Lock order: shard
// before channel before queue.
//
// Delivery is flat-combined per channel: under the channel's mutex an
// Append numbers and stores its frame and adds it to the channel's pending
// list; the Append that finds nobody delivering becomes the channel's
// deliverer and, outside the mutex, calls deliver for every pending frame
// in offset order until the list is empty. Other publishers return at once
// instead of waiting for a fan-out. A Read is a step in the same list, so
// it sees exactly the frames delivered before it. Deliver callbacks run
// with no Memory lock held; Reader callbacks run with the channel's mutex
// held. Neither may call back into the Memory.
//
// Idempotency keys (AppendOnce) are kept per channel beside its events
// and dropped with them, so a key answers for its event exactly as long
// as the history holds that event, and costs O(1) per publish.
package history

import (
	"crypto/rand"
	"encoding/base32"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/pusher"
)

// DefaultMaxBytes is the node-wide cap on history memory when none is set.
const DefaultMaxBytes = 64 << 20

// Memory cost accounting, in bytes. An event costs its frame (its
// allocated capacity: the publish allocated it once for all recipients) plus
// eventOverhead (its broker.Event in the channel's list, 40 bytes, and its
// entry in the eviction queue, 24); a channel with history costs
// channelOverhead (state, map entry, epoch string) while it exists. An
// event published with an idempotency key also costs the key's bytes plus
// keyCost (its entry in the channel's key map, about 40 bytes with the
// map's own overhead, and in the channel's key queue, 24).
const (
	eventCost       = 40
	refCost         = 24
	keyCost         = 64
	channelOverhead = 256
)

// EventOverhead is the memory an event costs beyond its frame.
const EventOverhead = eventCost + refCost

// KeyOverhead is the memory an idempotency key costs beyond its bytes.
const KeyOverhead = keyCost

const shardCount = 64

// Options configure a Memory; zero fields take defaults.
type Options struct {
	// MaxBytes caps all history on this node (frames plus overhead);
	// past it the oldest events, of any channel, are evicted. 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// DeliverError is told about a frame whose deliver failed after its
	// own Append had returned (another publisher was delivering it); nil
	// drops such errors. An Append that delivers its own frame returns
	// the error instead.
	DeliverError func(app, channel string, pos broker.Position, err error)
}

// Memory is the in-process history store.
type Memory struct {
	seed     maphash.Seed
	shards   [shardCount]shard
	maxBytes int64
	now      func() time.Time
	onErr    func(app, channel string, pos broker.Position, err error)
	prefix   string        // random per store: a restart changes every epoch
	gen      atomic.Uint64 // channel incarnations, for epochs
	bytes    atomic.Int64  // accounted memory

	qmu   sync.Mutex
	queue []ref // every stored event, channel creation and keep-alive, oldest first
	head  int
}

var _ broker.History = (*Memory)(nil)

type key struct{ app, channel string }

type shard struct {
	mu       sync.RWMutex
	channels map[key]*chanState
}

// chanState is one channel's history; mu orders its publishes and reads.
type chanState struct {
	key   key
	mu    sync.Mutex
	epoch string
	last  uint64         // offset of the last publish
	evs   []broker.Event // stored events, oldest first, offsets contiguous
	refs  int            // queue entries pointing here
	dead  bool           // removed from its shard: look it up again
	keep  int64          // expiry of the newest queue entry (unix nanos)

	// Idempotency keys of stored events: keys maps a key to its event's
	// offset, and keyq lists them in offset order, so that dropping the
	// oldest events drops their keys in O(1) each. Both are nil until a
	// keyed publish; they never hold more entries than evs.
	keys map[string]uint64
	keyq []keyRef

	// The channel's delivery order. pending is non-empty only while
	// delivering: the deliverer clears the flag when it finds the list
	// empty. spare is the deliverer's last batch, reused.
	pending    []step
	spare      []step
	delivering bool
}

// step is one entry in a channel's delivery order: a numbered frame to
// deliver, or (turn non-nil) a Read waiting for its place.
type step struct {
	pos     broker.Position
	frame   []byte
	deliver broker.Deliver
	turn    *turn
}

// turn hands a waiting Read its place in the delivery order: the
// deliverer closes now and waits for done.
type turn struct{ now, done chan struct{} }

// keyRef is an idempotency key in a channel's key queue.
type keyRef struct {
	off uint64
	key string
}

// maxSpare bounds the batch buffer a channel keeps between bursts.
const maxSpare = 256

// ref is an eviction-queue entry: everything of ch up to offset off
// expires at expires (unix nanos).
type ref struct {
	ch      *chanState
	off     uint64
	expires int64
}

// NewMemory returns an empty store.
func NewMemory(opts Options) *Memory {
	m := &Memory{seed: maphash.MakeSeed(), maxBytes: opts.MaxBytes, now: opts.Now, onErr: opts.DeliverError}
	if m.maxBytes <= 0 {
		m.maxBytes = DefaultMaxBytes
	}
	if m.now == nil {
		m.now = time.Now
	}
	var b [5]byte
	_, _ = rand.Read(b[:])
	m.prefix = strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
	for i := range m.shards {
		m.shards[i].channels = map[key]*chanState{}
	}
	return m
}

// Bytes is the memory the store accounts for now.
func (m *Memory) Bytes() int64 { return m.bytes.Load() }

func (m *Memory) shard(k key) *shard {
	var h maphash.Hash
	h.SetSeed(m.seed)
	h.WriteString(k.app)
	h.WriteByte(0)
	h.WriteString(k.channel)
	return &m.shards[h.Sum64()%shardCount]
}

// lock returns k's channel state, created when missing, with its mutex held.
func (m *Memory) lock(k key, lim broker.HistoryLimits, now int64) *chanState {
	sh := m.shard(k)
	for {
		sh.mu.RLock()
		ch := sh.channels[k]
		sh.mu.RUnlock()
		if ch == nil {
			ch = m.create(sh, k, lim, now)
		}
		ch.mu.Lock()
		if !ch.dead {
			return ch
		}
		ch.mu.Unlock()
	}
}

func (m *Memory) create(sh *shard, k key, lim broker.HistoryLimits, now int64) *chanState {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ch := sh.channels[k]; ch != nil {
		return ch
	}
	ch := &chanState{key: k, epoch: m.prefix + strconv.FormatUint(m.gen.Add(1), 36)}
	sh.channels[k] = ch
	m.bytes.Add(channelOverhead + refCost)
	// The creation is queued too: a channel whose events all left is
	// forgotten once its last entry expires.
	ch.refs++
	ch.keep = now + ttl(lim)
	m.push(ref{ch: ch, off: 0, expires: ch.keep})
	return ch
}

// Append is AppendOnce without an idempotency key.
func (m *Memory) Append(app, channel string, lim broker.HistoryLimits, frame []byte, deliver broker.Deliver) (broker.Position, error) {
	pos, _, err := m.AppendOnce(app, channel, lim, "", frame, deliver)
	return pos, err
}

// AppendOnce implements broker.History. The frame is numbered, stored and
// queued under the channel's mutex; the caller then delivers the queue
// only if nobody else is (see the package doc), so it never waits for
// another publisher's fan-out. The key is looked up under the
// channel's mutex after the channel is trimmed (so an event that has left
// history no longer answers for its key) and before numbering, so of two
// concurrent publishes with one key exactly one is numbered.
func (m *Memory) AppendOnce(app, channel string, lim broker.HistoryLimits, idem string, frame []byte, deliver broker.Deliver) (broker.Position, bool, error) {
	now := m.now().UnixNano()
	ch := m.lock(key{app, channel}, lim, now)
	if idem != "" {
		m.trimLocked(ch, lim, now, 0)
		if off, ok := ch.keys[idem]; ok {
			pos := broker.Position{Epoch: ch.epoch, Offset: off}
			ch.mu.Unlock()
			m.reclaim(now)
			return pos, true, nil
		}
	}
	m.trimLocked(ch, lim, now, 1)
	pos := broker.Position{Epoch: ch.epoch, Offset: ch.last + 1}
	full := pusher.AppendPosition(frame, ch.epoch, pos.Offset)
	ch.last = pos.Offset
	ch.evs = append(ch.evs, broker.Event{Offset: pos.Offset, Frame: full, Time: now})
	ch.refs++
	cost := int64(cap(full)) + EventOverhead
	if idem != "" {
		if ch.keys == nil {
			ch.keys = map[string]uint64{}
		}
		ch.keys[idem] = pos.Offset
		ch.keyq = append(ch.keyq, keyRef{off: pos.Offset, key: idem})
		cost += int64(len(idem)) + keyCost
	}
	m.bytes.Add(cost)
	ch.keep = now + ttl(lim)
	m.push(ref{ch: ch, off: pos.Offset, expires: ch.keep})
	ch.pending = append(ch.pending, step{pos: pos, frame: full, deliver: deliver})
	lead := !ch.delivering
	ch.delivering = true
	ch.mu.Unlock()
	m.reclaim(now)
	if !lead {
		return pos, false, nil
	}
	return pos, false, m.drain(ch)
}

// drain runs ch's pending steps in order, outside ch.mu, until none is
// left, then clears ch.delivering; the caller set it. The caller found the
// list empty, so the first step is its own frame: drain returns that
// frame's delivery error and reports the others' to DeliverError.
func (m *Memory) drain(ch *chanState) error {
	var own error
	first := true
	ch.mu.Lock()
	for len(ch.pending) > 0 {
		batch := ch.pending
		ch.pending, ch.spare = ch.spare, nil
		ch.mu.Unlock()
		for i := range batch {
			err := batch[i].run()
			if first {
				own, first = err, false
			} else if err != nil && m.onErr != nil {
				m.onErr(ch.key.app, ch.key.channel, batch[i].pos, err)
			}
			batch[i] = step{}
		}
		ch.mu.Lock()
		if cap(batch) <= maxSpare {
			ch.spare = batch[:0]
		}
	}
	ch.delivering = false
	gone := ch.refs == 0 && !ch.dead
	ch.mu.Unlock()
	if gone { // eviction skipped it while it was delivering
		m.forget(ch)
	}
	return own
}

// run delivers st's frame, or gives a waiting Read its turn and waits
// until it is done.
func (st *step) run() error {
	if st.turn == nil {
		return st.deliver(st.pos, st.frame)
	}
	close(st.turn.now)
	<-st.turn.done
	return nil
}

// Read implements broker.History. It runs at a point of the channel's
// delivery order: every event up to the position fn is given has been
// delivered, and none after it has started, so a subscriber added by fn
// gets the rest live. When a deliverer is busy the Read queues behind the
// frames already numbered and waits for its turn.
//
// A Read never creates a channel: reading an unknown name costs nothing,
// so nobody can push real history out of the memory cap by reading made-up
// channels. An unknown channel is at the empty position (epoch "", offset
// 0); fn runs under the shard's read lock then, so the channel's first
// publish (which creates it under the write lock) waits for fn. A Read of
// a channel keeps it alive (see keepAlive), so a quiet channel that is
// being polled keeps its epoch.
func (m *Memory) Read(app, channel string, lim broker.HistoryLimits, since broker.Position, fn broker.Reader) {
	now := m.now().UnixNano()
	ch := m.lookup(key{app, channel}, since, fn)
	if ch == nil {
		return
	}
	m.keepAlive(ch, lim, now)
	if ch.delivering {
		m.readInTurn(ch, lim, now, since, fn)
	} else {
		m.readLocked(ch, lim, now, since, ch.last, fn)
	}
	ch.mu.Unlock()
	m.reclaim(now)
}

// lookup returns k's channel with its mutex held or, when there is none,
// runs a read of the empty position under the shard's read lock and
// returns nil.
func (m *Memory) lookup(k key, since broker.Position, fn broker.Reader) *chanState {
	sh := m.shard(k)
	for {
		sh.mu.RLock()
		ch := sh.channels[k]
		if ch == nil {
			fn(broker.Position{}, nil, since == broker.Position{})
			sh.mu.RUnlock()
			return nil
		}
		sh.mu.RUnlock()
		ch.mu.Lock()
		if !ch.dead {
			return ch
		}
		ch.mu.Unlock()
	}
}

// keepAlive queues one more entry for ch when its newest one expires
// within half a TTL, ch.mu held: the channel (its epoch and last offset)
// then outlives its events while somebody reads it, instead of coming back
// under a new epoch that would tell every reader history was lost.
func (m *Memory) keepAlive(ch *chanState, lim broker.HistoryLimits, now int64) {
	life := ttl(lim)
	if ch.keep-now >= life/2 {
		return
	}
	ch.refs++
	ch.keep = now + life
	m.bytes.Add(refCost)
	m.push(ref{ch: ch, off: 0, expires: ch.keep})
}

// readInTurn queues a Read behind ch's pending frames (ch.mu held on entry
// and on return) and runs it when the deliverer reaches it.
func (m *Memory) readInTurn(ch *chanState, lim broker.HistoryLimits, now int64, since broker.Position, fn broker.Reader) {
	t := &turn{now: make(chan struct{}), done: make(chan struct{})}
	upto := ch.last // delivered by the time our turn comes
	ch.pending = append(ch.pending, step{turn: t})
	ch.mu.Unlock()
	<-t.now
	defer close(t.done) // the deliverer waits, even if fn panics
	ch.mu.Lock()
	m.readLocked(ch, lim, now, since, upto, fn)
}

// readLocked calls fn for a read of the events after since, when upto is
// the last offset delivered; ch.mu held. The channel is not dead: it was
// locked live, or is delivering (which keeps it).
func (m *Memory) readLocked(ch *chanState, lim broker.HistoryLimits, now int64, since broker.Position, upto uint64, fn broker.Reader) {
	m.trimLocked(ch, lim, now, 0)
	cur := broker.Position{Epoch: ch.epoch, Offset: upto}
	if since == (broker.Position{}) {
		// The empty position: a reader that has seen nothing of the
		// channel (it was unknown when the reader looked) resumes from
		// the start of this epoch, if history still holds it.
		since.Epoch = ch.epoch
	}
	first := ch.last + 1 // the oldest offset still held
	if len(ch.evs) > 0 {
		first = ch.evs[0].Offset
	}
	switch {
	case since.Epoch != ch.epoch || since.Offset > upto:
		fn(cur, nil, false)
	case since.Offset == upto:
		fn(cur, nil, true)
	case since.Offset+1 < first:
		fn(cur, nil, false)
	default:
		// evs is contiguous up to ch.last >= upto.
		fn(cur, ch.evs[since.Offset+1-first:upto+1-first], true)
	}
}

// trimLocked drops ch's events older than the TTL, and the oldest ones
// past MaxEvents-room, ch.mu held.
func (m *Memory) trimLocked(ch *chanState, lim broker.HistoryLimits, now int64, room int) {
	n := 0
	over := len(ch.evs) + room - max(lim.MaxEvents, 1)
	for n < len(ch.evs) && (n < over || lim.TTL > 0 && now-ch.evs[n].Time >= int64(lim.TTL)) {
		n++
	}
	m.dropLocked(ch, n)
}

// dropLocked forgets ch's n oldest events, ch.mu held.
func (m *Memory) dropLocked(ch *chanState, n int) {
	if n == 0 {
		return
	}
	var freed int64
	upto := ch.evs[n-1].Offset
	for i := range n {
		freed += int64(cap(ch.evs[i].Frame)) + eventCost
		ch.evs[i] = broker.Event{}
	}
	ch.evs = ch.evs[n:]
	if len(ch.evs) == 0 {
		ch.evs = nil
	}
	m.bytes.Add(-freed - dropKeysLocked(ch, upto))
}

// dropKeysLocked forgets the idempotency keys of ch's events up to offset
// upto (they left history) and returns the memory freed; ch.mu held.
func dropKeysLocked(ch *chanState, upto uint64) int64 {
	var freed int64
	i := 0
	for i < len(ch.keyq) && ch.keyq[i].off <= upto {
		k := ch.keyq[i]
		if ch.keys[k.key] == k.off {
			delete(ch.keys, k.key)
		}
		freed += int64(len(k.key)) + keyCost
		ch.keyq[i] = keyRef{}
		i++
	}
	if i == 0 {
		return 0
	}
	ch.keyq = ch.keyq[i:]
	if len(ch.keyq) == 0 {
		ch.keyq, ch.keys = nil, nil // a map never shrinks: let it go
	}
	return freed
}

// ttl is lim's TTL in nanos; 0 (no age bound) keeps events until they
// are pushed out by MaxEvents or the byte cap.
func ttl(lim broker.HistoryLimits) int64 {
	if lim.TTL <= 0 {
		return 1 << 62
	}
	return int64(lim.TTL)
}

func (m *Memory) push(r ref) {
	m.qmu.Lock()
	m.queue = append(m.queue, r)
	m.qmu.Unlock()
}

// pop removes the oldest queue entry if it has expired or the store is
// over its cap.
func (m *Memory) pop(now int64) (ref, bool) {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	if m.head == len(m.queue) {
		return ref{}, false
	}
	r := m.queue[m.head]
	if r.expires > now && m.bytes.Load() <= m.maxBytes {
		return ref{}, false
	}
	m.queue[m.head] = ref{}
	m.head++
	if m.head == len(m.queue) {
		m.queue, m.head = m.queue[:0], 0
	} else if m.head >= 1024 && m.head*2 >= len(m.queue) {
		m.queue = m.queue[:copy(m.queue, m.queue[m.head:])]
		m.head = 0
	}
	return r, true
}

// reclaim applies expired and over-cap queue entries, oldest first. The
// queue is in publish order, so its head is always the oldest history of
// the whole node; with few apps whose TTLs differ an entry may wait behind
// a longer-lived one, which only delays freeing it (reads still filter by
// age).
func (m *Memory) reclaim(now int64) {
	for {
		r, ok := m.pop(now)
		if !ok {
			return
		}
		m.bytes.Add(-refCost)
		m.release(r)
	}
}

// release drops r.ch's events up to r.off and forgets the channel when no
// queue entry points to it any more.
func (m *Memory) release(r ref) {
	ch := r.ch
	ch.mu.Lock()
	n := 0
	for n < len(ch.evs) && ch.evs[n].Offset <= r.off {
		n++
	}
	m.dropLocked(ch, n)
	ch.refs--
	gone := ch.refs == 0 && !ch.delivering
	ch.mu.Unlock()
	if gone {
		m.forget(ch)
	}
}

// forget removes ch from its shard when no queue entry points to it and it
// is not delivering (a delivering channel is forgotten when its deliverer
// finishes: its pending frames must not race a new incarnation's).
func (m *Memory) forget(ch *chanState) {
	sh := m.shard(ch.key)
	sh.mu.Lock()
	ch.mu.Lock()
	if ch.refs == 0 && !ch.dead && !ch.delivering {
		ch.dead = true
		delete(sh.channels, ch.key)
		m.bytes.Add(-channelOverhead) // evs is empty: each event had its own entry
	}
	ch.mu.Unlock()
	sh.mu.Unlock()
}
