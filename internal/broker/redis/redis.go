// Package redis is the cluster engine on Redis: one Engine per Herald
// node is both its broker.Broker and its broker.History, so that several
// nodes sharing one redis-server deliver every publish to the subscribers
// of every node exactly once, in per-channel order, with history offsets
// given once for the cluster.
//
// How (centrifuge's approach, on one Redis):
//
//   - Every publish is one PUBLISH of an envelope (app, channel, exclude,
//     cache flag, frame) on the bus channel "<prefix>:bus". Every node,
//     the publisher included, receives it on its one subscriber connection
//     and hands it to its Handler, so a node's delivery order is Redis's
//     order. The frame is serialized once, by the publishing node.
//   - A publish to a channel with history is one Lua script (append.lua,
//     EVALSHA) that checks the idempotency key, takes the channel's next
//     offset, starts a new epoch when the channel's history is gone,
//     appends the position to the frame, XADDs it to the channel's stream
//     (exact MAXLEN), refreshes the TTL, and PUBLISHes it — atomically, so
//     offsets are published in order whichever node numbered them.
//   - A Read (a resume, a position, an HTTP poll) is one script
//     (read.lua) that reads the position and the events after since and,
//     in the same atomic step, PUBLISHes a read marker to this node's own
//     channel "<prefix>:node:<id>" on the same subscriber connection.
//     Redis writes a connection's pub/sub messages in the order it ran the
//     commands, so when this node's subscriber reaches the marker it has
//     delivered exactly the channel's events up to the position read, and
//     none after: the Reader runs right there (the channel's delivery
//     waits for it), which is the History contract's "at a point of the
//     channel's delivery order" — a client resuming on another node than
//     the one it was on gets exactly what it missed, then live events.
//
// Bounds: each channel's stream holds at most MaxEvents events (exact
// trimming) and every key of a channel expires TTL after its last publish
// (a channel being read keeps its epoch a TTL longer, like the memory
// store's keep-alive); events older than the TTL are not served even while
// the stream still holds them. There is no node-wide byte cap as in the
// memory store (history.max_bytes): Redis's memory is MaxEvents × frame
// size × channels, bounded in time by the TTL; size Redis (maxmemory)
// for it. With a TTL of 0 a channel's keys never expire.
//
// One subscriber connection per node: everything rests on Redis sending
// one connection's messages in execution order. Redis Cluster (sharded
// pub/sub) is not supported. Messages published while a node's subscriber
// is disconnected are not delivered to that node's clients (they resume
// from history); the loss is logged.
//
// Concurrency: an Engine is safe for concurrent use. One goroutine reads
// the subscriber connection and routes each envelope, by a hash of its
// app and channel, to one of a few worker goroutines that call the
// Handler; a channel always maps to one worker, which keeps its order.
// A Read waiting for its marker holds no lock.
package redis

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base32"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/herald-ws/herald/internal/broker"
)

// DefaultPrefix starts every Redis key and channel name when none is set.
const DefaultPrefix = "herald"

// Options configure an Engine; zero fields take defaults.
type Options struct {
	// URL is redis://[user:password@]host:port[/db] or rediss:// (TLS).
	URL string
	// Prefix starts every key and channel name, so that several Herald
	// clusters (or Reverb and Herald) can share one Redis. "" means
	// DefaultPrefix.
	Prefix string
	// Log gets the engine's failures (connection lost, restored); nil
	// discards them.
	Log *slog.Logger
	// Now is the clock history ages are measured with (tests); nil means
	// Redis's own clock, the same for every node.
	Now func() time.Time
	// Timeout bounds each Redis command made without a caller's deadline
	// (history appends, reads) and how long a Read waits for its marker;
	// 0 means 5 s.
	Timeout time.Duration
	// Workers is how many goroutines deliver received messages (each
	// channel always on the same one); 0 means 8.
	Workers int
}

// Engine is one node's connection to the Redis cluster engine: its
// Broker and its History.
type Engine struct {
	client  *goredis.Client
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	prefix  string
	bus     string // the channel every publish goes to
	self    string // this node's marker channel
	epochs  string // random per Engine: epochs it starts are unique
	gen     atomic.Uint64
	seed    maphash.Seed

	handler atomic.Pointer[broker.Handler]

	mu      sync.Mutex
	waiters map[uint64]*turn // Reads waiting for their marker, by token
	token   uint64

	sub    *subscriber
	closed atomic.Bool
}

var (
	_ broker.Broker    = (*Engine)(nil)
	_ broker.History   = (*Engine)(nil)
	_ broker.Publisher = (*Engine)(nil)
)

//go:embed append.lua
var appendSource string

//go:embed read.lua
var readSource string

var (
	appendScript = goredis.NewScript(appendSource)
	readScript   = goredis.NewScript(readSource)
)

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("redis engine closed")

// New connects to Redis, subscribes this node and loads the scripts. It
// fails when Redis cannot be reached within the timeout, so a wrong URL
// stops Herald at start; once running, a lost connection is retried for
// ever (see Ready).
func New(opts Options) (*Engine, error) {
	ro, err := goredis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	e := &Engine{
		log:     opts.Log,
		now:     opts.Now,
		timeout: opts.Timeout,
		prefix:  opts.Prefix,
		seed:    maphash.MakeSeed(),
		waiters: map[uint64]*turn{},
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.timeout <= 0 {
		e.timeout = 5 * time.Second
	}
	if e.prefix == "" {
		e.prefix = DefaultPrefix
	}
	var b [10]byte
	_, _ = rand.Read(b[:])
	id := strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
	e.epochs = id[:8]
	e.bus, e.self = e.prefix+":bus", e.prefix+":node:"+id
	e.client = goredis.NewClient(ro)
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	if err := e.load(ctx); err != nil {
		_ = e.client.Close()
		return nil, fmt.Errorf("redis at %s: %w", ro.Addr, err)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = 8
	}
	if e.sub, err = e.subscribe(ctx, workers); err != nil {
		_ = e.client.Close()
		return nil, fmt.Errorf("redis at %s: subscribe: %w", ro.Addr, err)
	}
	return e, nil
}

// load loads the scripts, so that EVALSHA finds them (a Redis restart
// forgets them; Script.Run then falls back to EVAL, which loads them).
func (e *Engine) load(ctx context.Context) error {
	for _, s := range []*goredis.Script{appendScript, readScript} {
		if err := s.Load(ctx, e.client).Err(); err != nil {
			return err
		}
	}
	return nil
}

// SetHandler implements broker.Broker.
func (e *Engine) SetHandler(h broker.Handler) { e.handler.Store(&h) }

// Publish implements broker.Broker: one PUBLISH on the bus; this node's
// Handler gets m when the subscriber receives it, like every other node's.
func (e *Engine) Publish(ctx context.Context, m broker.Message) error {
	if e.closed.Load() {
		return ErrClosed
	}
	payload := messageHeader(m) + string(m.Frame)
	if err := e.client.Publish(ctx, e.bus, payload).Err(); err != nil {
		return fmt.Errorf("redis publish: %w", err)
	}
	return nil
}

// Ready reports whether the engine is usable: nil while this node's
// subscriber is connected, else why not (for /ready).
func (e *Engine) Ready() error {
	if e.closed.Load() {
		return ErrClosed
	}
	return e.sub.health()
}

// Close stops delivery, releases waiting Reads and closes the
// connections.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.sub.stop()
	e.mu.Lock()
	waiting := e.waiters
	e.waiters = map[uint64]*turn{}
	e.mu.Unlock()
	for _, t := range waiting {
		close(t.cancel)
	}
	return e.client.Close()
}

// keys are the Redis keys of a channel's history. The hash tag keeps a
// channel's keys in one slot (what a script's keys need on a cluster).
func (e *Engine) keys(app, channel string) (meta, stream, idem string) {
	base := e.prefix + ":{" + app + ":" + channel + "}:"
	return base + "m", base + "s", base + "k"
}

// newEpoch names a channel's history when this node starts it: unique in
// the cluster (a random per-node part) and short.
func (e *Engine) newEpoch() string {
	return e.epochs + strconv.FormatUint(e.gen.Add(1), 36)
}

// nowArg is the clock argument of the scripts: "" lets Redis use its own.
func (e *Engine) nowArg() string {
	if e.now == nil {
		return ""
	}
	return strconv.FormatInt(e.now().UnixMicro(), 10)
}

// deliver hands a received message to the Handler.
func (e *Engine) deliver(m broker.Message) {
	if h := e.handler.Load(); h != nil {
		(*h)(m)
	}
}
