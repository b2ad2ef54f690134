package history

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/pusher"
)

var lim = broker.HistoryLimits{MaxEvents: 5, TTL: time.Minute}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newStore(maxBytes int64) (*Memory, *clock) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	return NewMemory(Options{MaxBytes: maxBytes, Now: c.now}), c
}

// publish appends n events to channel and returns the delivered frames.
func publish(t *testing.T, m *Memory, channel string, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		_, err := m.Append("app", channel, lim, pusher.Event(channel, "e", fmt.Sprint(i)), func(_ broker.Position, f []byte) error {
			out = append(out, string(f))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

type read struct {
	cur    broker.Position
	frames []string
	ok     bool
}

func readSince(m *Memory, channel string, since broker.Position) read {
	var r read
	m.Read("app", channel, lim, since, func(cur broker.Position, evs []broker.Event, ok bool) {
		r.cur, r.ok = cur, ok
		for _, e := range evs {
			r.frames = append(r.frames, string(e.Frame))
		}
	})
	return r
}

func TestOffsetsAndWireFields(t *testing.T) {
	m, _ := newStore(0)
	got := publish(t, m, "orders", 2)
	ep := readSince(m, "orders", broker.Position{}).cur.Epoch
	if ep == "" || len(ep) > 16 {
		t.Fatalf("epoch %q: want a short non-empty string", ep)
	}
	want := fmt.Sprintf(`{"event":"e","channel":"orders","data":"1","epoch":"%s","offset":2}`, ep)
	if len(got) != 2 || got[1] != want {
		t.Fatalf("frames %q, want last %s", got, want)
	}
	other := publish(t, m, "other", 1)
	if !strings.HasSuffix(other[0], `"offset":1}`) {
		t.Errorf("offsets are per channel: %s", other[0])
	}
	if readSince(m, "other", broker.Position{}).cur.Epoch == ep {
		t.Errorf("channels share an epoch; each channel's history has its own")
	}
	if m2, _ := newStore(0); readSince(m2, "orders", broker.Position{}).cur.Epoch == ep {
		t.Errorf("a new store (a restart) reuses epoch %q", ep)
	}
}

func TestResumeRanges(t *testing.T) {
	m, _ := newStore(0)
	frames := publish(t, m, "c", 8) // max 5 kept: offsets 4..8
	ep := readSince(m, "c", broker.Position{}).cur.Epoch
	cur := broker.Position{Epoch: ep, Offset: 8}
	cases := []struct {
		name  string
		since broker.Position
		ok    bool
		want  []string
	}{
		{"inside", broker.Position{Epoch: ep, Offset: 6}, true, frames[6:]},
		{"oldest edge: everything held", broker.Position{Epoch: ep, Offset: 3}, true, frames[3:]},
		{"current: nothing missed", broker.Position{Epoch: ep, Offset: 8}, true, nil},
		{"too old", broker.Position{Epoch: ep, Offset: 2}, false, nil},
		{"zero offset, too old", broker.Position{Epoch: ep, Offset: 0}, false, nil},
		{"wrong epoch", broker.Position{Epoch: "nope", Offset: 6}, false, nil},
		{"ahead", broker.Position{Epoch: ep, Offset: 9}, false, nil},
		{"zero position", broker.Position{}, false, nil},
	}
	for _, c := range cases {
		r := readSince(m, "c", c.since)
		if r.ok != c.ok || r.cur != cur || fmt.Sprint(r.frames) != fmt.Sprint(c.want) {
			t.Errorf("%s: got ok=%v cur=%v %q, want ok=%v cur=%v %q", c.name, r.ok, r.cur, r.frames, c.ok, cur, c.want)
		}
	}
}

func TestFreshChannelResumesFromZero(t *testing.T) {
	m, _ := newStore(0)
	start := readSince(m, "new", broker.Position{}).cur
	if start.Offset != 0 {
		t.Fatalf("fresh channel at %v", start)
	}
	frames := publish(t, m, "new", 2)
	if r := readSince(m, "new", start); !r.ok || fmt.Sprint(r.frames) != fmt.Sprint(frames) {
		t.Errorf("resume from a fresh channel's position: %+v", r)
	}
}

func TestTTL(t *testing.T) {
	m, clk := newStore(0)
	publish(t, m, "c", 2)
	clk.add(30 * time.Second)
	publish(t, m, "c", 1)
	ep := readSince(m, "c", broker.Position{}).cur.Epoch
	clk.add(40 * time.Second) // the first two are 70 s old, the third 40 s
	if r := readSince(m, "c", broker.Position{Epoch: ep, Offset: 1}); r.ok {
		t.Errorf("resume past expired events succeeded: %+v", r)
	}
	if r := readSince(m, "c", broker.Position{Epoch: ep, Offset: 2}); !r.ok || len(r.frames) != 1 {
		t.Errorf("resume inside the TTL: %+v", r)
	}
	clk.add(2 * time.Minute)
	publish(t, m, "other", 1) // any publish reclaims expired history
	if r := readSince(m, "c", broker.Position{Epoch: ep, Offset: 3}); r.ok || r.cur.Epoch == ep || r.cur.Offset != 0 {
		t.Errorf("a channel whose whole history expired must start a new epoch: %+v", r)
	}
}

func TestIdleHistoryIsForgotten(t *testing.T) {
	m, clk := newStore(0)
	publish(t, m, "a", 3)
	readSince(m, "b", broker.Position{})
	if m.Bytes() == 0 {
		t.Fatal("nothing accounted")
	}
	clk.add(2 * time.Minute)
	m.reclaim(clk.now().UnixNano())
	if m.Bytes() != 0 || len(m.shard(key{"app", "a"}).channels) != 0 || m.head != len(m.queue) {
		t.Errorf("after the TTL: %d bytes, queue %d..%d", m.Bytes(), m.head, len(m.queue))
	}
}

func TestMemoryCapEvictsOldestFirst(t *testing.T) {
	frame := cap(pusher.AppendPosition(pusher.Event("c0", "e", "0"), "xxxxxxxxx", 1))
	perChannel := int64(channelOverhead + refCost + 2*(frame+EventOverhead))
	m, _ := newStore(3 * perChannel) // room for three channels of two events
	for i := range 4 {
		publish(t, m, fmt.Sprintf("c%d", i), 2)
	}
	if m.Bytes() > 3*perChannel {
		t.Errorf("%d bytes held, cap %d", m.Bytes(), 3*perChannel)
	}
	// The evicted c0 is at the empty position again: another epoch.
	for i := 3; i >= 0; i-- {
		ch, wantOK := fmt.Sprintf("c%d", i), i > 0
		ep := readSince(m, ch, broker.Position{}).cur.Epoch
		if r := readSince(m, ch, broker.Position{Epoch: ep, Offset: 1}); r.ok != wantOK {
			t.Errorf("%s: resume from 1 ok=%v, want %v (the oldest channel is evicted first)", ch, r.ok, wantOK)
		}
	}
}

func TestCapNeverExceededUnderLoad(t *testing.T) {
	const maxBytes = 64 << 10
	m, _ := newStore(maxBytes)
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				ch := fmt.Sprintf("c%d", (p*2000+i)%300)
				_, _ = m.Append("app", ch, lim, pusher.Event(ch, "e", strings.Repeat("x", 100)), func(broker.Position, []byte) error { return nil })
			}
		})
	}
	wg.Wait()
	// Concurrent appenders may each be one event over before they evict.
	if b := m.Bytes(); b > maxBytes+4*1024 {
		t.Errorf("%d bytes held with a cap of %d", b, maxBytes)
	}
}

// A failed delivery cannot give its offset back (later publishes may have
// been numbered already): the caller that delivered it gets the error, the
// frame stays stored for resumes, and the next publish gets the next offset.
func TestDeliverErrorUsesOffset(t *testing.T) {
	m, _ := newStore(0)
	boom := errors.New("broker down")
	pos, err := m.Append("app", "c", lim, pusher.Event("c", "e", "x"), func(broker.Position, []byte) error { return boom })
	if !errors.Is(err, boom) || pos.Offset != 1 {
		t.Fatalf("pos %v, err %v", pos, err)
	}
	if got := publish(t, m, "c", 1); !strings.HasSuffix(got[0], `"offset":2}`) {
		t.Errorf("after a failed delivery: %s", got[0])
	}
	if r := readSince(m, "c", broker.Position{Epoch: pos.Epoch}); !r.ok || len(r.frames) != 2 {
		t.Errorf("a resume must replay the undelivered frame too: %+v", r)
	}
}

// blockFirst returns a deliver func that logs each offset and blocks the
// first delivery until release is closed, and a channel closed once that
// delivery has started.
func blockFirst(log *[]string, mu *sync.Mutex, release chan struct{}) (broker.Deliver, chan struct{}) {
	entered := make(chan struct{})
	var once sync.Once
	return func(pos broker.Position, _ []byte) error {
		once.Do(func() { close(entered); <-release })
		mu.Lock()
		*log = append(*log, fmt.Sprint("d", pos.Offset))
		mu.Unlock()
		return nil
	}, entered
}

// Publishers do not wait for another's delivery, and a Read waits for its
// place: it sees exactly what was delivered before it.
func TestAppendDoesNotWaitForDelivery(t *testing.T) {
	m, _ := newStore(0)
	var (
		mu  sync.Mutex
		log []string
	)
	release := make(chan struct{})
	deliver, entered := blockFirst(&log, &mu, release)
	first := make(chan error)
	go func() {
		_, err := m.Append("app", "c", lim, pusher.Event("c", "e", "1"), deliver)
		first <- err
	}()
	<-entered
	pos, err := m.Append("app", "c", lim, pusher.Event("c", "e", "2"), deliver) // returns while 1 is blocked
	if err != nil || pos.Offset != 2 {
		t.Fatalf("second append: %v, %v", pos, err)
	}
	reads := make(chan read)
	go func() {
		var r read
		m.Read("app", "c", lim, broker.Position{Epoch: pos.Epoch}, func(cur broker.Position, evs []broker.Event, ok bool) {
			r.cur, r.ok = cur, ok
			mu.Lock()
			log = append(log, fmt.Sprint("r", len(evs)))
			mu.Unlock()
		})
		reads <- r
	}()
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	r := <-reads
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(log) != "[d1 d2 r2]" || !r.ok || r.cur != pos {
		t.Errorf("log %v, read %+v: want both deliveries, then the read at offset 2", log, r)
	}
}

// Eviction may empty a channel whose frames are still being delivered; it
// must stay (no new epoch racing its deliveries) until the deliverer is
// done, and then be forgotten.
func TestEvictionWhileDelivering(t *testing.T) {
	m, _ := newStore(1) // everything is over the cap at once
	var (
		mu  sync.Mutex
		log []string
	)
	release := make(chan struct{})
	deliver, entered := blockFirst(&log, &mu, release)
	first := make(chan broker.Position)
	go func() {
		pos, _ := m.Append("app", "c", lim, pusher.Event("c", "e", "1"), deliver)
		first <- pos
	}()
	<-entered
	p2, _ := m.Append("app", "c", lim, pusher.Event("c", "e", "2"), deliver)
	close(release)
	p1 := <-first
	if p2.Epoch != p1.Epoch || p2.Offset != 2 {
		t.Errorf("positions %v then %v: one incarnation while delivering", p1, p2)
	}
	if m.Bytes() != 0 || len(m.shard(key{"app", "c"}).channels) != 0 {
		t.Errorf("after delivery: %d bytes, channel kept", m.Bytes())
	}
	if fmt.Sprint(log) != "[d1 d2]" {
		t.Errorf("deliveries %v", log)
	}
}

func BenchmarkAppend(b *testing.B) {
	m := NewMemory(Options{})
	data := strings.Repeat("x", 100)
	deliver := func(broker.Position, []byte) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.Append("app", "c", broker.HistoryLimits{MaxEvents: 100, TTL: time.Minute}, pusher.Event("c", "e", data), deliver)
	}
}

// A publish blocked inside one channel's order (a slow delivery) must not
// hold up another channel: each channel has its own lock.
func TestChannelsDoNotWaitForEachOther(t *testing.T) {
	m, _ := newStore(0)
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = m.Append("app", "slow", lim, pusher.Event("slow", "e", "x"), func(broker.Position, []byte) error {
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered
	for i := range 100 { // enough channels to share a shard with "slow"
		ch := fmt.Sprintf("fast-%d", i)
		publish(t, m, ch, 1)
		readSince(m, ch, broker.Position{})
	}
	close(release)
	<-done
}

func TestReadingUnknownChannelsStoresNothing(t *testing.T) {
	m, _ := newStore(0)
	for i := range 100 {
		r := readSince(m, fmt.Sprintf("nobody-%d", i), broker.Position{})
		if r.cur != (broker.Position{}) || !r.ok || r.frames != nil {
			t.Fatalf("unknown channel: %+v, want the empty position, ok", r)
		}
		if r := readSince(m, "nobody", broker.Position{Epoch: "x", Offset: 3}); r.ok {
			t.Fatalf("a position on an unknown channel was served: %+v", r)
		}
	}
	if m.Bytes() != 0 || m.head != len(m.queue) {
		t.Errorf("reads stored %d bytes, %d queue entries", m.Bytes(), len(m.queue)-m.head)
	}
}

func TestEmptyPositionResumesFromTheStart(t *testing.T) {
	m, _ := newStore(0)
	want := publish(t, m, "a", 3)
	r := readSince(m, "a", broker.Position{})
	if !r.ok || strings.Join(r.frames, "\n") != strings.Join(want, "\n") || r.cur.Offset != 3 {
		t.Fatalf("from the empty position: %+v, want all 3 events", r)
	}
	publish(t, m, "a", 5) // MaxEvents 5: offsets 1-3 leave
	if r := readSince(m, "a", broker.Position{}); r.ok || r.cur.Offset != 8 {
		t.Errorf("the start left history but the empty position was served: %+v", r)
	}
}

func TestReadKeepsAQuietChannelsEpoch(t *testing.T) {
	m, clk := newStore(0)
	publish(t, m, "a", 1)
	ep := readSince(m, "a", broker.Position{}).cur.Epoch
	clk.add(40 * time.Second) // TTL 1 min: the channel's entry ends in 20 s
	readSince(m, "a", broker.Position{Epoch: ep, Offset: 1})
	clk.add(50 * time.Second) // the event has expired, the read's entry has not
	m.reclaim(clk.now().UnixNano())
	r := readSince(m, "a", broker.Position{Epoch: ep, Offset: 1})
	if !r.ok || r.cur != (broker.Position{Epoch: ep, Offset: 1}) {
		t.Fatalf("a channel read within its TTL lost its position: %+v", r)
	}
	clk.add(2 * time.Minute) // nobody reads: forgotten
	m.reclaim(clk.now().UnixNano())
	if m.Bytes() != 0 || len(m.shard(key{"app", "a"}).channels) != 0 {
		t.Errorf("an unread channel outlived its TTL: %d bytes", m.Bytes())
	}
}
