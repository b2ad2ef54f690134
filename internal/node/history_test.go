package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/internal/apps"
	"github.com/herald-ws/herald/internal/broker"
	"github.com/herald-ws/herald/internal/broker/memory"
	"github.com/herald-ws/herald/internal/pusher"
)

func newNode(t testing.TB, h apps.History) (*Node, *App) {
	t.Helper()
	a := &apps.App{ID: "1", Key: "key", Secret: "secret", Enabled: true, Limits: apps.DefaultLimits, History: h}
	reg, err := apps.NewRegistry([]*apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	n := New(reg, memory.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	return n, n.AppByID("1")
}

var allHistory = apps.History{Enabled: true, Channels: []string{"*"}, MaxEvents: 100, TTL: time.Minute}

// recorder is a subscriber that keeps every frame's event, epoch and offset.
type recorder struct {
	id     string
	mu     sync.Mutex
	frames []frame
}

type frame struct {
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	Epoch  string          `json:"epoch"`
	Offset uint64          `json:"offset"`
	raw    string
}

func (r *recorder) SocketID() string { return r.id }
func (r *recorder) Send(b []byte) {
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		panic(err)
	}
	f.raw = string(b)
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}

func (r *recorder) take() []frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.frames
	r.frames = nil
	return out
}

// events returns the channel events among frames (no pusher* or herald* ones).
func events(fs []frame) []frame {
	var out []frame
	for _, f := range fs {
		if !strings.Contains(f.Event, ":") {
			out = append(out, f)
		}
	}
	return out
}

func TestConcurrentPublishersOrderEverySubscriber(t *testing.T) {
	n, a := newNode(t, allHistory)
	const publishers, each, subscribers = 8, 250, 100
	info := pusher.ParseChannel("orders")
	subs := make([]*recorder, subscribers)
	for i := range subs {
		subs[i] = &recorder{id: fmt.Sprintf("1.%d", i)}
		if _, err := a.Subscribe("orders", info, subs[i], nil, 0, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				if err := n.Publish(context.Background(), a, []string{"orders", fmt.Sprintf("side-%d", p)}, "e", fmt.Sprint(i), ""); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, s := range subs {
		evs := events(s.take())
		if len(evs) != publishers*each {
			t.Fatalf("%s got %d events, want %d", s.id, len(evs), publishers*each)
		}
		for i, e := range evs {
			if e.Offset != uint64(i+1) || e.Epoch != evs[0].Epoch {
				t.Fatalf("%s: event %d has offset %d (epoch %s), want %d: offsets must rise by exactly 1", s.id, i, e.Offset, e.Epoch, i+1)
			}
		}
	}
}

func TestResumeRacingPublishes(t *testing.T) {
	h := allHistory
	h.MaxEvents = 4000 // the publisher is never more than 2000 ahead of what we saw
	n, a := newNode(t, h)
	info := pusher.ParseChannel("private-feed")
	// Subscribed before the publisher starts, so the first round sees
	// every event from offset 1.
	r := &recorder{id: "1.1"}
	if _, err := a.Subscribe("private-feed", info, r, nil, 0, nil, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var published, seenOffset atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			// Full speed, but bounded: a resume must find what it missed in
			// history, whatever the scheduler does to this test.
			for published.Load()-seenOffset.Load() > 2000 && ctx.Err() == nil {
				runtime.Gosched()
			}
			if err := n.Publish(context.Background(), a, []string{"private-feed"}, "tick", "x", ""); err != nil {
				t.Error(err)
				return
			}
			published.Add(1)
		}
	}()
	defer func() { cancel(); <-done }()

	var last broker.Position
	resumes := 0
	for round := 0; round < 200; round++ {
		// Wait until some events arrived, then leave, let more be
		// published, and come back from the last one seen.
		for len(events(r.peek())) == 0 {
			runtimeYield()
		}
		a.Hub.Unsubscribe("private-feed", r, "")
		got := r.take()
		evs := events(got)
		seen := broker.Position{Epoch: evs[len(evs)-1].Epoch, Offset: evs[len(evs)-1].Offset}
		if _, err := a.Subscribe("private-feed", info, r, nil, 0, &pusher.Since{Epoch: seen.Epoch, Offset: seen.Offset}, false); err != nil {
			t.Fatal(err)
		}
		for _, f := range got {
			if f.Event == "herald:resume_failed" {
				t.Fatalf("round %d: resume failed: %s", round, f.raw)
			}
		}
		checkContiguous(t, last, evs)
		last = seen
		seenOffset.Store(int64(seen.Offset))
		resumes++
	}
	if resumes == 0 || published.Load() < 200 {
		t.Fatalf("only %d resumes, %d publishes", resumes, published.Load())
	}
	for _, f := range r.take() {
		if f.Event == "herald:resume_failed" {
			t.Fatalf("resume failed: %s", f.raw)
		}
	}
}

// checkContiguous fails unless evs continue exactly after last.
func checkContiguous(t *testing.T, last broker.Position, evs []frame) {
	t.Helper()
	for i, e := range evs {
		want := last.Offset + uint64(i) + 1
		if last.Epoch != "" && e.Epoch != last.Epoch || e.Offset != want {
			t.Fatalf("after %v got offset %d (epoch %s) at %d, want %d: a gap or a duplicate", last, e.Offset, e.Epoch, i, want)
		}
	}
}

func (r *recorder) peek() []frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]frame(nil), r.frames...)
}

func TestResumeFailedAndOff(t *testing.T) {
	n, a := newNode(t, apps.History{Enabled: true, Channels: []string{"news*"}, MaxEvents: 2, TTL: time.Minute})
	ctx := context.Background()
	pos, err := n.PublishOnce(ctx, a, []string{"news", "plain"}, "e", "1", "", "")
	if err != nil || pos[0].Offset != 1 || pos[0].Epoch == "" || pos[1] != (broker.Position{}) {
		t.Fatalf("positions %v, %v", pos, err)
	}
	for range 3 {
		_ = n.Publish(ctx, a, []string{"news"}, "e", "x", "")
	}
	r := &recorder{id: "1.1"}
	if _, err := a.Subscribe("news", pusher.ParseChannel("news"), r, nil, 0, &pusher.Since{Epoch: pos[0].Epoch, Offset: 1}, false); err != nil {
		t.Fatal(err)
	}
	got := r.take()
	want := fmt.Sprintf(`{"event":"herald:resume_failed","channel":"news","data":"{\"epoch\":\"%s\",\"offset\":4}"}`, pos[0].Epoch)
	if len(got) != 2 || got[0].Event != "pusher_internal:subscription_succeeded" || got[1].raw != want {
		t.Fatalf("got %+v, want subscription_succeeded then %s", got, want)
	}
	// No history on the channel: frames carry no position, and a resume
	// fails with an empty epoch.
	p := &recorder{id: "1.2"}
	if _, err := a.Subscribe("plain", pusher.ParseChannel("plain"), p, nil, 0, &pusher.Since{Epoch: "e", Offset: 1}, false); err != nil {
		t.Fatal(err)
	}
	_ = n.Publish(ctx, a, []string{"plain"}, "e", "y", "")
	got = p.take()
	if len(got) != 3 || got[1].raw != `{"event":"herald:resume_failed","channel":"plain","data":"{\"epoch\":\"\",\"offset\":0}"}` ||
		got[2].raw != `{"event":"e","channel":"plain","data":"y"}` {
		t.Fatalf("history-less channel: %+v", got)
	}
	if _, ok := a.Position("plain"); ok {
		t.Error("Position reports history on a channel without it")
	}
	if cur, ok := a.Position("news"); !ok || cur.Offset != 4 {
		t.Errorf("Position(news) = %v, %v", cur, ok)
	}
	if cur, evs, ok, _ := a.ReadHistory("news", broker.Position{Epoch: pos[0].Epoch, Offset: 2}); !ok || cur.Offset != 4 || len(evs) != 2 || evs[0].Offset != 3 {
		t.Errorf("ReadHistory = %v %v %v", cur, evs, ok)
	}
}

func TestClientEventsAreNumbered(t *testing.T) {
	n, a := newNode(t, allHistory)
	r := &recorder{id: "1.1"}
	_, _ = a.Subscribe("presence-room", pusher.ParseChannel("presence-room"), r, &pusher.Member{UserID: "u"}, 10, nil, false)
	frame := pusher.ClientEvent("presence-room", "client-typing", json.RawMessage(`{"on":true}`), "u")
	if err := n.PublishFrame(context.Background(), a, "presence-room", frame, ""); err != nil {
		t.Fatal(err)
	}
	evs := r.take()
	last := evs[len(evs)-1]
	if !strings.HasPrefix(last.raw, `{"event":"client-typing","channel":"presence-room","data":{"on":true},"user_id":"u","epoch":"`) || last.Offset != 1 {
		t.Errorf("client event frame %s", last.raw)
	}
}

func runtimeYield() { runtime.Gosched() }

func TestResumeOnCacheChannelHasNoDuplicate(t *testing.T) {
	n, a := newNode(t, allHistory)
	info := pusher.ParseChannel("cache-price")
	pos, _ := n.PublishOnce(context.Background(), a, []string{"cache-price"}, "p", "1", "", "")
	_ = n.Publish(context.Background(), a, []string{"cache-price"}, "p", "2", "")
	for _, c := range []struct {
		since   pusher.Since
		offsets []uint64
	}{
		{pusher.Since{Epoch: pos[0].Epoch, Offset: 1}, []uint64{2}}, // the replay ends with the cached event
		{pusher.Since{Epoch: pos[0].Epoch, Offset: 2}, nil},         // up to date: nothing, not even the cache
		{pusher.Since{Epoch: "other", Offset: 2}, []uint64{2}},      // failed: the cached event as usual
	} {
		r := &recorder{id: "1.9"}
		if _, err := a.Subscribe("cache-price", info, r, nil, 0, &c.since, false); err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, e := range events(r.take()) {
			got = append(got, e.Offset)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.offsets) {
			t.Errorf("since %v: offsets %v, want %v", c.since, got, c.offsets)
		}
		a.Hub.Unsubscribe("cache-price", r, "")
	}
}

// gate is a recorder whose Send blocks on the first channel event until
// release is closed: a socket write that takes forever, in-process.
type gate struct {
	recorder
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Send(b []byte) {
	if strings.Contains(string(b), `"offset":`) {
		g.once.Do(func() { close(g.entered); <-g.release })
	}
	g.recorder.Send(b)
}

// Publishers of one channel do not wait for each other's fan-out: while
// the first event's delivery is stuck in a subscriber, other publishes
// (and a resume) return or queue, and once it is unstuck every subscriber
// has every event, offsets rising by exactly 1.
func TestPublishersDoNotWaitForFanOut(t *testing.T) {
	n, a := newNode(t, allHistory)
	ctx := context.Background()
	info := pusher.ParseChannel("hot")
	g := &gate{recorder: recorder{id: "1.0"}, entered: make(chan struct{}), release: make(chan struct{})}
	subs := []*recorder{&g.recorder}
	if _, err := a.Subscribe("hot", info, g, nil, 0, nil, false); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		r := &recorder{id: fmt.Sprintf("1.%d", i)}
		subs = append(subs, r)
		if _, err := a.Subscribe("hot", info, r, nil, 0, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	first := make(chan []broker.Position)
	go func() {
		pos, err := n.PublishOnce(ctx, a, []string{"hot"}, "e", "0", "", "")
		if err != nil {
			t.Error(err)
		}
		first <- pos
	}()
	<-g.entered
	// Offset 1 is stuck in g.Send. These must all return now: nothing
	// here waits for that delivery.
	const publishers, each = 4, 25
	var wg sync.WaitGroup
	offsets := make([][]broker.Position, publishers)
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				pos, err := n.PublishOnce(ctx, a, []string{"hot"}, "e", fmt.Sprint(i), "", "")
				if err != nil {
					t.Error(err)
					return
				}
				offsets[p] = append(offsets[p], pos[0])
			}
		})
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second): // a guard against a hang, not a timing
		t.Fatal("publishers wait for another publisher's stuck delivery")
	}
	// A resume from offset 1 queues behind the pending events.
	res := &recorder{id: "1.99"}
	resumed := make(chan error)
	go func() {
		_, err := a.Subscribe("hot", info, res, nil, 0, &pusher.Since{Epoch: offsets[0][0].Epoch, Offset: 1}, false)
		resumed <- err
	}()
	close(g.release)
	p1 := <-first
	if len(p1) == 0 {
		t.FailNow()
	}
	if err := <-resumed; err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{p1[0].Offset: true}
	for _, ps := range offsets {
		for _, pos := range ps {
			o := pos.Offset
			if seen[o] || pos.Epoch != p1[0].Epoch {
				t.Fatalf("offset %d handed out twice (or in another epoch)", o)
			}
			seen[o] = true
		}
	}
	total := 1 + publishers*each
	if p1[0].Offset != 1 || len(seen) != total {
		t.Fatalf("first publish got %v; %d distinct offsets, want %d", p1, len(seen), total)
	}
	// The remaining publishes are live for the resumed subscriber.
	_ = n.Publish(ctx, a, []string{"hot"}, "e", "last", "")
	total++
	for _, s := range subs {
		evs := events(s.take())
		if len(evs) != total {
			t.Fatalf("%s got %d events, want %d", s.id, len(evs), total)
		}
		checkContiguous(t, broker.Position{}, evs)
	}
	evs := events(res.take())
	checkContiguous(t, broker.Position{Offset: 1}, evs)
	if len(evs) != total-1 {
		t.Fatalf("resumed subscriber got %d events, want %d", len(evs), total-1)
	}
}

// The empty position (epoch "", offset 0) is what a channel without
// history yet reports; resuming from it replays the channel from its
// start, so a client that learned the position before the first publish
// misses nothing.
func TestResumeFromTheEmptyPosition(t *testing.T) {
	n, a := newNode(t, allHistory)
	ctx := context.Background()
	if pos, ok := a.Position("fresh"); !ok || pos != (broker.Position{}) {
		t.Fatalf("position of a channel never published to: %v %v", pos, ok)
	}
	for _, d := range []string{"1", "2"} {
		_ = n.Publish(ctx, a, []string{"fresh"}, "e", d, "")
	}
	r := &recorder{id: "1.1"}
	if _, err := a.Subscribe("fresh", pusher.ParseChannel("fresh"), r, nil, 0, &pusher.Since{}, false); err != nil {
		t.Fatal(err)
	}
	_ = n.Publish(ctx, a, []string{"fresh"}, "e", "3", "")
	got := r.take()
	if len(got) != 4 || got[0].Event != "pusher_internal:subscription_succeeded" {
		t.Fatalf("got %+v", got)
	}
	for i, f := range got[1:] {
		if f.Offset != uint64(i+1) || string(f.Data) != fmt.Sprintf(`"%d"`, i+1) {
			t.Errorf("frame %d: %+v", i+1, f)
		}
	}
}

// A subscribe asking for its position gets herald:position right after
// subscription_succeeded, at a point of the channel's delivery order: the
// live events that follow continue from it with no gap, even while a
// publisher runs at full speed; channels without history send none.
func TestSubscribeWithPosition(t *testing.T) {
	h := allHistory
	h.Channels = []string{"kept*"}
	n, a := newNode(t, h)
	ctx := context.Background()
	fresh := &recorder{id: "1.1"}
	if _, err := a.Subscribe("kept-fresh", pusher.ParseChannel("kept-fresh"), fresh, nil, 0, nil, true); err != nil {
		t.Fatal(err)
	}
	plain := &recorder{id: "1.2"}
	if _, err := a.Subscribe("plain", pusher.ParseChannel("plain"), plain, nil, 0, nil, true); err != nil {
		t.Fatal(err)
	}
	if got := fresh.take(); len(got) != 2 || got[1].raw != `{"event":"herald:position","channel":"kept-fresh","data":"{\"epoch\":\"\",\"offset\":0}"}` {
		t.Fatalf("fresh channel: %+v", got)
	}
	if got := plain.take(); len(got) != 1 || got[0].Event != "pusher_internal:subscription_succeeded" {
		t.Fatalf("channel without history: %+v", got)
	}

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := n.Publish(ctx, a, []string{"kept-hot"}, "tick", "x", ""); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for round := range 50 {
		r := &recorder{id: fmt.Sprintf("2.%d", round)}
		if _, err := a.Subscribe("kept-hot", pusher.ParseChannel("kept-hot"), r, nil, 0, nil, true); err != nil {
			t.Fatal(err)
		}
		for len(events(r.peek())) < 3 {
			runtimeYield()
		}
		a.Hub.Unsubscribe("kept-hot", r, "")
		got := r.take()
		if len(got) < 2 || got[1].Event != "herald:position" {
			t.Fatalf("round %d: %+v", round, got[:min(len(got), 2)])
		}
		var pos struct {
			Epoch  string
			Offset uint64
		}
		var data string
		if json.Unmarshal(got[1].Data, &data) != nil || json.Unmarshal([]byte(data), &pos) != nil {
			t.Fatalf("position data %s", got[1].Data)
		}
		checkContiguous(t, broker.Position{Epoch: pos.Epoch, Offset: pos.Offset}, events(got))
	}
}
