package hub

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/herald-ws/herald/internal/pusher"
)

type fakeSub struct {
	id     string
	mu     sync.Mutex
	frames []string
}

func (f *fakeSub) SocketID() string { return f.id }
func (f *fakeSub) Send(b []byte) {
	f.mu.Lock()
	f.frames = append(f.frames, string(b))
	f.mu.Unlock()
}
func (f *fakeSub) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.frames
	f.frames = nil
	return out
}

func events(frames []string) []string {
	var out []string
	for _, fr := range frames {
		var m struct{ Event string }
		_ = json.Unmarshal([]byte(fr), &m)
		out = append(out, m.Event)
	}
	return out
}

func TestPresenceCountedPerUser(t *testing.T) {
	h := New(Options{})
	info := pusher.ParseChannel("presence-room")
	watcher := &fakeSub{id: "1.1"}
	a1, a2 := &fakeSub{id: "2.1"}, &fakeSub{id: "2.2"}
	ann := &pusher.Member{UserID: "ann", Info: json.RawMessage(`{"n":"Ann"}`)}
	bob := &pusher.Member{UserID: "bob"}

	if _, err := h.Subscribe("presence-room", info, watcher, bob, 100); err != nil {
		t.Fatal(err)
	}
	watcher.take()
	res, _ := h.Subscribe("presence-room", info, a1, ann, 100)
	if !res.MemberAdded {
		t.Fatal("first socket of ann: MemberAdded = false")
	}
	if got := events(watcher.take()); fmt.Sprint(got) != "[pusher_internal:member_added]" {
		t.Fatalf("watcher got %v", got)
	}
	res, _ = h.Subscribe("presence-room", info, a2, ann, 100)
	if res.MemberAdded {
		t.Fatal("second socket of ann announced again")
	}
	if got := watcher.take(); len(got) != 0 {
		t.Fatalf("watcher got %v for ann's second socket", got)
	}
	succ := a2.take()[0]
	if !strings.Contains(succ, `\"count\":2`) || !strings.Contains(succ, `\"ids\":[\"ann\",\"bob\"]`) {
		t.Fatalf("subscription_succeeded = %s", succ)
	}
	if st, _ := h.Stats("presence-room"); st.UserCount != 2 || st.SubscriptionCount != 3 {
		t.Fatalf("stats = %+v", st)
	}
	if r := h.Unsubscribe("presence-room", a1, "ann"); r.MemberRemoved {
		t.Fatal("ann removed while a2 remains")
	}
	if got := watcher.take(); len(got) != 0 {
		t.Fatalf("watcher got %v", got)
	}
	if r := h.Unsubscribe("presence-room", a2, "ann"); !r.MemberRemoved {
		t.Fatal("ann's last socket left: MemberRemoved = false")
	}
	if got := watcher.take(); len(got) != 1 || got[0] != string(pusher.MemberRemoved("presence-room", "ann")) {
		t.Fatalf("watcher got %v", got)
	}
	if r := h.Unsubscribe("presence-room", watcher, "bob"); !r.Vacated {
		t.Fatal("channel not vacated")
	}
	if _, ok := h.Stats("presence-room"); ok {
		t.Fatal("vacated channel still occupied")
	}
}

func TestPresenceLimit(t *testing.T) {
	h := New(Options{})
	info := pusher.ParseChannel("presence-x")
	_, _ = h.Subscribe("presence-x", info, &fakeSub{id: "1.1"}, &pusher.Member{UserID: "a"}, 1)
	if _, err := h.Subscribe("presence-x", info, &fakeSub{id: "1.2"}, &pusher.Member{UserID: "b"}, 1); err == nil {
		t.Fatal("second user admitted over the limit of 1")
	}
	if _, err := h.Subscribe("presence-x", info, &fakeSub{id: "1.3"}, &pusher.Member{UserID: "a"}, 1); err != nil {
		t.Fatalf("another socket of an existing member refused: %v", err)
	}
}

func TestBroadcastExcludesAndSharesBytes(t *testing.T) {
	h := New(Options{})
	info := pusher.ParseChannel("c")
	subs := []*fakeSub{{id: "1.1"}, {id: "1.2"}, {id: "1.3"}}
	for _, s := range subs {
		_, _ = h.Subscribe("c", info, s, nil, 0)
		s.take()
	}
	frame := pusher.Event("c", "e", "d")
	if n := h.Broadcast("c", frame, "1.2"); n != 2 {
		t.Fatalf("delivered to %d, want 2", n)
	}
	if len(subs[1].take()) != 0 {
		t.Fatal("excluded socket received the event")
	}
	if got := subs[0].take(); len(got) != 1 || got[0] != string(frame) {
		t.Fatalf("got %v", got)
	}
	if n := h.Broadcast("nobody", frame, ""); n != 0 {
		t.Fatalf("broadcast to empty channel reached %d", n)
	}
}

func TestCacheChannel(t *testing.T) {
	h := New(Options{})
	info := pusher.ParseChannel("cache-p")
	s1 := &fakeSub{id: "1.1"}
	res, _ := h.Subscribe("cache-p", info, s1, nil, 0)
	if !res.CacheMiss || fmt.Sprint(events(s1.take())) != "[pusher_internal:subscription_succeeded pusher:cache_miss]" {
		t.Fatal("no cache miss on empty cache channel")
	}
	h.BroadcastCached("cache-p", pusher.Event("cache-p", "e", "1"), "")
	last := pusher.Event("cache-p", "e", "2")
	h.BroadcastCached("cache-p", last, "")
	s2 := &fakeSub{id: "1.2"}
	_, _ = h.Subscribe("cache-p", info, s2, nil, 0)
	got := s2.take()
	if len(got) != 2 || got[1] != string(last) {
		t.Fatalf("new subscriber got %v, want success then the last event", got)
	}
	if f, ttl, ok := h.Cached("cache-p"); !ok || string(f) != string(last) || ttl <= 0 {
		t.Fatalf("Cached = %s, %v, %v", f, ttl, ok)
	}
}

func TestChannelsFilter(t *testing.T) {
	h := New(Options{})
	for _, n := range []string{"presence-a", "presence-b", "private-c", "d", "#server-to-user-1"} {
		var m *pusher.Member
		if strings.HasPrefix(n, "presence-") {
			m = &pusher.Member{UserID: "u"}
		}
		_, _ = h.Subscribe(n, pusher.ParseChannel(n), &fakeSub{id: "1.1"}, m, 10)
	}
	var names []string
	for _, c := range h.Channels("presence-") {
		names = append(names, c.Name)
	}
	if fmt.Sprint(names) != "[presence-a presence-b]" {
		t.Fatalf("got %v", names)
	}
	if n := len(h.Channels("")); n != 4 {
		t.Fatalf("all channels: %d, want 4 (server-to-user hidden)", n)
	}
}

func TestConcurrentSubscribeBroadcast(t *testing.T) {
	h := New(Options{})
	info := pusher.ParseChannel("presence-load")
	var wg sync.WaitGroup
	subs := make([]*fakeSub, 64)
	for i := range subs {
		subs[i] = &fakeSub{id: fmt.Sprintf("1.%d", i)}
		wg.Add(1)
		go func(s *fakeSub, i int) {
			defer wg.Done()
			m := &pusher.Member{UserID: fmt.Sprint(i % 8)}
			_, _ = h.Subscribe("presence-load", info, s, m, 100)
			h.Broadcast("presence-load", []byte("x"), "")
			h.Unsubscribe("presence-load", s, m.UserID)
		}(subs[i], i)
	}
	wg.Wait()
	if _, ok := h.Stats("presence-load"); ok {
		t.Fatal("channel still occupied after everyone left")
	}
}

func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			h := New(Options{})
			info := pusher.ParseChannel("c")
			for i := range n {
				_, _ = h.Subscribe("c", info, &countSub{id: fmt.Sprintf("1.%d", i)}, nil, 0)
			}
			frame := pusher.Event("c", "e", strings.Repeat("x", 100))
			b.ReportAllocs()
			for b.Loop() {
				h.Broadcast("c", frame, "")
			}
		})
	}
}

type countSub struct {
	id string
	n  int
}

func (c *countSub) SocketID() string { return c.id }
func (c *countSub) Send([]byte)      { c.n++ }

func TestMaxChannels(t *testing.T) {
	h := New(Options{MaxChannels: 2})
	a, b := &fakeSub{id: "1.1"}, &fakeSub{id: "1.2"}
	pub := pusher.ParseChannel("x")
	for _, n := range []string{"x", "y"} {
		if _, err := h.Subscribe(n, pub, a, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Subscribe("z", pub, b, nil, 0); err == nil || err.(*pusher.Error).Code != pusher.CodeOverChannelLimit || err.(*pusher.Error).Close {
		t.Fatalf("third channel: %v; want a non-closing %d", err, pusher.CodeOverChannelLimit)
	}
	if _, err := h.Subscribe("x", pub, b, nil, 0); err != nil {
		t.Fatalf("existing channel refused: %v", err)
	}
	h.Join("#server-to-user-u", a) // a sign-in's channel is counted, never refused
	if !h.IsSubscribed("#server-to-user-u", a) || h.ChannelCount() != 3 {
		t.Fatalf("join: subscribed=%v count=%d", h.IsSubscribed("#server-to-user-u", a), h.ChannelCount())
	}
	h.Unsubscribe("#server-to-user-u", a, "")
	h.Unsubscribe("y", a, "")
	if _, err := h.Subscribe("z", pub, b, nil, 0); err != nil || h.ChannelCount() != 2 {
		t.Fatalf("after vacating: %v, count %d", err, h.ChannelCount())
	}
}

func TestFlushCounts(t *testing.T) {
	h := New(Options{CountSubscriptions: true})
	a, b := &fakeSub{id: "1.1"}, &fakeSub{id: "1.2"}
	_, _ = h.Subscribe("room", pusher.ParseChannel("room"), a, nil, 0)
	_, _ = h.Subscribe("room", pusher.ParseChannel("room"), b, nil, 0)
	_, _ = h.Subscribe("gone", pusher.ParseChannel("gone"), b, nil, 0)
	h.Unsubscribe("gone", b, "") // vacated: nobody to tell
	_, _ = h.Subscribe("presence-p", pusher.ParseChannel("presence-p"), a, &pusher.Member{UserID: "u"}, 10)
	h.Join("#server-to-user-u", a)
	a.take()
	b.take()
	changes := h.FlushCounts()
	if len(changes) != 1 || changes[0] != (CountChange{Channel: "room", Count: 2}) {
		t.Fatalf("changes %+v", changes)
	}
	for _, s := range []*fakeSub{a, b} {
		if got := s.take(); len(got) != 1 || got[0] != `{"event":"pusher_internal:subscription_count","channel":"room","data":"{\"subscription_count\":2}"}` {
			t.Fatalf("%s got %q", s.id, got)
		}
	}
	if changes := h.FlushCounts(); len(changes) != 0 {
		t.Fatalf("second flush %+v", changes)
	}
}
