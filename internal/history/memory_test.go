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
	// Newest first: reading the evicted c0 creates it anew, which costs.
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

func TestDeliverErrorKeepsOffset(t *testing.T) {
	m, _ := newStore(0)
	boom := errors.New("broker down")
	if _, err := m.Append("app", "c", lim, pusher.Event("c", "e", "x"), func(broker.Position, []byte) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if got := publish(t, m, "c", 1); !strings.HasSuffix(got[0], `"offset":1}`) {
		t.Errorf("a failed publish used up an offset: %s", got[0])
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
