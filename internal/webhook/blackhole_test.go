package webhook

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/broker"
)

// blackhole accepts TCP connections and never answers: the worst endpoint,
// one that neither refuses nor fails. Every accepted connection is
// reported on the returned channel.
func blackhole(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 100)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), ch
}

// records counts warnings by message.
type records struct {
	mu   sync.Mutex
	warn map[string]int
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Level == slog.LevelWarn {
		r.warn[rec.Message]++
	}
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func TestBlackholedEndpointNeverBlocksObserve(t *testing.T) {
	hole, accepted := blackhole(t)
	healthy, got := receiver(t, nil)
	logs := &records{warn: map[string]int{}}
	const maxQueue = 100
	d := New(Options{
		Lookup: func(id string) (string, string, []Endpoint, bool) {
			return "app-key", "app-secret", []Endpoint{
				{URL: "http://" + hole + "/hook"},
				{URL: healthy.URL, Events: []string{broker.CacheMiss}},
			}, true
		},
		Batch:        time.Millisecond,
		Timeout:      time.Hour, // the POST hangs for the whole test
		MaxQueue:     maxQueue,
		FlushTimeout: 50 * time.Millisecond,
		Log:          slog.New(logs),
	})

	// The worker's first POST is now stuck in the blackhole.
	d.Observe("1", ev(broker.ChannelOccupied, "first"))
	await(t, accepted)

	const n = 10_000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			d.Observe("1", ev(broker.ChannelOccupied, "c"))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // a generous guard, not a timing assertion
		t.Fatal("Observe blocked behind a blackholed endpoint")
	}

	// Still blackholed: nothing came back from it, so Observe finished
	// while the endpoint hung.
	s := d.Stats()
	if s.Delivered != 0 || s.Failed != 0 {
		t.Fatalf("the blackhole answered: %+v", s)
	}
	// The queue stayed bounded (the stuck batch included) and every event
	// over the bound was counted.
	if s.Pending != maxQueue || s.Queued != maxQueue || s.Dropped != n+1-maxQueue {
		t.Fatalf("stats %+v, want %d pending and %d dropped", s, maxQueue, n+1-maxQueue)
	}
	logs.mu.Lock()
	w := logs.warn["webhook: queue full, event dropped"]
	logs.mu.Unlock()
	if w == 0 || w > 5 {
		t.Fatalf("queue-full warnings logged %d times, want 1..5 (logged, rate-limited)", w)
	}

	// Another endpoint of the same app is not held up.
	d.Observe("1", ev(broker.CacheMiss, "cache-x"))
	laravelVerify(t, await(t, got), "app-key", "app-secret")

	// Close gives up on the blackhole at its deadline and counts the rest:
	// all n+1 channel_occupied and the cache_miss (the blackholed endpoint
	// wants every event and its queue was full).
	d.Close()
	if s := d.Stats(); s.Pending != 0 || s.Dropped != n+2 || s.Delivered != 1 {
		t.Fatalf("after Close: %+v", s)
	}
}
