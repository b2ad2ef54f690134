package history

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/pusher"
)

// once appends a keyed event and counts its deliveries in n.
func once(t *testing.T, m *Memory, app, channel, key string, n *atomic.Int64) (broker.Position, bool) {
	t.Helper()
	pos, dup, err := m.AppendOnce(app, channel, lim, key, pusher.Event(channel, "e", key), func(broker.Position, []byte) error {
		n.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pos, dup
}

func TestRetriedKeyIsNotDeliveredAgain(t *testing.T) {
	m, _ := newStore(0)
	var n atomic.Int64
	first, dup := once(t, m, "app", "c", "k1", &n)
	if dup || first.Offset != 1 {
		t.Fatalf("first: %v dup %v", first, dup)
	}
	publish(t, m, "c", 2) // unkeyed events in between
	again, dup := once(t, m, "app", "c", "k1", &n)
	if !dup || again != first {
		t.Fatalf("retry: %v dup %v, want %v dup", again, dup, first)
	}
	if n.Load() != 1 {
		t.Fatalf("delivered %d times", n.Load())
	}
	if r := readSince(m, "c", broker.Position{Epoch: first.Epoch}); len(r.frames) != 3 || r.cur.Offset != 3 {
		t.Fatalf("history after a retry: %+v", r)
	}
	if p, dup := once(t, m, "app", "c", "k2", &n); dup || p.Offset != 4 {
		t.Fatalf("another key: %v dup %v", p, dup)
	}
}

func TestKeysArePerAppAndChannel(t *testing.T) {
	m, _ := newStore(0)
	var n atomic.Int64
	once(t, m, "app", "c", "k", &n)
	if _, dup := once(t, m, "app", "d", "k", &n); dup {
		t.Error("same key on another channel was a duplicate")
	}
	if _, dup := once(t, m, "other", "c", "k", &n); dup {
		t.Error("same key in another app was a duplicate")
	}
	if n.Load() != 3 {
		t.Errorf("delivered %d, want 3", n.Load())
	}
}

// A key lives as long as its event: once MaxEvents, the TTL or the byte
// cap has dropped the event, the key publishes anew.
func TestKeyForgottenWithItsEvent(t *testing.T) {
	t.Run("max events", func(t *testing.T) {
		m, _ := newStore(0)
		var n atomic.Int64
		once(t, m, "app", "c", "k", &n)
		publish(t, m, "c", lim.MaxEvents-1)
		if _, dup := once(t, m, "app", "c", "k", &n); !dup {
			t.Fatal("the last event of a full history no longer answers for its key")
		}
		publish(t, m, "c", 1) // pushes the keyed event out
		if p, dup := once(t, m, "app", "c", "k", &n); dup || p.Offset != uint64(lim.MaxEvents)+2 {
			t.Fatalf("after trim: %v dup %v", p, dup)
		}
	})
	t.Run("ttl", func(t *testing.T) {
		m, c := newStore(0)
		var n atomic.Int64
		once(t, m, "app", "c", "k", &n)
		c.add(lim.TTL - time.Second)
		if _, dup := once(t, m, "app", "c", "k", &n); !dup {
			t.Fatal("within the TTL: not a duplicate")
		}
		c.add(time.Second)
		if _, dup := once(t, m, "app", "c", "k", &n); dup {
			t.Fatal("past the TTL: still a duplicate")
		}
		if n.Load() != 2 {
			t.Errorf("delivered %d, want 2", n.Load())
		}
	})
	t.Run("byte cap", func(t *testing.T) {
		m, _ := newStore(4 << 10)
		var n atomic.Int64
		once(t, m, "app", "old", "k", &n)
		for i := range 100 {
			ch := fmt.Sprint("fill", i)
			publish(t, m, ch, 1)
		}
		if _, dup := once(t, m, "app", "old", "k", &n); dup {
			t.Fatal("an evicted event still answers for its key")
		}
	})
}

// A duplicate must not trim: at MaxEvents a retried key makes no room.
func TestDuplicateDoesNotTrim(t *testing.T) {
	m, _ := newStore(0)
	var n atomic.Int64
	publish(t, m, "c", lim.MaxEvents-1)
	once(t, m, "app", "c", "k", &n)
	for range 3 {
		once(t, m, "app", "c", "k", &n)
	}
	if r := readSince(m, "c", broker.Position{Epoch: readSince(m, "c", broker.Position{}).cur.Epoch}); !r.ok || len(r.frames) != lim.MaxEvents {
		t.Fatalf("history after duplicates: ok %v, %d events", r.ok, len(r.frames))
	}
}

func TestKeyMemoryAccounting(t *testing.T) {
	m, c := newStore(0)
	publish(t, m, "c", 1)
	base := m.Bytes()
	frame := pusher.Event("c", "e", "x")
	_, _, _ = m.AppendOnce("app", "c", lim, "", frame, func(broker.Position, []byte) error { return nil })
	plain := m.Bytes() - base
	key := strings.Repeat("k", 100)
	_, _, _ = m.AppendOnce("app", "c", lim, key, pusher.Event("c", "e", "x"), func(broker.Position, []byte) error { return nil })
	keyed := m.Bytes() - base - plain
	if keyed != plain+int64(len(key))+KeyOverhead {
		t.Fatalf("keyed event costs %d, plain %d: want plain+%d", keyed, plain, len(key)+KeyOverhead)
	}
	_, _, _ = m.AppendOnce("app", "c", lim, key, pusher.Event("c", "e", "x"), func(broker.Position, []byte) error { return nil })
	if m.Bytes() != base+plain+keyed {
		t.Fatalf("a duplicate changed the accounted memory: %d", m.Bytes()-base-plain-keyed)
	}
	c.add(lim.TTL)
	m.reclaim(c.now().UnixNano())
	if m.Bytes() != 0 {
		t.Fatalf("%d bytes left after everything expired", m.Bytes())
	}
}

// Of concurrent publishes with one key, exactly one is delivered and all
// get its position.
func TestConcurrentRetriesDeliverOnce(t *testing.T) {
	m, _ := newStore(0)
	var n atomic.Int64
	var wg sync.WaitGroup
	pos := make([]broker.Position, 16)
	for i := range pos {
		wg.Go(func() {
			pos[i], _, _ = m.AppendOnce("app", "c", lim, "k", pusher.Event("c", "e", "x"), func(broker.Position, []byte) error {
				n.Add(1)
				return nil
			})
		})
	}
	wg.Wait()
	if n.Load() != 1 {
		t.Fatalf("delivered %d times", n.Load())
	}
	for _, p := range pos {
		if p != pos[0] {
			t.Fatalf("positions differ: %v", pos)
		}
	}
}
