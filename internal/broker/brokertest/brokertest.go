// Package brokertest is the conformance suite every engine (a
// broker.Broker with its broker.History) must pass: the memory engine on
// one node, Redis on one and several. Each engine's own test calls Run
// with a function that starts a cluster of its nodes.
//
// What it checks: per-channel order under concurrent publishers (offsets
// strictly +1 on every node), exactly-once delivery on every node, Exclude
// and Cache passed through, idempotency keys, Read's answers (since, the
// zero position, another epoch, ahead, trimmed, expired) and that a Read
// runs at a point of the reading node's delivery order.
package brokertest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/pusher"
)

// Node is one node's engine: its broker and its history (the same value
// for a cluster engine). The suite sets the broker's handler.
type Node struct {
	Broker  broker.Broker
	History broker.History
}

// Start starts n nodes sharing one engine, their history ages measured
// with now, and stops them when t ends. An engine that cannot run n nodes
// (memory: only one) returns nil, and the test needing them is skipped.
type Start func(t *testing.T, n int, now func() time.Time) []Node

// Clock is a settable clock for the TTL tests.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock at the current time (Redis's key expiry runs
// on real time; the ages the suite checks run on this one).
func NewClock() *Clock {
	c := &Clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Add moves the clock forward.
func (c *Clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// Publish publishes m the way a node does: through the engine in one step
// when its History is a broker.Publisher, else numbered by the History and
// delivered through the Broker. Channels without history (hist false) go
// straight to the Broker.
func Publish(ctx context.Context, n Node, m broker.Message, hist bool, lim broker.HistoryLimits, key string) (broker.Position, bool, error) {
	if !hist {
		return broker.Position{}, false, n.Broker.Publish(ctx, m)
	}
	if p, ok := n.History.(broker.Publisher); ok {
		return p.AppendPublish(ctx, m, lim, key)
	}
	return n.History.AppendOnce(m.App, m.Channel, lim, key, m.Frame, func(_ broker.Position, frame []byte) error {
		m.Frame = frame
		return n.Broker.Publish(ctx, m)
	})
}

// Recorder is a node's handler: it keeps every message delivered, and
// each channel's last delivered offset.
type Recorder struct {
	mu     sync.Mutex
	msgs   []broker.Message
	last   map[string]uint64 // channel -> last offset delivered
	notify chan struct{}
}

// NewRecorder returns an empty recorder; install it with
// Broker.SetHandler(r.Handle).
func NewRecorder() *Recorder {
	return &Recorder{last: map[string]uint64{}, notify: make(chan struct{}, 1)}
}

// Handle is the broker.Handler.
func (r *Recorder) Handle(m broker.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	if _, off, ok := pusher.FramePosition(m.Frame); ok {
		r.last[m.Channel] = off
	}
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// Last is channel's last delivered offset.
func (r *Recorder) Last(channel string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[channel]
}

// Messages is a copy of what was delivered so far.
func (r *Recorder) Messages() []broker.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// Await waits until at least n messages were delivered, failing t after
// a hang guard of 10 s.
func (r *Recorder) Await(t testing.TB, n int) []broker.Message {
	t.Helper()
	msgs, ok := r.AwaitFor(t, n, 10*time.Second)
	if !ok {
		t.Fatalf("%d messages delivered after 10 s, want %d", len(msgs), n)
	}
	return msgs
}

// AwaitFor waits up to d until at least n messages were delivered, and
// returns them and whether there were n.
func (r *Recorder) AwaitFor(t testing.TB, n int, d time.Duration) ([]broker.Message, bool) {
	t.Helper()
	guard := time.After(d)
	for {
		if msgs := r.Messages(); len(msgs) >= n {
			return msgs, true
		}
		select {
		case <-r.notify:
		case <-guard:
			return r.Messages(), false
		}
	}
}

const app = "app"

// Run runs the suite against the engine start starts.
func Run(t *testing.T, start Start) {
	t.Run("Order", func(t *testing.T) { testOrder(t, start, 1) })
	t.Run("OrderAcrossNodes", func(t *testing.T) { testOrder(t, start, 3) })
	t.Run("ExcludeAndCache", func(t *testing.T) { testExcludeAndCache(t, start) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, start) })
	t.Run("Read", func(t *testing.T) { testRead(t, start) })
	t.Run("ReadTrimmed", func(t *testing.T) { testReadTrimmed(t, start) })
	t.Run("TTL", func(t *testing.T) { testTTL(t, start) })
	t.Run("ReadInDeliveryOrder", func(t *testing.T) { testReadInOrder(t, start) })
}

// cluster starts n nodes, each with a recorder, or skips.
func cluster(t *testing.T, start Start, n int, now func() time.Time) ([]Node, []*Recorder) {
	t.Helper()
	nodes, recs := upTo(t, start, n, now)
	if len(nodes) != n {
		t.Skipf("the engine runs no %d-node cluster", n)
	}
	return nodes, recs
}

// upTo starts n nodes, or one when the engine runs no cluster, each with
// a recorder.
func upTo(t *testing.T, start Start, n int, now func() time.Time) ([]Node, []*Recorder) {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	nodes := start(t, n, now)
	if nodes == nil {
		nodes = start(t, 1, now)
	}
	recs := make([]*Recorder, len(nodes))
	for i, nd := range nodes {
		recs[i] = NewRecorder()
		nd.Broker.SetHandler(recs[i].Handle)
	}
	return nodes, recs
}

var lim = broker.HistoryLimits{MaxEvents: 1000, TTL: time.Hour}

func frame(channel, data string) []byte { return pusher.Event(channel, "e", data) }

// 8 publishers spread over the nodes publish to history channels and
// plain ones at once: every node delivers every message exactly once,
// history channels with offsets +1 in one epoch, the same on every node,
// and each publisher's messages in its order.
func testOrder(t *testing.T, start Start, n int) {
	nodes, recs := cluster(t, start, n, nil)
	const publishers, each = 8, 200
	channels := []string{"h0", "h1", "h2", "p0", "p1"} // h: with history
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Go(func() {
			nd := nodes[p%len(nodes)]
			for i := range each {
				ch := channels[(p+i)%len(channels)]
				m := broker.Message{App: app, Channel: ch, Frame: frame(ch, fmt.Sprintf("%d.%d", p, i))}
				if _, _, err := Publish(context.Background(), nd, m, ch[0] == 'h', lim, ""); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var epochs map[string]string
	for i, r := range recs {
		got := checkOrder(t, fmt.Sprintf("node %d", i), r.Await(t, publishers*each))
		if epochs == nil {
			epochs = got
		} else if !maps.Equal(epochs, got) {
			t.Errorf("node %d: epochs %v, node 0 had %v", i, got, epochs)
		}
	}
}

// checkOrder checks one node's deliveries and returns each history
// channel's epoch.
func checkOrder(t *testing.T, node string, msgs []broker.Message) map[string]string {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]uint64{}
	epochs := map[string]string{}
	perPub := map[string]int{} // "publisher/channel" -> last index
	for _, m := range msgs {
		data := dataOf(t, m.Frame)
		if seen[data] {
			t.Fatalf("%s: %s delivered twice", node, data)
		}
		seen[data] = true
		var p, i int
		if _, err := fmt.Sscanf(data, "%d.%d", &p, &i); err != nil {
			t.Fatalf("%s: bad data %q", node, data)
		}
		k := strconv.Itoa(p) + "/" + m.Channel
		if prev, ok := perPub[k]; ok && i <= prev {
			t.Fatalf("%s: publisher %d's message %d on %s after its %d", node, p, i, m.Channel, prev)
		}
		perPub[k] = i
		epoch, off, ok := pusher.FramePosition(m.Frame)
		if m.Channel[0] != 'h' {
			if ok {
				t.Fatalf("%s: plain channel frame with a position: %s", node, m.Frame)
			}
			continue
		}
		if !ok || off != last[m.Channel]+1 {
			t.Fatalf("%s: %s got offset %d after %d: %s", node, m.Channel, off, last[m.Channel], m.Frame)
		}
		if e, ok := epochs[m.Channel]; ok && e != epoch {
			t.Fatalf("%s: %s epoch changed from %s to %s", node, m.Channel, e, epoch)
		}
		last[m.Channel], epochs[m.Channel] = off, epoch
	}
	return epochs
}

// dataOf extracts the data string of a frame built by frame.
func dataOf(t *testing.T, f []byte) string {
	t.Helper()
	s := string(f)
	const key = `"data":"`
	i := strings.Index(s, key)
	if i < 0 {
		t.Fatalf("no data in %s", s)
	}
	s = s[i+len(key):]
	return s[:strings.IndexByte(s, '"')]
}

// Exclude and Cache reach every node's handler as published, with and
// without history.
func testExcludeAndCache(t *testing.T, start Start) {
	nodes, recs := upTo(t, start, 2, nil)
	ctx := context.Background()
	in := []broker.Message{
		{App: app, Channel: "cache-h", Frame: frame("cache-h", "1"), Exclude: "123.456", Cache: true},
		{App: app, Channel: "p", Frame: frame("p", "2"), Exclude: "9.9"},
		{App: app, Channel: "cache-p", Frame: frame("cache-p", "3"), Cache: true},
	}
	for i, m := range in {
		if _, _, err := Publish(ctx, nodes[0], m, i == 0, lim, ""); err != nil {
			t.Fatal(err)
		}
	}
	for n, r := range recs {
		// Only each channel's order is defined: match by channel.
		got := map[string]broker.Message{}
		for _, m := range r.Await(t, len(in)) {
			got[m.Channel] = m
		}
		for _, want := range in {
			m := got[want.Channel]
			if m.App != app || m.Exclude != want.Exclude || m.Cache != want.Cache {
				t.Errorf("node %d: %+v, want %+v", n, m, want)
			}
		}
		if want := string(in[1].Frame); string(got["p"].Frame) != want {
			t.Errorf("node %d: frame %s, want %s", n, got["p"].Frame, want)
		}
	}
}

// A key answers for its event while history holds it: the same key again
// is not delivered and answers the first position; other channels and
// other keys are not affected.
func testIdempotency(t *testing.T, start Start) {
	nodes, recs := upTo(t, start, 2, nil)
	ctx := context.Background()
	pub := func(nd Node, ch, data, key string) (broker.Position, bool) {
		t.Helper()
		pos, dup, err := Publish(ctx, nd, broker.Message{App: app, Channel: ch, Frame: frame(ch, data)}, true, broker.HistoryLimits{MaxEvents: 2, TTL: time.Hour}, key)
		if err != nil {
			t.Fatal(err)
		}
		return pos, dup
	}
	first, dup := pub(nodes[0], "c", "a", "k1")
	if dup || first.Offset != 1 {
		t.Fatalf("first publish: %+v dup %v", first, dup)
	}
	again, dup := pub(nodes[len(nodes)-1], "c", "a-again", "k1")
	if !dup || again != first {
		t.Fatalf("same key: %+v dup %v, want %+v dup", again, dup, first)
	}
	if pos, dup := pub(nodes[0], "other", "b", "k1"); dup || pos.Offset != 1 {
		t.Fatalf("same key on another channel: %+v dup %v", pos, dup)
	}
	pub(nodes[0], "c", "x", "k2")
	pub(nodes[0], "c", "y", "") // MaxEvents 2: k1's event leaves history
	if pos, dup := pub(nodes[0], "c", "z", "k1"); dup || pos.Offset != 4 {
		t.Fatalf("key of a dropped event: %+v dup %v, want a new offset 4", pos, dup)
	}
	for n, r := range recs {
		var got []string
		for _, m := range r.Await(t, 5) {
			got = append(got, m.Channel+":"+dataOf(t, m.Frame))
		}
		slices.SortStableFunc(got, func(a, b string) int { return strings.Compare(a[:2], b[:2]) }) // each channel in its order
		want := []string{"c:a", "c:x", "c:y", "c:z", "other:b"}
		if !slices.Equal(got, want) {
			t.Errorf("node %d delivered %q, want %q", n, got, want)
		}
	}
}

// readResult is what a Reader was given.
type readResult struct {
	cur    broker.Position
	frames []string
	ok     bool
}

// Read reads channel on nd.
func Read(nd Node, channel string, lim broker.HistoryLimits, since broker.Position) readResult {
	var r readResult
	nd.History.Read(app, channel, lim, since, func(cur broker.Position, evs []broker.Event, ok bool) {
		r.cur, r.ok = cur, ok
		for _, e := range evs {
			r.frames = append(r.frames, string(e.Frame))
		}
	})
	return r
}

// Read's answers, on the publishing node and another.
func testRead(t *testing.T, start Start) {
	nodes, recs := upTo(t, start, 2, nil)
	ctx := context.Background()
	if r := Read(nodes[0], "c", lim, broker.Position{}); !r.ok || r.cur != (broker.Position{}) || r.frames != nil {
		t.Fatalf("unknown channel from zero: %+v", r)
	}
	if r := Read(nodes[0], "c", lim, broker.Position{Epoch: "x", Offset: 1}); r.ok || r.cur != (broker.Position{}) {
		t.Fatalf("unknown channel from a position: %+v", r)
	}
	var pos broker.Position
	for i := range 3 {
		p, _, err := Publish(ctx, nodes[0], broker.Message{App: app, Channel: "c", Frame: frame("c", strconv.Itoa(i))}, true, lim, "")
		if err != nil {
			t.Fatal(err)
		}
		pos = p
	}
	msgs := recs[0].Await(t, 3)
	for n, nd := range nodes {
		all := Read(nd, "c", lim, broker.Position{})
		if !all.ok || all.cur != pos || len(all.frames) != 3 {
			t.Fatalf("node %d from zero: %+v, want 3 events up to %+v", n, all, pos)
		}
		for i, f := range all.frames {
			if f != string(msgs[i].Frame) {
				t.Errorf("node %d: stored %s, delivered %s", n, f, msgs[i].Frame)
			}
		}
		if r := Read(nd, "c", lim, broker.Position{Epoch: pos.Epoch, Offset: 1}); !r.ok || !slices.Equal(r.frames, all.frames[1:]) {
			t.Errorf("node %d since 1: %+v", n, r)
		}
		if r := Read(nd, "c", lim, pos); !r.ok || r.frames != nil || r.cur != pos {
			t.Errorf("node %d since the last: %+v", n, r)
		}
		if r := Read(nd, "c", lim, broker.Position{Epoch: pos.Epoch, Offset: 4}); r.ok || r.frames != nil || r.cur != pos {
			t.Errorf("node %d ahead: %+v", n, r)
		}
		if r := Read(nd, "c", lim, broker.Position{Epoch: "other", Offset: 1}); r.ok || r.frames != nil || r.cur != pos {
			t.Errorf("node %d another epoch: %+v", n, r)
		}
	}
}

// Events pushed out by MaxEvents cannot be resumed from.
func testReadTrimmed(t *testing.T, start Start) {
	nodes, _ := cluster(t, start, 1, nil)
	small := broker.HistoryLimits{MaxEvents: 3, TTL: time.Hour}
	var pos broker.Position
	for i := range 5 {
		p, _, err := Publish(context.Background(), nodes[0], broker.Message{App: app, Channel: "c", Frame: frame("c", strconv.Itoa(i))}, true, small, "")
		if err != nil {
			t.Fatal(err)
		}
		pos = p
	}
	if r := Read(nodes[0], "c", small, broker.Position{Epoch: pos.Epoch, Offset: 1}); r.ok || r.cur != pos {
		t.Errorf("since 1 (2 dropped): %+v", r)
	}
	if r := Read(nodes[0], "c", small, broker.Position{}); r.ok {
		t.Errorf("from zero (1 dropped): %+v", r)
	}
	if r := Read(nodes[0], "c", small, broker.Position{Epoch: pos.Epoch, Offset: 2}); !r.ok || len(r.frames) != 3 {
		t.Errorf("since 2 (3, 4, 5 held): %+v", r)
	}
}

// Events older than the TTL are not served.
func testTTL(t *testing.T, start Start) {
	clock := NewClock()
	nodes, _ := cluster(t, start, 1, clock.Now)
	short := broker.HistoryLimits{MaxEvents: 100, TTL: time.Minute}
	pub := func(data string) broker.Position {
		p, _, err := Publish(context.Background(), nodes[0], broker.Message{App: app, Channel: "c", Frame: frame("c", data)}, true, short, "")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := pub("1")
	clock.Add(40 * time.Second)
	second := pub("2")
	clock.Add(30 * time.Second) // the first is 70 s old, the second 30 s
	if r := Read(nodes[0], "c", short, broker.Position{Epoch: first.Epoch}); r.ok || r.frames != nil {
		t.Errorf("since 0 after the first expired: %+v", r)
	}
	if r := Read(nodes[0], "c", short, first); !r.ok || len(r.frames) != 1 || r.cur != second {
		t.Errorf("since 1: %+v, want the second event", r)
	}
	clock.Add(time.Minute)
	if r := Read(nodes[0], "c", short, first); r.ok || r.frames != nil {
		t.Errorf("since 1 after both expired: %+v", r)
	}
}

// While publishers keep publishing, a Read on any node runs when that
// node has delivered exactly up to the position it is given: a
// subscriber added there gets the rest live, without a gap or a
// duplicate.
func testReadInOrder(t *testing.T, start Start) {
	nodes, recs := upTo(t, start, 3, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var published atomic.Int64
	for p := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				m := broker.Message{App: app, Channel: "c", Frame: frame("c", fmt.Sprintf("%d.%d", p, i))}
				if _, _, err := Publish(context.Background(), nodes[p%len(nodes)], m, true, lim, ""); err != nil {
					t.Error(err)
					return
				}
				published.Add(1)
			}
		})
	}
	reads := 0
	for reads < 60 || published.Load() < 200 {
		if reads > 100000 {
			t.Fatal("publishers made no progress")
		}
		n := reads % len(nodes)
		nodes[n].History.Read(app, "c", lim, broker.Position{}, func(cur broker.Position, _ []broker.Event, _ bool) {
			if got := recs[n].Last("c"); got != cur.Offset {
				t.Errorf("node %d: a Read at offset %d ran when the node had delivered up to %d", n, cur.Offset, got)
			}
		})
		reads++
	}
	cancel()
	wg.Wait()
}
